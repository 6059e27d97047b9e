/* test_mpi_hier.c: the hierarchical communicator (src/dist/hier.c) against
 * MPI_Allreduce, run under mpirun by tests/mpi/test_mpi_hier.sh with
 * LMC_TEST_HIER_GROUPS assigning each rank's group (CPU ranks standing in
 * for chip kinds).
 *
 *   test_mpi_hier check     random buffers of odd sizes (1 to 1M + 7
 *                           floats): integer-valued floats, so every order
 *                           of summation is exact: allreduce and several
 *                           allreduce_start in flight (buckets) must equal
 *                           MPI_Allreduce bit for bit; ZeRO's ranged
 *                           reduce-scatters and all-gathers (random buckets,
 *                           interleaved in flight) MPI_Reduce_scatter in this
 *                           rank's shard and MPI_Allgatherv; allgather,
 *                           gather, broadcast; fractional floats: the same
 *                           bits on every rank, within float rounding of
 *                           MPI's sums; the bytes sent (lmc_hier_sent)
 *                           against the design's identities
 *   test_mpi_hier traffic N one ZeRO-1 step of N floats: the bytes each rank
 *                           sent beside (size-1)/size x bytes
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

/* ---------- ZeRO's ranges: against MPI_Reduce_scatter and MPI_Allgatherv ---------- */

/* every rank's shard of n (lmc_comm_shard over the job) as MPI's counts */
static void shard_counts(size_t n, int *counts, int *displs)
{
    for (int q = 0; q < c->size; q++) {
        size_t b, k;
        lmc_comm_shard(n, c->size, q, &b, &k);
        counts[q] = (int)k, displs[q] = (int)b;
    }
}

/* Buckets: K random cuts of [0, n] (the same on every rank), sorted, so
 * some ranges are empty, some lie inside one shard, some cross several. */
enum { NCUT = 9 };
static void make_cuts(size_t n, size_t *cuts)
{
    rng_state = 0x2545f4914f6cdd1dULL + n;
    cuts[0] = 0, cuts[NCUT - 1] = n;
    for (int i = 1; i < NCUT - 1; i++)
        cuts[i] = rnd() % (n + 1);
    cuts[1] = cuts[2]; /* one empty range at least */
    for (int i = 1; i < NCUT - 1; i++)
        for (int j = i; j > 1 && cuts[j] < cuts[j - 1]; j--) {
            size_t t = cuts[j];
            cuts[j] = cuts[j - 1], cuts[j - 1] = t;
        }
}

/* One ZeRO step's traffic: the reduce-scatter of x and the all-gather of
 * out, bucket by bucket, all in flight at once, interleaved (as ZeRO-3's
 * backward and prefetch interleave); the last waited for first. */
static void zero_ranges(float *x, const float *shard, float *out, size_t n, const size_t *cuts)
{
    int req[2 * NCUT];
    for (int i = 0; i < NCUT - 1; i++) {
        CHECK_MSG(c->ops->reduce_scatter_start(c, x + cuts[i], n, cuts[i], cuts[i + 1], &req[2 * i]) == LMC_OK,
                  "%s", lmc_errmsg());
        CHECK_MSG(c->ops->allgather_start(c, shard, out + cuts[i], n, cuts[i], cuts[i + 1], &req[2 * i + 1]) ==
                  LMC_OK, "%s", lmc_errmsg());
    }
    CHECK(c->ops->wait(c, req[2 * NCUT - 3]) == LMC_OK);
    for (int i = 0; i < 2 * NCUT - 2; i++)
        CHECK(c->ops->wait(c, req[i]) == LMC_OK);
}

/* Integer-valued floats: every order of summation is exact, so the
 * reduce-scatter must give MPI_Reduce_scatter's bits in this rank's shard
 * and the all-gather MPI_Allgatherv's everywhere. Then the same on
 * fractional values: the shard within rounding of MPI's sum (another
 * order), the all-gather bit for bit (a copy). */
static void check_ranges(size_t n)
{
    int *counts = malloc((size_t)c->size * sizeof(int)), *displs = malloc((size_t)c->size * sizeof(int));
    size_t b, k, cuts[NCUT];
    shard_counts(n, counts, displs);
    lmc_comm_shard(n, c->size, c->rank, &b, &k);
    make_cuts(n, cuts);
    float *x = malloc(n * sizeof(float)), *shard = malloc((k + 1) * sizeof(float)), *out = malloc(n * sizeof(float));
    float *rs = malloc((k + 1) * sizeof(float)), *ag = malloc(n * sizeof(float));
    for (int frac = 0; frac < 2; frac++) {
        (frac ? fill_frac : fill_int)(x, n, 7);
        (frac ? fill_frac : fill_int)(shard, k, 8);
        MPI_Reduce_scatter(x, rs, counts, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        MPI_Allgatherv(shard, (int)k, MPI_FLOAT, ag, counts, displs, MPI_FLOAT, MPI_COMM_WORLD);
        for (size_t i = 0; i < n; i++)
            out[i] = 12345.0f; /* stale values must not leak into the gather */
        zero_ranges(x, shard, out, n, cuts);
        double worst = 0, bound = 2.0 * (c->size - 1) * c->size * 1.5 * ldexp(1, -24);
        size_t d = k;
        for (size_t i = 0; i < k; i++) {
            worst = fmax(worst, fabs((double)x[b + i] - rs[i]));
            d = d == k && memcmp(&x[b + i], &rs[i], sizeof(float)) ? i : d;
        }
        if (!frac)
            CHECK_MSG(d == k, "reduce-scatter of %zu floats in %d buckets: shard element %zu is %g, "
                      "MPI_Reduce_scatter says %g", n, NCUT - 1, b + d, d < k ? x[b + d] : 0, d < k ? rs[d] : 0);
        else
            CHECK_MSG(worst <= bound, "fractional reduce-scatter of %zu floats differs from MPI_Reduce_scatter by "
                      "%g (rounding bound %g)", n, worst, bound);
        d = first_diff(out, ag, 0, n);
        CHECK_MSG(d == n, "%s all-gather of %zu floats in %d buckets: element %zu is %g, MPI_Allgatherv says %g",
                  frac ? "fractional" : "integer", n, NCUT - 1, d, d < n ? out[d] : 0, d < n ? ag[d] : 0);
    }
    /* whole: reduce_scatter and allgather in place, gather to the last rank */
    fill_int(x, n, 9);
    MPI_Reduce_scatter(x, rs, counts, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    CHECK(c->ops->reduce_scatter(c, x, n) == LMC_OK);
    CHECK_MSG(first_diff(x + b, rs, 0, k) == k, "reduce_scatter of %zu floats differs from MPI_Reduce_scatter", n);
    memcpy(ag + b, shard, k * sizeof(float)); /* ag: the all-gather's, this rank's shard written in */
    fill_int(x, n, 10);
    memcpy(x + b, shard, k * sizeof(float));
    CHECK(c->ops->allgather(c, x, n) == LMC_OK);
    CHECK_MSG(first_diff(x, ag, 0, n) == n, "allgather of %zu floats differs from MPI_Allgatherv", n);
    memset(out, 0, n * sizeof(float));
    CHECK(c->ops->gather(c, shard, out, n, c->size - 1) == LMC_OK);
    if (c->rank == c->size - 1)
        CHECK_MSG(first_diff(out, ag, 0, n) == n, "gather of %zu floats differs from MPI_Allgatherv", n);
    free(x), free(shard), free(out), free(rs), free(ag), free(counts), free(displs);
}

/* ---------- bytes sent against the formulas ---------- */

/* This rank's group's size and the number of groups, from
 * LMC_TEST_HIER_GROUPS (one group without it). */
static int group_size(int rank, int *ngroups)
{
    const char *s = getenv("LMC_TEST_HIER_GROUPS");
    int gid[256], n = 0, mine = 0, seen[256] = {0};
    *ngroups = 1;
    if (!s)
        return c->size;
    for (const char *p = s; *p && n < 256; p += *p == ',')
        gid[n++] = (int)strtol(p, (char **)&p, 10);
    *ngroups = 0;
    for (int r = 0; r < n; r++) {
        mine += gid[r] == gid[rank];
        *ngroups += !seen[gid[r] & 255]++;
    }
    return mine;
}

/* One ZeRO-1 step of n floats (reduce-scatter of the gradients, all-gather
 * of the parameters, in buckets): the bytes each rank sent, summed over
 * ranks per stage and kind. Exact identities of the design (hier_shard.c):
 * a reduce-scatter's rank sends every element but its shard's once (a flat
 * reduce-scatter's (size - 1) / size of the bytes with equal shards); in
 * each, a group of m ranks sends (m - 1) x the vector inside itself, and
 * every shard crosses to (groups - 1) groups. */
static void traffic(size_t n, int print)
{
    size_t b, k, cuts[NCUT];
    lmc_comm_shard(n, c->size, c->rank, &b, &k);
    make_cuts(n, cuts);
    float *x = malloc(n * sizeof(float)), *shard = malloc((k + 1) * sizeof(float)), *out = malloc(n * sizeof(float));
    fill_int(x, n, 1);
    fill_int(shard, k, 2);
    double g0, x0, g1, x1, g2, x2;
    CHECK(lmc_hier_sent(c, &g0, &x0) == LMC_OK);
    int req[NCUT];
    for (int i = 0; i < NCUT - 1; i++)
        CHECK(c->ops->reduce_scatter_start(c, x + cuts[i], n, cuts[i], cuts[i + 1], &req[i]) == LMC_OK);
    CHECK(c->ops->wait(c, req[NCUT - 2]) == LMC_OK);
    CHECK(lmc_hier_sent(c, &g1, &x1) == LMC_OK);
    for (int i = 0; i < NCUT - 1; i++)
        CHECK(c->ops->allgather_start(c, shard, out + cuts[i], n, cuts[i], cuts[i + 1], &req[i]) == LMC_OK);
    CHECK(c->ops->wait(c, req[NCUT - 2]) == LMC_OK);
    CHECK(lmc_hier_sent(c, &g2, &x2) == LMC_OK);
    double mine[4] = {g1 - g0, x1 - x0, g2 - g1, x2 - x1}, all[4], bytes = 4.0 * n;
    double tot[2] = {mine[0] + mine[1], mine[2] + mine[3]}, most[2];
    MPI_Allreduce(mine, all, 4, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(tot, most, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    int G = 1;
    group_size(c->rank, &G);
    CHECK_MSG(tot[0] == 4.0 * (n - k), "rank %d sent %.0f bytes in a reduce-scatter of %zu floats, not every "
              "element but its shard's once (%.0f)", c->rank, tot[0], n, 4.0 * (n - k));
    for (int i = 0; i < 4; i += 2) {
        const char *what = i ? "all-gather" : "reduce-scatter";
        /* groups of m_g ranks: sum of (m_g - 1) = size - groups */
        CHECK_MSG(all[i] == (c->size - G) * bytes, "%s: the groups sent %.0f bytes inside themselves, not "
                  "(size - groups) x %.0f = %.0f", what, all[i], bytes, (c->size - G) * bytes);
        CHECK_MSG(all[i + 1] == (G - 1) * bytes, "%s: %.0f bytes crossed groups, not (groups - 1) x %.0f = %.0f",
                  what, all[i + 1], bytes, (G - 1) * bytes);
    }
    double flat = (double)(c->size - 1) / c->size * bytes, P = c->size;
    if (print && c->rank == 0)
        printf("%d ranks in %d groups, one ZeRO-1 step of %zu floats (%.3f MB) in %d buckets. Sent per rank "
               "(mean over ranks; the largest rank), beside a flat collective's (size-1)/size x bytes = %.3f MB:\n"
               "  reduce-scatter: %.3f MB (inside groups %.3f + across %.3f); largest %.3f MB\n"
               "  all-gather:     %.3f MB (inside groups %.3f + across %.3f); largest %.3f MB\n"
               "  (the summed ranges this replaces: a leader sent about 2 x 2(g-1)/g x bytes = %.3f MB across "
               "groups per step)\n",
               c->size, G, n, bytes / 1e6, NCUT - 1, flat / 1e6, (all[0] + all[1]) / P / 1e6, all[0] / P / 1e6,
               all[1] / P / 1e6, most[0] / 1e6, (all[2] + all[3]) / P / 1e6, all[2] / P / 1e6, all[3] / P / 1e6,
               most[1] / 1e6, 4.0 * (G - 1) / G * bytes / 1e6);
    free(x), free(shard), free(out);
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
    if (!strcmp(what, "traffic")) {
        traffic(argc > 2 ? strtoul(argv[2], NULL, 10) : (size_t)1 << 20, 1);
        lmc_comm_close(c);
        return test_failures != 0;
    }
    if (!strcmp(what, "name")) {
        if (c->rank == 0)
            printf("%s\n", c->name);
        lmc_comm_close(c);
        return 0;
    }
    check_allreduce();
    check_buckets();
    for (int k = 0; k < NSIZES; k++)
        check_ranges(sizes[k]);
    if (!getenv("LMC_TEST_HIER_SUMMED")) /* summed ranges are not counted */
        for (int k = 2; k < NSIZES; k += 2)
            traffic(sizes[k], 0);
    check_broadcast();
    check_frac();
    int bad = test_failures, total = 0;
    MPI_Allreduce(&bad, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (c->rank == 0)
        printf("%s: %d ranks, %d failures\n", total ? "FAIL" : "ok", c->size, total);
    lmc_comm_close(c);
    return total != 0;
}
