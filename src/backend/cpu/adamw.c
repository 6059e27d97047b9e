/* adamw.c: torch.optim.AdamW's update, one fused pass per tensor. */
#include "backend/cpu/cpu.h"
#include "backend/cpu/simd_math.h"

#include <math.h>

#if defined(__x86_64__)
/* [i0, i1) of the update, 16 lanes at a time, the same arithmetic as below */
LMC_TARGET(AVX512) static void adamw_avx512(float *p, const float *g, float *m, float *v, size_t i0, size_t i1,
                                            const lmc_adamw_hp *hp)
{
    __m512 b1 = _mm512_set1_ps(hp->beta1), b2 = _mm512_set1_ps(hp->beta2), gs = _mm512_set1_ps(hp->grad_scale);
    __m512 c1 = _mm512_set1_ps(1.0f - hp->beta1), c2 = _mm512_set1_ps(1.0f - hp->beta2);
    __m512 decay = _mm512_set1_ps(1.0f - hp->lr * hp->weight_decay), step = _mm512_set1_ps(hp->lr / hp->bias_corr1);
    __m512 bc2 = _mm512_set1_ps(sqrtf(hp->bias_corr2)), eps = _mm512_set1_ps(hp->eps);
    for (size_t i = i0; i < i1; i += 16) {
        __mmask16 k = lmc_mask16((int)(i1 - i < 16 ? i1 - i : 16));
        __m512 grad = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, g + i), gs);
        __m512 mi = _mm512_add_ps(_mm512_mul_ps(b1, _mm512_maskz_loadu_ps(k, m + i)), _mm512_mul_ps(c1, grad));
        __m512 vi = _mm512_add_ps(_mm512_mul_ps(b2, _mm512_maskz_loadu_ps(k, v + i)),
                                  _mm512_mul_ps(_mm512_mul_ps(c2, grad), grad));
        __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), bc2), eps);
        __m512 pi = _mm512_sub_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, p + i), decay),
                                  _mm512_div_ps(_mm512_mul_ps(step, mi), denom));
        _mm512_mask_storeu_ps(m + i, k, mi);
        _mm512_mask_storeu_ps(v + i, k, vi);
        _mm512_mask_storeu_ps(p + i, k, pi);
    }
}
#endif

void lmc_cpu_adamw(lmc_backend *be, float *p, const float *g, float *m, float *v, size_t n,
                   const lmc_adamw_hp *hp)
{
#if defined(__x86_64__)
    if (cpu_of(be)->isa == LMC_ISA_AVX512) {
        size_t blk = 4096, nb = (n + blk - 1) / blk;
#pragma omp parallel for num_threads(be->threads) schedule(static)
        for (size_t b = 0; b < nb; b++)
            adamw_avx512(p, g, m, v, b * blk, b * blk + blk < n ? b * blk + blk : n, hp);
        return;
    }
#endif
    float lr = hp->lr, b1 = hp->beta1, b2 = hp->beta2, eps = hp->eps, gs = hp->grad_scale;
    float decay = 1.0f - lr * hp->weight_decay;
    float step = lr / hp->bias_corr1, bc2 = sqrtf(hp->bias_corr2);
#pragma omp parallel for num_threads(be->threads) schedule(static)
    for (size_t i = 0; i < n; i++) {
        float grad = g[i] * gs;
        float mi = b1 * m[i] + (1.0f - b1) * grad;
        float vi = b2 * v[i] + (1.0f - b2) * grad * grad;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay - step * mi / (sqrtf(vi) / bc2 + eps);
    }
}
