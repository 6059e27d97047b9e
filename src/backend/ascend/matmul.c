/* matmul.c: the table's gemm (transposes, bf16 inputs, accumulate, bias,
 * GELU epilogue) and the inference linear layer, on aclnnMatmul.
 *
 * Transposes are strided views (aclnnMatmul takes non-contiguous inputs).
 * aclnnMatmul overwrites its output, so "+=" goes through scratch and
 * aclnnInplaceAdd; the bias is a broadcast aclnnInplaceAdd; the GELU
 * epilogue is aclnnGeluV2 (tanh) from the pre-activation, the same call
 * gelu_forward makes, so recomputed activations have the same bits.
 * prec bf16: the inputs are rounded to bf16 (aclnnCast there and back) and
 * multiplied in fp32 (cubeMathType KEEP_DTYPE): exactly the table's "bf16
 * inputs, fp32 accumulation". A bf16 cube path (bf16 inputs, fp32 output)
 * would be faster; whether aclnnMatmul accepts that type pair is not
 * documented clearly, so it waits for hardware. */
#include "backend/ascend/npu.h"

#include <stdint.h>

/* A (rows, cols) view of a row-major matrix stored (rows, cols), or of its
 * transpose stored (cols, rows). */
static acl_tensor *view(lmc_backend *be, const float *p, int64_t rows, int64_t cols, int trans)
{
    int64_t d[2] = {rows, cols}, st[2] = {trans ? 1 : cols, trans ? rows : 1};
    return npu_tensor(be, p, NPU_ACL_FLOAT, 2, d, st);
}

/* A contiguous fp32 (rows, cols) copy of the view, rounded through bf16. */
static float *round_bf16(lmc_backend *be, const float *p, int64_t rows, int64_t cols, int trans)
{
    size_t n = (size_t)(rows * cols);
    uint16_t *h = npu_tmp(be, n * 2);
    float *f = npu_tmp(be, n * sizeof(float));
    if (!h || !f)
        return NULL;
    int64_t d[2] = {rows, cols};
    NPU_RUN(be, aclnnCast, view(be, p, rows, cols, trans), NPU_ACL_BF16, npu_tensor(be, h, NPU_ACL_BF16, 2, d, NULL));
    NPU_RUN(be, aclnnCast, npu_tensor(be, h, NPU_ACL_BF16, 2, d, NULL), NPU_ACL_FLOAT, npu_f2(be, f, rows, cols));
    return f;
}

static void add_bias(lmc_backend *be, float *c, const float *bias, int m, int n)
{
    if (bias)
        NPU_RUN(be, aclnnInplaceAdd, npu_f2(be, c, m, n), npu_f2(be, bias, 1, n), npu_scalar_f(be, 1.0f));
}

/* out (m,n) = op(A) . op(B) */
static void product(lmc_backend *be, float *out, const float *a, const float *b, const lmc_gemm *g)
{
    const float *pa = a, *pb = b;
    int ta = g->trans_a, tb = g->trans_b;
    if (g->prec == LMC_BF16) {
        pa = round_bf16(be, a, g->m, g->k, ta);
        pb = round_bf16(be, b, g->k, g->n, tb);
        ta = tb = 0;
        if (!pa || !pb)
            return;
    }
    NPU_RUN(be, aclnnMatmul, view(be, pa, g->m, g->k, ta), view(be, pb, g->k, g->n, tb), npu_f2(be, out, g->m, g->n),
            NPU_CUBE_KEEP_DTYPE);
}

void npu_matmul(lmc_backend *be, float *c, const float *a, const float *b, const lmc_gemm *g)
{
    npu_enter(be, LMC_OP_matmul);
    size_t mn = (size_t)g->m * g->n;
    if (g->prec != LMC_F32 && g->prec != LMC_BF16) {
        npu_fail(be, "precision %d is not supported (fp32, bf16)", (int)g->prec);
        return;
    }
    if (!mn)
        return;
    if (g->k == 0) { /* an empty sum: aclnnMatmul's K must be positive */
        if (!g->accumulate)
            NPU_RUN(be, aclnnInplaceMuls, npu_f1(be, c, (int64_t)mn), npu_scalar_f(be, 0.0f));
        add_bias(be, c, g->bias, g->m, g->n);
        return;
    }
    if (g->gelu) { /* pre-activation in pre (or scratch), then GELU into c */
        float *pre = g->pre ? g->pre : npu_tmp(be, mn * sizeof(float));
        if (!pre)
            return;
        product(be, pre, a, b, g);
        add_bias(be, pre, g->bias, g->m, g->n);
        NPU_RUN(be, aclnnGeluV2, npu_f1(be, pre, (int64_t)mn), 1, npu_f1(be, c, (int64_t)mn));
        return;
    }
    if (!g->accumulate) {
        product(be, c, a, b, g);
        add_bias(be, c, g->bias, g->m, g->n);
        return;
    }
    float *t = npu_tmp(be, mn * sizeof(float));
    if (!t)
        return;
    product(be, t, a, b, g);
    add_bias(be, t, g->bias, g->m, g->n);
    npu_acc(be, c, t, mn);
}

/* The weight as fp32 (N,K): as given, or converted exactly into scratch. */
static const float *weight_f32(lmc_backend *be, const void *w, lmc_dtype wtype, const float *scale, int N, int K)
{
    if (wtype == LMC_F32)
        return w;
    float *f = npu_tmp(be, (size_t)N * K * sizeof(float));
    if (!f)
        return NULL;
    int64_t d[2] = {N, K};
    NPU_RUN(be, aclnnCast, npu_tensor(be, w, wtype == LMC_BF16 ? NPU_ACL_BF16 : NPU_ACL_INT8, 2, d, NULL),
            NPU_ACL_FLOAT, npu_f2(be, f, N, K));
    if (wtype == LMC_I8)
        NPU_RUN(be, aclnnInplaceMul, npu_f2(be, f, N, K), npu_f2(be, scale, N, 1));
    return f;
}

void npu_linear(lmc_backend *be, float *out, const float *inp, const void *w, lmc_dtype wtype, const float *scale,
                const float *bias, int M, int N, int K, int accumulate)
{
    npu_enter(be, LMC_OP_linear);
    if (wtype != LMC_F32 && wtype != LMC_BF16 && wtype != LMC_I8) {
        npu_fail(be, "weight type %d is not supported (fp32, bf16, int8)", (int)wtype);
        return;
    }
    const float *wf = weight_f32(be, w, wtype, scale, N, K);
    float *t = accumulate ? npu_tmp(be, (size_t)M * N * sizeof(float)) : out;
    if (!wf || !t || !M || !N)
        return;
    NPU_RUN(be, aclnnMatmul, view(be, inp, M, K, 0), view(be, wf, K, N, 1), npu_f2(be, t, M, N),
            NPU_CUBE_KEEP_DTYPE);
    add_bias(be, t, bias, M, N);
    if (accumulate)
        npu_acc(be, out, t, (size_t)M * N);
}
