/* layernorm.c: LayerNorm forward and backward over rows of C. */
#include "backend/cpu/cpu.h"

#include <math.h>

// out (N,C) = (inp - mean) * rstd * w + b; mean, rstd (N) saved
void lmc_cpu_layernorm_forward(lmc_backend *be, float *out, float *mean, float *rstd,
                               const float *inp, const float *w, const float *b, int N, int C, float eps)
{
#pragma omp parallel for num_threads(lmc_cpu_threads_for(be, (size_t)N * C)) schedule(static)
    for (int r = 0; r < N; r++) {
        const float *x = inp + (size_t)r * C;
        float *o = out + (size_t)r * C;
        float m = 0.0f;
        for (int i = 0; i < C; i++)
            m += x[i];
        m /= C;
        float v = 0.0f;
        for (int i = 0; i < C; i++)
            v += (x[i] - m) * (x[i] - m);
        v /= C;
        float s = 1.0f / sqrtf(v + eps);
        for (int i = 0; i < C; i++)
            o[i] = (x[i] - m) * s * w[i] + (b ? b[i] : 0.0f);
        if (mean)
            mean[r] = m;
        if (rstd)
            rstd[r] = s;
    }
}

// dinp +=, dw +=, db +=. Rows in parallel for dinp, then columns in
// parallel for dw/db, so the sums do not depend on the thread count.
void lmc_cpu_layernorm_backward(lmc_backend *be, float *dinp, float *dw, float *db, const float *dout,
                                const float *inp, const float *w, const float *mean, const float *rstd,
                                int N, int C)
{
    int nt = be->threads;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int r = 0; r < N; r++) {
        const float *x = inp + (size_t)r * C, *d = dout + (size_t)r * C;
        float m = mean[r], s = rstd[r], dmean = 0.0f, dnmean = 0.0f;
        for (int i = 0; i < C; i++) {
            float dn = w[i] * d[i];
            dmean += dn;
            dnmean += dn * (x[i] - m) * s;
        }
        dmean /= C;
        dnmean /= C;
        float *di = dinp + (size_t)r * C;
        for (int i = 0; i < C; i++) {
            float n = (x[i] - m) * s;
            di[i] += (w[i] * d[i] - dmean - n * dnmean) * s;
        }
    }
    int blk = 64, nblk = (C + blk - 1) / blk;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int cb = 0; cb < nblk; cb++) {
        int c0 = cb * blk, c1 = c0 + blk < C ? c0 + blk : C;
        float aw[64] = {0}, ab[64] = {0};
        for (int r = 0; r < N; r++) {
            const float *x = inp + (size_t)r * C, *d = dout + (size_t)r * C;
            float m = mean[r], s = rstd[r];
            for (int i = c0; i < c1; i++) {
                aw[i - c0] += (x[i] - m) * s * d[i];
                ab[i - c0] += d[i];
            }
        }
        for (int i = c0; i < c1; i++) {
            dw[i] += aw[i - c0];
            if (db)
                db[i] += ab[i - c0];
        }
    }
}
