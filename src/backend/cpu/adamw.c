/* adamw.c: torch.optim.AdamW's update, one fused pass per tensor. */
#include "backend/cpu/cpu.h"

#include <math.h>

void lmc_cpu_adamw(lmc_backend *be, float *p, const float *g, float *m, float *v, size_t n,
                   const lmc_adamw_hp *hp)
{
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
