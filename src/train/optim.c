/* optim.c: AdamW over the parameter buffer, one backend call per tensor. */
#include "train/optim.h"

#include <math.h>
#include <string.h>

lmc_status lmc_optim_open(lmc_optim *o, lmc_backend *be, const lmc_layout *layout, int tied, size_t begin,
                          size_t end)
{
    memset(o, 0, sizeof *o);
    o->be = be;
    o->layout = layout;
    o->tied = tied;
    o->begin = begin;
    o->end = end;
    size_t bytes = (end - begin) * sizeof(float);
    o->m = be->ops->alloc(be, bytes ? bytes : 64);
    o->v = be->ops->alloc(be, bytes ? bytes : 64);
    if (!o->m || !o->v) {
        lmc_optim_close(o);
        return lmc_err(LMC_ENOMEM, "out of memory: AdamW state needs %.1f MB", 2.0 * bytes / 1e6);
    }
    return LMC_OK;
}

void lmc_optim_close(lmc_optim *o)
{
    if (o->m)
        o->be->ops->free(o->be, o->m);
    if (o->v)
        o->be->ops->free(o->be, o->v);
    o->m = o->v = NULL;
}

static void update_slot(lmc_optim *o, const lmc_tensor_slot *s, float *params, const float *grads,
                        const lmc_adamw_hp *hp_decay, const lmc_adamw_hp *hp_plain)
{
    size_t b = s->offset, e = s->offset + s->rows * s->cols;
    if (b < o->begin)
        b = o->begin;
    if (e > o->end)
        e = o->end;
    if (b >= e)
        return;
    size_t k = b - o->begin;
    o->be->ops->adamw(o->be, params + k, grads + k, o->m + k, o->v + k, e - b, s->decay ? hp_decay : hp_plain);
}

void lmc_optim_step(lmc_optim *o, float *params, const float *grads, float lr, float beta1, float beta2, float eps,
                    float weight_decay, float grad_scale)
{
    o->t++;
    lmc_adamw_hp hp = {.lr = lr, .beta1 = beta1, .beta2 = beta2, .eps = eps, .weight_decay = weight_decay,
                       .bias_corr1 = (float)(1.0 - pow(beta1, o->t)), .bias_corr2 = (float)(1.0 - pow(beta2, o->t)),
                       .grad_scale = grad_scale};
    lmc_adamw_hp plain = hp;
    plain.weight_decay = 0;
    const lmc_layout *l = o->layout;
    for (int k = 0; k < LMC_T_GLOBAL_COUNT; k++) {
        if (l->global[k].offset == LMC_ABSENT || (k == LMC_T_HEAD && o->tied))
            continue;
        update_slot(o, &l->global[k], params, grads, &hp, &plain);
    }
    for (int i = 0; i < l->n_layer; i++)
        for (int k = 0; k < LMC_T_LAYER_COUNT; k++) {
            const lmc_tensor_slot *s = lmc_layout_slot(l, i, k);
            if (s->offset != LMC_ABSENT)
                update_slot(o, s, params, grads, &hp, &plain);
        }
}
