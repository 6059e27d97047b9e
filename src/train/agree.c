/* agree.c: the ranks of one job compare the model and the flags that must
 * agree. In a job mixing chip kinds each rank has its own command line
 * (mpirun's MPMD syntax: --device, --threads may differ per rank), so
 * everything else that shapes the numbers is compared here: the model's
 * every field, the precision recipe, the optimizer, the schedule and the
 * layout. A difference stops every rank with the rank, the field and both
 * values (check_ranks_agree in trainer.c compares the batch and the data
 * position the same way). */
#include "train/trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NUMS = 33, STRS = 6, STR_LEN = 24 };

typedef struct {
    double num[NUMS];
    char str[STRS][STR_LEN];
} job_card;

static const char *const num_names[NUMS] = {
    "model layers", "model heads", "model key/value heads", "model width", "model MLP width", "model vocabulary",
    "model maximum sequence", "model norm", "model positions", "model MLP kind", "model biases", "model tied head",
    "model norm epsilon", "model rope theta", "model experts", "model experts per token", "model shared experts",
    "model expert width", "model first MoE layer", "model router", "model aux-loss weight", "--lr", "--min-lr-frac",
    "--weight-decay", "--beta1", "--beta2", "--eps", "--clip", "--warmup", "--tp", "--pp", "--vpp", "--sp"};
static const char *const str_names[STRS] = {"model family", "--precision", "--schedule", "--recompute", "--balance",
                                            "--dist"};

static void fill(const lmc_trainer *tr, job_card *k)
{
    const lmc_train_opts *o = tr->o;
    const lmc_model_config *c = &tr->cfg;
    double v[NUMS] = {c->n_layer, c->n_head, c->n_kv_head, c->dim, c->ffn_dim, c->vocab, c->max_seq, c->norm, c->pos,
                      c->mlp, c->bias, c->tied, c->norm_eps, c->rope_theta, c->n_expert, c->top_k, c->n_shared,
                      c->moe_ffn, c->first_dense, c->router, c->aux_coef, o->lr, o->min_lr_frac, o->weight_decay,
                      o->beta1, o->beta2, o->eps, o->clip, o->warmup, o->tp > 1 ? o->tp : 1, o->pp > 1 ? o->pp : 1,
                      o->vpp > 1 ? o->vpp : 1, o->sp};
    const char *s[STRS] = {c->family, o->precision, o->schedule, o->recompute, o->balance ? o->balance : "off",
                           o->dist ? o->dist : "auto"};
    memset(k, 0, sizeof *k);
    memcpy(k->num, v, sizeof v);
    for (int i = 0; i < STRS; i++)
        snprintf(k->str[i], STR_LEN, "%s", s[i] ? s[i] : "");
}

/* The first difference between rank r's card and rank 0's, as an error. */
static lmc_status differ(int r, const job_card *a, const job_card *zero)
{
    const char *tail = "every rank must train the same model with the same flags (only --device and --threads may "
                       "differ between ranks)";
    for (int i = 0; i < NUMS; i++)
        if (a->num[i] != zero->num[i])
            return lmc_err(LMC_EINVAL, "rank %d has %s %.9g but rank 0 has %.9g: %s", r, num_names[i], a->num[i],
                           zero->num[i], tail);
    for (int i = 0; i < STRS; i++)
        if (strcmp(a->str[i], zero->str[i]))
            return lmc_err(LMC_EINVAL, "rank %d has %s %s but rank 0 has %s: %s", r, str_names[i], a->str[i],
                           zero->str[i], tail);
    return LMC_OK;
}

lmc_status lmc_trainer_check_job(lmc_trainer *tr)
{
    lmc_comm *c = tr->world;
    job_card mine, *all = malloc((size_t)c->size * sizeof mine);
    if (!all)
        return lmc_err(LMC_ENOMEM, "out of memory");
    fill(tr, &mine);
    lmc_status s = c->ops->allgather_host(c, &mine, all, sizeof mine);
    for (int r = 1; r < c->size && s == LMC_OK; r++)
        if ((s = differ(r, &all[r], &all[0])) != LMC_OK)
            tr->dp.consistent_error = 1;
    free(all);
    return s;
}
