/* activation.cu: GELU (tanh approximation, GPT-2's gelu_new) and SwiGLU,
 * forward and backward, with the CPU backend's formulas term for term. */
#include "backend/cuda/cuda_common.cuh"

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

__device__ static inline float gelu_f(float x)
{
    return 0.5f * x * (1.0f + tanhf(GELU_K * (x + 0.044715f * x * x * x)));
}

#define GRID_STRIDE(i, n) \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

// out = gelu(inp), pre = inp (when not NULL). One kernel for gelu_forward and
// the matmul's GELU epilogue (out = inp = C), so a recomputed activation has
// the same bits as the one the matmul produced: same machine code, no chance
// of the compiler contracting the two differently.
__global__ static void gelu_kernel(float *out, float *pre, const float *inp, size_t n)
{
    GRID_STRIDE(i, n) {
        float x = inp[i];
        if (pre)
            pre[i] = x;
        out[i] = gelu_f(x);
    }
}

// dinp = gelu'(inp) * dout; dinp may alias dout (element i is read before written)
__global__ static void gelu_bwd_kernel(float *dinp, const float *inp, const float *dout, size_t n)
{
    GRID_STRIDE(i, n) {
        float x = inp[i];
        float u = GELU_K * (x + 0.044715f * x * x * x);
        float th = tanhf(u);
        float sech2 = 1.0f - th * th;
        float g = 0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = g * dout[i];
    }
}

// out (N,H) = silu(gate) * up, inp (N,2H) = [gate | up]
__global__ static void swiglu_fwd_kernel(float *out, const float *inp, int N, int H)
{
    size_t total = (size_t)N * H;
    GRID_STRIDE(i, total) {
        size_t r = i / (size_t)H, j = i % (size_t)H;
        float g = inp[r * 2 * H + j], u = inp[r * 2 * H + H + j];
        float sg = 1.0f / (1.0f + expf(-g));
        out[i] = g * sg * u;
    }
}

// dinp (N,2H) = [dgate | dup]
__global__ static void swiglu_bwd_kernel(float *dinp, const float *inp, const float *dout, int N, int H)
{
    size_t total = (size_t)N * H;
    GRID_STRIDE(i, total) {
        size_t r = i / (size_t)H, j = i % (size_t)H;
        float g = inp[r * 2 * H + j], u = inp[r * 2 * H + H + j], d = dout[i];
        float sg = 1.0f / (1.0f + expf(-g));
        dinp[r * 2 * H + H + j] = d * g * sg;
        dinp[r * 2 * H + j] = d * u * sg * (1.0f + g * (1.0f - sg));
    }
}

void cu_gelu_forward(lmc_backend *be, float *out, const float *inp, size_t n)
{
    cu_enter(be, LMC_OP_gelu_forward);
    if (!n)
        return;
    CU_LAUNCH(gelu_kernel, cu_grid(n, 256), 256, 0, cu_of(be)->stream, out, (float *)NULL, inp, n);
    cu_launched(be, "gelu_forward");
}

void cu_gelu_inplace_keep(lmc_backend *be, float *c, float *pre, size_t n)
{
    if (!n)
        return;
    CU_LAUNCH(gelu_kernel, cu_grid(n, 256), 256, 0, cu_of(be)->stream, c, pre, c, n);
    cu_launched(be, "matmul gelu");
}

void cu_gelu_backward(lmc_backend *be, float *dinp, const float *inp, const float *dout, size_t n)
{
    cu_enter(be, LMC_OP_gelu_backward);
    if (!n)
        return;
    CU_LAUNCH(gelu_bwd_kernel, cu_grid(n, 256), 256, 0, cu_of(be)->stream, dinp, inp, dout, n);
    cu_launched(be, "gelu_backward");
}

void cu_swiglu_forward(lmc_backend *be, float *out, const float *inp, int N, int H)
{
    cu_enter(be, LMC_OP_swiglu_forward);
    if (N <= 0 || H <= 0)
        return;
    CU_LAUNCH(swiglu_fwd_kernel, cu_grid((size_t)N * H, 256), 256, 0, cu_of(be)->stream, out, inp, N, H);
    cu_launched(be, "swiglu_forward");
}

void cu_swiglu_backward(lmc_backend *be, float *dinp, const float *inp, const float *dout, int N, int H)
{
    cu_enter(be, LMC_OP_swiglu_backward);
    if (N <= 0 || H <= 0)
        return;
    CU_LAUNCH(swiglu_bwd_kernel, cu_grid((size_t)N * H, 256), 256, 0, cu_of(be)->stream, dinp, inp, dout, N, H);
    cu_launched(be, "swiglu_backward");
}
