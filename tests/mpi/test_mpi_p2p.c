/* test_mpi_p2p.c: the MPI communicator's point to point, run under mpirun by
 * tests/mpi/test_mpi_p2p.sh (any number of ranks >= 2).
 *
 *   test_mpi_p2p ring MB     every rank sends MB (+ 3 bytes) to each
 *                            neighbour and receives from each, sends and
 *                            receives posted in opposite orders on even and
 *                            odd ranks, while a collective is in flight; on
 *                            the world and on a split of it; contents checked
 *   test_mpi_p2p slots       the 65th request in flight fails clearly; bad
 *                            peers and requests fail on the caller alone
 *   test_mpi_p2p stuck recv|send MB
 *                            rank 0 waits for rank 1, which never posts the
 *                            match: the watchdog (LMC_COMM_TIMEOUT) must fail
 *                            the wait in time; prints "watchdog after X s: msg"
 *   test_mpi_p2p big         one message over INT_MAX bytes (2 GiB + 5, in
 *                            pieces) from rank 0 to rank 1 (needs ~4.3 GB)
 */
#include "dist/comm.h"
#include "test.h"

#include <stdint.h>
#include <unistd.h>

static lmc_comm *world;

static unsigned char pattern(int from, int to, int round, size_t i)
{
    return (unsigned char)(i * 131 + (size_t)from * 17 + (size_t)to * 5 + (size_t)round * 29 + (i >> 12));
}

static void fill(unsigned char *b, size_t n, int from, int to, int round)
{
    for (size_t i = 0; i < n; i++)
        b[i] = pattern(from, to, round, i);
}

static size_t first_bad(const unsigned char *b, size_t n, int from, int to, int round)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != pattern(from, to, round, i))
            return i;
    return n;
}

/* One round on c: to the right and to the left neighbour, from both. Each
 * pair of ranks keeps one order per direction (messages between two ranks
 * arrive in the order sent); which of sends and receives is posted first,
 * and the order of the waits, alternate with the rank. */
static void ring_round(lmc_comm *c, size_t n, int round, unsigned char **out, unsigned char **in)
{
    int r = c->rank, right = (r + 1) % c->size, left = (r + c->size - 1) % c->size, req[4] = {-1, -1, -1, -1};
    fill(out[0], n, r, right, round);
    fill(out[1], n, r, left, round);
    memset(in[0], 0, n), memset(in[1], 0, n);
    int sends_first = r % 2 == 0;
    for (int k = 0; k < 2; k++) {
        if (k == !sends_first) {
            CHECK_OK(c->ops->send_start(c, out[0], n, right, &req[0]));
            CHECK_OK(c->ops->send_start(c, out[1], n, left, &req[1]));
        } else {
            CHECK_OK(c->ops->recv_start(c, in[0], n, left, &req[2]));
            CHECK_OK(c->ops->recv_start(c, in[1], n, right, &req[3]));
        }
    }
    for (int k = 0; k < 4; k++)
        CHECK_OK(c->ops->p2p_wait(c, req[sends_first ? k : 3 - k]));
    size_t a = first_bad(in[0], n, left, r, round), b = first_bad(in[1], n, right, r, round);
    CHECK_MSG(a == n, "rank %d round %d: from the left (%d): byte %zu of %zu differs", r, round, left, a, n);
    CHECK_MSG(b == n, "rank %d round %d: from the right (%d): byte %zu of %zu differs", r, round, right, b, n);
}

/* Three rounds, a collective in flight meanwhile (it is not queued behind). */
static void ring(lmc_comm *c, size_t n)
{
    unsigned char *out[2] = {malloc(n), malloc(n)}, *in[2] = {malloc(n), malloc(n)};
    size_t nf = 1 << 20;
    float *f = malloc(nf * sizeof(float));
    CHECK(out[0] && out[1] && in[0] && in[1] && f);
    for (size_t i = 0; i < nf; i++)
        f[i] = (float)(i % 7) + (float)c->rank;
    int ar = -1;
    CHECK_OK(c->ops->allreduce_start(c, f, nf, &ar));
    double t0 = lmc_now();
    for (int round = 0; round < 3; round++)
        ring_round(c, n, round, out, in);
    double dt = lmc_now() - t0;
    CHECK_OK(c->ops->wait(c, ar));
    float want = 0;
    for (int q = 0; q < c->size; q++)
        want += 3.0f + (float)q;
    CHECK_MSG(f[3] == want, "allreduce beside the sends: %g, want %g", f[3], want);
    if (c->rank == 0)
        printf("ring of %d ranks: 3 rounds of 4 x %zu bytes per rank in %.3f s\n", c->size, n, dt);
    free(out[0]), free(out[1]), free(in[0]), free(in[1]), free(f);
}

static void test_ring(size_t n)
{
    ring(world, n);
    /* a split with the ranks reversed: its own thread, its own messages */
    lmc_comm *sub = NULL;
    CHECK_OK(world->ops->split(world, 0, world->size - 1 - world->rank, &sub));
    if (sub) {
        CHECK(sub->rank == world->size - 1 - world->rank && sub->size == world->size);
        ring(sub, n / 2 + 1);
        lmc_comm_close(sub);
    }
    CHECK_OK(world->ops->barrier(world));
}

/* Rank 0 fills every slot with receives from rank 1; the next fails at
 * once; then rank 1 sends and all complete. */
static void test_slots(void)
{
    lmc_comm *c = world;
    int r = c->rank, req[65], v[64] = {0};
    CHECK_ERR(c->ops->send_start(c, v, 4, r, &req[0]), LMC_EINVAL, "not another rank");
    CHECK_ERR(c->ops->recv_start(c, v, 4, c->size, &req[0]), LMC_EINVAL, "not another rank");
    CHECK_ERR(c->ops->p2p_wait(c, 64), LMC_EINVAL, "not a send or receive in flight");
    CHECK_ERR(c->ops->p2p_wait(c, 0), LMC_EINVAL, "not a send or receive in flight");
    if (r == 0) {
        for (int i = 0; i < 64; i++)
            CHECK_OK(c->ops->recv_start(c, &v[i], sizeof(int), 1, &req[i]));
        CHECK_ERR(c->ops->recv_start(c, &v[0], sizeof(int), 1, &req[64]), LMC_ECOMM, "64 point-to-point");
    }
    CHECK_OK(c->ops->barrier(c));
    if (r == 1) {
        for (int i = 0; i < 64; i++) {
            v[i] = 1000 + i;
            CHECK_OK(c->ops->send_start(c, &v[i], sizeof(int), 0, &req[i]));
        }
    }
    for (int i = 0; r <= 1 && i < 64; i++)
        CHECK_OK(c->ops->p2p_wait(c, req[i]));
    for (int i = 0; r == 0 && i < 64; i++)
        CHECK_MSG(v[i] == 1000 + i, "message %d: %d", i, v[i]);
    CHECK_OK(c->ops->barrier(c));
}

/* Rank 0 waits on rank 1, which never posts the match; rank 1 stays alive
 * (the abort when rank 0 closes its faulted communicator ends it). */
static int stuck(int send, size_t n)
{
    lmc_comm *c = world;
    unsigned char *b = calloc(n, 1);
    if (c->rank == 0) {
        int req = -1;
        double t0 = lmc_now();
        lmc_status s = send ? c->ops->send_start(c, b, n, 1, &req) : c->ops->recv_start(c, b, n, 1, &req);
        if (s == LMC_OK)
            s = c->ops->p2p_wait(c, req);
        printf("watchdog after %.1f s: %s: %s\n", lmc_now() - t0, lmc_status_name(s), s ? lmc_errmsg() : "");
        fflush(stdout);
        int req2 = -1;
        s = c->ops->recv_start(c, b, n, 1, &req2);
        printf("then: %s: %s\n", lmc_status_name(s), s ? lmc_errmsg() : "");
        fflush(stdout);
    } else if (c->rank == 1) {
        sleep(60);
    }
    free(b);
    lmc_comm_close(c); /* rank 0: faulted, so this ends the job */
    return 0;
}

static void test_big(void)
{
    size_t n = ((size_t)1 << 31) + 5;
    lmc_comm *c = world;
    unsigned char *b = c->rank <= 1 ? malloc(n) : NULL;
    int req = -1;
    if (c->rank == 0) {
        fill(b, n, 0, 1, 0);
        CHECK_OK(c->ops->send_start(c, b, n, 1, &req));
    } else if (c->rank == 1) {
        memset(b, 0, n);
        CHECK_OK(c->ops->recv_start(c, b, n, 0, &req));
    }
    if (c->rank <= 1)
        CHECK_OK(c->ops->p2p_wait(c, req));
    if (c->rank == 1) {
        size_t bad = first_bad(b, n, 0, 1, 0);
        CHECK_MSG(bad == n, "byte %zu of %zu differs", bad, n);
    }
    free(b);
    CHECK_OK(c->ops->barrier(c));
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    size_t mb = argc > 2 ? (size_t)atol(argv[argc - 1]) : 4;
    lmc_status s = lmc_comm_open("mpi", &world);
    if (s) {
        fprintf(stderr, "test_mpi_p2p: %s\n", lmc_errmsg());
        return 1;
    }
    if (world->size < 2) {
        fprintf(stderr, "test_mpi_p2p: run it under mpirun -np 2 or more (this launch has %d)\n", world->size);
        lmc_comm_close(world);
        return 1;
    }
    if (!strcmp(mode, "stuck"))
        return stuck(argc > 2 && !strcmp(argv[2], "send"), mb << 20);
    if (!strcmp(mode, "ring")) {
        test_current = "ring";
        test_ring((mb << 20) + 3);
    } else if (!strcmp(mode, "slots")) {
        RUN(test_slots);
    } else if (!strcmp(mode, "big")) {
        RUN(test_big);
    } else {
        CHECK_MSG(0, "mode '%s': use ring MB, slots, stuck recv|send MB, or big", mode);
    }
    int failed = test_failures;
    double f = failed;
    CHECK_OK(world->ops->allreduce_host(world, &f, 1, 0)); /* every rank's result */
    if (world->rank == 0)
        fprintf(stderr, "%s: %d checks on rank 0, failures on all ranks: %.0f\n", mode, test_checks, f);
    lmc_comm_close(world);
    return f == 0 && failed == 0 ? 0 : 1;
}
