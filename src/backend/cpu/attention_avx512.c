/* attention_avx512.c: the AVX-512 path of causal attention, forward and
 * backward. Same algorithm as attention.c (one query row at a time, only the
 * log-sum-exp kept), but the keys (and values) of a head are first
 * transposed into scratch so 16 scores come from one FMA per head
 * dimension, exponentials are computed 16 at a time, and the value /
 * gradient updates are FMAs over the head dimension. */
#include "backend/cpu/cpu.h"
#include "backend/cpu/simd_math.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#if defined(__x86_64__)

/* KT (HS, T) = the head's keys (T rows of stride `stride`) transposed */
static void transpose_head(float *kt, const float *k, size_t stride, int T, int HS)
{
    for (int s = 0; s < T; s++)
        for (int d = 0; d < HS; d++)
            kt[(size_t)d * T + s] = k[(size_t)s * stride + d];
}

/* out[j] = mul * sum_i c[i] * m[i * ld + j] for j < n: a vector times a
 * matrix, 64 columns at a time in four independent accumulators (one chain
 * would wait on FMA latency). With the keys transposed (KT, ld = T) it gives
 * a query's scores; with the value rows (ld = row) a weighted sum of them. */
LMC_TARGET(AVX512) static void vec_mat(float *out, const float *c, const float *m, size_t ld, int rows, int n,
                                       float mul)
{
    __m512 vm = _mm512_set1_ps(mul);
    for (int j = 0; j < n; j += 64) {
        __mmask16 m0 = lmc_mask16(n - j), m1 = lmc_mask16(n - j - 16), m2 = lmc_mask16(n - j - 32),
                  m3 = lmc_mask16(n - j - 48);
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < rows; i++) {
            const float *r = m + (size_t)i * ld + j;
            __m512 vc = _mm512_set1_ps(c[i]);
            a0 = _mm512_fmadd_ps(vc, _mm512_maskz_loadu_ps(m0, r), a0);
            a1 = _mm512_fmadd_ps(vc, _mm512_maskz_loadu_ps(m1, r + 16), a1);
            a2 = _mm512_fmadd_ps(vc, _mm512_maskz_loadu_ps(m2, r + 32), a2);
            a3 = _mm512_fmadd_ps(vc, _mm512_maskz_loadu_ps(m3, r + 48), a3);
        }
        _mm512_mask_storeu_ps(out + j, m0, _mm512_mul_ps(a0, vm));
        _mm512_mask_storeu_ps(out + j + 16, m1, _mm512_mul_ps(a1, vm));
        _mm512_mask_storeu_ps(out + j + 32, m2, _mm512_mul_ps(a2, vm));
        _mm512_mask_storeu_ps(out + j + 48, m3, _mm512_mul_ps(a3, vm));
    }
}

/* sc[0..n) = (q . KT[:, s]) * scale: the head's scores against keys s < n */
LMC_TARGET(AVX512) static inline void scores(float *sc, const float *q, const float *kt, int T, int n, int HS,
                                             float scale)
{
    vec_mat(sc, q, kt, (size_t)T, HS, n, scale);
}

/* o (HS) = mul * sum_s w[s] x_s for s < n (rows of stride `row`) */
LMC_TARGET(AVX512) static inline void weighted_rows(float *o, const float *w, const float *x, size_t row, int n, int HS,
                                                    float mul)
{
    vec_mat(o, w, x, row, n, HS, mul);
}

/* y (HS) += a * x (HS) */
LMC_TARGET(AVX512) static inline void axpy16(float *y, float a, const float *x, int HS)
{
    __m512 va = _mm512_set1_ps(a);
    for (int d = 0; d < HS; d += 16) {
        __mmask16 m = lmc_mask16(HS - d);
        _mm512_mask_storeu_ps(y + d, m, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + d),
                                                        _mm512_maskz_loadu_ps(m, y + d)));
    }
}

LMC_TARGET(AVX512) static float dot16(const float *a, const float *b, int HS)
{
    __m512 acc = _mm512_setzero_ps();
    for (int d = 0; d < HS; d += 16) {
        __mmask16 m = lmc_mask16(HS - d);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + d), _mm512_maskz_loadu_ps(m, b + d), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

/* p[s] = exp(p[s] - sub) for s < n (masked tail); returns the sum */
LMC_TARGET(AVX512) static float exp_row(float *p, int n, float sub)
{
    __m512 vs = _mm512_set1_ps(sub), sum = _mm512_setzero_ps();
    for (int s = 0; s < n; s += 16) {
        __mmask16 m = lmc_mask16(n - s);
        __m512 e = _mm512_maskz_mov_ps(m, lmc_exp512(_mm512_sub_ps(_mm512_loadu_ps(p + s), vs)));
        _mm512_storeu_ps(p + s, e);
        sum = _mm512_add_ps(sum, e);
    }
    return _mm512_reduce_add_ps(sum);
}

LMC_TARGET(AVX512) static float row_max(const float *p, int n)
{
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int s = 0; s < n; s += 16)
        mx = _mm512_mask_max_ps(mx, lmc_mask16(n - s), mx, _mm512_loadu_ps(p + s));
    return _mm512_reduce_max_ps(mx);
}

// one (batch, head): out rows and lse for t < T
LMC_TARGET(AVX512) static void forward_head(float *out, float *lse, const float *q, const float *v, const float *kt,
                                            float *p, size_t row, size_t orow, int T, int HS, float scale)
{
    for (int t = 0; t < T; t++) {
        int n = t + 1;
        scores(p, q + (size_t)t * row, kt, T, n, HS, scale);
        float mx = row_max(p, n), sum = exp_row(p, n, mx), inv = 1.0f / sum;
        weighted_rows(out + (size_t)t * orow, p, v, row, n, HS, inv);
        if (lse)
            lse[t] = mx + logf(sum);
    }
}

void lmc_cpu_attention_forward_avx512(lmc_backend *be, float *out, float *lse, const float *qkv, int B, int T,
                                      int NH, int NKV, int HS)
{
    int nt = be->threads, rep = NH / NKV, Tp = (T + 15) / 16 * 16;
    size_t row = (size_t)(NH + 2 * NKV) * HS, orow = (size_t)NH * HS, per = (size_t)HS * T + Tp;
    float scale = 1.0f / sqrtf((float)HS);
    float *scratch = lmc_cpu_scratch(be, (size_t)nt * per * sizeof(float), LMC_OP_attention_forward);
    if (!scratch)
        return;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int bk = 0; bk < B * NKV; bk++) {
        int b = bk / NKV, kh = bk % NKV;
        float *kt = scratch + (size_t)omp_get_thread_num() * per, *p = kt + (size_t)HS * T;
        const float *base = qkv + (size_t)b * T * row;
        transpose_head(kt, base + (size_t)(NH + kh) * HS, row, T, HS);
        for (int h = kh * rep; h < (kh + 1) * rep; h++)
            forward_head(out + (size_t)b * T * orow + (size_t)h * HS, lse ? lse + ((size_t)b * NH + h) * T : NULL,
                         base + (size_t)h * HS, base + (size_t)(NH + NKV + kh) * HS, kt, p, row, orow, T, HS, scale);
    }
}

// one query row t of head h: recompute p, then dq, and dk/dv for s <= t
LMC_TARGET(AVX512) static void backward_row(float *dq, float *dk, float *dv, const float *q, const float *d,
                                            const float *o,
                                            const float *k, const float *kt, const float *vt, float *p, float *dp,
                                            size_t row, int T, int t, int HS, float scale, float l)
{
    int n = t + 1;
    scores(p, q, kt, T, n, HS, scale);
    exp_row(p, n, l);
    scores(dp, d, vt, T, n, HS, 1.0f);
    __m512 vD = _mm512_set1_ps(dot16(d, o, HS)), vscale = _mm512_set1_ps(scale);
    for (int s = 0; s < n; s += 16) /* dp becomes ds = p (dp - D) scale */
        _mm512_storeu_ps(dp + s, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(p + s),
                                                             _mm512_sub_ps(_mm512_loadu_ps(dp + s), vD)), vscale));
    weighted_rows(dq, dp, k, row, n, HS, 1.0f);
    for (int s = 0; s < n; s++) {
        axpy16(dk + (size_t)s * row, dp[s], q, HS);
        axpy16(dv + (size_t)s * row, p[s], d, HS);
    }
}

void lmc_cpu_attention_backward_avx512(lmc_backend *be, float *dqkv, const float *dout, const float *out,
                                       const float *lse, const float *qkv, int B, int T, int NH, int NKV, int HS)
{
    int nt = be->threads, rep = NH / NKV, Tp = (T + 15) / 16 * 16;
    size_t row = (size_t)(NH + 2 * NKV) * HS, orow = (size_t)NH * HS, per = 2 * (size_t)HS * T + 2 * (size_t)Tp;
    float scale = 1.0f / sqrtf((float)HS);
    float *scratch = lmc_cpu_scratch(be, (size_t)nt * per * sizeof(float), LMC_OP_attention_backward);
    if (!scratch)
        return;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int bk = 0; bk < B * NKV; bk++) {
        int b = bk / NKV, kh = bk % NKV;
        float *kt = scratch + (size_t)omp_get_thread_num() * per, *vt = kt + (size_t)HS * T;
        float *p = vt + (size_t)HS * T, *dp = p + Tp;
        const float *base = qkv + (size_t)b * T * row, *k = base + (size_t)(NH + kh) * HS;
        const float *v = base + (size_t)(NH + NKV + kh) * HS;
        float *dbase = dqkv + (size_t)b * T * row;
        float *dk = dbase + (size_t)(NH + kh) * HS, *dv = dbase + (size_t)(NH + NKV + kh) * HS;
        transpose_head(kt, k, row, T, HS);
        transpose_head(vt, v, row, T, HS);
        for (int t = 0; t < T; t++) {
            memset(dk + (size_t)t * row, 0, (size_t)HS * sizeof(float));
            memset(dv + (size_t)t * row, 0, (size_t)HS * sizeof(float));
        }
        for (int h = kh * rep; h < (kh + 1) * rep; h++)
            for (int t = 0; t < T; t++)
                backward_row(dbase + (size_t)t * row + (size_t)h * HS, dk, dv, base + (size_t)t * row + (size_t)h * HS,
                             dout + ((size_t)b * T + t) * orow + (size_t)h * HS,
                             out + ((size_t)b * T + t) * orow + (size_t)h * HS, k, kt, vt, p, dp, row, T, t, HS,
                             scale, lse[((size_t)b * NH + h) * T + t]);
    }
}

#endif
