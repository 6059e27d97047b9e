/* embed.c: token and position embeddings (aclnnEmbedding, aclnnIndexAdd).
 *
 * The table's embed ops do not pass the vocabulary; aclnn's need the
 * table's shape. The rows counted are those from the table's start to the
 * end of the alloc() block holding it: at least the vocabulary, and every
 * id is in range (callers check ids). Backward adds dout's rows at the ids
 * with aclnnIndexAdd (deterministic under ACL_OPT_DETERMINISTIC), out =
 * self: the page does not say whether out may be self; if hardware
 * refuses, this is the place to change.
 *
 * Negative ids (a vocabulary-parallel embedding's rows held elsewhere)
 * read as zeros and get no gradient, as the table says, though this
 * backend has no xent_part: aclnnEmbedding refuses negative indices, so
 * they become row 0 and a 0/1 validity factor scales what they read and
 * what they add. */
#include "backend/ascend/npu.h"

typedef struct {
    int32_t *ids;   /* (N) ids >= 0: the negative ones made 0 */
    float *valid;   /* (N) 1 for an id >= 0, else 0 */
} clamped;

static int clamp_ids(lmc_backend *be, const int *tokens, int64_t N, clamped *c)
{
    int32_t *v32 = npu_tmp(be, (size_t)N * 4);
    c->ids = npu_tmp(be, (size_t)N * 4);
    c->valid = npu_tmp(be, (size_t)N * 4);
    if (!v32 || !c->ids || !c->valid)
        return 0;
    int64_t one = 1;
    acl_tensor *zero = npu_tensor(be, (const int32_t *)npu_of(be)->one + 1, NPU_ACL_INT32, 1, &one, NULL);
    NPU_RUN(be, aclnnGeTensor, npu_tensor(be, tokens, NPU_ACL_INT32, 1, &N, NULL), zero,
            npu_tensor(be, v32, NPU_ACL_INT32, 1, &N, NULL));
    NPU_RUN(be, aclnnMul, npu_tensor(be, tokens, NPU_ACL_INT32, 1, &N, NULL),
            npu_tensor(be, v32, NPU_ACL_INT32, 1, &N, NULL), npu_tensor(be, c->ids, NPU_ACL_INT32, 1, &N, NULL));
    NPU_RUN(be, aclnnCast, npu_tensor(be, v32, NPU_ACL_INT32, 1, &N, NULL), NPU_ACL_FLOAT, npu_f1(be, c->valid, N));
    return !npu_of(be)->bad;
}

static int64_t rows_of(lmc_backend *be, const float *table, int C, const char *what)
{
    size_t rest = npu_block_rest(be, table);
    if (rest < (size_t)C * sizeof(float))
        npu_fail(be, "%s is not inside a block this backend allocated", what);
    return (int64_t)(rest / ((size_t)C * sizeof(float)));
}

void npu_embed_forward(lmc_backend *be, float *out, const int *tokens, const int *pos0, const float *wte,
                       const float *wpe, int B, int T, int C)
{
    npu_enter(be, LMC_OP_embed_forward);
    int64_t V = rows_of(be, wte, C, "wte"), bt[2] = {B, T}, N = (int64_t)B * T;
    clamped c;
    if (npu_of(be)->bad || !B || !T || !clamp_ids(be, tokens, N, &c))
        return;
    NPU_RUN(be, aclnnEmbedding, npu_f2(be, wte, V, C), npu_tensor(be, c.ids, NPU_ACL_INT32, 2, bt, NULL),
            npu_f3(be, out, B, T, C));
    NPU_RUN(be, aclnnInplaceMul, npu_f2(be, out, N, C), npu_f2(be, c.valid, N, 1));
    if (!wpe)
        return;
    int64_t P = rows_of(be, wpe, C, "wpe");
    int32_t *pos = npu_positions(be, pos0, B, T);
    float *pe = npu_tmp(be, (size_t)B * T * C * sizeof(float));
    if (!pos || !pe)
        return;
    NPU_RUN(be, aclnnEmbedding, npu_f2(be, wpe, P, C), npu_tensor(be, pos, NPU_ACL_INT32, 2, bt, NULL),
            npu_f3(be, pe, B, T, C));
    npu_acc(be, out, pe, (size_t)B * T * C);
}

void npu_embed_backward(lmc_backend *be, float *dwte, float *dwpe, const float *dout, const int *tokens, int B, int T,
                        int C)
{
    npu_enter(be, LMC_OP_embed_backward);
    int64_t V = rows_of(be, dwte, C, "dwte"), N = (int64_t)B * T;
    clamped c;
    float *src = npu_tmp(be, (size_t)N * C * sizeof(float));
    if (npu_of(be)->bad || !N || !src || !clamp_ids(be, tokens, N, &c))
        return;
    NPU_RUN(be, aclnnMul, npu_f2(be, dout, N, C), npu_f2(be, c.valid, N, 1), npu_f2(be, src, N, C));
    NPU_RUN(be, aclnnIndexAdd, npu_f2(be, dwte, V, C), 0, npu_tensor(be, c.ids, NPU_ACL_INT32, 1, &N, NULL),
            npu_f2(be, src, N, C), npu_scalar_f(be, 1.0f), npu_f2(be, dwte, V, C));
    if (!dwpe)
        return;
    float *col = npu_tmp(be, (size_t)T * C * sizeof(float));
    if (!col)
        return;
    int64_t dim0 = 0;
    NPU_RUN(be, aclnnReduceSum, npu_f2(be, dout, B, (int64_t)T * C), npu_ints(be, &dim0, 1), false, NPU_ACL_FLOAT,
            npu_f1(be, col, (int64_t)T * C));
    npu_acc(be, dwpe, col, (size_t)T * C);
}
