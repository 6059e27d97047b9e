/* elementwise.c: add, scale, sum, cast and bias_grad (aclnnAdd,
 * aclnnInplaceMuls, aclnnReduceSum, aclnnMul, aclnnCast). */
#include "backend/ascend/npu.h"

void npu_add(lmc_backend *be, float *out, const float *a, const float *b, size_t n)
{
    npu_enter(be, LMC_OP_add);
    if (n)
        NPU_RUN(be, aclnnAdd, npu_f1(be, a, (int64_t)n), npu_f1(be, b, (int64_t)n), npu_scalar_f(be, 1.0f),
                npu_f1(be, out, (int64_t)n));
}

void npu_scale(lmc_backend *be, float *x, float s, size_t n)
{
    npu_enter(be, LMC_OP_scale);
    if (n)
        NPU_RUN(be, aclnnInplaceMuls, npu_f1(be, x, (int64_t)n), npu_scalar_f(be, s));
}

/* out[0] = sum of x (or of x^2): the squares go through scratch. The
 * device sums in fp32 (lmc's CPU backend in double). */
void npu_sum(lmc_backend *be, float *out, const float *x, size_t n, int squares)
{
    npu_enter(be, LMC_OP_sum);
    const float *src = x;
    if (!n) {
        NPU_RUN(be, aclnnInplaceZero, npu_f1(be, out, 1));
        return;
    }
    if (squares) {
        float *sq = npu_tmp(be, n * sizeof(float));
        if (!sq)
            return;
        NPU_RUN(be, aclnnMul, npu_f1(be, x, (int64_t)n), npu_f1(be, x, (int64_t)n), npu_f1(be, sq, (int64_t)n));
        src = sq;
    }
    int64_t dim0 = 0;
    NPU_RUN(be, aclnnReduceSum, npu_f1(be, src, (int64_t)n), npu_ints(be, &dim0, 1), false, NPU_ACL_FLOAT,
            npu_tensor(be, out, NPU_ACL_FLOAT, 0, NULL, NULL));
}

void npu_cast(lmc_backend *be, void *dst, lmc_dtype dst_type, const void *src, lmc_dtype src_type, size_t n)
{
    npu_enter(be, LMC_OP_cast);
    int64_t len = (int64_t)n;
    int dt = dst_type == LMC_BF16 ? NPU_ACL_BF16 : NPU_ACL_FLOAT, st = src_type == LMC_BF16 ? NPU_ACL_BF16 : NPU_ACL_FLOAT;
    if ((dst_type != LMC_F32 && dst_type != LMC_BF16) || (src_type != LMC_F32 && src_type != LMC_BF16)) {
        npu_fail(be, "casts between fp32 and bf16 only (asked %d to %d)", (int)src_type, (int)dst_type);
        return;
    }
    if (n)
        NPU_RUN(be, aclnnCast, npu_tensor(be, src, st, 1, &len, NULL), dt, npu_tensor(be, dst, dt, 1, &len, NULL));
}

/* dbias (n) += column sums of dout (m,n) */
void npu_bias_grad(lmc_backend *be, float *dbias, const float *dout, int m, int n)
{
    npu_enter(be, LMC_OP_bias_grad);
    float *col = npu_tmp(be, (size_t)n * sizeof(float));
    if (!col || !m || !n)
        return;
    int64_t dim0 = 0;
    NPU_RUN(be, aclnnReduceSum, npu_f2(be, dout, m, n), npu_ints(be, &dim0, 1), false, NPU_ACL_FLOAT,
            npu_f1(be, col, n));
    npu_acc(be, dbias, col, (size_t)n);
}
