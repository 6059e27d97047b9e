/* test_backend_ops.c: every op of every backend against the CPU reference
 * (the portable C path on one thread) over many shapes: odd sizes, size 1,
 * and model-sized ones. A new chip passes this and nothing else changes.
 * Backends tested, each reported on its own line: each CPU instruction-set
 * path on 2 threads, then every other backend lmc knows (lmc_backend_names:
 * cuda, npu, any liblmc_NAME.so in the plugin folders) that has a device
 * here; the others are skipped with the reason. Besides the numbers, each
 * backend's interface: every required op filled, supports answering for
 * plain calls, its properties (host memory, determinism) true, and an
 * unsupported call reaching lmc_backend_check as an error naming the op.
 * Tolerance: max |got - want| <= TOL * (max |want| + 1e-3); fp32 results
 * differ only by summation order, so TOL is 1e-4 (bf16 matmul: inputs are
 * rounded identically, so the same bound holds). */
#include "backend/backend.h"
#include "test.h"

#include <stdint.h>

#define TOL 1e-4

static lmc_backend *REF;
static int QUICK;
static uint64_t rng_state = 1;

static float frand(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng_state >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static float *hrand(size_t n, float scale)
{
    float *p = calloc(n + 16, sizeof(float)); /* padded: tests may upload a few extra */
    for (size_t i = 0; i < n; i++)
        p[i] = frand() * scale;
    return p;
}

static int *hints(size_t n, int hi)
{
    int *p = malloc((n ? n : 1) * sizeof(int));
    for (size_t i = 0; i < n; i++)
        p[i] = (int)((frand() * 0.5f + 0.5f) * hi) % hi;
    return p;
}

/* device copies of host arrays, freed together */
typedef struct {
    lmc_backend *be;
    void *p[32];
    int n;
} devs;

static void *up(devs *d, const void *host, size_t bytes)
{
    void *p = d->be->ops->alloc(d->be, bytes ? bytes : 4);
    if (bytes && host) /* NULL host: zeroed memory */
        d->be->ops->upload(d->be, p, host, bytes);
    d->p[d->n++] = p;
    return p;
}

static float *upf(devs *d, const float *h, size_t n) { return up(d, h, n * sizeof(float)); }

static void down(devs *d, float *host, const void *dev, size_t n)
{
    d->be->ops->sync(d->be);
    d->be->ops->download(d->be, host, dev, n * sizeof(float));
}

static void release(devs *d)
{
    for (int i = 0; i < d->n; i++)
        d->be->ops->free(d->be, d->p[i]);
    d->n = 0;
}

static void compare(const char *be, const char *what, const float *got, const float *want, size_t n)
{
    double maxw = 0, maxe = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double w = fabs(want[i]), e = fabs((double)got[i] - want[i]);
        if (w > maxw)
            maxw = w;
        if (!(e <= maxe)) /* also catches NaN */
            maxe = e, at = i;
    }
    CHECK_MSG(maxe <= TOL * (maxw + 1e-3), "%s %s: max error %.3g at %zu (got %g want %g), max |want| %.3g", be,
              what, maxe, at, got[at], want[at], maxw);
}

/* ---- matmul ---- */

static void run_matmul(lmc_backend *be, const lmc_gemm *g0, const float *a, const float *b, const float *bias,
                       const float *c0, float *c, float *pre)
{
    devs d = {be};
    size_t M = (size_t)g0->m, N = (size_t)g0->n, K = (size_t)g0->k;
    lmc_gemm g = *g0;
    float *da = upf(&d, a, M * K), *db = upf(&d, b, K * N), *dc = upf(&d, c0, M * N);
    g.bias = bias ? upf(&d, bias, N) : NULL;
    g.pre = g.gelu ? upf(&d, c0, M * N) : NULL;
    be->ops->matmul(be, dc, da, db, &g);
    down(&d, c, dc, M * N);
    if (g.gelu)
        down(&d, pre, g.pre, M * N);
    release(&d);
}

/* The fused GELU epilogue and the gelu_forward op give the same bits, so
 * that recomputing an activation in backward (--recompute) reproduces it. */
static void check_gelu_same(lmc_backend *be, const char *what, const float *pre, const float *fused, size_t n)
{
    devs d = {be};
    float *dp = upf(&d, pre, n), *out = malloc(n * 4 + 4);
    be->ops->gelu_forward(be, dp, dp, n);
    down(&d, out, dp, n);
    CHECK_MSG(!memcmp(out, fused, n * 4), "%s %s: gelu_forward differs from the fused epilogue", be->name, what);
    release(&d);
    free(out);
}

static void t_matmul(lmc_backend *be, int m, int n, int k)
{
    float *a = hrand((size_t)m * k, 1), *b = hrand((size_t)k * n, 1), *bias = hrand((size_t)n, 1);
    float *c0 = hrand((size_t)m * n, 1);
    float *want = malloc((size_t)m * n * 4 + 4), *got = malloc((size_t)m * n * 4 + 4);
    float *pw = malloc((size_t)m * n * 4 + 4), *pg = malloc((size_t)m * n * 4 + 4);
    for (int v = 0; v < 16; v++) {
        lmc_gemm g = {.m = m, .n = n, .k = k, .trans_a = v & 1, .trans_b = (v >> 1) & 1, .prec = (v >> 3) & 1};
        int mode = (v >> 2) & 1; /* 0: plain/accumulate, 1: bias (+gelu) */
        g.accumulate = !mode && (v & 8) == 0;
        g.gelu = mode && (v & 8);
        run_matmul(REF, &g, a, b, mode ? bias : NULL, c0, want, pw);
        run_matmul(be, &g, a, b, mode ? bias : NULL, c0, got, pg);
        char what[128];
        snprintf(what, sizeof what, "matmul m%d n%d k%d ta%d tb%d acc%d bias%d gelu%d %s", m, n, k, g.trans_a,
                 g.trans_b, g.accumulate, mode, g.gelu, g.prec ? "bf16" : "f32");
        compare(be->name, what, got, want, (size_t)m * n);
        if (g.gelu) {
            compare(be->name, what, pg, pw, (size_t)m * n);
            check_gelu_same(be, what, pg, got, (size_t)m * n);
        }
    }
    free(a), free(b), free(bias), free(c0), free(want), free(got), free(pw), free(pg);
}

static void t_bias_grad(lmc_backend *be, int m, int n)
{
    float *dout = hrand((size_t)m * n, 1), *db0 = hrand((size_t)n, 1), out[2][4096];
    lmc_backend *bs[2] = {REF, be};
    for (int i = 0; i < 2; i++) {
        devs d = {bs[i]};
        float *dd = upf(&d, dout, (size_t)m * n), *dbias = upf(&d, db0, (size_t)n);
        bs[i]->ops->bias_grad(bs[i], dbias, dd, m, n);
        down(&d, out[i], dbias, (size_t)n);
        release(&d);
    }
    char what[64];
    snprintf(what, sizeof what, "bias_grad %dx%d", m, n);
    compare(be->name, what, out[1], out[0], (size_t)n);
    free(dout), free(db0);
}

/* ---- embeddings ---- */

static void t_embed(lmc_backend *be, int B, int T, int C, int V, int learned)
{
    size_t N = (size_t)B * T;
    float *wte = hrand((size_t)V * C, 1), *wpe = hrand((size_t)(T + 8) * C, 1), *dout = hrand(N * C, 1);
    float *g0 = hrand((size_t)V * C, 1), *p0 = hrand((size_t)(T + 8) * C, 1);
    int *tok = hints(N, V), pos0[64];
    for (int b = 0; b < B; b++)
        pos0[b] = b % 5;
    float *res[2][3];
    lmc_backend *bs[2] = {REF, be};
    for (int i = 0; i < 2; i++) {
        devs d = {bs[i]};
        float *o = upf(&d, dout, N * C), *dwte = upf(&d, g0, (size_t)V * C), *dwpe = upf(&d, p0, (size_t)(T + 8) * C);
        int *dt = up(&d, tok, N * sizeof(int)), *dp = up(&d, pos0, (size_t)B * sizeof(int));
        bs[i]->ops->embed_forward(bs[i], o, dt, dp, upf(&d, wte, (size_t)V * C),
                                  learned ? upf(&d, wpe, (size_t)(T + 8) * C) : NULL, B, T, C);
        res[i][0] = malloc(N * C * 4), res[i][1] = malloc((size_t)V * C * 4), res[i][2] = malloc((size_t)(T + 8) * C * 4);
        down(&d, res[i][0], o, N * C);
        float *dd = upf(&d, dout, N * C);
        bs[i]->ops->embed_backward(bs[i], dwte, learned ? dwpe : NULL, dd, dt, B, T, C);
        down(&d, res[i][1], dwte, (size_t)V * C);
        down(&d, res[i][2], dwpe, (size_t)(T + 8) * C);
        release(&d);
    }
    char what[96];
    snprintf(what, sizeof what, "embed B%d T%d C%d V%d wpe%d", B, T, C, V, learned);
    compare(be->name, what, res[1][0], res[0][0], N * C);
    compare(be->name, what, res[1][1], res[0][1], (size_t)V * C);
    compare(be->name, what, res[1][2], res[0][2], (size_t)(T + 8) * C);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            free(res[i][j]);
    free(wte), free(wpe), free(dout), free(g0), free(p0), free(tok);
}

/* A negative id (a vocabulary-parallel embedding's token held by another
 * rank) reads as zeros (plus wpe) and leaves dwte alone. */
static void t_embed_foreign(lmc_backend *be, int B, int T, int C, int V)
{
    size_t N = (size_t)B * T;
    float *wte = hrand((size_t)V * C, 1), *wpe = hrand((size_t)T * C, 1), *dout = hrand(N * C, 1);
    float *g0 = hrand((size_t)V * C, 1), *out = malloc(N * C * 4), *dw = malloc((size_t)V * C * 4);
    int *tok = hints(N, V);
    for (size_t i = 0; i < N; i += 2)
        tok[i] = -1;
    for (int learned = 0; learned < 2; learned++) {
        devs d = {be};
        float *o = upf(&d, dout, N * C), *dwte = upf(&d, g0, (size_t)V * C), *dp = learned ? upf(&d, wpe, (size_t)T * C) : NULL;
        int *dt = up(&d, tok, N * sizeof(int));
        be->ops->embed_forward(be, o, dt, NULL, upf(&d, wte, (size_t)V * C), dp, B, T, C);
        down(&d, out, o, N * C);
        be->ops->embed_backward(be, dwte, NULL, upf(&d, dout, N * C), dt, B, T, C);
        down(&d, dw, dwte, (size_t)V * C);
        release(&d);
        size_t bad = 0;
        for (size_t i = 0; i < N; i++)
            for (int c = 0; c < C; c++) {
                float want = tok[i] < 0 ? (learned ? wpe[(i % T) * C + c] : 0.0f)
                                        : wte[(size_t)tok[i] * C + c] + (learned ? wpe[(i % T) * C + c] : 0.0f);
                bad += out[i * C + c] != want;
            }
        double sum_g = 0, sum_want = 0; /* dwte gains exactly the rows of the ids >= 0 */
        for (size_t i = 0; i < (size_t)V * C; i++)
            sum_g += dw[i] - g0[i];
        for (size_t i = 0; i < N; i++)
            for (int c = 0; tok[i] >= 0 && c < C; c++)
                sum_want += dout[i * C + c];
        CHECK_MSG(!bad && fabs(sum_g - sum_want) < 1e-3 * (1 + fabs(sum_want)),
                  "%s embed with foreign ids (wpe %d): %zu wrong outputs, dwte gained %g, wanted %g", be->name,
                  learned, bad, sum_g, sum_want);
    }
    free(wte), free(wpe), free(dout), free(g0), free(out), free(dw), free(tok);
}

/* ---- norms ---- */

static void t_norm(lmc_backend *be, int N, int C, int rms, int bias)
{
    size_t n = (size_t)N * C;
    float *x = hrand(n, 2), *w = hrand((size_t)C, 1), *b = hrand((size_t)C, 1), *dout = hrand(n, 1);
    float *di0 = hrand(n, 1), *dw0 = hrand((size_t)C, 1), *db0 = hrand((size_t)C, 1);
    float *r[2][6];
    lmc_backend *bs[2] = {REF, be};
    for (int i = 0; i < 2; i++) {
        lmc_backend *k = bs[i];
        devs d = {k};
        float *dx = upf(&d, x, n), *dw = upf(&d, w, (size_t)C), *dbias = bias ? upf(&d, b, (size_t)C) : NULL;
        float *out = upf(&d, di0, n), *mean = upf(&d, di0, (size_t)N), *rstd = upf(&d, di0, (size_t)N);
        float *dinp = upf(&d, di0, n), *gw = upf(&d, dw0, (size_t)C), *gb = upf(&d, db0, (size_t)C);
        float *dd = upf(&d, dout, n);
        if (rms) {
            k->ops->rmsnorm_forward(k, out, rstd, dx, dw, N, C, 1e-5f);
            k->ops->rmsnorm_backward(k, dinp, gw, dd, dx, dw, rstd, N, C);
        } else {
            k->ops->layernorm_forward(k, out, mean, rstd, dx, dw, dbias, N, C, 1e-5f);
            k->ops->layernorm_backward(k, dinp, gw, bias ? gb : NULL, dd, dx, dw, mean, rstd, N, C);
        }
        size_t sz[6] = {n, (size_t)N, (size_t)N, n, (size_t)C, (size_t)C};
        float *src[6] = {out, mean, rstd, dinp, gw, gb};
        for (int j = 0; j < 6; j++) {
            r[i][j] = malloc(sz[j] * 4);
            down(&d, r[i][j], src[j], sz[j]);
        }
        release(&d);
    }
    static const char *const names[6] = {"out", "mean", "rstd", "dinp", "dw", "db"};
    for (int j = 0; j < 6; j++) {
        if (rms && j == 1)
            continue;
        size_t sz = j == 0 || j == 3 ? n : j < 3 ? (size_t)N : (size_t)C;
        char what[96];
        snprintf(what, sizeof what, "%s N%d C%d bias%d %s", rms ? "rmsnorm" : "layernorm", N, C, bias, names[j]);
        compare(be->name, what, r[1][j], r[0][j], sz);
    }
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 6; j++)
            free(r[i][j]);
    free(x), free(w), free(b), free(dout), free(di0), free(dw0), free(db0);
}

/* ---- activations ---- */

static void t_act(lmc_backend *be, int N, int H, int swiglu)
{
    size_t nin = (size_t)N * H * (swiglu ? 2 : 1), nout = (size_t)N * H;
    float *x = hrand(nin, 4), *dout = hrand(nout, 1), *r[2][2];
    lmc_backend *bs[2] = {REF, be};
    for (int i = 0; i < 2; i++) {
        lmc_backend *k = bs[i];
        devs d = {k};
        float *dx = upf(&d, x, nin), *out = upf(&d, dout, nout), *dd = upf(&d, dout, nout), *din = upf(&d, x, nin);
        if (swiglu) {
            k->ops->swiglu_forward(k, out, dx, N, H);
            k->ops->swiglu_backward(k, din, dx, dd, N, H);
        } else {
            k->ops->gelu_forward(k, out, dx, nout);
            k->ops->gelu_backward(k, dd, dx, dd, nout); /* in place, as the model uses it */
            din = dd;
        }
        r[i][0] = malloc(nout * 4), r[i][1] = malloc(nin * 4);
        down(&d, r[i][0], out, nout);
        down(&d, r[i][1], din, nin);
        release(&d);
    }
    char what[64];
    snprintf(what, sizeof what, "%s N%d H%d", swiglu ? "swiglu" : "gelu", N, H);
    compare(be->name, what, r[1][0], r[0][0], nout);
    compare(be->name, what, r[1][1], r[0][1], nin);
    for (int i = 0; i < 2; i++)
        free(r[i][0]), free(r[i][1]);
    free(x), free(dout);
}

/* ---- rope and attention ---- */

static void t_rope(lmc_backend *be, int B, int T, int NH, int NKV, int HS, int inverse)
{
    size_t n = (size_t)B * T * (NH + 2 * NKV) * HS;
    float *x = hrand(n, 1), *r[2];
    int pos0[16];
    for (int b = 0; b < B; b++)
        pos0[b] = 1000 * b + 3;
    lmc_backend *bs[2] = {REF, be};
    for (int i = 0; i < 2; i++) {
        devs d = {bs[i]};
        float *dx = upf(&d, x, n);
        bs[i]->ops->rope(bs[i], dx, up(&d, pos0, (size_t)B * 4), B, T, NH, NKV, HS, 10000.0f, inverse);
        r[i] = malloc(n * 4);
        down(&d, r[i], dx, n);
        release(&d);
    }
    char what[96];
    snprintf(what, sizeof what, "rope B%d T%d NH%d NKV%d HS%d inv%d", B, T, NH, NKV, HS, inverse);
    compare(be->name, what, r[1], r[0], n);
    free(r[0]), free(r[1]), free(x);
}

static void t_attention(lmc_backend *be, int B, int T, int NH, int NKV, int HS)
{
    size_t nq = (size_t)B * T * (NH + 2 * NKV) * HS, no = (size_t)B * T * NH * HS, nl = (size_t)B * NH * T;
    float *qkv = hrand(nq, 1.5f), *dout = hrand(no, 1), *r[2][3];
    lmc_backend *bs[2] = {REF, be};
    for (int i = 0; i < 2; i++) {
        lmc_backend *k = bs[i];
        devs d = {k};
        float *dq = upf(&d, qkv, nq), *out = upf(&d, dout, no), *lse = upf(&d, dout, nl), *dd = upf(&d, dout, no);
        float *dqkv = upf(&d, qkv, nq);
        k->ops->attention_forward(k, out, lse, dq, B, T, NH, NKV, HS);
        k->ops->attention_backward(k, dqkv, dd, out, lse, dq, B, T, NH, NKV, HS);
        r[i][0] = malloc(no * 4), r[i][1] = malloc(nl * 4), r[i][2] = malloc(nq * 4);
        down(&d, r[i][0], out, no);
        down(&d, r[i][1], lse, nl);
        down(&d, r[i][2], dqkv, nq);
        release(&d);
    }
    char what[96];
    snprintf(what, sizeof what, "attention B%d T%d NH%d NKV%d HS%d", B, T, NH, NKV, HS);
    compare(be->name, what, r[1][0], r[0][0], no);
    compare(be->name, what, r[1][1], r[0][1], nl);
    compare(be->name, what, r[1][2], r[0][2], nq);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            free(r[i][j]);
    free(qkv), free(dout);
}

static void t_decode(lmc_backend *be, int B, int maxT, int NH, int NKV, int HS)
{
    size_t nq = (size_t)B * NH * HS, nc = (size_t)B * maxT * NKV * HS;
    float *q = hrand(nq, 1.5f), *kc = hrand(nc, 1), *vc = hrand(nc, 1), *r[2];
    int len[16];
    for (int b = 0; b < B; b++)
        len[b] = b == B - 1 ? maxT : 1 + (b * 7) % maxT; /* one at full length */
    lmc_backend *bs[2] = {REF, be};
    for (int i = 0; i < 2; i++) {
        devs d = {bs[i]};
        float *out = upf(&d, q, nq);
        bs[i]->ops->attention_decode(bs[i], out, upf(&d, q, nq), upf(&d, kc, nc), upf(&d, vc, nc),
                                     up(&d, len, (size_t)B * 4), B, maxT, NH, NKV, HS);
        r[i] = malloc(nq * 4);
        down(&d, r[i], out, nq);
        release(&d);
    }
    char what[96];
    snprintf(what, sizeof what, "attention_decode B%d maxT%d NH%d NKV%d HS%d", B, maxT, NH, NKV, HS);
    compare(be->name, what, r[1], r[0], nq);
    free(r[0]), free(r[1]), free(q), free(kc), free(vc);
}

/* ---- inference: kv_store and linear (weight-only quantization) ---- */

static void t_kv_store(lmc_backend *be, int B, int T, int maxT, int D, size_t stride)
{
    if (!be->ops->kv_store) {
        fprintf(stderr, "skip kv_store on %s: not implemented\n", be->name);
        return;
    }
    size_t nsrc = (size_t)B * T * stride + 2 * (size_t)D, nc = (size_t)B * maxT * D;
    float *src = hrand(nsrc, 1), *c0 = hrand(nc, 1), *r[2][2];
    int pos0[16];
    for (int b = 0; b < B; b++)
        pos0[b] = (b * 5) % (maxT - T + 1);
    lmc_backend *bs[2] = {REF, be};
    for (int i = 0; i < 2; i++) {
        devs d = {bs[i]};
        float *ds = upf(&d, src, nsrc), *kc = upf(&d, c0, nc), *vc = upf(&d, c0, nc);
        /* k at the start of each row, v D further on, as in a k|v buffer */
        bs[i]->ops->kv_store(bs[i], kc, vc, ds, ds + D, stride, up(&d, pos0, (size_t)B * 4), B, T, maxT, D);
        r[i][0] = malloc(nc * 4), r[i][1] = malloc(nc * 4);
        down(&d, r[i][0], kc, nc);
        down(&d, r[i][1], vc, nc);
        release(&d);
    }
    /* the reference itself against the definition */
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int j = 0; j < D; j++) {
                size_t at = ((size_t)b * maxT + pos0[b] + t) * D + j, from = ((size_t)b * T + t) * stride + j;
                CHECK(r[0][0][at] == src[from] && r[0][1][at] == src[from + D]);
            }
    char what[96];
    snprintf(what, sizeof what, "kv_store B%d T%d maxT%d D%d stride%zu", B, T, maxT, D, stride);
    compare(be->name, what, r[1][0], r[0][0], nc);
    compare(be->name, what, r[1][1], r[0][1], nc);
    for (int i = 0; i < 2; i++)
        free(r[i][0]), free(r[i][1]);
    free(src), free(c0);
}

/* Weights of every type with their exact fp32 values (for the check of the
 * reference against a plain double-precision sum). */
static void *make_weights(lmc_dtype t, int N, int K, float **scale, float *exact)
{
    size_t n = (size_t)N * K;
    float *f = hrand(n, 1);
    *scale = NULL;
    if (t == LMC_F32) {
        memcpy(exact, f, n * 4);
        return f;
    }
    if (t == LMC_BF16) {
        uint16_t *h = malloc(n * 2 + 2);
        for (size_t i = 0; i < n; i++) {
            union { float x; uint32_t u; } v = {f[i]};
            h[i] = (uint16_t)(v.u >> 16); /* truncation is as good as any bf16 */
            union { uint32_t u; float x; } back = {(uint32_t)h[i] << 16};
            exact[i] = back.x;
        }
        free(f);
        return h;
    }
    int8_t *q = malloc(n + 1);
    *scale = hrand((size_t)N, 0.05f);
    for (size_t i = 0; i < n; i++) {
        q[i] = (int8_t)(int)(f[i] * 127.0f);
        exact[i] = (float)q[i] * (*scale)[i / K];
    }
    free(f);
    return q;
}

static void t_linear(lmc_backend *be, int M, int N, int K)
{
    if (!be->ops->linear) {
        fprintf(stderr, "skip linear on %s: not implemented\n", be->name);
        return;
    }
    static const lmc_dtype types[3] = {LMC_F32, LMC_BF16, LMC_I8};
    static const size_t wsize[3] = {4, 2, 1};
    size_t no = (size_t)M * N;
    float *x = hrand((size_t)M * K, 1), *bias = hrand((size_t)N, 1), *o0 = hrand(no, 1);
    float *exact = malloc((size_t)N * K * 4 + 4);
    float *r[2] = {malloc(no * 4 + 4), malloc(no * 4 + 4)};
    for (int ti = 0; ti < 3; ti++) {
        float *scale;
        void *w = make_weights(types[ti], N, K, &scale, exact);
        for (int mode = 0; mode < 3; mode++) { /* plain, bias, bias + accumulate */
            lmc_backend *bs[2] = {REF, be};
            for (int i = 0; i < 2; i++) {
                devs d = {bs[i]};
                float *out = upf(&d, o0, no);
                bs[i]->ops->linear(bs[i], out, upf(&d, x, (size_t)M * K), up(&d, w, (size_t)N * K * wsize[ti]),
                                   types[ti], scale ? upf(&d, scale, (size_t)N) : NULL,
                                   mode ? upf(&d, bias, (size_t)N) : NULL, M, N, K, mode == 2);
                down(&d, r[i], out, no);
                release(&d);
            }
            char what[96];
            snprintf(what, sizeof what, "linear M%d N%d K%d %s mode%d", M, N, K,
                     ti == 0 ? "f32" : ti == 1 ? "bf16" : "i8", mode);
            compare(be->name, what, r[1], r[0], no);
        }
        /* and against a double-precision sum of the exact weights, so the
         * reference is checked too */
        {
            float *want = malloc(no * 4 + 4);
            for (int m = 0; m < M; m++)
                for (int n = 0; n < N; n++) {
                    double acc = 0;
                    for (int k = 0; k < K; k++)
                        acc += (double)x[(size_t)m * K + k] * exact[(size_t)n * K + k];
                    want[(size_t)m * N + n] = (float)acc + bias[n] + o0[(size_t)m * N + n];
                }
            char what[96];
            snprintf(what, sizeof what, "linear M%d N%d K%d type%d vs double", M, N, K, ti);
            compare(be->name, what, r[1], want, no); /* r[1]: the last mode, bias + accumulate */
            free(want);
        }
        free(w), free(scale);
    }
    free(x), free(bias), free(o0), free(exact), free(r[0]), free(r[1]);
}

/* ---- loss, reductions, optimizer, casts ---- */

static void t_xent(lmc_backend *be, int N, int V, int Vp, int backward)
{
    size_t n = (size_t)N * Vp;
    float *logits = hrand(n, 5), *r[2][2];
    int *tg = hints((size_t)N, V);
    lmc_backend *bs[2] = {REF, be};
    for (int i = 0; i < 2; i++) {
        devs d = {bs[i]};
        float *lg = upf(&d, logits, n), *loss = upf(&d, logits, (size_t)N);
        bs[i]->ops->xent(bs[i], loss, lg, up(&d, tg, (size_t)N * 4), N, V, Vp, 1.0f / N, backward);
        r[i][0] = malloc((size_t)N * 4), r[i][1] = malloc(n * 4);
        down(&d, r[i][0], loss, (size_t)N);
        down(&d, r[i][1], lg, n);
        release(&d);
    }
    char what[64];
    snprintf(what, sizeof what, "xent N%d V%d Vp%d bwd%d", N, V, Vp, backward);
    compare(be->name, what, r[1][0], r[0][0], (size_t)N);
    compare(be->name, what, r[1][1], r[0][1], n);
    for (int i = 0; i < 2; i++)
        free(r[i][0]), free(r[i][1]);
    free(logits), free(tg);
}

/* One rank's slice [v0, v0 + nv) of the logits through one xent_part stage
 * (stats in/out, logits in/out as padded (N, Vpl) rows). */
static void xent_part_run(lmc_backend *be, float *stats, float *part, const int *tg, int N, int nv, int Vpl, int v0,
                          int stage)
{
    devs e = {be};
    float *dl = upf(&e, part, (size_t)N * Vpl), *ds = upf(&e, stats, (size_t)N * 2);
    be->ops->xent_part(be, ds, dl, up(&e, tg, (size_t)N * 4), N, nv, Vpl, v0, 0.5f, stage);
    down(&e, stats, ds, (size_t)N * 2);
    down(&e, part, dl, (size_t)N * Vpl);
    release(&e);
}

/* xent_part over P slices of the vocabulary, combined as the model does
 * (max, then sum of exps, then log-sum-exp), equals xent on whole rows:
 * the losses and the gradient, with the padding zeroed. */
static void t_xent_part(lmc_backend *be, int N, int V, int P)
{
    if (!be->ops->xent_part) {
        fprintf(stderr, "note %s: no xent_part op (vocabulary-parallel training unsupported)\n", be->name);
        return;
    }
    int Vl = (V + P - 1) / P, Vpl = (Vl + 15) / 16 * 16;
    size_t n = (size_t)N * V;
    float *logits = hrand(n, 5), *want = malloc(n * 4), *wl = malloc((size_t)N * 4), *got = malloc(n * 4);
    float *loss = calloc((size_t)N, 4), *st = malloc((size_t)N * 2 * 4), *part = malloc((size_t)N * Vpl * 4);
    double *mx = malloc((size_t)N * sizeof(double)), *sum = calloc((size_t)N, sizeof(double));
    double *tlog = calloc((size_t)N, sizeof(double));
    int *tg = hints((size_t)N, V), padding_bad = 0;
    devs d = {REF};
    float *lg = upf(&d, logits, n), *ls = upf(&d, logits, (size_t)N);
    REF->ops->xent(REF, ls, lg, up(&d, tg, (size_t)N * 4), N, V, V, 0.5f, 1);
    down(&d, want, lg, n);
    down(&d, wl, ls, (size_t)N);
    release(&d);
    for (int stage = 0; stage < 3; stage++)
        for (int p = 0; p < P; p++) {
            int v0 = p * Vl, nv = V - v0 < Vl ? (V - v0 > 0 ? V - v0 : 0) : Vl;
            for (int r = 0; r < N; r++) {
                for (int j = 0; j < Vpl; j++)
                    part[(size_t)r * Vpl + j] = j < nv ? logits[(size_t)r * V + v0 + j] : 99.0f;
                st[2 * r] = stage == 1 ? (float)mx[r] : loss[r] + (float)tlog[r]; /* stage 2: the lse */
            }
            xent_part_run(be, st, part, tg, N, nv, Vpl, v0, stage);
            for (int r = 0; r < N; r++) {
                if (stage == 0) {
                    mx[r] = p == 0 || st[2 * r] > mx[r] ? st[2 * r] : mx[r];
                    tlog[r] += st[2 * r + 1];
                } else if (stage == 1) {
                    sum[r] += st[2 * r + 1];
                    if (p == P - 1)
                        loss[r] = (float)(mx[r] + log(sum[r]) - tlog[r]);
                } else {
                    for (int j = 0; j < Vpl; j++)
                        if (j < nv)
                            got[(size_t)r * V + v0 + j] = part[(size_t)r * Vpl + j];
                        else
                            padding_bad += part[(size_t)r * Vpl + j] != 0.0f;
                }
            }
        }
    char what[64];
    snprintf(what, sizeof what, "xent_part N%d V%d P%d", N, V, P);
    compare(be->name, what, loss, wl, (size_t)N);
    compare(be->name, what, got, want, n);
    CHECK_MSG(!padding_bad, "%s %s: %d padded logits not zeroed", be->name, what, padding_bad);
    free(logits), free(want), free(wl), free(got), free(loss), free(st), free(part), free(mx), free(sum);
    free(tlog), free(tg);
}

/* ---- rows by index (mixture-of-experts dispatch) ---- */

/* gather (weighted and not) of m rows from n_in with repeats, scatter-add
 * (weighted and not) into distinct rows of n_in, row_dot (indexed and not) */
static void t_rows(lmc_backend *be, int n_in, int m, int C)
{
    if (!be->ops->gather_rows || !be->ops->scatter_add_rows || !be->ops->row_dot) {
        fprintf(stderr, "note %s: no rows-by-index ops (mixtures of experts unsupported)\n", be->name);
        return;
    }
    int k = m < n_in ? m : n_in, *rep = hints((size_t)m, n_in), *perm = malloc((size_t)n_in * sizeof(int));
    for (int i = 0; i < n_in; i++)
        perm[i] = i;
    for (int i = n_in - 1; i > 0; i--) { /* distinct rows for the scatter */
        int j = (int)((frand() * 0.5f + 0.5f) * (i + 1)) % (i + 1), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    float *in = hrand((size_t)n_in * C, 1), *rows = hrand((size_t)m * C, 1), *w = hrand((size_t)m, 2);
    size_t sz[6] = {(size_t)m * C, (size_t)m * C, (size_t)n_in * C, (size_t)n_in * C, (size_t)m, (size_t)k};
    float *r[2][6];
    lmc_backend *bs[2] = {REF, be};
    for (int i = 0; i < 2; i++) {
        lmc_backend *b = bs[i];
        devs d = {b};
        float *din = upf(&d, in, (size_t)n_in * C), *drows = upf(&d, rows, (size_t)m * C), *dw = upf(&d, w, m);
        int *drep = up(&d, rep, (size_t)m * 4), *dperm = up(&d, perm, (size_t)n_in * 4);
        float *o[6] = {upf(&d, NULL, sz[0]), upf(&d, NULL, sz[1]), upf(&d, in, sz[2]), upf(&d, in, sz[3]),
                       upf(&d, NULL, sz[4]), upf(&d, NULL, sz[5])};
        b->ops->gather_rows(b, o[0], din, drep, NULL, m, C);
        b->ops->gather_rows(b, o[1], din, drep, dw, m, C);
        b->ops->scatter_add_rows(b, o[2], drows, dperm, dw, k, C);
        b->ops->scatter_add_rows(b, o[3], drows, dperm, NULL, k, C);
        b->ops->row_dot(b, o[4], din, drep, drows, m, C);
        b->ops->row_dot(b, o[5], drows, NULL, din, k, C);
        for (int j = 0; j < 6; j++) {
            r[i][j] = malloc(sz[j] * 4 + 4);
            down(&d, r[i][j], o[j], sz[j]);
        }
        release(&d);
    }
    static const char *const names[6] = {"gather_rows", "gather_rows weighted", "scatter_add_rows weighted",
                                         "scatter_add_rows", "row_dot indexed", "row_dot"};
    for (int j = 0; j < 6; j++) {
        char what[96];
        snprintf(what, sizeof what, "%s rows %d of %d C%d", names[j], m, n_in, C);
        compare(be->name, what, r[1][j], r[0][j], sz[j]);
        free(r[0][j]), free(r[1][j]);
    }
    free(rep), free(perm), free(in), free(rows), free(w);
}

static void t_elementwise(lmc_backend *be, size_t n)
{
    float *a = hrand(n, 1), *b = hrand(n, 1), *absb = hrand(n, 1), *r[2][8];
    for (size_t i = 0; i < n; i++)
        absb[i] = fabsf(absb[i]); /* a second moment is never negative */
    lmc_backend *bs[2] = {REF, be};
    lmc_adamw_hp hp = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f,
                       .bias_corr1 = 0.1f, .bias_corr2 = 0.05f, .grad_scale = 0.7f};
    for (int i = 0; i < 2; i++) {
        lmc_backend *k = bs[i];
        devs d = {k};
        float *da = upf(&d, a, n), *db = upf(&d, b, n), *out = upf(&d, a, n), *s = upf(&d, a, 4);
        k->ops->add(k, out, da, db, n);
        r[i][0] = malloc(n * 4 + 4);
        down(&d, r[i][0], out, n);
        k->ops->scale(k, out, -1.5f, n);
        r[i][1] = malloc(n * 4 + 4);
        down(&d, r[i][1], out, n);
        r[i][2] = malloc(8);
        k->ops->sum(k, s, da, n, 0);
        k->ops->sum(k, s + 1, da, n, 1);
        down(&d, r[i][2], s, 2);
        float *p = upf(&d, a, n), *m = upf(&d, b, n), *v = upf(&d, absb, n), *g = upf(&d, b, n);
        k->ops->adamw(k, p, g, m, v, n, &hp);
        r[i][3] = malloc(n * 4 + 4), r[i][4] = malloc(n * 4 + 4), r[i][5] = malloc(n * 4 + 4);
        down(&d, r[i][3], p, n);
        down(&d, r[i][4], m, n);
        down(&d, r[i][5], v, n);
        uint16_t *h = up(&d, a, n * 2 + 4);
        k->ops->cast(k, h, LMC_BF16, da, LMC_F32, n);
        k->ops->cast(k, out, LMC_F32, h, LMC_BF16, n);
        r[i][6] = malloc(n * 4 + 4);
        down(&d, r[i][6], out, n);
        release(&d);
    }
    const char *names[7] = {"add", "scale", "sum", "adamw p", "adamw m", "adamw v", "cast bf16 round trip"};
    size_t sz[7] = {n, n, 2, n, n, n, n};
    for (int j = 0; j < 7; j++) {
        char what[64];
        snprintf(what, sizeof what, "%s n%zu", names[j], n);
        compare(be->name, what, r[1][j], r[0][j], sz[j]);
    }
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 7; j++)
            free(r[i][j]);
    free(a), free(b), free(absb);
}

/* ---- the interface: the table, supports, properties, errors ---- */

static void t_table(lmc_backend *be)
{
    CHECK_OK(lmc_backend_ops_check(be));
    for (int i = 0; i < LMC_OP_COUNT; i++) {
        lmc_op op = (lmc_op)i;
        if (!lmc_backend_has_op(be, op))
            continue;
        lmc_op_query q = {.op = op, .dtype = LMC_F32, .heads = 4, .kv_heads = 2, .head_size = 64, .m = 8, .n = 8,
                          .k = 8};
        lmc_status s = lmc_backend_supports(be, &q);
        CHECK_MSG(s == LMC_OK, "%s: supports refuses a plain fp32 %s: %s", be->name, lmc_op_name(op),
                  lmc_errmsg());
    }
    lmc_op_query bf = {.op = LMC_OP_matmul, .dtype = LMC_BF16, .m = 8, .n = 8, .k = 8};
    CHECK_MSG(lmc_backend_supports(be, &bf) == LMC_OK, "%s: %s", be->name, lmc_errmsg());
}

/* host_memory: the host reads and writes tensors directly; deterministic:
 * the same matmul twice gives the same bits. */
static void t_properties(lmc_backend *be)
{
    float h[4] = {1, -2, 3.5f, 4}, back[4] = {0};
    if (be->host_memory) {
        float *p = be->ops->alloc(be, sizeof h);
        memcpy(p, h, sizeof h);
        be->ops->download(be, back, p, sizeof h);
        CHECK_MSG(!memcmp(back, h, sizeof h), "%s claims host memory, but a host write is not what download reads",
                  be->name);
        be->ops->free(be, p);
    }
    if (!be->deterministic)
        return;
    int m = 37, n = 29, k = 141;
    float *a = hrand((size_t)m * k, 1), *b = hrand((size_t)k * n, 1), *c0 = hrand((size_t)m * n, 1);
    float *r[2] = {malloc((size_t)m * n * 4), malloc((size_t)m * n * 4)}, pre[1];
    lmc_gemm g = {.m = m, .n = n, .k = k, .trans_b = 1, .prec = LMC_BF16};
    for (int i = 0; i < 2; i++)
        run_matmul(be, &g, a, b, NULL, c0, r[i], pre);
    CHECK_MSG(!memcmp(r[0], r[1], (size_t)m * n * 4), "%s claims determinism, but one matmul twice differs",
              be->name);
    free(a), free(b), free(c0), free(r[0]), free(r[1]);
}

/* A call the backend says it cannot run is an error at the next check,
 * naming the op, not a crash; the check clears it. */
static void t_errors(lmc_backend *be)
{
    CHECK_OK(lmc_backend_check(be));
    int HS = 1000;
    lmc_op_query q = {.op = LMC_OP_attention_forward, .dtype = LMC_F32, .heads = 1, .kv_heads = 1, .head_size = HS,
                      .m = 1, .n = 1};
    if (lmc_backend_supports(be, &q) == LMC_OK) {
        fprintf(stderr, "note %s: runs attention with head size %d (no unsupported call to try)\n", be->name, HS);
        return;
    }
    CHECK_MSG(strstr(lmc_errmsg(), "attention_forward") && strstr(lmc_errmsg(), be->name),
              "supports' error names neither the op nor the backend: %s", lmc_errmsg());
    devs d = {be};
    float *qkv = up(&d, NULL, 3 * (size_t)HS * 4), *out = up(&d, NULL, (size_t)HS * 4);
    be->ops->attention_forward(be, out, NULL, qkv, 1, 1, 1, 1, HS);
    lmc_status s = lmc_backend_check(be);
    CHECK_MSG(s != LMC_OK && strstr(lmc_errmsg(), "attention_forward"),
              "%s: attention with head size %d: check gave %s (%s), wanted an error naming attention_forward",
              be->name, HS, lmc_status_name(s), s ? lmc_errmsg() : "");
    CHECK_OK(lmc_backend_check(be)); /* cleared */
    release(&d);
}

static void all_ops(lmc_backend *be)
{
    t_table(be);
    t_properties(be);
    t_errors(be);
    static const int mm[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 33, 65}, {64, 64, 64}, {100, 37, 200}, {1, 300, 17},
                                {129, 1, 31}, {256, 768, 768}, {64, 2304, 768}};
    int nmm = QUICK ? 6 : 9;
    for (int i = 0; i < nmm; i++)
        t_matmul(be, mm[i][0], mm[i][1], mm[i][2]);
    t_bias_grad(be, 1, 1);
    t_bias_grad(be, 77, 300);
    t_bias_grad(be, 256, 2304);
    t_embed(be, 1, 1, 1, 2, 1);
    t_embed(be, 2, 9, 33, 50, 1);
    t_embed(be, 3, 16, 64, 7, 0);
    static const int nm[][2] = {{1, 1}, {3, 7}, {5, 1000}, {64, 768}};
    for (int i = 0; i < 4; i++)
        for (int v = 0; v < 3; v++)
            t_norm(be, nm[i][0], nm[i][1], v == 2, v == 0);
    t_act(be, 1, 1, 0);
    t_act(be, 7, 333, 0);
    t_act(be, 1, 1, 1);
    t_act(be, 7, 333, 1);
    t_rope(be, 1, 1, 1, 1, 2, 0);
    t_rope(be, 2, 13, 4, 2, 16, 0);
    t_rope(be, 2, 13, 4, 1, 64, 1);
    t_rope(be, 3, 1, 4, 0, 16, 0); /* q alone (inference) */
    t_rope(be, 3, 1, 0, 2, 16, 0); /* k|v alone (inference) */
    static const int at[][5] = {{1, 1, 1, 1, 1}, {2, 7, 4, 2, 8}, {1, 65, 3, 1, 16}, {2, 33, 2, 2, 64},
                                {1, 130, 4, 4, 32}};
    for (int i = 0; i < (QUICK ? 4 : 5); i++)
        t_attention(be, at[i][0], at[i][1], at[i][2], at[i][3], at[i][4]);
    t_decode(be, 1, 1, 1, 1, 4);
    t_decode(be, 3, 40, 4, 2, 16);
    t_decode(be, 2, 200, 6, 6, 64);
    t_decode(be, 3, 300, 4, 2, 24);   /* head size with a tail */
    t_decode(be, 2, 1000, 2, 1, 80);  /* long context, GQA */
    t_kv_store(be, 1, 1, 1, 1, 2);
    t_kv_store(be, 3, 1, 40, 32, 64);
    t_kv_store(be, 2, 17, 40, 48, 7 * 16);
    static const int ln[][3] = {{1, 1, 1}, {1, 5, 17}, {3, 33, 16}, {4, 8, 100}, {7, 13, 31},
                                {1, 768, 768}, {5, 9, 9000}, /* long rows */
                                {16, 300, 768}, {70, 65, 129}};
    for (int i = 0; i < (QUICK ? 7 : 9); i++)
        t_linear(be, ln[i][0], ln[i][1], ln[i][2]);
    t_xent(be, 1, 2, 2, 1);
    t_xent(be, 5, 97, 128, 1);
    t_xent(be, 5, 97, 128, 0);
    t_xent(be, 3, 5000, 5056, 1);
    t_xent_part(be, 5, 97, 3);
    t_xent_part(be, 4, 64, 2);
    t_xent_part(be, 3, 5000, 4);
    t_embed_foreign(be, 2, 7, 24, 50);
    static const int rw[][3] = {{1, 1, 1}, {7, 5, 33}, {50, 120, 17}, {300, 600, 768}, {1000, 2000, 129}};
    for (int i = 0; i < (QUICK ? 4 : 5); i++)
        t_rows(be, rw[i][0], rw[i][1], rw[i][2]);
    t_elementwise(be, 1);
    t_elementwise(be, 1000);
    t_elementwise(be, 100003);
}

/* Runs the suite on one backend, on a line of its own. */
static void run_backend(lmc_backend *be, const char *label)
{
    int before = test_failures;
    test_current = label;
    all_ops(be);
    CHECK_OK(lmc_backend_check(be));
    fprintf(stderr, "%s %s\n", test_failures == before ? "ok  " : "FAIL", label);
}

/* Every backend lmc knows but the CPU, when it has a device here. */
static void other_backends(void)
{
    char names[32][32], desc[1024];
    int n = lmc_backend_names(names, 32), count = 0;
    for (int i = 0; i < n; i++) {
        const lmc_backend_plugin *p;
        lmc_backend *be = NULL;
        if (!strcmp(names[i], "cpu"))
            continue;
        if (lmc_backend_find(names[i], &p) != LMC_OK || p->probe(&count, desc, sizeof desc) != LMC_OK) {
            fprintf(stderr, "skip %s: %s\n", names[i], lmc_errmsg());
            continue;
        }
        test_current = names[i];
        CHECK_OK(lmc_backend_open(names[i], 2, &be)); /* it has a device: it must open */
        if (be)
            run_backend(be, be->name);
        lmc_backend_close(be);
    }
}

int main(void)
{
    QUICK = getenv("LMC_TEST_QUICK") != NULL;
    CHECK_OK(lmc_cpu_backend_open(1, "c", &REF));
    const char *isas[4];
    int n = lmc_cpu_isa_list(isas, 4);
    for (int i = 0; i < n; i++) {
        lmc_backend *be = NULL;
        CHECK_OK(lmc_cpu_backend_open(2, isas[i], &be));
        char name[32];
        snprintf(name, sizeof name, "cpu-%s-2t", isas[i]);
        be->name = name;
        run_backend(be, name);
        lmc_backend_close(be);
    }
    other_backends();
    lmc_backend_close(REF);
    return test_summary();
}
