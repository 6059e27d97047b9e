/* experts.c: a mixture of experts' balance across the training job: each
 * step's expert loads summed over the data-parallel ranks, the log's
 * per-layer max/mean load, DeepSeek-V3's auxiliary-loss-free bias update
 * (the same on every rank: the same sums, the same arithmetic), and the
 * biases at the start: from --init's weights file, or on --resume from the
 * checkpoint's weights (e_score_correction_bias) and its state.json's
 * moe_bias (checkpoint.c writes both); when both hold them the weights
 * file's win, older checkpoints have only state.json's. */
#include "model/moe.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lmc_status lmc_trainer_experts_open(lmc_trainer *tr)
{
    const lmc_train_opts *o = tr->o;
    lmc_model_config *c = &tr->cfg;
    if (o->moe_bias_step >= 0 && c->n_expert <= 0 && o->moe_bias_step > 0)
        return lmc_err(LMC_EINVAL, "--moe-bias-step %g balances a mixture of experts, but this model is dense "
                       "(num_local_experts 0)", o->moe_bias_step);
    if (o->moe_bias_step >= 0 && c->n_expert > 0)
        c->bias_step = (float)o->moe_bias_step; /* saved with the model's config */
    if (c->n_expert <= 0)
        return LMC_OK;
    tr->ex.moe_load = calloc((size_t)c->n_layer * c->n_expert, sizeof(double));
    tr->ex.moe_imbalance = calloc((size_t)c->n_layer, sizeof(double));
    if (!tr->ex.moe_load || !tr->ex.moe_imbalance)
        return lmc_err(LMC_ENOMEM, "out of memory");
    return LMC_OK;
}

void lmc_trainer_experts_close(lmc_trainer *tr)
{
    free(tr->ex.moe_load);
    free(tr->ex.moe_imbalance);
}

lmc_status lmc_trainer_experts_step(lmc_trainer *tr)
{
    const lmc_model_config *c = &tr->cfg;
    if (c->n_expert <= 0)
        return LMC_OK;
    int E = c->n_expert, n = c->n_layer * E;
    lmc_moe_take_load(tr->m, tr->ex.moe_load);
    if (tr->comm->size > 1)
        LMC_TRY(tr->comm->ops->allreduce_host(tr->comm, tr->ex.moe_load, n, 0));
    for (int l = c->first_dense; l < c->n_layer; l++) {
        double most = 0, sum = 0;
        for (int e = 0; e < E; e++) {
            double v = tr->ex.moe_load[(size_t)l * E + e];
            sum += v;
            most = v > most ? v : most;
        }
        tr->ex.moe_imbalance[l] = sum > 0 ? most / (sum / E) : 0;
    }
    if (c->bias_step > 0)
        lmc_moe_update_bias(tr->m, tr->ex.moe_load, c->bias_step);
    return LMC_OK;
}

void lmc_trainer_experts_log(const lmc_trainer *tr, lmc_sb *sb)
{
    const lmc_model_config *c = &tr->cfg;
    if (c->n_expert <= 0)
        return;
    lmc_sb_puts(sb, ",\"expert_load\":[");
    for (int l = c->first_dense; l < c->n_layer; l++)
        lmc_sb_printf(sb, "%s%.4f", l > c->first_dense ? "," : "", tr->ex.moe_imbalance[l]);
    lmc_sb_putc(sb, ']');
}

void lmc_trainer_experts_state(lmc_trainer *tr, lmc_ckpt_state *st)
{
    st->moe_bias = lmc_moe_bias(tr->m);
    st->moe_bias_n = st->moe_bias ? tr->cfg.n_layer * tr->cfg.n_expert : 0;
}

/* A checkpoint's state.json's biases (checkpoints before the weights
 * carried them hold only these). */
static lmc_status state_bias(lmc_trainer *tr, const char *ckpt, float *bias)
{
    char file[4200], *text;
    size_t len;
    snprintf(file, sizeof file, "%s/state.json", ckpt);
    LMC_TRY(lmc_read_file(file, &text, &len));
    lmc_status s = lmc_ckpt_moe_bias_parse(text, len, file, bias, tr->cfg.n_layer * tr->cfg.n_expert);
    free(text);
    return s;
}

lmc_status lmc_trainer_experts_resume(lmc_trainer *tr, const char *from)
{
    float *bias = lmc_moe_bias(tr->m);
    if (!bias)
        return LMC_OK;
    size_t n = (size_t)tr->cfg.n_layer * tr->cfg.n_expert;
    if (tr->o->resume)
        LMC_TRY(state_bias(tr, from, bias));
    float *w = malloc(n * sizeof(float));
    int found = 0;
    lmc_status s = w ? lmc_weights_load_moe_bias(from, &tr->cfg, w, &found) : lmc_err(LMC_ENOMEM, "out of memory");
    if (s == LMC_OK && found) /* the weights file's wins: it is what inference reads */
        memcpy(bias, w, n * sizeof(float));
    free(w);
    return s;
}
