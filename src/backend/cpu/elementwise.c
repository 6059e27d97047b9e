/* elementwise.c: add, scale, sum, cast. */
#include "backend/cpu/cpu.h"
#include "backend/cpu/simd_math.h"

#include <string.h>

void lmc_cpu_add(lmc_backend *be, float *out, const float *a, const float *b, size_t n)
{
#pragma omp parallel for num_threads(lmc_cpu_threads_for(be, n)) schedule(static)
    for (size_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

void lmc_cpu_scale(lmc_backend *be, float *x, float s, size_t n)
{
#pragma omp parallel for num_threads(lmc_cpu_threads_for(be, n)) schedule(static)
    for (size_t i = 0; i < n; i++)
        x[i] *= s;
}

/* Fixed-size chunks summed in order: the same bits for any thread count. */
#define SUM_CHUNK 4096

#if defined(__x86_64__)
/* one chunk in double precision, 16 lanes (two 8-lane halves) */
LMC_TARGET(AVX512) static double sum_chunk_avx512(const float *x, size_t n, int squares)
{
    __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
    for (size_t i = 0; i < n; i += 16) {
        __m512 v = _mm512_maskz_loadu_ps(lmc_mask16((int)(n - i < 16 ? n - i : 16)), x + i);
        __m512d a = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
        __m512d b = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
        lo = squares ? _mm512_fmadd_pd(a, a, lo) : _mm512_add_pd(lo, a);
        hi = squares ? _mm512_fmadd_pd(b, b, hi) : _mm512_add_pd(hi, b);
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
}
#endif

static double sum_chunk(const float *x, size_t n, int squares)
{
    double acc = 0.0;
    for (size_t i = 0; i < n; i++)
        acc += squares ? (double)x[i] * x[i] : (double)x[i];
    return acc;
}
void lmc_cpu_sum(lmc_backend *be, float *out, const float *x, size_t n, int squares)
{
    size_t nchunk = (n + SUM_CHUNK - 1) / SUM_CHUNK;
    double *part = (double *)lmc_cpu_scratch(be, (nchunk + 1) * sizeof(double), LMC_OP_sum);
    if (!part)
        return;
    int avx512 = 0;
#if defined(__x86_64__)
    avx512 = cpu_of(be)->isa == LMC_ISA_AVX512;
#endif
#pragma omp parallel for num_threads(be->threads) schedule(static)
    for (size_t c = 0; c < nchunk; c++) {
        size_t i0 = c * SUM_CHUNK, len = i0 + SUM_CHUNK < n ? SUM_CHUNK : n - i0;
#if defined(__x86_64__)
        if (avx512) {
            part[c] = sum_chunk_avx512(x + i0, len, squares);
            continue;
        }
#endif
        part[c] = sum_chunk(x + i0, len, squares);
    }
    double total = 0.0;
    for (size_t c = 0; c < nchunk; c++)
        total += part[c];
    *out = (float)total;
}

void lmc_cpu_cast(lmc_backend *be, void *dst, lmc_dtype dst_type, const void *src, lmc_dtype src_type,
                  size_t n)
{
    if (dst_type == src_type) {
        memmove(dst, src, n * (dst_type == LMC_F32 ? 4 : 2));
        return;
    }
    if (dst_type == LMC_BF16) {
        const float *s = src;
        uint16_t *d = dst;
#pragma omp parallel for num_threads(be->threads) schedule(static)
        for (size_t i = 0; i < n; i++) {
            union { float f; uint32_t u; } v = {bf16_round(s[i])};
            d[i] = (uint16_t)(v.u >> 16);
        }
    } else {
        const uint16_t *s = src;
        float *d = dst;
#pragma omp parallel for num_threads(be->threads) schedule(static)
        for (size_t i = 0; i < n; i++) {
            union { uint32_t u; float f; } v = {(uint32_t)s[i] << 16};
            d[i] = v.f;
        }
    }
}
