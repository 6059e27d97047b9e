/* sampler.c: greedy, temperature, top-k and top-p (nucleus) sampling,
 * repetition / frequency / presence penalties, and the loop that samples
 * one sequence from a source of logits. */
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

/* The top-p cut: the largest value v of x[0..n) (all > 0) such that the
 * values >= v sum to at least target; what sorting x in descending order
 * and accumulating until the sum reaches target finds, in O(n) expected
 * time by quickselect on mass instead of O(n log n): this runs for every
 * token of every stream. x is reordered. 0 when even all of x fall short. */
static float top_p_cut(float *x, int n, double target)
{
    while (n > 0) {
        float pivot = x[n / 2];
        /* three-way partition: [0,gt) > pivot, [gt,lt) == pivot, [lt,n) < pivot */
        int gt = 0, i = 0, lt = n;
        double mass_gt = 0, mass_eq = 0;
        while (i < lt) {
            float v = x[i];
            if (v > pivot) {
                x[i] = x[gt], x[gt] = v;
                mass_gt += v;
                gt++, i++;
            } else if (v < pivot) {
                lt--;
                x[i] = x[lt], x[lt] = v;
            } else {
                mass_eq += v;
                i++;
            }
        }
        if (mass_gt >= target) {
            n = gt;
        } else if (mass_gt + mass_eq >= target) {
            return pivot;
        } else {
            target -= mass_gt + mass_eq;
            memmove(x, x + lt, (size_t)(n - lt) * sizeof(float));
            n -= lt;
        }
    }
    return 0.0f;
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
        int n = 0;
        for (int i = 0; i < V; i++)
            if (p[i] > 0)
                tmp[n++] = p[i];
        float thresh = top_p_cut(tmp, n, s->top_p * sum);
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

int lmc_sample_has_penalties(const lmc_sampling *s)
{
    return (s->repetition_penalty > 0 && s->repetition_penalty != 1.0f) || s->frequency_penalty != 0 ||
           s->presence_penalty != 0;
}

void lmc_sample_penalize(float *logits, int V, const int *ids, size_t n, size_t n_gen, const lmc_sampling *s,
                         int *counts)
{
    if (n_gen > n)
        n_gen = n;
    float rep = s->repetition_penalty;
    if (rep > 0 && rep != 1.0f) {
        /* once per distinct token: counts marks the ones already done */
        for (size_t i = 0; i < n; i++) {
            int id = ids[i];
            if (id < 0 || id >= V || counts[id])
                continue;
            counts[id] = 1;
            logits[id] = logits[id] > 0 ? logits[id] / rep : logits[id] * rep;
        }
        for (size_t i = 0; i < n; i++)
            if (ids[i] >= 0 && ids[i] < V)
                counts[ids[i]] = 0;
    }
    if (s->frequency_penalty == 0 && s->presence_penalty == 0)
        return;
    const int *gen = ids + (n - n_gen);
    for (size_t i = 0; i < n_gen; i++)
        if (gen[i] >= 0 && gen[i] < V)
            counts[gen[i]]++;
    for (size_t i = 0; i < n_gen; i++) {
        int id = gen[i];
        if (id < 0 || id >= V || counts[id] == 0)
            continue;
        logits[id] -= s->frequency_penalty * (float)counts[id] + s->presence_penalty;
        counts[id] = 0; /* applied once per distinct token, and zeroed again */
    }
}

lmc_status lmc_generate(lmc_logits_fn logits_of, void *src, int V, int window, const int *prompt, int n,
                        const lmc_gen_opts *o)
{
    if (n < 1 || (!o->slide && n >= window))
        return lmc_err(LMC_ERANGE, "the prompt has %d tokens; the context holds %d, prompt included", n, window);
    int *seq = malloc(((size_t)n + (size_t)o->max_new) * sizeof(int));
    float *logits = malloc((size_t)V * sizeof(float)), *scratch = malloc(2 * (size_t)V * sizeof(float));
    lmc_status s = seq && logits && scratch ? LMC_OK : lmc_err(LMC_ENOMEM, "out of memory");
    if (s == LMC_OK)
        memcpy(seq, prompt, (size_t)n * sizeof(int));
    for (int i = 0, prev = -1; i < o->max_new && s == LMC_OK; i++) {
        int start = n > window ? n - window : 0;
        s = logits_of(src, seq + start, n - start, !o->recompute && start == prev, logits);
        if (s)
            break;
        prev = start;
        int tok = lmc_sample_token(logits, V, o->sp, o->rng, scratch);
        seq[n++] = tok;
        if (o->on_token)
            s = o->on_token(tok, logits, o->ctx);
        if (tok == o->stop_id || (!o->slide && n >= window))
            break;
    }
    free(seq), free(logits), free(scratch);
    return s;
}

lmc_status lmc_token_append(const lmc_tokenizer *tok, int id, int *count, lmc_sb *out)
{
    if (tok)
        LMC_TRY(lmc_tok_decode(tok, &id, 1, out));
    else
        lmc_sb_printf(out, "%s%d", *count ? " " : "", id);
    ++*count;
    return out->oom ? lmc_err(LMC_ENOMEM, "out of memory writing a generated token") : LMC_OK;
}
