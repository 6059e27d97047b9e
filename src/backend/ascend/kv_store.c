/* kv_store.c: new keys and values into a KV cache (aclnnInplaceIndexCopy
 * of rows b * maxT + pos0[b] + t of the cache seen as (B * maxT, D), the
 * row numbers made on the device since pos0 lives there). k and v are
 * strided rows of a fused buffer: copied contiguous first (the page does
 * not promise strided sources). */
#include "backend/ascend/npu.h"

/* device int32 (B*T): b * maxT + pos0[b] + t */
static int32_t *rows(lmc_backend *be, const int *pos0, int B, int T, int maxT)
{
    int32_t *pos = npu_positions(be, pos0, B, T), *base = npu_tmp(be, (size_t)B * 4), *idx = npu_tmp(be, (size_t)B * T * 4);
    if (!pos || !base || !idx)
        return NULL;
    int64_t b = B, b1[2] = {B, 1}, bt[2] = {B, T};
    NPU_RUN(be, aclnnArange, npu_scalar_i(be, 0), npu_scalar_i(be, (int64_t)B * maxT), npu_scalar_i(be, maxT),
            npu_tensor(be, base, NPU_ACL_INT32, 1, &b, NULL));
    NPU_RUN(be, aclnnAdd, npu_tensor(be, pos, NPU_ACL_INT32, 2, bt, NULL), npu_tensor(be, base, NPU_ACL_INT32, 2, b1, NULL),
            npu_scalar_i(be, 1), npu_tensor(be, idx, NPU_ACL_INT32, 2, bt, NULL));
    return npu_of(be)->bad ? NULL : idx;
}

static void store(lmc_backend *be, float *cache, const float *src, size_t stride, const int32_t *idx, int B, int T,
                  int maxT, int D, float *tmp)
{
    int64_t n = (int64_t)B * T, d[2] = {n, D}, st[2] = {(int64_t)stride, 1};
    NPU_RUN(be, aclnnInplaceCopy, npu_f2(be, tmp, n, D), npu_tensor(be, src, NPU_ACL_FLOAT, 2, d, st));
    NPU_RUN(be, aclnnInplaceIndexCopy, npu_f2(be, cache, (int64_t)B * maxT, D), 0,
            npu_tensor(be, idx, NPU_ACL_INT32, 1, &n, NULL), npu_f2(be, tmp, n, D));
}

void npu_kv_store(lmc_backend *be, float *kcache, float *vcache, const float *k, const float *v, size_t stride,
                  const int *pos0, int B, int T, int maxT, int D)
{
    npu_enter(be, LMC_OP_kv_store);
    if (!B || !T || !D)
        return;
    int32_t *idx = rows(be, pos0, B, T, maxT);
    float *tk = npu_tmp(be, (size_t)B * T * D * sizeof(float)), *tv = npu_tmp(be, (size_t)B * T * D * sizeof(float));
    if (!idx || !tk || !tv)
        return;
    store(be, kcache, k, stride, idx, B, T, maxT, D, tk);
    store(be, vcache, v, stride, idx, B, T, maxT, D, tv);
}
