/* linear.c: the inference linear layer, out (M,N) (+)= inp (M,K) . W^T
 * (+ bias), with W stored (N,K) in fp32, bf16, or int8 with a scale per row
 * (weight-only quantization).
 *
 * Decode multiplies a handful of rows (one per sequence) by every weight of
 * the model, so it is bound by how fast the weights stream from memory, not
 * by FLOPs. A packed GEMM would copy each weight once per call, doubling the
 * traffic; here every weight row is read once, converted to fp32 in
 * registers and dotted with up to 4 input rows at a time (a 4x4 register
 * tile of dot products). Threads split N into contiguous ranges so each one
 * streams its own part of W. For large M (prefill) the inputs are walked in
 * chunks that stay in L2 while a thread's rows of W pass over them.
 *
 * A dot-product path (vdpbf16ps on bf16-rounded inputs, vpdpwssd on inputs
 * quantized to int16) was tried and dropped: with W read as 4 long streams
 * (rows512) single-stream decode is bound by memory on both, and the
 * conversion of the inputs cost more than the narrower arithmetic saved at
 * 4-16 streams (measured on d12's shapes, 2 threads). */
#include "backend/cpu/cpu.h"
#include "backend/cpu/simd_math.h"

#include <omp.h>
#include <string.h>

static inline float w_at(const void *w, lmc_dtype t, size_t i)
{
    if (t == LMC_F32)
        return ((const float *)w)[i];
    if (t == LMC_BF16) {
        union { uint32_t u; float f; } v = {(uint32_t)((const uint16_t *)w)[i] << 16};
        return v.f;
    }
    return (float)((const int8_t *)w)[i];
}

static inline void finish(float *o, float acc, const float *scale, const float *bias, int n, int accumulate)
{
    float v = acc * (scale ? scale[n] : 1.0f) + (bias ? bias[n] : 0.0f);
    *o = accumulate ? *o + v : v;
}

/* The portable path (and the reference of the conformance suite): one
 * sequential fp32 sum per output. */
static void linear_c(int nt, float *out, const float *inp, const void *w, lmc_dtype t, const float *scale,
                     const float *bias, int M, int N, int K, int accumulate)
{
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int n = 0; n < N; n++) {
        for (int m = 0; m < M; m++) {
            const float *x = inp + (size_t)m * K;
            size_t row = (size_t)n * K;
            float acc = 0.0f;
            for (int k = 0; k < K; k++)
                acc += x[k] * w_at(w, t, row + (size_t)k);
            finish(out + (size_t)m * N + n, acc, scale, bias, n, accumulate);
        }
    }
}

/* ---------- AVX-512 ---------- */

#define INLINE512 LMC_TARGET(AVX512) static inline __attribute__((always_inline))

/* 16 weights from element i as fp32; the mask covers a tail shorter than 16 */
INLINE512 __m512 load_w(const void *w, lmc_dtype t, size_t i, __mmask16 mk)
{
    if (t == LMC_F32)
        return _mm512_maskz_loadu_ps(mk, (const float *)w + i);
    if (t == LMC_BF16) {
        __m256i h = _mm256_maskz_loadu_epi16(mk, (const uint16_t *)w + i);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    __m128i q = _mm_maskz_loadu_epi8(mk, (const int8_t *)w + i);
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q));
}

/* The tile: NR rows of W (n0..) against MR input rows (m0..), both at most
 * 4 and compile-time constants after inlining. The accumulators are named
 * variables, not an array, so they live in registers (an array of __m512
 * is kept in memory by gcc and stored back every iteration). */
#define FMA_ROW(r, wrow, mk)                                                                \
    if (NR > r) {                                                                           \
        __m512 wv = load_w(w, t, (wrow) + (size_t)k, mk);                                   \
        a##r##0 = _mm512_fmadd_ps(wv, x0, a##r##0);                                          \
        if (MR > 1)                                                                         \
            a##r##1 = _mm512_fmadd_ps(wv, x1, a##r##1);                                      \
        if (MR > 2)                                                                         \
            a##r##2 = _mm512_fmadd_ps(wv, x2, a##r##2);                                      \
        if (MR > 3)                                                                         \
            a##r##3 = _mm512_fmadd_ps(wv, x3, a##r##3);                                      \
    }
#define STEP(mk, LOAD)                                                                      \
    do {                                                                                    \
        __m512 x0 = LOAD(mk, p0 + k), x1 = MR > 1 ? LOAD(mk, p1 + k) : x0;                  \
        __m512 x2 = MR > 2 ? LOAD(mk, p2 + k) : x0, x3 = MR > 3 ? LOAD(mk, p3 + k) : x0;    \
        FMA_ROW(0, w0, mk)                                                                  \
        FMA_ROW(1, w1, mk)                                                                  \
        FMA_ROW(2, w2, mk)                                                                  \
        FMA_ROW(3, w3, mk)                                                                  \
    } while (0)
#define LOADX(mk, p) _mm512_maskz_loadu_ps(mk, p)
#define PAIR_ROW(r, wrow, mk)                                                               \
    if (NR > r) {                                                                           \
        __m512i wv = _mm512_maskz_loadu_epi16(mk, (const uint16_t *)w + (wrow) + (size_t)k);   \
        __m512 we = _mm512_castsi512_ps(_mm512_slli_epi32(wv, 16));                          \
        __m512 wo = _mm512_castsi512_ps(_mm512_and_si512(wv, _mm512_set1_epi32((int)0xffff0000u))); \
        a##r##0 = _mm512_fmadd_ps(wo, o0, _mm512_fmadd_ps(we, e0, a##r##0));                 \
        if (MR > 1)                                                                         \
            a##r##1 = _mm512_fmadd_ps(wo, o1, _mm512_fmadd_ps(we, e1, a##r##1));             \
        if (MR > 2)                                                                         \
            a##r##2 = _mm512_fmadd_ps(wo, o2, _mm512_fmadd_ps(we, e2, a##r##2));             \
        if (MR > 3)                                                                         \
            a##r##3 = _mm512_fmadd_ps(wo, o3, _mm512_fmadd_ps(we, e3, a##r##3));             \
    }
#define PAIR_STEP(mk)                                                                       \
    do {                                                                                    \
        __m512 e0 = _mm512_loadu_ps(p0 + k), o0 = _mm512_loadu_ps(p0 + k + 16);             \
        __m512 e1 = MR > 1 ? _mm512_loadu_ps(p1 + k) : e0, o1 = MR > 1 ? _mm512_loadu_ps(p1 + k + 16) : o0; \
        __m512 e2 = MR > 2 ? _mm512_loadu_ps(p2 + k) : e0, o2 = MR > 2 ? _mm512_loadu_ps(p2 + k + 16) : o0; \
        __m512 e3 = MR > 3 ? _mm512_loadu_ps(p3 + k) : e0, o3 = MR > 3 ? _mm512_loadu_ps(p3 + k + 16) : o0; \
        PAIR_ROW(0, w0, mk)                                                                 \
        PAIR_ROW(1, w1, mk)                                                                 \
        PAIR_ROW(2, w2, mk)                                                                 \
        PAIR_ROW(3, w3, mk)                                                                 \
    } while (0)
#define FINISH_ROW(r)                                                                       \
    if (NR > r) {                                                                           \
        __m512 v[4] = {a##r##0, a##r##1, a##r##2, a##r##3};                                 \
        for (int c = 0; c < MR; c++)                                                        \
            finish(out + (size_t)(m0 + c) * N + n0 + r * rs, _mm512_reduce_add_ps(v[c]), scale, bias, n0 + r * rs, \
                   accumulate);                                                             \
    }

INLINE512 void tile(float *out, const float *inp, size_t ldx, const void *w, lmc_dtype t, const float *scale,
                    const float *bias, int N, int K, int accumulate, int n0, int rs, int m0, int NR, int MR)
{
    __m512 z = _mm512_setzero_ps();
    __m512 a00 = z, a01 = z, a02 = z, a03 = z, a10 = z, a11 = z, a12 = z, a13 = z;
    __m512 a20 = z, a21 = z, a22 = z, a23 = z, a30 = z, a31 = z, a32 = z, a33 = z;
    const float *p0 = inp + (size_t)m0 * ldx;
    const float *p1 = MR > 1 ? p0 + ldx : p0, *p2 = MR > 2 ? p0 + 2 * ldx : p0;
    const float *p3 = MR > 3 ? p0 + 3 * ldx : p0;
    size_t rk = (size_t)rs * K;
    size_t w0 = (size_t)n0 * K, w1 = w0 + (NR > 1 ? rk : 0), w2 = w0 + (NR > 2 ? 2 * rk : 0);
    size_t w3 = w0 + (NR > 3 ? 3 * rk : 0);
    size_t esz = t == LMC_F32 ? 4 : t == LMC_BF16 ? 2 : 1;
    const char *wb = (const char *)w;
    /* Prefetch distance (bytes): with short rows, the same spot 4 rows on
     * in each row's stream (see rows512); else 4 KB ahead in the row. On
     * d12's shapes this beat a fixed 1 KB by roughly 10% (fp32), 40% (bf16)
     * and 80% (int8) on one core. */
    size_t PREFETCH = 4 * (size_t)K * esz;
    PREFETCH = PREFETCH < 2048 ? 2048 : PREFETCH > 6144 ? 4096 : PREFETCH;
    int k = 0;
    if (t == LMC_BF16) {
        /* 32 weights per step, read as 16 pairs: the high half of each
         * 32-bit lane is an fp32 already, the low half one shift away; the
         * inputs were split into even and odd elements to match */
        for (; k < K; k += 32) {
            __mmask32 mk = K - k >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << (K - k)) - 1u);
            _mm_prefetch(wb + (w0 + (size_t)k) * 2 + PREFETCH, _MM_HINT_T0);
            if (NR > 1) {
                _mm_prefetch(wb + (w1 + (size_t)k) * 2 + PREFETCH, _MM_HINT_T0);
                _mm_prefetch(wb + (w2 + (size_t)k) * 2 + PREFETCH, _MM_HINT_T0);
                _mm_prefetch(wb + (w3 + (size_t)k) * 2 + PREFETCH, _MM_HINT_T0);
            }
            PAIR_STEP(mk);
        }
        k = K;
    }
    for (; k + 16 <= K; k += 16) {
        /* rows are short (a few KB) and read as NR interleaved streams that
         * the hardware prefetcher picks up late: fetch ahead, one line per
         * row per 64 bytes consumed */
        if (esz == 4 || (k & (64 / esz - 1)) == 0) {
            _mm_prefetch(wb + (w0 + (size_t)k) * esz + PREFETCH, _MM_HINT_T0);
            if (NR > 1) {
                _mm_prefetch(wb + (w1 + (size_t)k) * esz + PREFETCH, _MM_HINT_T0);
                _mm_prefetch(wb + (w2 + (size_t)k) * esz + PREFETCH, _MM_HINT_T0);
                _mm_prefetch(wb + (w3 + (size_t)k) * esz + PREFETCH, _MM_HINT_T0);
            }
        }
        STEP(0xffff, LOADX);
    }
    if (k < K) {
        __mmask16 mk = (__mmask16)((1u << (K - k)) - 1u);
        STEP(mk, LOADX);
    }
    FINISH_ROW(0)
    FINISH_ROW(1)
    FINISH_ROW(2)
    FINISH_ROW(3)
}

/* One thread's rows [n_lo, n_hi) against input rows [m_lo, m_hi). A
 * tile's 4 weight rows come from the 4 quarters of the range (rows j, j + q,
 * j + 2q, j + 3q), so W is read as 4 long sequential streams, which memory
 * serves faster than 4 adjacent short rows (int8 decode: 1.5x). */
INLINE512 void rows512(float *out, const float *inp, size_t ldx, const void *w, lmc_dtype t, const float *scale,
                       const float *bias, int N, int K, int accumulate, int n_lo, int n_hi, int m_lo, int m_hi)
{
    int q = (n_hi - n_lo) / 4;
    for (int n = n_lo; n < n_lo + q; n++) {
        int m = m_lo;
        for (; m + 4 <= m_hi; m += 4)
            tile(out, inp, ldx, w, t, scale, bias, N, K, accumulate, n, q, m, 4, 4);
        switch (m_hi - m) {
        case 3: tile(out, inp, ldx, w, t, scale, bias, N, K, accumulate, n, q, m, 4, 3); break;
        case 2: tile(out, inp, ldx, w, t, scale, bias, N, K, accumulate, n, q, m, 4, 2); break;
        case 1: tile(out, inp, ldx, w, t, scale, bias, N, K, accumulate, n, q, m, 4, 1); break;
        }
    }
    for (int n = n_lo + 4 * q; n < n_hi; n++) {
        int m = m_lo;
        for (; m + 4 <= m_hi; m += 4)
            tile(out, inp, ldx, w, t, scale, bias, N, K, accumulate, n, 1, m, 1, 4);
        for (; m < m_hi; m++)
            tile(out, inp, ldx, w, t, scale, bias, N, K, accumulate, n, 1, m, 1, 1);
    }
}

#define ROWS_FN(name, T)                                                                                   \
    LMC_TARGET(AVX512) static void name(float *out, const float *inp, size_t ldx, const void *w,               \
                                        const float *scale, const float *bias, int N, int K, int acc, int n_lo, \
                                        int n_hi, int m_lo, int m_hi)                                          \
    {                                                                                                      \
        rows512(out, inp, ldx, w, T, scale, bias, N, K, acc, n_lo, n_hi, m_lo, m_hi);                      \
    }
ROWS_FN(rows_f32, LMC_F32)
ROWS_FN(rows_bf16, LMC_BF16)
ROWS_FN(rows_i8, LMC_I8)

typedef void (*rows_fn)(float *, const float *, size_t, const void *, const float *, const float *, int, int, int,
                        int, int, int, int);

/* bf16 weights are read in pairs (see tile): each 32-element block of an
 * input row becomes its 16 even then its 16 odd elements, rows padded with
 * zeros to a multiple of 32 */
static const float *split_pairs(lmc_backend *be, const float *inp, int M, int K, size_t *ldx)
{
    size_t Kp = ((size_t)K + 31) / 32 * 32;
    float *x = lmc_cpu_scratch(be, (size_t)M * Kp * sizeof(float), LMC_OP_linear);
    if (!x)
        return NULL;
    for (int m = 0; m < M; m++) {
        const float *src = inp + (size_t)m * K;
        float *dst = x + (size_t)m * Kp;
        for (size_t b = 0; b < Kp; b += 32)
            for (int i = 0; i < 16; i++) {
                size_t e = b + 2 * (size_t)i, o = e + 1;
                dst[b + (size_t)i] = e < (size_t)K ? src[e] : 0.0f;
                dst[b + 16 + (size_t)i] = o < (size_t)K ? src[o] : 0.0f;
            }
    }
    *ldx = Kp;
    return x;
}

static void linear_avx512(lmc_backend *be, float *out, const float *inp, const void *w, lmc_dtype t,
                          const float *scale, const float *bias, int M, int N, int K, int accumulate)
{
    int nt = be->threads;
    rows_fn fn = t == LMC_F32 ? rows_f32 : t == LMC_BF16 ? rows_bf16 : rows_i8;
    size_t ldx = (size_t)K;
    if (t == LMC_BF16 && !(inp = split_pairs(be, inp, M, K, &ldx)))
        return;
    /* input chunk that stays in L2 (~256 KB) while W streams past it */
    int mchunk = (int)((256 << 10) / ((size_t)K * 4));
    mchunk = mchunk < 4 ? 4 : mchunk / 4 * 4;
    /* rows per thread in multiples of 4 so tiles stay full; tiny products
     * are not worth waking the other threads for */
    int blocks = (N + 3) / 4;
    if ((size_t)M * N * K < 32768)
        nt = 1;
    if (nt > blocks)
        nt = blocks;
#pragma omp parallel num_threads(nt)
    {
        int id = omp_get_thread_num(), cnt = omp_get_num_threads();
        int b_lo = (int)((long long)blocks * id / cnt), b_hi = (int)((long long)blocks * (id + 1) / cnt);
        int n_lo = b_lo * 4, n_hi = b_hi * 4 < N ? b_hi * 4 : N;
        for (int m0 = 0; m0 < M && n_lo < n_hi; m0 += mchunk) {
            int m1 = m0 + mchunk < M ? m0 + mchunk : M;
            fn(out, inp, ldx, w, scale, bias, N, K, accumulate, n_lo, n_hi, m0, m1);
        }
    }
}

void lmc_cpu_linear(lmc_backend *be, float *out, const float *inp, const void *w, lmc_dtype wtype,
                    const float *scale, const float *bias, int M, int N, int K, int accumulate)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++)
                finish(out + (size_t)m * N + n, 0.0f, NULL, bias, n, accumulate);
        return;
    }
    if (wtype != LMC_I8)
        scale = NULL;
    if (cpu_of(be)->isa == LMC_ISA_AVX512)
        linear_avx512(be, out, inp, w, wtype, scale, bias, M, N, K, accumulate);
    else
        linear_c(be->threads, out, inp, w, wtype, scale, bias, M, N, K, accumulate);
}
