/* run.h: what lmc sample, generate and serve share inside the library:
 * the prompt as token ids, the tokenizer and backend around the work, the
 * engine weight type a model file implies, and --logprobs. */
#ifndef LMC_INFER_RUN_H
#define LMC_INFER_RUN_H

#include "lmc/generate.h"

/* ids from prompt_ids ("1 2 3") when given, else the tokenized prompt (an
 * empty prompt is the tokenizer's <|endoftext|>: a new document); *ids is
 * malloc'd. */
lmc_status lmc_prompt_tokens(const char *prompt, const char *prompt_ids, lmc_tokenizer *tok, int **ids, size_t *n);

/* Loads the tokenizer (when tokenizer is set) and opens the backend, calls
 * run(ctx, be, tok), and closes both. */
lmc_status lmc_with_backend(const char *tokenizer, const char *device, int threads,
                            lmc_status (*run)(const void *ctx, lmc_backend *be, lmc_tokenizer *tok), const void *ctx);

/* The engine's weight type: --quant when given (flag != NULL), else the
 * one a GGUF file's weights are stored closest to (q8_0 -> int8, bf16 ->
 * bf16), else fp32. */
lmc_status lmc_model_quant(const char *model, const char *flag, lmc_quant *q);

/* What lmc_engine_open takes from a model file: its config, its fp32
 * parameters and its balancing bias (lmc_engine_opts.moe_bias: n_layer x
 * n_expert, NULL when the file holds none). Under tp > 1 params stays
 * NULL: each rank of the engine reads only its part (lmc_engine_opts.
 * weights), so none holds the whole model. On error nothing is held;
 * lmc_model_file_free frees the buffers and keeps cfg. */
typedef struct {
    lmc_model_config cfg;
    float *params, *moe_bias;
} lmc_model_file;

lmc_status lmc_model_file_load(const char *model, int tp, lmc_model_file *f);
void lmc_model_file_free(lmc_model_file *f);

/* Decodes up to max_new tokens after the prompt in slot 0 of the engine,
 * sampling as sp (no penalties) with seed, and writes one JSON object a
 * line to out, {"id": N, "logprob": X}, X the log-softmax of the raw
 * logits; stops after stop_id (when >= 0) or at the context's end. */
lmc_status lmc_print_logprobs(lmc_engine *e, const int *ids, int n, int max_new, const lmc_sampling *sp,
                              uint64_t seed, int stop_id, FILE *out);

#endif
