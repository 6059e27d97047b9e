/* experts.c: a mixture of experts' balance across the training job: each
 * step's expert loads summed over the data-parallel ranks, the log's
 * per-layer max/mean load, DeepSeek-V3's auxiliary-loss-free bias update
 * (the same on every rank: the same sums, the same arithmetic), and the
 * biases in checkpoints (state.json's moe_bias: checkpoint.c). */
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
    tr->moe_load = calloc((size_t)c->n_layer * c->n_expert, sizeof(double));
    tr->moe_imbalance = calloc((size_t)c->n_layer, sizeof(double));
    if (!tr->moe_load || !tr->moe_imbalance)
        return lmc_err(LMC_ENOMEM, "out of memory");
    return LMC_OK;
}

void lmc_trainer_experts_close(lmc_trainer *tr)
{
    free(tr->moe_load);
    free(tr->moe_imbalance);
}

lmc_status lmc_trainer_experts_step(lmc_trainer *tr)
{
    const lmc_model_config *c = &tr->cfg;
    if (c->n_expert <= 0)
        return LMC_OK;
    int E = c->n_expert, n = c->n_layer * E;
    lmc_moe_take_load(tr->m, tr->moe_load);
    if (tr->comm->size > 1)
        LMC_TRY(tr->comm->ops->allreduce_host(tr->comm, tr->moe_load, n, 0));
    for (int l = c->first_dense; l < c->n_layer; l++) {
        double most = 0, sum = 0;
        for (int e = 0; e < E; e++) {
            double v = tr->moe_load[(size_t)l * E + e];
            sum += v;
            most = v > most ? v : most;
        }
        tr->moe_imbalance[l] = sum > 0 ? most / (sum / E) : 0;
    }
    if (c->bias_step > 0)
        lmc_moe_update_bias(tr->m, tr->moe_load, c->bias_step);
    return LMC_OK;
}

void lmc_trainer_experts_log(const lmc_trainer *tr, lmc_sb *sb)
{
    const lmc_model_config *c = &tr->cfg;
    if (c->n_expert <= 0)
        return;
    lmc_sb_puts(sb, ",\"expert_load\":[");
    for (int l = c->first_dense; l < c->n_layer; l++)
        lmc_sb_printf(sb, "%s%.4f", l > c->first_dense ? "," : "", tr->moe_imbalance[l]);
    lmc_sb_putc(sb, ']');
}

void lmc_trainer_experts_state(lmc_trainer *tr, lmc_ckpt_state *st)
{
    st->moe_bias = lmc_moe_bias(tr->m);
    st->moe_bias_n = st->moe_bias ? tr->cfg.n_layer * tr->cfg.n_expert : 0;
}

lmc_status lmc_trainer_experts_resume(lmc_trainer *tr, const char *ckpt)
{
    float *bias = lmc_moe_bias(tr->m);
    if (!bias)
        return LMC_OK;
    char file[4200], *text;
    size_t len;
    snprintf(file, sizeof file, "%s/state.json", ckpt);
    LMC_TRY(lmc_read_file(file, &text, &len));
    lmc_status s = lmc_ckpt_moe_bias_parse(text, len, file, bias, tr->cfg.n_layer * tr->cfg.n_expert);
    free(text);
    return s;
}

/* ---- expert parallelism's gradients (ZeRO-0): each expert's gradient is
 * summed only over the ranks that compute it (the same index in their
 * expert-parallel groups), the rest of the model over every data-parallel
 * rank. Experts a rank does not compute keep a zero gradient there, so its
 * copy of them drifts (weight decay) until lmc_trainer_ep_sync copies the
 * owners' weights and AdamW state back, before any hash check or save. */

lmc_status lmc_trainer_ep_split(lmc_trainer *tr)
{
    lmc_comm *dp = tr->comm;
    if (tr->ep <= 1 || tr->o->zero || dp->size == tr->ep) /* one group: each expert on one rank, no sum */
        return LMC_OK;
    return dp->ops->split(dp, dp->rank % tr->ep, dp->rank, &tr->edpc);
}

lmc_status lmc_trainer_ep_open(lmc_trainer *tr)
{
    if (tr->ep <= 1 || tr->zero || tr->cfg.n_expert <= 0)
        return LMC_OK;
    tr->ep_grads = 1;
    tr->ep_reqs = malloc(2 * (size_t)tr->cfg.n_layer * sizeof(int));
    if (!tr->ep_reqs)
        return lmc_err(LMC_ENOMEM, "out of memory");
    return LMC_OK;
}

void lmc_trainer_ep_close(lmc_trainer *tr)
{
    free(tr->ep_reqs);
    lmc_comm_close(tr->edpc);
}

void lmc_trainer_ep_block(const lmc_trainer *tr, int l, int j, size_t *at)
{
    const lmc_model_config *c = &tr->cfg;
    size_t El = (size_t)(c->n_expert / tr->ep), F = (size_t)c->moe_ffn, C = (size_t)c->dim;
    const lmc_tensor_slot *fc = lmc_layout_slot(&tr->m->layout, l, LMC_T_EXP_FC_W);
    const lmc_tensor_slot *pj = lmc_layout_slot(&tr->m->layout, l, LMC_T_EXP_PROJ_W);
    at[1] = El * 2 * F * C, at[0] = fc->offset + (size_t)j * at[1];
    at[3] = El * C * F, at[2] = pj->offset + (size_t)j * at[3];
}

/* The unit's non-expert parts over every rank, this rank's experts over
 * the ranks sharing them; *done = 0 for a unit that is not a MoE layer. */
lmc_status lmc_trainer_ep_post(lmc_trainer *tr, int unit, int *done)
{
    int l = unit - 1;
    *done = tr->ep_grads && l >= 0 && l < tr->cfg.n_layer && lmc_config_is_moe(&tr->cfg, l);
    if (!*done)
        return LMC_OK;
    size_t b, e, at[4], all[4];
    lmc_layout_unit(&tr->m->layout, unit, &b, &e);
    lmc_trainer_ep_block(tr, l, tr->epc->rank, at);
    lmc_trainer_ep_block(tr, l, 0, all);
    size_t x0 = all[0], x1 = all[2] + all[3] * (size_t)tr->ep; /* every expert's floats */
    float *g = tr->m->grads;
    lmc_comm *c = tr->comm;
    int r;
    size_t piece[2][2] = {{b, x0}, {x1, e}};
    for (int i = 0; i < 2; i++)
        if (piece[i][1] > piece[i][0]) {
            LMC_TRY(c->ops->allreduce_start(c, g + piece[i][0], piece[i][1] - piece[i][0], &r));
            tr->reqs[tr->nreq++] = r;
        }
    for (int i = 0; tr->edpc && i < 2; i++) {
        LMC_TRY(tr->edpc->ops->allreduce_start(tr->edpc, g + at[2 * i], at[2 * i + 1], &r));
        tr->ep_reqs[tr->n_ep_reqs++] = r;
    }
    return LMC_OK;
}

lmc_status lmc_trainer_ep_wait(lmc_trainer *tr)
{
    lmc_status s = LMC_OK;
    for (int i = 0; i < tr->n_ep_reqs && s == LMC_OK; i++)
        s = tr->edpc->ops->wait(tr->edpc, tr->ep_reqs[i]);
    tr->n_ep_reqs = 0;
    return s;
}

lmc_status lmc_trainer_ep_sync(lmc_trainer *tr)
{
    if (!tr->ep_grads)
        return LMC_OK;
    float *bufs[3] = {tr->m->params, tr->opt.m, tr->opt.v};
    for (int l = tr->cfg.first_dense; l < tr->cfg.n_layer; l++)
        for (int j = 0; j < tr->ep; j++) {
            size_t at[4];
            lmc_trainer_ep_block(tr, l, j, at);
            for (int k = 0; k < 3; k++)
                for (int i = 0; i < 2; i++)
                    LMC_TRY(tr->epc->ops->broadcast(tr->epc, bufs[k] + at[2 * i], at[2 * i + 1] * sizeof(float),
                                                    j));
        }
    return LMC_OK;
}
