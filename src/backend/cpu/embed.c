/* embed.c: token (+ learned position) embedding and its gradient. */
#include "backend/cpu/cpu.h"

// out (B,T,C) = wte[tokens] (+ wpe[pos0[b] + t])
void lmc_cpu_embed_forward(lmc_backend *be, float *out, const int *tokens, const int *pos0,
                           const float *wte, const float *wpe, int B, int T, int C)
{
#pragma omp parallel for num_threads(lmc_cpu_threads_for(be, (size_t)B * T * C)) schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        int b = bt / T, t = bt % T;
        float *o = out + (size_t)bt * C;
        const float *e = tokens[bt] >= 0 ? wte + (size_t)tokens[bt] * C : NULL; /* < 0: another rank's row */
        const float *p = wpe ? wpe + (size_t)((pos0 ? pos0[b] : 0) + t) * C : NULL;
        for (int i = 0; i < C; i++)
            o[i] = e && p ? e[i] + p[i] : e ? e[i] : p ? p[i] : 0.0f;
    }
}

// dwte (V,C) +=, dwpe (T,C) +=; split over columns for determinism
void lmc_cpu_embed_backward(lmc_backend *be, float *dwte, float *dwpe, const float *dout,
                            const int *tokens, int B, int T, int C)
{
    int blk = 64, nblk = (C + blk - 1) / blk;
#pragma omp parallel for num_threads(be->threads) schedule(static)
    for (int cb = 0; cb < nblk; cb++) {
        int c0 = cb * blk, c1 = c0 + blk < C ? c0 + blk : C;
        for (int bt = 0; bt < B * T; bt++) {
            const float *d = dout + (size_t)bt * C;
            float *w = tokens[bt] >= 0 ? dwte + (size_t)tokens[bt] * C : NULL;
            for (int i = c0; w && i < c1; i++)
                w[i] += d[i];
            if (dwpe) {
                float *p = dwpe + (size_t)(bt % T) * C;
                for (int i = c0; i < c1; i++)
                    p[i] += d[i];
            }
        }
    }
}
