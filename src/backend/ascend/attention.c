/* attention.c: causal attention forward and backward through
 * aclnnFlashAttentionScore / aclnnFlashAttentionScoreGrad, and decode
 * attention against a KV cache through aclnnFlashAttentionScore with a
 * padding mask.
 *
 * q, k and v are strided BSND views of the fused qkv buffer (the ops take
 * non-contiguous tensors), GQA is the op's own (Nq a multiple of Nkv, query
 * head h reading kv head h / (Nq/Nkv), the table's rule). Causal is
 * sparseMode 2 (leftUpCausal) with the compressed 2048x2048 mask the page
 * asks for.
 *
 * Softmax statistics: the op saves max and sum per row as [B,N,S,8] (the
 * value repeated 8 times); the table saves lse (B,NH,T) = max + log(sum).
 * Forward derives lse from column 0 of both; backward hands the grad op
 * max = lse and sum = 1 (exp(s - lse) / 1 is the same softmax) as stride-0
 * views, so no [B,N,S,8] buffers live between forward and backward. */
#include "backend/ascend/npu.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>

#define MAX_HEADS 256
#define MAX_HEAD_SIZE 768
#define NO_LIMIT 2147483647

static char bsnd[] = "BSND";

int npu_attention_ok(int NH, int NKV, int HS, char *why, size_t why_len)
{
    if (HS < 1 || HS > MAX_HEAD_SIZE) {
        snprintf(why, why_len, "head size %d is not supported (supported: 1 to %d, aclnnFlashAttentionScore's D)", HS,
                 MAX_HEAD_SIZE);
        return 0;
    }
    if (NH < 1 || NH > MAX_HEADS || NKV < 1 || NH % NKV) {
        snprintf(why, why_len, "%d query heads over %d kv heads are not supported (1 to %d query heads, a whole "
                 "multiple of the kv heads)", NH, NKV, MAX_HEADS);
        return 0;
    }
    return 1;
}

static int check(lmc_backend *be, int NH, int NKV, int HS)
{
    char why[200];
    if (npu_attention_ok(NH, NKV, HS, why, sizeof why))
        return 1;
    npu_fail(be, "%s", why);
    return 0;
}

/* nh heads of qkv at head offset h0: a (B,T,nh,HS) view */
static acl_tensor *heads(lmc_backend *be, const float *qkv, int B, int T, int NH, int NKV, int HS, int h0, int nh)
{
    int64_t W = (int64_t)(NH + 2 * NKV) * HS;
    int64_t d[4] = {B, T, nh, HS}, st[4] = {T * W, W, HS, 1};
    return npu_tensor(be, qkv + (size_t)h0 * HS, NPU_ACL_FLOAT, 4, d, st);
}

static acl_tensor *bsnd_t(lmc_backend *be, const float *p, int B, int S, int N, int HS)
{
    int64_t d[4] = {B, S, N, HS};
    return npu_tensor(be, p, NPU_ACL_FLOAT, 4, d, NULL);
}

static acl_tensor *causal_mask(lmc_backend *be)
{
    int64_t d[2] = {NPU_MASK_SIDE, NPU_MASK_SIDE};
    return npu_tensor(be, npu_of(be)->causal_mask, NPU_ACL_UINT8, 2, d, NULL);
}

/* column 0 of a [B,N,S,8] statistic, as (B,N,S) */
static acl_tensor *stat0(lmc_backend *be, const float *p, int B, int N, int S)
{
    int64_t d[3] = {B, N, S}, st[3] = {(int64_t)N * S * 8, (int64_t)S * 8, 8};
    return npu_tensor(be, p, NPU_ACL_FLOAT, 3, d, st);
}

void npu_attention_forward(lmc_backend *be, float *out, float *lse, const float *qkv, int B, int T, int NH, int NKV,
                           int HS)
{
    npu_enter(be, LMC_OP_attention_forward);
    if (!check(be, NH, NKV, HS) || !B || !T)
        return;
    size_t ns = (size_t)B * NH * T * 8;
    float *mx = npu_tmp(be, ns * sizeof(float)), *sum = npu_tmp(be, ns * sizeof(float));
    if (!mx || !sum)
        return;
    int64_t sd[4] = {B, NH, T, 8};
    NPU_RUN(be, aclnnFlashAttentionScore, heads(be, qkv, B, T, NH, NKV, HS, 0, NH),
            heads(be, qkv, B, T, NH, NKV, HS, NH, NKV), heads(be, qkv, B, T, NH, NKV, HS, NH + NKV, NKV), NULL, NULL,
            NULL, causal_mask(be), NULL, 1.0 / sqrt((double)HS), 1.0, NO_LIMIT, 0, NH, bsnd, 0, 2,
            npu_tensor(be, mx, NPU_ACL_FLOAT, 4, sd, NULL), npu_tensor(be, sum, NPU_ACL_FLOAT, 4, sd, NULL), NULL,
            bsnd_t(be, out, B, T, NH, HS));
    if (!lse)
        return;
    NPU_RUN(be, aclnnLog, stat0(be, sum, B, NH, T), npu_f3(be, lse, B, NH, T));
    NPU_RUN(be, aclnnInplaceAdd, npu_f3(be, lse, B, NH, T), stat0(be, mx, B, NH, T), npu_scalar_f(be, 1.0f));
}

void npu_attention_backward(lmc_backend *be, float *dqkv, const float *dout, const float *out, const float *lse,
                            const float *qkv, int B, int T, int NH, int NKV, int HS)
{
    npu_enter(be, LMC_OP_attention_backward);
    if (!check(be, NH, NKV, HS) || !B || !T)
        return;
    if (!lse) {
        npu_fail(be, "needs the forward's lse");
        return;
    }
    int64_t sd[4] = {B, NH, T, 8}, lse_st[4] = {(int64_t)NH * T, T, 1, 0}, one_st[4] = {0, 0, 0, 0};
    NPU_RUN(be, aclnnFlashAttentionScoreGrad, heads(be, qkv, B, T, NH, NKV, HS, 0, NH),
            heads(be, qkv, B, T, NH, NKV, HS, NH, NKV), heads(be, qkv, B, T, NH, NKV, HS, NH + NKV, NKV),
            bsnd_t(be, dout, B, T, NH, HS), NULL, NULL, NULL, causal_mask(be),
            npu_tensor(be, lse, NPU_ACL_FLOAT, 4, sd, lse_st), npu_tensor(be, npu_of(be)->one, NPU_ACL_FLOAT, 4, sd, one_st),
            NULL, bsnd_t(be, out, B, T, NH, HS), NULL, 1.0 / sqrt((double)HS), 1.0, NO_LIMIT, 0, NH, bsnd, 0, 2,
            heads(be, dqkv, B, T, NH, NKV, HS, 0, NH), heads(be, dqkv, B, T, NH, NKV, HS, NH, NKV),
            heads(be, dqkv, B, T, NH, NKV, HS, NH + NKV, NKV), NULL);
}

/* mask (B, maxT) bool: 1 (masked) where position >= len[b] */
static uint8_t *length_mask(lmc_backend *be, const int *len, int B, int maxT)
{
    int32_t *ar = npu_tmp(be, (size_t)maxT * 4);
    uint8_t *mask = npu_tmp(be, (size_t)B * maxT);
    if (!ar || !mask)
        return NULL;
    int64_t t = maxT, row[2] = {1, maxT}, col[2] = {B, 1}, bt[2] = {B, maxT};
    NPU_RUN(be, aclnnArange, npu_scalar_i(be, 0), npu_scalar_i(be, maxT), npu_scalar_i(be, 1),
            npu_tensor(be, ar, NPU_ACL_INT32, 1, &t, NULL));
    NPU_RUN(be, aclnnGeTensor, npu_tensor(be, ar, NPU_ACL_INT32, 2, row, NULL),
            npu_tensor(be, len, NPU_ACL_INT32, 2, col, NULL), npu_tensor(be, mask, NPU_ACL_BOOL, 2, bt, NULL));
    return npu_of(be)->bad ? NULL : mask;
}

void npu_attention_decode(lmc_backend *be, float *out, const float *q, const float *kcache, const float *vcache,
                          const int *len, int B, int maxT, int NH, int NKV, int HS)
{
    npu_enter(be, LMC_OP_attention_decode);
    if (!check(be, NH, NKV, HS) || !B || !maxT)
        return;
    uint8_t *mask = length_mask(be, len, B, maxT);
    size_t ns = (size_t)B * NH * 8;
    float *mx = npu_tmp(be, ns * sizeof(float)), *sum = npu_tmp(be, ns * sizeof(float));
    if (!mask || !mx || !sum)
        return;
    int64_t md[4] = {B, 1, 1, maxT}, sd[4] = {B, NH, 1, 8};
    NPU_RUN(be, aclnnFlashAttentionScore, bsnd_t(be, q, B, 1, NH, HS), bsnd_t(be, kcache, B, maxT, NKV, HS),
            bsnd_t(be, vcache, B, maxT, NKV, HS), NULL, NULL, NULL, npu_tensor(be, mask, NPU_ACL_BOOL, 4, md, NULL),
            NULL, 1.0 / sqrt((double)HS), 1.0, NO_LIMIT, NO_LIMIT, NH, bsnd, 0, 0,
            npu_tensor(be, mx, NPU_ACL_FLOAT, 4, sd, NULL), npu_tensor(be, sum, NPU_ACL_FLOAT, 4, sd, NULL), NULL,
            bsnd_t(be, out, B, 1, NH, HS));
}
