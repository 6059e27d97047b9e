/* single.c: the one-process communicator (all collectives are no-ops). */
#include "dist/comm.h"

#include <stdlib.h>
#include <string.h>

static lmc_status nop_buf(lmc_comm *c, float *buf, size_t n) { return LMC_OK; }
static lmc_status nop_start(lmc_comm *c, float *buf, size_t n, int *req)
{
    *req = 0;
    return LMC_OK;
}
static lmc_status nop_range(lmc_comm *c, float *buf, size_t n, size_t begin, size_t end, int *req)
{
    *req = 0;
    return LMC_OK;
}
static lmc_status copy_range(lmc_comm *c, const float *shard, float *range, size_t n, size_t begin, size_t end,
                             int *req)
{
    *req = 0;
    if (end > begin)
        memmove(range, shard + begin, (end - begin) * sizeof(float));
    return LMC_OK;
}
static lmc_status nop_wait(lmc_comm *c, int req) { return LMC_OK; }
static lmc_status copy_shard(lmc_comm *c, const float *shard, float *full, size_t n, int root)
{
    if (shard != full)
        memmove(full, shard, n * sizeof(float));
    return LMC_OK;
}
static lmc_status copy_all(lmc_comm *c, const float *send, const size_t *scount, float *recv, const size_t *rcount)
{
    if (scount[0] != rcount[0])
        return lmc_err(LMC_EINVAL, "alltoallv: sends %zu floats to itself but expects %zu", scount[0], rcount[0]);
    if (send != recv && scount[0])
        memmove(recv, send, scount[0] * sizeof(float)); /* host memory: a single process moves nothing otherwise */
    return LMC_OK;
}
static void nop_abort(lmc_comm *c, const char *why) {}
static lmc_status nop_bcast(lmc_comm *c, void *buf, size_t bytes, int root) { return LMC_OK; }
static lmc_status nop_host(lmc_comm *c, double *x, int n, int op_max) { return LMC_OK; }
static lmc_status copy_gather(lmc_comm *c, const void *in, void *out, size_t bytes)
{
    memmove(out, in, bytes);
    return LMC_OK;
}
static lmc_status nop_barrier(lmc_comm *c) { return LMC_OK; }
/* one rank has no one to send to: point to point is for pipeline stages */
static lmc_status no_peer(const char *what, int peer)
{
    return lmc_err(LMC_EUNSUPPORTED, "%s rank %d: the single-process communicator has no other rank", what, peer);
}
static lmc_status no_send(lmc_comm *c, const void *buf, size_t bytes, int peer, int *req)
{
    *req = -1;
    return no_peer("send to", peer);
}
static lmc_status no_recv(lmc_comm *c, void *buf, size_t bytes, int peer, int *req)
{
    *req = -1;
    return no_peer("recv from", peer);
}
static lmc_status no_p2p_wait(lmc_comm *c, int req)
{
    return lmc_err(LMC_EINVAL, "p2p_wait: request %d is not a send or receive in flight (single process)", req);
}
static void single_destroy(lmc_comm *c) { free(c); }
static lmc_status single_split(lmc_comm *c, int color, int key, lmc_comm **out) { return lmc_comm_single(out); }

static const lmc_comm_ops single_ops = {
    .allreduce = nop_buf,
    .allreduce_start = nop_start,
    .reduce_scatter_start = nop_range,
    .allgather_start = copy_range,
    .wait = nop_wait,
    .reduce_scatter = nop_buf,
    .allgather = nop_buf,
    .gather = copy_shard,
    .broadcast = nop_bcast,
    .allreduce_host = nop_host,
    .allgather_host = copy_gather,
    .barrier = nop_barrier,
    .send_start = no_send,
    .recv_start = no_recv,
    .p2p_wait = no_p2p_wait,
    .split = single_split,
    .alltoallv = copy_all,
    .abort = nop_abort,
    .destroy = single_destroy,
};

lmc_status lmc_comm_single(lmc_comm **out)
{
    lmc_comm *c = calloc(1, sizeof *c);
    if (!c)
        return lmc_err(LMC_ENOMEM, "out of memory");
    c->ops = &single_ops;
    c->name = "single";
    c->size = 1;
    *out = c;
    return LMC_OK;
}

void lmc_comm_close(lmc_comm *c)
{
    if (c)
        c->ops->destroy(c);
}
