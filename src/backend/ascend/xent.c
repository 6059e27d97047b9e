/* xent.c: softmax cross-entropy over the first V of Vp columns
 * (aclnnLogSoftmax, aclnnGather, aclnnExp, aclnnInplaceScatterValue).
 *
 * losses = -log_softmax(logits)[target]; backward overwrites the logits by
 * dloss * (softmax - onehot): exp of the log-softmax, minus 1 at the
 * target (a scatter with reduce = add), scaled, copied into the strided
 * (N, V) view of the logits, and the padded columns V..Vp zeroed. */
#include "backend/ascend/npu.h"

void npu_xent(lmc_backend *be, float *losses, float *logits, const int *targets, int N, int V, int Vp, float dloss,
              int backward)
{
    npu_enter(be, LMC_OP_xent);
    float *lp = npu_tmp(be, (size_t)N * V * sizeof(float)), *g = npu_tmp(be, (size_t)N * sizeof(float));
    if (!lp || !g || !N || !V)
        return;
    int64_t nv[2] = {N, V}, row[2] = {Vp, 1}, n1[2] = {N, 1};
    NPU_RUN(be, aclnnLogSoftmax, npu_tensor(be, logits, NPU_ACL_FLOAT, 2, nv, row), 1, npu_f2(be, lp, N, V));
    NPU_RUN(be, aclnnGather, npu_f2(be, lp, N, V), 1, npu_tensor(be, targets, NPU_ACL_INT32, 2, n1, NULL),
            npu_f2(be, g, N, 1));
    NPU_RUN(be, aclnnMuls, npu_f2(be, g, N, 1), npu_scalar_f(be, -1.0f), npu_f2(be, losses, N, 1));
    if (!backward)
        return;
    float *e = npu_tmp(be, (size_t)N * V * sizeof(float));
    if (!e)
        return;
    NPU_RUN(be, aclnnExp, npu_f2(be, lp, N, V), npu_f2(be, e, N, V));
    NPU_RUN(be, aclnnInplaceScatterValue, npu_f2(be, e, N, V), 1, npu_tensor(be, targets, NPU_ACL_INT32, 2, n1, NULL),
            npu_scalar_f(be, -1.0f), 1);
    NPU_RUN(be, aclnnInplaceMuls, npu_f2(be, e, N, V), npu_scalar_f(be, dloss));
    NPU_RUN(be, aclnnInplaceCopy, npu_tensor(be, logits, NPU_ACL_FLOAT, 2, nv, row), npu_f2(be, e, N, V));
    if (Vp > V) {
        int64_t pad[2] = {N, Vp - V};
        NPU_RUN(be, aclnnInplaceZero, npu_tensor(be, logits + V, NPU_ACL_FLOAT, 2, pad, row));
    }
}
