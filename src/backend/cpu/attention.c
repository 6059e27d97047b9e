/* attention.c: causal multi-head / grouped-query attention, forward and
 * backward, one query row at a time: memory is O(T) per thread (only the
 * log-sum-exp of each row is kept for backward), never O(T^2). */
#include "backend/cpu/cpu.h"

#include <math.h>
#include <omp.h>
#include <string.h>

static inline float dot(const float *a, const float *b, int n)
{
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static inline void axpy(float *y, float a, const float *x, int n)
{
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}

/* One softmax row over keys 0..nk-1: writes probabilities to p and the
 * weighted sum of values to o; returns the log-sum-exp of the scores. */
static float attend_row(float *o, float *p, const float *q, const float *k, const float *v,
                        size_t stride, int nk, int HS, float scale)
{
    float mx = -INFINITY;
    for (int s = 0; s < nk; s++) {
        p[s] = dot(q, k + (size_t)s * stride, HS) * scale;
        if (p[s] > mx)
            mx = p[s];
    }
    float sum = 0.0f;
    for (int s = 0; s < nk; s++) {
        p[s] = expf(p[s] - mx);
        sum += p[s];
    }
    float inv = 1.0f / sum;
    memset(o, 0, (size_t)HS * sizeof(float));
    for (int s = 0; s < nk; s++)
        axpy(o, p[s] * inv, v + (size_t)s * stride, HS);
    return mx + logf(sum);
}

void lmc_cpu_attention_forward(lmc_backend *be, float *out, float *lse, const float *qkv, int B, int T,
                               int NH, int NKV, int HS)
{
#if defined(__x86_64__)
    if (cpu_of(be)->isa == LMC_ISA_AVX512) {
        lmc_cpu_attention_forward_avx512(be, out, lse, qkv, B, T, NH, NKV, HS);
        return;
    }
#endif
    int nt = be->threads, rep = NH / NKV;
    size_t row = (size_t)(NH + 2 * NKV) * HS;
    float scale = 1.0f / sqrtf((float)HS);
    float *scratch = lmc_cpu_scratch(be, (size_t)nt * T * sizeof(float), LMC_OP_attention_forward);
    if (!scratch)
        return;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) collapse(2)
    for (int bh = 0; bh < B * NH; bh++) {
        for (int t = 0; t < T; t++) {
            int b = bh / NH, h = bh % NH, kh = h / rep;
            float *p = scratch + (size_t)omp_get_thread_num() * T;
            const float *base = qkv + (size_t)b * T * row;
            const float *q = base + (size_t)t * row + (size_t)h * HS;
            const float *k = base + (size_t)(NH + kh) * HS;
            const float *v = base + (size_t)(NH + NKV + kh) * HS;
            float *o = out + ((size_t)b * T + t) * NH * HS + (size_t)h * HS;
            float l = attend_row(o, p, q, k, v, row, t + 1, HS, scale);
            if (lse)
                lse[(size_t)bh * T + t] = l;
        }
    }
}

// dqkv =; one task per (batch, kv head) so dk/dv sums need no locks
void lmc_cpu_attention_backward(lmc_backend *be, float *dqkv, const float *dout, const float *out,
                                const float *lse, const float *qkv, int B, int T, int NH, int NKV, int HS)
{
#if defined(__x86_64__)
    if (cpu_of(be)->isa == LMC_ISA_AVX512) {
        lmc_cpu_attention_backward_avx512(be, dqkv, dout, out, lse, qkv, B, T, NH, NKV, HS);
        return;
    }
#endif
    int nt = be->threads, rep = NH / NKV;
    size_t row = (size_t)(NH + 2 * NKV) * HS, orow = (size_t)NH * HS;
    float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int bk = 0; bk < B * NKV; bk++) {
        int b = bk / NKV, kh = bk % NKV;
        const float *base = qkv + (size_t)b * T * row;
        float *dbase = dqkv + (size_t)b * T * row;
        const float *k = base + (size_t)(NH + kh) * HS, *v = base + (size_t)(NH + NKV + kh) * HS;
        float *dk = dbase + (size_t)(NH + kh) * HS, *dv = dbase + (size_t)(NH + NKV + kh) * HS;
        for (int t = 0; t < T; t++) {
            memset(dk + (size_t)t * row, 0, (size_t)HS * sizeof(float));
            memset(dv + (size_t)t * row, 0, (size_t)HS * sizeof(float));
        }
        for (int h = kh * rep; h < (kh + 1) * rep; h++) {
            for (int t = 0; t < T; t++) {
                const float *q = base + (size_t)t * row + (size_t)h * HS;
                const float *d = dout + ((size_t)b * T + t) * orow + (size_t)h * HS;
                const float *o = out + ((size_t)b * T + t) * orow + (size_t)h * HS;
                float *dq = dbase + (size_t)t * row + (size_t)h * HS;
                float l = lse[((size_t)b * NH + h) * T + t], D = dot(d, o, HS);
                memset(dq, 0, (size_t)HS * sizeof(float));
                for (int s = 0; s <= t; s++) {
                    const float *ks = k + (size_t)s * row, *vs = v + (size_t)s * row;
                    float p = expf(dot(q, ks, HS) * scale - l);
                    float ds = p * (dot(d, vs, HS) - D) * scale;
                    axpy(dq, ds, ks, HS);
                    axpy(dk + (size_t)s * row, ds, q, HS);
                    axpy(dv + (size_t)s * row, p, d, HS);
                }
            }
        }
    }
}

void lmc_cpu_decode_heads(lmc_backend *be, lmc_cpu_attend_fn attend, float *out, const float *q,
                          const float *kcache, const float *vcache, const int *len, int B, int maxT, int NH, int NKV,
                          int HS)
{
    int nt = be->threads, rep = NH / NKV;
    size_t kvrow = (size_t)NKV * HS;
    float scale = 1.0f / sqrtf((float)HS);
    float *scratch = lmc_cpu_scratch(be, (size_t)nt * maxT * sizeof(float), LMC_OP_attention_decode);
    if (!scratch)
        return;
    long work = 0;
    for (int b = 0; b < B; b++)
        work += len[b] > 0 ? len[b] : 0;
    /* short contexts are not worth waking the other threads for */
    if (work * NH * (long)HS < 65536)
        nt = 1;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH, kh = h / rep;
        float *p = scratch + (size_t)omp_get_thread_num() * maxT;
        const float *k = kcache + (size_t)b * maxT * kvrow + (size_t)kh * HS;
        const float *v = vcache + (size_t)b * maxT * kvrow + (size_t)kh * HS;
        float *o = out + (size_t)bh * HS;
        if (len[b] <= 0)
            memset(o, 0, (size_t)HS * sizeof(float));
        else
            attend(o, p, q + (size_t)bh * HS, k, v, kvrow, len[b], HS, scale);
    }
}

void lmc_cpu_attention_decode_c(lmc_backend *be, float *out, const float *q, const float *kcache,
                                const float *vcache, const int *len, int B, int maxT, int NH, int NKV, int HS)
{
    lmc_cpu_decode_heads(be, attend_row, out, q, kcache, vcache, len, B, maxT, NH, NKV, HS);
}
