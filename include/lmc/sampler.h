/* sampler.h: choosing the next token from logits. */
#ifndef LMC_SAMPLER_H
#define LMC_SAMPLER_H

#include "lmc/core.h"

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

#endif
