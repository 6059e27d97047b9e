/* host.c: `cpu` ranks sharing this machine. N ranks of lmc train on one
 * host (mpirun -np N) share its cores and its memory system, and they
 * exchange gradients through shared memory with copies and adds run by
 * the same cores that train (no DMA engine, no progress thread). Measured
 * with one lane per rank running at once (as many lanes as there are
 * cores; more ranks than cores take turns): the memory bandwidth a rank
 * gets beside the others, and the rate at which a rank sums a vector
 * through shared memory (copy a fragment into its stage, add the partner
 * rank's stage, written by another core),
 * which is what the cost model's intra-node link stands for; and how much
 * slower a training step's GEMMs run on every lane at once than on one
 * alone (shared caches and memory: the compute contention).
 * Each lane is bound to a core of its own, as mpirun binds ranks. Ranks
 * that synchronise run at the pace of the slowest, and the cores of a
 * virtual machine need not be equal under load; so the lanes also run
 * short GEMMs between barriers, as a tensor-parallel rank computes
 * between its collectives, which gives the slowest lane's pace against
 * the average (folded into the contention) and what a rank waits for its
 * partner at each collective beyond that (added to the intra-node hop
 * latency). */
#define _GNU_SOURCE /* pthread_setaffinity_np */
#include "internal.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LANE_FLOATS ((size_t)8 << 20) /* 32 MB a buffer: past the caches */
#define FRAGMENT ((size_t)1 << 18)    /* 1 MB of floats a shared-memory fragment */
#define REPS 3
#define SYNC_ROUNDS 24 /* GEMMs between barriers */
#define SYNC_TOKENS 48 /* rows of each: about 2.5 ms on one core, a d12 tensor-parallel rank's work between
                        * two collectives at sequences of 128 */

/* The lanes start together once every one exists (go 1), or not at all (go -1). */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int go;
    pthread_barrier_t start;
} gate;

typedef struct lane {
    float *a, *b, *stage; /* this rank's vector, its result, the shared fragment */
    gate *g;
    const struct lane *partner; /* whose stage it adds */
    lmc_backend *be;            /* one thread, as a rank of 1 thread */
    int index, rot, cpu; /* cpu: the core it is bound to (-1: not bound) */
    double copy_gbs, sum_gbs; /* best of REPS */
    double gemm_alone_s, gemm_s; /* best of REPS: lane 0 alone; every lane at once */
    double round_s[SYNC_ROUNDS]; /* each round's GEMMs, every lane starting together */
} lane;

/* read + write bytes a second of one memcpy stream */
static double copy_rate(lane *x)
{
    double t0 = lmc_now();
    memcpy(x->b, x->a, LANE_FLOATS * sizeof(float));
    return 2.0 * LANE_FLOATS * sizeof(float) / (lmc_now() - t0) / 1e9;
}

/* bytes of the vector summed a second, as a shared-memory allreduce does:
 * each fragment copied into this lane's stage, then, once every lane has
 * written its own, the partner lane's stage (written by another core) added
 * into the result */
static double sum_rate(lane *x)
{
    double t0 = lmc_now();
    for (size_t off = 0; off < LANE_FLOATS; off += FRAGMENT) {
        memcpy(x->stage, x->a + off, FRAGMENT * sizeof(float));
        pthread_barrier_wait(&x->g->start);
        float *restrict o = x->b + off;
        const float *restrict in = x->a + off, *restrict peer = x->partner->stage;
        for (size_t i = 0; i < FRAGMENT; i++)
            o[i] = in[i] + peer[i];
        pthread_barrier_wait(&x->g->start); /* the partner has read this stage */
    }
    return LANE_FLOATS * sizeof(float) / (lmc_now() - t0) / 1e9;
}

/* The GEMMs of a training step's linear layer on T rows, as measure.c
 * times them, operands from a different quarter of the buffer each time. */
static double gemm_time(lane *x, int T)
{
    const float *a = x->a + (size_t)(x->rot++ % 4) * (LANE_FLOATS / 4), *b = a + (size_t)T * 768;
    double t0 = lmc_now();
    lmc_plan_gemm3(x->be, a, b, x->b, T, LMC_F32);
    return lmc_now() - t0;
}

static void *lane_run(void *p)
{
    lane *x = p;
    pthread_mutex_lock(&x->g->mu);
    while (!x->g->go)
        pthread_cond_wait(&x->g->cv, &x->g->mu);
    int go = x->g->go;
    pthread_mutex_unlock(&x->g->mu);
    if (go < 0)
        return NULL;
    cpu_set_t was, one; /* lane 0 is the caller's thread: its cores come back */
    int bound = x->cpu >= 0 && pthread_getaffinity_np(pthread_self(), sizeof was, &was) == 0;
    if (bound) { /* as mpirun --bind-to core; unbound if refused */
        CPU_ZERO(&one);
        CPU_SET(x->cpu, &one);
        pthread_setaffinity_np(pthread_self(), sizeof one, &one);
    }
    for (int r = 0; r < REPS; r++) {
        pthread_barrier_wait(&x->g->start); /* every lane streams at once */
        x->copy_gbs = fmax(x->copy_gbs, copy_rate(x));
        pthread_barrier_wait(&x->g->start);
        x->sum_gbs = fmax(x->sum_gbs, sum_rate(x));
    }
    gemm_time(x, 256); /* warm-up: page faults, packing buffers */
    x->gemm_alone_s = x->gemm_s = 1e30;
    for (int r = 0; r < REPS; r++) {
        pthread_barrier_wait(&x->g->start);
        if (x->index == 0) /* the others wait at the next barrier */
            x->gemm_alone_s = fmin(x->gemm_alone_s, gemm_time(x, 256));
        pthread_barrier_wait(&x->g->start);
        x->gemm_s = fmin(x->gemm_s, gemm_time(x, 256));
    }
    for (int r = 0; r < SYNC_ROUNDS; r++) {
        pthread_barrier_wait(&x->g->start);
        x->round_s[r] = gemm_time(x, SYNC_TOKENS);
    }
    if (bound)
        pthread_setaffinity_np(pthread_self(), sizeof was, &was);
    return NULL;
}

static void gate_open(gate *g, int go)
{
    pthread_mutex_lock(&g->mu);
    g->go = go;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static lmc_status lane_open(lane *x, gate *g, int index)
{
    memset(x, 0, sizeof *x);
    x->g = g;
    x->index = index;
    LMC_TRY(lmc_backend_open("cpu", 1, &x->be));
    x->a = lmc_alloc(LANE_FLOATS * sizeof(float), "host measurement");
    x->b = lmc_alloc(LANE_FLOATS * sizeof(float), "host measurement");
    x->stage = lmc_alloc(FRAGMENT * sizeof(float), "host measurement");
    if (!x->a || !x->b || !x->stage)
        return LMC_ENOMEM;
    for (size_t i = 0; i < LANE_FLOATS; i++)
        x->a[i] = x->b[i] = 0.001f * (float)(i % 1000);
    return LMC_OK;
}

static void lane_close(lane *x)
{
    lmc_free(x->a);
    lmc_free(x->b);
    lmc_free(x->stage);
    if (x->be)
        lmc_backend_close(x->be);
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    double copy_gbs, sum_gbs, contention, pace, wait_s;
} host_figs;

/* The lanes' medians: what a typical rank gets beside the others. */
static double median_of(const lane *l, int n, int what)
{
    double v[LMC_PLAN_HOST_LANES] = {0};
    for (int i = 0; i < n; i++)
        v[i] = what == 0 ? l[i].copy_gbs : what == 1 ? l[i].sum_gbs : l[0].gemm_alone_s / l[i].gemm_s;
    qsort(v, (size_t)n, sizeof v[0], by_value);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The rounds between barriers: a synchronised job's step is the sum over
 * rounds of the slowest lane's time. Of it, the slowest lane's own mean
 * against the lanes' mean is a steady difference of pace (pace, <= 1), and
 * the rest, over the rounds, what each barrier adds (wait_s). The first
 * round (caches, page faults) is left out. */
static void sync_figs(const lane *l, int n, host_figs *f)
{
    double all = 0, slowest = 0, rounds = 0;
    for (int i = 0; i < n; i++) {
        double own = 0;
        for (int r = 1; r < SYNC_ROUNDS; r++)
            own += l[i].round_s[r];
        all += own / n;
        slowest = fmax(slowest, own);
    }
    for (int r = 1; r < SYNC_ROUNDS; r++) {
        double m = 0;
        for (int i = 0; i < n; i++)
            m = fmax(m, l[i].round_s[r]);
        rounds += m;
    }
    f->pace = slowest > 0 ? all / slowest : 1;
    f->wait_s = (rounds - slowest) / (SYNC_ROUNDS - 1);
}

/* Binds lane i to the i-th core this process may run on, when there are
 * as many such cores as lanes (otherwise the lanes share cores and the
 * scheduler moves them, as it moves ranks). */
static void bind_lanes(lane *l, int n)
{
    cpu_set_t allowed;
    int cpus[LMC_PLAN_HOST_LANES], k = 0;
    if (sched_getaffinity(0, sizeof allowed, &allowed) == 0)
        for (int c = 0; c < CPU_SETSIZE && k < n; c++)
            if (CPU_ISSET(c, &allowed))
                cpus[k++] = c;
    for (int i = 0; i < n; i++)
        l[i].cpu = k == n ? cpus[i] : -1;
}

static lmc_status measure_lanes(int n, host_figs *f)
{
    lane l[LMC_PLAN_HOST_LANES];
    pthread_t th[LMC_PLAN_HOST_LANES];
    gate g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    if (pthread_barrier_init(&g.start, NULL, (unsigned)n))
        return lmc_err(LMC_ENOMEM, "host measurement: no barrier for %d lanes", n);
    lmc_status s = LMC_OK;
    int opened = 0, started = 1;
    for (; opened < n && s == LMC_OK; opened++)
        s = lane_open(&l[opened], &g, opened);
    for (int i = 0; i < opened; i++) /* pairs (0,1), (2,3), ...; an odd last lane with the first */
        l[i].partner = &l[(i ^ 1) < opened ? i ^ 1 : 0];
    bind_lanes(l, opened);
    if (s == LMC_ENOMEM)
        s = lmc_err(LMC_ENOMEM, "host measurement: out of memory for %d lanes of %zu MB", n,
                    2 * LANE_FLOATS * sizeof(float) >> 20);
    while (started < n && s == LMC_OK) /* started: lanes running (lane 0 is this thread) */
        if (pthread_create(&th[started], NULL, lane_run, &l[started]) == 0)
            started++;
        else
            s = lmc_err(LMC_ENOMEM, "host measurement: cannot start lane %d of %d", started, n);
    gate_open(&g, s == LMC_OK ? 1 : -1);
    if (s == LMC_OK) {
        lane_run(&l[0]);
        f->copy_gbs = median_of(l, n, 0);
        f->sum_gbs = median_of(l, n, 1);
        f->contention = fmin(1.0, median_of(l, n, 2)); /* noise can make the crowd look faster */
        sync_figs(l, n, f);
    }
    for (int i = 1; i < started; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < opened; i++)
        lane_close(&l[i]);
    pthread_barrier_destroy(&g.start);
    return s;
}

static int host_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void lmc_plan_chip_host_shares(lmc_plan_chip *c, int threads, int ranks, int cores)
{
    /* the chip's peak was measured with min(threads, cores) cores' worth */
    int t = threads > 0 && threads < cores ? threads : cores;
    ranks = ranks > 1 ? ranks : 1;
    c->host_ranks = ranks;
    c->host_share = fmin(1.0, (double)cores / ((double)ranks * t));
    c->host_bw_share = fmin(1.0, (double)cores / ranks);
    c->comm_on_cores = ranks > 1 && (long long)ranks * t >= cores;
    c->host_contention = c->host_pace = 1; /* until measured */
    c->host_wait_us = 0;
    c->chips_per_node = ranks;
}

lmc_status lmc_plan_chip_measure_host(lmc_plan_chip *c, int threads, int ranks)
{
    int cores = host_cores();
    lmc_plan_chip_host_shares(c, threads, ranks, cores);
    if (ranks <= 1)
        return LMC_OK;
    int lanes = ranks < cores ? ranks : cores;
    lanes = lanes < LMC_PLAN_HOST_LANES ? lanes : LMC_PLAN_HOST_LANES;
    host_figs f;
    LMC_TRY(measure_lanes(lanes, &f));
    c->rank_bw_gbs = f.copy_gbs;
    c->intra_node_gbs = f.sum_gbs * c->host_bw_share; /* more ranks than cores take turns at it */
    c->host_contention = f.contention * f.pace;
    c->host_pace = f.pace;
    c->host_wait_us = f.wait_s * 1e6;
    c->intra_latency_us += c->host_wait_us;
    return LMC_OK;
}
