/* experts_ep.c: expert parallelism (--ep) in training: each rank holds
 * only its own experts (the model's layout is lmc_layout_build_ep's), the
 * rest of the model whole. The groups, each MoE layer's gradient in
 * pieces (the rest over every data-parallel rank, the experts over the
 * ranks holding the same ones), rank 0's weights to the others, and
 * ZeRO-1's shards of those pieces. Checkpoints join the experts in save.c
 * (ep_whole). */
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
    if (tr->o->zero >= 2)
        return lmc_err(LMC_EUNSUPPORTED, "--ep %d with --zero %d is not supported: each rank holds only its "
                       "experts, and ZeRO-2/3's per-unit shards of the gradients and parameters are not cut by "
                       "expert group yet (use --zero 0 or 1 with --ep)", tr->ex.ep, tr->o->zero);
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
    lmc_trainer_ep_zero_close(tr);
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
    size_t b, e, x0, x1;
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

/* ---- ZeRO-1 under --ep: the model's buffer is cut into pieces, each
 * unit's rest (the same on every data-parallel rank) and, in a MoE layer,
 * its experts (the same on the ranks holding them: edpc, or this rank
 * alone). Each piece is sharded over its group as lmc_comm_shard says:
 * its gradient reduce-scattered, AdamW's m and v kept for this rank's
 * shard only (packed, piece after piece), the updated shard all-gathered. */
typedef struct {
    size_t b, n;       /* the piece: elements [b, b + n) of the buffer */
    size_t own, cnt;   /* this rank's shard of it: [b + own, b + own + cnt) */
    size_t at;         /* where that shard's m and v begin */
    lmc_comm *g;       /* its group (NULL: this rank alone) */
} ep_piece;

struct lmc_ep_zero {
    ep_piece *p;
    int n;
};

static void add_piece(lmc_trainer *tr, size_t b, size_t e, lmc_comm *g, size_t *count)
{
    ep_piece *p = &tr->ex.ep_zero->p[tr->ex.ep_zero->n++];
    p->b = b, p->n = e - b, p->g = g, p->at = *count;
    p->own = 0, p->cnt = p->n;
    if (g && g->size > 1)
        lmc_comm_shard(p->n, g->size, g->rank, &p->own, &p->cnt);
    *count += p->cnt;
}

lmc_status lmc_trainer_ep_zero_open(lmc_trainer *tr, size_t *count)
{
    lmc_comm *c = tr->comm;
    if (tr->dp.zero != 1)
        return lmc_err(LMC_EUNSUPPORTED, "--ep %d with ZeRO-%d is not supported (only --zero 0 or 1)", tr->ex.ep,
                       tr->dp.zero);
    if (c->device_memory || !c->ops->gather || !c->ops->reduce_scatter_start)
        return lmc_err(LMC_EUNSUPPORTED, "--ep %d with --zero 1 needs --dist mpi (a host-memory ranged "
                       "reduce-scatter and gather); %s has none", tr->ex.ep, c->name);
    int units = lmc_layout_num_units(&tr->m->layout);
    tr->ex.ep_zero = calloc(1, sizeof *tr->ex.ep_zero);
    if (tr->ex.ep_zero)
        tr->ex.ep_zero->p = calloc(2 * (size_t)units, sizeof(ep_piece));
    if (!tr->ex.ep_zero || !tr->ex.ep_zero->p)
        return lmc_err(LMC_ENOMEM, "out of memory");
    *count = 0;
    for (int u = 0; u < units; u++) {
        size_t b, e, x0, x1;
        lmc_layout_unit(&tr->m->layout, u, &b, &e);
        if (!lmc_trainer_ep_experts(tr, u, &x0, &x1))
            x0 = x1 = e;
        add_piece(tr, b, x0, c, count);
        if (x1 > x0)
            add_piece(tr, x0, x1, tr->ex.edpc, count);
    }
    return LMC_OK;
}

void lmc_trainer_ep_zero_close(lmc_trainer *tr)
{
    if (tr->ex.ep_zero)
        free(tr->ex.ep_zero->p);
    free(tr->ex.ep_zero);
}

int lmc_trainer_ep_own(const lmc_trainer *tr, int i, size_t *b, size_t *e)
{
    if (!tr->ex.ep_zero || i >= tr->ex.ep_zero->n)
        return 0;
    const ep_piece *p = &tr->ex.ep_zero->p[i];
    *b = p->b + p->own, *e = *b + p->cnt;
    return 1;
}

void lmc_trainer_ep_pick(const lmc_trainer *tr, const float *part, float *dst)
{
    for (int i = 0; i < tr->ex.ep_zero->n; i++) {
        const ep_piece *p = &tr->ex.ep_zero->p[i];
        memcpy(dst + p->at, part + p->b + p->own, p->cnt * sizeof(float));
    }
}

/* A unit's pieces under ZeRO-1: each reduce-scattered over its group. */
static lmc_status zero_post(lmc_trainer *tr, int unit)
{
    size_t b, e;
    lmc_layout_unit(&tr->m->layout, unit, &b, &e);
    for (int i = 0; i < tr->ex.ep_zero->n; i++) {
        const ep_piece *p = &tr->ex.ep_zero->p[i];
        int r;
        if (p->b < b || p->b >= e || !p->n || !p->g || p->g->size == 1)
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
    for (int i = 0; i < tr->ex.ep_zero->n; i++) {
        const ep_piece *p = &tr->ex.ep_zero->p[i];
        lmc_optim view = tr->opt; /* the shard's slice of m and v, the same step count */
        size_t b = p->b + p->own;
        view.begin = b, view.end = b + p->cnt;
        view.m = tr->opt.m + p->at, view.v = tr->opt.v + p->at;
        if (p->cnt)
            lmc_optim_step(&view, tr->m->params + b, tr->m->grads + b, lr, (float)o->beta1, (float)o->beta2,
                           (float)o->eps, (float)o->weight_decay, scale);
    }
    tr->opt.t++;
}

lmc_status lmc_trainer_ep_allgather(lmc_trainer *tr)
{
    for (int i = 0; i < tr->ex.ep_zero->n; i++) {
        const ep_piece *p = &tr->ex.ep_zero->p[i];
        if (p->n && p->g && p->g->size > 1)
            LMC_TRY(p->g->ops->allgather(p->g, tr->m->params + p->b, p->n));
    }
    return LMC_OK;
}

lmc_status lmc_trainer_ep_gather(lmc_trainer *tr, const float *dev, float *host_full)
{
    for (int i = 0; i < tr->ex.ep_zero->n; i++) {
        const ep_piece *p = &tr->ex.ep_zero->p[i];
        float *full = host_full ? host_full + p->b : NULL; /* on the piece's root: a rank holding a part */
        if (p->g && p->g->size > 1)
            LMC_TRY(p->g->ops->gather(p->g, dev + p->at, full, p->n, 0));
        else if (full)
            tr->be->ops->download(tr->be, full, dev + p->at, p->n * sizeof(float));
    }
    return LMC_OK;
}
