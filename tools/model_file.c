/* model_file.c: defaults taken from the model file, and --logprobs. */
#include "model_file.h"
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

static double log_softmax_at(const float *x, int V, int k)
{
    double mx = x[0], sum = 0;
    for (int i = 1; i < V; i++)
        mx = x[i] > mx ? x[i] : mx;
    for (int i = 0; i < V; i++)
        sum += exp((double)x[i] - mx);
    return (double)x[k] - mx - log(sum);
}

lmc_status lmc_print_logprobs(lmc_engine *e, const int *ids, int n, int max_new, const lmc_sampling *sp,
                              uint64_t seed, int stop_id)
{
    if (lmc_sample_has_penalties(sp))
        return lmc_err(LMC_EINVAL, "--logprobs: penalties are not supported");
    int V = lmc_engine_config(e)->vocab, ctx = lmc_engine_ctx(e);
    float *logits = malloc((size_t)V * sizeof(float)), *scratch = malloc((size_t)V * 2 * sizeof(float));
    lmc_status s = logits && scratch ? LMC_OK : lmc_err(LMC_ENOMEM, "out of memory");
    lmc_rng rng;
    lmc_rng_seed(&rng, seed);
    if (s == LMC_OK)
        s = lmc_engine_prefill(e, 0, ids, n, logits);
    for (int i = 0, pos = n; i < max_new && s == LMC_OK; i++, pos++) {
        int tok = lmc_sample_token(logits, V, sp, &rng, scratch);
        printf("{\"id\": %d, \"logprob\": %.7g}\n", tok, log_softmax_at(logits, V, tok));
        if (tok == stop_id || pos + 1 >= ctx || i + 1 == max_new)
            break;
        s = lmc_engine_decode(e, 1, &tok, &pos, logits);
    }
    fflush(stdout);
    free(logits);
    free(scratch);
    return s;
}
