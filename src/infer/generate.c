/* generate.c: the engine as a source of logits for the sampling loop
 * (lmc_generate): a new window is a prefill into slot 0, one more token a
 * decode step against the cache. */
#include "infer/engine_internal.h"

static lmc_status engine_logits(void *src, const int *ids, int n, int extend, float *logits)
{
    lmc_engine *e = src;
    if (!extend)
        return lmc_engine_prefill(e, 0, ids, n, logits);
    int pos = n - 1;
    return lmc_engine_decode(e, 1, &ids[n - 1], &pos, logits);
}

lmc_status lmc_engine_generate(lmc_engine *e, const int *prompt, int n, const lmc_gen_opts *o)
{
    return lmc_generate(engine_logits, e, e->cfg.vocab, e->ctx, prompt, n, o);
}
