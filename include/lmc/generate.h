/* generate.h: the library side of `lmc sample` and `lmc generate` (and the
 * model-file default `lmc serve` shares): one call per command that does
 * its work (the helpers they share: src/infer/run.h).
 * The engine and the sampling loop themselves are infer.h and sampler.h. */
#ifndef LMC_GENERATE_H
#define LMC_GENERATE_H

#include <stdio.h>

#include "lmc/backend.h"
#include "lmc/infer.h"
#include "lmc/tokenizer.h"

/* ---------- model-file defaults ---------- */

/* The tokenizer to load: the flag's, else the model's own when the model
 * is a .gguf file and text is wanted (no --prompt-ids), else NULL. */
const char *lmc_model_tokenizer(const char *model, const char *tokenizer, const char *prompt_ids);

/* ---------- the commands ---------- */

/* What lmc sample and lmc generate share: the model, its tokenizer, the
 * prompt, the device and the sampling. */
typedef struct {
    const char *model;      /* .safetensors, HF folder or .gguf */
    const char *tokenizer;  /* NULL: a .gguf model's own unless prompt_ids (lmc_model_tokenizer) */
    const char *prompt, *prompt_ids;
    const char *device;
    int threads;
    int max_tokens;
    lmc_sampling sp;
    uint64_t seed;
    FILE *out;              /* the text, or ids separated by spaces without a tokenizer */
} lmc_gen_request;

/* lmc sample: max_tokens tokens after the prompt by full recomputation
 * (every token a prefill of the last max_seq tokens: the reference the KV
 * cache of lmc generate is checked against), written to r->out as they
 * come, then a newline. */
lmc_status lmc_sample_run(const lmc_gen_request *r);

typedef struct {
    lmc_gen_request r;
    const char *quant;       /* NULL: the model file's own type (lmc_model_quant) */
    int ctx, tp;             /* the engine's (0: the model's max_seq; tp > 1 under mpirun) */
    int ignore_eos, quiet, logprobs;
    const char *const *stops; /* stop strings, not written */
    int n_stops;
    FILE *err;               /* the speed line (unless quiet) */
} lmc_generate_request;

/* lmc generate: text from the prompt with the KV-cache engine, streamed to
 * r->out as it is produced, then the speeds to err; with logprobs the
 * lmc_print_logprobs lines instead. Under tp > 1 rank 0 leads and the other
 * ranks follow. */
lmc_status lmc_generate_run(const lmc_generate_request *g);

#endif
