/* shard.c: ZeRO-2/3 unit buffers, gathers and reduce-scatters (shard.h). */
#include "train/shard.h"

#include <stdlib.h>

static int slot_of(int unit) { return unit == 0 ? 0 : 1 + (unit & 1); }

static void unit_range(const lmc_shard *s, int unit, size_t *b, size_t *e)
{
    lmc_layout_unit(&s->m->layout, unit, b, e);
}

static lmc_status wait_req(lmc_shard *s, int *req)
{
    if (*req < 0)
        return LMC_OK;
    double t0 = lmc_now();
    lmc_status st = s->c->ops->wait(s->c, *req);
    s->wait_s += lmc_now() - t0;
    *req = -1;
    return st;
}

/* ---------- gradients ---------- */

/* Waits for the reduce-scatter of the unit in gradient slot k and adds this
 * rank's part of the sum into its shard. */
static lmc_status drain_grads(lmc_shard *s, int k)
{
    if (s->greq[k] < 0)
        return LMC_OK;
    LMC_TRY(wait_req(s, &s->greq[k]));
    size_t b, e;
    unit_range(s, s->gunit[k], &b, &e);
    size_t lo = b > s->own_begin ? b : s->own_begin, hi = e < s->own_end ? e : s->own_end;
    if (hi > lo) {
        float *acc = s->own_grads + (lo - s->own_begin);
        s->be->ops->add(s->be, acc, acc, s->gslot[k] + (lo - b), hi - lo);
    }
    return LMC_OK;
}

static lmc_status grads_acquire(lmc_shard *s, int unit)
{
    int k = slot_of(unit);
    size_t b, e;
    if (unit == 0 && s->keep_embed) { /* accumulates over the step's micro-batches */
        s->m->unit_grads[0] = s->gslot[0];
        return LMC_OK;
    }
    LMC_TRY(drain_grads(s, k));
    unit_range(s, unit, &b, &e);
    s->be->ops->zero(s->be, s->gslot[k], (e - b) * sizeof(float));
    s->gunit[k] = unit;
    s->m->unit_grads[unit] = s->gslot[k];
    return LMC_OK;
}

static lmc_status grads_release(lmc_shard *s, int unit)
{
    int k = slot_of(unit);
    size_t b, e;
    if (unit == 0 && s->keep_embed)
        return LMC_OK;
    unit_range(s, unit, &b, &e);
    return s->c->ops->reduce_scatter_start(s->c, s->gslot[k], s->n, b, e, &s->greq[k]);
}

/* ---------- parameters (ZeRO-3) ---------- */

static lmc_status start_gather(lmc_shard *s, int unit)
{
    int k = slot_of(unit);
    if (s->punit[k] == unit)
        return LMC_OK; /* held or on its way */
    LMC_TRY(wait_req(s, &s->preq[k])); /* a stale gather still writing there */
    size_t b, e;
    unit_range(s, unit, &b, &e);
    s->punit[k] = unit;
    return s->c->ops->allgather_start(s->c, s->own_params, s->pslot[k], s->n, b, e, &s->preq[k]);
}

/* The unit the passes acquire after this one (-1: none, already held, or
 * not on this pipeline stage: a unit further away could share this one's
 * slot). */
static int next_unit(const lmc_shard *s, int unit, int backward)
{
    int L = s->m->cfg.n_layer, next;
    if (!backward)
        next = unit <= L ? unit + 1 : -1;
    else if (unit == 0)
        next = L + 1;
    else
        next = unit > 1 ? unit - 1 : -1;
    return next >= 0 && lmc_layout_holds(&s->m->layout, next) ? next : -1;
}

static lmc_status params_acquire(lmc_shard *s, int unit, int backward)
{
    int k = slot_of(unit);
    LMC_TRY(start_gather(s, unit));
    LMC_TRY(wait_req(s, &s->preq[k]));
    s->m->unit_params[unit] = s->pslot[k];
    int next = next_unit(s, unit, backward);
    return next >= 0 ? start_gather(s, next) : LMC_OK;
}

/* ---------- the hooks ---------- */

static void hook_acquire(void *ctx, int unit, int backward)
{
    lmc_shard *s = ctx;
    if (s->status)
        return;
    if (s->stage == 3)
        s->status = params_acquire(s, unit, backward);
    if (!s->status && backward)
        s->status = grads_acquire(s, unit);
}

static void hook_release(void *ctx, int unit, int backward)
{
    lmc_shard *s = ctx;
    if (!s->status && backward)
        s->status = grads_release(s, unit);
}

/* ---------- the rest ---------- */

void lmc_shard_zero_grads(lmc_shard *s)
{
    size_t own = s->own_end - s->own_begin, b, e;
    if (own)
        s->be->ops->zero(s->be, s->own_grads, own * sizeof(float));
    unit_range(s, 0, &b, &e);
    if (s->keep_embed && e > b)
        s->be->ops->zero(s->be, s->gslot[0], (e - b) * sizeof(float));
}

lmc_status lmc_shard_sum_embed(lmc_shard *s, lmc_comm *stages)
{
    size_t b, e;
    unit_range(s, 0, &b, &e);
    if (!s->keep_embed || e == b)
        return LMC_OK;
    LMC_TRY(s->c->ops->allreduce(s->c, s->gslot[0], e - b));
    LMC_TRY(stages->ops->allreduce(stages, s->gslot[0], e - b));
    size_t lo = b > s->own_begin ? b : s->own_begin, hi = e < s->own_end ? e : s->own_end;
    if (hi > lo) {
        float *acc = s->own_grads + (lo - s->own_begin);
        s->be->ops->add(s->be, acc, acc, s->gslot[0] + (lo - b), hi - lo);
    }
    return LMC_OK;
}

lmc_status lmc_shard_finish_grads(lmc_shard *s)
{
    lmc_status st = s->status;
    s->status = LMC_OK;
    for (int k = 0; k < LMC_SHARD_SLOTS && st == LMC_OK; k++)
        st = drain_grads(s, k);
    return st;
}

lmc_status lmc_shard_params_changed(lmc_shard *s)
{
    lmc_status st = LMC_OK;
    for (int k = 0; k < LMC_SHARD_SLOTS; k++) {
        lmc_status w = wait_req(s, &s->preq[k]); /* a gather still writing there */
        st = st ? st : w;
        s->punit[k] = -1;
    }
    return st;
}

float *lmc_shard_params(lmc_shard *s) { return s->stage == 3 ? s->own_params : s->m->params + s->own_begin; }

lmc_status lmc_shard_gather_range(lmc_shard *s, size_t begin, size_t end, float *dst)
{
    if (s->stage < 3) {
        s->be->ops->copy(s->be, dst, s->m->params + begin, (end - begin) * sizeof(float));
        return LMC_OK;
    }
    int req = -1;
    LMC_TRY(s->c->ops->allgather_start(s->c, s->own_params, dst, s->n, begin, end, &req));
    return wait_req(s, &req);
}

static void *dev_alloc(lmc_backend *be, size_t floats)
{
    return be->ops->alloc(be, (floats ? floats : 16) * sizeof(float));
}

lmc_status lmc_shard_open(lmc_shard **out, lmc_model *m, lmc_comm *c, int stage)
{
    lmc_shard *s = calloc(1, sizeof *s);
    if (!s)
        return lmc_err(LMC_ENOMEM, "out of memory");
    size_t count, b0, e0, ring = lmc_layout_max_unit(&m->layout, 1);
    s->m = m, s->c = c, s->be = m->be, s->stage = stage, s->n = m->layout.total;
    lmc_comm_shard(s->n, c->size, c->rank, &s->own_begin, &count);
    s->own_end = s->own_begin + count;
    lmc_layout_unit(&m->layout, 0, &b0, &e0);
    size_t emb = e0 - b0;
    int ok = (s->own_grads = dev_alloc(s->be, s->own_end - s->own_begin)) != NULL;
    if (stage == 3)
        ok = ok && (s->own_params = dev_alloc(s->be, s->own_end - s->own_begin)) != NULL;
    for (int k = 0; k < LMC_SHARD_SLOTS; k++) {
        size_t sz = k == 0 ? emb : ring;
        s->punit[k] = s->gunit[k] = -1;
        s->preq[k] = s->greq[k] = -1;
        ok = ok && (s->gslot[k] = dev_alloc(s->be, sz)) != NULL;
        if (stage == 3)
            ok = ok && (s->pslot[k] = dev_alloc(s->be, sz)) != NULL;
    }
    s->hooks = (lmc_unit_hooks){.acquire = hook_acquire, .release = hook_release, .ctx = s};
    *out = s;
    if (!ok)
        return lmc_err(LMC_ENOMEM, "out of memory: ZeRO-%d shard buffers (%.1f MB of parameters per rank, units "
                       "up to %.1f MB)", stage, (s->own_end - s->own_begin) * 4 / 1e6, ring * 4 / 1e6);
    return LMC_OK;
}

void lmc_shard_close(lmc_shard *s)
{
    if (!s)
        return;
    float *bufs[2 + 2 * LMC_SHARD_SLOTS] = {s->own_params, s->own_grads};
    for (int k = 0; k < LMC_SHARD_SLOTS; k++)
        bufs[2 + 2 * k] = s->pslot[k], bufs[3 + 2 * k] = s->gslot[k];
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        if (bufs[i])
            s->be->ops->free(s->be, bufs[i]);
    free(s);
}
