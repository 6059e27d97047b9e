/* rope.c: rotary embedding (aclnnRotaryPositionEmbedding, mode 0 = half:
 * y = x * cos + rotate_half(x) * sin, Hugging Face's layout).
 *
 * cos and sin come from tables of NPU_ROPE_MAXPOS positions computed on the
 * host in double (as lmc's CPU backend computes its angles: an fp32 angle
 * at position 2000 would already be off by 1e-4), uploaded once per head
 * size and theta, and gathered on the device by position (aclnnEmbedding),
 * since positions pos0[b] + t live in device memory. The q and k heads are
 * strided views of qkv; the op writes a contiguous result (its out must
 * be), copied back with aclnnInplaceCopy. */
#include "backend/ascend/npu.h"

#include <math.h>
#include <stdlib.h>

/* device int32 (B, T): pos0[b] + t, or t without pos0 */
int32_t *npu_positions(lmc_backend *be, const int *pos0, int B, int T)
{
    int32_t *ar = npu_tmp(be, (size_t)T * 4), *pos = npu_tmp(be, (size_t)B * T * 4);
    if (!ar || !pos)
        return NULL;
    int64_t t = T, bt[2] = {B, T}, one_t[2] = {1, T}, b1[2] = {B, 1}, bcast[2] = {0, 1};
    NPU_RUN(be, aclnnArange, npu_scalar_i(be, 0), npu_scalar_i(be, T), npu_scalar_i(be, 1),
            npu_tensor(be, ar, NPU_ACL_INT32, 1, &t, NULL));
    if (pos0)
        NPU_RUN(be, aclnnAdd, npu_tensor(be, pos0, NPU_ACL_INT32, 2, b1, NULL),
                npu_tensor(be, ar, NPU_ACL_INT32, 2, one_t, NULL), npu_scalar_i(be, 1),
                npu_tensor(be, pos, NPU_ACL_INT32, 2, bt, NULL));
    else /* broadcast the row: a view with row stride 0 */
        NPU_RUN(be, aclnnMuls, npu_tensor(be, ar, NPU_ACL_INT32, 2, bt, bcast), npu_scalar_i(be, 1),
                npu_tensor(be, pos, NPU_ACL_INT32, 2, bt, NULL));
    return npu_of(be)->bad ? NULL : pos;
}

/* The cos and sin tables for this head size and theta. */
static int tables(lmc_backend *be, int HS, float theta)
{
    npu_state *s = npu_of(be);
    if (s->rope_cos && s->rope_hs == HS && s->rope_theta == theta)
        return 1;
    size_t n = (size_t)NPU_ROPE_MAXPOS * HS, bytes = n * sizeof(float);
    float *c = malloc(bytes), *sn = malloc(bytes);
    int ok = c && sn && npu_drain(be, "rope tables: sync");
    for (size_t p = 0; ok && p < NPU_ROPE_MAXPOS; p++)
        for (int i = 0; i < HS / 2; i++) {
            double ang = (double)p * pow((double)theta, -2.0 * i / HS);
            c[p * HS + i] = c[p * HS + i + HS / 2] = (float)cos(ang);
            sn[p * HS + i] = sn[p * HS + i + HS / 2] = (float)sin(ang);
        }
    if (ok && s->rope_cos) {
        s->api->aclrtFree(s->rope_cos);
        s->api->aclrtFree(s->rope_sin);
        s->rope_cos = s->rope_sin = NULL;
    }
    ok = ok && npu_ok(be, s->api->aclrtMalloc((void **)&s->rope_cos, bytes, NPU_MEM_MALLOC_HUGE_FIRST), "rope tables") &&
         npu_ok(be, s->api->aclrtMalloc((void **)&s->rope_sin, bytes, NPU_MEM_MALLOC_HUGE_FIRST), "rope tables") &&
         npu_ok(be, s->api->aclrtMemcpy(s->rope_cos, bytes, c, bytes, NPU_MEMCPY_H2D), "rope tables") &&
         npu_ok(be, s->api->aclrtMemcpy(s->rope_sin, bytes, sn, bytes, NPU_MEMCPY_H2D), "rope tables");
    free(c);
    free(sn);
    if (ok) {
        s->rope_hs = HS;
        s->rope_theta = theta;
    } else if (!s->bad) {
        npu_fail(be, "out of host memory for the rotary tables");
    }
    return ok;
}

/* nh heads at column offset off of each row of width W rotate. */
static void rotate(lmc_backend *be, float *qkv, int B, int T, int W, int off, int nh, int HS, const float *cos,
                   const float *sin)
{
    float *out = npu_tmp(be, (size_t)B * T * nh * HS * sizeof(float));
    if (!out || !nh)
        return;
    int64_t d[4] = {B, T, nh, HS}, st[4] = {(int64_t)T * W, W, HS, 1}, cd[4] = {B, T, 1, HS};
    NPU_RUN(be, aclnnRotaryPositionEmbedding, npu_tensor(be, qkv + off, NPU_ACL_FLOAT, 4, d, st),
            npu_tensor(be, cos, NPU_ACL_FLOAT, 4, cd, NULL), npu_tensor(be, sin, NPU_ACL_FLOAT, 4, cd, NULL), 0,
            npu_tensor(be, out, NPU_ACL_FLOAT, 4, d, NULL));
    NPU_RUN(be, aclnnInplaceCopy, npu_tensor(be, qkv + off, NPU_ACL_FLOAT, 4, d, st),
            npu_tensor(be, out, NPU_ACL_FLOAT, 4, d, NULL));
}

void npu_rope(lmc_backend *be, float *qkv, const int *pos0, int B, int T, int NH, int NKV, int HS, float theta,
              int inverse)
{
    npu_enter(be, LMC_OP_rope);
    char why[200];
    lmc_op_query q = {.op = LMC_OP_rope, .head_size = HS, .n = T};
    if (!npu_supports(be, &q, why, sizeof why)) {
        npu_fail(be, "%s", why);
        return;
    }
    if (!B || !T || !tables(be, HS, theta))
        return;
    npu_state *s = npu_of(be);
    int32_t *pos = npu_positions(be, pos0, B, T);
    float *cos = npu_tmp(be, (size_t)B * T * HS * sizeof(float)), *sin = npu_tmp(be, (size_t)B * T * HS * sizeof(float));
    if (!pos || !cos || !sin)
        return;
    int64_t bt[2] = {B, T};
    NPU_RUN(be, aclnnEmbedding, npu_f2(be, s->rope_cos, NPU_ROPE_MAXPOS, HS), npu_tensor(be, pos, NPU_ACL_INT32, 2, bt, NULL),
            npu_f3(be, cos, B, T, HS));
    NPU_RUN(be, aclnnEmbedding, npu_f2(be, s->rope_sin, NPU_ROPE_MAXPOS, HS), npu_tensor(be, pos, NPU_ACL_INT32, 2, bt, NULL),
            npu_f3(be, sin, B, T, HS));
    if (inverse)
        NPU_RUN(be, aclnnInplaceMuls, npu_f1(be, sin, (int64_t)B * T * HS), npu_scalar_f(be, -1.0f));
    int W = (NH + 2 * NKV) * HS;
    rotate(be, qkv, B, T, W, 0, NH, HS, cos, sin);
    rotate(be, qkv, B, T, W, NH * HS, NKV, HS, cos, sin);
}
