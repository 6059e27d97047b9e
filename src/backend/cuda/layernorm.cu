/* layernorm.cu: LayerNorm forward and backward over rows of C. One warp per
 * row for the row-wise parts; dw/db through the deterministic column sums. */
#include "backend/cuda/colsum.cuh"

#define ROWS_PER_BLOCK 8 /* warps per block, one row each */

// out (N,C) = (inp - mean) * rstd * w + b; mean, rstd (N) saved when not NULL
__global__ static void ln_fwd_kernel(float *out, float *mean, float *rstd, const float *inp, const float *w,
                                     const float *b, int N, int C, float eps)
{
    int lane = threadIdx.x & 31, row = blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= N)
        return; /* whole warps leave together: no block barrier below */
    const float *x = inp + (size_t)row * C;
    float *o = out + (size_t)row * C;
    float s = 0.0f;
    for (int i = lane; i < C; i += 32)
        s += x[i];
    float m = cu_warp_sum(s) / C;
    float v = 0.0f;
    for (int i = lane; i < C; i += 32)
        v += (x[i] - m) * (x[i] - m);
    v = cu_warp_sum(v) / C;
    float rs = 1.0f / sqrtf(v + eps);
    for (int i = lane; i < C; i += 32)
        o[i] = (x[i] - m) * rs * w[i] + (b ? b[i] : 0.0f);
    if (lane == 0) {
        if (mean)
            mean[row] = m;
        if (rstd)
            rstd[row] = rs;
    }
}

// dinp (N,C) += (w*d - mean(w*d) - n * mean(w*d*n)) * rstd, n = (x - mean) * rstd
__global__ static void ln_bwd_dinp_kernel(float *dinp, const float *dout, const float *inp, const float *w,
                                          const float *mean, const float *rstd, int N, int C)
{
    int lane = threadIdx.x & 31, row = blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= N)
        return;
    const float *x = inp + (size_t)row * C, *d = dout + (size_t)row * C;
    float m = mean[row], s = rstd[row], dm = 0.0f, dnm = 0.0f;
    for (int i = lane; i < C; i += 32) {
        float dn = w[i] * d[i];
        dm += dn;
        dnm += dn * (x[i] - m) * s;
    }
    dm = cu_warp_sum(dm) / C;
    dnm = cu_warp_sum(dnm) / C;
    float *di = dinp + (size_t)row * C;
    for (int i = lane; i < C; i += 32) {
        float n = (x[i] - m) * s;
        di[i] += (w[i] * d[i] - dm - n * dnm) * s;
    }
}

struct ln_wgrad {
    const float *x, *d, *mean, *rstd;
    int C;
    __device__ void operator()(int r, int col, float *v) const
    {
        size_t i = (size_t)r * C + col;
        v[0] = (x[i] - mean[r]) * rstd[r] * d[i];
        v[1] = d[i];
    }
};

void cu_layernorm_forward(lmc_backend *be, float *out, float *mean, float *rstd, const float *inp, const float *w,
                          const float *b, int N, int C, float eps)
{
    cu_enter(be, LMC_OP_layernorm_forward);
    if (N <= 0 || C <= 0)
        return;
    unsigned grid = (unsigned)((N + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
    CU_LAUNCH(ln_fwd_kernel, grid, 32 * ROWS_PER_BLOCK, 0, cu_of(be)->stream, out, mean, rstd, inp, w, b, N, C,
              eps);
    cu_launched(be, "layernorm_forward");
}

// dinp +=, dw +=, db += (if not NULL)
void cu_layernorm_backward(lmc_backend *be, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                           const float *w, const float *mean, const float *rstd, int N, int C)
{
    cu_enter(be, LMC_OP_layernorm_backward);
    if (N <= 0 || C <= 0)
        return;
    unsigned grid = (unsigned)((N + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
    CU_LAUNCH(ln_bwd_dinp_kernel, grid, 32 * ROWS_PER_BLOCK, 0, cu_of(be)->stream, dinp, dout, inp, w, mean, rstd,
              N, C);
    if (!cu_launched(be, "layernorm_backward"))
        return;
    ln_wgrad f = {inp, dout, mean, rstd, C};
    cu_colsum<2>(be, dw, db, f, N, C, "layernorm_backward dw");
}
