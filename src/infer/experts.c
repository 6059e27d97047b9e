/* experts.c: the engine's mixture-of-experts layers, as moe.c's forward
 * computes them (the same ops in the same order, so a prefill stays
 * bit-identical to lmc_model_forward): the shared experts into the
 * residual, the router's logits to the host, the routing (route.c), the
 * rows gathered by expert, one matmul per expert over its rows, SwiGLU, one
 * matmul per expert back to the model's width and each row, times its
 * weight, added to its token. Decode routes only the busy slots, so an idle
 * row neither runs an expert nor makes one run.
 *
 * Shapes: N rows (<= max(ctx, slots)), C = dim, E experts of width F, k per
 * token, R = N_routed k rows in expert order, S = the shared experts' width.
 * The router stays fp32 under bf16/int8 weights (as llama.cpp keeps
 * ffn_gate_inp): a rounded logit would route a token elsewhere. The
 * balancing bias (DeepSeek-V3's, the model's lmc_moe_bias) is added to the
 * scores to choose the experts, not to their weights, as training does. */
#include "infer/engine_internal.h"
#include "model/moe.h"

#include <stdlib.h>
#include <string.h>

struct lmc_engine_moe {
    lmc_route route;    /* host: the current layer's routing */
    float *h_all, *h_logits; /* host (N,E): every row's logits, the routed rows' */
    float *logits;      /* device (N,E) */
    float *exg, *eh, *ea, *ey; /* device (R,C), (R,2F), (R,F), (R,C) */
    float *w;           /* device (R) routing weights */
    int *tok;           /* device (R) the row of e->x each expert row belongs to */
    void *mem;
};

lmc_status lmc_engine_moe_open(lmc_engine *e)
{
    const lmc_model_config *c = &e->cfg;
    if (c->n_expert <= 0)
        return LMC_OK;
    size_t N = (size_t)(e->ctx > e->slots ? e->ctx : e->slots), E = (size_t)c->n_expert;
    size_t R = N * (size_t)c->top_k, C = (size_t)c->dim, F = (size_t)c->moe_ffn;
    struct lmc_engine_moe *x = calloc(1, sizeof *x);
    if (!x)
        return lmc_err(LMC_ENOMEM, "out of memory");
    e->moe = x;
    size_t sizes[] = {N * E, R * C, R * 2 * F, R * F, R * C, R, R}, total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        total += (sizes[i] + 15) / 16 * 16;
    x->mem = e->be->ops->alloc(e->be, total * 4);
    x->h_all = malloc(N * E * sizeof(float));
    x->h_logits = malloc(N * E * sizeof(float));
    if (!x->mem || !x->h_all || !x->h_logits)
        return lmc_err(LMC_ENOMEM, "out of memory for the expert rows of %zu tokens (%.1f MB)", N, total * 4 / 1e6);
    float **ptr[] = {&x->logits, &x->exg, &x->eh, &x->ea, &x->ey, &x->w, (float **)&x->tok};
    float *at = x->mem;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        *ptr[i] = at;
        at += (sizes[i] + 15) / 16 * 16;
    }
    e->device_bytes += total * 4.0;
    return lmc_route_alloc(&x->route, (int)N, c->n_expert, c->top_k);
}

void lmc_engine_moe_close(lmc_engine *e)
{
    struct lmc_engine_moe *x = e->moe;
    if (!x)
        return;
    if (x->mem)
        e->be->ops->free(e->be, x->mem);
    lmc_route_free(&x->route);
    free(x->h_all);
    free(x->h_logits);
    free(x);
    e->moe = NULL;
}

void lmc_engine_moe_set_bias(lmc_engine *e, const float *bias)
{
    float *mine = lmc_moe_bias(e->m);
    if (bias && mine && e->cfg.n_expert > 0)
        memcpy(mine, bias, (size_t)e->cfg.n_layer * e->cfg.n_expert * sizeof(float));
}

static const lmc_wmat *mat(const lmc_engine *e, int l, int which) { return &e->mats[l * LMC_ENGINE_MATS + which]; }

/* x += the shared experts' SwiGLU of ln (all N rows: it is a dense MLP) */
static void shared(lmc_engine *e, int l, int N, int gemm)
{
    const lmc_wmat *fc = mat(e, l, LMC_EM_FC);
    if (!fc->rows)
        return;
    int S = (int)fc->rows / 2;
    lmc_engine_lin(e, e->fch, e->ln, fc, 0, fc->rows, NULL, N, 0, gemm);
    e->be->ops->swiglu_forward(e->be, e->act, e->fch, N, S);
    lmc_engine_lin(e, e->x, e->act, mat(e, l, LMC_EM_PROJ), 0, (size_t)e->cfg.dim, NULL, N, 1, gemm);
}

/* The routing of the busy rows (all N when busy is NULL): the logits of
 * every row on the device, the busy ones' to the host, each expert's rows
 * (by the engine's row) and weights back to the device. */
static void route(lmc_engine *e, int l, int N, const int *busy, int nbusy, int gemm)
{
    lmc_backend *be = e->be;
    const lmc_model_config *c = &e->cfg;
    struct lmc_engine_moe *x = e->moe;
    int E = c->n_expert;
    const lmc_tensor_slot *s = lmc_layout_slot(&e->m->layout, l, LMC_T_ROUTER_W);
    lmc_wmat router = {.w = e->m->params + s->offset, .type = LMC_F32, .rows = (size_t)E, .cols = s->cols};
    lmc_engine_lin(e, x->logits, e->ln, &router, 0, (size_t)E, NULL, N, 0, gemm);
    be->ops->download(be, busy ? x->h_all : x->h_logits, x->logits, (size_t)N * E * sizeof(float));
    for (int i = 0; busy && i < nbusy; i++)
        memcpy(x->h_logits + (size_t)i * E, x->h_all + (size_t)busy[i] * E, (size_t)E * sizeof(float));
    lmc_route *r = &x->route;
    r->bias = lmc_moe_bias(e->m) + (size_t)l * E; /* chooses, as in training; zeros without one */
    lmc_route_forward(r, x->h_logits, nbusy, E, c->top_k, c->router);
    size_t R = (size_t)nbusy * c->top_k;
    for (size_t i = 0; busy && i < R; i++)
        r->tok[i] = busy[r->tok[i]];
    be->ops->upload(be, x->tok, r->tok, R * sizeof(int));
    be->ops->upload(be, x->w, r->w, R * sizeof(float));
}

void lmc_engine_moe_mlp(lmc_engine *e, int l, int N, const int *busy, int nbusy, int gemm)
{
    lmc_backend *be = e->be;
    const lmc_model_config *c = &e->cfg;
    struct lmc_engine_moe *x = e->moe;
    int C = c->dim, F = c->moe_ffn, R = nbusy * c->top_k;
    const int *off = x->route.off;
    shared(e, l, N, gemm);
    if (nbusy < 1)
        return;
    route(e, l, N, busy, nbusy, gemm);
    const lmc_wmat *up = mat(e, l, LMC_EM_EXP_FC), *down = mat(e, l, LMC_EM_EXP_PROJ);
    be->ops->gather_rows(be, x->exg, e->ln, x->tok, NULL, R, C);
    for (int j = 0; j < c->n_expert; j++) /* each expert's [gate | up] over its rows */
        if (off[j + 1] > off[j])
            lmc_engine_lin(e, x->eh + (size_t)off[j] * 2 * F, x->exg + (size_t)off[j] * C, up, (size_t)j * 2 * F,
                           2 * (size_t)F, NULL, off[j + 1] - off[j], 0, gemm);
    be->ops->swiglu_forward(be, x->ea, x->eh, R, F);
    for (int j = 0; j < c->n_expert; j++) { /* down, then weighted into the tokens' rows */
        int n = off[j + 1] - off[j];
        if (!n)
            continue;
        float *y = x->ey + (size_t)off[j] * C;
        lmc_engine_lin(e, y, x->ea + (size_t)off[j] * F, down, (size_t)j * C, (size_t)C, NULL, n, 0, gemm);
        be->ops->scatter_add_rows(be, e->x, y, x->tok + off[j], x->w + off[j], n, C);
    }
}
