/* measure.c: the `cpu` chip, measured on this machine with lmc's own CPU
 * backend, so predictions for local runs use this machine's figures and not
 * a datasheet's: peak FLOP/s (an FMA loop), what the backend's matmul and
 * attention reach of it, memory bandwidth and capacity, and the fixed cost
 * of one parallel op (OpenMP fork and join). */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Best of `reps` timings: noise only ever makes a run slower. On a shared
 * machine other processes take cores away: a run that got its cores (its
 * CPU time at least LMC_PLAN_CORES_MIN of wall time x the `par` threads it
 * runs on, as lmc plan judges a training step) counts at its wall time;
 * when none did, a run costs the CPU time it used spread over its threads
 * (never more than its wall time), which threads spinning at a barrier
 * while another waits for a core still inflate. */
static void flush_caches(void *arg);

static double best_of(int reps, int par, void (*fn)(void *), void *arg)
{
    double best = 1e30, fallback = 1e30;
    for (int r = 0; r < reps; r++) {
        flush_caches(arg);
        double t0 = lmc_now(), c0 = lmc_cpu_now();
        fn(arg);
        double wall = lmc_now() - t0, cpu = (lmc_cpu_now() - c0) / par;
        if (cpu >= LMC_PLAN_CORES_MIN * wall)
            best = wall < best ? wall : best;
        double t = cpu > 0 && cpu < wall ? cpu : wall;
        fallback = t < fallback ? t : fallback;
    }
    return best < 1e30 ? best : fallback;
}

typedef struct {
    lmc_backend *be;
    float *a, *b, *c, *d;
    lmc_gemm g;
    int B, T, NH, HS;
    int rot;  /* which quarter of the buffers the next GEMM uses */
    float *e; /* 64 MB written before each timed run: training's operands come from memory, not cache */
} bench;

static void flush_caches(void *arg)
{
    bench *x = arg;
    if (x->e)
        memset(x->e, (x->rot++) & 1, (size_t)16 << 22);
}

static void run_attention(void *p)
{
    bench *x = p;
    /* a: qkv (B,T,3C); c: out (B,T,C); d: lse; b: dqkv, dout reuses c */
    x->be->ops->attention_forward(x->be, x->c, x->d, x->a, x->B, x->T, x->NH, x->NH, x->HS);
    x->be->ops->attention_backward(x->be, x->b, x->c, x->c, x->d, x->a, x->B, x->T, x->NH, x->NH, x->HS);
    x->be->ops->sync(x->be);
}

static void run_copy(void *p)
{
    bench *x = p;
    memcpy(x->c, x->a, (size_t)x->B * sizeof(float));
}

static void run_tiny(void *p)
{
    bench *x = p;
    x->be->ops->add(x->be, x->c, x->a, x->b, 64);
    x->be->ops->sync(x->be);
}

/* Forward, input gradient (B transposed), weight gradient (A transposed,
 * the tokens as the inner dimension). */
void lmc_plan_gemm3(lmc_backend *be, const float *a, const float *b, float *c, int tokens, lmc_dtype prec)
{
    int T = tokens, C = 768, N = 3 * C;
    lmc_gemm g = {.m = T, .n = N, .k = C, .prec = prec};
    be->ops->matmul(be, c, a, b, &g);
    g = (lmc_gemm){.m = T, .n = C, .k = N, .trans_b = 1, .prec = prec};
    be->ops->matmul(be, c, a, b, &g);
    g = (lmc_gemm){.m = C, .n = N, .k = T, .trans_a = 1, .prec = prec};
    be->ops->matmul(be, c, a, b, &g);
    be->ops->sync(be);
}

static void run_gemm3(void *p)
{
    bench *x = p;
    /* a different quarter of the 64 MB buffers each time: in training the
     * operands come from memory, not from the cache a repeated call warms */
    size_t off = (size_t)(x->rot++ % 4) * (4 << 20);
    lmc_plan_gemm3(x->be, x->a + off, x->b + off, x->c + off, x->T, x->g.prec);
}

/* Achieved FLOP/s of the backend's matmul on a training step's GEMMs. */
static double gemm_flops(bench *x, lmc_dtype prec, int tokens)
{
    memset(&x->g, 0, sizeof x->g);
    x->g.prec = prec;
    x->T = tokens;
    run_gemm3(x); /* warm-up: thread pools, page faults */
    return 3 * 2.0 * tokens * 768 * 2304 / best_of(3, x->be->threads, run_gemm3, x);
}

static void run_xent(void *p)
{
    bench *x = p;
    x->be->ops->xent(x->be, x->d, x->c, (const int *)x->b, x->B, x->T, x->T, 1.0f, 1);
    x->be->ops->sync(x->be);
}

/* Exponentials per second: the fused softmax cross-entropy evaluates one
 * per logit and little else, so on a CPU it is bound by them. */
static double sfu_rate(bench *x)
{
    x->B = 64, x->T = 8192; /* rows, vocab */
    memset(x->b, 0, 64 * sizeof(int));
    /* logits as a training step's (a few units either side of 0), not
     * whatever earlier measurements left in the buffer */
    for (size_t i = 0; i < (size_t)x->B * x->T; i++)
        x->c[i] = 0.01f * (float)(i % 1000) - 5;
    run_xent(x);
    return (double)x->B * x->T / best_of(3, x->be->threads, run_xent, x);
}

/* Achieved attention FLOP/s as the cost model counts them: half the
 * counted FLOPs (the causal half is skipped) over the time left once the
 * exponentials (B*NH*T*T, forward and backward) are paid for. */
static double attn_flops(bench *x, double sfu)
{
    x->B = 2, x->T = 256, x->NH = 6, x->HS = 64;
    run_attention(x);
    double t = best_of(2, x->be->threads, run_attention, x);
    double C = (double)x->NH * x->HS, tokens = (double)x->B * x->T;
    double exps = (double)x->B * x->NH * x->T * x->T / sfu;
    t = t - exps > 0.2 * t ? t - exps : 0.2 * t;
    return 0.5 * 12.0 * tokens * x->T * C / t;
}

static void run_optim(void *p)
{
    bench *x = p;
    lmc_adamw_hp hp = {.lr = 1e-4f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f,
                       .bias_corr1 = 0.1f, .bias_corr2 = 0.05f, .grad_scale = 1};
    size_t n = (size_t)x->B;
    x->be->ops->sum(x->be, x->d, x->b, n, 1);
    x->be->ops->adamw(x->be, x->a, x->b, x->c, x->c + n, n, &hp);
    x->be->ops->sync(x->be);
}

static lmc_status alloc_bench(bench *x)
{
    size_t big = (size_t)16 << 20; /* floats: 64 MB, past any cache */
    x->a = lmc_alloc(big * sizeof(float), "cpu measurement");
    x->b = lmc_alloc(big * sizeof(float), "cpu measurement");
    x->c = lmc_alloc(big * sizeof(float), "cpu measurement");
    x->d = lmc_alloc((size_t)1 << 20, "cpu measurement");
    x->e = lmc_alloc(big * sizeof(float), "cpu measurement");
    if (!x->a || !x->b || !x->c || !x->d || !x->e)
        return LMC_ENOMEM;
    for (size_t i = 0; i < big; i++)
        x->a[i] = x->b[i] = 0.001f * (float)(i % 1000);
    return LMC_OK;
}

static void free_bench(bench *x)
{
    lmc_free(x->a);
    lmc_free(x->b);
    lmc_free(x->c);
    lmc_free(x->d);
    lmc_free(x->e);
}

/* The backend measures its peak with FMA loops timed in each thread's own
 * CPU time, which other processes cannot inflate. */
static double peak(lmc_backend *be, lmc_dtype prec) { return be->ops->peak_flops(be, prec); }

typedef struct {
    double peak32, peak16, gemm32, gemm32s, gemm16, attn, sfu, optim, bw, kernel;
} figures;

/* One round of every measurement on a fresh backend (the backend caches
 * its peak, and a busy moment should not stick). */
static lmc_status measure_round(int threads, bench *x, figures *f)
{
    lmc_backend *be = NULL;
    LMC_TRY(lmc_backend_open("cpu", threads, &be));
    x->be = be;
    f->peak32 = peak(be, LMC_F32);
    f->peak16 = peak(be, LMC_BF16);
    f->gemm32 = gemm_flops(x, LMC_F32, 1024);
    f->gemm32s = gemm_flops(x, LMC_F32, 256);
    f->gemm16 = gemm_flops(x, LMC_BF16, 1024);
    f->sfu = sfu_rate(x);
    f->attn = attn_flops(x, f->sfu);
    f->kernel = best_of(20, be->threads, run_tiny, x);
    x->B = 4 << 20;
    f->optim = best_of(2, be->threads, run_optim, x) / x->B;
    x->B = 16 << 20;
    run_copy(x);
    f->bw = 2.0 * x->B * sizeof(float) / best_of(3, 1, run_copy, x); /* read + write */
    lmc_backend_close(be);
    return LMC_OK;
}

static double cap1(double x) { return x > 1 ? 1 : x; }

void lmc_plan_chip_measure_memory(lmc_plan_chip *c)
{
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    if (pages > 0 && psz > 0)
        c->memory_gb = (double)pages * psz / 1e9;
}

lmc_status lmc_plan_chip_measure_cpu(lmc_plan_chip *c, int threads)
{
    bench x = {0};
    lmc_status s = alloc_bench(&x);
    /* best of three rounds: on a shared machine other work only ever
     * makes a figure worse */
    figures best = {0};
    best.kernel = best.optim = 1e30;
    for (int r = 0; r < 3 && s == LMC_OK; r++) {
        figures f;
        s = measure_round(threads, &x, &f);
        if (s == LMC_OK) {
            best.peak32 = fmax(best.peak32, f.peak32), best.peak16 = fmax(best.peak16, f.peak16);
            best.gemm32 = fmax(best.gemm32, f.gemm32), best.gemm16 = fmax(best.gemm16, f.gemm16);
            best.gemm32s = fmax(best.gemm32s, f.gemm32s), best.sfu = fmax(best.sfu, f.sfu);
            best.attn = fmax(best.attn, f.attn), best.bw = fmax(best.bw, f.bw);
            best.kernel = fmin(best.kernel, f.kernel), best.optim = fmin(best.optim, f.optim);
        }
    }
    free_bench(&x);
    LMC_TRY(s);
    /* eff(d) = E * d / (d + m0) through the two sets of GEMMs (smallest
     * dimensions 768 and 256) gives m0 and E */
    double r = best.gemm32 / best.gemm32s, s1 = 768, s2 = 256;
    double m0 = r > 1 && r * s2 < s1 ? s1 * s2 * (1 - r) / (r * s2 - s1) : 0;
    m0 = m0 < 0 ? 0 : m0 > 4096 ? 4096 : m0;
    double grow = (s1 + m0) / s1;
    c->fp32_tflops = best.peak32 / 1e12;
    c->bf16_tflops = best.peak16 / 1e12;
    c->gemm_m0 = m0;
    c->matmul_eff_fp32 = cap1(best.gemm32 / best.peak32 * grow);
    c->matmul_eff = cap1(best.gemm16 / best.peak16 * grow);
    c->attn_eff_fp32 = cap1(best.attn / best.peak32);
    c->attn_eff = cap1(best.attn / best.peak16); /* the same kernel either way */
    c->sfu_gops = best.sfu / 1e9;
    c->optim_ns = best.optim * 1e9;
    c->memory_bw_gbs = best.bw / 1e9;
    c->kernel_us = best.kernel * 1e6;
    lmc_plan_chip_measure_memory(c);
    c->chips_per_node = 1;
    c->measured = 1;
    return LMC_OK;
}
