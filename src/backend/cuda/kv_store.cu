/* kv_store.cu: writes new key and value rows into a KV cache at each
 * sequence's own position (decode appends one row per sequence; prefill
 * writes a whole prompt). */
#include "backend/cuda/cuda_common.cuh"

// kcache/vcache (B,maxT,D)[pos0[b] + t] = k/v rows bt (stride floats apart)
__global__ static void kv_store_kernel(float *kcache, float *vcache, const float *k, const float *v, size_t stride,
                                       const int *pos0, int B, int T, int maxT, int D)
{
    size_t total = (size_t)B * T * D;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t bt = i / (size_t)D;
        int d = (int)(i % (size_t)D), b = (int)(bt / T), t = (int)(bt % T);
        size_t dst = ((size_t)b * maxT + (size_t)(pos0[b] + t)) * D + d;
        kcache[dst] = k[bt * stride + d];
        vcache[dst] = v[bt * stride + d];
    }
}

void cu_kv_store(lmc_backend *be, float *kcache, float *vcache, const float *k, const float *v, size_t stride,
                 const int *pos0, int B, int T, int maxT, int D)
{
    cu_enter(be, LMC_OP_kv_store);
    size_t total = (size_t)B * T * D;
    if (B <= 0 || T <= 0 || D <= 0)
        return;
    CU_LAUNCH(kv_store_kernel, cu_grid(total, 256), 256, 0, cu_of(be)->stream, kcache, vcache, k, v, stride, pos0,
              B, T, maxT, D);
    cu_launched(be, "kv_store");
}
