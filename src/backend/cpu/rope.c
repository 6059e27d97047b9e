/* rope.c: rotary position embedding on the q and k heads (HF half layout). */
#include "backend/cpu/cpu.h"

#include <math.h>

void lmc_cpu_rope(lmc_backend *be, float *qkv, const int *pos0, int B, int T, int NH, int NKV, int HS,
                  float theta, int inverse)
{
    int half = HS / 2, row = (NH + 2 * NKV) * HS, heads = NH + NKV;
#pragma omp parallel for num_threads(lmc_cpu_threads_for(be, (size_t)B * T * row)) schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        int b = bt / T, t = bt % T;
        double pos = (double)((pos0 ? pos0[b] : 0) + t);
        float *x = qkv + (size_t)bt * row;
        for (int i = 0; i < half; i++) {
            /* angles in double: positions up to 1e5+ keep full fp32 accuracy */
            double ang = pos * pow((double)theta, -2.0 * i / HS);
            float c = (float)cos(ang), s = (float)sin(ang);
            if (inverse)
                s = -s;
            for (int h = 0; h < heads; h++) {
                float *v = x + (size_t)h * HS;
                float x1 = v[i], x2 = v[i + half];
                v[i] = x1 * c - x2 * s;
                v[i + half] = x2 * c + x1 * s;
            }
        }
    }
}
