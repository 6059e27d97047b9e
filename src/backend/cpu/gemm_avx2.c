/* gemm_avx2.c: the AVX2 + FMA GEMM path: a 6 x 16 micro-kernel (12 ymm
 * accumulators, 2 B loads and 6 broadcasts per k step, leaving 2 of the 16
 * registers spare), 8 x 8 in-register transposes for the k-contiguous
 * operands, and a vector GELU. bf16 is rounded while packing and multiplied
 * in fp32 (exact products of bf16 values, fp32 accumulation).
 */
#include "backend/cpu/gemm.h"
#include "backend/cpu/simd_math.h"

#if defined(__x86_64__)

#include <immintrin.h>

#define MR 6
#define NR 16

LMC_TARGET(AVX2) static inline __m256 round_ps(__m256 x)
{
    __m256i u = _mm256_castps_si256(x), exp = _mm256_set1_epi32(0x7f800000);
    __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff),
                                                     _mm256_and_si256(_mm256_srli_epi32(u, 16),
                                                                      _mm256_set1_epi32(1))));
    /* inf/nan truncate; a nan whose payload is all in the low half keeps bit 16 */
    __m256i spec = _mm256_cmpeq_epi32(_mm256_and_si256(u, exp), exp);
    __m256i low = _mm256_cmpeq_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0xffff)), _mm256_setzero_si256());
    __m256i nan_fix = _mm256_or_si256(u, _mm256_andnot_si256(low, _mm256_set1_epi32(0x10000)));
    r = _mm256_blendv_epi8(r, nan_fix, spec);
    return _mm256_castsi256_ps(_mm256_and_si256(r, _mm256_set1_epi32((int)0xffff0000u)));
}

LMC_TARGET(AVX2) static inline __m256i tail_mask(int n)
{
    static const int32_t bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(bits + 8 - (n < 0 ? 0 : n > 8 ? 8 : n)));
}

LMC_TARGET(AVX2) static inline __m256 load8(const float *p, int n, int round)
{
    __m256 x = n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, tail_mask(n));
    return round ? round_ps(x) : x;
}

LMC_TARGET(AVX2) static void transpose8(__m256 r[8])
{
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int x = 0; x < 4; x++) {
        r[x] = _mm256_permute2f128_ps(u[x], u[4 + x], 0x20);
        r[x + 4] = _mm256_permute2f128_ps(u[x], u[4 + x], 0x31);
    }
}

/* k-contiguous source rows into panels of width w (<= 16): 8 x 8 blocks */
LMC_TARGET(AVX2) static void pack_kmajor(float *dst, const float *src, size_t ld, int rows, int kc, int w, int round)
{
    float tmp[8] __attribute__((aligned(32)));
    for (int j0 = 0; j0 < w; j0 += 8) {
        int wide = w - j0 < 8 ? w - j0 : 8;
        for (int p0 = 0; p0 < kc; p0 += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++)
                r[i] = j0 + i < rows ? load8(src + (size_t)(j0 + i) * ld + p0, kc - p0, round)
                                     : _mm256_setzero_ps();
            transpose8(r);
            for (int c = 0; c < 8 && p0 + c < kc; c++) {
                float *d = dst + (size_t)(p0 + c) * w + j0;
                if (wide == 8) {
                    _mm256_storeu_ps(d, r[c]);
                } else {
                    _mm256_store_ps(tmp, r[c]);
                    for (int i = 0; i < wide; i++)
                        d[i] = tmp[i];
                }
            }
        }
    }
}

/* panel-contiguous source: each source row is one k step */
LMC_TARGET(AVX2) static void pack_nmajor(float *dst, const float *src, size_t ld, int cols, int kc, int w, int round)
{
    for (int p = 0; p < kc; p++) {
        const float *s = src + (size_t)p * ld;
        float *d = dst + (size_t)p * w;
        int j = 0;
        for (; j + 8 <= w; j += 8)
            _mm256_storeu_ps(d + j, load8(s + j, cols - j, round));
        for (; j < w; j++)
            d[j] = j < cols ? (round ? bf16_round(s[j]) : s[j]) : 0.0f;
    }
}

LMC_TARGET(AVX2) static void pack_panels(float *dst, const float *x, size_t ld, int kmajor, int n, int kc, int w,
                                         int round)
{
    for (int j0 = 0; j0 < n; j0 += w) {
        int cols = n - j0 < w ? n - j0 : w;
        float *d = dst + (size_t)j0 * kc;
        if (kmajor)
            pack_kmajor(d, x + (size_t)j0 * ld, ld, cols, kc, w, round);
        else
            pack_nmajor(d, x + j0, ld, cols, kc, w, round);
    }
}

static void pack_a(void *dst, const float *a, size_t lda, int trans, int mc, int kc, int round)
{
    pack_panels(dst, a, lda, !trans, mc, kc, MR, round);
}

static void pack_b(void *dst, const float *b, size_t ldb, int trans, int kc, int nc, int round)
{
    pack_panels(dst, b, ldb, trans, nc, kc, NR, round);
}

LMC_TARGET(AVX2) static void kernel(int kc, const void *ap_, const void *bp_, float *c, size_t ldc, int add_c,
                                    const float *bias)
{
    const float *ap = ap_, *bp = bp_;
    __m256 acc[MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++)
        acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int p = 0; p < kc; p++, ap += MR, bp += NR) {
        __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            __m256 a = _mm256_broadcast_ss(ap + i);
            acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 2
        for (int v = 0; v < 2; v++) {
            float *p = c + (size_t)i * ldc + 8 * v;
            __m256 x = acc[i][v];
            if (add_c)
                x = _mm256_add_ps(x, _mm256_loadu_ps(p));
            if (bias)
                x = _mm256_add_ps(x, _mm256_loadu_ps(bias + 8 * v));
            _mm256_storeu_ps(p, x);
        }
}

/* GELU epilogue; tails go through the same vector code */
LMC_TARGET(AVX2) static void gelu_avx2(float *x, int n)
{
    for (int j = 0; j < n; j += 8) {
        __m256i m = tail_mask(n - j);
        _mm256_maskstore_ps(x + j, m, lmc_gelu256(_mm256_maskload_ps(x + j, m)));
    }
}

const lmc_gemm_impl lmc_gemm_avx2_f32 = {
    .name = "avx2",
    .mr = MR,
    .nr = NR,
    .kpack = 1,
    .mc = 264,
    .kc = 256,
    .nc = 1536,
    .pack_a = pack_a,
    .pack_b = pack_b,
    .kernel = kernel,
    .gelu = gelu_avx2,
};

#endif
