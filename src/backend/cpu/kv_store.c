/* kv_store.c: writes new key and value rows into a KV cache at each
 * sequence's own position (decode appends one row per sequence; prefill
 * writes a whole prompt). */
#include "backend/cpu/cpu.h"

#include <string.h>

void lmc_cpu_kv_store(lmc_backend *be, float *kcache, float *vcache, const float *k, const float *v,
                      size_t stride, const int *pos0, int B, int T, int maxT, int D)
{
#pragma omp parallel for num_threads(be->threads) schedule(static) if (B * T > 16)
    for (int bt = 0; bt < B * T; bt++) {
        int b = bt / T, t = bt % T;
        size_t dst = ((size_t)b * maxT + (size_t)(pos0[b] + t)) * D;
        memcpy(kcache + dst, k + (size_t)bt * stride, (size_t)D * sizeof(float));
        memcpy(vcache + dst, v + (size_t)bt * stride, (size_t)D * sizeof(float));
    }
}
