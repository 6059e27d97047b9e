/* sampler.c: greedy, temperature, top-k and top-p (nucleus) sampling. */
#include "lmc/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* k-th largest value (1-based) of x by quickselect on a copy */
static float kth_largest(float *tmp, int n, int k)
{
    int lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        float pivot = tmp[(lo + hi) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (tmp[i] > pivot)
                i++;
            while (tmp[j] < pivot)
                j--;
            if (i <= j) {
                float t = tmp[i];
                tmp[i] = tmp[j];
                tmp[j] = t;
                i++;
                j--;
            }
        }
        if (want <= j)
            hi = j;
        else if (want >= i)
            lo = i;
        else
            break;
    }
    return tmp[want];
}

static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

int lmc_sample_token(const float *logits, int V, const lmc_sampling *s, lmc_rng *rng, float *scratch)
{
    if (s->temperature <= 0)
        return argmax(logits, V);
    float *p = scratch, *tmp = scratch + V;
    float cut = -INFINITY;
    if (s->top_k > 0 && s->top_k < V) {
        memcpy(tmp, logits, (size_t)V * sizeof(float));
        cut = kth_largest(tmp, V, s->top_k);
    }
    float mx = logits[argmax(logits, V)];
    double sum = 0;
    for (int i = 0; i < V; i++) {
        p[i] = logits[i] >= cut ? expf((logits[i] - mx) / s->temperature) : 0.0f;
        sum += p[i];
    }
    if (s->top_p > 0 && s->top_p < 1) {
        /* smallest set of most likely tokens whose mass reaches top_p */
        memcpy(tmp, p, (size_t)V * sizeof(float));
        qsort(tmp, (size_t)V, sizeof(float), cmp_desc);
        double acc = 0, thresh = 0;
        for (int i = 0; i < V; i++) {
            acc += tmp[i];
            thresh = tmp[i];
            if (acc >= s->top_p * sum)
                break;
        }
        sum = 0;
        for (int i = 0; i < V; i++) {
            if (p[i] < thresh)
                p[i] = 0;
            sum += p[i];
        }
    }
    double r = lmc_rng_uniform(rng) * sum, acc = 0;
    int last = 0;
    for (int i = 0; i < V; i++) {
        if (p[i] <= 0)
            continue;
        acc += p[i];
        last = i;
        if (acc > r)
            return i;
    }
    return last;
}
