/* test_mpi_hier.c: the hierarchical communicator (src/dist/hier.c) against
 * MPI_Allreduce, run under mpirun by tests/mpi/test_mpi_hier.sh with
 * LMC_TEST_HIER_GROUPS assigning each rank's group (CPU ranks standing in
 * for chip kinds).
 *
 *   test_mpi_hier check     random buffers of odd sizes (1 to 1M + 7
 *                           floats): integer-valued floats, so every order
 *                           of summation is exact, must equal MPI_Allreduce
 *                           bit for bit: allreduce, several allreduce_start
 *                           in flight (buckets), ranged reduce-scatter and
 *                           all-gather (ZeRO), allgather, gather, broadcast;
 *                           fractional floats: every rank ends with the same
 *                           bits, within float rounding of MPI's sum
 *   test_mpi_hier name      prints the communicator lmc_comm_open_job chose
 *   test_mpi_hier bench     (bench/bench_xvendor.sh, groups of one rank each)
 *                           the cross-group stage's time for 1M and 4M floats
 *                           beside the formula 2 (g - 1) / g x bytes / B, B
 *                           measured by a ping-pong between ranks 0 and 1,
 *                           and beside MPI_Allreduce of the same buffer
 */
#include "dist/comm.h"
#include "dist/hier.h"
#include "test.h"

#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <string.h>

static lmc_comm *c;

static uint64_t rng_state;
static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

/* integer-valued floats in [-1000, 1000], different on every rank */
static void fill_int(float *x, size_t n, int salt)
{
    rng_state = 0x9e3779b97f4a7c15ULL * (uint64_t)(c->rank + 1) + (uint64_t)salt;
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((int)(rnd() % 2001) - 1000);
}

static void fill_frac(float *x, size_t n, int salt)
{
    rng_state = 0x51ed2701ULL * (uint64_t)(c->rank + 3) + (uint64_t)salt;
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((double)rnd() / 4294967296.0 - 0.5) * 3.0f;
}

static float *reference(const float *x, size_t n)
{
    float *r = malloc(n * sizeof(float) + 4);
    MPI_Allreduce(x, r, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    return r;
}

static size_t first_diff(const float *a, const float *b, size_t lo, size_t hi)
{
    for (size_t i = lo; i < hi; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)))
            return i;
    return hi;
}

static const size_t sizes[] = {1, 2, 17, 1023, 4099, 100003, ((size_t)1 << 20) + 7};
enum { NSIZES = sizeof sizes / sizeof *sizes };

static void check_allreduce(void)
{
    for (int k = 0; k < NSIZES; k++) {
        size_t n = sizes[k];
        float *x = malloc(n * sizeof(float));
        fill_int(x, n, k);
        float *ref = reference(x, n);
        CHECK(c->ops->allreduce(c, x, n) == LMC_OK);
        size_t d = first_diff(x, ref, 0, n);
        CHECK_MSG(d == n, "allreduce of %zu floats: element %zu is %g, MPI_Allreduce says %g", n, d, d < n ? x[d] : 0,
               d < n ? ref[d] : 0);
        free(x), free(ref);
    }
}

/* Buckets: all sizes started back to back; the last waited for first, then
 * each (already complete) in order. */
static void check_buckets(void)
{
    float *x[NSIZES], *ref[NSIZES];
    int req[NSIZES];
    for (int k = 0; k < NSIZES; k++) {
        x[k] = malloc(sizes[k] * sizeof(float));
        fill_int(x[k], sizes[k], 100 + k);
        ref[k] = reference(x[k], sizes[k]);
    }
    for (int k = 0; k < NSIZES; k++)
        CHECK(c->ops->allreduce_start(c, x[k], sizes[k], &req[k]) == LMC_OK);
    CHECK(c->ops->wait(c, req[NSIZES - 1]) == LMC_OK); /* the last first: the earlier ones complete with it */
    for (int k = 0; k < NSIZES; k++) {
        CHECK(c->ops->wait(c, req[k]) == LMC_OK);
        size_t d = first_diff(x[k], ref[k], 0, sizes[k]);
        CHECK_MSG(d == sizes[k], "bucket %d (%zu floats) in flight with the others: element %zu differs", k, sizes[k], d);
        free(x[k]), free(ref[k]);
    }
}

/* ZeRO's ranges of an n-float vector: reduce-scatter, then all-gather. */
static void check_ranges(size_t n)
{
    size_t cuts[] = {0, n / 3, n / 2 + 5 < n ? n / 2 + 5 : n, n};
    float *full = malloc(n * sizeof(float)), *ref;
    fill_int(full, n, 7);
    ref = reference(full, n);
    int req[3];
    for (int i = 0; i < 3; i++)
        CHECK_MSG(c->ops->reduce_scatter_start(c, full + cuts[i], n, cuts[i], cuts[i + 1], &req[i]) == LMC_OK, "%s",
                  lmc_errmsg());
    for (int i = 0; i < 3; i++)
        CHECK(c->ops->wait(c, req[i]) == LMC_OK);
    size_t b, k;
    lmc_comm_shard(n, c->size, c->rank, &b, &k);
    size_t d = first_diff(full, ref, b, b + k);
    CHECK_MSG(d == b + k, "reduce-scatter of %zu floats in 3 ranges: own shard element %zu differs", n, d);
    /* all-gather ranges from the shards (ref's values in each owner's shard) */
    float *shard = malloc((k ? k : 1) * sizeof(float)), *out = malloc(n * sizeof(float));
    memcpy(shard, ref + b, k * sizeof(float));
    for (size_t i = 0; i < n; i++)
        out[i] = 12345.0f; /* stale values must not leak into the gather */
    for (int i = 0; i < 3; i++)
        CHECK(c->ops->allgather_start(c, shard, out + cuts[i], n, cuts[i], cuts[i + 1], &req[i]) == LMC_OK);
    for (int i = 0; i < 3; i++)
        CHECK(c->ops->wait(c, req[i]) == LMC_OK);
    d = first_diff(out, ref, 0, n);
    CHECK_MSG(d == n, "all-gather of %zu floats in 3 ranges: element %zu differs", n, d);
    /* whole: allgather in place, gather to the last rank */
    fill_int(full, n, 9);
    memcpy(full + b, ref + b, k * sizeof(float));
    CHECK(c->ops->allgather(c, full, n) == LMC_OK);
    d = first_diff(full, ref, 0, n);
    CHECK_MSG(d == n, "allgather of %zu floats: element %zu differs", n, d);
    memset(out, 0, n * sizeof(float));
    CHECK(c->ops->gather(c, shard, out, n, c->size - 1) == LMC_OK);
    if (c->rank == c->size - 1) {
        d = first_diff(out, ref, 0, n);
        CHECK_MSG(d == n, "gather of %zu floats: element %zu differs", n, d);
    }
    free(full), free(ref), free(shard), free(out);
}

static void check_broadcast(void)
{
    size_t n = 1001;
    float *x = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
    int root = c->size - 1, save = c->rank;
    fill_int(x, n, 3);
    c->rank = root; /* the root's values */
    fill_int(want, n, 3);
    c->rank = save;
    CHECK(c->ops->broadcast(c, x, n * sizeof(float), root) == LMC_OK);
    CHECK_MSG(first_diff(x, want, 0, n) == n, "broadcast from rank %d differs", root);
    double v[2] = {c->rank, 1.0};
    CHECK(c->ops->allreduce_host(c, v, 2, 0) == LMC_OK);
    CHECK_MSG(v[0] == c->size * (c->size - 1) / 2.0 && v[1] == c->size, "allreduce_host: %g %g", v[0], v[1]);
    free(x), free(want);
}

/* Fractional values: the sum's order differs from MPI's, so compare within
 * float rounding; every rank must hold the same bits. */
static void check_frac(void)
{
    size_t n = 100003;
    float *x = malloc(n * sizeof(float)), *all = malloc((size_t)c->size * n * sizeof(float));
    fill_frac(x, n, 11);
    float *ref = reference(x, n);
    CHECK(c->ops->allreduce(c, x, n) == LMC_OK);
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)x[i] - ref[i]));
    /* each of the two sums of c->size addends (each <= 1.5) is within (size - 1) roundings of 2^-24 x the sum of magnitudes */
    double bound = 2.0 * (c->size - 1) * c->size * 1.5 * ldexp(1, -24);
    CHECK_MSG(worst <= bound, "fractional allreduce differs from MPI's by %g (rounding bound %g)", worst, bound);
    MPI_Allgather(x, (int)n, MPI_FLOAT, all, (int)n, MPI_FLOAT, MPI_COMM_WORLD);
    for (int r = 1; r < c->size; r++)
        CHECK_MSG(first_diff(all + (size_t)r * n, all, 0, n) == n, "rank %d holds other bits than rank 0", r);
    free(x), free(all), free(ref);
}

static double median(double *t, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            double x = t[j];
            t[j] = t[j - 1], t[j - 1] = x;
        }
    return t[n / 2];
}

/* Seconds for a ping-pong of n floats between ranks 0 and 1, halved. */
static double one_way(float *x, size_t n)
{
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    if (c->rank == 0) {
        MPI_Send(x, (int)n, MPI_FLOAT, 1, 7, MPI_COMM_WORLD);
        MPI_Recv(x, (int)n, MPI_FLOAT, 1, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else if (c->rank == 1) {
        MPI_Recv(x, (int)n, MPI_FLOAT, 0, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Send(x, (int)n, MPI_FLOAT, 0, 7, MPI_COMM_WORLD);
    }
    double t = (MPI_Wtime() - t0) / 2;
    MPI_Bcast(&t, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    return t;
}

static void bench(void)
{
    lmc_comm *plain = NULL; /* the peer: lmc's MPI communicator over the same ranks */
    if (lmc_comm_open("mpi", &plain) != LMC_OK) {
        fprintf(stderr, "FAIL opening the MPI communicator: %s\n", lmc_errmsg());
        return;
    }
    enum { REPS = 7 };
    size_t sizes_b[] = {(size_t)1 << 20, (size_t)4 << 20};
    for (int k = 0; k < 2; k++) {
        size_t n = sizes_b[k];
        float *x = malloc(n * sizeof(float));
        fill_frac(x, n, k);
        double p2p[REPS], hier[REPS], mpi[REPS], lm[REPS];
        for (int i = 0; i < REPS; i++) {
            p2p[i] = one_way(x, n);
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            c->ops->allreduce(c, x, n);
            double t = MPI_Wtime() - t0;
            MPI_Allreduce(&t, &hier[i], 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            MPI_Barrier(MPI_COMM_WORLD);
            t0 = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            t = MPI_Wtime() - t0;
            MPI_Allreduce(&t, &mpi[i], 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            MPI_Barrier(MPI_COMM_WORLD);
            t0 = MPI_Wtime();
            plain->ops->allreduce(plain, x, n);
            t = MPI_Wtime() - t0;
            MPI_Allreduce(&t, &lm[i], 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            for (size_t j = 0; j < n; j++) /* keep the values bounded */
                x[j] *= 1.0f / (float)c->size;
        }
        double bw = n * sizeof(float) / median(p2p, REPS), g = c->size;
        double formula = 2 * (g - 1) / g * n * sizeof(float) / bw;
        double h = median(hier, REPS), m = median(mpi, REPS), l = median(lm, REPS);
        if (c->rank == 0)
            printf("cross-group stage, %zu floats over %d leaders: measured %.2f ms, formula 2(g-1)/g x %.1f MB / "
                   "%.2f GB/s = %.2f ms (measured / formula %.2f); peers: lmc's MPI communicator %.2f ms (hier / it "
                   "%.2f), one MPI_Allreduce %.2f ms\n", n, c->size, h * 1e3, n * 4 / 1e6, bw / 1e9, formula * 1e3,
                   h / formula, l * 1e3, h / l, m * 1e3);
        free(x);
    }
    lmc_comm_close(plain);
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "check";
    test_current = "hier";
    if (lmc_comm_open_job("auto", "cpu", &c) != LMC_OK) {
        fprintf(stderr, "FAIL opening: %s\n", lmc_errmsg());
        return 1;
    }
    if (!strcmp(what, "bench")) {
        bench();
        lmc_comm_close(c);
        return 0;
    }
    if (!strcmp(what, "name")) {
        if (c->rank == 0)
            printf("%s\n", c->name);
        lmc_comm_close(c);
        return 0;
    }
    check_allreduce();
    check_buckets();
    check_ranges(1);
    check_ranges(4099);
    check_ranges(((size_t)1 << 20) + 7);
    check_broadcast();
    check_frac();
    int bad = test_failures, total = 0;
    MPI_Allreduce(&bad, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (c->rank == 0)
        printf("%s: %d ranks, %d failures\n", total ? "FAIL" : "ok", c->size, total);
    lmc_comm_close(c);
    return total != 0;
}
