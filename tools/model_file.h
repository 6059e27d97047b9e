/* model_file.h: what sample, generate and serve take from the model file
 * itself when no flag says otherwise: a GGUF file's tokenizer, and the
 * engine weight type that matches its tensors. And generate's
 * --logprobs output. */
#ifndef LMC_MODEL_FILE_H
#define LMC_MODEL_FILE_H

#include "lmc/infer.h"

/* The tokenizer to load: the flag's, else the model's own when the model
 * is a .gguf file and text is wanted (no --prompt-ids), else NULL. */
const char *lmc_model_tokenizer(const char *model, const char *tokenizer, const char *prompt_ids);

/* The engine's weight type: --quant when given (flag != NULL), else the
 * one a GGUF file's weights are stored closest to (q8_0 -> int8, bf16 ->
 * bf16), else fp32. */
lmc_status lmc_model_quant(const char *model, const char *flag, lmc_quant *q);

/* Decodes up to max_new tokens after the prompt in slot 0 of the engine,
 * sampling as sp (no penalties) with seed, and prints one JSON object a
 * line, {"id": N, "logprob": X}, X the log-softmax of the raw logits;
 * stops after stop_id (when >= 0) or at the context's end. */
lmc_status lmc_print_logprobs(lmc_engine *e, const int *ids, int n, int max_new, const lmc_sampling *sp,
                              uint64_t seed, int stop_id);

#endif
