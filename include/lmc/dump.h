/* dump.h: the library side of `lmc dump`: one forward and backward pass
 * written out for comparison with a reference implementation
 * (tests/oracle). */
#ifndef LMC_DUMP_H
#define LMC_DUMP_H

#include "lmc/core.h"

typedef struct {
    const char *init;      /* weights (.safetensors) */
    const char *data;      /* token shard(s); the first batch is used, in order */
    const char *out;       /* output folder (made when missing) */
    const char *precision; /* "fp32" | "bf16" */
    const char *device;
    int batch, seq, threads;
} lmc_dump_opts;

/* Writes out/acts.safetensors (logits, per-position losses, mean loss; for
 * a mixture of experts the unweighted load-balancing loss, aux_loss) and
 * out/grads.safetensors (parameter gradients under Hugging Face names: of
 * the loss plus aux_coef times aux_loss). */
lmc_status lmc_dump(const lmc_dump_opts *o);

#endif
