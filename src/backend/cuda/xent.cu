/* xent.cu: fused softmax + cross-entropy (+ its gradient in place).
 *
 * One block per row. Pass 1 reads the row once, each thread keeping an
 * online (max, sum of exp) with the sum in double as the CPU does; the block
 * merges them. Pass 2 (backward) overwrites the row with dloss * (softmax -
 * onehot) and zeroes the padding. No probability matrix is ever stored. */
#include "backend/cuda/cuda_common.cuh"

#define XENT_THREADS 512

// losses (N) = logsumexp(logits[r, :V]) - logits[r, target]; logits (N,Vp)
__global__ static void xent_kernel(float *losses, float *logits, const int *targets, int V, int Vp, float dloss,
                                   int backward)
{
    CU_SHARED(float, shf, [32]);
    CU_SHARED(double, shd, [32]);
    float *x = logits + (size_t)blockIdx.x * Vp;
    int t = targets[blockIdx.x];
    float xt = threadIdx.x == 0 ? x[t] : 0.0f; /* read before pass 2 overwrites it */
    float m = -INFINITY;
    double s = 0.0;
    for (int j = threadIdx.x; j < V; j += blockDim.x) {
        float v = x[j];
        if (v > m) {
            s = s * exp((double)m - (double)v) + 1.0;
            m = v;
        } else {
            s += expf(v - m);
        }
    }
    float mx = cu_block_max(m, shf);
    s = m == -INFINITY ? 0.0 : s * exp((double)m - (double)mx);
    double sum = cu_block_sum(s, shd);
    float lse = mx + (float)log(sum);
    if (threadIdx.x == 0)
        losses[blockIdx.x] = lse - xt;
    if (!backward)
        return;
    for (int j = threadIdx.x; j < Vp; j += blockDim.x) {
        float g = 0.0f;
        if (j < V) {
            g = expf(x[j] - lse) * dloss;
            if (j == t)
                g -= dloss;
        }
        x[j] = g;
    }
}

void cu_xent(lmc_backend *be, float *losses, float *logits, const int *targets, int N, int V, int Vp, float dloss,
             int backward)
{
    cu_enter(be, LMC_OP_xent);
    if (N <= 0)
        return;
    CU_LAUNCH(xent_kernel, (unsigned)N, XENT_THREADS, 0, cu_of(be)->stream, losses, logits, targets, V, Vp, dloss,
              backward);
    cu_launched(be, "xent");
}
