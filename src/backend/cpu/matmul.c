/* matmul.c: C = op(A) op(B) (+ bias) (+ GELU) on the CPU.
 * fp32 goes to OpenBLAS's sgemm; bf16 rounds both inputs to bf16 (kept in
 * fp32 containers, so the products are exact) and accumulates in fp32. */
#include "backend/cpu/cpu.h"

#include <cblas.h>
#include <string.h>

static void round_copy(float *dst, const float *src, size_t n, int threads)
{
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++)
        dst[i] = bf16_round(src[i]);
}

void lmc_cpu_matmul(lmc_backend *be, float *c, const float *a, const float *b, const lmc_gemm *g)
{
    int m = g->m, n = g->n, k = g->k, nt = be->threads;
    float beta = g->accumulate ? 1.0f : 0.0f;
    if (g->bias) {
        int acc = g->accumulate;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int i = 0; i < m; i++) {
            float *row = c + (size_t)i * n;
            for (int j = 0; j < n; j++)
                row[j] = acc ? row[j] + g->bias[j] : g->bias[j];
        }
        beta = 1.0f;
    }
    if (g->prec == LMC_BF16) {
        size_t na = (size_t)m * k, nb = (size_t)k * n;
        float *s = lmc_cpu_scratch(be, (na + nb) * sizeof(float));
        round_copy(s, a, na, nt);
        round_copy(s + na, b, nb, nt);
        a = s;
        b = s + na;
    }
    if (m > 0 && n > 0) {
        if (k == 0) {
            if (beta == 0.0f)
                memset(c, 0, (size_t)m * n * sizeof(float));
        } else {
            openblas_set_num_threads(nt);
            cblas_sgemm(CblasRowMajor, g->trans_a ? CblasTrans : CblasNoTrans,
                        g->trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a,
                        g->trans_a ? m : k, b, g->trans_b ? k : n, beta, c, n);
        }
    }
    if (g->gelu) {
        size_t total = (size_t)m * n;
        if (g->pre)
            memcpy(g->pre, c, total * sizeof(float));
        lmc_cpu_gelu_forward(be, c, c, total);
    }
}

void lmc_cpu_bias_grad(lmc_backend *be, float *dbias, const float *dout, int m, int n)
{
    /* split over columns so the result does not depend on the thread count */
    int nt = be->threads, blk = 64;
    int nblk = (n + blk - 1) / blk;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int jb = 0; jb < nblk; jb++) {
        int j0 = jb * blk, j1 = j0 + blk < n ? j0 + blk : n;
        float acc[64] = {0};
        for (int i = 0; i < m; i++) {
            const float *row = dout + (size_t)i * n;
            for (int j = j0; j < j1; j++)
                acc[j - j0] += row[j];
        }
        for (int j = j0; j < j1; j++)
            dbias[j] += acc[j - j0];
    }
}
