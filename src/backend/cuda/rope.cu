/* rope.cu: rotary position embedding in place on the q and k heads of qkv
 * (Hugging Face half-rotation layout). Angles in double as the CPU computes
 * them, so long positions keep full fp32 accuracy and both agree. */
#include "backend/cuda/cuda_common.cuh"

// qkv (B,T,(NH+2NKV)*HS); one thread per (b,t,i), looping over the NH+NKV rotated heads
__global__ static void rope_kernel(float *qkv, const int *pos0, int B, int T, int NH, int NKV, int HS,
                                   float theta, int inverse)
{
    int half = HS / 2, heads = NH + NKV;
    size_t row = (size_t)(NH + 2 * NKV) * HS, total = (size_t)B * T * half;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < total;
         idx += (size_t)gridDim.x * blockDim.x) {
        int i = (int)(idx % half);
        size_t bt = idx / half;
        int b = (int)(bt / T), t = (int)(bt % T);
        double pos = (double)((pos0 ? pos0[b] : 0) + t);
        double ang = pos * pow((double)theta, -2.0 * i / HS);
        float c = (float)cos(ang), s = (float)sin(ang);
        if (inverse)
            s = -s;
        float *x = qkv + bt * row;
        for (int h = 0; h < heads; h++) {
            float *v = x + (size_t)h * HS;
            float x1 = v[i], x2 = v[i + half];
            v[i] = x1 * c - x2 * s;
            v[i + half] = x2 * c + x1 * s;
        }
    }
}

void cu_rope(lmc_backend *be, float *qkv, const int *pos0, int B, int T, int NH, int NKV, int HS, float theta,
             int inverse)
{
    cu_enter(be, LMC_OP_rope);
    size_t total = (size_t)B * T * (HS / 2);
    if (!total)
        return;
    CU_LAUNCH(rope_kernel, cu_grid(total, 256), 256, 0, cu_of(be)->stream, qkv, pos0, B, T, NH, NKV, HS, theta,
              inverse);
    cu_launched(be, "rope");
}
