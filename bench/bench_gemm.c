/* bench_gemm.c: lmc's CPU GEMM beside OpenBLAS sgemm on the GPT-2 training
 * shapes: forward (NT, out = inp . W^T), backward data (NN, dinp = dout . W)
 * and weight gradients (TN, dW += dout^T . inp), for GPT-2 124M (C 768, N 256
 * rows = batch 4 x 64) and d6 (C 384, N 2048 = batch 8 x 256), vocab padded to
 * 50304. Prints GFLOP/s of lmc fp32 on each instruction-set path, lmc bf16
 * and OpenBLAS, the ratio to OpenBLAS and the fraction of the measured FMA
 * peak (the backend's peak_flops), at each thread count.
 *
 * Machines are noisy (the cores are shared): every (path, shape) is timed
 * `reps` times, the paths interleaved rep by rep, and the best rep is shown;
 * the summary also gives the ratio of medians. Between paths the bench
 * sleeps briefly so the previous library's spinning threads go idle.
 * --cpu-time times by process CPU time / threads instead of wall time: what
 * each library does with the core time it actually got, when other jobs
 * share the cores (spin-waiting counts against it).
 *
 * Usage: bench_gemm [--quick] [--cpu-time] [--reps N] [--threads 1,2]
 *                   [--isa avx512,avx2,c]
 */
#include "backend/backend.h"
#include "lmc/core.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SHAPES 32
#define MAX_PATHS 6
#define MAX_REPS 16
#define MIN_SECONDS 0.03

typedef struct {
    char name[40];
    int m, n, k, ta, tb, acc;
} shape;

typedef struct {
    char name[16];
    lmc_backend *be; /* NULL: OpenBLAS */
    lmc_dtype prec;
    int reps;        /* the portable path is slow: fewer reps */
} path;

static double gflops[MAX_PATHS][MAX_SHAPES][MAX_REPS];
static int cpu_time; /* --cpu-time */

static double cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* seconds on the bench's clock: wall, or CPU time per thread */
static double bench_now(int threads) { return cpu_time ? cpu_seconds() / threads : lmc_now(); }

static int add_model(shape *s, int ns, const char *model, int N, int C, int V)
{
    struct { const char *op; int out, in; } lin[] = {
        {"qkv", 3 * C, C}, {"attproj", C, C}, {"fc", 4 * C, C}, {"fcproj", C, 4 * C}, {"lm_head", V, C}};
    for (int pass = 0; pass < 3; pass++)
        for (int i = 0; i < 5; i++) {
            shape *x = &s[ns++];
            int out = lin[i].out, in = lin[i].in;
            if (pass == 0) /* out (N,out) = inp (N,in) . W (out,in)^T */
                *x = (shape){"", N, out, in, 0, 1, 0};
            else if (pass == 1) /* dinp (N,in) = dout (N,out) . W (out,in) */
                *x = (shape){"", N, in, out, 0, 0, 0};
            else /* dW (out,in) += dout (N,out)^T . inp (N,in) */
                *x = (shape){"", out, in, N, 1, 0, 1};
            snprintf(x->name, sizeof x->name, "%s %s %-7s %s", model, pass == 0 ? "fwd" : pass == 1 ? "bwd" : "dW ",
                     lin[i].op, pass == 0 ? "NT" : pass == 1 ? "NN" : "TN");
        }
    return ns;
}

static void run_path(const path *p, float *c, const float *a, const float *b, const shape *s)
{
    if (p->be) {
        lmc_gemm g = {.m = s->m, .n = s->n, .k = s->k, .trans_a = s->ta, .trans_b = s->tb,
                      .accumulate = s->acc, .prec = p->prec};
        p->be->ops->matmul(p->be, c, a, b, &g);
    } else {
        cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans, s->m,
                    s->n, s->k, 1.0f, a, s->ta ? s->m : s->k, b, s->tb ? s->k : s->n, s->acc ? 1.0f : 0.0f, c, s->n);
    }
}

/* GFLOP/s of one timing: calls repeated until MIN_SECONDS have passed */
static double time_path(const path *p, float *c, const float *a, const float *b, const shape *s,
                        int threads)
{
    double flops = 2.0 * s->m * s->n * s->k, t0 = bench_now(threads), t;
    int calls = 0;
    do {
        run_path(p, c, a, b, s);
        calls++;
        t = bench_now(threads) - t0;
    } while (t < MIN_SECONDS);
    return calls * flops / t * 1e-9;
}

/* The backend's measured peak (peak_flops, an FMA loop on all threads),
 * best of PEAK_TRIES fresh backends: other jobs on the cores only ever make
 * a try slower. FMA loops share nothing between cores, so `threads` times
 * the 1-thread figure is used where larger: a busy machine rarely leaves
 * every core free at once. */
#define PEAK_TRIES 5
static double peak_measured(lmc_dtype prec, int threads)
{
    double best = 0;
    for (int i = 0; i < PEAK_TRIES; i++) {
        lmc_backend *be = NULL;
        if (lmc_cpu_backend_open(threads, "auto", &be) != LMC_OK)
            break;
        double pk = be->ops->peak_flops(be, prec);
        best = pk > best ? pk : best;
        lmc_backend_close(be);
    }
    return best;
}

static double peak_of(lmc_dtype prec, int threads)
{
    double all = peak_measured(prec, threads), one = threads > 1 ? threads * peak_measured(prec, 1) : 0;
    return all > one ? all : one;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static double best_of(const double *v, int n)
{
    double b = 0;
    for (int i = 0; i < n; i++)
        b = v[i] > b ? v[i] : b;
    return b;
}

static double median_of(const double *v, int n)
{
    double t[MAX_REPS];
    memcpy(t, v, n * sizeof(double));
    qsort(t, n, sizeof(double), cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static void fill(float *x, size_t n)
{
    uint64_t s = 0x2545f4914f6cdd1dull;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = (float)((s >> 40) * (2.0 / 16777216.0) - 1.0) * 0.1f;
    }
}

/* paths: lmc fp32 on each ISA, lmc bf16 (best ISA), OpenBLAS (last) */
static int open_paths(path *ps, const char *isa_filter, int threads, int reps)
{
    const char *isas[4];
    int ni = lmc_cpu_isa_list(isas, 4), n = 0;
    for (int i = 0; i < ni; i++) {
        if ((isa_filter && !strstr(isa_filter, isas[i])) || strstr(isas[i], "nodot"))
            continue; /* nodot differs from avx512 only in bf16 */
        ps[n] = (path){.prec = LMC_F32, .reps = strcmp(isas[i], "c") ? reps : 1};
        if (lmc_cpu_backend_open(threads, isas[i], &ps[n].be) != LMC_OK) {
            fprintf(stderr, "bench_gemm: %s\n", lmc_errmsg());
            exit(1);
        }
        snprintf(ps[n++].name, sizeof ps[0].name, "%s", isas[i]);
    }
    ps[n] = (path){.name = "bf16", .prec = LMC_BF16, .reps = reps};
    if (lmc_cpu_backend_open(threads, "auto", &ps[n++].be) != LMC_OK)
        exit(1);
    ps[n++] = (path){.name = "openblas", .be = NULL, .prec = LMC_F32, .reps = reps};
    return n;
}

static void print_table(const path *ps, int np, const shape *sh, int ns, double pk32, double pk16)
{
    int f32 = 0, bf = np - 2, ob = np - 1; /* f32: the best ISA's fp32 */
    printf("%-26s %14s", "shape", "m x n x k");
    for (int p = 0; p < np; p++)
        printf(" %8s", ps[p].name);
    printf(" %7s %7s %7s %7s\n", "f32/ob", "bf16/ob", "f32%pk", "bf16%pk");
    double tf = 0, t[MAX_PATHS] = {0}, lr = 0, lrm = 0, lrb = 0;
    for (int s = 0; s < ns; s++) {
        char dims[32];
        snprintf(dims, sizeof dims, "%dx%dx%d", sh[s].m, sh[s].n, sh[s].k);
        printf("%-26s %14s", sh[s].name, dims);
        double flops = 2.0 * sh[s].m * sh[s].n * sh[s].k;
        tf += flops;
        for (int p = 0; p < np; p++) {
            double g = best_of(gflops[p][s], ps[p].reps);
            t[p] += flops / (g * 1e9);
            printf(" %8.1f", g);
        }
        double g32 = best_of(gflops[f32][s], ps[f32].reps), g16 = best_of(gflops[bf][s], ps[bf].reps);
        double gob = best_of(gflops[ob][s], ps[ob].reps);
        lr += log(g32 / gob), lrb += log(g16 / gob);
        lrm += log(median_of(gflops[f32][s], ps[f32].reps) / median_of(gflops[ob][s], ps[ob].reps));
        printf(" %7.2f %7.2f %6.0f%% %6.0f%%\n", g32 / gob, g16 / gob, 100 * g32 * 1e9 / pk32, 100 * g16 * 1e9 / pk16);
    }
    printf("%-41s", "all shapes (total flops / total time)");
    for (int p = 0; p < np; p++)
        printf(" %8.1f", tf / t[p] * 1e-9);
    printf(" %7.2f %7.2f %6.0f%% %6.0f%%\n", t[ob] / t[f32], t[ob] / t[bf], 100 * tf / t[f32] / pk32,
           100 * tf / t[bf] / pk16);
    printf("geometric mean of ratios to OpenBLAS: %s fp32 %.2f (medians %.2f), bf16 %.2f\n", ps[f32].name,
           exp(lr / ns), exp(lrm / ns), exp(lrb / ns));
}

static void bench_threads(const shape *sh, int ns, int threads, int reps, const char *isa_filter,
                          float *a, float *b, float *c)
{
    path ps[MAX_PATHS];
    int np = open_paths(ps, isa_filter, threads, reps);
    double pk32 = peak_of(LMC_F32, threads), pk16 = peak_of(LMC_BF16, threads);
    openblas_set_num_threads(threads);
    printf("\n== %d thread%s: measured peak fp32 %.1f GFLOP/s, bf16 %.1f GFLOP/s; best of %d reps%s\n",
           threads, threads > 1 ? "s" : "", pk32 * 1e-9, pk16 * 1e-9, reps, cpu_time ? " (CPU time)" : "");
    fflush(stdout);
    for (int p = 0; p < np; p++) /* warm up: scratch growth, page faults */
        for (int s = 0; s < ns; s++)
            run_path(&ps[p], c, a, b, &sh[s]);
    for (int r = 0; r < reps; r++)
        for (int p = 0; p < np; p++) {
            if (r >= ps[p].reps)
                continue;
            usleep(150000); /* let the previous path's spinning threads sleep */
            for (int s = 0; s < ns; s++)
                gflops[p][s][r] = time_path(&ps[p], c, a, b, &sh[s], threads);
        }
    print_table(ps, np, sh, ns, pk32, pk16);
    for (int p = 0; p < np; p++)
        if (ps[p].be)
            lmc_backend_close(ps[p].be);
}

int main(int argc, char **argv)
{
    int quick = 0, reps = 3;
    const char *threads_arg = "1,2", *isa = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--cpu-time"))
            cpu_time = 1;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads_arg = argv[++i];
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc)
            isa = argv[++i];
        else {
            fprintf(stderr, "usage: bench_gemm [--quick] [--cpu-time] [--reps N] [--threads 1,2] "
                            "[--isa avx512,avx2,c]\n");
            return 2;
        }
    }
    reps = reps < 1 ? 1 : reps > MAX_REPS ? MAX_REPS : reps;
    shape sh[MAX_SHAPES];
    int ns = add_model(sh, 0, "124M", 256, 768, 50304);
    if (!quick)
        ns = add_model(sh, ns, "d6  ", 2048, 384, 50304);
    size_t amax = 0, bmax = 0, cmax = 0;
    for (int s = 0; s < ns; s++) {
        size_t ea = (size_t)sh[s].m * sh[s].k, eb = (size_t)sh[s].k * sh[s].n, ec = (size_t)sh[s].m * sh[s].n;
        amax = ea > amax ? ea : amax, bmax = eb > bmax ? eb : bmax, cmax = ec > cmax ? ec : cmax;
    }
    float *a = lmc_alloc(amax * 4, "a"), *b = lmc_alloc(bmax * 4, "b"), *c = lmc_alloc(cmax * 4, "c");
    if (!a || !b || !c) {
        fprintf(stderr, "bench_gemm: %s\n", lmc_errmsg());
        return 1;
    }
    fill(a, amax), fill(b, bmax), fill(c, cmax);
    printf("GFLOP/s, lmc CPU GEMM vs OpenBLAS sgemm (f32 = %s path)\n", isa ? isa : "best");
    for (const char *t = threads_arg; *t;) {
        int threads = atoi(t);
        if (threads > 0)
            bench_threads(sh, ns, threads, reps, isa, a, b, c);
        while (*t && *t != ',')
            t++;
        if (*t == ',')
            t++;
    }
    lmc_free(a), lmc_free(b), lmc_free(c);
    return 0;
}
