/* cmd_generate.c: `lmc generate`: text from a prompt with the KV-cache
 * engine, streamed to stdout as it is produced; speeds on stderr. */
#include "cli.h"
#include "model_file.h"
#include "prompt.h"
#include "backend/backend.h"
#include "lmc/infer.h"
#include "lmc/tokenizer.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *model, *tokenizer, *prompt, *prompt_ids, *device, *quant;
    long long max_tokens, top_k, seed, threads, ctx, tp;
    double temperature, top_p, rep, freq, pres;
    int ignore_eos, quiet, logprobs;
    cli_list stops;
} gen_opts;

typedef struct {
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
        fwrite(p, 1, n, stdout);
    fflush(stdout);
}

static void on_token(lmc_seq *s, int id, void *ctx)
{
    out_ctx *o = ctx;
    if (!o->tok) {
        printf("%s%d", o->first ? "" : " ", id);
        fflush(stdout);
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
static void report(const lmc_engine *e, const lmc_seq *s, lmc_quant q)
{
    lmc_engine_stats st;
    lmc_engine_get_stats(e, &st);
    fprintf(stderr, "prompt: %d tokens, %.1f tok/s; decode: %d tokens generated, %.1f tok/s (%s weights, finish: %s)\n",
            s->n_prompt, st.prefill_seconds > 0 ? st.prefill_tokens / st.prefill_seconds : 0.0, s->n_gen,
            st.decode_seconds > 0 ? st.decode_tokens / st.decode_seconds : 0.0, lmc_quant_name(q),
            s->finish == LMC_FINISH_STOP ? "stop" : "length");
}

static lmc_status run(const void *ctx, lmc_backend *be, lmc_tokenizer *tok)
{
    const gen_opts *o = ctx;
    lmc_model_config cfg;
    lmc_layout layout;
    float *host = NULL;
    lmc_engine_opts eo = {.slots = 1, .ctx = (int)o->ctx, .tp = (int)o->tp};
    LMC_TRY(lmc_model_quant(o->model, o->quant, &eo.quant));
    LMC_TRY(lmc_weights_load(o->model, &cfg, &layout, &host));
    lmc_layout_free(&layout);
    lmc_status s = LMC_OK;
    if (tok && lmc_tok_vocab_size(tok) > cfg.vocab)
        s = lmc_err(LMC_EINVAL, "--tokenizer has %d tokens but the model only %d", lmc_tok_vocab_size(tok),
                    cfg.vocab);
    if (eo.ctx > cfg.max_seq)
        eo.ctx = cfg.max_seq;
    lmc_engine *e = NULL;
    if (s == LMC_OK)
        s = lmc_engine_open(&e, be, &cfg, host, &eo);
    lmc_free(host);
    int *ids = NULL;
    size_t n = 0;
    if (s == LMC_OK)
        s = lmc_prompt_tokens(o->prompt, o->prompt_ids, tok, &ids, &n);
    if (s == LMC_OK && n >= (size_t)lmc_engine_ctx(e))
        s = lmc_err(LMC_ERANGE, "the prompt has %zu tokens; the context holds %d (--ctx), prompt included", n,
                    lmc_engine_ctx(e));
    if (s == LMC_OK && o->logprobs) {
        lmc_sampling lp = {(float)o->temperature, (int)o->top_k, (float)o->top_p, (float)o->rep, (float)o->freq,
                           (float)o->pres};
        int stop = tok && !o->ignore_eos ? lmc_tok_special_id(tok, "<|endoftext|>") : -1;
        s = lmc_print_logprobs(e, ids, (int)n, (int)o->max_tokens, &lp, (uint64_t)o->seed, stop);
        free(ids);
        lmc_engine_close(e);
        return s;
    }
    if (s == LMC_OK && lmc_engine_rank(e) != 0) { /* tensor parallel: rank 0 leads */
        s = lmc_engine_follow(e);
        free(ids);
        lmc_engine_close(e);
        return s;
    }
    out_ctx oc = {.tok = tok, .first = 1};
    lmc_seq seq;
    memset(&seq, 0, sizeof seq);
    lmc_sampling sp = {(float)o->temperature, (int)o->top_k, (float)o->top_p, (float)o->rep, (float)o->freq,
                       (float)o->pres};
    if (s == LMC_OK)
        s = lmc_text_init(&oc.text, (const char *const *)o->stops.v, o->stops.n);
    if (s == LMC_OK)
        s = lmc_seq_init(&seq, ids, (int)n, (int)o->max_tokens, &sp, (uint64_t)o->seed);
    int eot = tok ? lmc_tok_special_id(tok, "<|endoftext|>") : -1;
    if (s == LMC_OK && eot >= 0 && !o->ignore_eos)
        s = lmc_seq_set_stop_ids(&seq, &eot, 1);
    seq.on_token = on_token, seq.ctx = &oc;
    lmc_seq *p = &seq;
    while (s == LMC_OK && seq.state != LMC_SEQ_DONE)
        s = lmc_engine_iterate(e, &p, 1);
    if (s == LMC_OK)
        s = oc.st;
    if (seq.ids) {
        flush_text(&oc, 1);
        printf("\n");
        fflush(stdout);
        if (!o->quiet && s == LMC_OK)
            report(e, &seq, eo.quant);
    }
    lmc_seq_free(&seq);
    lmc_text_free(&oc.text);
    free(ids);
    lmc_engine_close(e);
    return s;
}

int lmc_cmd_generate(int argc, char **argv)
{
    gen_opts o = {.device = "cpu", .quant = "none", .max_tokens = 256, .top_k = 40, .seed = 1337, .tp = 1,
                  .temperature = 1.0, .top_p = 1.0, .rep = 1.0};
    cli_opt opts[] = {
        {"model", CLI_STR, &o.model, "weights (.safetensors, HF folder, or .gguf)"},
        {"tokenizer", CLI_STR, &o.tokenizer, "tokenizer folder or .gguf (text in and out; without it ids in and out; "
                                             "a .gguf model's own unless --prompt-ids)"},
        {"prompt", CLI_STR, &o.prompt, "prompt text (default: start of a document)"},
        {"prompt-ids", CLI_STR, &o.prompt_ids, "prompt as token ids (\"1 2 3\")"},
        {"max-tokens", CLI_INT, &o.max_tokens, "tokens to generate at most", 0, 1 << 24},
        {"temperature", CLI_FLOAT, &o.temperature, "0 = greedy", 0, 100},
        {"top-k", CLI_INT, &o.top_k, "sample among the k most likely (0 = all)", 0, 1 << 24},
        {"top-p", CLI_FLOAT, &o.top_p, "nucleus sampling mass (1 = off)", 0, 1},
        {"repetition-penalty", CLI_FLOAT, &o.rep, "divide seen tokens' logits (1 = off)", 0, 100},
        {"frequency-penalty", CLI_FLOAT, &o.freq, "OpenAI frequency penalty", -2, 2},
        {"presence-penalty", CLI_FLOAT, &o.pres, "OpenAI presence penalty", -2, 2},
        {"stop", CLI_LIST, &o.stops, "stop string (repeatable); not printed"},
        {"ignore-eos", CLI_BOOL, &o.ignore_eos, "do not stop at <|endoftext|>"},
        {"seed", CLI_INT, &o.seed, "sampling seed", 0, 1LL << 62},
        {"quant", CLI_STR, &o.quant, "weights for decode: none | bf16 | int8 (default: a .gguf's own type)"},
        {"ctx", CLI_INT, &o.ctx, "context tokens, prompt included (default: the model's)", 0, 1 << 24},
        {"threads", CLI_INT, &o.threads, "CPU threads", 0, 4096},
        {"device", CLI_STR, &o.device, "cpu | cuda[:N]"},
        {"tp", CLI_INT, &o.tp, "tensor parallel: split the model over the N ranks of mpirun -np N", 1, 4096},
        {"quiet", CLI_BOOL, &o.quiet, "no speed line on stderr"},
        {"logprobs", CLI_BOOL, &o.logprobs, "print {\"id\": N, \"logprob\": X} lines (raw logits) instead of text"},
        {NULL},
    };
    cli_spec spec = {.cmd = "generate",
                     .synopsis = "--model FILE [--tokenizer DIR] [--prompt TEXT | --prompt-ids IDS]",
                     .about = "Generates with the KV-cache engine (prefill in one pass, then one token per step), "
                              "printing text as it is produced, then prompt and decode speeds on stderr.",
                     .opts = opts};
    lmc_status s = cli_parse(&spec, argc, argv, NULL);
    if (s) {
        cli_list_free(&o.stops);
        return cli_exit(&spec, s);
    }
    if (!o.model) {
        cli_list_free(&o.stops);
        return cli_fail("generate", lmc_err(LMC_EINVAL, "--model FILE is required"));
    }
    if (!cli_was_set(&spec, "quant"))
        o.quant = NULL; /* the model file's own type (model_file.c) */
    s = lmc_with_backend(lmc_model_tokenizer(o.model, o.tokenizer, o.prompt_ids), o.device, (int)o.threads, run, &o);
    cli_list_free(&o.stops);
    return cli_fail("generate", s);
}
