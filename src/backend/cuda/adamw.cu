/* adamw.cu: torch.optim.AdamW's update, one fused pass per tensor, with the
 * CPU backend's expression so the two agree to rounding. */
#include "backend/cuda/cuda_common.cuh"

__global__ static void adamw_kernel(float *p, const float *g, float *m, float *v, size_t n, float b1, float b2,
                                    float eps, float gs, float decay, float step, float bc2)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float grad = g[i] * gs;
        float mi = b1 * m[i] + (1.0f - b1) * grad;
        float vi = b2 * v[i] + (1.0f - b2) * grad * grad;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay - step * mi / (sqrtf(vi) / bc2 + eps);
    }
}

void cu_adamw(lmc_backend *be, float *p, const float *g, float *m, float *v, size_t n, const lmc_adamw_hp *hp)
{
    cu_enter(be, LMC_OP_adamw);
    if (!n)
        return;
    float decay = 1.0f - hp->lr * hp->weight_decay;
    float step = hp->lr / hp->bias_corr1, bc2 = sqrtf(hp->bias_corr2);
    CU_LAUNCH(adamw_kernel, cu_grid(n, 256), 256, 0, cu_of(be)->stream, p, g, m, v, n, hp->beta1, hp->beta2,
              hp->eps, hp->grad_scale, decay, step, bc2);
    cu_launched(be, "adamw");
}
