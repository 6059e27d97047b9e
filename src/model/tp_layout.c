/* tp_layout.c: which part of each tensor a tensor-parallel rank holds.
 *
 * Megatron-LM's split: the fused QKV projection and the MLP's fc are
 * column-parallel (rank r holds its heads' q, k and v rows, its slice of the
 * fc rows, and for SwiGLU its slice of gate and of up); the attention and
 * MLP output projections are row-parallel (rank r holds the matching
 * columns); vocabulary-parallel, the token embedding and the head are
 * split by rows (rank r holds vocabulary_padded / tp rows from r times
 * that). Norms, the output projections' biases and the position embedding
 * are whole on every rank. Checkpoints always hold whole tensors: these
 * copies move between the two.
 */
#include "lmc/model.h"

#include <string.h>

int lmc_layout_tp_split(const lmc_layout *l, int layer, int kind)
{
    if (l->tp <= 1)
        return 0;
    if (layer < 0)
        return l->vocab_split && (kind == LMC_T_WTE || kind == LMC_T_HEAD);
    return kind == LMC_T_QKV_W || kind == LMC_T_QKV_B || kind == LMC_T_FC_W || kind == LMC_T_FC_B ||
           kind == LMC_T_ATTN_W || kind == LMC_T_PROJ_W;
}

typedef struct {
    float *whole, *part;
    size_t wcols, pcols; /* row lengths */
    int to_part;
} tensor_pair;

/* rows [wr, wr + n) x cols [wc, wc + k) of the whole <-> rows [pr, pr + n) x
 * cols [pc, pc + k) of the part */
static void copy_block(const tensor_pair *t, size_t wr, size_t pr, size_t n, size_t wc, size_t pc, size_t k)
{
    for (size_t i = 0; i < n; i++) {
        float *w = t->whole + (wr + i) * t->wcols + wc, *p = t->part + (pr + i) * t->pcols + pc;
        if (t->to_part)
            memcpy(p, w, k * sizeof(float));
        else
            memcpy(w, p, k * sizeof(float));
    }
}

static void copy_layer_tensor(const lmc_model_config *c, int kind, int tp, int r, const tensor_pair *t,
                              size_t cols)
{
    size_t hs = (size_t)lmc_config_head_dim(c), nh = (size_t)(c->n_head / tp), nkv = (size_t)lmc_config_tp_kv_heads(c, tp);
    size_t kv0 = (size_t)lmc_config_tp_kv_first(c, tp, r); /* replicated kv heads: several ranks hold the same */
    size_t NH = (size_t)c->n_head, NKV = (size_t)c->n_kv_head, F = (size_t)c->ffn_dim, f = F / (size_t)tp;
    switch (kind) {
    case LMC_T_QKV_W: case LMC_T_QKV_B: /* q heads, then k heads, then v heads */
        copy_block(t, r * nh * hs, 0, nh * hs, 0, 0, cols);
        copy_block(t, NH * hs + kv0 * hs, nh * hs, nkv * hs, 0, 0, cols);
        copy_block(t, (NH + NKV) * hs + kv0 * hs, (nh + nkv) * hs, nkv * hs, 0, 0, cols);
        break;
    case LMC_T_FC_W: case LMC_T_FC_B: /* fc rows; SwiGLU: gate rows, then up rows */
        copy_block(t, r * f, 0, f, 0, 0, cols);
        if (c->mlp == LMC_MLP_SWIGLU)
            copy_block(t, F + r * f, f, f, 0, 0, cols);
        break;
    case LMC_T_ATTN_W: /* the columns of this rank's heads */
        copy_block(t, 0, 0, (size_t)c->dim, r * nh * hs, 0, nh * hs);
        break;
    case LMC_T_PROJ_W:
        copy_block(t, 0, 0, (size_t)c->dim, r * f, 0, f);
        break;
    }
}

void lmc_layout_tp_copy(const lmc_model_config *c, const lmc_layout *g, const lmc_layout *t, int tp, int r,
                        float *whole, float *part, int to_part)
{
    for (int layer = -1; layer < c->n_layer; layer++) {
        int kinds = layer < 0 ? LMC_T_GLOBAL_COUNT : LMC_T_LAYER_COUNT;
        for (int k = 0; k < kinds; k++) {
            const lmc_tensor_slot *gs = lmc_layout_slot(g, layer, k), *ts = lmc_layout_slot(t, layer, k);
            if (gs->offset == LMC_ABSENT || ts->offset == LMC_ABSENT || (layer < 0 && k == LMC_T_HEAD && c->tied))
                continue;
            tensor_pair tpair = {whole + gs->offset, part + ts->offset, gs->cols, ts->cols, to_part};
            if (t->ep > 1 && layer >= 0 && (k == LMC_T_EXP_FC_W || k == LMC_T_EXP_PROJ_W)) /* this rank's experts' rows */
                copy_block(&tpair, (size_t)t->ep_rank * ts->rows, 0, ts->rows, 0, 0, gs->cols);
            else if (layer < 0 && lmc_layout_tp_split(t, layer, k)) /* vocabulary rows */
                copy_block(&tpair, r * ts->rows, 0, ts->rows, 0, 0, gs->cols);
            else if (lmc_layout_tp_split(t, layer, k))
                copy_layer_tensor(c, k, tp, r, &tpair, ts->cols);
            else
                copy_block(&tpair, 0, 0, gs->rows, 0, 0, gs->cols);
        }
    }
}

lmc_status lmc_layout_tp_part(const lmc_model_config *c, const lmc_layout *t, int r, const float *whole,
                              float **part)
{
    lmc_layout g;
    LMC_TRY(lmc_layout_build(c, &g));
    *part = lmc_alloc(t->total * sizeof(float), "this rank's part of the model");
    if (*part)
        lmc_layout_tp_copy(c, &g, t, t->tp, r, (float *)whole, *part, 1);
    lmc_layout_free(&g);
    return *part ? LMC_OK : LMC_ENOMEM;
}
