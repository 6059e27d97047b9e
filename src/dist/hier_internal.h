/* hier_internal.h: the hierarchical communicator's state, shared by hier.c
 * (groups, sums, the request queue, host staging) and hier_shard.c (the
 * reduce-scatter and all-gather of ZeRO's ranges). Private to src/dist/. */
#ifndef LMC_HIER_INTERNAL_H
#define LMC_HIER_INTERNAL_H

#include "dist/comm.h"

#define HR_MAX 1024 /* requests in flight at most */
#define HB_MAX 64   /* staging blocks (each at least twice the last: 64 hold any size) */
/* Cross-group messages in flight at most: the MPI communicator's
 * point-to-point slots (P2P_SLOTS in mpi_internal.h). */
#define HX_MAX 64
/* Jobs of at most this many ranks run the true reduce-scatter and
 * all-gather: one request's messages on one rank (at most 2 (size - 1):
 * hier_shard.c) then fit in HX_MAX. Larger jobs sum ranges (hier.c). */
#define HX_RANKS 32

typedef struct {
    float *p;
    size_t cap, used;
    int pinned; /* from the backend's host_alloc */
} stage_block;

typedef enum { HQ_SUM, HQ_RS, HQ_AG } hq_kind;

typedef struct {
    hq_kind kind;
    float *buf;  /* the buffer (sum) or the range (reduce-scatter, all-gather) */
    size_t n;    /* its floats */
    size_t total, begin; /* the range's vector (lmc_comm_shard's n) and where the range starts in it */
    const float *shard;  /* all-gather: this rank's shard of the vector */
    int stage; /* 0: first stage started, 1: second stage started, 2: done */
    int inner, cross; /* the group's last request; the leaders' sum (HQ_SUM) */
    float *host; /* host staging: a device leader's copy of buf (HQ_SUM), the cross-group pieces (hier_shard.c) */
    unsigned x0, nx; /* its cross-group messages: ring slots x0 .. x0 + nx - 1 */
    int xwaited;     /* those messages are complete */
    unsigned seq; /* the request's number (its id is the low 31 bits) */
} hreq;

typedef struct {
    lmc_comm *world; /* MPI over every rank: host collectives, broadcasts, cross-group messages */
    lmc_comm *gmpi;  /* MPI over this rank's group: the group itself (cpu), or what a device group starts on */
    lmc_comm *group; /* the vendor's collective over this rank's group; NULL when alone */
    lmc_comm *cross; /* MPI over the groups' leaders; NULL on other ranks and with one group */
    int ngroups, gid, leader;
    int device; /* this rank's buffers are device memory (an NPU or GPU rank) */
    int staged; /* a device rank that leads its group: the leaders' sums go through host memory */
    hreq q[HR_MAX];
    unsigned posted, done;
    stage_block stage[HB_MAX]; /* host staging for the cross-group stages in flight */
    int nstage;
    /* the pieces (hier_shard.c): per rank its group and its rank in the
     * group; per group g and shard d, owner[g * size + d]: the rank of g
     * that holds g's sum of shard d */
    int *gid_of, *lidx, *gsize, *owner;
    int exact; /* reduce-scatter and all-gather are the true ones (else: sums of ranges) */
    int xring[HX_MAX]; /* the cross-group messages in flight (the world's p2p requests), in order */
    unsigned xposted, xdone;
    double sent_group, sent_cross; /* bytes this rank sent in reduce-scatters and all-gathers */
    char label[128]; /* the communicator's name: "hier (cpu x2 + npu x2)" */
} hier_impl;

static inline hier_impl *lmc_hier_impl(lmc_comm *c) { return c->impl; }

/* hier.c: the request queue. post registers a new request (after starting
 * the earlier ones' next stages) and gives its slot and id; complete_to
 * finishes every request up to seq; sum_start is the hierarchical sum. */
lmc_status lmc_hier_post(lmc_comm *c, const hreq *tmpl, hreq **out, int *req);
lmc_status lmc_hier_complete_to(lmc_comm *c, unsigned seq);
/* starts r's second stage now (at most once) */
lmc_status lmc_hier_advance(lmc_comm *c, hreq *r);
lmc_status lmc_hier_sum_start(lmc_comm *c, float *buf, size_t n, int *req);
/* host staging for n floats, until nothing is in flight */
lmc_status lmc_hier_stage_take(lmc_comm *c, size_t n, float **out);
void lmc_hier_mem_zero(lmc_comm *c, float *p, size_t n);
void lmc_hier_mem_copy(lmc_comm *c, float *dst, const float *src, size_t n);

/* hier_shard.c */
lmc_status lmc_hier_pieces(lmc_comm *c, hier_impl *h, const int *gids);
lmc_status lmc_hier_shard_advance(lmc_comm *c, hreq *r);
lmc_status lmc_hier_shard_finish(lmc_comm *c, hreq *r);
lmc_status lmc_hier_reduce_scatter_start(lmc_comm *c, float *range, size_t n, size_t begin, size_t end, int *req);
lmc_status lmc_hier_allgather_start(lmc_comm *c, const float *shard, float *range, size_t n, size_t begin,
                                    size_t end, int *req);

#endif
