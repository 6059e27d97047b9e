/* optim.h: AdamW over the flat parameter buffer, tensor by tensor (weight
 * decay only on 2-D tensors), for the element range this rank owns. */
#ifndef LMC_OPTIM_H
#define LMC_OPTIM_H

#include "backend/backend.h"
#include "lmc/model.h"

typedef struct {
    lmc_backend *be;
    const lmc_layout *layout;
    int tied;
    size_t begin, end; /* floats of the parameter buffer this optimizer updates */
    float *m, *v;      /* device, end - begin floats each */
    int t;             /* steps taken */
} lmc_optim;

lmc_status lmc_optim_open(lmc_optim *o, lmc_backend *be, const lmc_layout *layout, int tied, size_t begin,
                          size_t end);
void lmc_optim_close(lmc_optim *o);
/* One AdamW step on the parameters [begin, end) with their gradients:
 * params and grads point at element `begin` (a shard, or into the whole
 * buffer); grads are multiplied by grad_scale first. */
void lmc_optim_step(lmc_optim *o, float *params, const float *grads, float lr, float beta1, float beta2, float eps,
                    float weight_decay, float grad_scale);

#endif
