/* mpi_internal.h: the MPI communicator's state, shared by mpi.c (the
 * collectives, their thread, open and close) and mpi_p2p.c (point to point).
 * Private to src/dist/. */
#ifndef LMC_MPI_INTERNAL_H
#define LMC_MPI_INTERNAL_H

#include "dist/comm.h"

#include <mpi.h>
#include <pthread.h>

#define QCAP 4096                 /* collectives in flight at most (a power of two) */
#define CHUNK ((size_t)1 << 30)   /* bytes per MPI call at most (MPI counts in int) */
#define P2P_SLOTS 64              /* sends and receives in flight at most */

typedef enum { OP_ALLREDUCE, OP_RSCATTER, OP_ALLGATHER, OP_AGRANGE, OP_GATHER, OP_BCAST, OP_HOST_SUM,
               OP_HOST_GATHER, OP_BARRIER, OP_SPLIT, OP_ALLTOALLV } op_kind;

typedef struct {
    op_kind op;
    int id, done, root, op_max;
    int blocking; /* run by the caller (run_now): MPI's blocking call where there is one */
    void *buf;
    const void *in;
    size_t n, begin, end, bytes;
    const size_t *scount, *rcount; /* alltoallv: floats to and from each rank */
    lmc_status status;
    char err[512];
} mpi_req;

/* One send or receive: its whole CHUNK-byte pieces as one message of a
 * contiguous type, then the rest in bytes. */
typedef struct {
    MPI_Request rq[2];
    int used, send, peer;
    size_t bytes;
} p2p_req;

typedef struct {
    MPI_Comm comm;
    int own_init, threaded, stop, faulted, sigterm, provided;
    int waiters; /* callers blocked in wait (atomic): the thread then polls without sleeping */
    int inline_run;        /* the queue's request inline_seq runs on the caller's thread (run_now) */
    unsigned inline_seq;
    double inline_deadline; /* when that one gives up (lmc_now() seconds; 0: never) */
    pthread_t thread;
    pthread_mutex_t mu; /* the queue and the fault */
    pthread_cond_t work, done;
    mpi_req q[QCAP];
    unsigned posted, ran; /* requests queued, requests finished (wrapping counters) */
    int *counts, *displs; /* per-rank scratch, used only by the thread running requests */
    double env_timeout;
    char fault[512];
    pthread_mutex_t p2p_mu; /* the slots below (the caller's threads post and wait) */
    p2p_req p2p[P2P_SLOTS];
    MPI_Datatype chunk_type; /* CHUNK bytes, made at the first message that large */
    int chunk_type_made;
} mpi_impl;

/* The watchdog: LMC_COMM_TIMEOUT, else c->timeout_s (0: wait forever). */
double lmc_mpi_timeout(lmc_comm *c);

lmc_status lmc_mpi_send_start(lmc_comm *c, const void *buf, size_t bytes, int peer, int *req);
lmc_status lmc_mpi_recv_start(lmc_comm *c, void *buf, size_t bytes, int peer, int *req);
lmc_status lmc_mpi_p2p_wait(lmc_comm *c, int req);

#endif
