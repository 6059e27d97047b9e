/* xent.c: fused softmax + cross-entropy (+ its gradient, in place). */
#include "backend/cpu/cpu.h"
#include "backend/cpu/simd_math.h"

#include <math.h>

#if defined(__x86_64__)
/* one row: returns the loss; with backward, x becomes dloss * (softmax - onehot) */
LMC_TARGET(AVX512) static float xent_row_avx512(float *x, int t, int V, int Vp, float dloss, int backward)
{
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < V; j += 16)
        mx = _mm512_mask_max_ps(mx, lmc_mask16(V - j), mx, _mm512_loadu_ps(x + j));
    __m512 vmx = _mm512_set1_ps(_mm512_reduce_max_ps(mx)), sum = _mm512_setzero_ps();
    for (int j = 0; j < V; j += 16)
        sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(lmc_mask16(V - j),
                                                     lmc_exp512(_mm512_sub_ps(_mm512_loadu_ps(x + j), vmx))));
    float lse = _mm512_reduce_max_ps(vmx) + logf(_mm512_reduce_add_ps(sum)), loss = lse - x[t];
    if (!backward)
        return loss;
    __m512 vl = _mm512_set1_ps(lse), vd = _mm512_set1_ps(dloss);
    for (int j = 0; j < Vp; j += 16) {
        __mmask16 m = lmc_mask16(Vp - j), mv = lmc_mask16(V - j);
        __m512 e = _mm512_mul_ps(lmc_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mv, x + j), vl)), vd);
        _mm512_mask_storeu_ps(x + j, m, _mm512_maskz_mov_ps(mv, e));
    }
    x[t] -= dloss;
    return loss;
}
#endif

void lmc_cpu_xent(lmc_backend *be, float *losses, float *logits, const int *targets, int N, int V, int Vp,
                  float dloss, int backward)
{
#if defined(__x86_64__)
    if (cpu_of(be)->isa == LMC_ISA_AVX512) {
#pragma omp parallel for num_threads(be->threads) schedule(static)
        for (int r = 0; r < N; r++)
            losses[r] = xent_row_avx512(logits + (size_t)r * Vp, targets[r], V, Vp, dloss, backward);
        return;
    }
#endif
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

/* The vocabulary-parallel pieces (backend.h xent_part), portable code: a
 * row's columns are few per rank and the step is dominated by the head's
 * matmul. Sums in double, as lmc_cpu_xent's portable path. */
void lmc_cpu_xent_part(lmc_backend *be, float *stats, float *logits, const int *targets, int N, int V, int Vp,
                       int v0, float dloss, int stage)
{
#pragma omp parallel for num_threads(be->threads) schedule(static)
    for (int r = 0; r < N; r++) {
        float *x = logits + (size_t)r * Vp, *st = stats + 2 * (size_t)r;
        int t = targets[r] - v0, mine = t >= 0 && t < V;
        if (stage == 0) {
            float mx = -INFINITY;
            for (int j = 0; j < V; j++)
                mx = x[j] > mx ? x[j] : mx;
            st[0] = mx;
            st[1] = mine ? x[t] : 0.0f;
        } else if (stage == 1) {
            double sum = 0.0;
            for (int j = 0; j < V; j++)
                sum += expf(x[j] - st[0]);
            st[1] = (float)sum;
        } else {
            for (int j = 0; j < Vp; j++)
                x[j] = j < V ? expf(x[j] - st[0]) * dloss : 0.0f;
            if (mine)
                x[t] -= dloss;
        }
    }
}
