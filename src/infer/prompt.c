/* prompt.c: the prompt of lmc sample and lmc generate, as token ids, and
 * the tokenizer and backend around their work. */
#include "infer/run.h"

#include <stdlib.h>
#include <string.h>

static lmc_status parse_ids(const char *s, int **ids, size_t *n)
{
    size_t cap = 16;
    *n = 0;
    *ids = malloc(cap * sizeof(int));
    if (!*ids)
        return lmc_err(LMC_ENOMEM, "out of memory");
    for (char *end; *s; s = end) {
        while (*s == ' ' || *s == ',' || *s == '\n' || *s == '\t')
            s++;
        if (!*s)
            break;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 1 << 24)
            return lmc_err(LMC_EINVAL, "--prompt-ids: '%.20s' is not a token id", s);
        if (*n == cap && !(*ids = realloc(*ids, (cap *= 2) * sizeof(int))))
            return lmc_err(LMC_ENOMEM, "out of memory");
        (*ids)[(*n)++] = (int)v;
    }
    return *n ? LMC_OK : lmc_err(LMC_EINVAL, "--prompt-ids: no ids given");
}

lmc_status lmc_prompt_tokens(const char *prompt, const char *prompt_ids, lmc_tokenizer *tok, int **ids, size_t *n)
{
    if (prompt_ids)
        return parse_ids(prompt_ids, ids, n);
    if (!tok)
        return lmc_err(LMC_EINVAL, "--prompt needs --tokenizer DIR (or give --prompt-ids)");
    const char *text = prompt ? prompt : "";
    int eot = lmc_tok_special_id(tok, "<|endoftext|>");
    if (!*text && eot >= 0) { /* an empty prompt starts a new document */
        *ids = malloc(sizeof(int));
        if (!*ids)
            return lmc_err(LMC_ENOMEM, "out of memory");
        (*ids)[0] = eot;
        *n = 1;
        return LMC_OK;
    }
    return lmc_tok_encode(tok, text, strlen(text), ids, n);
}

lmc_status lmc_with_backend(const char *tokenizer, const char *device, int threads,
                            lmc_status (*run)(const void *ctx, lmc_backend *be, lmc_tokenizer *tok), const void *ctx)
{
    lmc_tokenizer *tok = NULL;
    lmc_backend *be = NULL;
    lmc_status s = tokenizer ? lmc_tok_load(tokenizer, &tok) : LMC_OK;
    if (s == LMC_OK)
        s = lmc_backend_open(device, threads, &be);
    if (s == LMC_OK)
        s = run(ctx, be, tok);
    lmc_backend_close(be);
    lmc_tok_free(tok);
    return s;
}
