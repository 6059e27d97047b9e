/* prompt.h: turning --prompt TEXT or --prompt-ids "1 2 3" into token ids. */
#ifndef LMC_PROMPT_H
#define LMC_PROMPT_H

#include "backend/backend.h"
#include "lmc/tokenizer.h"

/* ids from prompt_ids when given, else the tokenized prompt (an empty
 * prompt is the tokenizer's <|endoftext|>: a new document); *ids is
 * malloc'd. */
lmc_status lmc_prompt_tokens(const char *prompt, const char *prompt_ids, lmc_tokenizer *tok, int **ids, size_t *n);

/* Loads the tokenizer (when tokenizer is set) and opens the backend, calls
 * run(ctx, be, tok), and closes both: the frame of sample and generate. */
lmc_status lmc_with_backend(const char *tokenizer, const char *device, int threads,
                            lmc_status (*run)(const void *ctx, lmc_backend *be, lmc_tokenizer *tok), const void *ctx);

#endif
