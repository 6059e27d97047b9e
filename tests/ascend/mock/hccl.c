/* hccl.c: the mock's HCCL, over MPI (each lmc rank is one process of an
 * mpirun): each collective is queued on its stream and runs, as the MPI
 * call on the device memory's host copy, when the stream runs. Checked:
 * buffers are device memory of the size the count says, the root info is
 * one HcclGetRootInfo made, nRanks and rank are MPI's (or, for a
 * communicator of some of the processes, as a mixed-vendor job's NPU group
 * makes, each rank in 0..nRanks-1 joins once and the root info's maker is
 * rank 0: the ranks meet at the maker's process, as HCCL's rendezvous
 * does over TCP), every rank calls
 * the same collectives in the same order (MPI's own rule: a mismatch
 * hangs or fails, as HCCL does). Built without MPI, a world of one rank. */
#include "mock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef MOCK_HAVE_MPI
#include <mpi.h>
#endif

#define ROOT_BYTES 4108
#define ROOT_MAGIC 0x68636d6bu

typedef struct {
    char internal[ROOT_BYTES];
} root_info;

typedef struct {
    uint32_t rank, size;
#ifdef MOCK_HAVE_MPI
    MPI_Comm mc;
#endif
} mock_comm;

enum { C_ALLREDUCE, C_RSCATTER, C_ALLGATHER, C_REDUCE, C_BCAST, C_SEND, C_RECV };

typedef struct {
    int kind, dtype;
    void *send, *recv;
    uint64_t count;
    uint32_t root;
    mock_comm *c;
} coll;

const char *HcclGetErrorString(int code) { return code ? "mock HCCL error (see aclGetRecentErrMsg)" : "success"; }

static size_t hsize(int dtype) { return dtype == 4 ? 4 : dtype == 7 ? 1 : 0; /* FP32, UINT8 */ }

int HcclGetRootInfo(root_info *r)
{
    static uint32_t made;
    memset(r, 0, sizeof *r);
    uint32_t magic = ROOT_MAGIC, pid = (uint32_t)getpid(), seq = made++;
    int32_t world_rank = 0;
#ifdef MOCK_HAVE_MPI
    int inited = 0;
    MPI_Initialized(&inited);
    if (inited)
        MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
#endif
    memcpy(r->internal, &magic, 4);
    memcpy(r->internal + 4, &pid, 4);
    memcpy(r->internal + 8, &world_rank, 4);
    memcpy(r->internal + 12, &seq, 4);
    return 0;
}

#ifdef MOCK_HAVE_MPI
/* The rendezvous of a communicator of n of the world's processes: each
 * rank sends its rank to the maker's process (HCCL rank 0), which answers
 * with every rank's world rank; then an MPI communicator of just those. */
static int sub_comm(uint32_t n, uint32_t rank, const root_info *r, MPI_Comm *mc)
{
    int32_t root_world;
    uint32_t seq;
    int me, tag = 0;
    memcpy(&root_world, r->internal + 8, 4);
    memcpy(&seq, r->internal + 12, 4);
    tag = 4242 + (int)(seq % 1000);
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    if ((rank == 0) != (me == root_world))
        return mock_err(5, "HcclCommInitRootInfo: rank %u, but the root info was made by world process %d (it must "
                        "be rank 0)", rank, root_world);
    int *world = calloc(n, sizeof(int));
    if (rank == 0) {
        for (uint32_t i = 0; i < n; i++)
            world[i] = -1;
        world[0] = me;
        for (uint32_t i = 1; i < n; i++) {
            int got;
            MPI_Status st;
            MPI_Recv(&got, 1, MPI_INT, MPI_ANY_SOURCE, tag, MPI_COMM_WORLD, &st);
            if (got <= 0 || (uint32_t)got >= n || world[got] >= 0) {
                free(world);
                return mock_err(5, "HcclCommInitRootInfo: world process %d joined as rank %d of %u (taken or out of "
                                "range)", st.MPI_SOURCE, got, n);
            }
            world[got] = st.MPI_SOURCE;
        }
        for (uint32_t i = 1; i < n; i++)
            MPI_Send(world, (int)n, MPI_INT, world[i], tag, MPI_COMM_WORLD);
    } else {
        int mine = (int)rank;
        MPI_Send(&mine, 1, MPI_INT, root_world, tag, MPI_COMM_WORLD);
        MPI_Recv(world, (int)n, MPI_INT, root_world, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
    MPI_Group wg, g;
    MPI_Comm_group(MPI_COMM_WORLD, &wg);
    MPI_Group_incl(wg, (int)n, world, &g);
    int e = MPI_Comm_create_group(MPI_COMM_WORLD, g, tag, mc);
    MPI_Group_free(&g);
    MPI_Group_free(&wg);
    free(world);
    return e == MPI_SUCCESS ? 0 : mock_err(5, "HcclCommInitRootInfo: MPI_Comm_create_group failed (%d)", e);
}
#endif

int HcclCommInitRootInfo(uint32_t n, const root_info *r, uint32_t rank, void **out)
{
    uint32_t magic;
    memcpy(&magic, r->internal, 4);
    if (magic != ROOT_MAGIC)
        return mock_err(5, "HcclCommInitRootInfo: the root info was not made by HcclGetRootInfo (broadcast it from "
                        "rank 0 to every rank)");
    int world = 1, me = 0;
#ifdef MOCK_HAVE_MPI
    int inited = 0;
    MPI_Initialized(&inited);
    if (inited) {
        MPI_Comm_size(MPI_COMM_WORLD, &world);
        MPI_Comm_rank(MPI_COMM_WORLD, &me);
    }
#endif
    int part = (int)n < world && rank < n; /* a communicator of some of the processes */
    if (!part && ((int)n != world || (int)rank != me))
        return mock_err(5, "HcclCommInitRootInfo: nRanks %u, rank %u, but this is rank %d of %d", n, rank, me, world);
    mock_comm *c = calloc(1, sizeof *c);
    c->rank = rank;
    c->size = n;
#ifdef MOCK_HAVE_MPI
    if (part && n > 1 && sub_comm(n, rank, r, &c->mc)) {
        free(c);
        return 5;
    }
    if (inited && !part)
        MPI_Comm_dup(MPI_COMM_WORLD, &c->mc);
#endif
    *out = c;
    return 0;
}

int HcclCommDestroy(void *comm)
{
    mock_comm *c = comm;
#ifdef MOCK_HAVE_MPI
    int fin = 0;
    MPI_Finalized(&fin);
    if (c && c->size > 1 && !fin)
        MPI_Comm_free(&c->mc);
#endif
    free(c);
    return 0;
}

static void *host_of(void *dev, size_t bytes, const char *what)
{
    void *h = mock_dev((uint64_t)(uintptr_t)dev, bytes, what);
    if (!h)
        mock_task_fail("%s", aclGetRecentErrMsg());
    return h;
}

static void coll_run(void *p)
{
    coll *k = p;
    size_t es = hsize(k->dtype), n = (size_t)k->count, R = k->c->size;
    static const char *const names[] = {"HcclAllReduce", "HcclReduceScatter", "HcclAllGather", "HcclReduce",
                                        "HcclBroadcast", "HcclSend", "HcclRecv"};
    const char *what = names[k->kind];
    size_t in_n = k->kind == C_RSCATTER ? n * R : n, out_n = k->kind == C_ALLGATHER ? n * R : n;
    void *s = k->send ? host_of(k->send, in_n * es, what) : NULL;
    void *r = k->recv ? host_of(k->recv, out_n * es, what) : NULL;
    if ((k->send && !s) || (k->recv && !r))
        return;
    if (R == 1) { /* a world of one: every collective copies */
        if (s && r && s != r)
            memmove(r, s, (k->kind == C_RSCATTER ? n : in_n) * es);
        return;
    }
#ifdef MOCK_HAVE_MPI
    MPI_Datatype t = es == 4 ? MPI_FLOAT : MPI_BYTE;
    MPI_Comm mc = k->c->mc;
    int e = MPI_SUCCESS;
    switch (k->kind) {
    case C_ALLREDUCE:
        e = MPI_Allreduce(s == r ? MPI_IN_PLACE : s, r, (int)n, t, MPI_SUM, mc);
        break;
    case C_RSCATTER:
        e = MPI_Reduce_scatter_block(s, r, (int)n, t, MPI_SUM, mc);
        break;
    case C_ALLGATHER:
        e = MPI_Allgather(s, (int)n, t, r, (int)n, t, mc);
        break;
    case C_REDUCE:
        e = MPI_Reduce(k->c->rank == k->root && s == r ? MPI_IN_PLACE : s, r, (int)n, t, MPI_SUM, (int)k->root, mc);
        break;
    case C_BCAST:
        e = MPI_Bcast(s, (int)n, t, (int)k->root, mc);
        break;
    case C_SEND:
        e = MPI_Send(s, (int)n, t, (int)k->root, 0, mc);
        break;
    default:
        e = MPI_Recv(r, (int)n, t, (int)k->root, 0, mc, MPI_STATUS_IGNORE);
        break;
    }
    if (e != MPI_SUCCESS)
        mock_task_fail("%s: MPI error %d", what, e);
#else
    mock_task_fail("%s: %zu ranks but the mock was built without MPI", what, R);
#endif
}

static int post(int kind, void *send, void *recv, uint64_t count, int dtype, uint32_t root, void *comm, void *stream,
                const char *what)
{
    mock_comm *c = comm;
    if (!c)
        return mock_err(5, "%s: NULL communicator", what);
    if (!hsize(dtype))
        return mock_err(5, "%s: data type %d is not implemented by the mock (FP32, UINT8)", what, dtype);
    if ((kind == C_REDUCE || kind == C_BCAST || kind == C_SEND || kind == C_RECV) && root >= c->size)
        return mock_err(5, "%s: rank %u is not in a communicator of %u", what, root, c->size);
    if ((send && !mock_dev((uint64_t)(uintptr_t)send, 1, what)) || (recv && !mock_dev((uint64_t)(uintptr_t)recv, 1, what)))
        return 5; /* a host buffer: the message says which */
    coll *k = malloc(sizeof *k);
    *k = (coll){kind, dtype, send, recv, count, root, c};
    return mock_enqueue(stream, coll_run, k, free, what) ? 5 : 0;
}

int HcclAllReduce(void *send, void *recv, uint64_t count, int dtype, int op, void *comm, void *stream)
{
    if (op != 0)
        return mock_err(5, "HcclAllReduce: the mock implements sum only");
    return post(C_ALLREDUCE, send, recv, count, dtype, 0, comm, stream, "HcclAllReduce");
}

int HcclReduceScatter(void *send, void *recv, uint64_t count, int dtype, int op, void *comm, void *stream)
{
    return post(C_RSCATTER, send, recv, count, dtype, 0, comm, stream, "HcclReduceScatter");
}

int HcclAllGather(void *send, void *recv, uint64_t count, int dtype, void *comm, void *stream)
{
    return post(C_ALLGATHER, send, recv, count, dtype, 0, comm, stream, "HcclAllGather");
}

int HcclReduce(void *send, void *recv, uint64_t count, int dtype, int op, uint32_t root, void *comm, void *stream)
{
    return post(C_REDUCE, send, recv, count, dtype, root, comm, stream, "HcclReduce");
}

int HcclBroadcast(void *buf, uint64_t count, int dtype, uint32_t root, void *comm, void *stream)
{
    return post(C_BCAST, buf, buf, count, dtype, root, comm, stream, "HcclBroadcast");
}

int HcclSend(void *send, uint64_t count, int dtype, uint32_t dest, void *comm, void *stream)
{
    return post(C_SEND, send, NULL, count, dtype, dest, comm, stream, "HcclSend");
}

int HcclRecv(void *recv, uint64_t count, int dtype, uint32_t src, void *comm, void *stream)
{
    return post(C_RECV, NULL, recv, count, dtype, src, comm, stream, "HcclRecv");
}
