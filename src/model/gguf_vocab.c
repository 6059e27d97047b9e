/* gguf_vocab.c: the tokenizer of a GGUF file: the tokenizer.ggml.* keys
 * checked here (model, pre-tokenizer, array types and lengths), the
 * strings turned into a tokenizer by src/tokenizer/format_gguf.c. */
#include "lmc/gguf.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static lmc_status check_kind(const lmc_gguf *g)
{
    lmc_gguf_str model = {0}, pre = {0};
    LMC_TRY(lmc_gguf_get_str(g, "tokenizer.ggml.model", 1, &model));
    if (!(model.n == 4 && !memcmp(model.s, "gpt2", 4)))
        return lmc_err(LMC_EUNSUPPORTED, "%s: key 'tokenizer.ggml.model' is '%.*s'; lmc reads byte-level BPE "
                       "tokenizers ('gpt2')", g->what, (int)(model.n < 64 ? model.n : 64), model.s);
    LMC_TRY(lmc_gguf_get_str(g, "tokenizer.ggml.pre", 1, &pre));
    if (!lmc_gguf_pre_is_gpt2(pre.s, pre.n))
        return lmc_err(LMC_EUNSUPPORTED, "%s: key 'tokenizer.ggml.pre' is '%.*s'; lmc splits text with GPT-2's "
                       "pre-tokenizer only ('gpt-2' and the names llama.cpp treats alike)", g->what,
                       (int)(pre.n < 64 ? pre.n : 64), pre.s);
    return LMC_OK;
}

static lmc_status read_vocab(const lmc_gguf *g, lmc_tok_vocab *v)
{
    const lmc_gguf_kv *tokens, *types, *merges;
    LMC_TRY(lmc_gguf_get_arr(g, "tokenizer.ggml.tokens", 1, LMC_GGUF_STR, &tokens));
    LMC_TRY(lmc_gguf_get_arr(g, "tokenizer.ggml.token_type", 0, LMC_GGUF_I32, &types));
    LMC_TRY(lmc_gguf_get_arr(g, "tokenizer.ggml.merges", 1, LMC_GGUF_STR, &merges));
    if (tokens->n > INT_MAX || merges->n > INT_MAX)
        return lmc_err(LMC_EFORMAT, "%s: %llu tokens and %llu merges: too many", g->what,
                       (unsigned long long)tokens->n, (unsigned long long)merges->n);
    if (types && types->n < tokens->n)
        return lmc_err(LMC_EFORMAT, "%s: key 'tokenizer.ggml.token_type' has %llu entries for %llu tokens", g->what,
                       (unsigned long long)types->n, (unsigned long long)tokens->n);
    v->n = (int)tokens->n;
    v->tokens = tokens->str;
    v->n_merges = (int)merges->n;
    v->merges = merges->str;
    if (!types)
        return LMC_OK;
    if (!(v->types = malloc(((size_t)v->n + 1) * sizeof *v->types)))
        return lmc_err(LMC_ENOMEM, "%s: out of memory", g->what);
    for (int i = 0; i < v->n; i++) {
        long long t = lmc_gguf_arr_int(types, (uint64_t)i);
        v->types[i] = t >= INT32_MIN && t <= INT32_MAX ? (int32_t)t : 0;
    }
    return LMC_OK;
}

lmc_status lmc_gguf_tok_from(const lmc_gguf *g, lmc_tokenizer **out)
{
    *out = NULL;
    lmc_tok_vocab v = {0};
    lmc_status s = check_kind(g);
    if (s == LMC_OK)
        s = read_vocab(g, &v);
    if (s == LMC_OK)
        s = lmc_tok_from_vocab(&v, g->what, out);
    free(v.types); /* the strings belong to g */
    return s;
}

lmc_status lmc_gguf_tok_load(const char *path, lmc_tokenizer **out)
{
    *out = NULL;
    lmc_gguf g;
    LMC_TRY(lmc_gguf_open(&g, path));
    lmc_status s = lmc_gguf_tok_from(&g, out);
    lmc_gguf_close(&g);
    return s;
}
