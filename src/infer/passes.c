/* passes.c: the engine's two forward passes, prefill (one prompt, all
 * positions in one pass) and decode (one new token per busy slot). */
#include "infer/engine_internal.h"

#include <string.h>

static const float *param(const lmc_engine *e, int layer, int kind)
{
    const lmc_tensor_slot *s = lmc_layout_slot(&e->m->layout, layer, kind);
    return s->offset == LMC_ABSENT ? NULL : e->m->params + s->offset;
}

static const lmc_wmat *mat(const lmc_engine *e, int layer, int which)
{
    return layer < 0 ? &e->mats[e->cfg.n_layer * LMC_ENGINE_MATS] : &e->mats[layer * LMC_ENGINE_MATS + which];
}

/* gemm: an fp32 matrix goes through the backend's matmul, as
 * lmc_model_forward does (prefill: many rows, compute-bound). */
void lmc_engine_lin(lmc_engine *e, float *out, const float *inp, const lmc_wmat *W, size_t row0, size_t rows,
                    const float *bias, int M, int accumulate, int gemm)
{
    size_t K = W->cols;
    if (gemm && W->type == LMC_F32) {
        lmc_model_linear(e->m, out, inp, (const float *)W->w + row0 * K, bias, M, (int)rows, (int)K, accumulate);
        return;
    }
    size_t esz = W->type == LMC_F32 ? 4 : W->type == LMC_BF16 ? 2 : 1;
    e->be->ops->linear(e->be, out, inp, (const char *)W->w + row0 * K * esz, W->type,
                       W->scale ? W->scale + row0 : NULL, bias, M, (int)rows, (int)K, accumulate);
}

/* x (M, C) += inp . W^T + bias with W row-parallel under tensor
 * parallelism: each rank its columns, rank 0 the residual and the bias,
 * then the sum over the group (the training forward's row_parallel). */
static void row_lin(lmc_engine *e, const float *inp, const lmc_wmat *W, const float *bias, int M, int gemm)
{
    int first = e->m->tp_rank == 0;
    lmc_engine_lin(e, e->x, inp, W, 0, (size_t)e->cfg.dim, first ? bias : NULL, M, first, gemm);
    lmc_model_tp_sum(e->m, e->x, (size_t)M * e->cfg.dim);
}

static void norm(lmc_engine *e, float *out, const float *inp, int layer, int kind_w, int kind_b, int N)
{
    lmc_model_norm_forward(e->m, out, NULL, NULL, inp, param(e, layer, kind_w), param(e, layer, kind_b), N);
}

/* x (N,C) += MLP(ln (N,C)); a mixture of experts routes the busy rows
 * (NULL: all) */
static void mlp(lmc_engine *e, int l, int N, const int *busy, int nbusy, int gemm)
{
    if (lmc_config_is_moe(&e->cfg, l)) {
        lmc_engine_moe_mlp(e, l, N, busy, nbusy, gemm);
        return;
    }
    lmc_backend *be = e->be;
    const lmc_wmat *fc = mat(e, l, LMC_EM_FC);
    const float *fc_b = param(e, l, LMC_T_FC_B);
    if (e->cfg.mlp == LMC_MLP_GELU) {
        if (gemm && fc->type == LMC_F32) {
            /* the fused bias + GELU epilogue, exactly as the training forward */
            lmc_gemm g = {.m = N, .n = e->fc_dim, .k = e->cfg.dim, .trans_b = 1, .prec = e->m->prec,
                          .bias = fc_b, .gelu = 1, .pre = e->fch};
            be->ops->matmul(be, e->act, e->ln, fc->w, &g);
        } else {
            lmc_engine_lin(e, e->fch, e->ln, fc, 0, (size_t)e->fc_dim, fc_b, N, 0, gemm);
            be->ops->gelu_forward(be, e->act, e->fch, (size_t)N * e->fc_dim);
        }
    } else {
        lmc_engine_lin(e, e->fch, e->ln, fc, 0, (size_t)e->fc_dim, fc_b, N, 0, gemm);
        be->ops->swiglu_forward(be, e->act, e->fch, N, e->act_dim);
    }
    row_lin(e, e->act, mat(e, l, LMC_EM_PROJ), param(e, l, LMC_T_PROJ_B), N, gemm);
}

static float *kslot(lmc_engine *e, float *cache, int layer, int slot)
{
    return cache + (((size_t)layer * e->slots + (size_t)slot) * e->ctx) * e->kvdim;
}

static lmc_status check_ids(const lmc_engine *e, const int *ids, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= e->cfg.vocab)
            return lmc_err(LMC_ERANGE, "%s: token id %d at position %d is outside the vocabulary [0, %d)", what,
                           ids[i], i, e->cfg.vocab);
    return LMC_OK;
}

lmc_status lmc_engine_prefill_local(lmc_engine *e, int slot, const int *ids, int n, float *logits)
{
    const lmc_model_config *c = &e->cfg;
    lmc_backend *be = e->be;
    if (slot < 0 || slot >= e->slots)
        return lmc_err(LMC_ERANGE, "prefill: slot %d is outside [0, %d)", slot, e->slots);
    if (n < 1 || n > e->ctx)
        return lmc_err(LMC_ERANGE, "prompt of %d tokens: must be 1 to %d (the context)", n, e->ctx);
    LMC_TRY(check_ids(e, ids, n, "prompt"));
    double t0 = lmc_now();
    int gemm = e->quant == LMC_QUANT_NONE, C = c->dim, NH = e->m->nh, NKV = e->m->nkv, HS = e->hs;
    be->ops->upload(be, e->d_tok, ids, (size_t)n * sizeof(int));
    be->ops->embed_forward(be, e->x, e->d_tok, NULL, param(e, -1, LMC_T_WTE), param(e, -1, LMC_T_WPE), 1, n, C);
    for (int l = 0; l < c->n_layer; l++) {
        norm(e, e->ln, e->x, l, LMC_T_LN1_W, LMC_T_LN1_B, n);
        lmc_engine_lin(e, e->qkv, e->ln, mat(e, l, LMC_EM_QKV), 0, (size_t)e->qkv_dim, param(e, l, LMC_T_QKV_B), n, 0, gemm);
        if (c->pos == LMC_POS_ROPE)
            be->ops->rope(be, e->qkv, NULL, 1, n, NH, NKV, HS, c->rope_theta, 0);
        be->ops->kv_store(be, kslot(e, e->kcache, l, slot), kslot(e, e->vcache, l, slot), e->qkv + (size_t)NH * HS,
                          e->qkv + (size_t)(NH + NKV) * HS, (size_t)e->qkv_dim, e->d_zero, 1, n, e->ctx, e->kvdim);
        be->ops->attention_forward(be, e->atty, NULL, e->qkv, 1, n, NH, NKV, HS);
        row_lin(e, e->atty, mat(e, l, LMC_EM_ATTN), param(e, l, LMC_T_ATTN_B), n, gemm);
        norm(e, e->ln, e->x, l, LMC_T_LN2_W, LMC_T_LN2_B, n);
        mlp(e, l, n, NULL, n, gemm);
    }
    /* only the last position's logits are needed */
    norm(e, e->ln, e->x + (size_t)(n - 1) * C, -1, LMC_T_NORMF_W, LMC_T_NORMF_B, 1);
    if (gemm)
        lmc_model_linear(e->m, e->logits, e->ln, param(e, -1, LMC_T_HEAD), NULL, 1, c->vocab_padded, C, 0);
    else
        lmc_engine_lin(e, e->logits, e->ln, mat(e, -1, 0), 0, (size_t)c->vocab, NULL, 1, 0, 0);
    LMC_TRY(e->m->tp_status);
    be->ops->download(be, logits, e->logits, (size_t)c->vocab * sizeof(float));
    e->stats.prefill_tokens += n;
    e->stats.prefill_seconds += lmc_now() - t0;
    return lmc_backend_check(be); /* a device error in this pass */
}

lmc_status lmc_engine_decode_local(lmc_engine *e, int nb, const int *tokens, const int *pos, float *logits)
{
    const lmc_model_config *c = &e->cfg;
    lmc_backend *be = e->be;
    if (nb < 1 || nb > e->slots)
        return lmc_err(LMC_ERANGE, "decode: %d rows, the engine has %d slots", nb, e->slots);
    int *tok = e->h_ints, *p = tok + nb, *len = p + nb, busy = 0;
    int *rows = e->h_ints + 5 * e->slots; /* the busy rows (the scheduler's tokens and positions sit before) */
    for (int b = 0; b < nb; b++) {
        int idle = pos[b] < 0;
        if (!idle && pos[b] >= e->ctx)
            return lmc_err(LMC_ERANGE, "decode: position %d of row %d is past the context %d", pos[b], b, e->ctx);
        if (!idle && (tokens[b] < 0 || tokens[b] >= c->vocab))
            return lmc_err(LMC_ERANGE, "decode: token id %d of row %d is outside the vocabulary [0, %d)",
                           tokens[b], b, c->vocab);
        tok[b] = idle ? 0 : tokens[b];
        p[b] = idle ? 0 : pos[b];
        len[b] = idle ? 0 : pos[b] + 1;
        if (!idle)
            rows[busy++] = b;
    }
    double t0 = lmc_now();
    int C = c->dim, NH = e->m->nh, NKV = e->m->nkv, HS = e->hs, D = e->kvdim;
    be->ops->upload(be, e->d_tok, tok, (size_t)nb * sizeof(int));
    be->ops->upload(be, e->d_pos, p, (size_t)nb * sizeof(int));
    be->ops->upload(be, e->d_len, len, (size_t)nb * sizeof(int));
    be->ops->embed_forward(be, e->x, e->d_tok, e->d_pos, param(e, -1, LMC_T_WTE), param(e, -1, LMC_T_WPE), nb, 1,
                           C);
    /* q and k|v in separate buffers: attention_decode reads q as (B, NH*HS) */
    float *q = e->qkv, *kv = e->qkv + (size_t)nb * NH * HS;
    for (int l = 0; l < c->n_layer; l++) {
        const float *qkv_b = param(e, l, LMC_T_QKV_B);
        norm(e, e->ln, e->x, l, LMC_T_LN1_W, LMC_T_LN1_B, nb);
        lmc_engine_lin(e, q, e->ln, mat(e, l, LMC_EM_QKV), 0, (size_t)NH * HS, qkv_b, nb, 0, 0);
        lmc_engine_lin(e, kv, e->ln, mat(e, l, LMC_EM_QKV), (size_t)NH * HS, 2 * (size_t)D, qkv_b ? qkv_b + NH * HS : NULL, nb, 0,
            0);
        if (c->pos == LMC_POS_ROPE) {
            be->ops->rope(be, q, e->d_pos, nb, 1, NH, 0, HS, c->rope_theta, 0);
            be->ops->rope(be, kv, e->d_pos, nb, 1, 0, NKV, HS, c->rope_theta, 0);
        }
        float *kc = kslot(e, e->kcache, l, 0), *vc = kslot(e, e->vcache, l, 0);
        be->ops->kv_store(be, kc, vc, kv, kv + D, 2 * (size_t)D, e->d_pos, nb, 1, e->ctx, D);
        be->ops->attention_decode(be, e->atty, q, kc, vc, e->d_len, nb, e->ctx, NH, NKV, HS);
        row_lin(e, e->atty, mat(e, l, LMC_EM_ATTN), param(e, l, LMC_T_ATTN_B), nb, 0);
        norm(e, e->ln, e->x, l, LMC_T_LN2_W, LMC_T_LN2_B, nb);
        mlp(e, l, nb, rows, busy, 0);
    }
    norm(e, e->ln, e->x, -1, LMC_T_NORMF_W, LMC_T_NORMF_B, nb);
    lmc_engine_lin(e, e->logits, e->ln, mat(e, -1, 0), 0, (size_t)c->vocab, NULL, nb, 0, 0);
    LMC_TRY(e->m->tp_status);
    be->ops->download(be, logits, e->logits, (size_t)nb * c->vocab * sizeof(float));
    e->stats.decode_steps++;
    e->stats.decode_tokens += busy;
    e->stats.decode_seconds += lmc_now() - t0;
    return lmc_backend_check(be); /* a device error in this step */
}
