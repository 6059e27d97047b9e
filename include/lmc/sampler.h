/* sampler.h: choosing the next token from logits. */
#ifndef LMC_SAMPLER_H
#define LMC_SAMPLER_H

#include "lmc/core.h"
#include "lmc/tokenizer.h"

/* Fields added after top_p are off when zero, so an initialiser that names
 * only the first three keeps its old meaning. */
typedef struct {
    float temperature; /* 0 = greedy (argmax) */
    int top_k;         /* 0 = off */
    float top_p;       /* 1 = off */
    /* CTRL / Hugging Face repetition penalty over the prompt and the
     * generated tokens: a seen token's logit is divided by it when positive,
     * multiplied when negative. <= 0 or 1 = off. */
    float repetition_penalty;
    /* OpenAI's penalties over the generated tokens only (as vLLM does):
     * logit -= frequency * count + presence * (count > 0). 0 = off. */
    float frequency_penalty, presence_penalty;
} lmc_sampling;

/* Picks a token id in [0, V) from logits (not modified). scratch holds 2*V
 * floats. Ties in greedy mode go to the lowest id. */
int lmc_sample_token(const float *logits, int V, const lmc_sampling *s, lmc_rng *rng, float *scratch);

/* 1 when any penalty of s is on. */
int lmc_sample_has_penalties(const lmc_sampling *s);

/* Applies the penalties of s to logits in place. ids[0..n) is the sequence
 * so far, of which the last n_gen were generated (ids < V). counts is V ints
 * of zeros, returned zeroed (O(n) work, not O(V)). */
void lmc_sample_penalize(float *logits, int V, const int *ids, size_t n, size_t n_gen, const lmc_sampling *s,
                         int *counts);

/* ---------- the sampling loop ----------
 * One sequence from its prompt to its end, each token chosen by
 * lmc_sample_token from the logits a source gives: the inference engine
 * (lmc_engine_generate: lmc sample, lmc generate --logprobs, training-time
 * samples in one process) or the trainer's distributed forward. */

/* The logits (V floats, host) after ids[0..n), n <= the window. extend: ids
 * is the previous call's ids plus one token (a source with a cache may run
 * that token alone); 0: a new window. */
typedef lmc_status (*lmc_logits_fn)(void *src, const int *ids, int n, int extend, float *logits);

typedef struct {
    int max_new;            /* tokens to generate at most */
    const lmc_sampling *sp; /* penalties are not applied here */
    lmc_rng *rng;
    int recompute;          /* 1: every call a new window (extend 0): full recomputation */
    /* 1: past the window the last `window` tokens go on (and a longer
     * prompt keeps its last ones); 0: generation ends when the sequence
     * fills the window, and a prompt must be shorter than it */
    int slide;
    int stop_id;            /* generation ends after this token (-1: none) */
    /* each token and the logits it was drawn from (V floats); a non-OK
     * status ends generation with it */
    lmc_status (*on_token)(int token, const float *logits, void *ctx);
    void *ctx;
} lmc_gen_opts;

lmc_status lmc_generate(lmc_logits_fn logits_of, void *src, int V, int window, const int *prompt, int n,
                        const lmc_gen_opts *o);

/* A generated token's text appended to out: its bytes under tok, else its
 * decimal id with a space before all but the first (*count counts the
 * tokens appended). An id outside tok's vocabulary: LMC_ERANGE. */
lmc_status lmc_token_append(const lmc_tokenizer *tok, int id, int *count, lmc_sb *out);

#endif
