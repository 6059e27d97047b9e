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

static void place_layer(const lmc_model_config *c, int tp, lmc_tensor_slot *t, size_t *cur)
{
    size_t C = (size_t)c->dim, hs = (size_t)lmc_config_head_dim(c), F = (size_t)(c->ffn_dim / tp);
    size_t nh = (size_t)(c->n_head / tp), nkv = (size_t)(c->n_kv_head / tp);
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
    memset(l, 0, sizeof *l);
    l->n_layer = c->n_layer;
    l->layer = calloc((size_t)c->n_layer * LMC_T_LAYER_COUNT, sizeof *l->layer);
    if (!l->layer)
        return lmc_err(LMC_ENOMEM, "out of memory building the parameter layout");
    size_t cur = 0, C = (size_t)c->dim, V = (size_t)c->vocab_padded / (vocab_split ? (size_t)tp : 1);
    l->tp = tp;
    l->vocab_split = vocab_split && tp > 1;
    for (int k = 0; k < LMC_T_GLOBAL_COUNT; k++)
        absent(&l->global[k]);
    place(&cur, &l->global[LMC_T_WTE], V, C, 1);
    if (c->pos == LMC_POS_LEARNED)
        place(&cur, &l->global[LMC_T_WPE], (size_t)c->max_seq, C, 1);
    for (int i = 0; i < c->n_layer; i++)
        place_layer(c, tp, l->layer + (size_t)i * LMC_T_LAYER_COUNT, &cur);
    place(&cur, &l->global[LMC_T_NORMF_W], C, 1, 0);
    if (c->norm == LMC_NORM_LAYER && c->bias)
        place(&cur, &l->global[LMC_T_NORMF_B], C, 1, 0);
    if (c->tied)
        l->global[LMC_T_HEAD] = l->global[LMC_T_WTE];
    else
        place(&cur, &l->global[LMC_T_HEAD], V, C, 1);
    l->total = cur;
    return LMC_OK;
}

void lmc_layout_free(lmc_layout *l)
{
    free(l->layer);
    memset(l, 0, sizeof *l);
}

const lmc_tensor_slot *lmc_layout_slot(const lmc_layout *l, int layer, int kind)
{
    return layer < 0 ? &l->global[kind] : &l->layer[(size_t)layer * LMC_T_LAYER_COUNT + kind];
}

int lmc_layout_num_buckets(const lmc_layout *l) { return l->n_layer + 2; }

void lmc_layout_bucket(const lmc_layout *l, int bucket, size_t *begin, size_t *end)
{
    const lmc_tensor_slot *first_layer = lmc_layout_slot(l, 0, LMC_T_LN1_W);
    const lmc_tensor_slot *normf = &l->global[LMC_T_NORMF_W];
    if (bucket == 0) {
        *begin = normf->offset;
        *end = l->total;
    } else if (bucket <= l->n_layer) {
        int layer = l->n_layer - bucket;
        *begin = lmc_layout_slot(l, layer, LMC_T_LN1_W)->offset;
        *end = layer + 1 < l->n_layer ? lmc_layout_slot(l, layer + 1, LMC_T_LN1_W)->offset : normf->offset;
    } else {
        *begin = 0;
        *end = first_layer->offset;
    }
}

int lmc_layout_num_units(const lmc_layout *l) { return l->n_layer + 2; }

void lmc_layout_unit(const lmc_layout *l, int unit, size_t *begin, size_t *end)
{
    lmc_layout_bucket(l, l->n_layer + 1 - unit, begin, end);
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
    return kind == LMC_T_WTE || kind == LMC_T_WPE || l->global[kind].offset == l->global[LMC_T_WTE].offset
               ? 0 : l->n_layer + 1;
}

static const char *const global_names[] = {"wte", "wpe", "norm_f.w", "norm_f.b", "head"};
static const char *const layer_names[] = {"ln1.w", "ln1.b", "qkv.w", "qkv.b", "attn_proj.w", "attn_proj.b",
                                          "ln2.w", "ln2.b", "fc.w", "fc.b", "mlp_proj.w", "mlp_proj.b"};

void lmc_layout_slot_name(int layer, int kind, char *buf, size_t n)
{
    if (layer < 0)
        snprintf(buf, n, "%s", global_names[kind]);
    else
        snprintf(buf, n, "h.%d.%s", layer, layer_names[kind]);
}
