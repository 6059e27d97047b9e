/* model_file.c: defaults taken from the model file (its weight type, its
 * tokenizer, its balancing bias), and lmc generate --logprobs. */
#include "infer/run.h"
#include "lmc/gguf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

const char *lmc_model_tokenizer(const char *model, const char *tokenizer, const char *prompt_ids)
{
    if (tokenizer)
        return tokenizer;
    return model && !prompt_ids && lmc_gguf_is_path(model) ? model : NULL;
}

lmc_status lmc_model_quant(const char *model, const char *flag, lmc_quant *q)
{
    *q = LMC_QUANT_NONE;
    if (flag || !model || !lmc_gguf_is_path(model))
        return lmc_quant_parse(flag, "--quant", q);
    int ftype = -1;
    LMC_TRY(lmc_gguf_file_type(model, &ftype));
    if (ftype == LMC_GGUF_FTYPE_Q8_0)
        *q = LMC_QUANT_INT8;
    else if (ftype == LMC_GGUF_FTYPE_BF16)
        *q = LMC_QUANT_BF16;
    return LMC_OK;
}

static lmc_status load_moe_bias(const char *model, const lmc_model_config *cfg, float **bias)
{
    *bias = NULL;
    if (cfg->n_expert <= 0)
        return LMC_OK;
    float *b = malloc((size_t)cfg->n_layer * cfg->n_expert * sizeof(float));
    int found = 0;
    lmc_status s = b ? lmc_weights_load_moe_bias(model, cfg, b, &found) : lmc_err(LMC_ENOMEM, "out of memory");
    if (s == LMC_OK && found)
        *bias = b;
    else
        free(b);
    return s;
}

lmc_status lmc_model_file_load(const char *model, int tp, lmc_model_file *f)
{
    lmc_layout layout;
    f->params = f->moe_bias = NULL;
    if (tp > 1) /* the config alone: the engine's ranks read their parts */
        LMC_TRY(lmc_weights_load_range(model, &f->cfg, &layout, 0, 0, NULL));
    else
        LMC_TRY(lmc_weights_load(model, &f->cfg, &layout, &f->params));
    lmc_layout_free(&layout);
    lmc_status s = load_moe_bias(model, &f->cfg, &f->moe_bias);
    if (s != LMC_OK)
        lmc_model_file_free(f);
    return s;
}

void lmc_model_file_free(lmc_model_file *f)
{
    lmc_free(f->params);
    free(f->moe_bias);
    f->params = f->moe_bias = NULL;
}

static double log_softmax_at(const float *x, int V, int k)
{
    double mx = x[0], sum = 0;
    for (int i = 1; i < V; i++)
        mx = x[i] > mx ? x[i] : mx;
    for (int i = 0; i < V; i++)
        sum += exp((double)x[i] - mx);
    return (double)x[k] - mx - log(sum);
}

typedef struct {
    int V;
    FILE *out;
} logprob_out;

static lmc_status print_logprob(int token, const float *logits, void *ctx)
{
    const logprob_out *o = ctx;
    fprintf(o->out, "{\"id\": %d, \"logprob\": %.7g}\n", token, log_softmax_at(logits, o->V, token));
    return LMC_OK;
}

lmc_status lmc_print_logprobs(lmc_engine *e, const int *ids, int n, int max_new, const lmc_sampling *sp,
                              uint64_t seed, int stop_id, FILE *out)
{
    if (lmc_sample_has_penalties(sp))
        return lmc_err(LMC_EINVAL, "--logprobs: penalties are not supported");
    lmc_rng rng;
    lmc_rng_seed(&rng, seed);
    logprob_out lo = {lmc_engine_config(e)->vocab, out};
    lmc_gen_opts g = {.max_new = max_new, .sp = sp, .rng = &rng, .stop_id = stop_id, .on_token = print_logprob,
                      .ctx = &lo};
    lmc_status s = lmc_engine_generate(e, ids, n, &g);
    fflush(out);
    return s;
}
