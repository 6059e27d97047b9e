/* forward.c: the transformer forward pass, one backend op per step.
 * N = B*T rows; C = dim; QKV = (NH + 2 NKV) HS; F = fc rows; H = ffn. */
#include "model/moe.h"

#define W(layer, kind) lmc_model_tensor(m, m->unit_params, layer, kind)

void lmc_model_norm_forward(lmc_model *m, float *out, float *mean, float *rstd, const float *inp, const float *w,
                            const float *b, int N)
{
    lmc_backend *be = m->be;
    if (m->cfg.norm == LMC_NORM_RMS)
        be->ops->rmsnorm_forward(be, out, rstd, inp, w, N, m->cfg.dim, m->cfg.norm_eps);
    else
        be->ops->layernorm_forward(be, out, mean, rstd, inp, w, b, N, m->cfg.dim, m->cfg.norm_eps);
}

/* out (M, n) (+)= inp (M, k) . W^T with W (n, k) as nn.Linear stores it */
void lmc_model_linear(lmc_model *m, float *out, const float *inp, const float *w, const float *bias, int M, int n,
                      int k, int accumulate)
{
    lmc_gemm g = {.m = M, .n = n, .k = k, .trans_b = 1, .accumulate = accumulate, .prec = m->prec, .bias = bias};
    m->be->ops->matmul(m->be, out, inp, w, &g);
}

/* out (M,n) = resid + inp (M,k) . W^T + bias, W row-parallel under tensor
 * parallelism: each rank multiplies its columns, one rank adds the residual
 * and the bias, and the sum over the group completes it (Megatron's g). */
static void row_parallel(lmc_model *m, float *out, const float *resid, const float *inp, const float *w,
                         const float *bias, int M, int n, int k)
{
    if (m->sp) { /* the partial sums reduce-scattered: this rank's rows, then its residual rows */
        lmc_model_linear(m, m->a.gath, inp, w, m->tp_rank == 0 ? bias : NULL, M, n, k, 0);
        lmc_model_sp_scatter(m, m->a.gath, out, M);
        m->be->ops->add(m->be, out, out, resid, (size_t)lmc_model_rows(m, M) * n);
        return;
    }
    if (m->tp_rank == 0) {
        m->be->ops->copy(m->be, out, resid, (size_t)M * n * sizeof(float));
        lmc_model_linear(m, out, inp, w, bias, M, n, k, 1);
    } else {
        lmc_model_linear(m, out, inp, w, NULL, M, n, k, 0);
    }
    lmc_model_tp_sum(m, out, (size_t)M * n);
}

void lmc_model_tp_sum(lmc_model *m, float *buf, size_t n)
{
    if (m->tp > 1 && !m->tp_status) {
        double t0 = lmc_now();
        m->tp_status = m->tp_comm->ops->allreduce(m->tp_comm, buf, n);
        m->tp_s += lmc_now() - t0;
        m->tp_values += (double)n;
    }
}

/* A column-parallel matmul's input: the norm's rows, whole (gathered under
 * sequence parallelism). */
static const float *whole_rows(lmc_model *m, const float *rows, int N)
{
    if (!m->sp)
        return rows;
    lmc_model_sp_gather(m, m->a.gath, rows, N);
    return m->a.gath;
}

static void mlp_forward(lmc_model *m, lmc_layer_acts *la, int l, int N)
{
    if (lmc_config_is_moe(&m->cfg, l)) {
        lmc_moe_forward(m, la, l, N);
        return;
    }
    lmc_backend *be = m->be;
    int C = m->cfg.dim;
    const float *h = whole_rows(m, la->ln2, N);
    if (m->cfg.mlp == LMC_MLP_GELU) {
        /* fused bias + GELU epilogue; the pre-activation is kept for backward */
        lmc_gemm g = {.m = N, .n = m->fc_dim, .k = C, .trans_b = 1, .prec = m->prec,
                      .bias = W(l, LMC_T_FC_B), .gelu = 1, .pre = la->fch};
        be->ops->matmul(be, la->fch_act, h, W(l, LMC_T_FC_W), &g);
    } else {
        lmc_model_linear(m, la->fch, h, W(l, LMC_T_FC_W), W(l, LMC_T_FC_B), N, m->fc_dim, C, 0);
        be->ops->swiglu_forward(be, la->fch_act, la->fch, N, m->act_dim);
    }
    row_parallel(m, la->res3, la->res2, la->fch_act, W(l, LMC_T_PROJ_W), W(l, LMC_T_PROJ_B), N, C, m->act_dim);
}

void lmc_model_layer_forward(lmc_model *m, int l, const float *x, int B, int T)
{
    lmc_backend *be = m->be;
    const lmc_model_config *c = &m->cfg;
    int N = B * T, C = c->dim, n = lmc_model_rows(m, N);
    lmc_layer_acts la;
    lmc_model_layer_acts(m, l, &la);
    lmc_model_norm_forward(m, la.ln1, la.ln1_mean, la.ln1_rstd, x, W(l, LMC_T_LN1_W), W(l, LMC_T_LN1_B), n);
    lmc_model_linear(m, la.qkv, whole_rows(m, la.ln1, N), W(l, LMC_T_QKV_W), W(l, LMC_T_QKV_B), N, m->qkv_dim, C, 0);
    if (c->pos == LMC_POS_ROPE)
        be->ops->rope(be, la.qkv, NULL, B, T, m->nh, m->nkv, m->hs, c->rope_theta, 0);
    be->ops->attention_forward(be, la.atty, la.lse, la.qkv, B, T, m->nh, m->nkv, m->hs);
    row_parallel(m, la.res2, x, la.atty, W(l, LMC_T_ATTN_W), W(l, LMC_T_ATTN_B), N, C, m->nh * m->hs);
    lmc_model_norm_forward(m, la.ln2, la.ln2_mean, la.ln2_rstd, la.res2, W(l, LMC_T_LN2_W), W(l, LMC_T_LN2_B), n);
    mlp_forward(m, &la, l, N);
}

static void classifier_forward(lmc_model *m, int B, int T, lmc_fwd_mode mode, float dloss)
{
    lmc_backend *be = m->be;
    int N = B * T, C = m->cfg.dim, Vp = m->cfg.vocab_padded;
    const float *head = W(-1, LMC_T_HEAD), *x = lmc_model_head_input(m);
    if (mode == LMC_FWD_LAST_LOGITS) {
        for (int b = 0; b < B; b++)
            lmc_model_linear(m, m->a.logits + (size_t)b * Vp, x + ((size_t)b * T + T - 1) * C, head, NULL, 1, Vp,
                             C, 0);
        return;
    }
    lmc_model_linear(m, m->a.logits, x, head, NULL, N, Vp, C, 0);
    be->ops->xent(be, m->a.losses, m->a.logits, m->targets, N, m->cfg.vocab, Vp, dloss, mode == LMC_FWD_TRAIN);
}

void lmc_model_hook(lmc_model *m, int acquire, int unit, int backward)
{
    const lmc_unit_hooks *h = m->hooks;
    if (h)
        (acquire ? h->acquire : h->release)(h->ctx, unit, backward);
}

const float *lmc_model_layer_input(const lmc_model *m, int l)
{
    lmc_layer_acts prev;
    if (l == m->layer_begin)
        return m->a.encoded;
    lmc_model_layer_acts(m, l - 1, &prev);
    return prev.res3;
}

float *lmc_model_stage_input(lmc_model *m) { return m->a.encoded; }

const float *lmc_model_head_input(const lmc_model *m) { return m->sp ? m->a.gath : m->a.lnf; }

const float *lmc_model_stage_output(const lmc_model *m) { return lmc_model_layer_input(m, m->layer_end); }

float *lmc_model_stage_grad(lmc_model *m) { return m->a.dres; }

static void embed_forward(lmc_model *m, int B, int T)
{
    lmc_backend *be = m->be;
    if (m->vocab_split) { /* each rank its vocabulary rows (and rank 0 the positions), then the sum */
        float *e = m->sp ? m->a.gath : m->a.encoded;
        be->ops->embed_forward(be, e, m->tokens_part, NULL, W(-1, LMC_T_WTE),
                               m->tp_rank == 0 ? W(-1, LMC_T_WPE) : NULL, B, T, m->cfg.dim);
        if (m->sp)
            lmc_model_sp_scatter(m, e, m->a.encoded, B * T); /* this rank's rows of the sum */
        else
            lmc_model_tp_sum(m, e, (size_t)B * T * m->cfg.dim);
    } else {
        be->ops->embed_forward(be, m->a.encoded, m->tokens, NULL, W(-1, LMC_T_WTE), W(-1, LMC_T_WPE), B, T,
                               m->cfg.dim);
    }
}

void lmc_model_forward(lmc_model *m, int B, int T, lmc_fwd_mode mode, float dloss)
{
    int N = B * T, L = m->cfg.n_layer;
    if (lmc_model_chunk_embeds(m))
        lmc_model_hook(m, 1, 0, 0);
    if (m->layer_begin == 0)
        embed_forward(m, B, T);
    for (int l = m->layer_begin; l < m->layer_end; l++) {
        lmc_model_hook(m, 1, l + 1, 0);
        lmc_model_layer_forward(m, l, lmc_model_layer_input(m, l), B, T);
        lmc_model_hook(m, 0, l + 1, 0);
    }
    if (m->layer_end == L) {
        lmc_model_hook(m, 1, L + 1, 0);
        lmc_model_norm_forward(m, m->a.lnf, m->a.lnf_mean, m->a.lnf_rstd, lmc_model_layer_input(m, L),
                               W(-1, LMC_T_NORMF_W), W(-1, LMC_T_NORMF_B), lmc_model_rows(m, N));
        if (m->sp) /* the head's input: whole rows */
            lmc_model_sp_gather(m, m->a.gath, m->a.lnf, N);
        if (m->vocab_split)
            lmc_model_vocab_forward(m, B, T, mode, dloss);
        else
            classifier_forward(m, B, T, mode, dloss);
        lmc_model_hook(m, 0, L + 1, 0);
    }
    if (m->moe && mode != LMC_FWD_LAST_LOGITS)
        lmc_moe_aux(m, N, mode == LMC_FWD_TRAIN ? dloss : 0);
    if (mode != LMC_FWD_TRAIN && lmc_model_chunk_embeds(m))
        lmc_model_hook(m, 0, 0, 0);
}
