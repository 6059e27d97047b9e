/* gemm_c.c: the portable GEMM path, for any CPU: plain-loop packers and a
 * 4 x 8 micro-kernel in GNU C vectors (SSE on base x86-64, NEON on arm64),
 * cache-blocked by the same driver (gemm.c) as the SIMD paths. */
#include "backend/cpu/gemm.h"
#include "backend/cpu/simd_math.h"

#include <string.h>

#define C_MR 4
#define C_NR 8

static inline float pack_get(const float *x, size_t ld, int trans, int row, int col)
{
    return trans ? x[(size_t)col * ld + row] : x[(size_t)row * ld + col];
}

/* Element (i,p) of op(A) into MR-row panels: d[p*MR + i], zero past mc. */
static void c_pack_a(void *dst, const float *a, size_t lda, int trans, int mc, int kc, int round)
{
    for (int i0 = 0; i0 < mc; i0 += C_MR) {
        float *d = (float *)dst + (size_t)i0 * kc;
        for (int p = 0; p < kc; p++)
            for (int i = 0; i < C_MR; i++) {
                float v = i0 + i < mc ? pack_get(a, lda, trans, i0 + i, p) : 0.0f;
                d[(size_t)p * C_MR + i] = round ? bf16_round(v) : v;
            }
    }
}

/* Element (p,j) of op(B) into NR-column panels: d[p*NR + j], zero past nc. */
static void c_pack_b(void *dst, const float *b, size_t ldb, int trans, int kc, int nc, int round)
{
    for (int j0 = 0; j0 < nc; j0 += C_NR) {
        float *d = (float *)dst + (size_t)j0 * kc;
        for (int p = 0; p < kc; p++)
            for (int j = 0; j < C_NR; j++) {
                float v = j0 + j < nc ? pack_get(b, ldb, !trans, j0 + j, p) : 0.0f;
                d[(size_t)p * C_NR + j] = round ? bf16_round(v) : v;
            }
    }
}

/* GNU C vectors: 4 floats, lowered to SSE on x86-64 and NEON on arm64 */
typedef float c_v4 __attribute__((vector_size(16)));

static inline c_v4 c_load(const float *p)
{
    c_v4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void c_kernel(int kc, const void *ap_, const void *bp_, float *c, size_t ldc, int add_c,
                     const float *bias)
{
    const float *ap = ap_, *bp = bp_;
    c_v4 acc[C_MR][C_NR / 4] = {{{0}}};
    for (int p = 0; p < kc; p++, ap += C_MR, bp += C_NR) {
        c_v4 b0 = c_load(bp), b1 = c_load(bp + 4);
        for (int i = 0; i < C_MR; i++) {
            acc[i][0] += ap[i] * b0;
            acc[i][1] += ap[i] * b1;
        }
    }
    for (int i = 0; i < C_MR; i++) {
        float *row = c + (size_t)i * ldc;
        for (int v = 0; v < C_NR / 4; v++) {
            c_v4 x = acc[i][v];
            if (add_c)
                x += c_load(row + 4 * v);
            if (bias)
                x += c_load(bias + 4 * v);
            memcpy(row + 4 * v, &x, sizeof x);
        }
    }
}

static void c_gelu(float *x, int n)
{
    for (int j = 0; j < n; j++)
        x[j] = lmc_gelu(x[j]);
}

const lmc_gemm_impl lmc_gemm_c_f32 = {
    .name = "c",
    .mr = C_MR,
    .nr = C_NR,
    .kpack = 1,
    .mc = 128,
    .kc = 256,
    .nc = 1024,
    .pack_a = c_pack_a,
    .pack_b = c_pack_b,
    .kernel = c_kernel,
    .gelu = c_gelu,
};
