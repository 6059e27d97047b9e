/* bench_moe.c: a mixture of experts' matmuls on the CPU backend as the
 * model runs them (src/model/moe.c: one matmul per expert over its rows, a
 * loop, not a fused grouped GEMM) beside one dense GEMM of the same total
 * size (all R rows against one weight), in the same run: GFLOP/s of the
 * forward (each expert's [gate | up] and down projections, NT) and of the
 * backward (data NN and weight TN gradients), the ratio, and the share of
 * the machine's measured peak. Also the dispatch's row ops (gather,
 * weighted scatter-add, row dot) in GB/s.
 *
 * Shapes: moe-8x (C 512, F 704, 8 experts, top 2) on --tokens tokens
 * (default 4096: batch 8 x 512), routed at random (each token's k experts
 * drawn uniformly, distinct), or with --skew s > 0 drawn with weight
 * (e + 1)^-s (expert 0 the busiest). Each measurement is the best of
 * --reps, the two sides interleaved rep by rep (the cores are shared).
 *
 * Usage: bench_moe [--tokens N] [--experts E] [--top-k K] [--dim C] [--ffn F]
 *                  [--threads T] [--reps R] [--skew S] [--isa avx512|avx2|c]
 */
#include "backend/backend.h"
#include "lmc/core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int N, E, k, C, F, threads, reps;
    double skew;
    const char *isa;
} opts;

static void parse(int argc, char **argv, opts *o)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *f = argv[i], *v = argv[i + 1];
        if (!strcmp(f, "--tokens")) o->N = atoi(v);
        else if (!strcmp(f, "--experts")) o->E = atoi(v);
        else if (!strcmp(f, "--top-k")) o->k = atoi(v);
        else if (!strcmp(f, "--dim")) o->C = atoi(v);
        else if (!strcmp(f, "--ffn")) o->F = atoi(v);
        else if (!strcmp(f, "--threads")) o->threads = atoi(v);
        else if (!strcmp(f, "--reps")) o->reps = atoi(v);
        else if (!strcmp(f, "--skew")) o->skew = atof(v);
        else if (!strcmp(f, "--isa")) o->isa = v;
        else {
            fprintf(stderr, "bench_moe: unknown flag %s\n", f);
            exit(2);
        }
    }
}

/* rows per expert: each token's k distinct experts drawn with weight (e+1)^-skew */
static void route(const opts *o, int *count)
{
    lmc_rng r;
    lmc_rng_seed(&r, 42);
    double *wt = malloc((size_t)o->E * sizeof(double));
    for (int e = 0; e < o->E; e++)
        count[e] = 0, wt[e] = pow(e + 1.0, -o->skew);
    for (int i = 0; i < o->N; i++) {
        int used[64] = {0};
        for (int j = 0; j < o->k; j++) {
            double tot = 0;
            for (int e = 0; e < o->E; e++)
                tot += used[e] ? 0 : wt[e];
            double u = lmc_rng_uniform(&r) * tot;
            int e = 0;
            while (e < o->E - 1 && (used[e] || (u -= wt[e]) > 0))
                e++;
            while (used[e]) /* rounding at the end of the range */
                e = (e + 1) % o->E;
            used[e] = 1;
            count[e]++;
        }
    }
    free(wt);
}

static float *buf(lmc_backend *be, size_t n)
{
    float *p = be->ops->alloc(be, n * sizeof(float));
    float *h = malloc(n * sizeof(float));
    lmc_rng r;
    lmc_rng_seed(&r, n);
    for (size_t i = 0; i < n; i++)
        h[i] = (float)(lmc_rng_uniform(&r) - 0.5);
    be->ops->upload(be, p, h, n * sizeof(float));
    free(h);
    return p;
}

typedef struct {
    float *x, *h, *a, *y, *w1, *w2, *dy, *da, *dh, *dx, *dw1, *dw2;
} tensors;

static void mm(lmc_backend *be, float *c, const float *a, const float *b, int m, int n, int k, int ta, int tb, int acc)
{
    lmc_gemm g = {.m = m, .n = n, .k = k, .trans_a = ta, .trans_b = tb, .accumulate = acc, .prec = LMC_F32};
    if (m > 0)
        be->ops->matmul(be, c, a, b, &g);
}

/* rows [r0, r0 + n) against expert weights w1 (2F, C), w2 (C, F): forward
 * (fwd) or backward; dense is the same with all rows and one weight */
static void expert(lmc_backend *be, const opts *o, tensors *t, size_t r0, int n, size_t e, int fwd)
{
    size_t C = o->C, F = o->F;
    float *w1 = t->w1 + e * 2 * F * C, *w2 = t->w2 + e * C * F, *dw1 = t->dw1 + e * 2 * F * C, *dw2 = t->dw2 + e * C * F;
    if (fwd) {
        mm(be, t->h + r0 * 2 * F, t->x + r0 * C, w1, n, 2 * F, C, 0, 1, 0);
        mm(be, t->y + r0 * C, t->a + r0 * F, w2, n, C, F, 0, 1, 0);
        return;
    }
    mm(be, t->da + r0 * F, t->dy + r0 * C, w2, n, F, C, 0, 0, 0); /* data: dy . W2 */
    mm(be, dw2, t->dy + r0 * C, t->a + r0 * F, C, F, n, 1, 0, 1); /* weight: dy^T . a */
    mm(be, t->dx + r0 * C, t->dh + r0 * 2 * F, w1, n, C, 2 * F, 0, 0, 0);
    mm(be, dw1, t->dh + r0 * 2 * F, t->x + r0 * C, 2 * F, C, n, 1, 0, 1);
}

static double grouped(lmc_backend *be, const opts *o, tensors *t, const int *count, int fwd)
{
    double t0 = lmc_now();
    size_t r0 = 0;
    for (int e = 0; e < o->E; e++) {
        expert(be, o, t, r0, count[e], (size_t)e, fwd);
        r0 += (size_t)count[e];
    }
    return lmc_now() - t0;
}

static double dense(lmc_backend *be, const opts *o, tensors *t, int fwd)
{
    double t0 = lmc_now();
    expert(be, o, t, 0, o->N * o->k, 0, fwd);
    return lmc_now() - t0;
}

static double rows(lmc_backend *be, const opts *o, tensors *t, const int *idx, const float *w, const int *dst,
                   int which)
{
    int R = o->N * o->k;
    double t0 = lmc_now();
    if (which == 0)
        be->ops->gather_rows(be, t->dy, t->x, idx, NULL, R, o->C);
    else if (which == 1)
        be->ops->scatter_add_rows(be, t->x, t->y, dst, w, o->N, o->C); /* distinct rows, as one expert's call */
    else
        be->ops->row_dot(be, t->da, t->x, idx, t->y, R, o->C);
    return lmc_now() - t0;
}

int main(int argc, char **argv)
{
    opts o = {.N = 4096, .E = 8, .k = 2, .C = 512, .F = 704, .threads = 0, .reps = 5, .isa = "auto"};
    parse(argc, argv, &o);
    if (o.E > 64 || o.k > o.E || o.N < 1) {
        fprintf(stderr, "bench_moe: need 1 <= top-k <= experts <= 64 and tokens >= 1\n");
        return 2;
    }
    lmc_backend *be;
    if (lmc_cpu_backend_open(o.threads, o.isa, &be) != LMC_OK) {
        fprintf(stderr, "bench_moe: %s\n", lmc_errmsg());
        return 1;
    }
    size_t R = (size_t)o.N * o.k, C = o.C, F = o.F, E = o.E;
    int *count = malloc(E * sizeof(int));
    route(&o, count);
    tensors t = {buf(be, R * C), buf(be, R * 2 * F), buf(be, R * F), buf(be, R * C), buf(be, E * 2 * F * C),
                 buf(be, E * C * F), buf(be, R * C), buf(be, R * F), buf(be, R * 2 * F), buf(be, R * C),
                 buf(be, E * 2 * F * C), buf(be, E * C * F)};
    int *idx = malloc(R * sizeof(int)), *dst = malloc((size_t)o.N * sizeof(int));
    for (size_t r = 0; r < R; r++)
        idx[r] = (int)((r * 2654435761u) % (size_t)o.N);
    for (int i = 0; i < o.N; i++)
        dst[i] = i; /* distinct rows: a permutation of the tokens */
    for (int i = o.N - 1; i > 0; i--) {
        int j = (int)(((size_t)i * 2654435761u) % (size_t)(i + 1)), s = dst[i];
        dst[i] = dst[j], dst[j] = s;
    }
    int *didx = be->ops->alloc(be, R * sizeof(int)), *ddst = be->ops->alloc(be, (size_t)o.N * sizeof(int));
    be->ops->upload(be, didx, idx, R * sizeof(int));
    be->ops->upload(be, ddst, dst, (size_t)o.N * sizeof(int));
    float *w = buf(be, R);
    double best[2][2] = {{1e30, 1e30}, {1e30, 1e30}}, rbest[3] = {1e30, 1e30, 1e30};
    for (int rep = 0; rep < o.reps; rep++)
        for (int fwd = 1; fwd >= 0; fwd--) {
            double g = grouped(be, &o, &t, count, fwd), d = dense(be, &o, &t, fwd);
            best[0][fwd] = g < best[0][fwd] ? g : best[0][fwd];
            best[1][fwd] = d < best[1][fwd] ? d : best[1][fwd];
        }
    for (int rep = 0; rep < o.reps; rep++)
        for (int k = 0; k < 3; k++) {
            double s = rows(be, &o, &t, didx, w, ddst, k);
            rbest[k] = s < rbest[k] ? s : rbest[k];
        }
    double flops = 2.0 * R * (2.0 * F * C + C * F), peak = be->ops->peak_flops(be, LMC_F32);
    int lo = count[0], hi = count[0];
    for (size_t e = 0; e < E; e++)
        lo = count[e] < lo ? count[e] : lo, hi = count[e] > hi ? count[e] : hi;
    printf("bench_moe: %d tokens, %d experts top-%d, C %d, F %d, %d threads (%s), rows per expert %d..%d "
           "(skew %.2f), best of %d\n", o.N, o.E, o.k, o.C, o.F, be->threads, o.isa, lo, hi, o.skew, o.reps);
    printf("%-10s %14s %14s %8s %10s\n", "pass", "grouped GF/s", "dense GF/s", "ratio", "% of peak");
    const char *pass[2] = {"backward", "forward"};
    for (int fwd = 1; fwd >= 0; fwd--) {
        double f = fwd ? flops : 2 * flops, g = f / best[0][fwd] / 1e9, d = f / best[1][fwd] / 1e9;
        printf("%-10s %14.1f %14.1f %8.3f %9.1f%%\n", pass[fwd], g, d, g / d, 100 * g * 1e9 / peak);
    }
    printf("peak (measured FMA loop, %d threads): %.1f GFLOP/s\n", be->threads, peak / 1e9);
    const char *rn[3] = {"gather_rows", "scatter_add_rows", "row_dot"};
    double bytes[3] = {2.0 * R * C * 4, 3.0 * o.N * C * 4, 2.0 * R * C * 4};
    for (int k = 0; k < 3; k++)
        printf("%-18s %8.3f ms %8.1f GB/s\n", rn[k], rbest[k] * 1e3, bytes[k] / rbest[k] / 1e9);
    lmc_backend_close(be);
    return 0;
}
