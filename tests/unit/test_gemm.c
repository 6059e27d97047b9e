/* test_gemm.c: the CPU backend's GEMM (the matmul op) against a plain
 * double-precision reference, on every instruction-set path this machine
 * runs, every transposition, accumulate/bias/GELU, fp32 and bf16, shapes
 * from 1 and odd sizes to several cache blocks; exact bf16 rounding of the
 * packers; bit-identical results for any thread count and row split.
 *
 * Tolerances. Each C element is a sum of k products (exact in bf16: 8-bit
 * significands) plus C and bias, accumulated in fp32 by at most k+2 rounded
 * additions, each adding at most u = 2^-24 relative error of a partial sum,
 * so |got - ref| <= (k + 3) u (sum |a b| + |C| + |bias|) (Higham's bound for
 * recursive summation, true for any summation order or blocking). bf16 is
 * checked against products of bf16-rounded inputs, so the bound is the same.
 * GELU: its slope is at most 1.13 and the kernels' formulas (tanhf, or an
 * exp-based sigmoid) are accurate to a few ulp of |x|, so the GELU tolerance
 * is 1.2 x the above + 8 u |x|.
 */
#include "backend/backend.h"
#include "backend/cpu/gemm.h"
#include "lmc/core.h"
#include "test.h"

#include <stdint.h>

#define GUARD 37
#define SENTINEL 12345.0f

typedef struct {
    int m, n, k;
} shape;

/* size 1, odd sizes, k = 0, one tile, tile +- 1, several k blocks (KC: C and
 * AVX2 256, AVX-512 fp32 384, bf16 768); the flat loop nest (a thread's rows
 * fit one A block: MC = C 128, AVX2 264, AVX-512 256) and the blocked one,
 * with several A blocks and B blocks (NC: C 1024, AVX2 1536, AVX-512 4080) */
static const shape shapes_full[] = {
    {1, 1, 1},     {1, 1, 17},     {3, 5, 7},     {1, 63, 2},     {17, 1, 65},     {2, 3, 0},
    {8, 48, 1},    {8, 48, 64},    {9, 49, 33},   {7, 47, 31},    {63, 65, 17},    {17, 63, 65},
    {48, 97, 300}, {33, 100, 800}, {300, 50, 40}, {20, 1600, 24}, {130, 200, 129}, {600, 61, 400},
    {600, 4100, 3},
};
static const shape shapes_quick[] = {
    {1, 1, 1}, {3, 5, 7}, {2, 3, 0}, {8, 48, 64}, {17, 63, 65}, {20, 70, 300}, {600, 20, 9},
};

typedef struct {
    char name[48];
    lmc_backend *be;  /* through the ops table, or straight into the driver: */
    lmc_cpu_isa isa;
    int allow_dot;    /* bf16 with vdpbf16ps where the CPU has it */
    int threads;
} runner;

static int quick(void) { return getenv("LMC_TEST_QUICK") && atoi(getenv("LMC_TEST_QUICK")); }

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void)
{
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (2.0 / 16777216.0) - 1.0);
}

static void fill(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = frand();
}

static void run_mm(const runner *r, float *c, const float *a, const float *b, const lmc_gemm *g)
{
    if (r->be) {
        r->be->ops->matmul(r->be, c, a, b, g);
        return;
    }
    const lmc_gemm_impl *im = lmc_gemm_pick(r->isa, g->prec, r->allow_dot);
    size_t bytes = lmc_gemm_scratch_bytes(im, r->threads, g);
    void *s = bytes ? lmc_alloc(bytes, "test gemm scratch") : NULL;
    lmc_gemm_run(im, r->threads, s, c, a, b, g);
    lmc_free(s);
}

/* double reference: p = op(A) op(B) on (bf16-rounded) inputs, s = sum |a b| */
static void reference(double *p, double *s, const float *a, const float *b, shape sh, int ta, int tb,
                      int bf)
{
    for (int i = 0; i < sh.m; i++)
        for (int j = 0; j < sh.n; j++) {
            double acc = 0, mag = 0;
            for (int q = 0; q < sh.k; q++) {
                float x = ta ? a[(size_t)q * sh.m + i] : a[(size_t)i * sh.k + q];
                float y = tb ? b[(size_t)j * sh.k + q] : b[(size_t)q * sh.n + j];
                if (bf)
                    x = bf16_round(x), y = bf16_round(y);
                acc += (double)x * y;
                mag += fabs((double)x * y);
            }
            p[(size_t)i * sh.n + j] = acc, s[(size_t)i * sh.n + j] = mag;
        }
}

static double gelu_ref(double x)
{
    return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

/* mode bits: 1 accumulate, 2 bias, 4 gelu, 8 gelu with pre */
static const int modes[] = {0, 1, 2, 3, 4 | 2, 8 | 4};

typedef struct {
    shape sh;
    int ta, tb, bf;
    const float *a, *b, *c0, *bias;
    const double *p, *s;
    const double *gelu_b, *gelu_0; /* GELU of p + bias, and of p */
} gemm_case;

static void check_mode(const runner *r, const gemm_case *t, int mode, float *c, float *pre)
{
    shape sh = t->sh;
    size_t mn = (size_t)sh.m * sh.n;
    memcpy(c, t->c0, mn * sizeof(float));
    for (int i = 0; i < GUARD; i++)
        c[mn + i] = pre[mn + i] = SENTINEL;
    lmc_gemm g = {.m = sh.m, .n = sh.n, .k = sh.k, .trans_a = t->ta, .trans_b = t->tb,
                  .accumulate = mode & 1, .prec = t->bf ? LMC_BF16 : LMC_F32,
                  .bias = mode & 2 ? t->bias : NULL, .gelu = (mode & 12) != 0,
                  .pre = mode & 8 ? pre : NULL};
    run_mm(r, c, t->a, t->b, &g);
    double worst = 0;
    size_t bad = 0, where = 0;
    for (size_t e = 0; e < mn; e++) {
        int j = (int)(e % sh.n);
        double cv = mode & 1 ? t->c0[e] : 0.0, bv = mode & 2 ? t->bias[j] : 0.0;
        double want = t->p[e] + cv + bv;
        double tol = (sh.k + 3) * 0x1p-24 * (t->s[e] + fabs(cv) + fabs(bv)) + 1e-38;
        double got = c[e];
        if (mode & 8) {
            double err = fabs(pre[e] - want) / tol;
            if (!(err <= 1.0))
                bad++, where = e, worst = err > worst || err != err ? err : worst;
        }
        if (mode & 12) { /* GELU modes never accumulate */
            tol = 1.2 * tol + 8 * 0x1p-24 * fabs(want);
            want = mode & 2 ? t->gelu_b[e] : t->gelu_0[e];
        }
        double err = fabs(got - want) / tol;
        if (!(err <= 1.0))
            bad++, where = e, worst = err > worst || err != err ? err : worst;
    }
    for (int i = 0; i < GUARD; i++)
        bad += c[mn + i] != SENTINEL || pre[mn + i] != SENTINEL;
    CHECK_MSG(bad == 0, "%s %s m=%d n=%d k=%d ta=%d tb=%d mode=%d: %zu bad, worst %.3g x tol at %zu",
              r->name, t->bf ? "bf16" : "fp32", sh.m, sh.n, sh.k, t->ta, t->tb, mode, bad, worst, where);
}

static void check_shape(const runner *rs, int nr, shape sh, int bf)
{
    size_t mn = (size_t)sh.m * sh.n;
    float *a = malloc(((size_t)sh.m * sh.k + 1) * sizeof(float));
    float *b = malloc(((size_t)sh.k * sh.n + 1) * sizeof(float));
    float *c0 = malloc(mn * sizeof(float)), *bias = malloc(sh.n * sizeof(float));
    float *c = malloc((mn + GUARD) * sizeof(float)), *pre = malloc((mn + GUARD) * sizeof(float));
    double *p = malloc(mn * sizeof(double)), *s = malloc(mn * sizeof(double));
    double *gb = malloc(mn * sizeof(double)), *g0 = malloc(mn * sizeof(double));
    fill(a, (size_t)sh.m * sh.k), fill(b, (size_t)sh.k * sh.n), fill(c0, mn), fill(bias, sh.n);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            reference(p, s, a, b, sh, ta, tb, bf);
            for (size_t e = 0; e < mn; e++)
                gb[e] = gelu_ref(p[e] + bias[e % sh.n]), g0[e] = gelu_ref(p[e]);
            gemm_case t = {sh, ta, tb, bf, a, b, c0, bias, p, s, gb, g0};
            for (int r = 0; r < nr; r++)
                for (size_t md = 0; md < sizeof modes / sizeof *modes; md++)
                    check_mode(&rs[r], &t, modes[md], c, pre);
        }
    free(a), free(b), free(c0), free(bias), free(c), free(pre), free(p), free(s), free(gb), free(g0);
}

static lmc_cpu_isa isa_of(const char *name)
{
    return !strncmp(name, "avx512", 6) ? LMC_ISA_AVX512 : !strcmp(name, "avx2") ? LMC_ISA_AVX2 : LMC_ISA_C;
}

/* every ISA path of the backend (2 threads; other thread counts give the
 * same bits, see test_determinism), and, straight into the driver, AVX-512
 * bf16 without vdpbf16ps (rounded fp32 panels, as on CPUs without
 * AVX512-BF16) */
static int make_runners(runner *rs, int max)
{
    const char *isas[4];
    int ni = lmc_cpu_isa_list(isas, 4), n = 0;
    for (int i = 0; i < ni && n + 2 <= max; i++) {
        lmc_backend *be = NULL;
        CHECK_OK(lmc_cpu_backend_open(2, isas[i], &be));
        if (!be)
            continue;
        rs[n] = (runner){.be = be, .threads = 2};
        snprintf(rs[n++].name, sizeof rs[0].name, "%s/2t", isas[i]);
        if (!strcmp(isas[i], "avx512")) {
            rs[n] = (runner){.isa = LMC_ISA_AVX512, .allow_dot = 0, .threads = 1};
            snprintf(rs[n++].name, sizeof rs[0].name, "avx512-nodot/1t");
        }
    }
    return n;
}

static void free_runners(runner *rs, int n)
{
    for (int i = 0; i < n; i++)
        if (rs[i].be)
            lmc_backend_close(rs[i].be);
}

static void test_shapes(void)
{
    runner rs[8];
    int nr = make_runners(rs, 8);
    CHECK(nr >= 1);
    const shape *sh = quick() ? shapes_quick : shapes_full;
    int ns = quick() ? (int)(sizeof shapes_quick / sizeof *shapes_quick)
                     : (int)(sizeof shapes_full / sizeof *shapes_full);
    for (int bf = 0; bf < 2; bf++)
        for (int i = 0; i < ns; i++)
            check_shape(rs, nr, sh[i], bf);
    free_runners(rs, nr);
}

static uint32_t bits_of(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

static float float_of(uint32_t u)
{
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* got must be bf16_round(x) exactly (nan: any nan) */
static int same_rounding(float got, float x)
{
    float want = bf16_round(x);
    return want != want ? got != got : bits_of(got) == bits_of(want);
}

/* finite values near rounding ties, in every lane of every packer: C = A.I
 * (and I.B) returns the rounded operand exactly. No fp32 denormals: the
 * vdpbf16ps path flushes them to 0 by design (gemm_avx512_bf16.c). */
static const uint32_t finite_specials[] = {
    0x3f808000u, 0x3f818000u, 0x3f808001u, 0x3f807fffu, 0xbf818000u, 0xbf808000u,
    0x7f7f7fffu, 0x7f7e8000u, 0x00800000u, 0x80818000u, 0x3f80ffffu, 0x4b7fff80u,
};
/* overflow, infinities and nans: k = 1, so no 0 x inf products appear */
static const uint32_t wild_specials[] = {0x7f7fffffu, 0xff7fffffu, 0x7f7f8000u, 0x7f800000u,
                                         0xff800000u, 0x7fc00000u, 0x7f800001u, 0xffc00001u};

static void round_case(const runner *r, int side, int ta, int tb, int wild)
{
    int s = wild ? 40 : 37, k = wild ? 1 : 40; /* s: the special operand's other dim */
    int m = side ? k : s, n = side ? s : k;
    int nsp = wild ? (int)(sizeof wild_specials / 4) : (int)(sizeof finite_specials / 4);
    const uint32_t *sp = wild ? wild_specials : finite_specials;
    float *x = calloc((size_t)s * k, sizeof(float)), *id = calloc((size_t)k * k, sizeof(float));
    float *c = calloc((size_t)m * n, sizeof(float));
    for (int i = 0; i < s * k; i++)
        x[i] = float_of(sp[(i * 7 + i / k) % nsp]);
    for (int i = 0; i < k; i++)
        id[(size_t)i * k + i] = 1.0f;
    /* side 0: A = x (s,k), B = I; side 1: A = I, B = x (k,s); C = op(x) */
    lmc_gemm g = {.m = m, .n = n, .k = k, .trans_a = ta, .trans_b = tb, .prec = LMC_BF16};
    run_mm(r, c, side ? id : x, side ? x : id, &g);
    int bad = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float v;
            if (!side)
                v = ta ? x[(size_t)j * m + i] : x[(size_t)i * k + j];
            else
                v = tb ? x[(size_t)j * k + i] : x[(size_t)i * n + j];
            bad += !same_rounding(c[(size_t)i * n + j], v);
        }
    CHECK_MSG(bad == 0, "%s bf16 rounding side=%d ta=%d tb=%d wild=%d: %d wrong", r->name, side, ta, tb,
              wild, bad);
    free(x), free(id), free(c);
}

static void test_bf16_rounding(void)
{
    runner rs[8];
    int nr = make_runners(rs, 8);
    for (int r = 0; r < nr; r++)
        for (int side = 0; side < 2; side++)
            for (int t = 0; t < 4; t++)
                for (int wild = 0; wild < 2; wild++)
                    round_case(&rs[r], side, t & 1, t >> 1, wild);
    free_runners(rs, nr);
}

static int same_bits(const float *x, const float *y, size_t n) { return !memcmp(x, y, n * sizeof(float)); }

/* One layout and mode, on one path: threads 1, 2, 3 (backend) and 4 (a 2 x 2
 * grid), and rows computed as two separate calls (two data-parallel ranks),
 * all bit-identical. */
static void determinism_case(const char *isa, shape sh, int ta, int tb, lmc_dtype prec, int mode)
{
    size_t mn = (size_t)sh.m * sh.n;
    float *a = malloc((size_t)sh.m * sh.k * sizeof(float)), *b = malloc((size_t)sh.k * sh.n * sizeof(float));
    float *c0 = malloc(mn * sizeof(float)), *bias = malloc(sh.n * sizeof(float));
    float *ref = malloc(mn * sizeof(float)), *c = malloc(mn * sizeof(float));
    float *pre_ref = malloc(mn * sizeof(float)), *pre = malloc(mn * sizeof(float));
    fill(a, (size_t)sh.m * sh.k), fill(b, (size_t)sh.k * sh.n), fill(c0, mn), fill(bias, sh.n);
    lmc_gemm g = {.m = sh.m, .n = sh.n, .k = sh.k, .trans_a = ta, .trans_b = tb, .prec = prec,
                  .accumulate = mode == 1, .bias = mode ? bias : NULL, .gelu = mode == 2};
    int dot = !strstr(isa, "nodot");
    runner r1 = {.isa = isa_of(isa), .allow_dot = dot, .threads = 1};
    for (int t = 1; t <= 4; t++) {
        lmc_backend *be = NULL;
        if (t < 4)
            CHECK_OK(lmc_cpu_backend_open(t, isa, &be));
        runner r = {.be = be, .isa = isa_of(isa), .allow_dot = dot, .threads = t};
        memcpy(c, c0, mn * sizeof(float));
        g.pre = mode == 2 ? (t == 1 ? pre_ref : pre) : NULL;
        run_mm(&r, c, a, b, &g);
        if (t == 1)
            memcpy(ref, c, mn * sizeof(float));
        else
            CHECK_MSG(same_bits(ref, c, mn) && (mode != 2 || same_bits(pre_ref, pre, mn)),
                      "%s %s ta=%d tb=%d mode=%d: %d threads differ from 1", isa,
                      prec ? "bf16" : "fp32", ta, tb, mode, t);
        if (be)
            lmc_backend_close(be);
    }
    if (!ta) { /* two "ranks": rows [0,split) and [split,m), split not a tile multiple */
        int split = sh.m / 2 + 3;
        memcpy(c, c0, mn * sizeof(float));
        lmc_gemm h = g;
        h.pre = NULL, h.gelu = 0, h.m = split;
        run_mm(&r1, c, a, b, &h);
        h.m = sh.m - split;
        run_mm(&r1, c + (size_t)split * sh.n, a + (size_t)split * sh.k, b, &h);
        memcpy(ref, c0, mn * sizeof(float));
        h = g, h.pre = NULL, h.gelu = 0;
        run_mm(&r1, ref, a, b, &h);
        CHECK_MSG(same_bits(ref, c, mn), "%s %s ta=%d tb=%d mode=%d: row split differs", isa,
                  prec ? "bf16" : "fp32", ta, tb, mode);
    }
    free(a), free(b), free(c0), free(bias), free(ref), free(c), free(pre_ref), free(pre);
}

static void test_determinism(void)
{
    const char *isas[4];
    int ni = lmc_cpu_isa_list(isas, 4);
    /* flat with 2+ threads, blocked with 1; blocked with 1 and 2 */
    shape shs[2] = {{300, 290, 530}, {600, 130, 400}};
    if (quick())
        shs[0] = (shape){70, 100, 90}, shs[1] = (shape){600, 20, 30};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < ni; i++)
            for (int t = 0; t < 4; t++)
                for (int prec = 0; prec < 2; prec++)
                    for (int mode = 0; mode < 3; mode++)
                        determinism_case(isas[i], shs[s], t & 1, t >> 1, (lmc_dtype)prec, mode);
}

int main(void)
{
    RUN(test_shapes);
    RUN(test_bf16_rounding);
    RUN(test_determinism);
    return test_summary();
}
