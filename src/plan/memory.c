/* memory.c: what `lmc train` itself allocates per rank on the CPU backend,
 * so `lmc plan` on the `cpu` chip predicts the peak RSS a run reports (the
 * JSONL log's rss_mb) instead of a generic fp16 training's. The sizes come
 * from the functions the trainer allocates by (the parameter layout and its
 * units, lmc_comm_shard, lmc_model_activation_bytes); the rules and their
 * measurement are in docs/zero_memory.md. */
#include "internal.h"
#include "dist/comm.h"
#include "model/model.h"

#include <string.h>

/* The process before it allocates a tensor: binary, libc, libgomp and page
 * tables (7 MB); under mpirun Open MPI's libraries, shared-memory segments
 * and communication thread add 13 MB. Measured as the peak RSS of a
 * 1-layer, 64-wide model (bench/bench_zero_memory.sh prints it beside these
 * figures): 9.7 MB alone and 23.4 MB per rank with 4 ranks, less that
 * model's own 2.8 MB. It moves with the binary by a few MB (21 MB per rank
 * earlier the same day), a rounding error beside any real model. */
#define PROC_BYTES 7e6
#define MPI_BYTES 13e6

int lmc_plan_chip_is_cpu(const lmc_plan_chip *chip)
{
    char key[128];
    lmc_plan_chip_key(chip->name, key, sizeof key);
    return !strcmp(key, "cpu");
}

/* The largest unit other than the embeddings (unit 0): the size of the
 * ring slots shard.c allocates. */
static size_t largest_unit(const lmc_layout *l)
{
    size_t most = 0;
    for (int u = 1; u < lmc_layout_num_units(l); u++) {
        size_t b, e;
        lmc_layout_unit(l, u, &b, &e);
        most = e - b > most ? e - b : most;
    }
    return most;
}

lmc_status lmc_plan_trainer_memory(const lmc_model_config *c, int batch, int seq, int ranks, int zero,
                                   lmc_plan_recompute rc, lmc_plan_mem *m)
{
    memset(m, 0, sizeof *m);
    if (batch < 1 || seq < 1 || ranks < 1 || zero < 0 || zero > 3)
        return lmc_err(LMC_EINVAL, "trainer memory: batch %d, seq %d, ranks %d, ZeRO-%d out of range", batch, seq,
                       ranks, zero);
    lmc_layout l;
    LMC_TRY(lmc_layout_build(c, &l));
    size_t b0, e0, shard, begin;
    lmc_layout_unit(&l, 0, &b0, &e0);
    lmc_comm_shard(l.total, ranks, 0, &begin, &shard); /* rank 0's is the largest */
    /* shard.c: slot 0 holds the embeddings unit, slots 1 and 2 a ring of the
     * other units; one set for gradients (ZeRO-2/3), one for parameters (3) */
    double all = 4.0 * l.total, own = 4.0 * shard;
    double slots = 4.0 * ((e0 - b0) + 2 * largest_unit(&l));
    lmc_layout_free(&l);
    m->weights = zero == 3 ? own : all;
    m->grads = zero >= 2 ? own : all;
    m->optim = 2 * (zero >= 1 ? own : all); /* AdamW m and v */
    m->buffers = (zero >= 2) * slots + (zero == 3) * slots;
    /* logits, per-layer intermediates (fewer kept under recomputation) and
     * backward scratch, all in the model's one activation block */
    m->activations = (double)lmc_model_activation_bytes(c, batch, seq, 1, rc);
    /* the starting weights are read (or initialised) on the host and
     * uploaded while every buffer above already exists; ZeRO-3 reads only
     * this rank's shard */
    m->startup = zero == 3 ? own : all;
    m->overhead = PROC_BYTES + (ranks > 1 ? MPI_BYTES : 0);
    m->total = m->weights + m->grads + m->optim + m->buffers + m->activations + m->startup + m->overhead;
    m->trainer = 1;
    return LMC_OK;
}
