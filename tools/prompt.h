/* prompt.h: turning --prompt TEXT or --prompt-ids "1 2 3" into token ids. */
#ifndef LMC_PROMPT_H
#define LMC_PROMPT_H

#include "lmc/tokenizer.h"

/* ids from prompt_ids when given, else the tokenized prompt (an empty
 * prompt is the tokenizer's <|endoftext|>: a new document); *ids is
 * malloc'd. */
lmc_status lmc_prompt_tokens(const char *prompt, const char *prompt_ids, lmc_tokenizer *tok, int **ids, size_t *n);

#endif
