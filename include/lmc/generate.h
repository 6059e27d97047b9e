/* generate.h: the library side of `lmc sample` and `lmc generate` (and the
 * model-file defaults `lmc serve` shares): prompts as token ids, defaults
 * taken from the model file, and one call per command that does its work.
 * The engine and the sampling loop themselves are infer.h and sampler.h. */
#ifndef LMC_GENERATE_H
#define LMC_GENERATE_H

#include <stdio.h>

#include "lmc/backend.h"
#include "lmc/infer.h"
#include "lmc/tokenizer.h"

/* ---------- prompts and model-file defaults ---------- */

/* ids from prompt_ids ("1 2 3") when given, else the tokenized prompt (an
 * empty prompt is the tokenizer's <|endoftext|>: a new document); *ids is
 * malloc'd. */
lmc_status lmc_prompt_tokens(const char *prompt, const char *prompt_ids, lmc_tokenizer *tok, int **ids, size_t *n);

/* Loads the tokenizer (when tokenizer is set) and opens the backend, calls
 * run(ctx, be, tok), and closes both. */
lmc_status lmc_with_backend(const char *tokenizer, const char *device, int threads,
                            lmc_status (*run)(const void *ctx, lmc_backend *be, lmc_tokenizer *tok), const void *ctx);

/* The tokenizer to load: the flag's, else the model's own when the model
 * is a .gguf file and text is wanted (no --prompt-ids), else NULL. */
const char *lmc_model_tokenizer(const char *model, const char *tokenizer, const char *prompt_ids);

/* The engine's weight type: --quant when given (flag != NULL), else the
 * one a GGUF file's weights are stored closest to (q8_0 -> int8, bf16 ->
 * bf16), else fp32. */
lmc_status lmc_model_quant(const char *model, const char *flag, lmc_quant *q);

/* Decodes up to max_new tokens after the prompt in slot 0 of the engine,
 * sampling as sp (no penalties) with seed, and writes one JSON object a
 * line to out, {"id": N, "logprob": X}, X the log-softmax of the raw
 * logits; stops after stop_id (when >= 0) or at the context's end. */
lmc_status lmc_print_logprobs(lmc_engine *e, const int *ids, int n, int max_new, const lmc_sampling *sp,
                              uint64_t seed, int stop_id, FILE *out);

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
