/* cmd_dump.c: `lmc dump`: one forward + backward pass on the first batch of
 * a shard, written out for comparison with a reference implementation
 * (tests/oracle): acts.safetensors (logits, per-position losses, mean loss;
 * for a mixture of experts the unweighted load-balancing loss, aux_loss)
 * and grads.safetensors (parameter gradients under Hugging Face names: of
 * the loss plus aux_coef times aux_loss). */
#include "backend/backend.h"
#include "cli.h"
#include "lmc/data.h"
#include "lmc/safetensors.h"
#include "model/model.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *init, *data, *out, *precision, *device;
    long long batch, seq, threads;
} dump_opts;

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

static lmc_status run(const dump_opts *o, lmc_backend *be, lmc_model **mp, float **host, int *in, int *tg)
{
    int B = (int)o->batch, T = (int)o->seq;
    lmc_model_config cfg;
    lmc_layout layout;
    LMC_TRY(lmc_weights_load(o->init, &cfg, &layout, host));
    lmc_layout_free(&layout);
    LMC_TRY(lmc_model_open(mp, &cfg, be, B, T, 1));
    lmc_model *m = *mp;
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

int lmc_cmd_dump(int argc, char **argv)
{
    dump_opts o = {.precision = "fp32", .device = "cpu", .batch = 2, .seq = 16};
    cli_opt opts[] = {
        {"init", CLI_STR, &o.init, "weights (.safetensors)"},
        {"data", CLI_STR, &o.data, "token shard(s); the first batch is used, in order"},
        {"out", CLI_STR, &o.out, "output folder"},
        {"batch", CLI_INT, &o.batch, "B", 1, 1 << 16},
        {"seq", CLI_INT, &o.seq, "T", 1, 1 << 20},
        {"precision", CLI_STR, &o.precision, "fp32 | bf16"},
        {"device", CLI_STR, &o.device, "cpu | cuda[:N]"},
        {"threads", CLI_INT, &o.threads, "CPU threads", 0, 4096},
        {NULL},
    };
    cli_spec spec = {.cmd = "dump", .synopsis = "--init FILE --data GLOB --out DIR [--batch B --seq T]", .opts = opts};
    lmc_status s = cli_parse(&spec, argc, argv, NULL);
    if (s == LMC_OK)
        s = cli_require(&spec, "init data out");
    if (s)
        return cli_exit(&spec, s);
    lmc_backend *be = NULL;
    lmc_model *m = NULL;
    float *host = NULL;
    int *in = malloc((size_t)o.batch * o.seq * sizeof(int)), *tg = malloc((size_t)o.batch * o.seq * sizeof(int));
    s = in && tg ? lmc_backend_open(o.device, (int)o.threads, &be) : lmc_err(LMC_ENOMEM, "out of memory");
    if (s == LMC_OK)
        s = run(&o, be, &m, &host, in, tg);
    lmc_model_close(m);
    lmc_backend_close(be);
    lmc_free(host);
    free(in);
    free(tg);
    return cli_fail("dump", s);
}
