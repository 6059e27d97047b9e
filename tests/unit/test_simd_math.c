/* test_simd_math.c: the CPU backend's vector math (src/backend/cpu/simd_math.h)
 * against libm in double precision: e^x of both vector widths, tanh and
 * sigmoid, over every 61st float in their ranges (997th with
 * LMC_TEST_QUICK), plus the clamps the callers rely on. Prints each form's max ulp difference.
 *
 * With --gelu IN DIR it is the helper of tests/oracle/test_simd_math.py:
 * reads float32 inputs from IN and writes, for each instruction-set path of
 * this CPU, DIR/gelu_<isa>.f32 (the gelu_forward op, which is the matmul's
 * fused epilogue) and DIR/grad_<isa>.f32 (gelu_backward with dout = 1),
 * which the oracle compares with PyTorch. */
#include "backend/backend.h"
#include "backend/cpu/simd_math.h"
#include "test.h"

#include <float.h>
#include <stdint.h>

#if defined(__x86_64__)
#define CH 4096
static int STRIDE = 61; /* every 61st float; 997th under LMC_TEST_QUICK (the sanitizer run) */

/* distance in ulps between a float and the double it approximates */
static double ulps(float got, double want)
{
    int e = want == 0 ? -149 : ilogb(want) - 23;
    return fabs((double)got - want) / ldexp(1.0, e < -149 ? -149 : e);
}

/* floats in order as integers: -0 and +0 are both 0 */
static int32_t key_of(float f)
{
    int32_t i;
    memcpy(&i, &f, 4);
    return i >= 0 ? i : -(i & 0x7fffffff);
}

static float float_of(int32_t k)
{
    uint32_t u = k >= 0 ? (uint32_t)k : 0x80000000u | (uint32_t)-k;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* the next floats from *at up to hi, every STRIDE-th, CH at a time; returns how many */
static int floats_from(float *x, int32_t *at, float hi)
{
    int n = 0;
    for (; n < CH && *at <= key_of(hi); n++, *at += STRIDE)
        x[n] = float_of(*at);
    for (int i = n; i < CH; i++)
        x[i] = 0;
    return n;
}

enum { EXP512, EXP256, TANH512, SIGMOID512 };

LMC_TARGET(AVX512) static void apply512(int f, float *y, const float *x)
{
    for (int i = 0; i < CH; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        _mm512_storeu_ps(y + i, f == EXP512 ? lmc_exp512(v) : f == TANH512 ? lmc_tanh512(v) : lmc_sigmoid512(v));
    }
}

LMC_TARGET(AVX2) static void apply256(float *y, const float *x)
{
    for (int i = 0; i < CH; i += 8)
        _mm256_storeu_ps(y + i, lmc_exp256(_mm256_loadu_ps(x + i)));
}

static void apply(int f, float *y, const float *x)
{
    if (f == EXP256)
        apply256(y, x);
    else
        apply512(f, y, x);
}

static double ref(int f, double x)
{
    return f == EXP512 || f == EXP256 ? exp(x) : f == TANH512 ? tanh(x) : 1.0 / (1.0 + exp(-x));
}

/* max error over [lo, hi] in ulps (rel) or in units of FLT_EPSILON (abs) */
static double max_err(int f, float lo, float hi, int absolute, float *worst_x)
{
    float x[CH], y[CH];
    int32_t at = key_of(lo);
    double worst = 0;
    for (int n; (n = floats_from(x, &at, hi)) > 0;) {
        apply(f, y, x);
        for (int i = 0; i < n; i++) {
            double want = ref(f, x[i]), e = absolute ? fabs(y[i] - want) / FLT_EPSILON : ulps(y[i], want);
            if (!(e <= worst))
                worst = e, *worst_x = x[i];
        }
    }
    return worst;
}

static int have(const char *isa)
{
    const char *names[4];
    int n = lmc_cpu_isa_list(names, 4);
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], isa))
            return 1;
    return 0;
}

/* e^x to 2 ulps where the result is a normal float, both widths */
static void test_exp(void)
{
    static const struct { int f; const char *isa, *name; } w[] = {{EXP512, "avx512", "lmc_exp512"},
                                                                 {EXP256, "avx2", "lmc_exp256"}};
    for (int k = 0; k < 2; k++) {
        if (!have(w[k].isa))
            continue;
        float at;
        double e = max_err(w[k].f, -87.0f, w[k].f == EXP512 ? 88.0f : 87.0f, 0, &at);
        fprintf(stderr, "  %s vs exp: max %.2f ulp (x = %g)\n", w[k].name, e, at);
        CHECK_MSG(e <= 2.0, "%s: %.2f ulp at x = %g", w[k].name, e, at);
        /* the clamps: below -87 gives e^-87; GELU's e^{-2u} relies on +inf giving a finite value */
        float x[CH] = {-1000.0f, -87.0f, INFINITY, -INFINITY, w[k].f == EXP512 ? 88.0f : 87.0f}, y[CH];
        apply(w[k].f, y, x);
        CHECK_MSG(y[0] == y[1] && y[0] > 0 && isfinite(y[2]) && y[2] == y[4] && y[3] == y[1],
                  "%s clamps: e(-1000) %g e(-87) %g e(inf) %g e(-inf) %g", w[k].name, y[0], y[1], y[2], y[3]);
    }
}

/* tanh to 2 FLT_EPSILON absolute (exact at both ends), sigmoid to 4 ulp */
static void test_tanh_sigmoid(void)
{
    if (!have("avx512"))
        return;
    float at;
    double e = max_err(TANH512, -20.0f, 20.0f, 1, &at);
    fprintf(stderr, "  lmc_tanh512 vs tanh: max %.2f FLT_EPSILON absolute (x = %g)\n", e, at);
    CHECK_MSG(e <= 2.0, "lmc_tanh512: %.2f eps at x = %g", e, at);
    e = max_err(SIGMOID512, -87.0f, 88.0f, 0, &at);
    fprintf(stderr, "  lmc_sigmoid512 vs 1/(1+exp(-x)): max %.2f ulp (x = %g)\n", e, at);
    CHECK_MSG(e <= 4.0, "lmc_sigmoid512: %.2f ulp at x = %g", e, at);
    float x[CH] = {-1000.0f, 1000.0f, 30.0f, -30.0f}, y[CH];
    apply(TANH512, y, x);
    CHECK_MSG(y[0] == -1.0f && y[1] == 1.0f && y[2] == 1.0f && y[3] == -1.0f, "tanh ends: %g %g %g %g", y[0], y[1],
              y[2], y[3]);
}
#endif

static float *read_f32(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    float *x = NULL;
    if (f && !fseek(f, 0, SEEK_END)) {
        long len = ftell(f);
        rewind(f);
        *n = len > 0 ? (size_t)len / 4 : 0;
        x = malloc(*n * 4 + 4);
        if (x && fread(x, 4, *n, f) != *n)
            free(x), x = NULL;
    }
    if (f)
        fclose(f);
    return x;
}

static int write_f32(const char *dir, const char *what, const char *isa, const float *y, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s_%s.f32", dir, what, isa);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(y, 4, n, f) == n;
    return (f ? fclose(f) : 0) == 0 && ok;
}

/* the helper mode: every path's gelu_forward and gelu_backward of IN */
static int dump_gelu(const char *in, const char *dir)
{
    size_t n = 0;
    float *x = read_f32(in, &n), *y = malloc(n * 4 + 4), *ones = malloc(n * 4 + 4);
    const char *isas[4];
    int ni = lmc_cpu_isa_list(isas, 4), ok = x && y && ones && n;
    for (size_t i = 0; ok && i < n; i++)
        ones[i] = 1.0f;
    for (int k = 0; ok && k < ni; k++) {
        lmc_backend *be = NULL;
        ok = lmc_cpu_backend_open(1, isas[k], &be) == LMC_OK;
        if (ok) {
            be->ops->gelu_forward(be, y, x, n);
            ok = write_f32(dir, "gelu", isas[k], y, n);
            be->ops->gelu_backward(be, y, x, ones, n);
            ok = ok && write_f32(dir, "grad", isas[k], y, n);
            lmc_backend_close(be);
        }
    }
    if (!ok)
        fprintf(stderr, "test_simd_math --gelu %s %s: failed (%s)\n", in, dir, lmc_errmsg());
    free(x), free(y), free(ones);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "--gelu"))
        return dump_gelu(argv[2], argv[3]);
#if defined(__x86_64__)
    if (getenv("LMC_TEST_QUICK"))
        STRIDE = 997;
    RUN(test_exp);
    RUN(test_tanh_sigmoid);
#endif
    return test_summary();
}
