/* engine.c: the inference forward passes over the model's weights: prefill
 * (a whole prompt in one pass, its keys and values stored into a slot of
 * the KV cache) and decode (one token for each of up to `slots` sequences,
 * attending to their cached keys). Every numeric step is a backend op.
 *
 * Shapes: C = dim, NH/NKV heads of HS, D = NKV*HS (one cached row),
 * QKV = (NH + 2 NKV) HS. KV cache per layer: k and v (slots, ctx, D).
 * Decode rows are slots (row b = slot b), so the caches need no
 * indirection; an idle row below the highest busy slot runs on a dummy
 * token with len 0 (attention output 0) and costs next to nothing, since
 * decode is bound by reading the weights, not by rows.
 *
 * The fp32 prefill mirrors lmc_model_forward op for op (same GEMM calls,
 * fused GELU), so the first generated token's logits are bit-identical to a
 * full recompute; decode uses the backend's `linear` op, which streams the
 * weights once per step instead of packing them. */
#include "infer/engine_internal.h"
#include "infer/open_model.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const lmc_tensor_slot *tslot(const lmc_engine *e, int layer, int kind)
{
    return lmc_layout_slot(&e->m->layout, layer, kind);
}

static const float *param(const lmc_engine *e, int layer, int kind)
{
    const lmc_tensor_slot *s = tslot(e, layer, kind);
    return s->offset == LMC_ABSENT ? NULL : e->m->params + s->offset;
}

/* ---------- weights: fp32 views or quantized copies ---------- */

static size_t wsize(lmc_dtype t) { return t == LMC_F32 ? 4 : t == LMC_BF16 ? 2 : 1; }

static uint16_t to_bf16(float x)
{
    union { float f; uint32_t u; } v = {x};
    if ((v.u & 0x7f800000u) == 0x7f800000u)
        return (uint16_t)((v.u >> 16) | ((v.u & 0xffffu) ? 0x40u : 0u)); /* inf stays inf, nan stays nan */
    v.u += 0x7fffu + ((v.u >> 16) & 1u);
    return (uint16_t)(v.u >> 16);
}

/* rows x cols of host fp32 into dst (host) at type t; int8 gets a symmetric
 * per-row scale max|w|/127, the max over the whole row: rowmax[r] when the
 * matrix holds only some of each row's columns (tensor parallel) */
static void quantize(void *dst, float *scale, const float *w, size_t rows, size_t cols, lmc_dtype t,
                     const float *rowmax)
{
    for (size_t r = 0; r < rows; r++) {
        const float *x = w + r * cols;
        if (t == LMC_BF16) {
            uint16_t *d = (uint16_t *)dst + r * cols;
            for (size_t c = 0; c < cols; c++)
                d[c] = to_bf16(x[c]);
            continue;
        }
        int8_t *d = (int8_t *)dst + r * cols;
        float mx = 0.0f;
        for (size_t c = 0; c < cols; c++)
            mx = fabsf(x[c]) > mx ? fabsf(x[c]) : mx;
        if (rowmax)
            mx = rowmax[r];
        float s = mx > 0 ? mx / 127.0f : 1.0f, inv = 1.0f / s;
        scale[r] = s;
        for (size_t c = 0; c < cols; c++) {
            long q = lrintf(x[c] * inv);
            d[c] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
        }
    }
}

/* The matrices decode reads: per layer those of engine_internal.h's list
 * (a tensor the layer lacks has 0 rows); then the head (its first V rows:
 * padded rows are never sampled). */
static int n_mats(const lmc_engine *e) { return e->cfg.n_layer * LMC_ENGINE_MATS + 1; }

static void mat_shape(const lmc_engine *e, int i, int *layer, int *kind, size_t *rows, size_t *cols)
{
    static const int kinds[LMC_ENGINE_MATS] = {LMC_T_QKV_W, LMC_T_ATTN_W, LMC_T_FC_W, LMC_T_PROJ_W,
                                               LMC_T_EXP_FC_W, LMC_T_EXP_PROJ_W};
    if (i == n_mats(e) - 1) {
        *layer = -1, *kind = LMC_T_HEAD;
        *rows = (size_t)e->cfg.vocab;
    } else {
        *layer = i / LMC_ENGINE_MATS, *kind = kinds[i % LMC_ENGINE_MATS];
        *rows = tslot(e, *layer, *kind)->offset == LMC_ABSENT ? 0 : tslot(e, *layer, *kind)->rows;
    }
    *cols = *rows ? tslot(e, *layer, *kind)->cols : 0;
}

/* Under tensor parallelism the ranks agree on whether each built its part
 * so far (a collective of the group), so that a failure on one rank (out of
 * memory, say) fails them all at once instead of leaving the others in the
 * next collective until the watchdog ends the job. */
static lmc_status group_agree(const lmc_engine *e, lmc_status s)
{
    if (e->m->tp <= 1)
        return s;
    double bad = s != LMC_OK;
    lmc_status c = e->tp_comm->ops->allreduce_host(e->tp_comm, &bad, 1, 1);
    if (s != LMC_OK || c != LMC_OK)
        return s != LMC_OK ? s : c;
    return bad ? lmc_err(LMC_ENOMEM, "another tensor-parallel rank could not build its weights (its message says "
                         "why)") : LMC_OK;
}

/* Under tensor parallelism the output projections hold some columns of
 * each row: the row maxima over the whole rows, the maxima of each rank's
 * columns' maxima (a max over the group: exact), so the int8 values equal
 * one process's without any rank holding the whole rows. NULL otherwise;
 * *s an error of the group's reduction. Every rank calls it for the same
 * matrices in the same order. */
static float *whole_rowmax(const lmc_engine *e, const float *w, int kind, size_t rows, size_t cols, lmc_status *s)
{
    if (e->m->tp <= 1 || (kind != LMC_T_ATTN_W && kind != LMC_T_PROJ_W))
        return NULL;
    double *mx = calloc(rows, sizeof(double));
    float *out = malloc(rows * sizeof(float));
    for (size_t r = 0; mx && r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            double v = fabs((double)w[r * cols + c]);
            mx[r] = v > mx[r] ? v : mx[r];
        }
    *s = !mx || !out ? lmc_err(LMC_ENOMEM, "out of memory") : LMC_OK;
    if (*s == LMC_OK && rows > INT_MAX)
        *s = lmc_err(LMC_ERANGE, "a tensor-parallel matrix of %zu rows is too tall to reduce", rows);
    *s = group_agree(e, *s);
    if (*s == LMC_OK)
        *s = e->tp_comm->ops->allreduce_host(e->tp_comm, mx, (int)rows, 1);
    for (size_t r = 0; *s == LMC_OK && r < rows; r++)
        out[r] = (float)mx[r];
    free(mx);
    if (*s != LMC_OK) {
        free(out);
        return NULL;
    }
    return out;
}

static lmc_status build_weights(lmc_engine *e, const float *host)
{
    int nm = n_mats(e);
    e->mats = calloc((size_t)nm, sizeof *e->mats);
    if (!e->mats)
        return lmc_err(LMC_ENOMEM, "out of memory");
    lmc_dtype t = e->quant == LMC_QUANT_INT8 ? LMC_I8 : e->quant == LMC_QUANT_BF16 ? LMC_BF16 : LMC_F32;
    size_t total = 0, nscale = 0;
    for (int i = 0; i < nm; i++) {
        int layer, kind;
        size_t rows, cols;
        mat_shape(e, i, &layer, &kind, &rows, &cols);
        e->mats[i].type = t;
        e->mats[i].rows = rows, e->mats[i].cols = cols;
        e->weight_bytes += (double)rows * cols * wsize(t) + (t == LMC_I8 ? rows * 4.0 : 0);
        if (t == LMC_F32) {
            e->mats[i].w = param(e, layer, kind);
            continue;
        }
        total += (rows * cols * wsize(t) + 63) / 64 * 64;
        nscale += (rows + 15) / 16 * 16;
    }
    if (t == LMC_F32)
        return LMC_OK;
    lmc_backend *be = e->be;
    size_t bytes = total + nscale * 4;
    e->qmem = be->ops->alloc(be, bytes);
    uint8_t *tmp = malloc(bytes ? bytes : 1);
    lmc_status ok = e->qmem && tmp ? LMC_OK
                                   : lmc_err(LMC_ENOMEM, "out of memory for %.1f MB of %s weights", bytes / 1e6,
                                             lmc_quant_name(e->quant));
    if ((ok = group_agree(e, ok)) != LMC_OK) {
        free(tmp);
        return ok;
    }
    size_t off = 0, soff = total;
    for (int i = 0; i < nm; i++) {
        int layer, kind;
        size_t rows, cols;
        mat_shape(e, i, &layer, &kind, &rows, &cols);
        if (!rows)
            continue;
        const float *src = host + tslot(e, layer, kind)->offset;
        lmc_status s = LMC_OK;
        float *rowmax = t == LMC_I8 ? whole_rowmax(e, src, kind, rows, cols, &s) : NULL;
        if (s != LMC_OK) {
            free(tmp);
            return s;
        }
        quantize(tmp + off, (float *)(tmp + soff), src, rows, cols, t, rowmax);
        free(rowmax);
        e->mats[i].w = (uint8_t *)e->qmem + off;
        e->mats[i].scale = t == LMC_I8 ? (const float *)((uint8_t *)e->qmem + soff) : NULL;
        off += (rows * cols * wsize(t) + 63) / 64 * 64;
        soff += (rows + 15) / 16 * 16 * 4;
    }
    be->ops->upload(be, e->qmem, tmp, bytes);
    free(tmp);
    e->device_bytes += (double)bytes;
    return LMC_OK;
}

/* ---------- buffers ---------- */

static lmc_status alloc_buffers(lmc_engine *e)
{
    lmc_backend *be = e->be;
    const lmc_model_config *c = &e->cfg;
    size_t R = (size_t)(e->ctx > e->slots ? e->ctx : e->slots), C = (size_t)c->dim;
    size_t D = (size_t)e->kvdim, S = (size_t)e->slots, T = (size_t)e->ctx, L = (size_t)c->n_layer;
    size_t shared = (size_t)c->n_shared * c->moe_ffn; /* a mixture of experts' shared experts use fch and act */
    size_t fc = (size_t)e->fc_dim > 2 * shared ? (size_t)e->fc_dim : 2 * shared;
    size_t act = (size_t)e->act_dim > shared ? (size_t)e->act_dim : shared;
    size_t sizes[] = {R * C, R * C, R * (size_t)e->qkv_dim, R * C, R * fc, R * act, S * (size_t)c->vocab_padded};
    float **ptrs[] = {&e->x, &e->ln, &e->qkv, &e->atty, &e->fch, &e->act, &e->logits};
    size_t nf = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        nf += (sizes[i] + 15) / 16 * 16;
    size_t cache = L * S * T * D; /* floats per layer-set of k (and again of v) */
    e->buf = be->ops->alloc(be, nf * 4);
    e->kcache = be->ops->alloc(be, cache * 4);
    e->vcache = be->ops->alloc(be, cache * 4);
    e->ints = be->ops->alloc(be, (R + 2 * S + 16) * sizeof(int));
    e->h_ints = calloc(R + 6 * S + 16, sizeof(int)); /* decode's 3 + 1 (busy rows), the scheduler's 2 per slot */
    e->h_logits = malloc(S * (size_t)c->vocab_padded * sizeof(float));
    e->h_scratch = malloc((size_t)c->vocab * 2 * sizeof(float));
    e->h_counts = calloc((size_t)c->vocab, sizeof(int));
    if (!e->buf || !e->kcache || !e->vcache || !e->ints || !e->h_ints || !e->h_logits || !e->h_scratch ||
        !e->h_counts)
        return lmc_err(LMC_ENOMEM, "out of memory: the KV cache for %d slots x %d tokens needs %.1f MB", e->slots,
                       e->ctx, 2.0 * cache * 4 / 1e6);
    size_t off = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        *ptrs[i] = e->buf + off;
        off += (sizes[i] + 15) / 16 * 16;
    }
    e->d_tok = e->ints;
    e->d_pos = e->ints + R;
    e->d_len = e->ints + R + S;
    e->d_zero = e->ints + R + 2 * S;
    e->device_bytes += nf * 4.0 + 2.0 * cache * 4 + (R + 2 * S + 16) * 4.0;
    return LMC_OK;
}

/* This rank's part read from the weights file, only its elements
 * (lmc_weights_load_part, as a training rank reads --init): straight into
 * the model's buffer when that is host memory (*part stays NULL), else
 * into a host *part to upload. */
static lmc_status read_part(lmc_engine *e, const lmc_model_config *cfg, const char *path, float **part)
{
    if (!path)
        return lmc_err(LMC_EINVAL, "an engine needs the model's parameters or the path of its weights");
    lmc_part_map m;
    LMC_TRY(lmc_part_map_build(cfg, &e->m->layout, e->tp_comm ? e->tp_comm->rank : 0, NULL, 0, &m));
    float *dst = e->be->host_memory ? e->m->params
                                    : (*part = lmc_alloc((m.floats ? m.floats : 1) * sizeof(float),
                                                         "this rank's part of the model"));
    lmc_model_config fc;
    lmc_layout l;
    lmc_status s = dst ? lmc_weights_load_part(path, &fc, &l, &m, dst) : LMC_ENOMEM;
    if (s == LMC_OK)
        lmc_layout_free(&l);
    lmc_part_map_free(&m);
    return s;
}

/* The model, whole or (tensor parallel) this rank's part of it, cut from
 * params or (params NULL) read from o->weights: *part receives a host copy
 * of the part to upload, NULL when the model holds it already or it is
 * params itself. */
static lmc_status open_model(lmc_engine *e, const lmc_model_config *cfg, const float *params,
                             const lmc_engine_opts *o, float **part)
{
    lmc_model_opts mo = {.training = 0};
    int tp = o->tp;
    if (tp > 1) {
        LMC_TRY(lmc_comm_open("auto", &e->tp_comm));
        if (e->tp_comm->size != tp)
            return lmc_err(LMC_EINVAL, "--tp %d splits the model over %d processes: run it as mpirun -np %d (this "
                           "launch has %d)", tp, tp, tp, e->tp_comm->size);
        LMC_TRY(lmc_config_check_tp(cfg, tp));
        mo.tp = tp, mo.tp_rank = e->tp_comm->rank, mo.tp_comm = e->tp_comm;
    }
    LMC_TRY(lmc_model_open_opts(&e->m, cfg, e->be, 1, 1, &mo));
    if (!params)
        return read_part(e, cfg, o->weights, part);
    if (tp <= 1)
        return LMC_OK;
    return lmc_layout_tp_part(cfg, &e->m->layout, mo.tp_rank, params, part);
}

/* The checks every engine makes, and a new one for them (closed with
 * lmc_engine_close) */
static lmc_status new_engine(lmc_engine **out, lmc_backend *be, const lmc_model_config *cfg, const lmc_engine_opts *o)
{
    *out = NULL;
    if (o->tp > 1)
        LMC_TRY(lmc_config_check_tp(cfg, o->tp));
    LMC_TRY(lmc_backend_supports_model(be, cfg, &((lmc_backend_use){
        .B = o->slots, .T = o->ctx > 0 ? o->ctx : cfg->max_seq, .tp = o->tp, .engine = 1,
        .wtype = o->quant == LMC_QUANT_INT8 ? LMC_I8 : o->quant == LMC_QUANT_BF16 ? LMC_BF16 : LMC_F32})));
    int ctx = o->ctx > 0 ? o->ctx : cfg->max_seq;
    if (ctx < 2 || ctx > cfg->max_seq)
        return lmc_err(LMC_ERANGE, "--ctx %d must be in [2, %d] (the model's max_seq)", o->ctx, cfg->max_seq);
    if (o->slots < 1 || o->slots > 4096)
        return lmc_err(LMC_ERANGE, "--slots %d must be in [1, 4096]", o->slots);
    lmc_engine *e = calloc(1, sizeof *e);
    if (!e)
        return lmc_err(LMC_ENOMEM, "out of memory");
    e->be = be;
    e->cfg = *cfg;
    e->slots = o->slots;
    e->ctx = ctx;
    e->quant = o->quant;
    *out = e;
    return LMC_OK;
}

/* The rest over e->m, whose parameters are mine on the host (NULL: the
 * model's own, fp32 only) */
static lmc_status finish_open(lmc_engine *e, const float *mine)
{
    e->hs = e->m->hs;
    e->qkv_dim = e->m->qkv_dim;
    e->fc_dim = e->m->fc_dim;
    e->act_dim = e->m->act_dim;
    e->kvdim = e->m->nkv * e->hs;
    e->device_bytes = e->m->layout.total * 4.0;
    LMC_TRY(build_weights(e, mine));
    LMC_TRY(alloc_buffers(e));
    return lmc_engine_moe_open(e);
}

lmc_status lmc_engine_open(lmc_engine **out, lmc_backend *be, const lmc_model_config *cfg, const float *params,
                           const lmc_engine_opts *o)
{
    lmc_engine *e;
    LMC_TRY(new_engine(&e, be, cfg, o));
    /* the model holds the fp32 parameters (embeddings, norms, biases, and
     * the weights of the fp32 path); its own activations are 1 x 1 */
    float *part = NULL;
    lmc_status s = open_model(e, cfg, params, o, &part);
    if (s == LMC_OK) {
        const float *mine = part ? part : params ? params : e->m->params; /* the last: read in place */
        lmc_engine_moe_set_bias(e, o->moe_bias);
        if (mine != e->m->params)
            lmc_model_upload_params(e->m, mine);
        s = finish_open(e, mine);
    }
    lmc_free(part);
    if (s) {
        lmc_engine_close(e);
        return s;
    }
    *out = e;
    return LMC_OK;
}

lmc_status lmc_engine_open_model(lmc_engine **out, lmc_model *m, const lmc_engine_opts *o)
{
    *out = NULL;
    if (o->quant != LMC_QUANT_NONE || o->tp > 1 || m->tp > 1)
        return lmc_err(LMC_EINVAL, "an engine over an open model runs its fp32 weights in one process");
    lmc_engine *e;
    LMC_TRY(new_engine(&e, m->be, &m->cfg, o));
    e->m = m;
    e->borrowed = 1;
    lmc_status s = finish_open(e, NULL);
    if (s) {
        lmc_engine_close(e);
        return s;
    }
    *out = e;
    return LMC_OK;
}

void lmc_engine_close(lmc_engine *e)
{
    if (!e)
        return;
    lmc_backend *be = e->be;
    lmc_engine_release_followers(e);
    lmc_engine_moe_close(e);
    void *dev[] = {e->qmem, e->buf, e->kcache, e->vcache, e->ints};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++)
        if (dev[i])
            be->ops->free(be, dev[i]);
    if (!e->borrowed)
        lmc_model_close(e->m);
    lmc_comm_close(e->tp_comm);
    free(e->mats), free(e->h_ints), free(e->h_logits), free(e->h_scratch), free(e->h_counts);
    free(e);
}

const lmc_model_config *lmc_engine_config(const lmc_engine *e) { return &e->cfg; }
int lmc_engine_slots(const lmc_engine *e) { return e->slots; }
int lmc_engine_ctx(const lmc_engine *e) { return e->ctx; }
int lmc_engine_rank(const lmc_engine *e) { return e->tp_comm ? e->tp_comm->rank : 0; }
double lmc_engine_weight_bytes(const lmc_engine *e) { return e->weight_bytes; }
double lmc_engine_device_bytes(const lmc_engine *e) { return e->device_bytes; }

void lmc_engine_get_stats(const lmc_engine *e, lmc_engine_stats *st) { *st = e->stats; }

lmc_status lmc_quant_parse(const char *s, const char *what, lmc_quant *q)
{
    if (!s || !strcmp(s, "none") || !strcmp(s, "fp32"))
        *q = LMC_QUANT_NONE;
    else if (!strcmp(s, "bf16"))
        *q = LMC_QUANT_BF16;
    else if (!strcmp(s, "int8"))
        *q = LMC_QUANT_INT8;
    else
        return lmc_err(LMC_EINVAL, "%s: unknown weight type '%s' (use none, bf16 or int8)", what, s);
    return LMC_OK;
}

const char *lmc_quant_name(lmc_quant q)
{
    return q == LMC_QUANT_INT8 ? "int8" : q == LMC_QUANT_BF16 ? "bf16" : "fp32";
}
