/* comm.h: the communicator, the only place that knows about MPI or NCCL.
 *
 * The trainer calls these collectives and never a vendor API. Buffers are
 * memory of the kind the communicator declares: host memory for the
 * single-process and MPI communicators, device memory for NCCL. All
 * collectives are in place and sum (averaging is the caller's scale).
 * Shards: element range [shard_begin(r), shard_begin(r) + shard_count(r))
 * of an n-element buffer, as lmc_comm_shard defines, for every rank r.
 */
#ifndef LMC_COMM_H
#define LMC_COMM_H

#include "lmc/core.h"

typedef struct lmc_comm lmc_comm;
typedef struct lmc_comm_ops lmc_comm_ops;
typedef struct lmc_backend lmc_backend;

struct lmc_comm {
    const lmc_comm_ops *ops;
    const char *name; /* "single", "mpi", "nccl" */
    int rank, size;
    int device_memory; /* buffers are device pointers (NCCL) */
    /* Each rank's buffers are its own backend's memory, host or device (the
     * hierarchical communicator of a job mixing chip kinds: hier.c); its
     * device_memory is 1 on every rank so that callers take one path. */
    int per_rank_memory;
    void *impl;
    /* Watchdog: a wait longer than this fails with LMC_ECOMM instead of
     * hanging on a stuck rank; 0 = wait forever. The caller may change it at
     * any time (the trainer scales it with the step time). */
    double timeout_s;
    /* Waiting for work rather than for peers (a tensor-parallel follower
     * waiting for the leader's next request): no watchdog, not even
     * LMC_COMM_TIMEOUT's, while set. */
    int idle;
    /* The backend whose memory the collectives move (device communicators):
     * set by the caller, it orders them after the backend's queued work and
     * the backend's later work after them (its event_record, event_wait);
     * NULL: the vendor's default stream orders them. */
    lmc_backend *be;
    /* Statistics: seconds spent executing collectives so far, on whichever
     * thread runs them (with overlap most of it is hidden behind compute). */
    double busy_s;
};

struct lmc_comm_ops {
    /* buf (n floats) = sum over ranks */
    lmc_status (*allreduce)(lmc_comm *c, float *buf, size_t n);
    /* non-blocking allreduce: *req identifies it until wait(req) */
    lmc_status (*allreduce_start)(lmc_comm *c, float *buf, size_t n, int *req);
    /* non-blocking reduce_scatter of the elements [begin, end) of an n-float
     * vector sharded as lmc_comm_shard(n) says (a gradient bucket under
     * ZeRO); range (end - begin floats) holds those elements: afterwards
     * the ones of this rank's shard hold the sum over ranks, the rest of
     * the range is undefined */
    lmc_status (*reduce_scatter_start)(lmc_comm *c, float *range, size_t n, size_t begin, size_t end, int *req);
    /* non-blocking allgather of the elements [begin, end) of an n-float
     * vector sharded as lmc_comm_shard(n) says (a unit's parameters under
     * ZeRO-3): shard holds this rank's whole shard; afterwards range (end -
     * begin floats) holds the elements [begin, end) from their owners */
    lmc_status (*allgather_start)(lmc_comm *c, const float *shard, float *range, size_t n, size_t begin, size_t end,
                                  int *req);
    /* Non-blocking operations complete in the order they were started. */
    lmc_status (*wait)(lmc_comm *c, int req);
    /* buf (n floats): afterwards rank r's shard holds the sum of every
     * rank's shard r; the rest of buf is undefined */
    lmc_status (*reduce_scatter)(lmc_comm *c, float *buf, size_t n);
    /* buf (n floats): each rank contributes its shard; afterwards all hold all */
    lmc_status (*allgather)(lmc_comm *c, float *buf, size_t n);
    /* shard: this rank's lmc_comm_shard(n) elements; afterwards root's full
     * (n floats) holds every rank's shard in place (full unused elsewhere) */
    lmc_status (*gather)(lmc_comm *c, const float *shard, float *full, size_t n, int root);
    lmc_status (*broadcast)(lmc_comm *c, void *buf, size_t bytes, int root);
    /* small host-memory reductions for scalars (loss, timings, counts) */
    lmc_status (*allreduce_host)(lmc_comm *c, double *x, int n, int op_max);
    /* gather `bytes` from every rank into out (size * bytes) on all ranks (host memory) */
    lmc_status (*allgather_host)(lmc_comm *c, const void *in, void *out, size_t bytes);
    lmc_status (*barrier)(lmc_comm *c);
    /* Point to point, for pipeline stages: a non-blocking send of `bytes`
     * from buf to rank `peer` of this communicator, or a receive into buf
     * from `peer`. They do not queue behind the collectives above; each is
     * completed by p2p_wait, in any order (buf stays untouched until then).
     * Messages between two ranks arrive in the order they were sent. A
     * communicator that runs them in the order posted (NCCL's stream) needs
     * both ranks of a pair to post their sends and receives to each other in
     * the same order: the pipeline schedule (src/train/pipeline.c) does. */
    lmc_status (*send_start)(lmc_comm *c, const void *buf, size_t bytes, int peer, int *req);
    lmc_status (*recv_start)(lmc_comm *c, void *buf, size_t bytes, int peer, int *req);
    lmc_status (*p2p_wait)(lmc_comm *c, int req);
    /* A process group: every rank calls it; ranks with the same color form
     * one new communicator, ranked by key (MPI_Comm_split). The new one is
     * independent (its own queue and watchdog); close it before its parent. */
    lmc_status (*split)(lmc_comm *c, int color, int key, lmc_comm **out);
    /* All-to-all of varying sizes (expert parallelism's token rows), in
     * this communicator's memory: send holds scount[r] floats for each rank
     * r, in rank order; recv gets rcount[r] floats from each rank r, in rank
     * order. The counts are agreed beforehand (allgather_host): rcount[r]
     * here is scount[me] there. Blocking. NULL: not supported (hccl). */
    lmc_status (*alltoallv)(lmc_comm *c, const float *send, const size_t *scount, float *recv, const size_t *rcount);
    /* The fault path: after a failure on this rank that the others cannot
     * see (an error, a timed-out wait), ends every rank of the job so none
     * waits forever: prints why on stderr and aborts (MPI_Abort, which does
     * not return). The single-process communicator returns and does nothing. */
    void (*abort)(lmc_comm *c, const char *why);
    void (*destroy)(lmc_comm *c);
};

/* Shard r of n elements over size ranks: equal blocks of ceil(n/size),
 * rounded up to 16 elements (64 bytes) so every shard starts aligned; the
 * last shards may be shorter or empty. */
static inline void lmc_comm_shard(size_t n, int size, int r, size_t *begin, size_t *count)
{
    size_t blk = (n + (size_t)size - 1) / (size_t)size;
    blk = (blk + 15) / 16 * 16;
    size_t b = blk * (size_t)r;
    *begin = b < n ? b : n;
    *count = b < n ? (n - b < blk ? n - b : blk) : 0;
}

/* allgather (buf, n floats) as the ranged all-gather of the whole vector,
 * this rank's shard read from buf itself, then its wait: for communicators
 * whose allgather is no faster than that (hccl, hier). */
static inline lmc_status lmc_comm_allgather_whole(lmc_comm *c, float *buf, size_t n)
{
    size_t b, k;
    int req = -1;
    lmc_comm_shard(n, c->size, c->rank, &b, &k);
    lmc_status s = c->ops->allgather_start(c, buf + b, buf, n, 0, n, &req);
    return s != LMC_OK ? s : c->ops->wait(c, req);
}

/* The single-process communicator: every collective is the identity. */
lmc_status lmc_comm_single(lmc_comm **out);
/* Picks the communicator from how the process was started: under mpirun
 * (OMPI_COMM_WORLD_SIZE / PMI_SIZE set) MPI, else single. kind: "auto",
 * "single", "mpi", "nccl". */
lmc_status lmc_comm_open(const char *kind, lmc_comm **out);
void lmc_comm_close(lmc_comm *c);

#endif
