/* replicas.c: gradients of tensors every rank of a tensor-parallel group
 * holds but computes only part of the gradient of, summed over the group so
 * the copies stay identical.
 *
 * Sequence parallelism: each rank normalises only its rows, so the norms'
 * weights and biases get a partial gradient on each rank.
 *
 * Key/value heads: with fewer key/value heads than --tp ranks, each kv head lives on tp /
 * n_kv_head consecutive ranks (a kv group, tr->kvc), each of which uses it
 * for its own query heads: the K and V rows of the fused QKV projection
 * (weights and bias) get a partial gradient on each rank of the group,
 * summed here after the data-parallel reduction, so the replicas apply the
 * same update and stay identical. The gradient norm counts them on the
 * group's first rank only.
 */
#include "train/trainer.h"

static int replicated(const lmc_trainer *tr) { return tr->tp > tr->cfg.n_kv_head; }

lmc_status lmc_trainer_kv_open(lmc_trainer *tr)
{
    if (!replicated(tr))
        return LMC_OK;
    int per = tr->tp / tr->cfg.n_kv_head;
    LMC_TRY(tr->tpc->ops->split(tr->tpc, tr->tp_rank / per, tr->tp_rank, &tr->kvc));
    tr->kvc->be = tr->be;
    return LMC_OK;
}

/* The K and V rows of layer l's QKV tensor `kind`: floats [*b, *e) of the
 * parameter buffer. */
static void kv_rows(const lmc_trainer *tr, int l, int kind, size_t *b, size_t *e)
{
    const lmc_tensor_slot *s = lmc_layout_slot(&tr->m->layout, l, kind);
    *b = s->offset + (size_t)tr->m->nh * tr->m->hs * s->cols;
    *e = s->offset + s->rows * s->cols;
}

size_t lmc_trainer_counted_end(const lmc_trainer *tr, int layer, int kind)
{
    const lmc_tensor_slot *s = lmc_layout_slot(&tr->m->layout, layer, kind);
    size_t b, e;
    if (!tr->kvc || tr->kvc->rank == 0 || layer < 0 || (kind != LMC_T_QKV_W && kind != LMC_T_QKV_B))
        return s->offset + s->rows * s->cols;
    kv_rows(tr, layer, kind, &b, &e);
    return b; /* the query rows only */
}

/* Sums elements [b, e) of the gradient over c, where they meet this rank's
 * optimizer range (grads points at own_begin). */
static lmc_status sum_range(lmc_trainer *tr, lmc_comm *c, float *grads, size_t b, size_t e)
{
    size_t lo = b > tr->dp.own_begin ? b : tr->dp.own_begin, hi = e < tr->dp.own_end ? e : tr->dp.own_end;
    return hi > lo ? c->ops->allreduce(c, grads + (lo - tr->dp.own_begin), hi - lo) : LMC_OK;
}

lmc_status lmc_trainer_sp_sum(lmc_trainer *tr, float *grads)
{
    static const int layer_norms[4] = {LMC_T_LN1_W, LMC_T_LN1_B, LMC_T_LN2_W, LMC_T_LN2_B};
    static const int final_norm[2] = {LMC_T_NORMF_W, LMC_T_NORMF_B};
    if (!tr->m->sp)
        return LMC_OK;
    for (int l = -1; l < tr->cfg.n_layer; l++)
        for (int i = 0; i < (l < 0 ? 2 : 4); i++) {
            const lmc_tensor_slot *s = lmc_layout_slot(&tr->m->layout, l, l < 0 ? final_norm[i] : layer_norms[i]);
            if (s->offset != LMC_ABSENT)
                LMC_TRY(sum_range(tr, tr->tpc, grads, s->offset, s->offset + s->rows * s->cols));
        }
    return LMC_OK;
}

lmc_status lmc_trainer_kv_sum(lmc_trainer *tr, float *grads)
{
    static const int kinds[2] = {LMC_T_QKV_W, LMC_T_QKV_B};
    if (!tr->kvc)
        return LMC_OK;
    for (int l = 0; l < tr->cfg.n_layer; l++)
        for (int i = 0; i < 2; i++) {
            const lmc_tensor_slot *s = lmc_layout_slot(&tr->m->layout, l, kinds[i]);
            size_t b, e;
            if (s->offset == LMC_ABSENT)
                continue;
            kv_rows(tr, l, kinds[i], &b, &e);
            LMC_TRY(sum_range(tr, tr->kvc, grads, b, e));
        }
    return LMC_OK;
}
