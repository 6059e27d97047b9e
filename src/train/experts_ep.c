/* experts_ep.c: expert parallelism (--ep) in training: each rank holds
 * only its own experts (the model's layout is lmc_layout_build_ep's), the
 * rest of the model whole. The groups, each MoE layer's gradient in
 * pieces (the rest over every data-parallel rank, the experts over the
 * ranks holding the same ones), rank 0's weights to the others, and
 * ZeRO's shards of those pieces (ZeRO-1 here, ZeRO-2/3's hooks in
 * shard.c). Checkpoints join the experts in save.c (ep_whole). */
#include "train/trainer.h"

#include <stdlib.h>
#include <string.h>

/* ---- expert parallelism (--ep, ZeRO-0): each rank holds its own experts
 * only (the model's layout is lmc_layout_build_ep's), the rest of the
 * model whole. Each expert's gradient is summed only over the ranks that
 * hold it (the same index in their expert-parallel groups: edpc), the rest
 * of the model over every data-parallel rank; so the rest is the same on
 * every rank, each expert the same on the ranks holding it. */

lmc_status lmc_trainer_ep_split(lmc_trainer *tr)
{
    lmc_comm *dp = tr->comm;
    if (tr->ex.ep <= 1)
        return LMC_OK;
    if (dp->size == tr->ex.ep) /* one group: each expert on one rank, no sum */
        return LMC_OK;
    return dp->ops->split(dp, dp->rank % tr->ex.ep, dp->rank, &tr->ex.edpc);
}

lmc_status lmc_trainer_ep_open(lmc_trainer *tr)
{
    if (tr->ex.ep <= 1 || tr->cfg.n_expert <= 0)
        return LMC_OK;
    tr->ex.ep_grads = 1;
    tr->ex.ep_reqs = malloc(2 * (size_t)tr->cfg.n_layer * sizeof(int));
    if (!tr->ex.ep_reqs)
        return lmc_err(LMC_ENOMEM, "out of memory");
    return LMC_OK;
}

void lmc_trainer_ep_close(lmc_trainer *tr)
{
    free(tr->ex.ep_reqs);
    lmc_comm_close(tr->ex.edpc);
}

int lmc_trainer_ep_experts(const lmc_trainer *tr, int unit, size_t *x0, size_t *x1)
{
    int l = unit - 1;
    if (tr->ex.ep <= 1 || l < 0 || l >= tr->cfg.n_layer || !lmc_config_is_moe(&tr->cfg, l))
        return 0;
    size_t b;
    lmc_layout_unit(&tr->m->layout, unit, &b, x1);
    *x0 = lmc_layout_slot(&tr->m->layout, l, LMC_T_EXP_FC_W)->offset; /* the experts end the layer */
    return 1;
}

size_t lmc_trainer_params_held(const lmc_trainer *tr)
{
    const lmc_layout *l = &tr->m->layout;
    size_t n = 0;
    if (tr->dp.zero == 3) /* between units, only its shards */
        return tr->dp.pieces.count;
    for (int layer = -1; layer < l->n_layer; layer++)
        for (int k = 0; k < (layer < 0 ? LMC_T_GLOBAL_COUNT : LMC_T_LAYER_COUNT); k++) {
            const lmc_tensor_slot *s = lmc_layout_slot(l, layer, k);
            if (s->offset != LMC_ABSENT && !(layer < 0 && k == LMC_T_HEAD && tr->cfg.tied))
                n += s->rows * s->cols;
        }
    return n;
}

static lmc_status zero_post(lmc_trainer *tr, int unit);

/* The unit's non-expert part over every rank, this rank's experts over
 * the ranks holding them (ZeRO-1: every unit's pieces reduce-scattered so);
 * *done = 0 for a unit left to step.c (not a MoE layer, ZeRO-0). */
lmc_status lmc_trainer_ep_post(lmc_trainer *tr, int unit, int *done)
{
    size_t b, e, x0 = 0, x1 = 0;
    *done = tr->ex.ep_grads && (tr->ex.ep_zero || lmc_trainer_ep_experts(tr, unit, &x0, &x1));
    if (!*done)
        return LMC_OK;
    if (tr->ex.ep_zero)
        return zero_post(tr, unit);
    lmc_layout_unit(&tr->m->layout, unit, &b, &e);
    float *g = tr->m->grads;
    int r;
    if (x0 > b) {
        LMC_TRY(tr->comm->ops->allreduce_start(tr->comm, g + b, x0 - b, &r));
        tr->dp.reqs[tr->dp.nreq++] = r;
    }
    if (tr->ex.edpc && x1 > x0) {
        LMC_TRY(tr->ex.edpc->ops->allreduce_start(tr->ex.edpc, g + x0, x1 - x0, &r));
        tr->ex.ep_reqs[tr->ex.n_ep_reqs++] = r;
    }
    return LMC_OK;
}

lmc_status lmc_trainer_ep_wait(lmc_trainer *tr)
{
    lmc_status s = LMC_OK;
    for (int i = 0; i < tr->ex.n_ep_reqs && s == LMC_OK; i++)
        s = tr->ex.edpc->ops->wait(tr->ex.edpc, tr->ex.ep_reqs[i]);
    tr->ex.n_ep_reqs = 0;
    return s;
}

/* rank 0's parameters to the others: the rest of the model over every
 * data-parallel rank, the experts over the ranks holding the same ones */
lmc_status lmc_trainer_ep_bcast(lmc_trainer *tr)
{
    float *p = tr->m->params;
    if (!p) /* ZeRO-3: each rank cut its shards from the same file */
        return LMC_OK;
    for (int u = 0; u < lmc_layout_num_units(&tr->m->layout); u++) {
        size_t b, e, x0, x1;
        lmc_layout_unit(&tr->m->layout, u, &b, &e);
        if (!lmc_trainer_ep_experts(tr, u, &x0, &x1))
            x0 = x1 = e;
        if (x0 > b)
            LMC_TRY(tr->comm->ops->broadcast(tr->comm, p + b, (x0 - b) * sizeof(float), 0));
        if (tr->ex.edpc && x1 > x0)
            LMC_TRY(tr->ex.edpc->ops->broadcast(tr->ex.edpc, p + x0, (x1 - x0) * sizeof(float), 0));
    }
    return LMC_OK;
}

/* ---- ZeRO under --ep: the model's buffer is cut into pieces, each unit's
 * rest (the same on every data-parallel rank) and, in a MoE layer, its
 * experts (the same on the ranks holding them: edpc, or this rank alone).
 * Each piece is sharded over its group as lmc_comm_shard says (shard.h's
 * lmc_shard_pieces, which ZeRO-2/3's hooks follow as well): its gradient
 * reduce-scattered, AdamW's m and v kept for this rank's shard only
 * (packed, piece after piece), the updated shard all-gathered (ZeRO-1, 2)
 * or kept as the only copy (ZeRO-3, packed likewise). */

lmc_status lmc_trainer_ep_zero_open(lmc_trainer *tr, size_t *count)
{
    lmc_comm *c = tr->comm;
    if (c->device_memory || !c->ops->gather || !c->ops->reduce_scatter_start || !c->ops->allgather_start)
        return lmc_err(LMC_EUNSUPPORTED, "--ep %d with --zero %d needs --dist mpi (a host-memory ranged "
                       "reduce-scatter, all-gather and gather); %s has none", tr->ex.ep, tr->dp.zero, c->name);
    int units = lmc_layout_num_units(&tr->m->layout);
    LMC_TRY(lmc_shard_pieces_open(&tr->dp.pieces, 2 * units));
    tr->ex.ep_zero = 1;
    for (int u = 0; u < units; u++) {
        size_t b, e, x0, x1;
        lmc_layout_unit(&tr->m->layout, u, &b, &e);
        if (!lmc_trainer_ep_experts(tr, u, &x0, &x1))
            x0 = x1 = e;
        lmc_shard_pieces_add(&tr->dp.pieces, b, x0, c);
        lmc_shard_pieces_add(&tr->dp.pieces, x0, x1, tr->ex.edpc);
    }
    *count = tr->dp.pieces.count;
    return LMC_OK;
}

const float *lmc_trainer_ep_grads(const lmc_trainer *tr, int i, size_t *n)
{
    if (!tr->ex.ep_zero || i >= tr->dp.pieces.n)
        return NULL;
    const lmc_shard_piece *p = &tr->dp.pieces.p[i];
    *n = p->cnt;
    return tr->dp.sh ? tr->dp.sh->own_grads + p->at : tr->m->grads + p->b + p->own;
}

/* A unit's pieces under ZeRO-1: each reduce-scattered over its group. */
static lmc_status zero_post(lmc_trainer *tr, int unit)
{
    size_t b, e;
    lmc_layout_unit(&tr->m->layout, unit, &b, &e);
    for (int i = 0; i < tr->dp.pieces.n; i++) {
        const lmc_shard_piece *p = &tr->dp.pieces.p[i];
        int r;
        if (p->b < b || p->b >= e || !p->g || p->g->size == 1)
            continue;
        LMC_TRY(p->g->ops->reduce_scatter_start(p->g, tr->m->grads + p->b, p->n, 0, p->n, &r));
        if (p->g == tr->comm)
            tr->dp.reqs[tr->dp.nreq++] = r;
        else
            tr->ex.ep_reqs[tr->ex.n_ep_reqs++] = r;
    }
    return LMC_OK;
}

void lmc_trainer_ep_adamw(lmc_trainer *tr, float lr, float scale)
{
    const lmc_train_opts *o = tr->o;
    for (int i = 0; i < tr->dp.pieces.n; i++) {
        const lmc_shard_piece *p = &tr->dp.pieces.p[i];
        lmc_optim view = tr->opt; /* the shard's slice of m and v, the same step count */
        size_t b = p->b + p->own, n;
        float *params = tr->dp.sh ? lmc_shard_params(tr->dp.sh, i) : tr->m->params + b;
        view.begin = b, view.end = b + p->cnt;
        view.m = tr->opt.m + p->at, view.v = tr->opt.v + p->at;
        if (p->cnt)
            lmc_optim_step(&view, params, (float *)lmc_trainer_ep_grads(tr, i, &n), lr, (float)o->beta1,
                           (float)o->beta2, (float)o->eps, (float)o->weight_decay, scale);
    }
    tr->opt.t++;
}

lmc_status lmc_trainer_ep_allgather(lmc_trainer *tr)
{
    for (int i = 0; i < tr->dp.pieces.n; i++) {
        const lmc_shard_piece *p = &tr->dp.pieces.p[i];
        if (p->g && p->g->size > 1)
            LMC_TRY(p->g->ops->allgather(p->g, tr->m->params + p->b, p->n));
    }
    return LMC_OK;
}

