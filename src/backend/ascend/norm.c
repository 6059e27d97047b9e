/* norm.c: layernorm and rmsnorm forward and backward (aclnnLayerNorm,
 * aclnnLayerNormBackward, aclnnRmsNorm, aclnnRmsNormGrad) over the last
 * dim C of N rows.
 *
 * Contract differences adapted here: the statistics the aclnn ops write
 * are (N, 1) (the normalised dim kept as 1), the same memory as lmc's (N);
 * the backward ops overwrite their gradients and the table accumulates, so
 * they write scratch that aclnnInplaceAdd adds. */
#include "backend/ascend/npu.h"

void npu_layernorm_forward(lmc_backend *be, float *out, float *mean, float *rstd, const float *inp, const float *w,
                           const float *b, int N, int C, float eps)
{
    npu_enter(be, LMC_OP_layernorm_forward);
    int64_t c = C;
    if (!N)
        return;
    NPU_RUN(be, aclnnLayerNorm, npu_f2(be, inp, N, C), npu_ints(be, &c, 1), npu_f1(be, w, C),
            b ? npu_f1(be, b, C) : NULL, (double)eps, npu_f2(be, out, N, C), mean ? npu_f2(be, mean, N, 1) : NULL,
            rstd ? npu_f2(be, rstd, N, 1) : NULL);
}

void npu_layernorm_backward(lmc_backend *be, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                            const float *w, const float *mean, const float *rstd, int N, int C)
{
    npu_enter(be, LMC_OP_layernorm_backward);
    size_t n = (size_t)N * C;
    float *gi = npu_tmp(be, n * sizeof(float)), *gw = npu_tmp(be, (size_t)C * sizeof(float));
    float *gb = db ? npu_tmp(be, (size_t)C * sizeof(float)) : NULL;
    if (!gi || !gw || (db && !gb) || !N)
        return;
    int64_t c = C;
    bool mask[3] = {true, true, db != NULL};
    NPU_RUN(be, aclnnLayerNormBackward, npu_f2(be, dout, N, C), npu_f2(be, inp, N, C), npu_ints(be, &c, 1),
            npu_f2(be, mean, N, 1), npu_f2(be, rstd, N, 1), npu_f1(be, w, C), NULL, npu_bools(be, mask, 3),
            npu_f2(be, gi, N, C), npu_f1(be, gw, C), db ? npu_f1(be, gb, C) : NULL);
    npu_acc(be, dinp, gi, n);
    npu_acc(be, dw, gw, (size_t)C);
    if (db)
        npu_acc(be, db, gb, (size_t)C);
}

void npu_rmsnorm_forward(lmc_backend *be, float *out, float *rstd, const float *inp, const float *w, int N, int C,
                         float eps)
{
    npu_enter(be, LMC_OP_rmsnorm_forward);
    float *r = rstd ? rstd : npu_tmp(be, (size_t)N * sizeof(float)); /* aclnnRmsNorm always writes rstd */
    if (!r || !N)
        return;
    NPU_RUN(be, aclnnRmsNorm, npu_f2(be, inp, N, C), npu_f1(be, w, C), (double)eps, npu_f2(be, out, N, C),
            npu_f2(be, r, N, 1));
}

void npu_rmsnorm_backward(lmc_backend *be, float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                          const float *rstd, int N, int C)
{
    npu_enter(be, LMC_OP_rmsnorm_backward);
    size_t n = (size_t)N * C;
    float *gi = npu_tmp(be, n * sizeof(float)), *gw = npu_tmp(be, (size_t)C * sizeof(float));
    if (!gi || !gw || !N)
        return;
    /* aclnnRmsNormGrad: rstd is x's shape without the normalised dim */
    NPU_RUN(be, aclnnRmsNormGrad, npu_f2(be, dout, N, C), npu_f2(be, inp, N, C), npu_f1(be, rstd, N), npu_f1(be, w, C),
            npu_f2(be, gi, N, C), npu_f1(be, gw, C));
    npu_acc(be, dinp, gi, n);
    npu_acc(be, dw, gw, (size_t)C);
}
