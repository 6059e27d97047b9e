/* batch.c: sequences and the scheduler iteration: prefill the new ones,
 * then one decode step shared by every running sequence (continuous
 * batching: a sequence joins at the next iteration after it arrives and
 * leaves as soon as it finishes). Sampling is host code, per sequence, with
 * the sequence's own rng, so a seeded request gives the same tokens alone
 * or batched. */
#include "infer/engine_internal.h"

#include <stdlib.h>
#include <string.h>

lmc_status lmc_seq_init(lmc_seq *s, const int *prompt, int n, int max_new, const lmc_sampling *sp, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    if (n < 0 || max_new < 0)
        return lmc_err(LMC_EINVAL, "sequence: negative length");
    s->cap = n + max_new;
    s->ids = malloc(((size_t)s->cap + 1) * sizeof(int));
    if (!s->ids)
        return lmc_err(LMC_ENOMEM, "out of memory for a sequence of %d tokens", s->cap);
    if (n)
        memcpy(s->ids, prompt, (size_t)n * sizeof(int));
    s->n = s->n_prompt = n;
    s->max_new = max_new;
    s->sp = *sp;
    lmc_rng_seed(&s->rng, seed);
    s->state = LMC_SEQ_NEW;
    return LMC_OK;
}

lmc_status lmc_seq_set_stop_ids(lmc_seq *s, const int *ids, int n)
{
    free(s->stop_ids);
    s->stop_ids = n > 0 ? malloc((size_t)n * sizeof(int)) : NULL;
    if (n > 0 && !s->stop_ids)
        return lmc_err(LMC_ENOMEM, "out of memory");
    if (n > 0)
        memcpy(s->stop_ids, ids, (size_t)n * sizeof(int));
    s->n_stop_ids = n > 0 ? n : 0;
    return LMC_OK;
}

lmc_status lmc_seq_set_bias(lmc_seq *s, const int *ids, const float *vals, int n)
{
    free(s->bias_ids), free(s->bias_vals);
    s->bias_ids = NULL, s->bias_vals = NULL, s->n_bias = 0;
    if (n <= 0)
        return LMC_OK;
    s->bias_ids = malloc((size_t)n * sizeof(int));
    s->bias_vals = malloc((size_t)n * sizeof(float));
    if (!s->bias_ids || !s->bias_vals)
        return lmc_err(LMC_ENOMEM, "out of memory");
    memcpy(s->bias_ids, ids, (size_t)n * sizeof(int));
    memcpy(s->bias_vals, vals, (size_t)n * sizeof(float));
    s->n_bias = n;
    return LMC_OK;
}

void lmc_seq_free(lmc_seq *s)
{
    free(s->ids), free(s->stop_ids), free(s->bias_ids), free(s->bias_vals);
    memset(s, 0, sizeof *s);
}

void lmc_seq_stop(lmc_seq *s, lmc_finish why)
{
    if (s->state == LMC_SEQ_DONE)
        return;
    s->state = LMC_SEQ_DONE;
    s->finish = why;
}

static int is_stop_id(const lmc_seq *s, int tok)
{
    for (int i = 0; i < s->n_stop_ids; i++)
        if (s->stop_ids[i] == tok)
            return 1;
    return 0;
}

/* Samples from this sequence's logits row (modified in place by
 * penalties and bias), appends the token, decides whether it is done. */
static void advance(lmc_engine *e, lmc_seq *s, float *logits)
{
    int V = e->cfg.vocab;
    if (lmc_sample_has_penalties(&s->sp))
        lmc_sample_penalize(logits, V, s->ids, (size_t)s->n, (size_t)s->n_gen, &s->sp, e->h_counts);
    for (int i = 0; i < s->n_bias; i++)
        if (s->bias_ids[i] >= 0 && s->bias_ids[i] < V)
            logits[s->bias_ids[i]] += s->bias_vals[i];
    int tok = lmc_sample_token(logits, V, &s->sp, &s->rng, e->h_scratch);
    s->ids[s->n++] = tok;
    s->n_gen++;
    if (is_stop_id(s, tok)) {
        lmc_seq_stop(s, LMC_FINISH_STOP);
        return;
    }
    if (s->on_token)
        s->on_token(s, tok, s->ctx);
    if (s->state != LMC_SEQ_DONE && (s->n_gen >= s->max_new || s->n >= e->ctx))
        lmc_seq_stop(s, LMC_FINISH_LENGTH);
}

static lmc_status check_new(const lmc_engine *e, lmc_seq *const *seqs, int n, int i)
{
    const lmc_seq *s = seqs[i];
    if (s->slot < 0 || s->slot >= e->slots)
        return lmc_err(LMC_ERANGE, "sequence %d: slot %d is outside [0, %d)", i, s->slot, e->slots);
    for (int j = 0; j < n; j++)
        if (j != i && seqs[j]->state != LMC_SEQ_DONE && seqs[j]->slot == s->slot)
            return lmc_err(LMC_EINVAL, "sequences %d and %d share slot %d", i, j, s->slot);
    if (s->n_prompt < 1 || s->n_prompt >= e->ctx)
        return lmc_err(LMC_ERANGE, "prompt of %d tokens: must be 1 to %d (the context %d less one token to generate)",
                       s->n_prompt, e->ctx - 1, e->ctx);
    return LMC_OK;
}

lmc_status lmc_engine_iterate(lmc_engine *e, lmc_seq *const *seqs, int n)
{
    int V = e->cfg.vocab;
    for (int i = 0; i < n; i++) {
        lmc_seq *s = seqs[i];
        if (s->state != LMC_SEQ_NEW)
            continue;
        if (s->max_new == 0) {
            lmc_seq_stop(s, LMC_FINISH_LENGTH);
            continue;
        }
        LMC_TRY(check_new(e, seqs, n, i));
        double t0 = lmc_now();
        LMC_TRY(lmc_engine_prefill(e, s->slot, s->ids, s->n, e->h_logits));
        s->t_prefill = lmc_now() - t0;
        s->state = LMC_SEQ_RUNNING;
        advance(e, s, e->h_logits);
    }
    /* rows are slots: tokens and positions up to the highest busy one */
    int *tok = e->h_ints + 3 * e->slots, *pos = tok + e->slots, nb = 0;
    for (int b = 0; b < e->slots; b++)
        pos[b] = -1;
    for (int i = 0; i < n; i++) {
        lmc_seq *s = seqs[i];
        if (s->state != LMC_SEQ_RUNNING)
            continue;
        tok[s->slot] = s->ids[s->n - 1];
        pos[s->slot] = s->n - 1;
        nb = s->slot + 1 > nb ? s->slot + 1 : nb;
    }
    if (nb == 0)
        return LMC_OK;
    LMC_TRY(lmc_engine_decode(e, nb, tok, pos, e->h_logits));
    for (int i = 0; i < n; i++)
        if (seqs[i]->state == LMC_SEQ_RUNNING)
            advance(e, seqs[i], e->h_logits + (size_t)seqs[i]->slot * V);
    return LMC_OK;
}
