/* matmul.c: the matmul and bias_grad ops. matmul runs the backend's own GEMM
 * (gemm.c): packed, cache-blocked, with a micro-kernel per instruction set
 * (AVX-512 fp32 and vdpbf16ps bf16, AVX2+FMA, portable C). Packing buffers
 * come from the backend's scratch, grown once to the largest call. */
#include "backend/cpu/cpu.h"
#include "backend/cpu/gemm.h"

void lmc_cpu_matmul(lmc_backend *be, float *c, const float *a, const float *b, const lmc_gemm *g)
{
    const lmc_gemm_impl *im = lmc_gemm_pick(cpu_of(be)->isa, g->prec, cpu_of(be)->dot);
    lmc_gemm_impl capped;
    if (cpu_of(be)->kc_cap > 0 && cpu_of(be)->kc_cap < im->kc) { /* the same sums, associated in k blocks */
        capped = *im;
        capped.kc = cpu_of(be)->kc_cap;
        im = &capped;
    }
    size_t bytes = lmc_gemm_scratch_bytes(im, be->threads, g);
    void *scratch = bytes ? lmc_cpu_scratch(be, bytes, LMC_OP_matmul) : NULL;
    if (bytes && !scratch)
        return;
    lmc_gemm_run(im, be->threads, scratch, c, a, b, g);
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
