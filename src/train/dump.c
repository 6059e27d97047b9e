/* dump.c: lmc dump: one forward + backward pass on the first batch of a
 * shard, written out for comparison with a reference implementation
 * (tests/oracle). */
#include "backend/backend.h"
#include "lmc/data.h"
#include "lmc/dump.h"
#include "lmc/safetensors.h"
#include "model/model.h"
#include "model/moe.h"

#include <stdlib.h>
#include <string.h>

static lmc_status write_acts(const char *dir, lmc_model *m, int B, int T, const float *logits, float loss)
{
    int N = B * T, V = m->cfg.vocab, Vp = m->cfg.vocab_padded;
    float *compact = malloc((size_t)N * V * sizeof(float)), *losses = malloc((size_t)N * sizeof(float));
    if (!compact || !losses) {
        free(compact), free(losses);
        return lmc_err(LMC_ENOMEM, "out of memory");
    }
    for (int r = 0; r < N; r++)
        memcpy(compact + (size_t)r * V, logits + (size_t)r * Vp, (size_t)V * sizeof(float));
    m->be->ops->download(m->be, losses, m->a.losses, (size_t)N * sizeof(float));
    float aux = lmc_model_aux_loss(m);
    lmc_st_entry e[4] = {
        {.name = "logits", .dtype = "F32", .ndim = 3, .shape = {B, T, V}, .data = compact},
        {.name = "losses", .dtype = "F32", .ndim = 2, .shape = {B, T}, .data = losses},
        {.name = "loss", .dtype = "F32", .ndim = 1, .shape = {1}, .data = &loss},
        {.name = "aux_loss", .dtype = "F32", .ndim = 1, .shape = {1}, .data = &aux},
    };
    char path[4096];
    snprintf(path, sizeof path, "%s/acts.safetensors", dir);
    lmc_status s = lmc_st_write(path, e, m->cfg.n_expert > 0 ? 4 : 3, NULL);
    free(compact);
    free(losses);
    return s;
}

static lmc_status run(const lmc_dump_opts *o, lmc_backend *be, lmc_model **mp, float **host, int *in, int *tg)
{
    int B = (int)o->batch, T = (int)o->seq;
    lmc_model_config cfg;
    lmc_layout layout;
    LMC_TRY(lmc_weights_load(o->init, &cfg, &layout, host));
    lmc_layout_free(&layout);
    LMC_TRY(lmc_model_open(mp, &cfg, be, B, T, 1));
    lmc_model *m = *mp;
    int found;
    if (lmc_moe_bias(m)) /* a mixture of experts routes with its balancing bias, as training does */
        LMC_TRY(lmc_weights_load_moe_bias(o->init, &cfg, lmc_moe_bias(m), &found));
    m->prec = strcmp(o->precision, "bf16") ? LMC_F32 : LMC_BF16;
    lmc_model_upload_params(m, *host);
    lmc_tokens ds;
    LMC_TRY(lmc_tokens_open(&ds, o->data));
    lmc_status s = lmc_tokens_batch(&ds, 0, B, T, 0, 0, cfg.vocab, in, tg);
    lmc_tokens_close(&ds);
    LMC_TRY(s);
    LMC_TRY(lmc_model_set_batch(m, in, tg, B, T, o->data));
    /* logits before the fused loss overwrites them with gradients */
    size_t nlog = (size_t)B * T * cfg.vocab_padded;
    float *logits = malloc(nlog * sizeof(float));
    if (!logits)
        return lmc_err(LMC_ENOMEM, "out of memory");
    lmc_model_forward(m, B, T, LMC_FWD_LOSS, 0);
    be->ops->download(be, logits, m->a.logits, nlog * sizeof(float));
    lmc_model_zero_grads(m);
    lmc_model_forward(m, B, T, LMC_FWD_TRAIN, 1.0f / ((float)B * T));
    float loss = lmc_model_mean_loss(m, B, T);
    lmc_model_backward(m, B, T);
    LMC_TRY(lmc_mkdir_p(o->out));
    s = write_acts(o->out, m, B, T, logits, loss);
    free(logits);
    LMC_TRY(s);
    be->ops->download(be, *host, m->grads, m->layout.total * sizeof(float));
    char path[4096];
    snprintf(path, sizeof path, "%s/grads.safetensors", o->out);
    return lmc_weights_save(path, &cfg, &m->layout, *host);
}

lmc_status lmc_dump(const lmc_dump_opts *o)
{
    lmc_backend *be = NULL;
    lmc_model *m = NULL;
    float *host = NULL;
    int *in = malloc((size_t)o->batch * o->seq * sizeof(int)), *tg = malloc((size_t)o->batch * o->seq * sizeof(int));
    lmc_status s = in && tg ? lmc_backend_open(o->device, o->threads, &be) : lmc_err(LMC_ENOMEM, "out of memory");
    if (s == LMC_OK)
        s = run(o, be, &m, &host, in, tg);
    lmc_model_close(m);
    lmc_backend_close(be);
    lmc_free(host);
    free(in);
    free(tg);
    return s;
}
