/* run_sample.c: lmc sample: generation by full recomputation through the
 * engine (every token a prefill of the last max_seq tokens), the plain
 * reference lmc generate's KV cache is checked against. */
#include "infer/run.h"

#include <stdlib.h>

typedef struct {
    FILE *out;
    lmc_tokenizer *tok;
    int count;
    lmc_sb text;
} emit_ctx;

/* Each token written as it comes. */
static lmc_status emit(int token, const float *logits, void *ctx)
{
    (void)logits;
    emit_ctx *c = ctx;
    c->text.len = 0;
    LMC_TRY(lmc_token_append(c->tok, token, &c->count, &c->text));
    fwrite(c->text.s, 1, c->text.len, c->out);
    fflush(c->out);
    return LMC_OK;
}

static lmc_status sample(const void *ctx, lmc_backend *be, lmc_tokenizer *tok)
{
    const lmc_gen_request *r = ctx;
    lmc_model_file f;
    LMC_TRY(lmc_model_file_load(r->model, 1, &f));
    const lmc_model_config cfg = f.cfg;
    lmc_engine *e = NULL;
    lmc_status s = lmc_engine_open(&e, be, &cfg, f.params, &(lmc_engine_opts){.slots = 1, .moe_bias = f.moe_bias});
    lmc_model_file_free(&f);
    int *ids = NULL;
    size_t n = 0;
    if (s == LMC_OK)
        s = lmc_prompt_tokens(r->prompt, r->prompt_ids, tok, &ids, &n);
    if (s == LMC_OK && tok && lmc_tok_vocab_size(tok) > cfg.vocab)
        s = lmc_err(LMC_EINVAL, "--tokenizer has %d tokens but the model only %d", lmc_tok_vocab_size(tok), cfg.vocab);
    if (s == LMC_OK) {
        lmc_rng rng;
        lmc_rng_seed(&rng, r->seed);
        emit_ctx c = {r->out, tok, 0, {0}};
        lmc_sb_init(&c.text);
        lmc_gen_opts g = {.max_new = r->max_tokens, .sp = &r->sp, .rng = &rng, .recompute = 1, .slide = 1,
                          .stop_id = -1, .on_token = emit, .ctx = &c};
        s = lmc_engine_generate(e, ids, (int)n, &g);
        lmc_sb_free(&c.text);
        fprintf(r->out, "\n");
    }
    free(ids);
    lmc_engine_close(e);
    return s;
}

lmc_status lmc_sample_run(const lmc_gen_request *r)
{
    const char *tok = lmc_model_tokenizer(r->model, r->tokenizer, r->prompt_ids);
    return lmc_with_backend(tok, r->device, r->threads, sample, r);
}
