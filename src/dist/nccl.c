/* nccl.c: the NCCL communicator: collectives on device memory, one process
 * per GPU, bootstrapped over MPI (rank 0's ncclUniqueId is broadcast).
 *
 * Ordering with the compute stream: the CUDA backend runs on a blocking
 * stream we cannot see from here. Before every collective we record an event
 * on the legacy default stream, which (CUDA's stream rules) waits for all
 * prior work in every blocking stream, and make our own stream (created
 * non-blocking, so the compute stream never waits on us) wait for it. The
 * collective thus reads the gradients the backward pass just wrote, and the
 * backward pass keeps running while it is in flight. wait() returns once the
 * collective is done on the device, so everything enqueued after it is
 * ordered after it. All collectives run on one stream: non-blocking ones
 * complete in the order they were started.
 *
 * Uneven shards: NCCL's ReduceScatter/AllGather move equal blocks. When the
 * range is the whole buffer and n is a whole number of lmc_comm_shard blocks
 * they run in place; otherwise one grouped ncclReduce (ncclBroadcast) per
 * rank's piece does the same with the same traffic, for any n and range.
 *
 * Faults: waits poll the completion event and NCCL's asynchronous error, and
 * fail with LMC_ECOMM after timeout_s (LMC_COMM_TIMEOUT=seconds overrides);
 * after a failure every later call fails at once. abort() aborts the NCCL
 * communicator and the MPI job so no rank waits forever. An error inside a
 * group still ends the group (NCCL's group state is per thread: a group left
 * open would swallow every later call).
 *
 * The device: the CUDA backend's (--device cuda:N, or the local rank's GPU
 * for plain cuda). The trainer opens the communicator first (it needs it to
 * agree on errors while setting up), so open only bootstraps (MPI, the
 * NCCL id) and the NCCL communicator is created at the first device
 * collective, on the device of the CUDA backend opened by then
 * (lmc_cuda_backend_device); with none, the local rank's GPU. A backend
 * opened later on another device is an error, not a silent cross-device copy.
 *
 * Process groups: split makes a sub-communicator with ncclCommSplit (NCCL
 * 2.18+) on the parent's device, with its own stream and requests, and an
 * MPI_Comm_split of the parent's MPI communicator for its host collectives.
 *
 * Point to point: ncclSend/ncclRecv, each on its own (not grouped), on the
 * stream in the order posted, behind the compute enqueued so far as every
 * collective is; p2p_wait is wait(). A send completes only once its peer
 * runs the matching receive, so two ranks post to each other in the same
 * order (comm.h).
 */
#define _GNU_SOURCE
#include "backend/cuda/cuda_backend.h"
#include "dist/comm.h"

#include <cuda_runtime_api.h>
#include <limits.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef LMC_HAVE_MPI
#include <mpi.h>
#endif

#define NCCL_MAX_REQ 256

typedef struct {
    cudaEvent_t start, done; /* timing events: busy_s sums done - start */
    int busy;
    const char *what;
    char desc[80]; /* a send's or receive's what: "send to rank 3 (4096 bytes)" */
} nccl_req;

typedef struct {
    ncclComm_t nc; /* NULL until the first device collective (bind) */
    ncclUniqueId id;
    int device, faulted, mpi_inited_here;
    double env_timeout;
    cudaStream_t stream;
    cudaEvent_t ready;
    nccl_req req[NCCL_MAX_REQ];
#ifdef LMC_HAVE_MPI
    MPI_Comm mcomm; /* host collectives: the world, or a split of it (own_mcomm) */
    int own_mcomm;
#endif
} nccl_impl;

static nccl_impl *impl_of(lmc_comm *c) { return (nccl_impl *)c->impl; }

static lmc_status fail(lmc_comm *c, const char *what, const char *why)
{
    impl_of(c)->faulted = 1;
    return lmc_err(LMC_ECOMM, "nccl %s (rank %d of %d): %s", what, c->rank, c->size, why);
}

#define NC_TRY(c, what, expr)                                  \
    do {                                                       \
        ncclResult_t r_ = (expr);                              \
        if (r_ != ncclSuccess)                                 \
            return fail(c, what, ncclGetErrorString(r_));      \
    } while (0)

#define CU_TRY(c, what, expr)                                  \
    do {                                                       \
        cudaError_t e_ = (expr);                               \
        if (e_ != cudaSuccess)                                 \
            return fail(c, what, cudaGetErrorString(e_));      \
    } while (0)

/* Inside ncclGroupStart/End: the first error skips the rest of the group's
 * calls, and the group is ended whatever happened. */
#define NC_GROUP(res, expr)          \
    do {                             \
        if ((res) == ncclSuccess)    \
            (res) = (expr);          \
    } while (0)

static lmc_status group_end(lmc_comm *c, const char *what, ncclResult_t res)
{
    ncclResult_t e = ncclGroupEnd();
    if (res == ncclSuccess)
        res = e;
    return res == ncclSuccess ? LMC_OK : fail(c, what, ncclGetErrorString(res));
}

static lmc_status bind(lmc_comm *c, const char *what);

/* ---------- requests ---------- */

/* A free request slot, our device current, and our stream behind all
 * compute enqueued so far; records the start event. */
static lmc_status post_begin(lmc_comm *c, const char *what, int *slot)
{
    nccl_impl *m = impl_of(c);
    if (m->faulted)
        return lmc_err(LMC_ECOMM, "nccl %s: an earlier collective failed on this rank", what);
    LMC_TRY(bind(c, what));
    int r = 0;
    while (r < NCCL_MAX_REQ && m->req[r].busy)
        r++;
    if (r == NCCL_MAX_REQ)
        return lmc_err(LMC_ECOMM, "nccl %s: %d requests are in flight; wait for some first", what, NCCL_MAX_REQ);
    CU_TRY(c, what, cudaSetDevice(m->device));
    if (c->be) /* behind the backend's work queued so far, on its own queue */
        LMC_TRY(c->be->ops->event_record(c->be, m->ready));
    else
        CU_TRY(c, what, cudaEventRecord(m->ready, cudaStreamLegacy));
    CU_TRY(c, what, cudaStreamWaitEvent(m->stream, m->ready, 0));
    CU_TRY(c, what, cudaEventRecord(m->req[r].start, m->stream));
    *slot = r;
    return LMC_OK;
}

static lmc_status post_end(lmc_comm *c, int r, const char *what, int *req)
{
    nccl_impl *m = impl_of(c);
    CU_TRY(c, what, cudaEventRecord(m->req[r].done, m->stream));
    m->req[r].busy = 1;
    m->req[r].what = what;
    *req = r;
    return LMC_OK;
}

static double timeout_of(lmc_comm *c)
{
    if (c->idle)
        return 0;
    return impl_of(c)->env_timeout > 0 ? impl_of(c)->env_timeout : c->timeout_s;
}

/* Polls politely (a spin, then sleeps growing to 200 us) so a waiting rank
 * does not take the core its host thread needs, and so the watchdog and
 * NCCL's asynchronous errors are seen. */
static lmc_status nccl_wait(lmc_comm *c, int req)
{
    nccl_impl *m = impl_of(c);
    if (req < 0 || req >= NCCL_MAX_REQ || !m->req[req].busy)
        return lmc_err(LMC_EINVAL, "nccl wait: request %d is not in flight", req);
    nccl_req *r = &m->req[req];
    r->busy = 0;
    double t0 = lmc_now(), limit = timeout_of(c);
    long nap = 2000;
    for (;;) {
        cudaError_t e = cudaEventQuery(r->done);
        if (e == cudaSuccess)
            break;
        if (e != cudaErrorNotReady)
            return fail(c, r->what, cudaGetErrorString(e));
        ncclResult_t ae = ncclSuccess;
        if (ncclCommGetAsyncError(m->nc, &ae) == ncclSuccess && ae != ncclSuccess && ae != ncclInProgress)
            return fail(c, r->what, ncclGetErrorString(ae));
        double waited = lmc_now() - t0;
        if (limit > 0 && waited > limit) {
            char why[160];
            snprintf(why, sizeof why, "not complete after %.0f s (timeout_s): a rank is stuck or gone", waited);
            return fail(c, r->what, why);
        }
        if (waited > 50e-6) {
            struct timespec ts = {0, nap};
            nanosleep(&ts, NULL);
            nap = nap * 2 < 200000L ? nap * 2 : 200000L;
        }
    }
    float ms = 0;
    if (cudaEventElapsedTime(&ms, r->start, r->done) == cudaSuccess)
        c->busy_s += ms * 1e-3;
    if (c->be) /* the backend's later work after the collective, also on the device */
        LMC_TRY(c->be->ops->event_wait(c->be, r->done));
    return LMC_OK;
}

/* ---------- the collectives ---------- */

static lmc_status nccl_allreduce_start(lmc_comm *c, float *buf, size_t n, int *req)
{
    int r = -1;
    LMC_TRY(post_begin(c, "allreduce", &r));
    if (n)
        NC_TRY(c, "allreduce", ncclAllReduce(buf, buf, n, ncclFloat, ncclSum, impl_of(c)->nc, impl_of(c)->stream));
    return post_end(c, r, "allreduce", req);
}

static lmc_status nccl_allreduce(lmc_comm *c, float *buf, size_t n)
{
    int req = -1;
    LMC_TRY(nccl_allreduce_start(c, buf, n, &req));
    return nccl_wait(c, req);
}

/* The block of lmc_comm_shard: ceil(n/size) rounded up to 16 elements. */
static size_t shard_block(size_t n, int size)
{
    size_t blk = (n + (size_t)size - 1) / (size_t)size;
    return (blk + 15) / 16 * 16;
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

static lmc_status nccl_reduce_scatter_start(lmc_comm *c, float *range, size_t n, size_t begin, size_t end, int *req)
{
    nccl_impl *m = impl_of(c);
    const char *what = "reduce_scatter";
    if (begin > end || end > n)
        return lmc_err(LMC_EINVAL, "nccl reduce_scatter: range [%zu, %zu) is not inside %zu elements", begin, end, n);
    int r = -1;
    LMC_TRY(post_begin(c, what, &r));
    size_t blk = shard_block(n, c->size);
    if (begin == 0 && end == n && blk * (size_t)c->size == n) {
        NC_TRY(c, what, ncclReduceScatter(range, range + (size_t)c->rank * blk, blk, ncclFloat, ncclSum, m->nc,
                                          m->stream));
    } else if (end > begin) {
        NC_TRY(c, what, ncclGroupStart());
        ncclResult_t g = ncclSuccess;
        for (int q = 0; q < c->size; q++) {
            size_t lo, cnt = piece(c, n, q, begin, end, &lo);
            if (cnt)
                NC_GROUP(g, ncclReduce(range + (lo - begin), range + (lo - begin), cnt, ncclFloat, ncclSum, q, m->nc,
                                       m->stream));
        }
        LMC_TRY(group_end(c, what, g));
    }
    return post_end(c, r, what, req);
}

/* Each owner broadcasts its piece of [begin, end) from its shard into
 * every rank's range buffer, all in one group. */
static lmc_status nccl_allgather_start(lmc_comm *c, const float *shard, float *range, size_t n, size_t begin,
                                       size_t end, int *req)
{
    nccl_impl *m = impl_of(c);
    const char *what = "allgather";
    if (begin > end || end > n)
        return lmc_err(LMC_EINVAL, "nccl allgather: range [%zu, %zu) is not inside %zu elements", begin, end, n);
    int r = -1;
    LMC_TRY(post_begin(c, what, &r));
    size_t mine, mine_cnt;
    lmc_comm_shard(n, c->size, c->rank, &mine, &mine_cnt);
    if (end > begin) {
        NC_TRY(c, what, ncclGroupStart());
        ncclResult_t g = ncclSuccess;
        for (int q = 0; q < c->size; q++) {
            size_t lo, cnt = piece(c, n, q, begin, end, &lo);
            const float *send = q == c->rank ? shard + (lo - mine) : range + (lo - begin);
            if (cnt)
                NC_GROUP(g, ncclBroadcast(send, range + (lo - begin), cnt, ncclFloat, q, m->nc, m->stream));
        }
        LMC_TRY(group_end(c, what, g));
    }
    return post_end(c, r, what, req);
}

static lmc_status nccl_reduce_scatter(lmc_comm *c, float *buf, size_t n)
{
    int req = -1;
    LMC_TRY(nccl_reduce_scatter_start(c, buf, n, 0, n, &req));
    return nccl_wait(c, req);
}

static lmc_status nccl_allgather(lmc_comm *c, float *buf, size_t n)
{
    nccl_impl *m = impl_of(c);
    const char *what = "allgather";
    int r = -1, req = -1;
    LMC_TRY(post_begin(c, what, &r));
    size_t blk = shard_block(n, c->size);
    if (n && blk * (size_t)c->size == n) {
        NC_TRY(c, what, ncclAllGather(buf + (size_t)c->rank * blk, buf, blk, ncclFloat, m->nc, m->stream));
    } else if (n) {
        NC_TRY(c, what, ncclGroupStart());
        ncclResult_t g = ncclSuccess;
        for (int q = 0; q < c->size; q++) {
            size_t lo, cnt = piece(c, n, q, 0, n, &lo);
            if (cnt)
                NC_GROUP(g, ncclBroadcast(buf + lo, buf + lo, cnt, ncclFloat, q, m->nc, m->stream));
        }
        LMC_TRY(group_end(c, what, g));
    }
    LMC_TRY(post_end(c, r, what, &req));
    return nccl_wait(c, req);
}

// shard (this rank's piece of n) -> root's full (n): point to point into place
static lmc_status nccl_gather(lmc_comm *c, const float *shard, float *full, size_t n, int root)
{
    nccl_impl *m = impl_of(c);
    const char *what = "gather";
    if (root < 0 || root >= c->size)
        return lmc_err(LMC_EINVAL, "nccl gather: root %d is not a rank (size %d)", root, c->size);
    int r = -1, req = -1;
    LMC_TRY(post_begin(c, what, &r));
    size_t mine_lo, mine = piece(c, n, c->rank, 0, n, &mine_lo);
    if (c->rank == root && mine && shard != full + mine_lo)
        CU_TRY(c, what, cudaMemcpyAsync(full + mine_lo, shard, mine * sizeof(float), cudaMemcpyDeviceToDevice,
                                        m->stream));
    NC_TRY(c, what, ncclGroupStart());
    ncclResult_t g = ncclSuccess;
    if (c->rank != root && mine)
        NC_GROUP(g, ncclSend(shard, mine, ncclFloat, root, m->nc, m->stream));
    for (int q = 0; c->rank == root && q < c->size; q++) {
        size_t lo, cnt = piece(c, n, q, 0, n, &lo);
        if (q != root && cnt)
            NC_GROUP(g, ncclRecv(full + lo, cnt, ncclFloat, q, m->nc, m->stream));
    }
    LMC_TRY(group_end(c, what, g));
    LMC_TRY(post_end(c, r, what, &req));
    return nccl_wait(c, req);
}

/* One group of a send and a receive per peer (the copy to itself on the
 * stream): NCCL's all-to-all pattern. */
static lmc_status nccl_alltoallv(lmc_comm *c, const float *send, const size_t *scount, float *recv,
                                 const size_t *rcount)
{
    nccl_impl *m = impl_of(c);
    const char *what = "alltoallv";
    int r = -1, req = -1;
    LMC_TRY(post_begin(c, what, &r));
    size_t so = 0, ro = 0;
    NC_TRY(c, what, ncclGroupStart());
    ncclResult_t g = ncclSuccess;
    for (int q = 0; q < c->size; so += scount[q], ro += rcount[q], q++) {
        if (q == c->rank) {
            if (scount[q] && g == ncclSuccess &&
                cudaMemcpyAsync(recv + ro, send + so, scount[q] * sizeof(float), cudaMemcpyDeviceToDevice,
                                m->stream) != cudaSuccess)
                g = ncclUnhandledCudaError;
            continue;
        }
        if (scount[q])
            NC_GROUP(g, ncclSend(send + so, scount[q], ncclFloat, q, m->nc, m->stream));
        if (rcount[q])
            NC_GROUP(g, ncclRecv(recv + ro, rcount[q], ncclFloat, q, m->nc, m->stream));
    }
    LMC_TRY(group_end(c, what, g));
    LMC_TRY(post_end(c, r, what, &req));
    return nccl_wait(c, req);
}

static lmc_status nccl_broadcast(lmc_comm *c, void *buf, size_t bytes, int root)
{
    nccl_impl *m = impl_of(c);
    if (root < 0 || root >= c->size)
        return lmc_err(LMC_EINVAL, "nccl broadcast: root %d is not a rank (size %d)", root, c->size);
    int r = -1, req = -1;
    LMC_TRY(post_begin(c, "broadcast", &r));
    if (bytes)
        NC_TRY(c, "broadcast", ncclBroadcast(buf, buf, bytes, ncclUint8, root, m->nc, m->stream));
    LMC_TRY(post_end(c, r, "broadcast", &req));
    return nccl_wait(c, req);
}

/* ---------- point to point ---------- */

static lmc_status nccl_p2p_start(lmc_comm *c, void *buf, size_t bytes, int peer, int send, int *req)
{
    nccl_impl *m = impl_of(c);
    const char *dir = send ? "send to" : "recv from";
    *req = -1;
    if (peer < 0 || peer >= c->size || peer == c->rank)
        return lmc_err(LMC_EINVAL, "nccl %s rank %d: not another rank of this communicator (this is rank %d of %d)",
                       dir, peer, c->rank, c->size);
    int r = -1;
    LMC_TRY(post_begin(c, dir, &r));
    nccl_req *q = &m->req[r];
    snprintf(q->desc, sizeof q->desc, "%s rank %d (%zu bytes)", dir, peer, bytes);
    if (bytes && send)
        NC_TRY(c, q->desc, ncclSend(buf, bytes, ncclUint8, peer, m->nc, m->stream));
    else if (bytes)
        NC_TRY(c, q->desc, ncclRecv(buf, bytes, ncclUint8, peer, m->nc, m->stream));
    return post_end(c, r, q->desc, req);
}

static lmc_status nccl_send_start(lmc_comm *c, const void *buf, size_t bytes, int peer, int *req)
{
    return nccl_p2p_start(c, (void *)buf, bytes, peer, 1, req);
}

static lmc_status nccl_recv_start(lmc_comm *c, void *buf, size_t bytes, int peer, int *req)
{
    return nccl_p2p_start(c, buf, bytes, peer, 0, req);
}

/* ---------- host-memory collectives (MPI) ---------- */

static lmc_status nccl_allreduce_host(lmc_comm *c, double *x, int n, int op_max)
{
#ifdef LMC_HAVE_MPI
    if (c->size > 1 && n > 0 &&
        MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, op_max ? MPI_MAX : MPI_SUM, impl_of(c)->mcomm) != MPI_SUCCESS)
        return fail(c, "allreduce_host", "MPI_Allreduce failed");
#endif
    return LMC_OK;
}

static lmc_status nccl_allgather_host(lmc_comm *c, const void *in, void *out, size_t bytes)
{
    if (c->size == 1) {
        memmove(out, in, bytes);
        return LMC_OK;
    }
#ifdef LMC_HAVE_MPI
    if (bytes > INT_MAX)
        return lmc_err(LMC_EINVAL, "nccl allgather_host: %zu bytes per rank is more than MPI can count", bytes);
    if (MPI_Allgather(in, (int)bytes, MPI_BYTE, out, (int)bytes, MPI_BYTE, impl_of(c)->mcomm) != MPI_SUCCESS)
        return fail(c, "allgather_host", "MPI_Allgather failed");
#endif
    return LMC_OK;
}

static lmc_status nccl_barrier(lmc_comm *c)
{
    nccl_impl *m = impl_of(c);
    if (m->nc) { /* else nothing was ever enqueued */
        CU_TRY(c, "barrier", cudaSetDevice(m->device));
        CU_TRY(c, "barrier", cudaStreamSynchronize(m->stream));
    }
#ifdef LMC_HAVE_MPI
    if (c->size > 1 && MPI_Barrier(m->mcomm) != MPI_SUCCESS)
        return fail(c, "barrier", "MPI_Barrier failed");
#endif
    return LMC_OK;
}

/* The fault path: no rank may be left waiting in a collective. */
static void nccl_abort(lmc_comm *c, const char *why)
{
    nccl_impl *m = impl_of(c);
    if (c->size == 1)
        return;
    fprintf(stderr, "lmc: rank %d of %d: aborting the job: %s\n", c->rank, c->size, why ? why : "");
    fflush(stderr);
    if (m->nc)
        ncclCommAbort(m->nc);
    m->nc = NULL;
#ifdef LMC_HAVE_MPI
    MPI_Abort(MPI_COMM_WORLD, 1);
#endif
    abort();
}

/* ---------- open and close ---------- */

static void release(nccl_impl *m)
{
    if (!m)
        return;
    if (m->stream)
        cudaSetDevice(m->device);
    if (m->stream)
        cudaStreamSynchronize(m->stream);
    if (m->nc)
        ncclCommDestroy(m->nc);
    for (int r = 0; r < NCCL_MAX_REQ; r++) {
        if (m->req[r].start)
            cudaEventDestroy(m->req[r].start);
        if (m->req[r].done)
            cudaEventDestroy(m->req[r].done);
    }
    if (m->ready)
        cudaEventDestroy(m->ready);
    if (m->stream)
        cudaStreamDestroy(m->stream);
#ifdef LMC_HAVE_MPI
    if (m->own_mcomm)
        MPI_Comm_free(&m->mcomm);
    int fin = 0;
    if (m->mpi_inited_here && MPI_Finalized(&fin) == MPI_SUCCESS && !fin)
        MPI_Finalize();
#endif
    free(m);
}

static void nccl_destroy(lmc_comm *c)
{
    release(impl_of(c));
    free(c);
}

static lmc_status nccl_split(lmc_comm *c, int color, int key, lmc_comm **out);

static const lmc_comm_ops nccl_ops = {
    .allreduce = nccl_allreduce,
    .allreduce_start = nccl_allreduce_start,
    .reduce_scatter_start = nccl_reduce_scatter_start,
    .allgather_start = nccl_allgather_start,
    .wait = nccl_wait,
    .reduce_scatter = nccl_reduce_scatter,
    .allgather = nccl_allgather,
    .gather = nccl_gather,
    .broadcast = nccl_broadcast,
    .allreduce_host = nccl_allreduce_host,
    .allgather_host = nccl_allgather_host,
    .barrier = nccl_barrier,
    .send_start = nccl_send_start,
    .recv_start = nccl_recv_start,
    .p2p_wait = nccl_wait,
    .split = nccl_split,
    .alltoallv = nccl_alltoallv,
    .abort = nccl_abort,
    .destroy = nccl_destroy,
};

static int env_int(const char *const *names, int n, int dflt)
{
    for (int i = 0; i < n; i++) {
        const char *v = getenv(names[i]);
        if (v && *v)
            return atoi(v);
    }
    return dflt;
}

static int local_rank(void)
{
    static const char *const v[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID", "LOCAL_RANK"};
    return env_int(v, 4, 0);
}

/* Rank, size and the shared ncclUniqueId: over MPI, or a world of one. */
static lmc_status bootstrap(nccl_impl *m, int *rank, int *size, ncclUniqueId *id)
{
    *rank = 0;
    *size = 1;
#ifdef LMC_HAVE_MPI
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        /* MULTIPLE, as the MPI communicator asks, so either may come first */
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
            return lmc_err(LMC_ECOMM, "nccl: MPI_Init_thread failed");
        m->mpi_inited_here = 1;
    }
    MPI_Comm_rank(m->mcomm, rank);
    MPI_Comm_size(m->mcomm, size);
    ncclResult_t r = ncclSuccess;
    if (*rank == 0)
        r = ncclGetUniqueId(id);
    /* every rank takes part in the broadcast even if rank 0 failed, so none hangs */
    int ok = r == ncclSuccess;
    if (MPI_Bcast(&ok, 1, MPI_INT, 0, m->mcomm) != MPI_SUCCESS ||
        MPI_Bcast(id, (int)sizeof *id, MPI_BYTE, 0, m->mcomm) != MPI_SUCCESS)
        return lmc_err(LMC_ECOMM, "nccl: broadcasting the NCCL id over MPI failed");
    if (!ok)
        return lmc_err(LMC_ECOMM, "nccl: ncclGetUniqueId failed on rank 0%s%s", *rank == 0 ? ": " : "",
                       *rank == 0 ? ncclGetErrorString(r) : "");
#else
    (void)m;
    static const char *const v[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS", "WORLD_SIZE"};
    int world = env_int(v, 4, 1);
    if (world > 1)
        return lmc_err(LMC_EUNSUPPORTED,
                       "--dist nccl: %d processes were launched but this lmc was built without MPI, which the "
                       "NCCL communicator needs to start (install an MPI with mpicc and rebuild)", world);
    ncclResult_t r = ncclGetUniqueId(id);
    if (r != ncclSuccess)
        return lmc_err(LMC_ECOMM, "nccl: ncclGetUniqueId: %s", ncclGetErrorString(r));
#endif
    return LMC_OK;
}

/* Stream and events on m->device. */
static lmc_status open_stream(nccl_impl *m, int rank)
{
    cudaError_t e = cudaSetDevice(m->device);
    if (e == cudaSuccess)
        e = cudaStreamCreateWithFlags(&m->stream, cudaStreamNonBlocking);
    if (e == cudaSuccess)
        e = cudaEventCreateWithFlags(&m->ready, cudaEventDisableTiming);
    for (int r = 0; r < NCCL_MAX_REQ && e == cudaSuccess; r++) {
        e = cudaEventCreate(&m->req[r].start);
        if (e == cudaSuccess)
            e = cudaEventCreate(&m->req[r].done);
    }
    if (e != cudaSuccess)
        return lmc_err(LMC_ECOMM, "nccl: rank %d on cuda:%d: %s", rank, m->device, cudaGetErrorString(e));
    return LMC_OK;
}

/* Device, stream and events of this rank: the CUDA backend's device. */
static lmc_status open_device(nccl_impl *m, int rank)
{
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0)
        return lmc_err(LMC_EUNSUPPORTED, "--dist nccl: rank %d sees no CUDA device", rank);
    int be = lmc_cuda_backend_device();
    m->device = be >= 0 ? be : local_rank() % ndev;
    return open_stream(m, rank);
}

/* The NCCL communicator, created at the first device collective (every rank
 * reaches it in the same collective) on the CUDA backend's device. */
static lmc_status bind(lmc_comm *c, const char *what)
{
    nccl_impl *m = impl_of(c);
    if (!m->nc) {
        lmc_status s = open_device(m, c->rank);
        if (s != LMC_OK) {
            m->faulted = 1;
            return s;
        }
        ncclResult_t r = ncclCommInitRank(&m->nc, c->size, m->id, c->rank);
        if (r != ncclSuccess) {
            m->nc = NULL;
            m->faulted = 1;
            return lmc_err(LMC_ECOMM, "nccl: rank %d of %d on cuda:%d: ncclCommInitRank: %s", c->rank, c->size,
                           m->device, ncclGetErrorString(r));
        }
    }
    int be = lmc_cuda_backend_device();
    if (be >= 0 && be != m->device) {
        char why[200];
        snprintf(why, sizeof why, "the CUDA backend is on cuda:%d but this rank's NCCL communicator was created on "
                 "cuda:%d (open the backend before the first collective)", be, m->device);
        return fail(c, what, why);
    }
    return LMC_OK;
}

/* ---------- process groups ---------- */

static lmc_comm *wrap(lmc_comm *c, nccl_impl *m)
{
    c->ops = &nccl_ops;
    c->name = "nccl";
    c->device_memory = 1;
    c->impl = m;
    return c;
}

#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 18, 0)
/* The collective part of split, on every rank of c in the same order: the
 * MPI group for host collectives, then the NCCL one on c's device. */
static lmc_status split_comms(lmc_comm *c, int color, int key, nccl_impl *k)
{
    nccl_impl *m = impl_of(c);
#ifdef LMC_HAVE_MPI
    if (MPI_Comm_split(m->mcomm, color, key, &k->mcomm) != MPI_SUCCESS)
        return fail(c, "split", "MPI_Comm_split failed");
    k->own_mcomm = 1;
#endif
    CU_TRY(c, "split", cudaSetDevice(m->device));
    NC_TRY(c, "split", ncclCommSplit(m->nc, color, key, &k->nc, NULL));
    return LMC_OK;
}
#endif

/* Every rank calls it: ranks of the same color form a new communicator on
 * this rank's device, ranked by key. */
static lmc_status nccl_split(lmc_comm *c, int color, int key, lmc_comm **out)
{
    *out = NULL;
    if (color < 0)
        return lmc_err(LMC_EINVAL, "nccl split: color %d must be >= 0 (every rank joins a group)", color);
#if NCCL_VERSION_CODE < NCCL_VERSION(2, 18, 0)
    return lmc_err(LMC_EUNSUPPORTED, "nccl split: process groups (--tp) need NCCL 2.18 or newer (ncclCommSplit); "
                   "this lmc was built with NCCL %d.%d", NCCL_MAJOR, NCCL_MINOR);
#else
    nccl_impl *m = impl_of(c);
    if (m->faulted)
        return lmc_err(LMC_ECOMM, "nccl split: an earlier collective failed on this rank");
    LMC_TRY(bind(c, "split")); /* the parent's NCCL communicator, made now if no collective made it yet */
    lmc_comm *sub = calloc(1, sizeof *sub);
    nccl_impl *k = calloc(1, sizeof *k);
    lmc_status s = sub && k ? LMC_OK : lmc_err(LMC_ENOMEM, "out of memory splitting the NCCL communicator");
    if (s == LMC_OK) {
        k->device = m->device;
        k->env_timeout = m->env_timeout;
        s = split_comms(c, color, key, k);
    }
    if (s == LMC_OK)
        s = open_stream(k, c->rank);
    if (s == LMC_OK && (ncclCommUserRank(k->nc, &sub->rank) != ncclSuccess ||
                        ncclCommCount(k->nc, &sub->size) != ncclSuccess))
        s = lmc_err(LMC_ECOMM, "nccl split: the new communicator's rank and size are unknown");
    if (s != LMC_OK) {
        release(k);
        free(sub);
        return s;
    }
    *out = wrap(sub, k);
    return LMC_OK;
#endif
}

/* mpi_comm: the MPI_Comm * of the ranks that form this communicator (NULL:
 * the world), which must outlive it. */
static lmc_status open_on(void *mpi_comm, lmc_comm **out)
{
    *out = NULL;
    lmc_comm *c = calloc(1, sizeof *c);
    nccl_impl *m = calloc(1, sizeof *m);
    if (!c || !m) {
        free(c);
        free(m);
        return lmc_err(LMC_ENOMEM, "out of memory opening the NCCL communicator");
    }
    const char *t = getenv("LMC_COMM_TIMEOUT");
    m->env_timeout = t ? atof(t) : 0;
#ifdef LMC_HAVE_MPI
    m->mcomm = mpi_comm ? *(MPI_Comm *)mpi_comm : MPI_COMM_WORLD;
#endif
    int rank = 0, size = 1, ndev = 0;
    lmc_status s = bootstrap(m, &rank, &size, &m->id);
    if (s == LMC_OK && (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0))
        s = lmc_err(LMC_EUNSUPPORTED, "--dist nccl: rank %d sees no CUDA device", rank);
    if (s != LMC_OK) {
        release(m);
        free(c);
        return s;
    }
    c->rank = rank;
    c->size = size;
    wrap(c, m);
    *out = c;
    return LMC_OK;
}

lmc_status lmc_comm_nccl(lmc_comm **out) { return open_on(NULL, out); }

/* A mixed job's group of CUDA ranks (hier.c): NCCL over the ranks of
 * *mpi_comm (an MPI_Comm * that outlives the communicator). */
lmc_status lmc_comm_nccl_group(void *mpi_comm, lmc_comm **out) { return open_on(mpi_comm, out); }
