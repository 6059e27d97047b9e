/* hier.c: the hierarchical communicator: one job across chip vendors.
 *
 * Ranks are grouped by backend kind and host (cpu, npu, cuda; a group may
 * span only one node). Inside a group the vendor's collective runs on the
 * group's own memory: MPI for CPU ranks, HCCL for Ascend NPUs, NCCL for
 * CUDA GPUs. Across groups one leader per group (its lowest rank) sums the
 * groups' results over MPI, through host memory (a device leader downloads
 * into a staging buffer and uploads the sum back), then the leader
 * broadcasts inside its group. A sum is: group allreduce -> leaders'
 * allreduce -> group broadcast, so every rank ends with the leaders' bits.
 *
 * Overlap. allreduce_start starts the group's collective at once (a device
 * group's is ordered after the backend's queued work, as today). The
 * cross-group stage of a bucket starts when the next bucket starts (or at
 * its wait), so the network stage of bucket k runs on the MPI
 * communicator's thread while backward computes bucket k+1. Every backend
 * call stays on the caller's thread. Requests complete in the order started,
 * identically on every rank, so no collective can be matched out of order.
 *
 * Ranges (ZeRO): reduce-scatter and all-gather are true ones
 * (hier_shard.c): each group reduce-scatters inside itself into pieces cut
 * at the job's shard boundaries, and only the pieces a shard needs cross
 * groups, so each rank sends what a flat reduce-scatter's rank sends.
 * Shards are lmc_comm_shard's over the whole job, as for every
 * communicator. Broadcasts go over MPI through host memory.
 *
 * Memory: each rank's buffers are its own backend's (host for CPU ranks,
 * device for NPU and GPU ranks): device_memory is 1 on every rank so that
 * callers take one path on all ranks, and per_rank_memory says why.
 *
 * Chosen by lmc_comm_open_job under --dist auto when the ranks of an
 * mpirun do not all run on the CPU (or LMC_TEST_HIER_GROUPS sets groups);
 * a job of CPU ranks gets the MPI communicator exactly as before.
 */
#define _GNU_SOURCE
#include "backend/backend.h"
#include "dist/comm.h"
#include "dist/hier.h"
#include "dist/hier_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef LMC_HAVE_MPI
#include "dist/mpi_internal.h"
#endif

static hier_impl *impl_of(lmc_comm *c) { return lmc_hier_impl(c); }

/* The caller's settings reach the communicators below. */
static void pass_down(lmc_comm *c)
{
    hier_impl *h = impl_of(c);
    lmc_comm *subs[] = {h->world, h->gmpi, h->group, h->cross};
    double busy = 0;
    for (int i = 0; i < 4; i++)
        if (subs[i]) {
            subs[i]->timeout_s = c->timeout_s;
            subs[i]->idle = c->idle;
            if (subs[i]->device_memory)
                subs[i]->be = c->be;
            busy += subs[i]->busy_s;
        }
    c->busy_s = busy;
}

/* ---------- memory of this rank's kind ---------- */

void lmc_hier_mem_zero(lmc_comm *c, float *p, size_t n)
{
    if (!n)
        return;
    if (c->be)
        c->be->ops->zero(c->be, p, n * sizeof(float));
    else
        memset(p, 0, n * sizeof(float));
}

void lmc_hier_mem_copy(lmc_comm *c, float *dst, const float *src, size_t n)
{
    if (!n || dst == src)
        return;
    if (c->be)
        c->be->ops->copy(c->be, dst, src, n * sizeof(float));
    else
        memmove(dst, src, n * sizeof(float));
}

/* Host memory for staging: page-locked where the backend offers it (NPU),
 * else pageable. */
static void *host_get(lmc_comm *c, size_t bytes, int *pinned)
{
    void *p = NULL;
    if (c->be && c->be->ops->host_alloc)
        p = c->be->ops->host_alloc(c->be, bytes);
    *pinned = p != NULL;
    return p ? p : malloc(bytes ? bytes : 1);
}

static void host_put(lmc_comm *c, void *p, int pinned)
{
    if (pinned)
        c->be->ops->host_free(c->be, p);
    else
        free(p);
}

/* Host staging for n floats. Blocks are added while sums are in flight;
 * once none is, they merge into one that holds them all, so from the second
 * step on nothing is allocated in the step loop. */
lmc_status lmc_hier_stage_take(lmc_comm *c, size_t n, float **out)
{
    hier_impl *h = impl_of(c);
    stage_block *b = h->nstage ? &h->stage[h->nstage - 1] : NULL;
    if (!b || b->used + n > b->cap) {
        if (h->nstage == HB_MAX)
            return lmc_err(LMC_ENOMEM, "hier: more than %d staging blocks in flight", HB_MAX);
        size_t grow = b ? 2 * b->cap : 1024; /* doubling: HB_MAX blocks hold any amount */
        b = &h->stage[h->nstage];
        b->cap = n > grow ? n : grow;
        b->used = 0;
        if (!(b->p = host_get(c, b->cap * sizeof(float), &b->pinned)))
            return lmc_err(LMC_ENOMEM, "hier: out of memory for %zu MB of host staging", b->cap * 4 >> 20);
        h->nstage++;
    }
    *out = b->p + b->used;
    b->used += n;
    return LMC_OK;
}

/* Nothing in flight: the blocks become one of their total size. */
static void stage_reset(lmc_comm *c)
{
    hier_impl *h = impl_of(c);
    size_t total = 0;
    for (int i = 0; i < h->nstage; i++)
        total += h->stage[i].used;
    if (h->nstage > 1) {
        for (int i = 0; i < h->nstage; i++)
            host_put(c, h->stage[i].p, h->stage[i].pinned);
        h->nstage = 0;
        int pinned = 0;
        float *p = host_get(c, total * sizeof(float), &pinned);
        if (p) /* else blocks are made again as needed */
            h->stage[h->nstage++] = (stage_block){.p = p, .cap = total, .pinned = pinned};
    }
    if (h->nstage)
        h->stage[0].used = 0;
}

/* ---------- one request's stages ---------- */

/* A sum, stage 0 -> 1: the group's sum is complete; the leader starts the
 * sum over the leaders (from host memory). */
static lmc_status sum_advance(lmc_comm *c, hreq *r)
{
    hier_impl *h = impl_of(c);
    if (r->inner >= 0)
        LMC_TRY(h->group->ops->wait(h->group, r->inner));
    if (!h->cross || !r->n)
        return LMC_OK;
    float *src = r->buf;
    if (h->staged) {
        LMC_TRY(lmc_hier_stage_take(c, r->n, &r->host));
        c->be->ops->download(c->be, r->host, r->buf, r->n * sizeof(float));
        src = r->host;
    }
    return h->cross->ops->allreduce_start(h->cross, src, r->n, &r->cross);
}

/* A sum, stage 1 -> 2: the leaders' sum is back; the group gets the
 * leader's. */
static lmc_status sum_finish(lmc_comm *c, hreq *r)
{
    hier_impl *h = impl_of(c);
    if (h->cross && r->n) {
        LMC_TRY(h->cross->ops->wait(h->cross, r->cross));
        if (h->staged)
            c->be->ops->upload(c->be, r->buf, r->host, r->n * sizeof(float));
    }
    if (h->ngroups > 1 && h->group && r->n)
        LMC_TRY(h->group->ops->broadcast(h->group, r->buf, r->n * sizeof(float), 0));
    return LMC_OK;
}

/* Stage 0 -> 1: the second stage starts (the leaders' sum, or the
 * cross-group messages of a reduce-scatter, or an all-gather's group
 * stage). */
lmc_status lmc_hier_advance(lmc_comm *c, hreq *r)
{
    if (r->stage != 0)
        return LMC_OK;
    r->stage = 1;
    return r->kind == HQ_SUM ? sum_advance(c, r) : lmc_hier_shard_advance(c, r);
}

/* Stage 1 -> 2: the request is complete. */
static lmc_status finish(lmc_comm *c, hreq *r)
{
    LMC_TRY(lmc_hier_advance(c, r));
    if (r->stage != 1)
        return LMC_OK;
    r->stage = 2;
    return r->kind == HQ_SUM ? sum_finish(c, r) : lmc_hier_shard_finish(c, r);
}

/* Completes every request up to and including id (requests complete in
 * order). */
lmc_status lmc_hier_complete_to(lmc_comm *c, unsigned last)
{
    hier_impl *h = impl_of(c);
    pass_down(c);
    while (h->done != last + 1) {
        LMC_TRY(finish(c, &h->q[h->done % HR_MAX]));
        h->q[h->done % HR_MAX].host = NULL;
        h->done++;
    }
    if (h->done == h->posted)
        stage_reset(c);
    pass_down(c);
    return LMC_OK;
}

static lmc_status drain(lmc_comm *c)
{
    hier_impl *h = impl_of(c);
    return h->done == h->posted ? LMC_OK : lmc_hier_complete_to(c, h->posted - 1);
}

static lmc_status hi_wait(lmc_comm *c, int req)
{
    hier_impl *h = impl_of(c);
    if (req < 0)
        return lmc_err(LMC_EINVAL, "hier wait: request %d was never started", req);
    const hreq *r = &h->q[(unsigned)req % HR_MAX]; /* HR_MAX divides 2^31: ids keep their slot */
    unsigned ago = h->posted - r->seq; /* 1 for the newest */
    if ((r->seq & 0x7fffffffu) != (unsigned)req || ago == 0 || ago > h->posted - h->done)
        return LMC_OK; /* finished long ago */
    return lmc_hier_complete_to(c, r->seq);
}

/* A new request: the earlier ones' second stages start first (the
 * cross-group stage of bucket k while bucket k + 1's group stage runs). */
lmc_status lmc_hier_post(lmc_comm *c, const hreq *tmpl, hreq **out, int *req)
{
    hier_impl *h = impl_of(c);
    pass_down(c);
    if (h->posted - h->done >= HR_MAX)
        LMC_TRY(lmc_hier_complete_to(c, h->done));
    for (unsigned k = h->done; k != h->posted; k++)
        LMC_TRY(lmc_hier_advance(c, &h->q[k % HR_MAX]));
    hreq *r = &h->q[h->posted % HR_MAX];
    *r = *tmpl;
    r->stage = 0;
    r->inner = r->cross = -1;
    r->host = NULL;
    r->nx = r->xwaited = 0;
    r->seq = h->posted;
    *req = (int)(h->posted & 0x7fffffff);
    h->posted++;
    *out = r;
    return LMC_OK;
}

lmc_status lmc_hier_sum_start(lmc_comm *c, float *buf, size_t n, int *req)
{
    hier_impl *h = impl_of(c);
    hreq *r = NULL;
    LMC_TRY(lmc_hier_post(c, &(hreq){.kind = HQ_SUM, .buf = buf, .n = n}, &r, req));
    if (h->group && n)
        LMC_TRY(h->group->ops->allreduce_start(h->group, buf, n, &r->inner));
    /* nothing to wait for before the leaders' sum (a CPU rank alone in its
     * group): it starts now */
    return r->inner < 0 && !h->staged ? lmc_hier_advance(c, r) : LMC_OK;
}

static lmc_status hi_allreduce(lmc_comm *c, float *buf, size_t n)
{
    int req = -1;
    LMC_TRY(lmc_hier_sum_start(c, buf, n, &req));
    return hi_wait(c, req);
}

static lmc_status hi_reduce_scatter(lmc_comm *c, float *buf, size_t n)
{
    int req = -1;
    LMC_TRY(lmc_hier_reduce_scatter_start(c, buf, n, 0, n, &req));
    return hi_wait(c, req);
}

/* Every rank assembles the whole (a rare operation: checkpoints). */
static lmc_status hi_gather(lmc_comm *c, const float *shard, float *full, size_t n, int root)
{
    if (root < 0 || root >= c->size)
        return lmc_err(LMC_EINVAL, "hier gather: root %d is not a rank (size %d)", root, c->size);
    float *tmp = full;
    if (!tmp && !(tmp = c->be ? c->be->ops->alloc(c->be, (n ? n : 1) * sizeof(float)) : malloc(n * sizeof(float) + 4)))
        return lmc_err(LMC_ENOMEM, "hier gather: out of memory for %zu floats", n);
    int req = -1;
    lmc_status s = lmc_hier_allgather_start(c, shard, tmp, n, 0, n, &req);
    if (s == LMC_OK)
        s = hi_wait(c, req);
    if (tmp != full)
        c->be ? c->be->ops->free(c->be, tmp) : free(tmp);
    return s;
}

static lmc_status hi_broadcast(lmc_comm *c, void *buf, size_t bytes, int root)
{
    hier_impl *h = impl_of(c);
    LMC_TRY(drain(c));
    if (!h->device || !bytes)
        return h->world->ops->broadcast(h->world, buf, bytes, root);
    int pinned = 0;
    void *host = host_get(c, bytes, &pinned);
    if (!host)
        return lmc_err(LMC_ENOMEM, "hier broadcast: out of memory for %zu bytes of staging", bytes);
    if (c->rank == root)
        c->be->ops->download(c->be, host, buf, bytes);
    lmc_status s = h->world->ops->broadcast(h->world, host, bytes, root);
    if (s == LMC_OK)
        c->be->ops->upload(c->be, buf, host, bytes);
    host_put(c, host, pinned);
    return s;
}

/* ---------- host collectives: MPI over every rank ---------- */

static lmc_status hi_allreduce_host(lmc_comm *c, double *x, int n, int op_max)
{
    LMC_TRY(drain(c));
    return impl_of(c)->world->ops->allreduce_host(impl_of(c)->world, x, n, op_max);
}

static lmc_status hi_allgather_host(lmc_comm *c, const void *in, void *out, size_t bytes)
{
    LMC_TRY(drain(c));
    return impl_of(c)->world->ops->allgather_host(impl_of(c)->world, in, out, bytes);
}

static lmc_status hi_barrier(lmc_comm *c)
{
    LMC_TRY(drain(c));
    return impl_of(c)->world->ops->barrier(impl_of(c)->world);
}

static lmc_status hi_p2p(lmc_comm *c, const void *buf, size_t bytes, int peer, int *req)
{
    return lmc_err(LMC_EUNSUPPORTED, "a job mixing chip kinds (the hierarchical communicator) has no point to point: "
                   "pipeline stages (--pp) need ranks of one kind");
}

static lmc_status hi_recv_start(lmc_comm *c, void *buf, size_t bytes, int peer, int *req)
{
    return hi_p2p(c, buf, bytes, peer, req);
}

static lmc_status hi_p2p_wait(lmc_comm *c, int req)
{
    return hi_p2p(c, NULL, 0, 0, NULL);
}

static lmc_status hi_split(lmc_comm *c, int color, int key, lmc_comm **out)
{
    *out = NULL;
    return lmc_err(LMC_EUNSUPPORTED, "a job mixing chip kinds runs data parallelism (with --zero and --balance): "
                   "process groups (--tp, --pp) need ranks of one kind");
}

static void hi_abort(lmc_comm *c, const char *why)
{
    hier_impl *h = impl_of(c);
    h->world->ops->abort(h->world, why);
}

static void hi_destroy(lmc_comm *c)
{
    hier_impl *h = impl_of(c);
    if (!h) {
        free(c);
        return;
    }
    if (h->group != h->gmpi)
        lmc_comm_close(h->group); /* a device group before the MPI communicator it started on */
    lmc_comm_close(h->gmpi);
    lmc_comm_close(h->cross);
    lmc_comm_close(h->world); /* last: it may finalize MPI */
    for (int i = 0; i < h->nstage; i++)
        host_put(c, h->stage[i].p, h->stage[i].pinned);
    free(h->gid_of), free(h->lidx), free(h->gsize), free(h->owner);
    free(h);
    free(c);
}

static const lmc_comm_ops hier_ops = {
    .allreduce = hi_allreduce,
    .allreduce_start = lmc_hier_sum_start,
    .reduce_scatter_start = lmc_hier_reduce_scatter_start,
    .allgather_start = lmc_hier_allgather_start,
    .wait = hi_wait,
    .reduce_scatter = hi_reduce_scatter,
    .allgather = lmc_comm_allgather_whole,
    .gather = hi_gather,
    .broadcast = hi_broadcast,
    .allreduce_host = hi_allreduce_host,
    .allgather_host = hi_allgather_host,
    .barrier = hi_barrier,
    .send_start = hi_p2p,
    .recv_start = hi_recv_start,
    .p2p_wait = hi_p2p_wait,
    .split = hi_split,
    .abort = hi_abort,
    .destroy = hi_destroy,
};

/* ---------- the group's vendor communicator ---------- */

typedef lmc_status (*group_open_fn)(void *mpi_comm, lmc_comm **out);

/* cpu: the MPI split itself; npu, cuda: the vendor's communicator started
 * over the split's MPI communicator (the plugin's lmc_comm_<vendor>_group). */
static lmc_status open_vendor(hier_impl *h, const char *kind)
{
    if (!strcmp(kind, "cpu")) {
        h->group = h->gmpi;
        return LMC_OK;
    }
#ifdef LMC_HAVE_MPI
    void *fn = NULL;
    if (!strcmp(kind, "npu"))
        LMC_TRY(lmc_plugin_symbol("npu", "lmc_comm_hccl_group", "a mixed job's npu group (HCCL)", &fn));
    else if (!strcmp(kind, "cuda"))
        LMC_TRY(lmc_cuda_plugin_symbol("lmc_comm_nccl_group", "a mixed job's cuda group (NCCL)", &fn));
    else
        return lmc_err(LMC_EUNSUPPORTED, "--device %s: no collective library is known for this kind of chip in a "
                       "mixed job (cpu, npu and cuda are)", kind);
    mpi_impl *p = h->gmpi->impl;
    return ((group_open_fn)fn)(&p->comm, &h->group);
#else
    return lmc_err(LMC_EUNSUPPORTED, "--device %s in a mixed job: this lmc was built without MPI", kind);
#endif
}

/* ---------- who is in which group ---------- */

typedef struct {
    char kind[16], host[64];
    int hint; /* LMC_TEST_HIER_GROUPS's group for this rank, or -1 */
} rank_card;

/* The kind of chip --device names: cpu (also cpu:VARIANT), npu, cuda. */
void lmc_hier_device_kind(const char *device, char *kind, size_t len)
{
    if (!device || !strncmp(device, "cpu", 3)) {
        snprintf(kind, len, "cpu");
        return;
    }
    size_t k = strcspn(device, ":");
    snprintf(kind, len, "%.*s", (int)(k < len ? k : len - 1), device);
}

/* LMC_TEST_HIER_GROUPS="0,1,1": rank r's group is the r-th number (tests
 * simulate groups with CPU ranks only). */
static lmc_status test_hint(int rank, int *hint)
{
    const char *s = getenv("LMC_TEST_HIER_GROUPS");
    *hint = -1;
    if (!s)
        return LMC_OK;
    const char *p = s;
    for (int r = 0; *p; r++) {
        char *e;
        long v = strtol(p, &e, 10);
        if (e == p || v < 0 || v > 4096 || (*e && *e != ','))
            return lmc_err(LMC_EINVAL, "LMC_TEST_HIER_GROUPS='%s': not a comma-separated list of group numbers", s);
        if (r == rank)
            *hint = (int)v;
        p = *e ? e + 1 : e;
    }
    if (*hint < 0)
        return lmc_err(LMC_EINVAL, "LMC_TEST_HIER_GROUPS='%s' names no group for rank %d", s, rank);
    return LMC_OK;
}

/* gids[r]: rank r's group, numbered by first appearance (kind and host, or
 * the test's hint); a group holds one kind of chip. */
static lmc_status assign_groups(const rank_card *all, int n, int *gids, int *ngroups)
{
    *ngroups = 0;
    for (int r = 0; r < n; r++) {
        gids[r] = -1;
        for (int q = 0; q < r && gids[r] < 0; q++) {
            int same = all[r].hint >= 0 ? all[r].hint == all[q].hint
                                        : !strcmp(all[r].kind, all[q].kind) && !strcmp(all[r].host, all[q].host);
            if (same && strcmp(all[r].kind, all[q].kind))
                return lmc_err(LMC_EINVAL, "LMC_TEST_HIER_GROUPS puts rank %d (--device %s) in one group with rank %d "
                               "(--device %s): a group holds one kind of chip", r, all[r].kind, q, all[q].kind);
            if (same)
                gids[r] = gids[q];
        }
        if (gids[r] < 0)
            gids[r] = (*ngroups)++;
    }
    return LMC_OK;
}

/* "hier (cpu x2 + npu x2)": each group's kind and ranks, for the log. */
static void label(lmc_comm *c, hier_impl *h, const rank_card *all, const int *gids)
{
    size_t at = (size_t)snprintf(h->label, sizeof h->label, "hier (");
    for (int g = 0; g < h->ngroups && at < sizeof h->label; g++) {
        int n = 0, first = -1;
        for (int r = 0; r < c->size; r++)
            if (gids[r] == g) {
                n++;
                first = first < 0 ? r : first;
            }
        at += (size_t)snprintf(h->label + at, sizeof h->label - at, "%s%s x%d", g ? " + " : "", all[first].kind, n);
    }
    if (at < sizeof h->label)
        snprintf(h->label + at, sizeof h->label - at, ")");
    c->name = h->label;
}

static lmc_status build(lmc_comm *c, hier_impl *h, const rank_card *all, const char *kind)
{
    int *gids = malloc((size_t)c->size * sizeof(int));
    if (!gids)
        return lmc_err(LMC_ENOMEM, "out of memory");
    lmc_status s = assign_groups(all, c->size, gids, &h->ngroups);
    int gsize = 0, first = -1;
    for (int r = 0; r < c->size && s == LMC_OK; r++)
        if (gids[r] == gids[c->rank]) {
            gsize++;
            first = first < 0 ? r : first;
        }
    h->gid = s == LMC_OK ? gids[c->rank] : 0;
    if (s == LMC_OK)
        label(c, h, all, gids);
    if (s == LMC_OK)
        s = lmc_hier_pieces(c, h, gids);
    free(gids);
    LMC_TRY(s);
    h->leader = first == c->rank;
    h->device = strcmp(kind, "cpu") != 0;
    h->staged = h->leader && h->device && h->ngroups > 1;
    lmc_comm *w = h->world;
    LMC_TRY(w->ops->split(w, h->gid, c->rank, &h->gmpi));
    LMC_TRY(w->ops->split(w, h->leader ? 0 : 1, c->rank, &h->cross));
    if (!h->leader || h->ngroups == 1) {
        lmc_comm_close(h->cross);
        h->cross = NULL;
    }
    if (gsize > 1)
        LMC_TRY(open_vendor(h, kind));
    if (h->group && h->group->rank != h->lidx[c->rank]) /* the pieces name group members by their rank in it */
        return lmc_err(LMC_ECOMM, "hier: rank %d is rank %d of its group's %s communicator, not %d (its rank among "
                       "the group's ranks in job order)", c->rank, h->group->rank, kind, h->lidx[c->rank]);
    return LMC_OK;
}

static lmc_status wrap(lmc_comm *world, const rank_card *all, const char *kind, lmc_comm **out)
{
    lmc_comm *c = calloc(1, sizeof *c);
    hier_impl *h = calloc(1, sizeof *h);
    if (!c || !h) {
        free(c), free(h);
        return lmc_err(LMC_ENOMEM, "out of memory opening the hierarchical communicator");
    }
    h->world = world;
    c->ops = &hier_ops;
    c->name = "hier";
    c->rank = world->rank;
    c->size = world->size;
    c->device_memory = 1;
    c->per_rank_memory = 1;
    c->impl = h;
    lmc_status s = build(c, h, all, kind);
    double bad = s != LMC_OK; /* a group that failed to start (a missing library) ends every rank alike */
    if (world->ops->allreduce_host(world, &bad, 1, 1) == LMC_OK && bad && s == LMC_OK)
        s = lmc_err(LMC_ECOMM, "starting the mixed job's groups failed on another rank (its message says why)");
    if (s != LMC_OK) {
        hi_destroy(c); /* closes world too */
        return s;
    }
    *out = c;
    return LMC_OK;
}

/* Whether the job needs groups: a chip other than the CPU, or the test's
 * groups. */
static int mixed(const rank_card *all, int n)
{
    for (int r = 0; r < n; r++)
        if (all[r].hint >= 0 || strcmp(all[r].kind, "cpu"))
            return 1;
    return 0;
}

lmc_status lmc_comm_open_job(const char *dist, const char *device, lmc_comm **out)
{
    lmc_comm *w = NULL;
    *out = NULL;
    if (dist && strcmp(dist, "auto"))
        return lmc_comm_open(dist, out);
    LMC_TRY(lmc_comm_open("auto", &w));
    if (strcmp(w->name, "mpi")) { /* one process */
        *out = w;
        return LMC_OK;
    }
    rank_card me = {0}, *all = calloc((size_t)w->size, sizeof me);
    lmc_hier_device_kind(device, me.kind, sizeof me.kind);
    if (gethostname(me.host, sizeof me.host - 1) != 0)
        snprintf(me.host, sizeof me.host, "?");
    lmc_status s = all ? test_hint(w->rank, &me.hint) : lmc_err(LMC_ENOMEM, "out of memory");
    double bad = s != LMC_OK; /* every rank takes part, so none waits for one that failed */
    if (all && w->ops->allreduce_host(w, &bad, 1, 1) == LMC_OK && bad && s == LMC_OK)
        s = lmc_err(LMC_EINVAL, "opening the job's communicator failed on another rank (its message says why)");
    if (s == LMC_OK)
        s = w->ops->allgather_host(w, &me, all, sizeof me);
    if (s == LMC_OK && mixed(all, w->size)) {
        s = wrap(w, all, me.kind, out); /* closes w if it fails */
        free(all);
        return s;
    }
    free(all);
    if (s != LMC_OK) {
        lmc_comm_close(w);
        return s;
    }
    *out = w; /* CPU ranks only: the MPI communicator, as always */
    return LMC_OK;
}
