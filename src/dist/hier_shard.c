/* hier_shard.c: the mixed job's reduce-scatter and all-gather (ZeRO), true
 * ones: each rank sends what a flat reduce-scatter's or all-gather's rank
 * sends, not the whole range twice.
 *
 * Pieces. Shard d is lmc_comm_shard(n, size, d) over the whole job, as
 * callers expect. In every group g one rank owns shard d for g: d itself
 * when d is in g, else one of g's ranks, the other groups' shards dealt out
 * in blocks so each rank owns about size / |g| shards (lmc_hier_pieces).
 * A run is a stretch of consecutive shards with one owner in a group.
 *
 * Reduce-scatter of [begin, end):
 *   stage 0 (start)   inside the group, each run is reduced to its owner
 *                     (the vendor's collective: MPI, HCCL, NCCL), so the
 *                     owner holds the group's sum of its shards;
 *   stage 1 (advance) each owner sends the group's sum of a foreign shard d
 *                     to d over MPI; d receives one piece per other group;
 *   stage 2 (finish)  d adds them to its own group's sum, in group order.
 * All-gather, the inverse:
 *   stage 0 (start)   each rank sends its shard to its owner in every other
 *                     group;
 *   stage 1 (advance) the owners, holding their runs, broadcast each run
 *                     inside the group (the vendor's collective);
 *   stage 2 (finish)  the group's collective is complete.
 * Every element of the range leaves a rank once in a reduce-scatter (to its
 * group's owner, or from the owner to the shard's rank): (size - 1) / size
 * of the range per rank, as a flat one. A device rank's cross-group pieces
 * go through host staging (download, MPI, upload); a CPU rank's straight
 * from and to its buffers. The cross-group messages are the world's
 * point-to-point (mpi_p2p.c), posted on the caller's thread in request
 * order, so two ranks always match them in the same order; at most HX_MAX
 * are in flight (older requests finish first). Jobs of more than HX_RANKS
 * ranks sum ranges instead (sum_range_start).
 */
#define _GNU_SOURCE
#include "backend/backend.h"
#include "dist/comm.h"
#include "dist/hier.h"
#include "dist/hier_internal.h"

#include <stdlib.h>
#include <string.h>

#ifdef LMC_HAVE_MPI
#include "dist/mpi_internal.h"
_Static_assert(HX_MAX <= P2P_SLOTS, "the cross-group messages in flight must fit the MPI communicator's slots");
#endif

/* ---------- the pieces ---------- */

/* Each group's owner of every shard: a rank owns its own shard; the other
 * groups' shards go in consecutive blocks to the group's ranks in order. */
static void deal_owners(int size, int g, const int *gids, int *owner)
{
    int m = 0, k = 0, member[size];
    for (int r = 0; r < size; r++)
        if (gids[r] == g)
            member[m++] = r;
    int foreign = size - m;
    for (int d = 0; d < size; d++)
        owner[d] = gids[d] == g ? d : member[(int)((long)k++ * m / foreign)];
}

lmc_status lmc_hier_pieces(lmc_comm *c, hier_impl *h, const int *gids)
{
    int P = c->size, G = h->ngroups;
    h->gid_of = malloc((size_t)P * sizeof(int));
    h->lidx = malloc((size_t)P * sizeof(int));
    h->gsize = calloc((size_t)G, sizeof(int));
    h->owner = malloc((size_t)G * (size_t)P * sizeof(int));
    if (!h->gid_of || !h->lidx || !h->gsize || !h->owner)
        return lmc_err(LMC_ENOMEM, "hier: out of memory for the pieces of %d ranks in %d groups", P, G);
    for (int r = 0; r < P; r++) {
        h->gid_of[r] = gids[r];
        h->lidx[r] = h->gsize[gids[r]]++;
    }
    for (int g = 0; g < G; g++)
        deal_owners(P, g, gids, h->owner + (size_t)g * P);
    /* LMC_TEST_HIER_SUMMED keeps the larger jobs' path tested on small ones */
    h->exact = P <= HX_RANKS && !getenv("LMC_TEST_HIER_SUMMED");
    return LMC_OK;
}

/* Shard d's part of [b, e): its start in *lo, its length returned. */
static size_t piece(size_t n, int size, int d, size_t b, size_t e, size_t *lo)
{
    size_t s, k;
    lmc_comm_shard(n, size, d, &s, &k);
    size_t l = s > b ? s : b, hi = s + k < e ? s + k : e;
    *lo = l;
    return hi > l ? hi - l : 0;
}

static int owner_of(const hier_impl *h, int size, int g, int d) { return h->owner[(size_t)g * size + d]; }

/* The next run of this rank's group from shard *d on that meets [b, e):
 * its owner and its part [*lo, *hi). 0 when none is left. */
static int next_run(const hier_impl *h, int size, size_t n, size_t b, size_t e, int *d, int *own, size_t *lo,
                    size_t *hi)
{
    while (*d < size) {
        int first = *d, o = owner_of(h, size, h->gid, first);
        while (*d < size && owner_of(h, size, h->gid, *d) == o)
            (*d)++;
        size_t s0, k0, s1, k1;
        lmc_comm_shard(n, size, first, &s0, &k0);
        lmc_comm_shard(n, size, *d - 1, &s1, &k1);
        *lo = s0 > b ? s0 : b;
        *hi = s1 + k1 < e ? s1 + k1 : e;
        if (*hi > *lo) {
            *own = o;
            return 1;
        }
    }
    return 0;
}

/* ---------- the group's stage: the vendor's collective ---------- */

/* A vector laid out so that [q B, q B + cnt) lies in group rank q's shard
 * alone (B: cnt rounded up to lmc_comm_shard's 16): the group's ranged
 * reduce-scatter of it is a reduce to q, its ranged all-gather a broadcast
 * from q (MPI_Reduce_scatter and MPI_Allgatherv with one count, HcclReduce
 * and HcclBroadcast, ncclReduce and ncclBroadcast). */
static size_t virtual_block(size_t cnt) { return (cnt + 15) / 16 * 16; }

static lmc_status group_reduce(hier_impl *h, float *p, size_t cnt, int q, int *req)
{
    size_t blk = virtual_block(cnt), at = blk * (size_t)q;
    return h->group->ops->reduce_scatter_start(h->group, p, blk * (size_t)h->group->size, at, at + cnt, req);
}

/* src: the owner's cnt floats (not dst in an MPI group: MPI's send and
 * receive buffers must not overlap); dst on every rank. */
static lmc_status group_bcast(hier_impl *h, const float *src, float *dst, size_t cnt, int q, int *req)
{
    size_t blk = virtual_block(cnt), at = blk * (size_t)q;
    return h->group->ops->allgather_start(h->group, src, dst, blk * (size_t)h->group->size, at, at + cnt, req);
}

/* ---------- the cross-group stage: messages over the world ---------- */

/* Room for need more messages: older requests finish first (their
 * messages came before; every rank frees them alike). */
static lmc_status room(lmc_comm *c, const hreq *r, unsigned need)
{
    hier_impl *h = lmc_hier_impl(c);
    while (h->xposted - h->xdone + need > HX_MAX && h->done != r->seq)
        LMC_TRY(lmc_hier_complete_to(c, h->done));
    if (h->xposted - h->xdone + need > HX_MAX) /* not with HX_RANKS ranks at most */
        return lmc_err(LMC_EINVAL, "hier: %u cross-group messages for one request (at most %d)", need, HX_MAX);
    return LMC_OK;
}

static lmc_status x_post(lmc_comm *c, hreq *r, const float *p, size_t cnt, int peer, int send)
{
    hier_impl *h = lmc_hier_impl(c);
    lmc_comm *w = h->world;
    int id = -1;
    if (send) {
        LMC_TRY(w->ops->send_start(w, p, cnt * sizeof(float), peer, &id));
        h->sent_cross += (double)cnt * sizeof(float);
    } else {
        LMC_TRY(w->ops->recv_start(w, (float *)p, cnt * sizeof(float), peer, &id));
    }
    if (!r->nx)
        r->x0 = h->xposted;
    h->xring[h->xposted++ % HX_MAX] = id;
    r->nx++;
    return LMC_OK;
}

/* r's messages are complete (their slots free once r finishes: in order). */
static lmc_status x_wait(lmc_comm *c, hreq *r)
{
    hier_impl *h = lmc_hier_impl(c);
    for (unsigned i = 0; i < r->nx && !r->xwaited; i++)
        LMC_TRY(h->world->ops->p2p_wait(h->world, h->xring[(r->x0 + i) % HX_MAX]));
    r->xwaited = 1;
    return LMC_OK;
}

/* The shards this rank owns for its group that belong to other groups'
 * ranks and meet [b, e): how many, and their floats. */
static unsigned foreign_pieces(lmc_comm *c, const hreq *r, size_t *floats)
{
    hier_impl *h = lmc_hier_impl(c);
    unsigned k = 0;
    *floats = 0;
    for (int d = 0; d < c->size; d++) {
        size_t lo, cnt = piece(r->total, c->size, d, r->begin, r->begin + r->n, &lo);
        if (cnt && h->gid_of[d] != h->gid && owner_of(h, c->size, h->gid, d) == c->rank)
            k++, *floats += cnt;
    }
    return k;
}

/* ---------- reduce-scatter ---------- */

static lmc_status check_range(size_t n, size_t begin, size_t end, const char *what)
{
    if (begin > end || end > n)
        return lmc_err(LMC_EINVAL, "hier %s: range [%zu, %zu) is not inside %zu elements", what, begin, end, n);
    return LMC_OK;
}

static lmc_status sum_range_start(lmc_comm *c, const float *shard, float *range, size_t n, size_t begin,
                                  size_t end, int *req);

lmc_status lmc_hier_reduce_scatter_start(lmc_comm *c, float *range, size_t n, size_t begin, size_t end, int *req)
{
    hier_impl *h = lmc_hier_impl(c);
    LMC_TRY(check_range(n, begin, end, "reduce_scatter"));
    if (!h->exact)
        return sum_range_start(c, NULL, range, n, begin, end, req);
    hreq *r = NULL;
    LMC_TRY(lmc_hier_post(c, &(hreq){.kind = HQ_RS, .buf = range, .n = end - begin, .total = n, .begin = begin},
                          &r, req));
    int d = 0, o = -1;
    size_t lo, hi;
    while (h->group && next_run(h, c->size, n, begin, end, &d, &o, &lo, &hi)) {
        LMC_TRY(group_reduce(h, range + (lo - begin), hi - lo, h->lidx[o], &r->inner));
        if (o != c->rank)
            h->sent_group += (double)(hi - lo) * sizeof(float);
    }
    /* nothing to wait for (a CPU rank alone in its group): the messages
     * start now; a device rank's download would wait for its queue */
    return r->inner < 0 && !h->device ? lmc_hier_advance(c, r) : LMC_OK;
}

/* Stage 1: the group's sums are in; each foreign shard's goes to its rank,
 * and this rank's own shard's come in, one per other group. Staging (host
 * memory): a device rank's outgoing pieces, then the incoming ones, then
 * (device) its own group's sum. */
static lmc_status rs_cross(lmc_comm *c, hreq *r)
{
    hier_impl *h = lmc_hier_impl(c);
    int P = c->size, G = h->ngroups;
    if (r->inner >= 0)
        LMC_TRY(h->group->ops->wait(h->group, r->inner));
    if (G == 1)
        return LMC_OK;
    size_t end = r->begin + r->n, mine_lo, mine = piece(r->total, P, c->rank, r->begin, end, &mine_lo), out;
    unsigned nf = foreign_pieces(c, r, &out);
    LMC_TRY(room(c, r, nf + (mine ? (unsigned)G - 1 : 0)));
    size_t floats = (size_t)(G - 1) * mine + (h->device ? out + mine : 0);
    if (floats)
        LMC_TRY(lmc_hier_stage_take(c, floats, &r->host));
    float *at = r->host;
    for (int d = 0; d < P; d++) {
        size_t lo, cnt = piece(r->total, P, d, r->begin, end, &lo);
        if (!cnt || h->gid_of[d] == h->gid || owner_of(h, P, h->gid, d) != c->rank)
            continue;
        const float *src = r->buf + (lo - r->begin);
        if (h->device) {
            c->be->ops->download(c->be, at, src, cnt * sizeof(float));
            src = at;
            at += cnt;
        }
        LMC_TRY(x_post(c, r, src, cnt, d, 1));
    }
    for (int g = 0; g < G && mine; g++)
        if (g != h->gid) {
            LMC_TRY(x_post(c, r, at, mine, owner_of(h, P, g, c->rank), 0));
            at += mine;
        }
    return LMC_OK;
}

/* Stage 2: this rank's shard = its group's sum + the other groups', added
 * in group order (on the host: a device rank's through staging). */
static lmc_status rs_sum(lmc_comm *c, hreq *r)
{
    hier_impl *h = lmc_hier_impl(c);
    int G = h->ngroups;
    LMC_TRY(x_wait(c, r));
    size_t out, mine_lo, mine = piece(r->total, c->size, c->rank, r->begin, r->begin + r->n, &mine_lo);
    if (G == 1 || !mine)
        return LMC_OK;
    foreign_pieces(c, r, &out);
    const float *in = r->host + (h->device ? out : 0);
    float *own = r->buf + (mine_lo - r->begin), *acc = own;
    if (h->device) {
        acc = r->host + out + (size_t)(G - 1) * mine;
        c->be->ops->download(c->be, acc, own, mine * sizeof(float));
    }
    for (int g = 0; g < G - 1; g++)
        for (size_t i = 0; i < mine; i++)
            acc[i] += in[(size_t)g * mine + i];
    if (h->device)
        c->be->ops->upload(c->be, own, acc, mine * sizeof(float));
    return LMC_OK;
}

/* ---------- all-gather ---------- */

/* Where this rank's pieces land: a device rank's incoming pieces in staging
 * after its own (uploaded at stage 1); a CPU rank in an MPI group assembles
 * the runs it owns in staging (MPI broadcasts from there); a CPU rank alone
 * in its group receives into the range itself. */
static float *ag_slot(lmc_comm *c, const hreq *r, int assemble, size_t mine, size_t lo, size_t *at, size_t cnt)
{
    hier_impl *h = lmc_hier_impl(c);
    if (!h->device && !assemble)
        return r->buf + (lo - r->begin);
    float *p = r->host + (h->device ? mine : 0) + *at;
    *at += cnt;
    return p;
}

/* Stage 0: this rank's shard to its owner in every other group; the
 * pieces this rank owns for its group come in. */
static lmc_status ag_cross(lmc_comm *c, hreq *r)
{
    hier_impl *h = lmc_hier_impl(c);
    int P = c->size, G = h->ngroups, assemble = !h->device && h->group;
    size_t end = r->begin + r->n, first, all, mine_lo, in;
    lmc_comm_shard(r->total, P, c->rank, &first, &all);
    size_t mine = piece(r->total, P, c->rank, r->begin, end, &mine_lo), sent = G > 1 ? mine : 0;
    unsigned nf = foreign_pieces(c, r, &in);
    LMC_TRY(room(c, r, nf + (sent ? (unsigned)G - 1 : 0)));
    size_t floats = h->device ? sent + in : assemble ? mine + in : 0;
    if (floats)
        LMC_TRY(lmc_hier_stage_take(c, floats, &r->host));
    const float *own = r->shard + (mine_lo - first), *src = own;
    size_t at = 0;
    for (int d = 0; d < P; d++) {
        size_t lo, cnt = piece(r->total, P, d, r->begin, end, &lo);
        if (!cnt || owner_of(h, P, h->gid, d) != c->rank)
            continue;
        if (d != c->rank) {
            LMC_TRY(x_post(c, r, ag_slot(c, r, assemble, sent, lo, &at, cnt), cnt, d, 0));
        } else if (h->device) {
            lmc_hier_mem_copy(c, r->buf + (lo - r->begin), own, cnt);
            if (sent)
                c->be->ops->download(c->be, r->host, own, cnt * sizeof(float));
            src = r->host;
        } else {
            float *dst = ag_slot(c, r, assemble, sent, lo, &at, cnt);
            memmove(dst, own, cnt * sizeof(float)); /* the same place in allgather_whole */
        }
    }
    for (int g = 0; g < G && sent; g++)
        if (g != h->gid)
            LMC_TRY(x_post(c, r, src, sent, owner_of(h, P, g, c->rank), 1));
    return LMC_OK;
}

/* Stage 1: the pieces are in; each run goes from its owner to the group. */
static lmc_status ag_group(lmc_comm *c, hreq *r)
{
    hier_impl *h = lmc_hier_impl(c);
    int P = c->size, assemble = !h->device && h->group, d = 0, o = -1;
    size_t end = r->begin + r->n, mine_lo, lo, hi, at = 0;
    size_t sent = h->ngroups > 1 ? piece(r->total, P, c->rank, r->begin, end, &mine_lo) : 0;
    LMC_TRY(x_wait(c, r));
    for (int k = 0; k < P && h->device; k++) { /* the incoming pieces, staged in order */
        size_t cnt = piece(r->total, P, k, r->begin, end, &lo);
        if (cnt && k != c->rank && owner_of(h, P, h->gid, k) == c->rank) {
            c->be->ops->upload(c->be, r->buf + (lo - r->begin), r->host + sent + at, cnt * sizeof(float));
            at += cnt;
        }
    }
    at = 0;
    while (h->group && next_run(h, P, r->total, r->begin, end, &d, &o, &lo, &hi)) {
        float *dst = r->buf + (lo - r->begin);
        const float *src = dst;
        if (o == c->rank && assemble) {
            src = r->host + at;
            at += hi - lo;
        }
        if (o == c->rank)
            h->sent_group += (double)(hi - lo) * sizeof(float) * (h->group->size - 1);
        LMC_TRY(group_bcast(h, src, dst, hi - lo, h->lidx[o], &r->inner));
    }
    return LMC_OK;
}

lmc_status lmc_hier_allgather_start(lmc_comm *c, const float *shard, float *range, size_t n, size_t begin,
                                    size_t end, int *req)
{
    hier_impl *h = lmc_hier_impl(c);
    LMC_TRY(check_range(n, begin, end, "allgather"));
    if (!h->exact)
        return sum_range_start(c, shard, range, n, begin, end, req);
    hreq *r = NULL;
    LMC_TRY(lmc_hier_post(c, &(hreq){.kind = HQ_AG, .buf = range, .n = end - begin, .total = n, .begin = begin,
                                     .shard = shard}, &r, req));
    return ag_cross(c, r);
}

/* ---------- the stages, as hier.c's queue runs them ---------- */

lmc_status lmc_hier_shard_advance(lmc_comm *c, hreq *r)
{
    return r->kind == HQ_RS ? rs_cross(c, r) : ag_group(c, r);
}

lmc_status lmc_hier_shard_finish(lmc_comm *c, hreq *r)
{
    hier_impl *h = lmc_hier_impl(c);
    lmc_status s = LMC_OK;
    if (r->kind == HQ_RS)
        s = rs_sum(c, r);
    else if (r->inner >= 0)
        s = h->group->ops->wait(h->group, r->inner);
    h->xdone += r->nx; /* requests finish in order: their messages free in order */
    return s;
}

/* ---------- more than HX_RANKS ranks: sums of ranges ---------- */

/* A reduce-scatter (shard NULL) as the hierarchical sum of the range (a
 * superset of what the shard needs); an all-gather as the sum of a range
 * holding this rank's piece and zeros elsewhere (exact: x + 0 = x). */
static lmc_status sum_range_start(lmc_comm *c, const float *shard, float *range, size_t n, size_t begin,
                                  size_t end, int *req)
{
    if (shard) {
        size_t mine, cnt;
        lmc_comm_shard(n, c->size, c->rank, &mine, &cnt);
        size_t lo = mine > begin ? mine : begin, hi = mine + cnt < end ? mine + cnt : end;
        if (hi < lo)
            hi = lo = end;
        lmc_hier_mem_zero(c, range, lo - begin);
        lmc_hier_mem_zero(c, range + (hi - begin), end - hi);
        lmc_hier_mem_copy(c, range + (lo - begin), shard + (lo - mine), hi - lo);
    }
    return lmc_hier_sum_start(c, range, end - begin, req);
}

lmc_status lmc_hier_sent(lmc_comm *c, double *group, double *cross)
{
    if (!c || !c->name || strncmp(c->name, "hier", 4))
        return lmc_err(LMC_EINVAL, "lmc_hier_sent: communicator '%s' is not the hierarchical one",
                       c && c->name ? c->name : "?");
    hier_impl *h = lmc_hier_impl(c);
    *group = h->sent_group;
    *cross = h->sent_cross;
    return LMC_OK;
}
