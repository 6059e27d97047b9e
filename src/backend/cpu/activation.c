/* activation.c: GELU (tanh approximation) and SwiGLU, forward and backward. */
#include "backend/cpu/cpu.h"

#include <math.h>

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

void lmc_cpu_gelu_forward(lmc_backend *be, float *out, const float *inp, size_t n)
{
#pragma omp parallel for num_threads(be->threads) schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + 0.044715f * x * x * x)));
    }
}

void lmc_cpu_gelu_backward(lmc_backend *be, float *dinp, const float *inp, const float *dout, size_t n)
{
#pragma omp parallel for num_threads(be->threads) schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_K * (x + 0.044715f * x * x * x);
        float th = tanhf(u);
        float sech2 = 1.0f - th * th;
        float g = 0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = g * dout[i];
    }
}

// out (N,H) = silu(gate) * up, inp (N,2H) = [gate | up]
void lmc_cpu_swiglu_forward(lmc_backend *be, float *out, const float *inp, int N, int H)
{
#pragma omp parallel for num_threads(be->threads) schedule(static)
    for (int r = 0; r < N; r++) {
        const float *g = inp + (size_t)r * 2 * H, *u = g + H;
        float *o = out + (size_t)r * H;
        for (int i = 0; i < H; i++) {
            float sg = 1.0f / (1.0f + expf(-g[i]));
            o[i] = g[i] * sg * u[i];
        }
    }
}

void lmc_cpu_swiglu_backward(lmc_backend *be, float *dinp, const float *inp, const float *dout, int N, int H)
{
#pragma omp parallel for num_threads(be->threads) schedule(static)
    for (int r = 0; r < N; r++) {
        const float *g = inp + (size_t)r * 2 * H, *u = g + H, *d = dout + (size_t)r * H;
        float *dg = dinp + (size_t)r * 2 * H, *du = dg + H;
        for (int i = 0; i < H; i++) {
            float sg = 1.0f / (1.0f + expf(-g[i]));
            float silu = g[i] * sg;
            du[i] = d[i] * silu;
            dg[i] = d[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
        }
    }
}
