/* rmsnorm.c: RMSNorm forward and backward over rows of C (Llama). */
#include "backend/cpu/cpu.h"

#include <math.h>

// out (N,C) = inp * rstd * w, rstd = 1/sqrt(mean(inp^2) + eps)
void lmc_cpu_rmsnorm_forward(lmc_backend *be, float *out, float *rstd, const float *inp, const float *w,
                             int N, int C, float eps)
{
#pragma omp parallel for num_threads(lmc_cpu_threads_for(be, (size_t)N * C)) schedule(static)
    for (int r = 0; r < N; r++) {
        const float *x = inp + (size_t)r * C;
        float *o = out + (size_t)r * C;
        float ss = 0.0f;
        for (int i = 0; i < C; i++)
            ss += x[i] * x[i];
        float s = 1.0f / sqrtf(ss / C + eps);
        for (int i = 0; i < C; i++)
            o[i] = x[i] * s * w[i];
        if (rstd)
            rstd[r] = s;
    }
}

// dinp += (w*d - n * mean(w*d*n)) * rstd with n = x*rstd; dw += sum_r n*d
void lmc_cpu_rmsnorm_backward(lmc_backend *be, float *dinp, float *dw, const float *dout, const float *inp,
                              const float *w, const float *rstd, int N, int C)
{
    int nt = be->threads;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int r = 0; r < N; r++) {
        const float *x = inp + (size_t)r * C, *d = dout + (size_t)r * C;
        float s = rstd[r], dot = 0.0f;
        for (int i = 0; i < C; i++)
            dot += w[i] * d[i] * x[i] * s;
        dot /= C;
        float *di = dinp + (size_t)r * C;
        for (int i = 0; i < C; i++)
            di[i] += (w[i] * d[i] - x[i] * s * dot) * s;
    }
    int blk = 64, nblk = (C + blk - 1) / blk;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int cb = 0; cb < nblk; cb++) {
        int c0 = cb * blk, c1 = c0 + blk < C ? c0 + blk : C;
        float aw[64] = {0};
        for (int r = 0; r < N; r++) {
            const float *x = inp + (size_t)r * C, *d = dout + (size_t)r * C;
            for (int i = c0; i < c1; i++)
                aw[i - c0] += x[i] * rstd[r] * d[i];
        }
        for (int i = c0; i < c1; i++)
            dw[i] += aw[i - c0];
    }
}
