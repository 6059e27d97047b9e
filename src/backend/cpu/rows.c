/* rows.c: rows by index, a mixture of experts' dropless dispatch: gather
 * (with an optional weight per row), weighted scatter-add into distinct
 * rows, and a dot product per row. Memory-bound: each row is one pass of
 * AVX-512 (or AVX2, or portable) loads and stores, rows split over the
 * threads. Every output row is written by one thread in a fixed order, so
 * the bits do not depend on the thread count. */
#include "backend/cpu/cpu.h"
#include "backend/cpu/simd_math.h"

#include <string.h>

/* ---- one row: o = s x, o += s x, a . b ---- */

static void scale_c(float *o, const float *x, float s, int C)
{
    for (int c = 0; c < C; c++)
        o[c] = s * x[c];
}

static void axpy_c(float *o, const float *x, float s, int C)
{
    for (int c = 0; c < C; c++)
        o[c] += s * x[c];
}

static float dot_c(const float *a, const float *b, int C)
{
    float acc = 0.0f;
    for (int c = 0; c < C; c++)
        acc += a[c] * b[c];
    return acc;
}

#if defined(__x86_64__)
LMC_TARGET(AVX512) static void scale_avx512(float *o, const float *x, float s, int C)
{
    __m512 vs = _mm512_set1_ps(s);
    for (int c = 0; c < C; c += 16) {
        __mmask16 k = lmc_mask16(C - c);
        _mm512_mask_storeu_ps(o + c, k, _mm512_mul_ps(vs, _mm512_maskz_loadu_ps(k, x + c)));
    }
}

LMC_TARGET(AVX512) static void axpy_avx512(float *o, const float *x, float s, int C)
{
    __m512 vs = _mm512_set1_ps(s);
    for (int c = 0; c < C; c += 16) {
        __mmask16 k = lmc_mask16(C - c);
        __m512 v = _mm512_fmadd_ps(vs, _mm512_maskz_loadu_ps(k, x + c), _mm512_maskz_loadu_ps(k, o + c));
        _mm512_mask_storeu_ps(o + c, k, v);
    }
}

/* two accumulators of 16 lanes, reduced at the end */
LMC_TARGET(AVX512) static float dot_avx512(const float *a, const float *b, int C)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int c = 0;
    for (; c + 32 <= C; c += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + c), _mm512_loadu_ps(b + c), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + c + 16), _mm512_loadu_ps(b + c + 16), s1);
    }
    for (; c < C; c += 16) {
        __mmask16 k = lmc_mask16(C - c);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + c), _mm512_maskz_loadu_ps(k, b + c), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

/* AVX2: the portable loops, vectorised by the compiler for these targets */
LMC_TARGET(AVX2) static void scale_avx2(float *o, const float *x, float s, int C)
{
    for (int c = 0; c < C; c++)
        o[c] = s * x[c];
}

LMC_TARGET(AVX2) static void axpy_avx2(float *o, const float *x, float s, int C)
{
    for (int c = 0; c < C; c++)
        o[c] += s * x[c];
}

LMC_TARGET(AVX2) static float dot_avx2(const float *a, const float *b, int C)
{
    __m256 s0 = _mm256_setzero_ps();
    int c = 0;
    for (; c + 8 <= C; c += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + c), _mm256_loadu_ps(b + c), s0);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    float acc = _mm_cvtss_f32(h);
    for (; c < C; c++)
        acc += a[c] * b[c];
    return acc;
}
#endif

typedef struct {
    void (*scale)(float *o, const float *x, float s, int C);
    void (*axpy)(float *o, const float *x, float s, int C);
    float (*dot)(const float *a, const float *b, int C);
} row_fns;

static row_fns fns_for(lmc_backend *be)
{
#if defined(__x86_64__)
    if (cpu_of(be)->isa == LMC_ISA_AVX512)
        return (row_fns){scale_avx512, axpy_avx512, dot_avx512};
    if (cpu_of(be)->isa == LMC_ISA_AVX2)
        return (row_fns){scale_avx2, axpy_avx2, dot_avx2};
#endif
    return (row_fns){scale_c, axpy_c, dot_c};
}

/* ---- the ops ---- */

// out (n,C) = in[idx[i]] (* w[i])
void lmc_cpu_gather_rows(lmc_backend *be, float *out, const float *in, const int *idx, const float *w, int n, int C)
{
    row_fns f = fns_for(be);
#pragma omp parallel for num_threads(lmc_cpu_threads_for(be, (size_t)n * C)) schedule(static)
    for (int i = 0; i < n; i++) {
        const float *src = in + (size_t)idx[i] * C;
        if (w)
            f.scale(out + (size_t)i * C, src, w[i], C);
        else
            memcpy(out + (size_t)i * C, src, (size_t)C * sizeof(float));
    }
}

// out[idx[i]] += w[i] * in[i], idx distinct: rows split over threads without races
void lmc_cpu_scatter_add_rows(lmc_backend *be, float *out, const float *in, const int *idx, const float *w, int n,
                              int C)
{
    row_fns f = fns_for(be);
#pragma omp parallel for num_threads(lmc_cpu_threads_for(be, (size_t)n * C)) schedule(static)
    for (int i = 0; i < n; i++)
        f.axpy(out + (size_t)idx[i] * C, in + (size_t)i * C, w ? w[i] : 1.0f, C);
}

// out (n) = a[idx[i]] . b[i]
void lmc_cpu_row_dot(lmc_backend *be, float *out, const float *a, const int *idx, const float *b, int n, int C)
{
    row_fns f = fns_for(be);
#pragma omp parallel for num_threads(lmc_cpu_threads_for(be, (size_t)n * C)) schedule(static)
    for (int i = 0; i < n; i++)
        out[i] = f.dot(a + (size_t)(idx ? idx[i] : i) * C, b + (size_t)i * C, C);
}
