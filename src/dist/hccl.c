/* hccl.c: the HCCL communicator (--dist hccl): collectives on Ascend device
 * memory, one process per NPU, bootstrapped over MPI (rank 0's
 * HcclGetRootInfo is broadcast, every rank calls HcclCommInitRootInfo).
 * Built into liblmc_npu.so; libhccl.so is opened with dlopen beside the
 * other CANN libraries (acl_load.c).
 *
 * Ordering: collectives run on the communicator's own stream. Before each,
 * the backend records an event on its stream (the backend's event_record
 * op) and our stream waits for it, so the collective reads what backward
 * just wrote while backward keeps running; wait() returns once the
 * collective's done event completed, so work queued after it follows it.
 * Non-blocking collectives complete in the order started (one stream).
 *
 * Shards (lmc_comm_shard's blocks, uneven in general) move as one
 * HcclReduce (HcclBroadcast) per rank's piece of the range, which is right
 * for any n and range with the same traffic as a reduce-scatter
 * (all-gather). HCCL's own HcclReduceScatter/HcclAllGather move equal
 * blocks into separate buffers; using them in place for the even case is a
 * speed-up to measure on hardware.
 *
 * The device and stream are the NPU backend's, which must be open before
 * the first device collective (the trainer opens it before step 1); the
 * HCCL communicator is created then, at the first device collective.
 *
 * Host collectives (loss, timings) go over MPI. Before one, our stream is
 * drained: a rank blocked in MPI must not hold device collectives its
 * peers are waiting for. Process groups (split: --tp, --pp) are not
 * implemented: an error says so.
 */
#define _GNU_SOURCE
#include "backend/ascend/npu.h"
#include "dist/comm.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef LMC_HAVE_MPI
#include <mpi.h>
#endif

#define HC_MAX_REQ 256

lmc_backend *lmc_npu_last_backend(void); /* npu.c */

typedef struct {
    const npu_api *acl;
    const npu_hccl_api *h;
    hccl_comm comm; /* NULL until the first device collective */
    hccl_root_info root;
    lmc_backend *be;
    acl_stream stream;
    acl_event ready, done[HC_MAX_REQ];
    int busy[HC_MAX_REQ];
    const char *what[HC_MAX_REQ];
    double t0[HC_MAX_REQ];
    int faulted, mpi_inited_here, next;
    int unordered; /* tests only (LMC_TEST_HCCL_UNORDERED): skip the ordering after the backend */
#ifdef LMC_HAVE_MPI
    MPI_Comm mc; /* bootstrap and host collectives: the world, or a mixed job's group (hier.c) */
#endif
} hccl_impl;

static hccl_impl *impl_of(lmc_comm *c) { return c->impl; }

static lmc_status fail(lmc_comm *c, const char *what, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static lmc_status fail(lmc_comm *c, const char *what, const char *fmt, ...)
{
    char why[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    impl_of(c)->faulted = 1;
    return lmc_err(LMC_ECOMM, "hccl %s (rank %d of %d): %s", what, c->rank, c->size, why);
}

#define HC_TRY(c, what, expr)                                                                                   \
    do {                                                                                                        \
        hccl_result r_ = (expr);                                                                                \
        if (r_ != NPU_HCCL_SUCCESS)                                                                             \
            return fail(c, what, "HCCL error %ld", (long)r_);                                                   \
    } while (0)

#define ACL_TRY(c, what, expr)                                                                                  \
    do {                                                                                                        \
        acl_error e_ = (expr);                                                                                  \
        if (e_ != NPU_ACL_SUCCESS)                                                                              \
            return fail(c, what, "AscendCL error %ld", (long)e_);                                               \
    } while (0)

/* ---------- binding to the NPU backend ---------- */

static lmc_status bind(lmc_comm *c, const char *what)
{
    hccl_impl *m = impl_of(c);
    lmc_backend *be = lmc_npu_last_backend();
    if (m->comm) {
        if (be != m->be)
            return fail(c, what, "the NPU backend changed after the communicator was made on it");
        return LMC_OK;
    }
    if (!be)
        return fail(c, what, "no NPU backend is open: --dist hccl needs --device npu (opened before the first "
                    "collective)");
    m->be = be;
    ACL_TRY(c, what, m->acl->aclrtCreateStream(&m->stream));
    ACL_TRY(c, what, m->acl->aclrtCreateEvent(&m->ready));
    for (int r = 0; r < HC_MAX_REQ; r++)
        ACL_TRY(c, what, m->acl->aclrtCreateEvent(&m->done[r]));
    hccl_result r = m->h->HcclCommInitRootInfo((uint32_t)c->size, &m->root, (uint32_t)c->rank, &m->comm);
    if (r != NPU_HCCL_SUCCESS) {
        m->comm = NULL;
        return fail(c, "HcclCommInitRootInfo", "HCCL error %ld", (long)r);
    }
    return LMC_OK;
}

/* ---------- requests ---------- */

/* A free slot, and our stream behind all work the backend queued so far. */
static lmc_status post_begin(lmc_comm *c, const char *what, int *slot)
{
    hccl_impl *m = impl_of(c);
    if (m->faulted)
        return lmc_err(LMC_ECOMM, "hccl %s: an earlier collective failed on this rank", what);
    LMC_TRY(bind(c, what));
    int r = m->next, k = 0;
    while (k < HC_MAX_REQ && m->busy[r])
        r = (r + 1) % HC_MAX_REQ, k++;
    if (k == HC_MAX_REQ)
        return lmc_err(LMC_ECOMM, "hccl %s: %d requests are in flight; wait for some first", what, HC_MAX_REQ);
    m->next = (r + 1) % HC_MAX_REQ;
    lmc_status s = m->unordered ? LMC_OK : m->be->ops->event_record(m->be, m->ready);
    if (s != LMC_OK)
        return fail(c, what, "recording the backend's event failed: %s", lmc_errmsg());
    if (!m->unordered)
        ACL_TRY(c, what, m->acl->aclrtStreamWaitEvent(m->stream, m->ready));
    m->t0[r] = lmc_now();
    *slot = r;
    return LMC_OK;
}

static lmc_status post_end(lmc_comm *c, int r, const char *what, int *req)
{
    hccl_impl *m = impl_of(c);
    ACL_TRY(c, what, m->acl->aclrtRecordEvent(m->done[r], m->stream));
    m->busy[r] = 1;
    m->what[r] = what;
    *req = r;
    return LMC_OK;
}

/* Blocks until the collective completed on the device. busy_s counts the
 * host's wait from the post (the device's own time is not read here). */
static lmc_status hc_wait(lmc_comm *c, int req)
{
    hccl_impl *m = impl_of(c);
    if (req < 0 || req >= HC_MAX_REQ || !m->busy[req])
        return lmc_err(LMC_EINVAL, "hccl wait: request %d is not in flight", req);
    m->busy[req] = 0;
    acl_error e = m->acl->aclrtSynchronizeEvent(m->done[req]);
    if (e != NPU_ACL_SUCCESS)
        return fail(c, m->what[req], "the collective failed on the device: AscendCL error %ld", (long)e);
    c->busy_s += lmc_now() - m->t0[req];
    return LMC_OK;
}

static lmc_status run_blocking(lmc_comm *c, int r, const char *what)
{
    int req = -1;
    LMC_TRY(post_end(c, r, what, &req));
    return hc_wait(c, req);
}

/* ---------- the collectives ---------- */

static lmc_status hc_allreduce_start(lmc_comm *c, float *buf, size_t n, int *req)
{
    hccl_impl *m;
    int r = -1;
    LMC_TRY(post_begin(c, "allreduce", &r));
    m = impl_of(c);
    if (n)
        HC_TRY(c, "allreduce", m->h->HcclAllReduce(buf, buf, n, NPU_HCCL_FP32, NPU_HCCL_SUM, m->comm, m->stream));
    return post_end(c, r, "allreduce", req);
}

static lmc_status hc_allreduce(lmc_comm *c, float *buf, size_t n)
{
    int req = -1;
    LMC_TRY(hc_allreduce_start(c, buf, n, &req));
    return hc_wait(c, req);
}

/* Rank q's shard of n clipped to [begin, end): *lo, and the count. */
static size_t piece(lmc_comm *c, size_t n, int q, size_t begin, size_t end, size_t *lo)
{
    size_t b, k;
    lmc_comm_shard(n, c->size, q, &b, &k);
    size_t l = b > begin ? b : begin, h = b + k < end ? b + k : end;
    *lo = l;
    return h > l ? h - l : 0;
}

static lmc_status check_range(size_t n, size_t begin, size_t end, const char *what)
{
    if (begin > end || end > n)
        return lmc_err(LMC_EINVAL, "hccl %s: range [%zu, %zu) is not inside %zu elements", what, begin, end, n);
    return LMC_OK;
}

static lmc_status hc_reduce_scatter_start(lmc_comm *c, float *range, size_t n, size_t begin, size_t end, int *req)
{
    const char *what = "reduce_scatter";
    int r = -1;
    LMC_TRY(check_range(n, begin, end, what));
    LMC_TRY(post_begin(c, what, &r));
    hccl_impl *m = impl_of(c);
    for (int q = 0; q < c->size; q++) {
        size_t lo, cnt = piece(c, n, q, begin, end, &lo);
        float *p = range + (lo - begin);
        if (cnt)
            HC_TRY(c, what, m->h->HcclReduce(p, p, cnt, NPU_HCCL_FP32, NPU_HCCL_SUM, (uint32_t)q, m->comm, m->stream));
    }
    return post_end(c, r, what, req);
}

/* Each owner broadcasts its piece of [begin, end) from its shard into
 * every rank's range. */
static lmc_status hc_allgather_start(lmc_comm *c, const float *shard, float *range, size_t n, size_t begin,
                                     size_t end, int *req)
{
    const char *what = "allgather";
    int r = -1;
    LMC_TRY(check_range(n, begin, end, what));
    LMC_TRY(post_begin(c, what, &r));
    hccl_impl *m = impl_of(c);
    size_t mine, mine_cnt;
    lmc_comm_shard(n, c->size, c->rank, &mine, &mine_cnt);
    for (int q = 0; q < c->size; q++) {
        size_t lo, cnt = piece(c, n, q, begin, end, &lo);
        float *dst = range + (lo - begin);
        if (!cnt)
            continue;
        if (q == c->rank && dst != shard + (lo - mine))
            ACL_TRY(c, what, m->acl->aclrtMemcpyAsync(dst, cnt * sizeof(float), shard + (lo - mine),
                                                      cnt * sizeof(float), NPU_MEMCPY_D2D, m->stream));
        HC_TRY(c, what, m->h->HcclBroadcast(dst, cnt, NPU_HCCL_FP32, (uint32_t)q, m->comm, m->stream));
    }
    return post_end(c, r, what, req);
}

static lmc_status hc_reduce_scatter(lmc_comm *c, float *buf, size_t n)
{
    int req = -1;
    LMC_TRY(hc_reduce_scatter_start(c, buf, n, 0, n, &req));
    return hc_wait(c, req);
}

/* shard (this rank's piece of n) -> root's full (n): point to point */
static lmc_status hc_gather(lmc_comm *c, const float *shard, float *full, size_t n, int root)
{
    const char *what = "gather";
    if (root < 0 || root >= c->size)
        return lmc_err(LMC_EINVAL, "hccl gather: root %d is not a rank (size %d)", root, c->size);
    int r = -1;
    LMC_TRY(post_begin(c, what, &r));
    hccl_impl *m = impl_of(c);
    size_t mine_lo, mine = piece(c, n, c->rank, 0, n, &mine_lo);
    if (c->rank != root && mine)
        HC_TRY(c, what, m->h->HcclSend((void *)shard, mine, NPU_HCCL_FP32, (uint32_t)root, m->comm, m->stream));
    for (int q = 0; c->rank == root && q < c->size; q++) {
        size_t lo, cnt = piece(c, n, q, 0, n, &lo);
        if (q == root && cnt && shard != full + lo)
            ACL_TRY(c, what, m->acl->aclrtMemcpyAsync(full + lo, cnt * sizeof(float), shard, cnt * sizeof(float),
                                                      NPU_MEMCPY_D2D, m->stream));
        else if (q != root && cnt)
            HC_TRY(c, what, m->h->HcclRecv(full + lo, cnt, NPU_HCCL_FP32, (uint32_t)q, m->comm, m->stream));
    }
    return run_blocking(c, r, what);
}

static lmc_status hc_broadcast(lmc_comm *c, void *buf, size_t bytes, int root)
{
    if (root < 0 || root >= c->size)
        return lmc_err(LMC_EINVAL, "hccl broadcast: root %d is not a rank (size %d)", root, c->size);
    int r = -1;
    LMC_TRY(post_begin(c, "broadcast", &r));
    hccl_impl *m = impl_of(c);
    if (bytes)
        HC_TRY(c, "broadcast", m->h->HcclBroadcast(buf, bytes, NPU_HCCL_UINT8, (uint32_t)root, m->comm, m->stream));
    return run_blocking(c, r, "broadcast");
}

/* ---------- point to point ---------- */

static lmc_status hc_p2p(lmc_comm *c, void *buf, size_t bytes, int peer, int send, int *req)
{
    const char *what = send ? "send" : "recv";
    *req = -1;
    if (peer < 0 || peer >= c->size || peer == c->rank)
        return lmc_err(LMC_EINVAL, "hccl %s rank %d: not another rank of this communicator (this is rank %d of %d)",
                       what, peer, c->rank, c->size);
    int r = -1;
    LMC_TRY(post_begin(c, what, &r));
    hccl_impl *m = impl_of(c);
    if (bytes && send)
        HC_TRY(c, what, m->h->HcclSend(buf, bytes, NPU_HCCL_UINT8, (uint32_t)peer, m->comm, m->stream));
    else if (bytes)
        HC_TRY(c, what, m->h->HcclRecv(buf, bytes, NPU_HCCL_UINT8, (uint32_t)peer, m->comm, m->stream));
    return post_end(c, r, what, req);
}

static lmc_status hc_send_start(lmc_comm *c, const void *buf, size_t bytes, int peer, int *req)
{
    return hc_p2p(c, (void *)buf, bytes, peer, 1, req);
}

static lmc_status hc_recv_start(lmc_comm *c, void *buf, size_t bytes, int peer, int *req)
{
    return hc_p2p(c, buf, bytes, peer, 0, req);
}

/* ---------- host-memory collectives (MPI) ---------- */

/* Our queued device collectives first (see the top of the file). */
static lmc_status drain(lmc_comm *c, const char *what)
{
    hccl_impl *m = impl_of(c);
    if (m->stream)
        ACL_TRY(c, what, m->acl->aclrtSynchronizeStream(m->stream));
    return LMC_OK;
}

static lmc_status hc_allreduce_host(lmc_comm *c, double *x, int n, int op_max)
{
    LMC_TRY(drain(c, "allreduce_host"));
#ifdef LMC_HAVE_MPI
    if (c->size > 1 && n > 0 &&
        MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, op_max ? MPI_MAX : MPI_SUM, impl_of(c)->mc) != MPI_SUCCESS)
        return fail(c, "allreduce_host", "MPI_Allreduce failed");
#endif
    return LMC_OK;
}

static lmc_status hc_allgather_host(lmc_comm *c, const void *in, void *out, size_t bytes)
{
    LMC_TRY(drain(c, "allgather_host"));
    if (c->size == 1) {
        memmove(out, in, bytes);
        return LMC_OK;
    }
#ifdef LMC_HAVE_MPI
    if (bytes > INT_MAX)
        return lmc_err(LMC_EINVAL, "hccl allgather_host: %zu bytes per rank is more than MPI can count", bytes);
    if (MPI_Allgather(in, (int)bytes, MPI_BYTE, out, (int)bytes, MPI_BYTE, impl_of(c)->mc) != MPI_SUCCESS)
        return fail(c, "allgather_host", "MPI_Allgather failed");
#endif
    return LMC_OK;
}

static lmc_status hc_barrier(lmc_comm *c)
{
    LMC_TRY(drain(c, "barrier"));
#ifdef LMC_HAVE_MPI
    if (c->size > 1 && MPI_Barrier(impl_of(c)->mc) != MPI_SUCCESS)
        return fail(c, "barrier", "MPI_Barrier failed");
#endif
    return LMC_OK;
}

static lmc_status hc_split(lmc_comm *c, int color, int key, lmc_comm **out)
{
    *out = NULL;
    return lmc_err(LMC_EUNSUPPORTED, "--dist hccl: process groups (--tp, --pp) are not implemented yet; data "
                   "parallelism (with --zero) is");
}

static void hc_abort(lmc_comm *c, const char *why)
{
    if (c->size == 1)
        return;
    fprintf(stderr, "lmc: rank %d of %d: aborting the job: %s\n", c->rank, c->size, why ? why : "");
    fflush(stderr);
#ifdef LMC_HAVE_MPI
    MPI_Abort(MPI_COMM_WORLD, 1);
#endif
    abort();
}

/* ---------- open and close ---------- */

static void release(hccl_impl *m)
{
    if (!m)
        return;
    if (m->stream)
        m->acl->aclrtSynchronizeStream(m->stream);
    if (m->comm)
        m->h->HcclCommDestroy(m->comm);
    for (int r = 0; r < HC_MAX_REQ; r++)
        if (m->done[r])
            m->acl->aclrtDestroyEvent(m->done[r]);
    if (m->ready)
        m->acl->aclrtDestroyEvent(m->ready);
    if (m->stream)
        m->acl->aclrtDestroyStream(m->stream);
#ifdef LMC_HAVE_MPI
    int fin = 0;
    if (m->mpi_inited_here && MPI_Finalized(&fin) == MPI_SUCCESS && !fin)
        MPI_Finalize();
#endif
    free(m);
}

static void hc_destroy(lmc_comm *c)
{
    release(impl_of(c));
    free(c);
}

static const lmc_comm_ops hccl_ops = {
    .allreduce = hc_allreduce,
    .allreduce_start = hc_allreduce_start,
    .reduce_scatter_start = hc_reduce_scatter_start,
    .allgather_start = hc_allgather_start,
    .wait = hc_wait,
    .reduce_scatter = hc_reduce_scatter,
    .allgather = lmc_comm_allgather_whole,
    .gather = hc_gather,
    .broadcast = hc_broadcast,
    .allreduce_host = hc_allreduce_host,
    .allgather_host = hc_allgather_host,
    .barrier = hc_barrier,
    .send_start = hc_send_start,
    .recv_start = hc_recv_start,
    .p2p_wait = hc_wait,
    .split = hc_split,
    .abort = hc_abort,
    .destroy = hc_destroy,
};

/* Rank, size and the root info: rank 0's, broadcast over MPI. */
static lmc_status bootstrap(hccl_impl *m, int *rank, int *size)
{
    *rank = 0;
    *size = 1;
#ifdef LMC_HAVE_MPI
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
            return lmc_err(LMC_ECOMM, "hccl: MPI_Init_thread failed");
        m->mpi_inited_here = 1;
    }
    MPI_Comm_rank(m->mc, rank);
    MPI_Comm_size(m->mc, size);
#else
    const char *w = getenv("OMPI_COMM_WORLD_SIZE");
    if (w && atoi(w) > 1)
        return lmc_err(LMC_EUNSUPPORTED, "--dist hccl: %d processes were launched but this lmc was built without "
                       "MPI, which the HCCL communicator needs to start (install an MPI with mpicc and rebuild)",
                       atoi(w));
#endif
    hccl_result r = NPU_HCCL_SUCCESS;
    if (*rank == 0)
        r = m->h->HcclGetRootInfo(&m->root);
    int ok = r == NPU_HCCL_SUCCESS;
#ifdef LMC_HAVE_MPI
    /* every rank takes part even if rank 0 failed, so none hangs */
    if (MPI_Bcast(&ok, 1, MPI_INT, 0, m->mc) != MPI_SUCCESS ||
        MPI_Bcast(&m->root, (int)sizeof m->root, MPI_BYTE, 0, m->mc) != MPI_SUCCESS)
        return lmc_err(LMC_ECOMM, "hccl: broadcasting the HCCL root info over MPI failed");
#endif
    if (!ok)
        return lmc_err(LMC_ECOMM, "hccl: HcclGetRootInfo failed on rank 0 (HCCL error %d: %s)", (int)r,
                       *rank == 0 && m->h->HcclGetErrorString ? m->h->HcclGetErrorString(r) : "see rank 0");
    return LMC_OK;
}

/* mpi_comm: the MPI_Comm * of the ranks that form this communicator (NULL:
 * the world), which must outlive it. */
static lmc_status open_on(void *mpi_comm, lmc_comm **out)
{
    *out = NULL;
    lmc_comm *c = calloc(1, sizeof *c);
    hccl_impl *m = calloc(1, sizeof *m);
    if (!c || !m) {
        free(c);
        free(m);
        return lmc_err(LMC_ENOMEM, "out of memory opening the HCCL communicator");
    }
    lmc_status s = npu_api_load(&m->acl);
    if (s == LMC_OK)
        s = npu_hccl_load(&m->h);
    int rank = 0, size = 1;
#ifdef LMC_HAVE_MPI
    m->mc = mpi_comm ? *(MPI_Comm *)mpi_comm : MPI_COMM_WORLD;
#endif
    if (s == LMC_OK)
        s = bootstrap(m, &rank, &size);
    if (s != LMC_OK) {
        release(m);
        free(c);
        return lmc_err_wrap(s, "--dist hccl");
    }
    m->unordered = getenv("LMC_TEST_HCCL_UNORDERED") != NULL; /* proves the mock catches a missing order */
    c->ops = &hccl_ops;
    c->name = "hccl";
    c->rank = rank;
    c->size = size;
    c->device_memory = 1;
    c->impl = m;
    *out = c;
    return LMC_OK;
}

lmc_status lmc_comm_hccl(lmc_comm **out) { return open_on(NULL, out); }

/* A mixed job's group of NPU ranks (hier.c): HCCL over the ranks of
 * *mpi_comm (an MPI_Comm * that outlives the communicator). */
lmc_status lmc_comm_hccl_group(void *mpi_comm, lmc_comm **out) { return open_on(mpi_comm, out); }
