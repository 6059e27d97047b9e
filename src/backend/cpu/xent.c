/* xent.c: fused softmax + cross-entropy (+ its gradient, in place). */
#include "backend/cpu/cpu.h"

#include <math.h>

void lmc_cpu_xent(lmc_backend *be, float *losses, float *logits, const int *targets, int N, int V, int Vp,
                  float dloss, int backward)
{
#pragma omp parallel for num_threads(be->threads) schedule(static)
    for (int r = 0; r < N; r++) {
        float *x = logits + (size_t)r * Vp;
        float mx = -INFINITY;
        for (int j = 0; j < V; j++)
            if (x[j] > mx)
                mx = x[j];
        double sum = 0.0;
        for (int j = 0; j < V; j++)
            sum += expf(x[j] - mx);
        float lse = mx + (float)log(sum);
        int t = targets[r];
        losses[r] = lse - x[t];
        if (!backward)
            continue;
        for (int j = 0; j < V; j++)
            x[j] = expf(x[j] - lse) * dloss;
        x[t] -= dloss;
        for (int j = V; j < Vp; j++)
            x[j] = 0.0f;
    }
}
