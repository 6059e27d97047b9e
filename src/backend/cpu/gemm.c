/* gemm.c: the GEMM driver: path choice, thread split, cache blocking, edge
 * tiles and the bias/GELU epilogue. The micro-kernels and packers live in
 * gemm_c.c, gemm_avx2.c, gemm_avx512.c and gemm_avx512_bf16.c.
 *
 * Loops (per thread, over its own block of C):
 *   jc over n by NC: pc over k by KC: pack B (KC x NC, L3)
 *     ic over m by MC: pack A (MC x KC, L2)
 *       jr over NC by NR: ir over MC by MR: micro-kernel (B micro-panel
 *       reused by all MC/MR tiles, A micro-panels streamed from L2)
 * When a thread's rows fit one A block (m <= MC: the 256-token forward and
 * data-gradient GEMMs), B is never reused across A blocks, so each B
 * micro-panel is packed right before its kernels instead ("flat").
 * Threads split C over m and n only, along the MR x NR tile grid, and the k
 * blocking depends on k alone, so every element sees the same operations
 * whatever the thread count: results are bit-identical for any count.
 * Each thread packs its own operands and runs alone until the join: a
 * version with shared packed blocks, dynamic units and a barrier per k block
 * lost 2-4x on this shared 2-core machine (threads spinning at barriers
 * while a preempted peer held the work).
 */
#include "backend/cpu/gemm.h"

#include <omp.h>
#include <string.h>

/* Below this many flops a second thread costs more than it saves. */
#define GEMM_MIN_PARALLEL_FLOPS 4e5

typedef struct {
    const lmc_gemm_impl *im;
    const lmc_gemm *g;
    float *c;
    const float *a, *b;
    size_t lda, ldb, ldc;
    int round;       /* fp32 panels rounded to bf16 */
    int kb, nkb;     /* k block size and count */
    size_t esz;      /* bytes per packed element */
    size_t abytes, bbytes; /* per-thread pack buffers */
    int tm, tn;      /* thread grid */
    int flat;        /* each thread's rows fit one A block */
} gemm_call;

static inline int imin(int x, int y) { return x < y ? x : y; }
static inline size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

const lmc_gemm_impl *lmc_gemm_pick(lmc_cpu_isa isa, lmc_dtype prec, int allow_dot)
{
#if defined(__x86_64__)
    if (isa == LMC_ISA_AVX512) {
        if (prec == LMC_BF16 && allow_dot && __builtin_cpu_supports("avx512bf16"))
            return &lmc_gemm_avx512_bf16;
        return &lmc_gemm_avx512_f32;
    }
    if (isa == LMC_ISA_AVX2)
        return &lmc_gemm_avx2_f32;
#else
    (void)isa, (void)prec, (void)allow_dot;
#endif
    return &lmc_gemm_c_f32;
}

/* Thread grid tm x tn (tm*tn <= threads) minimising the slowest thread's
 * work: its tile block (padded) plus packing its rows of A and columns of B
 * (each thread packs its own), a packed element costing about 32 flops of
 * kernel time (measured 0.1-0.2 ns against 200 GFLOP/s). */
static void gemm_split(const lmc_gemm_impl *im, int threads, const lmc_gemm *g, int *tm, int *tn)
{
    int mt = (g->m + im->mr - 1) / im->mr, nt = (g->n + im->nr - 1) / im->nr;
    *tm = *tn = 1;
    if (2.0 * g->m * g->n * g->k < GEMM_MIN_PARALLEL_FLOPS)
        return;
    double best = 0;
    for (int i = 1; i <= threads && i <= mt; i++)
        for (int j = 1; i * j <= threads && j <= nt; j++) {
            double rows = (double)((mt + i - 1) / i) * im->mr;
            double cols = (double)((nt + j - 1) / j) * im->nr;
            double cost = 2.0 * rows * cols + 32.0 * (rows + cols);
            if (best == 0 || cost < best * 0.999)
                best = cost, *tm = i, *tn = j;
        }
}

static void gemm_setup(gemm_call *cl, const lmc_gemm_impl *im, int threads, const lmc_gemm *g)
{
    memset(cl, 0, sizeof *cl);
    cl->im = im;
    cl->g = g;
    cl->lda = g->trans_a ? (size_t)g->m : (size_t)g->k;
    cl->ldb = g->trans_b ? (size_t)g->k : (size_t)g->n;
    cl->ldc = (size_t)g->n;
    cl->round = g->prec == LMC_BF16;
    cl->esz = im->kpack == 2 ? 2 : 4;
    /* even k blocks of at most im->kc: depends on k only (determinism) */
    int nkb = g->k > 0 ? (g->k + im->kc - 1) / im->kc : 1;
    cl->kb = g->k > 0 ? (int)round_up((size_t)(g->k + nkb - 1) / nkb, 2) : 0;
    cl->nkb = g->k > 0 ? (g->k + cl->kb - 1) / cl->kb : 1;
    gemm_split(im, threads, g, &cl->tm, &cl->tn);
    int mt = (g->m + im->mr - 1) / im->mr;
    cl->flat = (mt + cl->tm - 1) / cl->tm * im->mr <= im->mc;
    size_t kcp = round_up((size_t)cl->kb, (size_t)im->kpack);
    size_t mcb = imin(im->mc, (int)round_up((size_t)g->m, (size_t)im->mr));
    size_t ncb = cl->flat ? im->nr : imin(im->nc, (int)round_up((size_t)g->n, (size_t)im->nr));
    cl->abytes = round_up(mcb * kcp * cl->esz, 64);
    cl->bbytes = round_up(ncb * kcp * cl->esz, 64);
}

size_t lmc_gemm_scratch_bytes(const lmc_gemm_impl *im, int threads, const lmc_gemm *g)
{
    gemm_call cl;
    gemm_setup(&cl, im, threads, g);
    return (size_t)cl.tm * cl.tn * (cl.abytes + cl.bbytes);
}

/* A tile at the matrix edge: the kernel writes a full tile to a local buffer,
 * then the valid part is merged with the same operations, in the same order,
 * as the full-tile store (acc, + C, + bias), so edges give the same bits. */
static void gemm_edge(const gemm_call *cl, int kc, const void *ap, const void *bp, float *c, int mr,
                      int nr, int add_c, const float *bias)
{
    const lmc_gemm_impl *im = cl->im;
    float tmp[LMC_GEMM_MAX_MR * LMC_GEMM_MAX_NR] __attribute__((aligned(64)));
    im->kernel(kc, ap, bp, tmp, (size_t)im->nr, 0, NULL);
    for (int i = 0; i < mr; i++) {
        float *row = c + (size_t)i * cl->ldc;
        for (int j = 0; j < nr; j++) {
            float v = tmp[i * im->nr + j];
            if (add_c)
                v += row[j];
            if (bias)
                v += bias[j];
            row[j] = v;
        }
    }
}

/* Pulls slice s of ns of [p, p + bytes) towards L2: the next packed B
 * panel comes from L3 (the packed block outgrows L2), a slice per tile. */
static void gemm_prefetch_slice(const char *p, size_t bytes, int s, int ns)
{
    for (size_t o = bytes * s / ns & ~(size_t)63; o < bytes * (s + 1) / ns; o += 64)
        __builtin_prefetch(p + o, 0, 2);
}

/* All micro-tiles of one packed (mc x kc) . (kc x nc) block, C at (ic, jc). */
/* The GELU epilogue of one row: pre (if not NULL) keeps the input. */
static void gelu_row(const lmc_gemm_impl *im, float *x, float *pre, int n)
{
    if (pre)
        memcpy(pre, x, (size_t)n * sizeof *x);
    im->gelu(x, n);
}

static void gemm_macro(const gemm_call *cl, const char *abuf, const char *bbuf, int ic, int mc,
                       int jc, int nc, int kc, int first, int last)
{
    const lmc_gemm_impl *im = cl->im;
    const lmc_gemm *g = cl->g;
    size_t kcp = round_up((size_t)kc, (size_t)im->kpack);
    size_t apan = im->mr * kcp * cl->esz, bpan = im->nr * kcp * cl->esz;
    int add_c = !first || g->accumulate, gelu = last && g->gelu;
    int nir = (mc + im->mr - 1) / im->mr;
    for (int jr = 0; jr < nc; jr += im->nr) {
        const char *bp = bbuf + (size_t)(jr / im->nr) * bpan;
        const float *bias = first && g->bias ? g->bias + jc + jr : NULL;
        int nr = imin(im->nr, nc - jr);
        for (int ir = 0; ir < mc; ir += im->mr) {
            const void *ap = abuf + (size_t)(ir / im->mr) * apan;
            if (jr + im->nr < nc)
                gemm_prefetch_slice(bp + bpan, bpan, ir / im->mr, nir);
            size_t off = (size_t)(ic + ir) * cl->ldc + jc + jr;
            int mr = imin(im->mr, mc - ir);
            if (mr == im->mr && nr == im->nr)
                im->kernel(kc, ap, bp, cl->c + off, cl->ldc, add_c, bias);
            else
                gemm_edge(cl, kc, ap, bp, cl->c + off, mr, nr, add_c, bias);
            for (int i = 0; gelu && i < mr; i++)
                gelu_row(im, cl->c + off + i * cl->ldc, g->pre ? g->pre + off + i * cl->ldc : NULL, nr);
        }
    }
}

static inline const float *a_at(const gemm_call *cl, int i, int p)
{
    return cl->g->trans_a ? cl->a + (size_t)p * cl->lda + i : cl->a + (size_t)i * cl->lda + p;
}

static inline const float *b_at(const gemm_call *cl, int p, int j)
{
    return cl->g->trans_b ? cl->b + (size_t)j * cl->ldb + p : cl->b + (size_t)p * cl->ldb + j;
}

/* A thread's rows fit one A block: each B micro-panel is packed just before
 * its single use, so it is still in L1/L2 when the kernels read it. */
static void gemm_block_flat(const gemm_call *cl, int r0, int r1, int c0, int c1, char *abuf, char *bbuf)
{
    const lmc_gemm_impl *im = cl->im;
    const lmc_gemm *g = cl->g;
    for (int pb = 0; pb < cl->nkb; pb++) {
        int pc = pb * cl->kb, kc = imin(cl->kb, g->k - pc);
        im->pack_a(abuf, a_at(cl, r0, pc), cl->lda, g->trans_a, r1 - r0, kc, cl->round);
        for (int jr = c0; jr < c1; jr += im->nr) {
            int nr = imin(im->nr, c1 - jr);
            im->pack_b(bbuf, b_at(cl, pc, jr), cl->ldb, g->trans_b, kc, nr, cl->round);
            gemm_macro(cl, abuf, bbuf, r0, r1 - r0, jr, nr, kc, pb == 0, pb == cl->nkb - 1);
        }
    }
}

/* One thread's block of C: rows [r0,r1), columns [c0,c1). */
static void gemm_block(const gemm_call *cl, int r0, int r1, int c0, int c1, char *abuf, char *bbuf)
{
    const lmc_gemm_impl *im = cl->im;
    const lmc_gemm *g = cl->g;
    if (cl->flat) {
        gemm_block_flat(cl, r0, r1, c0, c1, abuf, bbuf);
        return;
    }
    for (int jc = c0; jc < c1; jc += im->nc) {
        int nc = imin(im->nc, c1 - jc);
        for (int pb = 0; pb < cl->nkb; pb++) {
            int pc = pb * cl->kb, kc = imin(cl->kb, g->k - pc);
            im->pack_b(bbuf, b_at(cl, pc, jc), cl->ldb, g->trans_b, kc, nc, cl->round);
            for (int ic = r0; ic < r1; ic += im->mc) {
                int mc = imin(im->mc, r1 - ic);
                im->pack_a(abuf, a_at(cl, ic, pc), cl->lda, g->trans_a, mc, kc, cl->round);
                gemm_macro(cl, abuf, bbuf, ic, mc, jc, nc, kc, pb == 0, pb == cl->nkb - 1);
            }
        }
    }
}

/* k == 0: C = (C or 0) + bias, then GELU. */
static void gemm_empty(const lmc_gemm_impl *im, float *c, const lmc_gemm *g)
{
    for (int i = 0; i < g->m; i++) {
        float *row = c + (size_t)i * g->n;
        for (int j = 0; j < g->n; j++) {
            float v = g->accumulate ? 0.0f + row[j] : 0.0f;
            row[j] = g->bias ? v + g->bias[j] : v;
        }
        if (g->gelu)
            gelu_row(im, row, g->pre ? g->pre + (size_t)i * g->n : NULL, g->n);
    }
}

/* No scratch (allocation failed): a plain loop, slow but correct. */
static void gemm_unpacked(const lmc_gemm_impl *im, float *c, const float *a, const float *b,
                          const lmc_gemm *g)
{
    size_t lda = g->trans_a ? g->m : g->k, ldb = g->trans_b ? g->k : g->n;
    for (int i = 0; i < g->m; i++) {
        float *row = c + (size_t)i * g->n;
        for (int j = 0; j < g->n; j++) {
            float acc = 0.0f;
            for (int p = 0; p < g->k; p++) {
                float x = g->trans_a ? a[p * lda + i] : a[i * lda + p];
                float y = g->trans_b ? b[j * ldb + p] : b[p * ldb + j];
                acc += g->prec == LMC_BF16 ? bf16_round(x) * bf16_round(y) : x * y;
            }
            if (g->accumulate)
                acc += row[j];
            row[j] = g->bias ? acc + g->bias[j] : acc;
        }
        if (g->gelu)
            gelu_row(im, row, g->pre ? g->pre + (size_t)i * g->n : NULL, g->n);
    }
}

void lmc_gemm_run(const lmc_gemm_impl *im, int threads, void *scratch, float *c, const float *a,
                  const float *b, const lmc_gemm *g)
{
    if (g->m <= 0 || g->n <= 0)
        return;
    if (g->k <= 0) {
        gemm_empty(im, c, g);
        return;
    }
    if (!scratch) {
        gemm_unpacked(im, c, a, b, g);
        return;
    }
    gemm_call cl;
    gemm_setup(&cl, im, threads, g);
    cl.c = c, cl.a = a, cl.b = b;
    int mt = (g->m + im->mr - 1) / im->mr, nt = (g->n + im->nr - 1) / im->nr;
    int work = cl.tm * cl.tn;
#pragma omp parallel for num_threads(work) schedule(static) if (work > 1)
    for (int w = 0; w < work; w++) {
        int ti = w / cl.tn, tj = w % cl.tn;
        int r0 = mt * ti / cl.tm * im->mr, r1 = imin(g->m, mt * (ti + 1) / cl.tm * im->mr);
        int c0 = nt * tj / cl.tn * im->nr, c1 = imin(g->n, nt * (tj + 1) / cl.tn * im->nr);
        char *abuf = (char *)scratch + (size_t)w * (cl.abytes + cl.bbytes);
        gemm_block(&cl, r0, r1, c0, c1, abuf, abuf + cl.abytes);
    }
}
