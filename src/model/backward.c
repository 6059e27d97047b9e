/* backward.c: the transformer backward pass. Expects a forward in
 * LMC_FWD_TRAIN mode (logits replaced by dlogits); accumulates into grads. */
#include "model/moe.h"

#define W(layer, kind) lmc_model_tensor(m, m->unit_params, layer, kind)
#define G(layer, kind) lmc_model_tensor(m, m->unit_grads, layer, kind)

/* Backward of out (M,n) = inp (M,k) . W^T + b:
 * dinp (M,k) (+)= dout . W (skipped if dinp NULL); dW (n,k) += dout^T . inp; db += colsum(dout). */
void lmc_model_linear_backward(lmc_model *m, float *dinp, int accumulate, float *dw, float *db, const float *dout,
                               const float *inp, const float *w, int M, int n, int k)
{
    lmc_backend *be = m->be;
    if (dinp) {
        lmc_gemm gd = {.m = M, .n = k, .k = n, .accumulate = accumulate, .prec = m->prec};
        be->ops->matmul(be, dinp, dout, w, &gd);
    }
    lmc_gemm gw = {.m = n, .n = k, .k = M, .trans_a = 1, .accumulate = 1, .prec = m->prec};
    be->ops->matmul(be, dw, dout, inp, &gw);
    if (db)
        be->ops->bias_grad(be, db, dout, M, n);
}

/* dinp += norm backward */
void lmc_model_norm_backward(lmc_model *m, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                             const float *w, const float *mean, const float *rstd, int N)
{
    lmc_backend *be = m->be;
    if (m->cfg.norm == LMC_NORM_RMS)
        be->ops->rmsnorm_backward(be, dinp, dw, dout, inp, w, rstd, N, m->cfg.dim);
    else
        be->ops->layernorm_backward(be, dinp, dw, db, dout, inp, w, mean, rstd, N, m->cfg.dim);
}

static void linear_backward(lmc_model *m, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                            const float *w, int M, int n, int k)
{
    lmc_model_linear_backward(m, dinp, 0, dw, db, dout, inp, w, M, n, k);
}

#define norm_backward lmc_model_norm_backward

/* Sequence parallelism: rows (this rank's) made whole (an all-gather,
 * into the gather buffer); without it rows are whole already. */
static const float *whole(lmc_model *m, const float *rows, int N)
{
    if (!m->sp)
        return rows;
    lmc_model_sp_gather(m, m->a.gath, rows, N);
    return m->a.gath;
}

/* A column-parallel matmul's input gradient d (N, C), partial on each
 * rank: summed over the group, whole rows, or under sequence parallelism
 * this rank's rows (moved to the front of d). */
static void sum_partial(lmc_model *m, float *d, int N)
{
    if (m->sp)
        lmc_model_sp_scatter(m, d, d, N);
    else
        lmc_model_tp_sum(m, d, (size_t)N * m->cfg.dim);
}

/* dres holds d(res3) on entry and d(res2) on exit */
static void mlp_backward(lmc_model *m, const lmc_layer_acts *la, int l, int N)
{
    if (lmc_config_is_moe(&m->cfg, l)) {
        lmc_moe_backward(m, la, l, N);
        return;
    }
    lmc_backend *be = m->be;
    int C = m->cfg.dim, H = m->act_dim, F = m->fc_dim;
    float *dres = m->a.dres, *da = m->a.dbuf_a, *db = m->a.dbuf_b;
    linear_backward(m, da, G(l, LMC_T_PROJ_W), G(l, LMC_T_PROJ_B), whole(m, dres, N), la->fch_act,
                    W(l, LMC_T_PROJ_W), N, C, H);
    float *dfch = da; // (N,F)
    if (m->cfg.mlp == LMC_MLP_GELU) {
        be->ops->gelu_backward(be, da, la->fch, da, (size_t)N * H);
    } else {
        be->ops->swiglu_backward(be, db, la->fch, da, N, H);
        dfch = db;
    }
    float *dln2 = dfch == da ? db : da; // (N,C)
    linear_backward(m, dln2, G(l, LMC_T_FC_W), G(l, LMC_T_FC_B), dfch, whole(m, la->ln2, N), W(l, LMC_T_FC_W), N,
                    F, C);
    sum_partial(m, dln2, N); /* column-parallel: each rank's part of d(ln2) (Megatron's f) */
    norm_backward(m, dres, G(l, LMC_T_LN2_W), G(l, LMC_T_LN2_B), dln2, la->res2, W(l, LMC_T_LN2_W), la->ln2_mean,
                  la->ln2_rstd, lmc_model_rows(m, N));
}

/* dres holds d(res2) on entry and d(layer input) on exit */
static void attn_backward(lmc_model *m, const lmc_layer_acts *la, const float *x, int l, int B, int T)
{
    lmc_backend *be = m->be;
    const lmc_model_config *c = &m->cfg;
    int N = B * T, C = c->dim;
    float *dres = m->a.dres, *da = m->a.dbuf_a, *db = m->a.dbuf_b;
    linear_backward(m, da, G(l, LMC_T_ATTN_W), G(l, LMC_T_ATTN_B), whole(m, dres, N), la->atty, W(l, LMC_T_ATTN_W),
                    N, C, m->nh * m->hs);
    be->ops->attention_backward(be, db, da, la->atty, la->lse, la->qkv, B, T, m->nh, m->nkv, m->hs);
    if (c->pos == LMC_POS_ROPE)
        be->ops->rope(be, db, NULL, B, T, m->nh, m->nkv, m->hs, c->rope_theta, 1);
    linear_backward(m, da, G(l, LMC_T_QKV_W), G(l, LMC_T_QKV_B), db, whole(m, la->ln1, N), W(l, LMC_T_QKV_W), N,
                    m->qkv_dim, C);
    sum_partial(m, da, N);
    norm_backward(m, dres, G(l, LMC_T_LN1_W), G(l, LMC_T_LN1_B), da, x, W(l, LMC_T_LN1_W), la->ln1_mean,
                  la->ln1_rstd, lmc_model_rows(m, N));
}

/* Recomputes what forward did not keep of layer l (--recompute) with the
 * same ops on the same inputs, so the values are bit-identical. The last
 * layer's intermediates are still in their slots. */
static void layer_recompute(lmc_model *m, const lmc_layer_acts *la, const float *x, int l, int B, int T)
{
    lmc_backend *be = m->be;
    int N = B * T, n = lmc_model_rows(m, N);
    if (m->recompute == LMC_RECOMPUTE_NONE || l == m->layer_end - 1)
        return;
    if (m->recompute == LMC_RECOMPUTE_FULL) {
        lmc_model_layer_forward(m, l, x, B, T);
        return;
    }
    lmc_model_norm_forward(m, la->ln1, la->ln1_mean, la->ln1_rstd, x, W(l, LMC_T_LN1_W), W(l, LMC_T_LN1_B), n);
    lmc_model_norm_forward(m, la->ln2, la->ln2_mean, la->ln2_rstd, la->res2, W(l, LMC_T_LN2_W),
                           W(l, LMC_T_LN2_B), n);
    if (lmc_config_is_moe(&m->cfg, l))
        lmc_moe_recompute(m, la, l, N);
    else if (m->cfg.mlp == LMC_MLP_GELU)
        be->ops->gelu_forward(be, la->fch_act, la->fch, (size_t)N * m->act_dim);
    else
        be->ops->swiglu_forward(be, la->fch_act, la->fch, N, m->act_dim);
}

/* The loss's gradient back to the last layer's output, into dres. */
static void head_backward(lmc_model *m, int N)
{
    int C = m->cfg.dim, L = m->cfg.n_layer;
    float *dres = m->a.dres, *dlnf = m->a.dbuf_a;
    lmc_model_hook(m, 1, L + 1, 1);
    /* classifier: logits = lnf . head^T, the logits buffer holds dlogits */
    linear_backward(m, dlnf, G(-1, LMC_T_HEAD), NULL, m->a.logits, whole(m, m->a.lnf, N), W(-1, LMC_T_HEAD), N,
                    m->vrows, C);
    if (m->vocab_split)
        sum_partial(m, dlnf, N); /* each rank's vocabulary columns' part */
    int n = lmc_model_rows(m, N);
    m->be->ops->zero(m->be, dres, (size_t)n * C * sizeof(float));
    norm_backward(m, dres, G(-1, LMC_T_NORMF_W), G(-1, LMC_T_NORMF_B), dlnf, lmc_model_layer_input(m, L),
                  W(-1, LMC_T_NORMF_W), m->a.lnf_mean, m->a.lnf_rstd, n);
    lmc_model_hook(m, 0, L + 1, 1);
}

void lmc_model_backward(lmc_model *m, int B, int T)
{
    int N = B * T, C = m->cfg.dim;
    if (lmc_model_chunk_embeds(m))
        lmc_model_hook(m, 1, 0, 1); /* a tied head's gradient lands in wte */
    if (m->layer_end == m->cfg.n_layer)
        head_backward(m, N);
    for (int l = m->layer_end - 1; l >= m->layer_begin; l--) {
        lmc_layer_acts la;
        lmc_model_layer_acts(m, l, &la);
        const float *x = lmc_model_layer_input(m, l);
        lmc_model_hook(m, 1, l + 1, 1);
        layer_recompute(m, &la, x, l, B, T);
        mlp_backward(m, &la, l, N);
        attn_backward(m, &la, x, l, B, T);
        lmc_model_hook(m, 0, l + 1, 1);
    }
    if (m->layer_begin == 0)
        m->be->ops->embed_backward(m->be, G(-1, LMC_T_WTE), G(-1, LMC_T_WPE), whole(m, m->a.dres, N),
                                   m->vocab_split ? m->tokens_part : m->tokens, B, T, C);
    if (lmc_model_chunk_embeds(m))
        lmc_model_hook(m, 0, 0, 1);
}

void lmc_model_walk_units(lmc_model *m, int training)
{
    const lmc_layout *l = &m->layout;
    int U = lmc_layout_num_units(l);
    for (int u = 0; u < U; u++) /* forward */
        if (lmc_layout_holds(l, u)) {
            lmc_model_hook(m, 1, u, 0);
            if (u > 0)
                lmc_model_hook(m, 0, u, 0);
        }
    if (!training) {
        if (l->holds_embed)
            lmc_model_hook(m, 0, 0, 0);
        return;
    }
    if (l->holds_embed)
        lmc_model_hook(m, 1, 0, 1); /* backward */
    for (int u = U - 1; u >= 1; u--)
        if (lmc_layout_holds(l, u)) {
            lmc_model_hook(m, 1, u, 1);
            lmc_model_hook(m, 0, u, 1);
        }
    if (l->holds_embed)
        lmc_model_hook(m, 0, 0, 1);
}
