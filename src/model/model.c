/* model.c: allocation of parameters, gradients and activations, and batch upload. */
#include "model/moe.h"

#include <stdlib.h>
#include <string.h>

enum { A_LN1, A_LN1M, A_LN1R, A_QKV, A_ATTY, A_LSE, A_RES2, A_LN2, A_LN2M, A_LN2R, A_FCH, A_FCA, A_RES3,
       A_ETOK, A_EW, A_EXG, A_EH, A_EA, A_EY, A_NLAYER };
_Static_assert(A_NLAYER == LMC_LAYER_ACTS, "model.h's LMC_LAYER_ACTS counts the slots");

/* The MLP slots' widths, fc (pre-activation) and act: a dense layer's, or
 * a mixture-of-experts layer's shared experts' (2S, S), the larger. */
static void mlp_widths(const lmc_model *m, size_t *fc, size_t *act)
{
    const lmc_model_config *c = &m->cfg;
    int dense = c->n_expert == 0 || c->first_dense > 0;
    size_t S = (size_t)c->n_shared * c->moe_ffn;
    *fc = dense ? (size_t)m->fc_dim : 0;
    *act = dense ? (size_t)m->act_dim : 0;
    *fc = 2 * S > *fc ? 2 * S : *fc;
    *act = S > *act ? S : *act;
}

static void layer_sizes(const lmc_model *m, int B, int T, size_t *sz)
{
    size_t N = (size_t)B * T, C = (size_t)m->cfg.dim, n = (size_t)lmc_model_rows(m, B * T), fc, act;
    size_t R = N * (size_t)m->cfg.top_k, F = (size_t)m->cfg.moe_ffn; /* rows of the experts (0 when dense) */
    mlp_widths(m, &fc, &act);
    size_t s[A_NLAYER] = {n * C, n, n, N * m->qkv_dim, N * C, N * m->nh, n * C,
                          n * C, n, n, N * fc, N * act, n * C,
                          R, R, R * C, R * 2 * F, R * F, R * C};
    for (int i = 0; i < A_NLAYER; i++)
        sz[i] = (s[i] + 15) / 16 * 16;
}

static size_t scratch_width(const lmc_model *m)
{
    size_t x = (size_t)m->cfg.dim, fc, act;
    mlp_widths(m, &fc, &act);
    if ((size_t)m->qkv_dim > x)
        x = (size_t)m->qkv_dim;
    return fc > x ? fc : x;
}

int lmc_model_keeps(lmc_recompute rc, int i)
{
    if (rc == LMC_RECOMPUTE_FULL)
        return i == A_RES3; /* the next layer's input */
    if (rc == LMC_RECOMPUTE_SELECTIVE)
        return i != A_LN1 && i != A_LN2 && i != A_FCA && i != A_EXG && i != A_EA;
    return 1;
}

/* Lays the activations out in one block; with base NULL only counts. An
 * intermediate kept for backward has one slot per layer, the others one
 * slot that every layer overwrites (and backward recomputes). */
static size_t layout_acts(lmc_model *m, float *base, int B, int T, int training)
{
    size_t N = (size_t)B * T, C = (size_t)m->cfg.dim, L = (size_t)m->act_layers;
    int final = m->layout.holds_final;
    size_t sz[A_NLAYER], off = 0;
    layer_sizes(m, B, T, sz);
    float **per_layer[A_NLAYER] = {&m->a.ln1, &m->a.ln1_mean, &m->a.ln1_rstd, &m->a.qkv, &m->a.atty, &m->a.lse,
                                   &m->a.res2, &m->a.ln2, &m->a.ln2_mean, &m->a.ln2_rstd, &m->a.fch,
                                   &m->a.fch_act, &m->a.res3, (float **)&m->a.etok, &m->a.ew, &m->a.exg,
                                   &m->a.eh, &m->a.ea, &m->a.ey};
#define TAKE(ptr, n) (ptr = base ? base + off : NULL, off += ((n) + 15) / 16 * 16)
    for (int i = 0; i < A_NLAYER; i++) {
        int kept = training && lmc_model_keeps(m->recompute, i);
        TAKE(*per_layer[i], sz[i] * (kept ? L : 1));
        m->layer_stride[i] = kept ? sz[i] : 0;
    }
    size_t n = (size_t)lmc_model_rows(m, B * T); /* the residual stream's rows here */
    TAKE(m->a.encoded, n * C);
    size_t logits = N * (size_t)m->vrows; /* vocabulary-parallel: this rank's columns, or B gathered rows */
    if (m->vocab_split && (size_t)B * m->cfg.vocab_padded > logits)
        logits = (size_t)B * m->cfg.vocab_padded;
    TAKE(m->a.lnf, final ? n * C : 0);
    TAKE(m->a.lnf_mean, final ? n : 0);
    TAKE(m->a.lnf_rstd, final ? n : 0);
    TAKE(m->a.gath, m->sp ? N * C : 0);
    TAKE(m->a.logits, final ? logits : 0);
    TAKE(m->a.losses, final ? N : 0);
    TAKE(m->a.scalar, 16);
    size_t E = (size_t)m->cfg.n_expert, R = N * (size_t)m->cfg.top_k, F = (size_t)m->cfg.moe_ffn;
    TAKE(m->a.rlogits, N * E);
    if (training) {
        TAKE(m->a.dres, n * C);
        TAKE(m->a.dbuf_a, N * scratch_width(m));
        TAKE(m->a.dbuf_b, N * scratch_width(m));
        TAKE(m->a.edy, R * C);
        TAKE(m->a.eda, R * F);
        TAKE(m->a.edh, R * 2 * F);
        TAKE(m->a.edw, R);
        TAKE(m->a.edz, N * E);
    }
#undef TAKE
    return off;
}

void lmc_model_layer_acts(const lmc_model *m, int layer, lmc_layer_acts *la)
{
    const lmc_acts *a = &m->a;
    const size_t *st = m->layer_stride, l = (size_t)(layer - m->layer_begin);
    la->ln1 = a->ln1 + l * st[A_LN1];
    la->ln1_mean = a->ln1_mean + l * st[A_LN1M];
    la->ln1_rstd = a->ln1_rstd + l * st[A_LN1R];
    la->qkv = a->qkv + l * st[A_QKV];
    la->atty = a->atty + l * st[A_ATTY];
    la->lse = a->lse + l * st[A_LSE];
    la->res2 = a->res2 + l * st[A_RES2];
    la->ln2 = a->ln2 + l * st[A_LN2];
    la->ln2_mean = a->ln2_mean + l * st[A_LN2M];
    la->ln2_rstd = a->ln2_rstd + l * st[A_LN2R];
    la->fch = a->fch + l * st[A_FCH];
    la->fch_act = a->fch_act + l * st[A_FCA];
    la->res3 = a->res3 + l * st[A_RES3];
    la->etok = a->etok + l * st[A_ETOK];
    la->ew = a->ew + l * st[A_EW];
    la->exg = a->exg + l * st[A_EXG];
    la->eh = a->eh + l * st[A_EH];
    la->ea = a->ea + l * st[A_EA];
    la->ey = a->ey + l * st[A_EY];
}

/* Shapes of this rank's part of a layer (all of it without tensor parallelism). */
static void set_dims(lmc_model *m, const lmc_model_config *cfg, int tp)
{
    m->hs = lmc_config_head_dim(cfg);
    m->nh = cfg->n_head / tp;
    m->nkv = lmc_config_tp_kv_heads(cfg, tp);
    m->act_dim = cfg->ffn_dim / tp;
    m->qkv_dim = (m->nh + 2 * m->nkv) * m->hs;
    m->fc_dim = (cfg->mlp == LMC_MLP_SWIGLU ? 2 : 1) * m->act_dim;
}

size_t lmc_model_activation_bytes(const lmc_model_config *cfg, int B, int T, int training, lmc_recompute rc)
{
    lmc_model m;
    memset(&m, 0, sizeof m);
    m.cfg = *cfg;
    m.recompute = rc;
    set_dims(&m, cfg, 1);
    m.vrows = cfg->vocab_padded;
    m.act_layers = cfg->n_layer;
    m.layout.holds_final = 1;
    return layout_acts(&m, NULL, B, T, training) * sizeof(float);
}

/* Unit pointers into the model's own buffers (where it has them). */
static lmc_status units_init(lmc_model *m)
{
    int U = lmc_layout_num_units(&m->layout);
    m->unit_params = calloc((size_t)U, sizeof *m->unit_params);
    m->unit_grads = calloc((size_t)U, sizeof *m->unit_grads);
    m->unit_begin = calloc((size_t)U, sizeof *m->unit_begin);
    if (!m->unit_params || !m->unit_grads || !m->unit_begin)
        return lmc_err(LMC_ENOMEM, "out of memory");
    for (int u = 0; u < U; u++) {
        size_t b, e;
        lmc_layout_unit(&m->layout, u, &b, &e);
        m->unit_begin[u] = b;
        m->unit_params[u] = m->params ? m->params + b : NULL;
        m->unit_grads[u] = m->grads ? m->grads + b : NULL;
    }
    return LMC_OK;
}

static void model_init(lmc_model *m, const lmc_model_config *cfg, lmc_backend *be, int B, int T,
                       const lmc_model_opts *o)
{
    m->cfg = *cfg;
    m->be = be;
    m->B = B;
    m->T = T;
    m->training = o->training;
    m->recompute = o->training ? o->recompute : LMC_RECOMPUTE_NONE;
    m->prec = LMC_F32;
    m->tp = o->tp > 1 ? o->tp : 1;
    m->tp_rank = m->tp > 1 ? o->tp_rank : 0;
    m->tp_comm = m->tp > 1 ? o->tp_comm : NULL;
    m->sp = m->tp > 1 && o->sp && o->training;
    set_dims(m, cfg, m->tp);
    m->vocab_split = m->tp > 1 && o->vocab_parallel;
    m->vrows = cfg->vocab_padded / (m->vocab_split ? m->tp : 1);
    m->v0 = m->vocab_split ? m->tp_rank * m->vrows : 0;
    m->act_slots = o->act_slots > 1 ? o->act_slots : 1;
    m->ep = o->ep > 1 ? o->ep : 1;
    m->ep_comm = m->ep > 1 ? o->ep_comm : NULL;
    int left = cfg->vocab - m->v0;
    m->vvalid = left < 0 ? 0 : left < m->vrows ? left : m->vrows;
}

/* The chunks (lmc_model_opts), chunk 0 current. */
static lmc_status chunks_init(lmc_model *m, const lmc_model_opts *o)
{
    m->chunks = o->chunks > 0 ? o->chunks : 1;
    m->chunk_bounds = malloc(2 * (size_t)m->chunks * sizeof(int));
    if (!m->chunk_bounds)
        return lmc_err(LMC_ENOMEM, "out of memory");
    m->chunk_bounds[0] = 0;
    m->chunk_bounds[1] = m->cfg.n_layer;
    if (o->chunks > 0)
        memcpy(m->chunk_bounds, o->chunk_bounds, 2 * (size_t)m->chunks * sizeof(int));
    for (int c = 0; c < m->chunks; c++) {
        int n = m->chunk_bounds[2 * c + 1] - m->chunk_bounds[2 * c];
        m->act_layers = n > m->act_layers ? n : m->act_layers;
    }
    lmc_model_use_chunk(m, 0);
    return LMC_OK;
}

void lmc_model_use_chunk(lmc_model *m, int c)
{
    m->layer_begin = m->chunk_bounds[2 * c];
    m->layer_end = m->chunk_bounds[2 * c + 1];
}

static lmc_status vocab_buffers(lmc_model *m)
{
    size_t N = (size_t)m->B * m->T;
    m->tokens_part = m->tokens_part_all = m->be->ops->alloc(m->be, N * m->act_slots * sizeof(int));
    m->xstats = m->be->ops->alloc(m->be, 2 * N * sizeof(float));
    m->h_ids = malloc(N * sizeof(int));
    m->h_xstats = malloc(2 * N * sizeof(float));
    m->h_rows = malloc(3 * N * sizeof(double));
    if (!m->tokens_part || !m->xstats || !m->h_ids || !m->h_xstats || !m->h_rows)
        return lmc_err(LMC_ENOMEM, "out of memory");
    return LMC_OK;
}

lmc_status lmc_model_open_opts(lmc_model **out, const lmc_model_config *cfg, lmc_backend *be, int B, int T,
                               const lmc_model_opts *o)
{
    *out = NULL;
    if (B < 1 || T < 1 || T > cfg->max_seq)
        return lmc_err(LMC_ERANGE, "--seq %d must be in [1, %d] (the model's max_seq) and --batch %d >= 1", T,
                       cfg->max_seq, B);
    /* an unsupported configuration fails here, with the backend's reason */
    LMC_TRY(lmc_backend_supports_model(be, cfg, &((lmc_backend_use){.B = B, .T = T, .training = o->training,
                                                                     .prec = LMC_F32, .tp = o->tp,
                                                                     .vocab_parallel = o->vocab_parallel})));
    lmc_model *m = calloc(1, sizeof *m);
    if (!m)
        return lmc_err(LMC_ENOMEM, "out of memory");
    model_init(m, cfg, be, B, T, o);
    lmc_status s = chunks_init(m, o);
    if (s == LMC_OK)
        s = m->ep > 1 && m->ep_comm /* this rank's experts only */
                ? lmc_layout_build_ep(cfg, m->ep, m->ep_comm->rank, &m->layout)
                : lmc_layout_build_chunks(cfg, m->tp, o->vocab_parallel, m->chunks, m->chunk_bounds, &m->layout);
    if (s) {
        free(m->chunk_bounds);
        free(m);
        return s;
    }
    size_t pbytes = m->layout.total * sizeof(float);
    int want_params = !o->no_params, want_grads = o->training && !o->no_grads;
    m->act_floats = layout_acts(m, NULL, B, T, o->training);
    m->params = want_params ? be->ops->alloc(be, pbytes) : NULL;
    m->grads = want_grads ? be->ops->alloc(be, pbytes) : NULL;
    size_t K = (size_t)m->act_slots;
    m->act_mem = be->ops->alloc(be, K * m->act_floats * sizeof(float));
    m->tokens = m->tokens_all = be->ops->alloc(be, K * B * T * sizeof(int));
    m->targets = m->targets_all = be->ops->alloc(be, K * B * T * sizeof(int));
    if ((want_params && !m->params) || (want_grads && !m->grads) || !m->act_mem || !m->tokens || !m->targets) {
        double act_mb = K * m->act_floats * 4 / 1e6;
        lmc_model_close(m);
        return lmc_err(LMC_ENOMEM, "out of memory: model needs %.1f MB of parameters%s and %.1f MB of activations "
                       "for batch %d x %d", pbytes / 1e6, want_grads ? " (x2 with gradients)" : "", act_mb, B, T);
    }
    s = units_init(m);
    if (s == LMC_OK && m->vocab_split)
        s = vocab_buffers(m);
    if (s == LMC_OK)
        s = lmc_moe_open(m);
    if (s) {
        lmc_model_close(m);
        return s;
    }
    layout_acts(m, m->act_mem, B, T, o->training);
    *out = m;
    return LMC_OK;
}

void lmc_model_use_slot(lmc_model *m, int k)
{
    size_t N = (size_t)m->B * m->T;
    layout_acts(m, (float *)m->act_mem + (size_t)k * m->act_floats, m->B, m->T, m->training);
    m->tokens = m->tokens_all + (size_t)k * N;
    m->targets = m->targets_all + (size_t)k * N;
    if (m->tokens_part_all)
        m->tokens_part = m->tokens_part_all + (size_t)k * N;
}

lmc_status lmc_model_open(lmc_model **out, const lmc_model_config *cfg, lmc_backend *be, int B, int T,
                          int training)
{
    lmc_model_opts o = {.training = training};
    return lmc_model_open_opts(out, cfg, be, B, T, &o);
}

void lmc_model_close(lmc_model *m)
{
    if (!m)
        return;
    lmc_backend *be = m->be;
    void *bufs[] = {m->params, m->grads, m->act_mem, m->tokens_all, m->targets_all, m->tokens_part_all, m->xstats};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        if (bufs[i])
            be->ops->free(be, bufs[i]);
    lmc_moe_close(m);
    lmc_layout_free(&m->layout);
    free(m->unit_params);
    free(m->unit_grads);
    free(m->unit_begin);
    free(m->chunk_bounds);
    free(m->h_ids);
    free(m->h_xstats);
    free(m->h_rows);
    free(m);
}

void lmc_model_upload_params(lmc_model *m, const float *host)
{
    m->be->ops->upload(m->be, m->params, host, m->layout.total * sizeof(float));
}

void lmc_model_download_params(lmc_model *m, float *host)
{
    m->be->ops->download(m->be, host, m->params, m->layout.total * sizeof(float));
}

void lmc_model_zero_grads(lmc_model *m)
{
    if (m->grads)
        m->be->ops->zero(m->be, m->grads, m->layout.total * sizeof(float));
}

lmc_status lmc_model_set_batch(lmc_model *m, const int *tokens, const int *targets, int B, int T, const char *what)
{
    if (B > m->B || T > m->T)
        return lmc_err(LMC_ERANGE, "%s: batch %d x %d exceeds the allocated %d x %d", what, B, T, m->B, m->T);
    size_t n = (size_t)B * T;
    for (size_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= m->cfg.vocab)
            return lmc_err(LMC_ERANGE, "%s: token id %d at position %zu is outside the vocabulary [0, %d)", what,
                           tokens[i], i, m->cfg.vocab);
        if (targets && (targets[i] < 0 || targets[i] >= m->cfg.vocab))
            return lmc_err(LMC_ERANGE, "%s: target id %d at position %zu is outside the vocabulary [0, %d)", what,
                           targets[i], i, m->cfg.vocab);
    }
    m->be->ops->upload(m->be, m->tokens, tokens, n * sizeof(int));
    if (m->vocab_split) { /* the embedding rows this rank holds; -1: another rank's */
        for (size_t i = 0; i < n; i++)
            m->h_ids[i] = tokens[i] >= m->v0 && tokens[i] < m->v0 + m->vrows ? tokens[i] - m->v0 : -1;
        m->be->ops->upload(m->be, m->tokens_part, m->h_ids, n * sizeof(int));
    }
    if (targets)
        m->be->ops->upload(m->be, m->targets, targets, n * sizeof(int));
    return LMC_OK;
}

float lmc_model_mean_loss(lmc_model *m, int B, int T)
{
    float sum;
    m->be->ops->sum(m->be, m->a.scalar, m->a.losses, (size_t)B * T, 0);
    m->be->ops->download(m->be, &sum, m->a.scalar, sizeof sum);
    return sum / ((float)B * T);
}
