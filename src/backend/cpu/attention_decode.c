/* attention_decode.c: the AVX-512 path of attention_decode (one new query
 * per sequence against its KV cache). At long contexts decode attention
 * reads as many bytes as the weights (d12 at 1024 tokens: 75 MB of cache
 * per token beside 500 MB of fp32 weights) and the portable path computes
 * each score with a scalar dot product and a scalar expf, so it is worth a
 * vector path: dots over 16 lanes, the softmax's exponentials 16 at a time
 * (simd_math.h's lmc_exp512, ~1 ulp), values summed with FMAs. The portable
 * path (attention.c) is the reference in the conformance suite. */
#include "backend/cpu/cpu.h"
#include "backend/cpu/simd_math.h"

#include <math.h>

/* One head of one sequence: o (HS) = softmax(q . k_s * scale) . v_s over
 * s < nk; p is scratch of nk floats. Returns the log-sum-exp of the scores. */
LMC_TARGET(AVX512) static float attend512(float *o, float *p, const float *q, const float *k, const float *v,
                                          size_t stride,
                                          int nk, int HS, float scale)
{
    int nc = HS / 16, tail = HS % 16;
    __mmask16 tm = lmc_mask16(tail);
    float mx = -INFINITY;
    for (int s = 0; s < nk; s++) {
        const float *ks = k + (size_t)s * stride;
        __m512 acc = _mm512_setzero_ps();
        for (int c = 0; c < nc; c++)
            acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + 16 * c), _mm512_loadu_ps(ks + 16 * c), acc);
        if (tail)
            acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, q + 16 * nc), _mm512_maskz_loadu_ps(tm, ks + 16 * nc),
                                  acc);
        p[s] = _mm512_reduce_add_ps(acc) * scale;
        mx = p[s] > mx ? p[s] : mx;
    }
    __m512 vmx = _mm512_set1_ps(mx), vsum = _mm512_setzero_ps();
    int s = 0;
    for (; s + 16 <= nk; s += 16) {
        __m512 e = lmc_exp512(_mm512_sub_ps(_mm512_loadu_ps(p + s), vmx));
        _mm512_storeu_ps(p + s, e);
        vsum = _mm512_add_ps(vsum, e);
    }
    if (s < nk) {
        __mmask16 m = lmc_mask16(nk - s);
        __m512 e = lmc_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, p + s), vmx));
        _mm512_mask_storeu_ps(p + s, m, e);
        vsum = _mm512_add_ps(vsum, _mm512_maskz_mov_ps(m, e));
    }
    float sum = _mm512_reduce_add_ps(vsum);
    __m512 inv = _mm512_set1_ps(1.0f / sum);
    for (int c = 0; c <= nc; c++) {
        __mmask16 m = c < nc ? (__mmask16)0xffff : tm;
        if (!m)
            break;
        __m512 acc = _mm512_setzero_ps();
        for (int t = 0; t < nk; t++)
            acc = _mm512_fmadd_ps(_mm512_set1_ps(p[t]), _mm512_maskz_loadu_ps(m, v + (size_t)t * stride + 16 * c),
                                  acc);
        _mm512_mask_storeu_ps(o + 16 * c, m, _mm512_mul_ps(acc, inv));
    }
    return mx + logf(sum);
}

void lmc_cpu_attention_decode(lmc_backend *be, float *out, const float *q, const float *kcache,
                              const float *vcache, const int *len, int B, int maxT, int NH, int NKV, int HS)
{
    if (cpu_of(be)->isa != LMC_ISA_AVX512) {
        lmc_cpu_attention_decode_c(be, out, q, kcache, vcache, len, B, maxT, NH, NKV, HS);
        return;
    }
    lmc_cpu_decode_heads(be, attend512, out, q, kcache, vcache, len, B, maxT, NH, NKV, HS);
}
