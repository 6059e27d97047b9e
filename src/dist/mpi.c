/* mpi.c: the MPI communicator (Open MPI, MPICH): host memory, sums.
 *
 * Overlap. Open MPI moves a non-blocking collective only while some thread
 * is inside an MPI call, so a collective started from the backward pass
 * would sit still until the trainer waits for it. Instead, every collective
 * is queued to one communication thread that runs them in order, each a
 * non-blocking MPI call that the thread itself drives to completion (see
 * complete() for why it polls politely): *_start returns at once and wait()
 * sleeps on a condition variable. One thread making every MPI call, in
 * queue order, keeps the collective order identical on all ranks and needs
 * only MPI_THREAD_SERIALIZED; we ask for MULTIPLE so that abort() may be
 * called from the trainer's thread while the communication thread is in a
 * collective. Without SERIALIZED support the collectives run on the
 * caller's thread (correct, no overlap). A blocking collective with
 * nothing queued ahead of it also runs on the caller's thread, with MPI's
 * blocking call (run_now), the idle thread watching its deadline.
 *
 * Faults. MPI_ERRORS_RETURN turns MPI errors into lmc_err(LMC_ECOMM) with
 * MPI's error string; after one, every later collective fails at once. A
 * wait longer than timeout_s (the watchdog; LMC_COMM_TIMEOUT=seconds
 * overrides it) fails the same way. abort() prints why and calls MPI_Abort
 * so that no other rank waits forever. When mpirun itself ends the job (a
 * rank died: Open MPI's default) it sends SIGTERM; we print one line that
 * says so before dying of it.
 *
 * Point to point (pipeline stages) does not queue behind the collectives:
 * mpi_p2p.c.
 */
#define _GNU_SOURCE
#include "dist/mpi_internal.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Float reductions move at most this many elements per MPI call. Open MPI's
 * reductions of tens of MB stream temporary buffers far larger than the
 * caches: on the development machine (2 ranks, shared memory) one 56 MB
 * allreduce took 320-750 ms and a 16 MB reduce_scatter 370 ms, while the same
 * bytes in 4 MB pieces took 40-50 ms and 33 ms (0.5M-2M floats all did). */
#define FLOAT_CHUNK ((size_t)1 << 20)

static const char *const op_names[] = {"allreduce", "reduce_scatter", "allgather", "allgather", "gather",
                                       "broadcast", "allreduce_host", "allgather_host", "barrier", "split",
                                       "alltoallv"};

static mpi_impl *impl_of(lmc_comm *c) { return c->impl; }

/* ---------- running one request ---------- */

static lmc_status req_fail(lmc_comm *c, mpi_req *r, int rc, const char *call)
{
    char s[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, s, &len);
    snprintf(r->err, sizeof r->err, "%s (%s) failed: %s", call, op_names[r->op], s);
    return LMC_ECOMM;
}

static lmc_status req_limit(lmc_comm *c, mpi_req *r, size_t count)
{
    snprintf(r->err, sizeof r->err, "%s of %zu elements per rank is more than MPI can count (%d); use more ranks",
             op_names[r->op], count, INT_MAX);
    return LMC_EUNSUPPORTED;
}

/* counts/displs: rank q's part of [begin, end) of an n-element buffer sharded
 * by lmc_comm_shard, relative to begin. */
static lmc_status shard_counts(lmc_comm *c, mpi_req *r, size_t n, size_t begin, size_t end)
{
    mpi_impl *p = impl_of(c);
    for (int q = 0; q < c->size; q++) {
        size_t b, k;
        lmc_comm_shard(n, c->size, q, &b, &k);
        size_t lo = b > begin ? b : begin, hi = b + k < end ? b + k : end;
        size_t cnt = hi > lo ? hi - lo : 0;
        if (cnt > INT_MAX || (lo - begin > INT_MAX && cnt))
            return req_limit(c, r, cnt);
        p->counts[q] = (int)cnt;
        p->displs[q] = cnt ? (int)(lo - begin) : 0;
    }
    return LMC_OK;
}

/* Completes a non-blocking MPI request politely: each rank is usually bound
 * to one core that its compute thread needs, and a thread spinning in MPI
 * while a peer is still computing would take half of that core. So: spin
 * briefly (most collectives of a balanced step finish within it), then test
 * with sleeps growing to POLL_MAX_NS, so waiting costs well under 1% of a
 * core and adds at most POLL_MAX_NS of latency once the peers arrive.
 * While a caller waits for the queue (mpi_wait) its core is idle, so then
 * the thread tests without sleeping, yielding to any other runnable thread
 * as Open MPI's blocking calls do when oversubscribed: a collective moves a
 * shared-memory fragment per MPI_Test, and napping between them made each
 * 393 KB tensor-parallel allreduce of d12 take about 1 ms (0.05 ms alone). */
#define POLL_SPIN_S 50e-6
#define POLL_MAX_NS 200000L

static int complete(mpi_impl *p, MPI_Request *rq)
{
    double t0 = lmc_now();
    long nap = 2000;
    for (;;) {
        int flag = 0, rc = MPI_Test(rq, &flag, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS || flag)
            return rc;
        if (lmc_now() - t0 < POLL_SPIN_S)
            continue;
        if (__atomic_load_n(&p->waiters, __ATOMIC_RELAXED)) {
            sched_yield();
            continue;
        }
        struct timespec ts = {0, nap};
        nanosleep(&ts, NULL);
        nap = nap * 2 < POLL_MAX_NS ? nap * 2 : POLL_MAX_NS;
    }
}

/* Starts rc (an MPI_I* call's result) and completes rq; rq NULL: rc was a
 * blocking call's, already the end. */
static lmc_status finish_call(lmc_comm *c, mpi_req *r, int rc, MPI_Request *rq, const char *call)
{
    if (rc == MPI_SUCCESS && rq)
        rc = complete(impl_of(c), rq);
    return rc == MPI_SUCCESS ? LMC_OK : req_fail(c, r, rc, call);
}

static lmc_status run_allreduce(lmc_comm *c, mpi_req *r)
{
    float *buf = r->buf;
    for (size_t o = 0; o < r->n; o += FLOAT_CHUNK) {
        int k = (int)(r->n - o < FLOAT_CHUNK ? r->n - o : FLOAT_CHUNK);
        MPI_Request rq;
        MPI_Comm comm = impl_of(c)->comm;
        int rc = r->blocking ? MPI_Allreduce(MPI_IN_PLACE, buf + o, k, MPI_FLOAT, MPI_SUM, comm)
                             : MPI_Iallreduce(MPI_IN_PLACE, buf + o, k, MPI_FLOAT, MPI_SUM, comm, &rq);
        LMC_TRY(finish_call(c, r, rc, r->blocking ? NULL : &rq, r->blocking ? "MPI_Allreduce" : "MPI_Iallreduce"));
    }
    return LMC_OK;
}

/* In place, MPI_Reduce_scatter leaves this rank's sum at the start of the
 * range; it moves to where lmc_comm_shard says this rank's shard lies. The
 * range goes in pieces of FLOAT_CHUNK, each itself a ranged reduce-scatter. */
static lmc_status run_reduce_scatter(lmc_comm *c, mpi_req *r)
{
    mpi_impl *p = impl_of(c);
    for (size_t lo = r->begin; lo < r->end; lo += FLOAT_CHUNK) {
        size_t hi = r->end - lo < FLOAT_CHUNK ? r->end : lo + FLOAT_CHUNK;
        LMC_TRY(shard_counts(c, r, r->n, lo, hi));
        float *base = (float *)r->buf + (lo - r->begin);
        MPI_Request rq;
        int rc = r->blocking ? MPI_Reduce_scatter(MPI_IN_PLACE, base, p->counts, MPI_FLOAT, MPI_SUM, p->comm)
                             : MPI_Ireduce_scatter(MPI_IN_PLACE, base, p->counts, MPI_FLOAT, MPI_SUM, p->comm, &rq);
        LMC_TRY(finish_call(c, r, rc, r->blocking ? NULL : &rq, r->blocking ? "MPI_Reduce_scatter" : "MPI_Ireduce_scatter"));
        if (p->counts[c->rank] && p->displs[c->rank])
            memmove(base + p->displs[c->rank], base, (size_t)p->counts[c->rank] * sizeof(float));
    }
    return LMC_OK;
}

static lmc_status run_allgather(lmc_comm *c, mpi_req *r)
{
    mpi_impl *p = impl_of(c);
    LMC_TRY(shard_counts(c, r, r->n, 0, r->n));
    MPI_Request rq;
    int rc = r->blocking ? MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, r->buf, p->counts, p->displs,
                                          MPI_FLOAT, p->comm)
                         : MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, r->buf, p->counts, p->displs,
                                           MPI_FLOAT, p->comm, &rq);
    return finish_call(c, r, rc, r->blocking ? NULL : &rq, r->blocking ? "MPI_Allgatherv" : "MPI_Iallgatherv");
}

/* The range [begin, end) from each element's owner into r->buf (the range),
 * this rank sending from its shard r->in; in pieces of FLOAT_CHUNK. */
static lmc_status run_allgather_range(lmc_comm *c, mpi_req *r)
{
    mpi_impl *p = impl_of(c);
    size_t mine, cnt;
    lmc_comm_shard(r->n, c->size, c->rank, &mine, &cnt);
    for (size_t lo = r->begin; lo < r->end; lo += FLOAT_CHUNK) {
        size_t hi = r->end - lo < FLOAT_CHUNK ? r->end : lo + FLOAT_CHUNK;
        LMC_TRY(shard_counts(c, r, r->n, lo, hi));
        int k = p->counts[c->rank];
        const float *send = (const float *)r->in + (k ? lo + (size_t)p->displs[c->rank] - mine : 0);
        MPI_Request rq;
        int rc = MPI_Iallgatherv(send, k, MPI_FLOAT, (float *)r->buf + (lo - r->begin), p->counts, p->displs,
                                 MPI_FLOAT, p->comm, &rq);
        LMC_TRY(finish_call(c, r, rc, &rq, "MPI_Iallgatherv"));
    }
    return LMC_OK;
}

static lmc_status run_gather(lmc_comm *c, mpi_req *r)
{
    mpi_impl *p = impl_of(c);
    LMC_TRY(shard_counts(c, r, r->n, 0, r->n));
    float *full = r->buf;
    const float *shard = r->in;
    int mine = p->counts[c->rank];
    const void *send = c->rank == r->root && shard == full + p->displs[c->rank] ? MPI_IN_PLACE : shard;
    MPI_Request rq;
    int rc = MPI_Igatherv(send, mine, MPI_FLOAT, full, p->counts, p->displs, MPI_FLOAT, r->root, p->comm, &rq);
    return finish_call(c, r, rc, &rq, "MPI_Igatherv");
}

static lmc_status run_bcast(lmc_comm *c, mpi_req *r)
{
    char *buf = r->buf;
    for (size_t o = 0; o < r->bytes; o += CHUNK) {
        int k = (int)(r->bytes - o < CHUNK ? r->bytes - o : CHUNK);
        MPI_Request rq;
        int rc = MPI_Ibcast(buf + o, k, MPI_BYTE, r->root, impl_of(c)->comm, &rq);
        LMC_TRY(finish_call(c, r, rc, &rq, "MPI_Ibcast"));
    }
    return LMC_OK;
}

static lmc_status run_host(lmc_comm *c, mpi_req *r)
{
    mpi_impl *p = impl_of(c);
    MPI_Request rq;
    if (r->op == OP_HOST_SUM) {
        int rc = MPI_Iallreduce(MPI_IN_PLACE, r->buf, (int)r->n, MPI_DOUBLE, r->op_max ? MPI_MAX : MPI_SUM,
                                p->comm, &rq);
        return finish_call(c, r, rc, &rq, "MPI_Iallreduce");
    }
    if (r->op == OP_BARRIER)
        return finish_call(c, r, MPI_Ibarrier(p->comm, &rq), &rq, "MPI_Ibarrier");
    if (r->op == OP_SPLIT) { /* blocking, but on this communicator's own thread like every call on it */
        int rc = MPI_Comm_split(p->comm, r->root, r->op_max, (MPI_Comm *)r->buf);
        return rc == MPI_SUCCESS ? LMC_OK : req_fail(c, r, rc, "MPI_Comm_split");
    }
    if (r->bytes > INT_MAX)
        return req_limit(c, r, r->bytes);
    char *out = r->buf;
    const void *send = r->in == out + (size_t)c->rank * r->bytes ? MPI_IN_PLACE : r->in;
    int rc = MPI_Iallgather(send, (int)r->bytes, MPI_BYTE, out, (int)r->bytes, MPI_BYTE, p->comm, &rq);
    return finish_call(c, r, rc, &rq, "MPI_Iallgather");
}

/* Counts and displacements in floats, as MPI's ints: scratch for 4 x size. */
static lmc_status run_alltoallv(lmc_comm *c, mpi_req *r)
{
    int n = c->size, *ib = malloc(4 * (size_t)n * sizeof(int));
    if (!ib) {
        snprintf(r->err, sizeof r->err, "alltoallv: out of memory for %d ranks' counts", n);
        return LMC_ENOMEM;
    }
    int *sc = ib, *sd = ib + n, *rc = ib + 2 * n, *rd = ib + 3 * n;
    size_t so = 0, ro = 0;
    for (int q = 0; q < n; q++) {
        if (r->scount[q] > INT_MAX || r->rcount[q] > INT_MAX || so > INT_MAX || ro > INT_MAX) {
            free(ib);
            return req_limit(c, r, so > ro ? so : ro);
        }
        sc[q] = (int)r->scount[q], sd[q] = (int)so, rc[q] = (int)r->rcount[q], rd[q] = (int)ro;
        so += r->scount[q], ro += r->rcount[q];
    }
    MPI_Request rq;
    int e = MPI_Ialltoallv(r->in, sc, sd, MPI_FLOAT, r->buf, rc, rd, MPI_FLOAT, impl_of(c)->comm, &rq);
    lmc_status s = finish_call(c, r, e, &rq, "MPI_Ialltoallv");
    free(ib);
    return s;
}

static lmc_status run_req(lmc_comm *c, mpi_req *r)
{
    switch (r->op) {
    case OP_ALLREDUCE: return run_allreduce(c, r);
    case OP_RSCATTER: return run_reduce_scatter(c, r);
    case OP_ALLGATHER: return run_allgather(c, r);
    case OP_AGRANGE: return run_allgather_range(c, r);
    case OP_GATHER: return run_gather(c, r);
    case OP_BCAST: return run_bcast(c, r);
    case OP_ALLTOALLV: return run_alltoallv(c, r);
    default: return run_host(c, r);
    }
}

/* Runs r (on whichever thread, holding no lock) and returns the seconds it
 * took. After one failure every later request fails without running, so no
 * rank enters a collective that its peers will never join. */
static double execute(lmc_comm *c, mpi_req *r, int faulted, const char *fault)
{
    double t0 = lmc_now();
    if (faulted) {
        snprintf(r->err, sizeof r->err, "%s not run: an earlier collective failed: %s", op_names[r->op], fault);
        r->status = LMC_ECOMM;
    } else {
        r->status = run_req(c, r);
    }
    return lmc_now() - t0;
}

/* With the lock held (or no thread): r is finished. */
static void finished(lmc_comm *c, mpi_req *r, double dt)
{
    mpi_impl *p = impl_of(c);
    c->busy_s += dt;
    if (r->status && !p->faulted) {
        snprintf(p->fault, sizeof p->fault, "%s", r->err);
        p->faulted = 1;
    }
    r->done = 1;
    p->ran++;
}

/* ---------- the communication thread ---------- */

static void mpi_abort(lmc_comm *c, const char *why);

/* A wait that outlived the watchdog: the collective's name, the seconds. */
#define WATCHDOG_FMT "%s waited %.0f s for the other ranks (the communication watchdog): a rank is stuck or unreachable"

/* With the lock held, the idle thread's wait: for work, and as the
 * watchdog of a request the caller runs inline (run_now), checked every
 * second. A blocking MPI call cannot be left, so when it outlives its
 * deadline this rank ends the job, as the trainer does when a wait times
 * out. */
static void idle_wait(lmc_comm *c)
{
    mpi_impl *p = impl_of(c);
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += 1;
    pthread_cond_timedwait(&p->work, &p->mu, &dl);
    if (!p->inline_run || p->inline_deadline <= 0 || lmc_now() < p->inline_deadline)
        return;
    char why[256];
    snprintf(why, sizeof why, WATCHDOG_FMT, op_names[p->q[p->inline_seq % QCAP].op], lmc_mpi_timeout(c));
    pthread_mutex_unlock(&p->mu);
    mpi_abort(c, why);
}

static void *comm_thread(void *arg)
{
    lmc_comm *c = arg;
    mpi_impl *p = impl_of(c);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while ((!p->stop && p->ran == p->posted) || p->inline_run)
            idle_wait(c);
        if (p->ran == p->posted)
            break;
        mpi_req *r = &p->q[p->ran % QCAP];
        int faulted = p->faulted;
        pthread_mutex_unlock(&p->mu); /* the fault text is stable once faulted is set */
        double dt = execute(c, r, faulted, p->fault);
        pthread_mutex_lock(&p->mu);
        finished(c, r, dt);
        pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* With the lock held: r is the queue's next slot, filled from tmpl. */
static mpi_req *enqueue(mpi_impl *p, const mpi_req *tmpl)
{
    unsigned seq = p->posted++;
    mpi_req *r = &p->q[seq % QCAP];
    *r = *tmpl;
    r->id = (int)(seq & INT_MAX);
    r->done = 0;
    r->status = LMC_OK;
    r->err[0] = 0;
    return r;
}

/* Queues a request (or runs it at once without a thread); *id names it. */
static lmc_status post(lmc_comm *c, const mpi_req *tmpl, int *id)
{
    mpi_impl *p = impl_of(c);
    pthread_mutex_lock(&p->mu);
    if (p->posted - p->ran >= QCAP) {
        pthread_mutex_unlock(&p->mu);
        return lmc_err(LMC_ECOMM, "mpi: %d collectives in flight; wait for some before starting more", QCAP);
    }
    mpi_req *r = enqueue(p, tmpl);
    *id = r->id;
    if (p->threaded) {
        pthread_cond_signal(&p->work);
        pthread_mutex_unlock(&p->mu);
        return LMC_OK;
    }
    int faulted = p->faulted;
    pthread_mutex_unlock(&p->mu);
    finished(c, r, execute(c, r, faulted, p->fault));
    return LMC_OK;
}

double lmc_mpi_timeout(lmc_comm *c)
{
    mpi_impl *p = impl_of(c);
    if (c->idle)
        return 0;
    return p->env_timeout > 0 ? p->env_timeout : c->timeout_s;
}

static lmc_status wait_for(lmc_comm *c, int id)
{
    mpi_impl *p = impl_of(c);
    mpi_req *r = &p->q[(unsigned)id % QCAP];
    double limit = lmc_mpi_timeout(c);
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += (time_t)limit;
    dl.tv_nsec += (long)((limit - (double)(time_t)limit) * 1e9);
    if (dl.tv_nsec >= 1000000000L)
        dl.tv_sec++, dl.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&p->mu);
    while (r->id == id && !r->done) {
        if (p->faulted) { /* a failed or timed-out collective: this one will not finish either */
            char msg[512];
            snprintf(msg, sizeof msg, "%s", p->fault);
            pthread_mutex_unlock(&p->mu);
            return lmc_err(LMC_ECOMM, "%s not finished: an earlier collective failed: %s", op_names[r->op], msg);
        }
        if (limit <= 0) {
            pthread_cond_wait(&p->done, &p->mu);
        } else if (pthread_cond_timedwait(&p->done, &p->mu, &dl) == ETIMEDOUT && !r->done) {
            const char *what = op_names[r->op];
            snprintf(p->fault, sizeof p->fault, "%s timed out after %.0f s (the communication watchdog)", what, limit);
            p->faulted = 1;
            pthread_mutex_unlock(&p->mu);
            return lmc_err(LMC_ECOMM, WATCHDOG_FMT, what, limit);
        }
    }
    /* a slot reused by a newer request means this one finished long ago; a
     * failure then was recorded as the fault, reported by every later wait */
    lmc_status s = r->id == id ? r->status : LMC_OK;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", r->id == id ? r->err : "");
    pthread_mutex_unlock(&p->mu);
    if (s)
        return lmc_err(s, "%s", msg);
    return LMC_OK;
}

/* Blocks until request id finished; meanwhile the communication thread
 * polls without sleeping (complete()). */
static lmc_status mpi_wait(lmc_comm *c, int id)
{
    mpi_impl *p = impl_of(c);
    __atomic_add_fetch(&p->waiters, 1, __ATOMIC_RELAXED);
    lmc_status s = wait_for(c, id);
    __atomic_sub_fetch(&p->waiters, 1, __ATOMIC_RELAXED);
    return s;
}

/* Runs a request to its end. With nothing queued ahead of it, it runs on
 * the caller's thread, still as the queue's next request (the thread
 * waits until it is done, so the order of collectives stays the queue's),
 * with MPI's blocking call where there is one: handing it over cost two
 * thread wake-ups, and Open MPI's non-blocking collectives are slower than
 * its tuned blocking ones (a 393 KB allreduce after 2.5 ms of work on 2
 * ranks: 390-600 us through the queue, 200-360 us inline, as a bare
 * MPI_Allreduce), where a tensor-parallel step of d12 makes a thousand. */
static lmc_status run_now(lmc_comm *c, const mpi_req *tmpl)
{
    mpi_impl *p = impl_of(c);
    int id = 0;
    pthread_mutex_lock(&p->mu);
    if (!p->threaded || p->ran != p->posted) {
        pthread_mutex_unlock(&p->mu);
        LMC_TRY(post(c, tmpl, &id));
        return mpi_wait(c, id);
    }
    p->inline_seq = p->posted;
    mpi_req *r = enqueue(p, tmpl);
    double limit = lmc_mpi_timeout(c);
    r->blocking = 1; /* MPI's blocking collectives: Open MPI's tuned ones, faster than its non-blocking */
    p->inline_run = 1;
    p->inline_deadline = limit > 0 ? lmc_now() + limit : 0; /* the idle thread watches it */
    int faulted = p->faulted;
    pthread_mutex_unlock(&p->mu);
    __atomic_add_fetch(&p->waiters, 1, __ATOMIC_RELAXED); /* poll without napping */
    double dt = execute(c, r, faulted, p->fault);
    __atomic_sub_fetch(&p->waiters, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&p->mu);
    finished(c, r, dt);
    p->inline_run = 0;
    lmc_status s = r->status;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", r->err);
    pthread_cond_broadcast(&p->done);
    if (p->ran != p->posted) /* requests queued meanwhile */
        pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
    return s ? lmc_err(s, "%s", msg) : LMC_OK;
}

/* ---------- the ops ---------- */

static lmc_status mpi_allreduce_start(lmc_comm *c, float *buf, size_t n, int *req)
{
    mpi_req r = {.op = OP_ALLREDUCE, .buf = buf, .n = n};
    return post(c, &r, req);
}

static lmc_status mpi_reduce_scatter_start(lmc_comm *c, float *buf, size_t n, size_t begin, size_t end, int *req)
{
    if (begin > end || end > n)
        return lmc_err(LMC_EINVAL, "mpi reduce_scatter: range [%zu, %zu) is not inside %zu elements", begin, end, n);
    mpi_req r = {.op = OP_RSCATTER, .buf = buf, .n = n, .begin = begin, .end = end};
    return post(c, &r, req);
}

static lmc_status mpi_allgather_start(lmc_comm *c, const float *shard, float *range, size_t n, size_t begin,
                                      size_t end, int *req)
{
    if (begin > end || end > n)
        return lmc_err(LMC_EINVAL, "mpi allgather: range [%zu, %zu) is not inside %zu elements", begin, end, n);
    mpi_req r = {.op = OP_AGRANGE, .in = shard, .buf = range, .n = n, .begin = begin, .end = end};
    return post(c, &r, req);
}

static lmc_status mpi_allreduce(lmc_comm *c, float *buf, size_t n)
{
    mpi_req r = {.op = OP_ALLREDUCE, .buf = buf, .n = n};
    return run_now(c, &r);
}

static lmc_status mpi_reduce_scatter(lmc_comm *c, float *buf, size_t n)
{
    mpi_req r = {.op = OP_RSCATTER, .buf = buf, .n = n, .begin = 0, .end = n};
    return run_now(c, &r);
}

static lmc_status mpi_allgather(lmc_comm *c, float *buf, size_t n)
{
    mpi_req r = {.op = OP_ALLGATHER, .buf = buf, .n = n};
    return run_now(c, &r);
}

static lmc_status mpi_gather(lmc_comm *c, const float *shard, float *full, size_t n, int root)
{
    if (root < 0 || root >= c->size)
        return lmc_err(LMC_EINVAL, "mpi gather: root %d is not a rank (size %d)", root, c->size);
    mpi_req r = {.op = OP_GATHER, .in = shard, .buf = full, .n = n, .root = root};
    return run_now(c, &r);
}

static lmc_status mpi_broadcast(lmc_comm *c, void *buf, size_t bytes, int root)
{
    if (root < 0 || root >= c->size)
        return lmc_err(LMC_EINVAL, "mpi broadcast: root %d is not a rank (size %d)", root, c->size);
    mpi_req r = {.op = OP_BCAST, .buf = buf, .bytes = bytes, .root = root};
    return run_now(c, &r);
}

static lmc_status mpi_allreduce_host(lmc_comm *c, double *x, int n, int op_max)
{
    mpi_req r = {.op = OP_HOST_SUM, .buf = x, .n = (size_t)n, .op_max = op_max};
    return n > 0 ? run_now(c, &r) : LMC_OK;
}

static lmc_status mpi_allgather_host(lmc_comm *c, const void *in, void *out, size_t bytes)
{
    mpi_req r = {.op = OP_HOST_GATHER, .in = in, .buf = out, .bytes = bytes};
    return run_now(c, &r);
}

static lmc_status mpi_alltoallv(lmc_comm *c, const float *send, const size_t *scount, float *recv,
                                const size_t *rcount)
{
    mpi_req r = {.op = OP_ALLTOALLV, .in = send, .buf = recv, .scount = scount, .rcount = rcount};
    return run_now(c, &r);
}

static lmc_status mpi_barrier(lmc_comm *c)
{
    mpi_req r = {.op = OP_BARRIER};
    return run_now(c, &r);
}

static void mpi_abort(lmc_comm *c, const char *why)
{
    fprintf(stderr, "lmc: rank %d of %d: error: %s\nlmc: rank %d: ending all %d ranks (MPI_Abort) so that none waits "
            "forever; checkpoints already saved are complete (continue with --resume)\n",
            c->rank, c->size, why, c->rank, c->size);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    _exit(1); /* MPI_Abort does not return; if it ever did, this rank must still end */
}

/* ---------- SIGTERM from the launcher ---------- */

static char term_msg[256];
static size_t term_len;

static void on_sigterm(int sig)
{
    ssize_t w = write(STDERR_FILENO, term_msg, term_len); /* async-signal-safe */
    (void)w;
    signal(sig, SIG_DFL);
    raise(sig);
}

static int install_sigterm(lmc_comm *c)
{
    struct sigaction sa, old;
    if (sigaction(SIGTERM, NULL, &old) != 0 || old.sa_handler != SIG_DFL)
        return 0; /* the program has its own plans for SIGTERM */
    int n = snprintf(term_msg, sizeof term_msg, "lmc: rank %d of %d: terminated by the MPI launcher (another rank "
                     "failed, or the job was stopped); saved checkpoints are complete (continue with --resume)\n",
                     c->rank, c->size);
    term_len = n > 0 && (size_t)n < sizeof term_msg ? (size_t)n : 0;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigterm;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGTERM, &sa, NULL) == 0;
}

/* ---------- open and close ---------- */

static void mpi_destroy(lmc_comm *c)
{
    mpi_impl *p = impl_of(c);
    int faulted = p->faulted;
    if (p->threaded) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_signal(&p->work);
        pthread_mutex_unlock(&p->mu);
        if (faulted && c->size > 1) /* the thread may be stuck in a collective */
            mpi_abort(c, p->fault);
        pthread_join(p->thread, NULL);
    }
    if (faulted && c->size > 1)
        mpi_abort(c, p->fault);
    if (p->chunk_type_made)
        MPI_Type_free(&p->chunk_type);
    MPI_Comm_free(&p->comm);
    if (p->own_init)
        MPI_Finalize();
    if (p->sigterm)
        signal(SIGTERM, SIG_DFL);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->p2p_mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    free(p->counts);
    free(p->displs);
    free(p);
    free(c);
}

static lmc_status mpi_split(lmc_comm *c, int color, int key, lmc_comm **out);

static const lmc_comm_ops mpi_ops = {
    .allreduce = mpi_allreduce,
    .allreduce_start = mpi_allreduce_start,
    .reduce_scatter_start = mpi_reduce_scatter_start,
    .allgather_start = mpi_allgather_start,
    .wait = mpi_wait,
    .reduce_scatter = mpi_reduce_scatter,
    .allgather = mpi_allgather,
    .gather = mpi_gather,
    .broadcast = mpi_broadcast,
    .allreduce_host = mpi_allreduce_host,
    .allgather_host = mpi_allgather_host,
    .barrier = mpi_barrier,
    .send_start = lmc_mpi_send_start,
    .recv_start = lmc_mpi_recv_start,
    .p2p_wait = lmc_mpi_p2p_wait,
    .split = mpi_split,
    .alltoallv = mpi_alltoallv,
    .abort = mpi_abort,
    .destroy = mpi_destroy,
};

static lmc_status mpi_error(int rc, const char *what)
{
    char s[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, s, &len);
    return lmc_err(LMC_ECOMM, "mpi: %s failed: %s", what, s);
}

/* MPI itself (once per process), a private duplicate of the world, errors
 * returned rather than fatal. */
static lmc_status start_mpi(mpi_impl *p, int *provided)
{
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (finalized)
        return lmc_err(LMC_ECOMM, "mpi: MPI was already finalized in this process and cannot start again");
    if (!inited) {
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, provided);
        if (rc != MPI_SUCCESS)
            return mpi_error(rc, "MPI_Init_thread");
        p->own_init = 1;
    } else {
        MPI_Query_thread(provided);
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &p->comm);
    if (rc != MPI_SUCCESS)
        return mpi_error(rc, "MPI_Comm_dup");
    MPI_Comm_set_errhandler(p->comm, MPI_ERRORS_RETURN);
    return LMC_OK;
}

/* An lmc communicator over comm (a duplicate of the world, or a split of
 * one), with its own communication thread. */
static lmc_status mpi_wrap(MPI_Comm comm, int own_init, int provided, int root, lmc_comm **out)
{
    lmc_comm *c = calloc(1, sizeof *c);
    mpi_impl *p = calloc(1, sizeof *p);
    if (!c || !p) {
        free(c), free(p);
        MPI_Comm_free(&comm);
        return lmc_err(LMC_ENOMEM, "out of memory opening the MPI communicator");
    }
    p->comm = comm;
    p->own_init = own_init;
    p->provided = provided;
    MPI_Comm_rank(p->comm, &c->rank);
    MPI_Comm_size(p->comm, &c->size);
    p->counts = calloc((size_t)c->size, sizeof(int));
    p->displs = calloc((size_t)c->size, sizeof(int));
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->p2p_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->work, &ca);
    pthread_cond_init(&p->done, &ca);
    pthread_condattr_destroy(&ca);
    const char *t = getenv("LMC_COMM_TIMEOUT");
    p->env_timeout = t ? atof(t) : 0;
    c->ops = &mpi_ops;
    c->name = "mpi";
    c->impl = p;
    if (!p->counts || !p->displs) {
        mpi_destroy(c);
        return lmc_err(LMC_ENOMEM, "out of memory opening the MPI communicator");
    }
    p->threaded = provided >= MPI_THREAD_SERIALIZED && c->size > 1;
    if (p->threaded && pthread_create(&p->thread, NULL, comm_thread, c) != 0)
        p->threaded = 0; /* collectives run on the caller's thread: slower, still correct */
    if (root && c->size > 1)
        p->sigterm = install_sigterm(c);
    *out = c;
    return LMC_OK;
}

/* Several communicators each drive MPI from their own thread: that needs
 * MPI_THREAD_MULTIPLE. */
static lmc_status mpi_split(lmc_comm *c, int color, int key, lmc_comm **out)
{
    mpi_impl *p = impl_of(c);
    *out = NULL;
    if (p->provided < MPI_THREAD_MULTIPLE)
        return lmc_err(LMC_EUNSUPPORTED, "mpi: process groups (--tp) need an MPI with MPI_THREAD_MULTIPLE support; "
                       "this one provides level %d", p->provided);
    MPI_Comm sub = MPI_COMM_NULL;
    mpi_req r = {.op = OP_SPLIT, .root = color, .op_max = key, .buf = &sub};
    LMC_TRY(run_now(c, &r));
    MPI_Comm_set_errhandler(sub, MPI_ERRORS_RETURN);
    return mpi_wrap(sub, 0, p->provided, 0, out);
}

lmc_status lmc_comm_mpi(lmc_comm **out)
{
    *out = NULL;
    mpi_impl boot = {0};
    int provided = MPI_THREAD_SINGLE;
    lmc_status s = start_mpi(&boot, &provided);
    if (s) {
        if (boot.own_init)
            MPI_Finalize();
        return s;
    }
    return mpi_wrap(boot.comm, boot.own_init, provided, 1, out);
}
