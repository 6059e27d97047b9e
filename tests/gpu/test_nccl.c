/* test_nccl.c: the NCCL communicator on one GPU (a world of one rank, or
 * every rank of an mpirun on a multi-GPU node): every collective keeps the
 * data where the lmc_comm_shard layout says, including sizes that are not a
 * whole number of blocks (the staged path) and more than one staging chunk;
 * and a collective enqueued right after backend kernels sees their results
 * (the legacy-stream ordering nccl.c relies on); ranged non-blocking
 * reduce_scatter, gather, host collectives and the busy_s statistic.
 * Exits 0 with a "skip" line without a GPU or without NCCL. */
#include "backend/backend.h"
#include "dist/comm.h"
#include "test.h"

#include <stdint.h>

static lmc_backend *GPU;
static lmc_comm *COMM;

static float value(size_t i, int rank) { return (float)((i * 7 + 3) % 1000) * 0.25f + (float)rank; }

/* h = this rank's values again */
static float *h_orig(float *h, size_t n, int rank)
{
    for (size_t i = 0; i < n; i++)
        h[i] = value(i, rank);
    return h;
}

static void t_collectives(void)
{
    int R = COMM->size, me = COMM->rank;
    size_t sizes[] = {1, 15, 16, 17, 1000, (size_t)1 << 20, ((size_t)16 << 20) + 5};
    for (int si = 0; si < 7; si++) {
        size_t n = sizes[si];
        float *h = malloc(n * 4), *got = malloc(n * 4);
        for (size_t i = 0; i < n; i++)
            h[i] = value(i, me);
        float *d = GPU->ops->alloc(GPU, n * 4);
        double ranks_sum = (double)R * (R - 1) / 2; /* sum over ranks of the rank term */

        GPU->ops->upload(GPU, d, h, n * 4);
        CHECK_OK(COMM->ops->allreduce(COMM, d, n));
        GPU->ops->download(GPU, got, d, n * 4);
        size_t bad = 0;
        for (size_t i = 0; i < n; i++)
            bad += got[i] != (float)(R * (double)value(i, 0) + ranks_sum);
        CHECK_MSG(!bad, "allreduce n=%zu: %zu wrong", n, bad);

        /* reduce_scatter: my shard is the sum, after backend kernels still in
         * flight doubled the buffer (ordering) */
        GPU->ops->upload(GPU, d, h, n * 4);
        for (int k = 0; k < 4; k++)
            GPU->ops->scale(GPU, d, k == 0 ? 2.0f : 1.0f, n);
        CHECK_OK(COMM->ops->reduce_scatter(COMM, d, n));
        GPU->ops->download(GPU, got, d, n * 4);
        size_t b0, cnt;
        lmc_comm_shard(n, R, me, &b0, &cnt);
        bad = 0;
        for (size_t i = b0; i < b0 + cnt; i++)
            bad += got[i] != (float)(2.0 * (R * (double)value(i, 0) + ranks_sum));
        CHECK_MSG(!bad, "reduce_scatter n=%zu: %zu of %zu wrong in shard %d", n, bad, cnt, me);

        /* allgather: every shard from its owner */
        for (size_t i = 0; i < n; i++)
            h[i] = -1.0f;
        lmc_comm_shard(n, R, me, &b0, &cnt);
        for (size_t i = b0; i < b0 + cnt; i++)
            h[i] = value(i, 0) * 3.0f;
        GPU->ops->upload(GPU, d, h, n * 4);
        CHECK_OK(COMM->ops->allgather(COMM, d, n));
        GPU->ops->download(GPU, got, d, n * 4);
        bad = 0;
        for (size_t i = 0; i < n; i++)
            bad += got[i] != value(i, 0) * 3.0f;
        CHECK_MSG(!bad, "allgather n=%zu: %zu wrong", n, bad);

        /* ranged, non-blocking reduce_scatter (ZeRO buckets): two ranges in
         * flight, waited in order; my shard's part of each holds the sum */
        GPU->ops->upload(GPU, d, h_orig(h, n, me), n * 4);
        int r1 = -1, r2 = -1;
        size_t cut = n / 3;
        CHECK_OK(COMM->ops->reduce_scatter_start(COMM, d, n, 0, cut, &r1));
        CHECK_OK(COMM->ops->reduce_scatter_start(COMM, d + cut, n, cut, n, &r2));
        CHECK_OK(COMM->ops->wait(COMM, r1));
        CHECK_OK(COMM->ops->wait(COMM, r2));
        GPU->ops->download(GPU, got, d, n * 4);
        lmc_comm_shard(n, R, me, &b0, &cnt);
        bad = 0;
        for (size_t i = b0; i < b0 + cnt; i++)
            bad += got[i] != (float)(R * (double)value(i, 0) + ranks_sum);
        CHECK_MSG(!bad, "reduce_scatter_start n=%zu: %zu of %zu wrong in shard %d", n, bad, cnt, me);

        /* gather: every rank's shard into root 0's full buffer */
        float *full = GPU->ops->alloc(GPU, n * 4);
        for (size_t i = 0; i < n; i++)
            h[i] = value(i, 0) * 5.0f;
        GPU->ops->upload(GPU, d, h, n * 4);
        CHECK_OK(COMM->ops->gather(COMM, d + b0, full, n, 0));
        if (me == 0) {
            GPU->ops->download(GPU, got, full, n * 4);
            bad = 0;
            for (size_t i = 0; i < n; i++)
                bad += got[i] != value(i, 0) * 5.0f;
            CHECK_MSG(!bad, "gather n=%zu: %zu wrong at the root", n, bad);
        }
        GPU->ops->free(GPU, full);

        /* non-blocking allreduce and broadcast */
        int req = -1;
        GPU->ops->upload(GPU, d, h, n * 4);
        CHECK_OK(COMM->ops->allreduce_start(COMM, d, n, &req));
        CHECK_OK(COMM->ops->wait(COMM, req));
        CHECK_OK(COMM->ops->broadcast(COMM, d, n * 4, 0));
        GPU->ops->free(GPU, d);
        free(h), free(got);
    }
    double x[2] = {1.0, (double)me};
    CHECK_OK(COMM->ops->allreduce_host(COMM, x, 2, 0));
    CHECK(x[0] == (double)R);
    int *all = malloc(sizeof(int) * R);
    CHECK_OK(COMM->ops->allgather_host(COMM, &me, all, sizeof me));
    for (int r = 0; r < R; r++)
        CHECK(all[r] == r);
    free(all);
    CHECK_OK(COMM->ops->barrier(COMM));
    CHECK_ERR(COMM->ops->wait(COMM, 12345), LMC_EINVAL, "not in flight");
    CHECK_MSG(COMM->busy_s > 0, "busy_s = %g after many collectives", COMM->busy_s);
    printf("nccl: %.3f s busy in collectives\n", COMM->busy_s);
}

int main(void)
{
    if (lmc_comm_open("nccl", &COMM) != LMC_OK) {
        printf("skip: %s\n", lmc_errmsg());
        return 0;
    }
    /* the backend opened after the communicator, as the trainer does: NCCL
     * binds to the backend's device at the first collective, whichever
     * device that is (LMC_TEST_NCCL_DEVICE=N picks one on a multi-GPU node;
     * default: this process's local rank) */
    const char *lr = getenv("OMPI_COMM_WORLD_LOCAL_RANK"), *pick = getenv("LMC_TEST_NCCL_DEVICE");
    char dev[32];
    snprintf(dev, sizeof dev, "cuda:%d", pick ? atoi(pick) : lr ? atoi(lr) : 0);
    if (lmc_backend_open(dev, 0, &GPU) != LMC_OK) {
        printf("skip: %s\n", lmc_errmsg());
        lmc_comm_close(COMM);
        return 0;
    }
    printf("nccl: rank %d of %d on %s\n", COMM->rank, COMM->size, GPU->name);
    RUN(t_collectives);
    lmc_backend_close(GPU);
    lmc_comm_close(COMM);
    return test_summary();
}
