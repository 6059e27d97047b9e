/* activation.c: GELU (tanh form: aclnnGeluV2 approximate 1,
 * aclnnGeluBackwardV2 "tanh") and SwiGLU (aclnnSwiGlu, aclnnSwiGluGrad:
 * swish of the first half of the last dim times the second half, the
 * table's [gate | up]).
 *
 * The table lets outputs alias inputs (gelu in place; dinp = dout); the
 * aclnn pages do not say an output may alias an input, so aliased calls
 * write scratch and copy back. */
#include "backend/ascend/npu.h"

static char tanh_mode[] = "tanh";

/* dst, or scratch when dst aliases src (copied to dst by finish). */
static float *target(lmc_backend *be, float *dst, const float *src, size_t n)
{
    return dst == src ? npu_tmp(be, n * sizeof(float)) : dst;
}

static void finish(lmc_backend *be, float *dst, const float *t, size_t n)
{
    npu_state *s = npu_of(be);
    if (t != dst && !s->bad)
        npu_ok(be, s->api->aclrtMemcpyAsync(dst, n * sizeof(float), t, n * sizeof(float), NPU_MEMCPY_D2D, s->stream),
               "aclrtMemcpyAsync");
}

void npu_gelu_forward(lmc_backend *be, float *out, const float *inp, size_t n)
{
    npu_enter(be, LMC_OP_gelu_forward);
    float *t = target(be, out, inp, n);
    if (!t || !n)
        return;
    NPU_RUN(be, aclnnGeluV2, npu_f1(be, inp, (int64_t)n), 1, npu_f1(be, t, (int64_t)n));
    finish(be, out, t, n);
}

void npu_gelu_backward(lmc_backend *be, float *dinp, const float *inp, const float *dout, size_t n)
{
    npu_enter(be, LMC_OP_gelu_backward);
    float *t = dinp == dout || dinp == inp ? npu_tmp(be, n * sizeof(float)) : dinp;
    if (!t || !n)
        return;
    NPU_RUN(be, aclnnGeluBackwardV2, npu_f1(be, dout, (int64_t)n), npu_f1(be, inp, (int64_t)n), tanh_mode,
            npu_f1(be, t, (int64_t)n));
    finish(be, dinp, t, n);
}

void npu_swiglu_forward(lmc_backend *be, float *out, const float *inp, int N, int H)
{
    npu_enter(be, LMC_OP_swiglu_forward);
    if (N && H)
        NPU_RUN(be, aclnnSwiGlu, npu_f2(be, inp, N, 2 * (int64_t)H), -1, npu_f2(be, out, N, H));
}

void npu_swiglu_backward(lmc_backend *be, float *dinp, const float *inp, const float *dout, int N, int H)
{
    npu_enter(be, LMC_OP_swiglu_backward);
    size_t n = (size_t)N * 2 * H;
    float *t = dinp == inp ? npu_tmp(be, n * sizeof(float)) : dinp;
    if (!t || !N || !H)
        return;
    NPU_RUN(be, aclnnSwiGluGrad, npu_f2(be, dout, N, H), npu_f2(be, inp, N, 2 * (int64_t)H), -1,
            npu_f2(be, t, N, 2 * (int64_t)H));
    finish(be, dinp, t, n);
}
