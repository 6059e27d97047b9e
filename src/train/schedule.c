/* schedule.c: learning-rate schedules and the default training options. */
#include "lmc/train.h"

#include <math.h>
#include <string.h>

void lmc_train_defaults(lmc_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->batch = 4;
    o->seq = 64;
    o->grad_accum = 1;
    o->steps = 100;
    o->shuffle = 1;
    o->seed = 1337;
    o->lr = 6e-4;
    o->min_lr_frac = 0.1;
    o->weight_decay = 0.1;
    o->beta1 = 0.9;
    o->beta2 = 0.95;
    o->eps = 1e-8;
    o->clip = 1.0;
    o->warmup = 0;
    o->schedule = "cosine";
    o->device = "cpu";
    o->precision = "fp32";
    o->dist = "auto";
    o->balance = "off";
    o->recompute = "none";
    o->tp = 1;
    o->ep = 1;
    o->moe_bias_step = -1; /* the model config's */
    o->max_shard_mb = 5000; /* Hugging Face's default max_shard_size, 5GB */
    o->keep = 2;
    o->eval_batches = 8;
    o->sample_tokens = 64;
}

double lmc_lr_at(const lmc_train_opts *o, int step)
{
    if (o->warmup > 0 && step < o->warmup)
        return o->lr * (step + 1) / o->warmup;
    double min_lr = o->lr * o->min_lr_frac;
    int span = o->steps - o->warmup;
    double progress = span > 0 ? (double)(step - o->warmup) / span : 1.0;
    if (progress > 1)
        progress = 1;
    if (!strcmp(o->schedule, "constant"))
        return o->lr;
    if (!strcmp(o->schedule, "linear"))
        return o->lr - (o->lr - min_lr) * progress;
    return min_lr + (o->lr - min_lr) * 0.5 * (1.0 + cos(M_PI * progress));
}

lmc_status lmc_recompute_parse(const char *name, lmc_recompute *rc)
{
    static const char *const names[] = {"none", "selective", "full"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, names[i])) {
            *rc = (lmc_recompute)i;
            return LMC_OK;
        }
    return lmc_err(LMC_EINVAL, "--recompute: '%s' is not none, selective or full", name);
}
