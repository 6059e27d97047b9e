/* sampler.h: choosing the next token from logits. */
#ifndef LMC_SAMPLER_H
#define LMC_SAMPLER_H

#include "lmc/core.h"

typedef struct {
    float temperature; /* 0 = greedy (argmax) */
    int top_k;         /* 0 = off */
    float top_p;       /* 1 = off */
} lmc_sampling;

/* Picks a token id in [0, V) from logits (not modified). scratch holds 2*V
 * floats. Ties in greedy mode go to the lowest id. */
int lmc_sample_token(const float *logits, int V, const lmc_sampling *s, lmc_rng *rng, float *scratch);

#endif
