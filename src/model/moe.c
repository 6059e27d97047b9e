/* moe.c: a mixture-of-experts MLP block, forward and backward, one backend
 * op per step (the routing itself is route.c's, on the host; see moe.h).
 * N tokens, C = dim, E experts of width F, k per token, R = N k rows in
 * expert order (expert e's are [off[e], off[e + 1])), S = the shared
 * experts' width. */
#include "model/moe.h"

#include <stdlib.h>
#include <string.h>

#define W(layer, kind) lmc_model_tensor(m, m->unit_params, layer, kind)
#define G(layer, kind) lmc_model_tensor(m, m->unit_grads, layer, kind)

/* The layouts a mixture of experts cannot yet run, with the reason. */
static lmc_status check_layout(const lmc_model *m)
{
    const lmc_model_config *c = &m->cfg;
    if (m->tp > 1)
        return lmc_config_check_tp(c, m->tp);
    if (m->chunks > 1 || m->layer_begin != 0 || m->layer_end != c->n_layer || m->act_slots > 1)
        return lmc_err(LMC_EUNSUPPORTED, "--pp: pipeline parallelism of mixture-of-experts models (%d experts) is "
                       "not yet supported (the load-balancing loss spans every layer)", c->n_expert);
    return LMC_OK;
}

lmc_status lmc_moe_open(lmc_model *m)
{
    const lmc_model_config *c = &m->cfg;
    if (c->n_expert <= 0)
        return LMC_OK;
    LMC_TRY(check_layout(m));
    int N = m->B * m->T, E = c->n_expert, k = c->top_k;
    lmc_moe *x = calloc(1, sizeof *x);
    if (!x)
        return lmc_err(LMC_ENOMEM, "out of memory");
    m->moe = x;
    x->route = calloc((size_t)c->n_layer, sizeof *x->route);
    x->h_logits = malloc((size_t)N * E * sizeof(float));
    x->h_dz = malloc((size_t)N * E * sizeof(float));
    x->h_dw = malloc((size_t)N * k * sizeof(float));
    x->aux_c = calloc((size_t)E, sizeof(float));
    x->aux_f = calloc((size_t)E, sizeof(double));
    x->aux_p = calloc((size_t)E, sizeof(double));
    x->bias = calloc((size_t)c->n_layer * E, sizeof(float));
    x->load = calloc((size_t)c->n_layer * E, sizeof(double));
    if (!x->route || !x->h_logits || !x->h_dz || !x->h_dw || !x->aux_c || !x->aux_f || !x->aux_p || !x->bias ||
        !x->load)
        return lmc_err(LMC_ENOMEM, "out of memory for the routing of %d experts", E);
    for (int l = c->first_dense; l < c->n_layer; l++) {
        LMC_TRY(lmc_route_alloc(&x->route[l], N, E, k));
        x->route[l].bias = x->bias + (size_t)l * E;
    }
    return lmc_moe_ep_open(m);
}

void lmc_moe_close(lmc_model *m)
{
    lmc_moe *x = m->moe;
    if (!x)
        return;
    lmc_moe_ep_close(m);
    for (int l = 0; x->route && l < m->cfg.n_layer; l++)
        lmc_route_free(&x->route[l]);
    free(x->route);
    free(x->h_logits);
    free(x->h_dz);
    free(x->h_dw);
    free(x->aux_c);
    free(x->aux_f);
    free(x->aux_p);
    free(x->bias);
    free(x->load);
    free(x);
    m->moe = NULL;
}

static int shared_width(const lmc_model *m) { return m->cfg.n_shared * m->cfg.moe_ffn; }

/* expert e's [gate; up] (2F, C) and down (C, F) weights in a unit's buffer */
static float *expert_fc(lmc_model *m, float *const *units, int l, int e)
{
    return lmc_model_tensor(m, units, l, LMC_T_EXP_FC_W) + (size_t)e * 2 * m->cfg.moe_ffn * m->cfg.dim;
}

static float *expert_proj(lmc_model *m, float *const *units, int l, int e)
{
    return lmc_model_tensor(m, units, l, LMC_T_EXP_PROJ_W) + (size_t)e * m->cfg.dim * m->cfg.moe_ffn;
}

/* res3 = res2 + the shared experts' SwiGLU of ln2 */
static void shared_forward(lmc_model *m, lmc_layer_acts *la, int l, int N)
{
    lmc_backend *be = m->be;
    int C = m->cfg.dim, S = shared_width(m);
    be->ops->copy(be, la->res3, la->res2, (size_t)N * C * sizeof(float));
    if (!S)
        return;
    lmc_model_linear(m, la->fch, la->ln2, W(l, LMC_T_FC_W), NULL, N, 2 * S, C, 0);
    be->ops->swiglu_forward(be, la->fch_act, la->fch, N, S);
    lmc_model_linear(m, la->res3, la->fch_act, W(l, LMC_T_PROJ_W), NULL, N, C, S, 1);
}

/* The router's logits to the host, the routing, the rows' tokens and
 * weights to the device. */
static void route(lmc_model *m, lmc_layer_acts *la, int l, int N)
{
    lmc_backend *be = m->be;
    const lmc_model_config *c = &m->cfg;
    lmc_route *r = &m->moe->route[l];
    size_t R = (size_t)N * c->top_k;
    lmc_model_linear(m, m->a.rlogits, la->ln2, W(l, LMC_T_ROUTER_W), NULL, N, c->n_expert, c->dim, 0);
    be->ops->download(be, m->moe->h_logits, m->a.rlogits, (size_t)N * c->n_expert * sizeof(float));
    lmc_route_forward(r, m->moe->h_logits, N, c->n_expert, c->top_k, c->router);
    be->ops->upload(be, la->etok, r->tok, R * sizeof(int));
    be->ops->upload(be, la->ew, r->w, R * sizeof(float));
}

void lmc_moe_experts_forward(lmc_model *m, int l, int e0, int ne, const int *off, const float *x, float *h,
                             float *a, float *y, int R)
{
    int C = m->cfg.dim, F = m->cfg.moe_ffn;
    for (int j = 0; j < ne; j++) /* each expert's [gate | up] over its rows */
        if (off[j + 1] > off[j])
            lmc_model_linear(m, h + (size_t)off[j] * 2 * F, x + (size_t)off[j] * C,
                             expert_fc(m, m->unit_params, l, e0 + j), NULL, off[j + 1] - off[j], 2 * F, C, 0);
    m->be->ops->swiglu_forward(m->be, a, h, R, F);
    for (int j = 0; j < ne; j++) /* down */
        if (off[j + 1] > off[j])
            lmc_model_linear(m, y + (size_t)off[j] * C, a + (size_t)off[j] * F,
                             expert_proj(m, m->unit_params, l, e0 + j), NULL, off[j + 1] - off[j], C, F, 0);
}

void lmc_moe_forward(lmc_model *m, lmc_layer_acts *la, int l, int N)
{
    lmc_backend *be = m->be;
    const lmc_model_config *c = &m->cfg;
    int C = c->dim, R = N * c->top_k;
    const int *off = m->moe->route[l].off;
    shared_forward(m, la, l, N);
    route(m, la, l, N);
    be->ops->gather_rows(be, la->exg, la->ln2, la->etok, NULL, R, C);
    if (m->moe->ep) /* the rows to their experts' ranks and back */
        lmc_moe_ep_forward(m, la, l, N);
    else
        lmc_moe_experts_forward(m, l, 0, c->n_expert, off, la->exg, la->eh, la->ea, la->ey, R);
    for (int e = 0; e < c->n_expert; e++) /* weighted into the tokens' rows */
        if (off[e + 1] > off[e])
            be->ops->scatter_add_rows(be, la->res3, la->ey + (size_t)off[e] * C, la->etok + off[e], la->ew + off[e],
                                      off[e + 1] - off[e], C);
}

void lmc_moe_recompute(lmc_model *m, const lmc_layer_acts *la, int l, int N)
{
    lmc_backend *be = m->be;
    int R = N * m->cfg.top_k, S = shared_width(m);
    if (S)
        be->ops->swiglu_forward(be, la->fch_act, la->fch, N, S);
    if (m->moe->ep) /* the owner keeps its rows' activations */
        return;
    be->ops->gather_rows(be, la->exg, la->ln2, la->etok, NULL, R, m->cfg.dim);
    be->ops->swiglu_forward(be, la->ea, la->eh, R, m->cfg.moe_ffn);
}

/* dln2 (N,C) = the shared experts' part of d(ln2), or 0 without them */
static void shared_backward(lmc_model *m, const lmc_layer_acts *la, int l, int N, float *dln2)
{
    lmc_backend *be = m->be;
    int C = m->cfg.dim, S = shared_width(m);
    float *dact = dln2, *dfch = m->a.dbuf_b; /* (N,S), (N,2S); dact is dead once dfch is made */
    if (!S) {
        be->ops->zero(be, dln2, (size_t)N * C * sizeof(float));
        return;
    }
    lmc_model_linear_backward(m, dact, 0, G(l, LMC_T_PROJ_W), NULL, m->a.dres, la->fch_act, W(l, LMC_T_PROJ_W), N,
                              C, S);
    be->ops->swiglu_backward(be, dfch, la->fch, dact, N, S);
    lmc_model_linear_backward(m, dln2, 0, G(l, LMC_T_FC_W), NULL, dfch, la->ln2, W(l, LMC_T_FC_W), N, 2 * S, C);
}

void lmc_moe_experts_backward(lmc_model *m, int l, int e0, int ne, const int *off, float *dy, const float *x,
                              const float *h, const float *a, float *da, float *dh, int R)
{
    int C = m->cfg.dim, F = m->cfg.moe_ffn;
    for (int j = 0; j < ne; j++)
        if (off[j + 1] > off[j])
            lmc_model_linear_backward(m, da + (size_t)off[j] * F, 0, expert_proj(m, m->unit_grads, l, e0 + j), NULL,
                                      dy + (size_t)off[j] * C, a + (size_t)off[j] * F,
                                      expert_proj(m, m->unit_params, l, e0 + j), off[j + 1] - off[j], C, F);
    m->be->ops->swiglu_backward(m->be, dh, h, da, R, F);
    for (int j = 0; j < ne; j++) /* d(y) is dead: the rows' input gradients replace it */
        if (off[j + 1] > off[j])
            lmc_model_linear_backward(m, dy + (size_t)off[j] * C, 0, expert_fc(m, m->unit_grads, l, e0 + j), NULL,
                                      dh + (size_t)off[j] * 2 * F, x + (size_t)off[j] * C,
                                      expert_fc(m, m->unit_params, l, e0 + j), off[j + 1] - off[j], 2 * F, C);
}

/* dln2 += the routed experts' part; the rows' weight gradients into edw */
static void routed_backward(lmc_model *m, const lmc_layer_acts *la, int l, int N, float *dln2)
{
    lmc_backend *be = m->be;
    const lmc_model_config *c = &m->cfg;
    int C = c->dim, R = N * c->top_k;
    const int *off = m->moe->route[l].off;
    float *dy = m->a.edy;
    be->ops->gather_rows(be, dy, m->a.dres, la->etok, la->ew, R, C); /* d(y) = w d(res3)[token] */
    be->ops->row_dot(be, m->a.edw, m->a.dres, la->etok, la->ey, R, C); /* d(w) = d(res3)[token] . y */
    if (m->moe->ep) /* d(y) to the experts' ranks, d(x) back */
        lmc_moe_ep_backward(m, l, dy);
    else
        lmc_moe_experts_backward(m, l, 0, c->n_expert, off, dy, la->exg, la->eh, la->ea, m->a.eda, m->a.edh, R);
    for (int e = 0; e < c->n_expert; e++) /* the gathered rows' gradients to their tokens */
        if (off[e + 1] > off[e])
            be->ops->scatter_add_rows(be, dln2, dy + (size_t)off[e] * C, la->etok + off[e], NULL, off[e + 1] - off[e],
                                      C);
}

/* dln2 += the router's part: the logits' gradient from the host */
static void router_backward(lmc_model *m, const lmc_layer_acts *la, int l, int N, float *dln2)
{
    lmc_backend *be = m->be;
    const lmc_model_config *c = &m->cfg;
    lmc_moe *x = m->moe;
    int E = c->n_expert;
    be->ops->download(be, x->h_dw, m->a.edw, (size_t)N * c->top_k * sizeof(float));
    lmc_route_backward(&x->route[l], E, c->top_k, c->router, x->h_dw, c->aux_coef > 0 ? x->aux_c : NULL, x->h_dz);
    be->ops->upload(be, m->a.edz, x->h_dz, (size_t)N * E * sizeof(float));
    lmc_model_linear_backward(m, dln2, 1, G(l, LMC_T_ROUTER_W), NULL, m->a.edz, la->ln2, W(l, LMC_T_ROUTER_W), N, E,
                              c->dim);
}

void lmc_moe_backward(lmc_model *m, const lmc_layer_acts *la, int l, int N)
{
    float *dln2 = m->a.dbuf_a; // (N,C)
    shared_backward(m, la, l, N, dln2);
    routed_backward(m, la, l, N, dln2);
    router_backward(m, la, l, N, dln2);
    lmc_model_norm_backward(m, m->a.dres, G(l, LMC_T_LN2_W), G(l, LMC_T_LN2_B), dln2, la->res2, W(l, LMC_T_LN2_W),
                            la->ln2_mean, la->ln2_rstd, N);
}

/* Hugging Face's load_balancing_loss_func over the concatenated logits of
 * the M layers' N tokens each: E * sum_e f_e P_e, with f_e the share of
 * the (token, choice) pairs that chose e and P_e the mean softmax
 * probability of e. Its gradient with respect to each softmax probability
 * of e is E f_e / (M N), times the objective's weight of this forward's
 * term, aux_coef * dloss * N (as the language-model loss per token). */
void lmc_moe_aux(lmc_model *m, int N, float dloss)
{
    const lmc_model_config *c = &m->cfg;
    lmc_moe *x = m->moe;
    int E = c->n_expert, M = 0;
    memset(x->aux_f, 0, (size_t)E * sizeof(double));
    memset(x->aux_p, 0, (size_t)E * sizeof(double));
    for (int l = m->layer_begin; l < m->layer_end; l++) {
        if (!lmc_config_is_moe(c, l))
            continue;
        const lmc_route *r = &x->route[l];
        for (int e = 0; e < E; e++) {
            x->aux_f[e] += r->off[e + 1] - r->off[e];
            x->aux_p[e] += r->psum[e];
            if (dloss > 0) /* a training forward: the balancing counts it */
                x->load[(size_t)l * E + e] += r->off[e + 1] - r->off[e];
        }
        M++;
    }
    double rows = (double)M * N, aux = 0, scale = (double)c->aux_coef * dloss * N;
    for (int e = 0; e < E; e++) {
        double f = x->aux_f[e] / rows;
        aux += f * (x->aux_p[e] / rows);
        x->aux_c[e] = (float)(scale * E * f / rows);
    }
    x->aux_loss = (float)(aux * E);
}

float lmc_model_aux_loss(const lmc_model *m) { return m->moe ? m->moe->aux_loss : 0.0f; }

void lmc_moe_take_load(lmc_model *m, double *load)
{
    size_t n = (size_t)m->cfg.n_layer * m->cfg.n_expert;
    memcpy(load, m->moe->load, n * sizeof(double));
    memset(m->moe->load, 0, n * sizeof(double));
}

void lmc_moe_update_bias(lmc_model *m, const double *load, float step)
{
    const lmc_model_config *c = &m->cfg;
    int E = c->n_expert;
    for (int l = c->first_dense; l < c->n_layer; l++) {
        const double *n = load + (size_t)l * E;
        float *b = m->moe->bias + (size_t)l * E;
        double mean = 0, mid = 0;
        for (int e = 0; e < E; e++)
            mean += n[e] / E;
        for (int e = 0; e < E; e++)
            mid += (n[e] < mean) - (n[e] > mean);
        for (int e = 0; e < E; e++) /* the underloaded up, the overloaded down */
            b[e] += step * (float)((n[e] < mean) - (n[e] > mean) - mid / E);
    }
}

float *lmc_moe_bias(lmc_model *m) { return m->moe ? m->moe->bias : NULL; }
