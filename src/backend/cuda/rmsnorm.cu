/* rmsnorm.cu: RMSNorm forward and backward over rows of C (Llama). One warp
 * per row for the row-wise parts; dw through the deterministic column sums. */
#include "backend/cuda/colsum.cuh"

#define ROWS_PER_BLOCK 8

// out (N,C) = inp * rstd * w, rstd = 1/sqrt(mean(inp^2) + eps)
__global__ static void rms_fwd_kernel(float *out, float *rstd, const float *inp, const float *w, int N, int C,
                                      float eps)
{
    int lane = threadIdx.x & 31, row = blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= N)
        return;
    const float *x = inp + (size_t)row * C;
    float *o = out + (size_t)row * C;
    float ss = 0.0f;
    for (int i = lane; i < C; i += 32)
        ss += x[i] * x[i];
    float s = 1.0f / sqrtf(cu_warp_sum(ss) / C + eps);
    for (int i = lane; i < C; i += 32)
        o[i] = x[i] * s * w[i];
    if (lane == 0 && rstd)
        rstd[row] = s;
}

// dinp (N,C) += (w*d - n * mean(w*d*n)) * rstd, n = x * rstd
__global__ static void rms_bwd_dinp_kernel(float *dinp, const float *dout, const float *inp, const float *w,
                                           const float *rstd, int N, int C)
{
    int lane = threadIdx.x & 31, row = blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= N)
        return;
    const float *x = inp + (size_t)row * C, *d = dout + (size_t)row * C;
    float s = rstd[row], dot = 0.0f;
    for (int i = lane; i < C; i += 32)
        dot += w[i] * d[i] * x[i] * s;
    dot = cu_warp_sum(dot) / C;
    float *di = dinp + (size_t)row * C;
    for (int i = lane; i < C; i += 32)
        di[i] += (w[i] * d[i] - x[i] * s * dot) * s;
}

struct rms_wgrad {
    const float *x, *d, *rstd;
    int C;
    __device__ void operator()(int r, int col, float *v) const
    {
        size_t i = (size_t)r * C + col;
        v[0] = x[i] * rstd[r] * d[i];
    }
};

void cu_rmsnorm_forward(lmc_backend *be, float *out, float *rstd, const float *inp, const float *w, int N, int C,
                        float eps)
{
    cu_enter(be, LMC_OP_rmsnorm_forward);
    if (N <= 0 || C <= 0)
        return;
    unsigned grid = (unsigned)((N + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
    CU_LAUNCH(rms_fwd_kernel, grid, 32 * ROWS_PER_BLOCK, 0, cu_of(be)->stream, out, rstd, inp, w, N, C, eps);
    cu_launched(be, "rmsnorm_forward");
}

// dinp +=, dw +=
void cu_rmsnorm_backward(lmc_backend *be, float *dinp, float *dw, const float *dout, const float *inp,
                         const float *w, const float *rstd, int N, int C)
{
    cu_enter(be, LMC_OP_rmsnorm_backward);
    if (N <= 0 || C <= 0)
        return;
    unsigned grid = (unsigned)((N + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
    CU_LAUNCH(rms_bwd_dinp_kernel, grid, 32 * ROWS_PER_BLOCK, 0, cu_of(be)->stream, dinp, dout, inp, w, rstd, N,
              C);
    if (!cu_launched(be, "rmsnorm_backward"))
        return;
    rms_wgrad f = {inp, dout, rstd, C};
    cu_colsum<1>(be, dw, (float *)NULL, f, N, C, "rmsnorm_backward dw");
}
