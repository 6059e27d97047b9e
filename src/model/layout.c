/* layout.c: where every parameter tensor lives in the flat buffer. */
#include "lmc/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t place(size_t *cursor, lmc_tensor_slot *s, size_t rows, size_t cols, int decay)
{
    s->offset = *cursor;
    s->rows = rows;
    s->cols = cols;
    s->decay = decay;
    *cursor += (rows * cols + 15) / 16 * 16;
    return s->offset;
}

static void absent(lmc_tensor_slot *s)
{
    memset(s, 0, sizeof *s);
    s->offset = LMC_ABSENT;
}

/* A mixture-of-experts layer's MLP: the router, the shared experts (if
 * any) in the dense MLP's slots, then the experts (E / ep of them: an
 * expert-parallel rank's). */
static void place_moe(const lmc_model_config *c, int ep, lmc_tensor_slot *t, size_t *cur)
{
    size_t C = (size_t)c->dim, F = (size_t)c->moe_ffn, E = (size_t)c->n_expert, S = (size_t)c->n_shared * F;
    size_t El = E / (size_t)ep;
    place(cur, &t[LMC_T_ROUTER_W], E, C, 1);
    if (S) {
        place(cur, &t[LMC_T_FC_W], 2 * S, C, 1);
        place(cur, &t[LMC_T_PROJ_W], C, S, 1);
    }
    place(cur, &t[LMC_T_EXP_FC_W], El * 2 * F, C, 1);
    place(cur, &t[LMC_T_EXP_PROJ_W], El * C, F, 1);
}

static void place_layer(const lmc_model_config *c, int tp, int ep, int l, lmc_tensor_slot *t, size_t *cur)
{
    size_t C = (size_t)c->dim, hs = (size_t)lmc_config_head_dim(c), F = (size_t)(c->ffn_dim / tp);
    size_t nh = (size_t)(c->n_head / tp), nkv = (size_t)lmc_config_tp_kv_heads(c, tp);
    size_t qkv = (nh + 2 * nkv) * hs, att = nh * hs;
    size_t fc = (c->mlp == LMC_MLP_SWIGLU ? 2 : 1) * F;
    int nb = c->norm == LMC_NORM_LAYER && c->bias;
    for (int k = 0; k < LMC_T_LAYER_COUNT; k++)
        absent(&t[k]);
    place(cur, &t[LMC_T_LN1_W], C, 1, 0);
    if (nb)
        place(cur, &t[LMC_T_LN1_B], C, 1, 0);
    place(cur, &t[LMC_T_QKV_W], qkv, C, 1);
    if (c->bias)
        place(cur, &t[LMC_T_QKV_B], qkv, 1, 0);
    place(cur, &t[LMC_T_ATTN_W], C, att, 1);
    if (c->bias)
        place(cur, &t[LMC_T_ATTN_B], C, 1, 0);
    place(cur, &t[LMC_T_LN2_W], C, 1, 0);
    if (nb)
        place(cur, &t[LMC_T_LN2_B], C, 1, 0);
    if (lmc_config_is_moe(c, l)) {
        place_moe(c, ep, t, cur);
        return;
    }
    place(cur, &t[LMC_T_FC_W], fc, C, 1);
    if (c->bias)
        place(cur, &t[LMC_T_FC_B], fc, 1, 0);
    place(cur, &t[LMC_T_PROJ_W], C, F, 1);
    if (c->bias)
        place(cur, &t[LMC_T_PROJ_B], C, 1, 0);
}

lmc_status lmc_layout_build(const lmc_model_config *c, lmc_layout *l) { return lmc_layout_build_tp(c, 1, 0, l); }

lmc_status lmc_layout_build_tp(const lmc_model_config *c, int tp, int vocab_split, lmc_layout *l)
{
    return lmc_layout_build_part(c, tp, vocab_split, 0, c->n_layer, l);
}

static void place_embed(const lmc_model_config *c, lmc_layout *l, size_t V, size_t *cur)
{
    place(cur, &l->global[LMC_T_WTE], V, (size_t)c->dim, 1);
    if (c->pos == LMC_POS_LEARNED)
        place(cur, &l->global[LMC_T_WPE], (size_t)c->max_seq, (size_t)c->dim, 1);
}

static void place_final(const lmc_model_config *c, lmc_layout *l, size_t V, size_t *cur)
{
    place(cur, &l->global[LMC_T_NORMF_W], (size_t)c->dim, 1, 0);
    if (c->norm == LMC_NORM_LAYER && c->bias)
        place(cur, &l->global[LMC_T_NORMF_B], (size_t)c->dim, 1, 0);
    if (c->tied)
        l->global[LMC_T_HEAD] = l->global[LMC_T_WTE];
    else
        place(cur, &l->global[LMC_T_HEAD], V, (size_t)c->dim, 1);
}

lmc_status lmc_layout_build_part(const lmc_model_config *c, int tp, int vocab_split, int layer_begin, int layer_end,
                                 lmc_layout *l)
{
    int bounds[2] = {layer_begin, layer_end};
    return lmc_layout_build_chunks(c, tp, vocab_split, 1, bounds, l);
}

/* Which layers the ranges hold, their extent, and which end units. */
static void mark_held(const lmc_model_config *c, int n, const int *bounds, lmc_layout *l)
{
    int L = c->n_layer;
    l->layer_begin = L;
    for (int i = 0; i < n; i++) {
        for (int k = bounds[2 * i]; k < bounds[2 * i + 1]; k++)
            l->held[k] = 1;
        l->layer_begin = bounds[2 * i] < l->layer_begin ? bounds[2 * i] : l->layer_begin;
        l->layer_end = bounds[2 * i + 1] > l->layer_end ? bounds[2 * i + 1] : l->layer_end;
        l->holds_final |= bounds[2 * i + 1] == L;
        l->holds_embed |= bounds[2 * i] == 0;
    }
    l->holds_embed |= c->tied && l->holds_final;
}

static lmc_status build(const lmc_model_config *c, int tp, int vocab_split, int ep, int n, const int *bounds,
                        lmc_layout *l);

lmc_status lmc_layout_build_chunks(const lmc_model_config *c, int tp, int vocab_split, int n, const int *bounds,
                                   lmc_layout *l)
{
    return build(c, tp, vocab_split, 1, n, bounds, l);
}

lmc_status lmc_layout_build_ep(const lmc_model_config *c, int ep, int ep_rank, lmc_layout *l)
{
    int bounds[2] = {0, c->n_layer};
    if (ep < 1 || c->n_expert % ep || ep_rank < 0 || ep_rank >= ep)
        return lmc_err(LMC_EINVAL, "expert-parallel rank %d of %d: %d experts do not split so", ep_rank, ep,
                       c->n_expert);
    LMC_TRY(build(c, 1, 0, ep, 1, bounds, l));
    l->ep_rank = ep_rank;
    return LMC_OK;
}

static lmc_status build(const lmc_model_config *c, int tp, int vocab_split, int ep, int n, const int *bounds,
                        lmc_layout *l)
{
    memset(l, 0, sizeof *l);
    int L = c->n_layer;
    l->n_layer = L;
    l->layer = calloc((size_t)L * LMC_T_LAYER_COUNT, sizeof *l->layer);
    l->unit_at = calloc((size_t)L + 3, sizeof *l->unit_at);
    l->held = calloc((size_t)L + 1, 1);
    if (!l->layer || !l->unit_at || !l->held) {
        lmc_layout_free(l);
        return lmc_err(LMC_ENOMEM, "out of memory building the parameter layout");
    }
    size_t cur = 0, V = (size_t)c->vocab_padded / (vocab_split ? (size_t)tp : 1);
    l->tp = tp;
    l->ep = ep;
    l->vocab_split = vocab_split && tp > 1;
    mark_held(c, n, bounds, l);
    for (int k = 0; k < LMC_T_GLOBAL_COUNT; k++)
        absent(&l->global[k]);
    for (size_t i = 0; i < (size_t)L * LMC_T_LAYER_COUNT; i++)
        absent(&l->layer[i]);
    if (l->holds_embed)
        place_embed(c, l, V, &cur);
    for (int i = 0; i <= L; i++) {
        l->unit_at[i + 1] = cur;
        if (i < L && l->held[i])
            place_layer(c, tp, ep, i, l->layer + (size_t)i * LMC_T_LAYER_COUNT, &cur);
    }
    if (l->holds_final)
        place_final(c, l, V, &cur);
    l->unit_at[L + 2] = cur;
    l->total = cur;
    return LMC_OK;
}

void lmc_layout_free(lmc_layout *l)
{
    free(l->layer);
    free(l->unit_at);
    free(l->held);
    memset(l, 0, sizeof *l);
}

int lmc_layout_holds(const lmc_layout *l, int unit)
{
    if (unit == 0)
        return l->holds_embed;
    if (unit == l->n_layer + 1)
        return l->holds_final;
    return l->held[unit - 1];
}

void lmc_layout_copy_units(const lmc_layout *ld, float *dst, const lmc_layout *ls, const float *src, int skip_embed)
{
    for (int u = skip_embed ? 1 : 0; u < lmc_layout_num_units(ld); u++)
        if (lmc_layout_holds(ld, u) && lmc_layout_holds(ls, u))
            memcpy(dst + ld->unit_at[u], src + ls->unit_at[u], (ld->unit_at[u + 1] - ld->unit_at[u]) * sizeof(float));
}

const lmc_tensor_slot *lmc_layout_slot(const lmc_layout *l, int layer, int kind)
{
    return layer < 0 ? &l->global[kind] : &l->layer[(size_t)layer * LMC_T_LAYER_COUNT + kind];
}

int lmc_layout_num_buckets(const lmc_layout *l) { return l->n_layer + 2; }

void lmc_layout_bucket(const lmc_layout *l, int bucket, size_t *begin, size_t *end)
{
    lmc_layout_unit(l, l->n_layer + 1 - bucket, begin, end);
}

int lmc_layout_num_units(const lmc_layout *l) { return l->n_layer + 2; }

void lmc_layout_unit(const lmc_layout *l, int unit, size_t *begin, size_t *end)
{
    *begin = l->unit_at[unit];
    *end = l->unit_at[unit + 1];
}

size_t lmc_layout_max_unit(const lmc_layout *l, int first)
{
    size_t most = 0;
    for (int u = first; u < lmc_layout_num_units(l); u++) {
        size_t b, e;
        lmc_layout_unit(l, u, &b, &e);
        most = e - b > most ? e - b : most;
    }
    return most;
}

int lmc_layout_unit_of(const lmc_layout *l, int layer, int kind)
{
    if (layer >= 0)
        return layer + 1;
    return kind == LMC_T_WTE || kind == LMC_T_WPE ||
                   (kind == LMC_T_HEAD && l->global[kind].offset == l->global[LMC_T_WTE].offset)
               ? 0 : l->n_layer + 1;
}

static const char *const global_names[] = {"wte", "wpe", "norm_f.w", "norm_f.b", "head"};
static const char *const layer_names[] = {"ln1.w", "ln1.b", "qkv.w", "qkv.b", "attn_proj.w", "attn_proj.b",
                                          "ln2.w", "ln2.b", "fc.w", "fc.b", "mlp_proj.w", "mlp_proj.b",
                                          "router.w", "experts_fc.w", "experts_proj.w"};

void lmc_layout_slot_name(int layer, int kind, char *buf, size_t n)
{
    if (layer < 0)
        snprintf(buf, n, "%s", global_names[kind]);
    else
        snprintf(buf, n, "h.%d.%s", layer, layer_names[kind]);
}
