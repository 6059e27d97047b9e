/* elementwise.c: add, scale, sum, cast. */
#include "backend/cpu/cpu.h"

#include <string.h>

void lmc_cpu_add(lmc_backend *be, float *out, const float *a, const float *b, size_t n)
{
#pragma omp parallel for num_threads(be->threads) schedule(static)
    for (size_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

void lmc_cpu_scale(lmc_backend *be, float *x, float s, size_t n)
{
#pragma omp parallel for num_threads(be->threads) schedule(static)
    for (size_t i = 0; i < n; i++)
        x[i] *= s;
}

/* Fixed-size chunks summed in order: the same bits for any thread count. */
#define SUM_CHUNK 4096
void lmc_cpu_sum(lmc_backend *be, float *out, const float *x, size_t n, int squares)
{
    size_t nchunk = (n + SUM_CHUNK - 1) / SUM_CHUNK;
    double *part = (double *)lmc_cpu_scratch(be, (nchunk + 1) * sizeof(double));
#pragma omp parallel for num_threads(be->threads) schedule(static)
    for (size_t c = 0; c < nchunk; c++) {
        size_t i0 = c * SUM_CHUNK, i1 = i0 + SUM_CHUNK < n ? i0 + SUM_CHUNK : n;
        double acc = 0.0;
        for (size_t i = i0; i < i1; i++)
            acc += squares ? (double)x[i] * x[i] : (double)x[i];
        part[c] = acc;
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
