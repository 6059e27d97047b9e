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

/* One tensor's runs: its offsets and row lengths in the whole and the part
 * buffer, and where each run goes. */
typedef struct {
    size_t wbase, pbase, wcols, pcols;
    lmc_part_run_fn fn;
    void *ctx;
} tensor_runs;

/* rows [wr, wr + n) x cols [wc, wc + k) of the whole <-> rows [pr, pr + n) x
 * cols [pc, pc + k) of the part: one run per row, or one for the block when
 * its rows are whole on both sides (contiguous: an expert's block, a
 * replicated tensor) */
static void block(const tensor_runs *t, size_t wr, size_t pr, size_t n, size_t wc, size_t pc, size_t k)
{
    if (!n || !k)
        return;
    if (k == t->wcols && k == t->pcols) {
        t->fn(t->ctx, t->wbase + wr * k, t->pbase + pr * k, n * k);
        return;
    }
    for (size_t i = 0; i < n; i++)
        t->fn(t->ctx, t->wbase + (wr + i) * t->wcols + wc, t->pbase + (pr + i) * t->pcols + pc, k);
}

static void layer_tensor_runs(const lmc_model_config *c, int kind, int tp, int r, const tensor_runs *t,
                              size_t cols)
{
    size_t hs = (size_t)lmc_config_head_dim(c), nh = (size_t)(c->n_head / tp), nkv = (size_t)lmc_config_tp_kv_heads(c, tp);
    size_t kv0 = (size_t)lmc_config_tp_kv_first(c, tp, r); /* replicated kv heads: several ranks hold the same */
    size_t NH = (size_t)c->n_head, NKV = (size_t)c->n_kv_head, F = (size_t)c->ffn_dim, f = F / (size_t)tp;
    switch (kind) {
    case LMC_T_QKV_W: case LMC_T_QKV_B: /* q heads, then k heads, then v heads */
        block(t, r * nh * hs, 0, nh * hs, 0, 0, cols);
        block(t, NH * hs + kv0 * hs, nh * hs, nkv * hs, 0, 0, cols);
        block(t, (NH + NKV) * hs + kv0 * hs, (nh + nkv) * hs, nkv * hs, 0, 0, cols);
        break;
    case LMC_T_FC_W: case LMC_T_FC_B: /* fc rows; SwiGLU: gate rows, then up rows */
        block(t, r * f, 0, f, 0, 0, cols);
        if (c->mlp == LMC_MLP_SWIGLU)
            block(t, F + r * f, f, f, 0, 0, cols);
        break;
    case LMC_T_ATTN_W: /* the columns of this rank's heads */
        block(t, 0, 0, (size_t)c->dim, r * nh * hs, 0, nh * hs);
        break;
    case LMC_T_PROJ_W:
        block(t, 0, 0, (size_t)c->dim, r * f, 0, f);
        break;
    }
}

void lmc_layout_part_runs(const lmc_model_config *c, const lmc_layout *g, const lmc_layout *t, int tp, int r,
                          lmc_part_run_fn fn, void *ctx)
{
    for (int layer = -1; layer < c->n_layer; layer++) {
        int kinds = layer < 0 ? LMC_T_GLOBAL_COUNT : LMC_T_LAYER_COUNT;
        for (int k = 0; k < kinds; k++) {
            const lmc_tensor_slot *gs = lmc_layout_slot(g, layer, k), *ts = lmc_layout_slot(t, layer, k);
            if (gs->offset == LMC_ABSENT || ts->offset == LMC_ABSENT || (layer < 0 && k == LMC_T_HEAD && c->tied))
                continue;
            tensor_runs tt = {gs->offset, ts->offset, gs->cols, ts->cols, fn, ctx};
            if (t->ep > 1 && layer >= 0 && (k == LMC_T_EXP_FC_W || k == LMC_T_EXP_PROJ_W)) /* this rank's experts' rows */
                block(&tt, (size_t)t->ep_rank * ts->rows, 0, ts->rows, 0, 0, gs->cols);
            else if (layer < 0 && lmc_layout_tp_split(t, layer, k)) /* vocabulary rows */
                block(&tt, r * ts->rows, 0, ts->rows, 0, 0, gs->cols);
            else if (lmc_layout_tp_split(t, layer, k))
                layer_tensor_runs(c, k, tp, r, &tt, ts->cols);
            else
                block(&tt, 0, 0, gs->rows, 0, 0, gs->cols);
        }
    }
}

typedef struct {
    float *whole, *part;
    int to_part;
} copy_ctx;

static void copy_run(void *ctx, size_t whole, size_t part, size_t n)
{
    copy_ctx *x = ctx;
    if (x->to_part)
        memcpy(x->part + part, x->whole + whole, n * sizeof(float));
    else
        memcpy(x->whole + whole, x->part + part, n * sizeof(float));
}

void lmc_layout_tp_copy(const lmc_model_config *c, const lmc_layout *g, const lmc_layout *t, int tp, int r,
                        float *whole, float *part, int to_part)
{
    copy_ctx x = {whole, part, to_part};
    lmc_layout_part_runs(c, g, t, tp, r, copy_run, &x);
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
