/* run_generate.c: lmc generate: text from a prompt with the KV-cache
 * engine (the scheduler's step, as the server runs it), streamed as it is
 * produced; speeds after. */
#include "infer/run.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    FILE *out;
    lmc_tokenizer *tok;
    lmc_textstream text;
    int first;
    lmc_status st;
} out_ctx;

static void flush_text(out_ctx *o, int final)
{
    const char *p;
    size_t n = lmc_text_take(&o->text, final, &p);
    if (n)
        fwrite(p, 1, n, o->out);
    fflush(o->out);
}

static void on_token(lmc_seq *s, int id, void *ctx)
{
    out_ctx *o = ctx;
    if (!o->tok) {
        fprintf(o->out, "%s%d", o->first ? "" : " ", id);
        fflush(o->out);
        o->first = 0;
        return;
    }
    size_t len;
    const char *b = lmc_tok_token_bytes(o->tok, id, &len);
    if (!b) {
        o->st = lmc_err(LMC_ERANGE, "generated id %d is outside the tokenizer's vocabulary", id);
        lmc_seq_stop(s, LMC_FINISH_STOP);
        return;
    }
    if (lmc_text_push(&o->text, b, len))
        lmc_seq_stop(s, LMC_FINISH_STOP);
    flush_text(o, 0);
}

/* Decode speed counts the decode steps only: the first token comes out of
 * the prefill, whose speed is the prompt's. */
static void report(FILE *err, const lmc_engine *e, const lmc_seq *s, lmc_quant q)
{
    lmc_engine_stats st;
    lmc_engine_get_stats(e, &st);
    fprintf(err, "prompt: %d tokens, %.1f tok/s; decode: %d tokens generated, %.1f tok/s (%s weights, finish: %s)\n",
            s->n_prompt, st.prefill_seconds > 0 ? st.prefill_tokens / st.prefill_seconds : 0.0, s->n_gen,
            st.decode_seconds > 0 ? st.decode_tokens / st.decode_seconds : 0.0, lmc_quant_name(q),
            s->finish == LMC_FINISH_STOP ? "stop" : "length");
}

/* The prompt in slot 0, decoded step by step until it is done. */
static lmc_status stream(const lmc_generate_request *g, lmc_engine *e, lmc_tokenizer *tok, const int *ids, int n,
                         lmc_quant q)
{
    const lmc_gen_request *r = &g->r;
    out_ctx oc = {.out = r->out, .tok = tok, .first = 1};
    lmc_seq seq;
    memset(&seq, 0, sizeof seq);
    lmc_status s = lmc_text_init(&oc.text, g->stops, g->n_stops);
    if (s == LMC_OK)
        s = lmc_seq_init(&seq, ids, n, r->max_tokens, &r->sp, r->seed);
    int eot = tok ? lmc_tok_special_id(tok, "<|endoftext|>") : -1;
    if (s == LMC_OK && eot >= 0 && !g->ignore_eos)
        s = lmc_seq_set_stop_ids(&seq, &eot, 1);
    seq.on_token = on_token, seq.ctx = &oc;
    lmc_seq *p = &seq;
    while (s == LMC_OK && seq.state != LMC_SEQ_DONE)
        s = lmc_engine_iterate(e, &p, 1);
    if (s == LMC_OK)
        s = oc.st;
    if (seq.ids) {
        flush_text(&oc, 1);
        fprintf(r->out, "\n");
        fflush(r->out);
        if (!g->quiet && s == LMC_OK)
            report(g->err, e, &seq, q);
    }
    lmc_seq_free(&seq);
    lmc_text_free(&oc.text);
    return s;
}

static lmc_status run(const void *ctx, lmc_backend *be, lmc_tokenizer *tok)
{
    const lmc_generate_request *g = ctx;
    const lmc_gen_request *r = &g->r;
    lmc_engine_opts eo = {.slots = 1, .ctx = g->ctx, .tp = g->tp, .weights = r->model};
    LMC_TRY(lmc_model_quant(r->model, g->quant, &eo.quant));
    lmc_model_file f;
    LMC_TRY(lmc_model_file_load(r->model, g->tp, &f));
    const lmc_model_config cfg = f.cfg;
    eo.moe_bias = f.moe_bias;
    lmc_status s = LMC_OK;
    if (tok && lmc_tok_vocab_size(tok) > cfg.vocab)
        s = lmc_err(LMC_EINVAL, "--tokenizer has %d tokens but the model only %d", lmc_tok_vocab_size(tok),
                    cfg.vocab);
    if (eo.ctx > cfg.max_seq)
        eo.ctx = cfg.max_seq;
    lmc_engine *e = NULL;
    if (s == LMC_OK)
        s = lmc_engine_open(&e, be, &cfg, f.params, &eo);
    lmc_model_file_free(&f);
    int *ids = NULL;
    size_t n = 0;
    if (s == LMC_OK)
        s = lmc_prompt_tokens(r->prompt, r->prompt_ids, tok, &ids, &n);
    if (s == LMC_OK && n >= (size_t)lmc_engine_ctx(e))
        s = lmc_err(LMC_ERANGE, "the prompt has %zu tokens; the context holds %d (--ctx), prompt included", n,
                    lmc_engine_ctx(e));
    int stop = tok && !g->ignore_eos ? lmc_tok_special_id(tok, "<|endoftext|>") : -1;
    if (s == LMC_OK && g->logprobs)
        s = lmc_print_logprobs(e, ids, (int)n, r->max_tokens, &r->sp, r->seed, stop, r->out);
    else if (s == LMC_OK && lmc_engine_rank(e) != 0) /* tensor parallel: rank 0 leads */
        s = lmc_engine_follow(e);
    else if (s == LMC_OK)
        s = stream(g, e, tok, ids, (int)n, eo.quant);
    free(ids);
    lmc_engine_close(e);
    return s;
}

lmc_status lmc_generate_run(const lmc_generate_request *g)
{
    const lmc_gen_request *r = &g->r;
    return lmc_with_backend(lmc_model_tokenizer(r->model, r->tokenizer, r->prompt_ids), r->device, r->threads, run,
                            g);
}
