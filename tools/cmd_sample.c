/* cmd_sample.c: `lmc sample`: a simple generate by full recomputation
 * (the fast KV-cache engine is `lmc generate`). */
#include "cli.h"
#include "model_file.h"
#include "prompt.h"
#include "lmc/sampler.h"
#include "lmc/tokenizer.h"
#include "model/model.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *model, *tokenizer, *prompt, *prompt_ids, *device;
    long long max_tokens, top_k, seed, threads;
    double temperature, top_p;
} sample_opts;

static lmc_status emit(lmc_tokenizer *tok, int id, int first)
{
    if (!tok) {
        printf("%s%d", first ? "" : " ", id);
    } else {
        size_t len;
        const char *b = lmc_tok_token_bytes(tok, id, &len);
        if (!b)
            return lmc_err(LMC_ERANGE, "sampled id %d is outside the tokenizer's vocabulary", id);
        fwrite(b, 1, len, stdout);
    }
    fflush(stdout);
    return LMC_OK;
}

static lmc_status generate(const void *ctx, lmc_backend *be, lmc_tokenizer *tok)
{
    const sample_opts *o = ctx;
    lmc_model_config cfg;
    lmc_layout layout;
    float *host = NULL;
    LMC_TRY(lmc_weights_load(o->model, &cfg, &layout, &host));
    lmc_layout_free(&layout);
    lmc_model *m = NULL;
    int *ids = NULL;
    size_t n = 0;
    lmc_status s = lmc_model_open(&m, &cfg, be, 1, cfg.max_seq, 0);
    if (s == LMC_OK)
        s = lmc_prompt_tokens(o->prompt, o->prompt_ids, tok, &ids, &n);
    if (s == LMC_OK && tok && lmc_tok_vocab_size(tok) > cfg.vocab)
        s = lmc_err(LMC_EINVAL, "--tokenizer has %d tokens but the model only %d", lmc_tok_vocab_size(tok), cfg.vocab);
    size_t cap = n + (size_t)o->max_tokens;
    int *seq = s == LMC_OK ? malloc(cap * sizeof(int)) : NULL;
    float *logits = malloc((size_t)cfg.vocab_padded * 4), *scratch = malloc((size_t)cfg.vocab * 8);
    if (s == LMC_OK && (!seq || !logits || !scratch))
        s = lmc_err(LMC_ENOMEM, "out of memory");
    if (s == LMC_OK) {
        lmc_model_upload_params(m, host);
        memcpy(seq, ids, n * sizeof(int));
        lmc_rng rng;
        lmc_rng_seed(&rng, (uint64_t)o->seed);
        lmc_sampling sp = {(float)o->temperature, (int)o->top_k, (float)o->top_p};
        for (long long i = 0; i < o->max_tokens && s == LMC_OK; i++) {
            size_t start = n > (size_t)cfg.max_seq ? n - (size_t)cfg.max_seq : 0;
            int len = (int)(n - start);
            s = lmc_model_set_batch(m, seq + start, NULL, 1, len, "prompt");
            if (s)
                break;
            lmc_model_forward(m, 1, len, LMC_FWD_LAST_LOGITS, 0);
            be->ops->download(be, logits, m->a.logits, (size_t)cfg.vocab * sizeof(float));
            seq[n] = lmc_sample_token(logits, cfg.vocab, &sp, &rng, scratch);
            s = emit(tok, seq[n], i == 0);
            n++;
        }
        printf("\n");
    }
    free(seq), free(logits), free(scratch), free(ids);
    lmc_model_close(m);
    lmc_free(host);
    return s;
}

int lmc_cmd_sample(int argc, char **argv)
{
    sample_opts o = {.device = "cpu", .max_tokens = 64, .top_k = 40, .seed = 1337, .temperature = 1.0, .top_p = 1.0};
    cli_opt opts[] = {
        {"model", CLI_STR, &o.model, "weights (.safetensors, HF folder, or .gguf)"},
        {"tokenizer", CLI_STR, &o.tokenizer, "tokenizer folder or .gguf (text in and out; a .gguf model's own "
                                             "unless --prompt-ids)"},
        {"prompt", CLI_STR, &o.prompt, "prompt text (default: start of a document)"},
        {"prompt-ids", CLI_STR, &o.prompt_ids, "prompt as token ids (\"1 2 3\")"},
        {"max-tokens", CLI_INT, &o.max_tokens, "tokens to generate", 0, 1 << 20},
        {"temperature", CLI_FLOAT, &o.temperature, "0 = greedy", 0, 100},
        {"top-k", CLI_INT, &o.top_k, "sample among the k most likely (0 = all)", 0, 1 << 24},
        {"top-p", CLI_FLOAT, &o.top_p, "nucleus sampling mass (1 = off)", 0, 1},
        {"seed", CLI_INT, &o.seed, "sampling seed", 0, 1LL << 62},
        {"threads", CLI_INT, &o.threads, "CPU threads", 0, 4096},
        {"device", CLI_STR, &o.device, "cpu | cuda[:N]"},
        {NULL},
    };
    cli_spec spec = {.cmd = "sample", .synopsis = "--model FILE [--tokenizer DIR] [--prompt TEXT | --prompt-ids IDS]",
                     .opts = opts};
    lmc_status s = cli_parse(&spec, argc, argv, NULL);
    if (s)
        return cli_exit(&spec, s);
    if (!o.model)
        return cli_fail("sample", lmc_err(LMC_EINVAL, "--model FILE is required"));
    const char *tok = lmc_model_tokenizer(o.model, o.tokenizer, o.prompt_ids);
    return cli_fail("sample", lmc_with_backend(tok, o.device, (int)o.threads, generate, &o));
}
