/* backward.c: the transformer backward pass. Expects a forward in
 * LMC_FWD_TRAIN mode (logits replaced by dlogits); accumulates into grads. */
#include "model/model.h"

static float *slot(const lmc_model *m, float *base, int layer, int kind)
{
    const lmc_tensor_slot *s = lmc_layout_slot(&m->layout, layer, kind);
    return s->offset == LMC_ABSENT ? NULL : base + s->offset;
}

#define W(layer, kind) slot(m, m->params, layer, kind)
#define G(layer, kind) slot(m, m->grads, layer, kind)

/* Backward of out (M,n) = inp (M,k) . W^T + b:
 * dinp (M,k) = dout . W (skipped if dinp NULL); dW (n,k) += dout^T . inp; db += colsum(dout). */
static void linear_backward(lmc_model *m, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                            const float *w, int M, int n, int k)
{
    lmc_backend *be = m->be;
    if (dinp) {
        lmc_gemm gd = {.m = M, .n = k, .k = n, .prec = m->prec};
        be->ops->matmul(be, dinp, dout, w, &gd);
    }
    lmc_gemm gw = {.m = n, .n = k, .k = M, .trans_a = 1, .accumulate = 1, .prec = m->prec};
    be->ops->matmul(be, dw, dout, inp, &gw);
    if (db)
        be->ops->bias_grad(be, db, dout, M, n);
}

/* dinp += norm backward */
static void norm_backward(lmc_model *m, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                          const float *w, const float *mean, const float *rstd, int N)
{
    lmc_backend *be = m->be;
    if (m->cfg.norm == LMC_NORM_RMS)
        be->ops->rmsnorm_backward(be, dinp, dw, dout, inp, w, rstd, N, m->cfg.dim);
    else
        be->ops->layernorm_backward(be, dinp, dw, db, dout, inp, w, mean, rstd, N, m->cfg.dim);
}

/* dres holds d(res3) on entry and d(res2) on exit */
static void mlp_backward(lmc_model *m, const lmc_layer_acts *la, int l, int N)
{
    lmc_backend *be = m->be;
    int C = m->cfg.dim, H = m->act_dim, F = m->fc_dim;
    float *dres = m->a.dres, *da = m->a.dbuf_a, *db = m->a.dbuf_b;
    linear_backward(m, da, G(l, LMC_T_PROJ_W), G(l, LMC_T_PROJ_B), dres, la->fch_act, W(l, LMC_T_PROJ_W), N, C, H);
    float *dfch = da; // (N,F)
    if (m->cfg.mlp == LMC_MLP_GELU) {
        be->ops->gelu_backward(be, da, la->fch, da, (size_t)N * H);
    } else {
        be->ops->swiglu_backward(be, db, la->fch, da, N, H);
        dfch = db;
    }
    float *dln2 = dfch == da ? db : da; // (N,C)
    linear_backward(m, dln2, G(l, LMC_T_FC_W), G(l, LMC_T_FC_B), dfch, la->ln2, W(l, LMC_T_FC_W), N, F, C);
    norm_backward(m, dres, G(l, LMC_T_LN2_W), G(l, LMC_T_LN2_B), dln2, la->res2, W(l, LMC_T_LN2_W), la->ln2_mean,
                  la->ln2_rstd, N);
}

/* dres holds d(res2) on entry and d(layer input) on exit */
static void attn_backward(lmc_model *m, const lmc_layer_acts *la, const float *x, int l, int B, int T)
{
    lmc_backend *be = m->be;
    const lmc_model_config *c = &m->cfg;
    int N = B * T, C = c->dim;
    float *dres = m->a.dres, *da = m->a.dbuf_a, *db = m->a.dbuf_b;
    linear_backward(m, da, G(l, LMC_T_ATTN_W), G(l, LMC_T_ATTN_B), dres, la->atty, W(l, LMC_T_ATTN_W), N, C, C);
    be->ops->attention_backward(be, db, da, la->atty, la->lse, la->qkv, B, T, c->n_head, c->n_kv_head, m->hs);
    if (c->pos == LMC_POS_ROPE)
        be->ops->rope(be, db, NULL, B, T, c->n_head, c->n_kv_head, m->hs, c->rope_theta, 1);
    linear_backward(m, da, G(l, LMC_T_QKV_W), G(l, LMC_T_QKV_B), db, la->ln1, W(l, LMC_T_QKV_W), N, m->qkv_dim, C);
    norm_backward(m, dres, G(l, LMC_T_LN1_W), G(l, LMC_T_LN1_B), da, x, W(l, LMC_T_LN1_W), la->ln1_mean,
                  la->ln1_rstd, N);
}

void lmc_model_backward(lmc_model *m, int B, int T, lmc_bucket_hook hook, void *ctx)
{
    lmc_backend *be = m->be;
    int N = B * T, C = m->cfg.dim, L = m->cfg.n_layer, Vp = m->cfg.vocab_padded;
    float *dres = m->a.dres, *dlnf = m->a.dbuf_a;
    /* classifier: logits = lnf . head^T, the logits buffer holds dlogits */
    linear_backward(m, dlnf, G(-1, LMC_T_HEAD), NULL, m->a.logits, m->a.lnf, W(-1, LMC_T_HEAD), N, Vp, C);
    lmc_layer_acts last;
    lmc_model_layer_acts(m, L - 1, &last);
    be->ops->zero(be, dres, (size_t)N * C * sizeof(float));
    norm_backward(m, dres, G(-1, LMC_T_NORMF_W), G(-1, LMC_T_NORMF_B), dlnf, last.res3, W(-1, LMC_T_NORMF_W),
                  m->a.lnf_mean, m->a.lnf_rstd, N);
    /* with a tied head the head's gradient lands in wte, finished only after
     * the embedding backward; the bucket order still holds for norm_f */
    if (hook)
        hook(ctx, 0);
    for (int l = L - 1; l >= 0; l--) {
        lmc_layer_acts la, prev;
        lmc_model_layer_acts(m, l, &la);
        const float *x = m->a.encoded;
        if (l > 0) {
            lmc_model_layer_acts(m, l - 1, &prev);
            x = prev.res3;
        }
        mlp_backward(m, &la, l, N);
        attn_backward(m, &la, x, l, B, T);
        if (hook)
            hook(ctx, L - l);
    }
    be->ops->embed_backward(be, G(-1, LMC_T_WTE), G(-1, LMC_T_WPE), dres, m->tokens, B, T, C);
    if (hook)
        hook(ctx, L + 1);
}
