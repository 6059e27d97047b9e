/* shard.c: ZeRO's pieces, and ZeRO-2/3's unit buffers, gathers and
 * reduce-scatters (shard.h). */
#include "train/shard.h"

#include <stdlib.h>
#include <string.h>

/* ---------- the pieces ---------- */

lmc_status lmc_shard_pieces_open(lmc_shard_pieces *ps, int cap)
{
    memset(ps, 0, sizeof *ps);
    ps->p = calloc((size_t)(cap > 0 ? cap : 1), sizeof *ps->p);
    ps->cap = cap;
    return ps->p ? LMC_OK : lmc_err(LMC_ENOMEM, "out of memory");
}

void lmc_shard_pieces_close(lmc_shard_pieces *ps)
{
    free(ps->p);
    memset(ps, 0, sizeof *ps);
}

void lmc_shard_pieces_add(lmc_shard_pieces *ps, size_t b, size_t e, lmc_comm *g)
{
    if (ps->n >= ps->cap || e <= b)
        return;
    lmc_shard_piece *p = &ps->p[ps->n++];
    p->b = b, p->n = e - b, p->g = g, p->at = ps->count;
    p->own = 0, p->cnt = p->n;
    if (g)
        lmc_comm_shard(p->n, g->size, g->rank, &p->own, &p->cnt);
    ps->count += p->cnt;
}

void lmc_shard_pieces_pick(const lmc_shard_pieces *ps, const float *whole, float *dst)
{
    for (int i = 0; i < ps->n; i++) {
        const lmc_shard_piece *p = &ps->p[i];
        memcpy(dst + p->at, whole + p->b + p->own, p->cnt * sizeof(float));
    }
}

/* The overlap [*lo, *hi) of piece p with [b, e). */
static int overlap(const lmc_shard_piece *p, size_t b, size_t e, size_t *lo, size_t *hi)
{
    *lo = b > p->b ? b : p->b;
    *hi = e < p->b + p->n ? e : p->b + p->n;
    return *hi > *lo;
}

/* ---------- the unit buffers ---------- */

static int slot_of(int unit) { return unit == 0 ? 0 : 1 + (unit & 1); }

static void unit_range(const lmc_shard *s, int unit, size_t *b, size_t *e)
{
    lmc_layout_unit(&s->m->layout, unit, b, e);
}

static lmc_status wait_req(lmc_shard *s, lmc_comm *c, int *req)
{
    if (*req < 0)
        return LMC_OK;
    double t0 = lmc_now();
    lmc_status st = c->ops->wait(c, *req);
    s->wait_s += lmc_now() - t0;
    *req = -1;
    return st;
}

static lmc_status wait_all(lmc_shard *s, lmc_comm **c, int *req)
{
    lmc_status st = LMC_OK;
    for (int j = 0; j < LMC_SHARD_UNIT_PIECES; j++) {
        lmc_status w = wait_req(s, c[j], &req[j]);
        st = st ? st : w;
    }
    return st;
}

/* Adds this rank's part of buf (elements [b, e) of the buffer, summed) into
 * its gradient shards. */
static void add_own(lmc_shard *s, const float *buf, size_t b, size_t e)
{
    for (int i = 0; i < s->pc->n; i++) {
        const lmc_shard_piece *p = &s->pc->p[i];
        size_t lo, hi, o = p->b + p->own;
        if (!overlap(p, b, e, &lo, &hi))
            continue;
        lo = lo > o ? lo : o, hi = hi < o + p->cnt ? hi : o + p->cnt;
        if (hi > lo) {
            float *acc = s->own_grads + p->at + (lo - o);
            s->be->ops->add(s->be, acc, acc, buf + (lo - b), hi - lo);
        }
    }
}

/* ---------- gradients ---------- */

/* Waits for the reduce-scatters of the unit in gradient slot k and adds
 * this rank's part of the sum into its shards. */
static lmc_status drain_grads(lmc_shard *s, int k)
{
    if (!s->gpend[k])
        return LMC_OK;
    LMC_TRY(wait_all(s, s->gcomm[k], s->greq[k]));
    s->gpend[k] = 0;
    size_t b, e;
    unit_range(s, s->gunit[k], &b, &e);
    add_own(s, s->gslot[k], b, e);
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

/* The unit's gradient reduce-scattered piece by piece, each over its group. */
static lmc_status grads_release(lmc_shard *s, int unit)
{
    int k = slot_of(unit), j = 0;
    size_t b, e, lo, hi;
    if (unit == 0 && s->keep_embed)
        return LMC_OK;
    unit_range(s, unit, &b, &e);
    s->gpend[k] = 1;
    for (int i = 0; i < s->pc->n; i++) {
        const lmc_shard_piece *p = &s->pc->p[i];
        if (!overlap(p, b, e, &lo, &hi) || !p->g)
            continue;
        if (j == LMC_SHARD_UNIT_PIECES)
            return lmc_err(LMC_EINVAL, "unit %d overlaps more than %d ZeRO pieces", unit, LMC_SHARD_UNIT_PIECES);
        s->gcomm[k][j] = p->g;
        LMC_TRY(p->g->ops->reduce_scatter_start(p->g, s->gslot[k] + (lo - b), p->n, lo - p->b, hi - p->b,
                                                &s->greq[k][j++]));
    }
    return LMC_OK;
}

/* ---------- parameters (ZeRO-3) ---------- */

/* Elements [b, e) of the parameters into dst from their owners, piece by
 * piece (a piece of this rank alone: copied); the gathers' requests in
 * req, their groups in c. */
static lmc_status gather_start(lmc_shard *s, size_t b, size_t e, float *dst, lmc_comm **c, int *req)
{
    int j = 0;
    size_t lo, hi;
    for (int i = 0; i < s->pc->n; i++) {
        const lmc_shard_piece *p = &s->pc->p[i];
        if (!overlap(p, b, e, &lo, &hi))
            continue;
        if (!p->g) {
            s->be->ops->copy(s->be, dst + (lo - b), s->own_params + p->at + (lo - p->b), (hi - lo) * sizeof(float));
            continue;
        }
        if (j == LMC_SHARD_UNIT_PIECES)
            return lmc_err(LMC_EINVAL, "[%zu, %zu) overlaps more than %d ZeRO pieces", b, e, LMC_SHARD_UNIT_PIECES);
        c[j] = p->g;
        LMC_TRY(p->g->ops->allgather_start(p->g, s->own_params + p->at, dst + (lo - b), p->n, lo - p->b,
                                           hi - p->b, &req[j++]));
    }
    return LMC_OK;
}

static lmc_status start_gather(lmc_shard *s, int unit)
{
    int k = slot_of(unit);
    if (s->punit[k] == unit)
        return LMC_OK; /* held or on its way */
    LMC_TRY(wait_all(s, s->pcomm[k], s->preq[k])); /* a stale gather still writing there */
    size_t b, e;
    unit_range(s, unit, &b, &e);
    s->punit[k] = unit;
    return gather_start(s, b, e, s->pslot[k], s->pcomm[k], s->preq[k]);
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
    LMC_TRY(wait_all(s, s->pcomm[k], s->preq[k]));
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
    size_t b, e;
    if (s->pc->count)
        s->be->ops->zero(s->be, s->own_grads, s->pc->count * sizeof(float));
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
    add_own(s, s->gslot[0], b, e);
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
        lmc_status w = wait_all(s, s->pcomm[k], s->preq[k]); /* a gather still writing there */
        st = st ? st : w;
        s->punit[k] = -1;
    }
    return st;
}

float *lmc_shard_params(lmc_shard *s, int i)
{
    const lmc_shard_piece *p = &s->pc->p[i];
    return s->stage == 3 ? s->own_params + p->at : s->m->params + p->b + p->own;
}

lmc_status lmc_shard_gather_range(lmc_shard *s, size_t begin, size_t end, float *dst)
{
    if (s->stage < 3) {
        s->be->ops->copy(s->be, dst, s->m->params + begin, (end - begin) * sizeof(float));
        return LMC_OK;
    }
    lmc_comm *c[LMC_SHARD_UNIT_PIECES] = {NULL};
    int req[LMC_SHARD_UNIT_PIECES] = {-1, -1};
    lmc_status st = gather_start(s, begin, end, dst, c, req);
    lmc_status w = wait_all(s, c, req);
    return st ? st : w;
}

static void *dev_alloc(lmc_backend *be, size_t floats)
{
    return be->ops->alloc(be, (floats ? floats : 16) * sizeof(float));
}

lmc_status lmc_shard_open(lmc_shard **out, lmc_model *m, lmc_comm *c, const lmc_shard_pieces *pc, int stage)
{
    lmc_shard *s = calloc(1, sizeof *s);
    if (!s)
        return lmc_err(LMC_ENOMEM, "out of memory");
    size_t b0, e0, ring = lmc_layout_max_unit(&m->layout, 1), own = pc->count;
    s->m = m, s->c = c, s->be = m->be, s->stage = stage, s->pc = pc;
    lmc_layout_unit(&m->layout, 0, &b0, &e0);
    size_t emb = e0 - b0;
    int ok = (s->own_grads = dev_alloc(s->be, own)) != NULL;
    if (stage == 3)
        ok = ok && (s->own_params = dev_alloc(s->be, own)) != NULL;
    for (int k = 0; k < LMC_SHARD_SLOTS; k++) {
        size_t sz = k == 0 ? emb : ring;
        s->punit[k] = s->gunit[k] = -1;
        for (int j = 0; j < LMC_SHARD_UNIT_PIECES; j++)
            s->preq[k][j] = s->greq[k][j] = -1;
        ok = ok && (s->gslot[k] = dev_alloc(s->be, sz)) != NULL;
        if (stage == 3)
            ok = ok && (s->pslot[k] = dev_alloc(s->be, sz)) != NULL;
    }
    s->hooks = (lmc_unit_hooks){.acquire = hook_acquire, .release = hook_release, .ctx = s};
    *out = s;
    if (!ok)
        return lmc_err(LMC_ENOMEM, "out of memory: ZeRO-%d shard buffers (%.1f MB of parameters per rank, units "
                       "up to %.1f MB)", stage, own * 4 / 1e6, ring * 4 / 1e6);
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
