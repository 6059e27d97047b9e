/* shard.h: ZeRO-2 and ZeRO-3 over the data-parallel ranks.
 *
 * Each rank owns one lmc_comm_shard of the flat parameter vector: AdamW's m
 * and v for it (as ZeRO-1), the summed gradients for it (ZeRO-2), and under
 * ZeRO-3 the parameters themselves. The model reaches its units
 * (embeddings, layers, final) through the hooks below:
 * - gradients: backward writes a unit's gradients into a transient buffer;
 *   when the unit is complete its reduce-scatter starts on the
 *   communication thread, and when that buffer is next needed (or at the
 *   step's end) this rank's part of the sum is added to its shard. Memory:
 *   the shard plus three unit buffers (embeddings, two layers in flight).
 * - parameters (ZeRO-3): before a unit is used its parameters are gathered
 *   from their owners into a transient buffer, and the next unit's gather
 *   starts at once, so it runs while this one computes; a unit still held
 *   (the last layers between forward and backward) is not gathered again.
 *   Memory: the shard plus three unit buffers.
 * Every decision depends only on the order of the hook calls, which is the
 * same on every rank, so every rank starts the same collectives in the same
 * order; a rank with fewer micro-batches replays that order without
 * computing (lmc_model_walk_units).
 */
#ifndef LMC_SHARD_H
#define LMC_SHARD_H

#include "dist/comm.h"
#include "model/model.h"

enum { LMC_SHARD_SLOTS = 3 }; /* slot 0: the embeddings unit; 1, 2: a ring by unit parity */

typedef struct {
    lmc_model *m;
    lmc_comm *c;
    lmc_backend *be;
    int stage;
    size_t n, own_begin, own_end;
    float *own_params; /* ZeRO-3: this rank's parameters (device); ZeRO-2: NULL (the model holds all) */
    float *own_grads;  /* this rank's part of the summed gradients */
    float *pslot[LMC_SHARD_SLOTS], *gslot[LMC_SHARD_SLOTS];
    int punit[LMC_SHARD_SLOTS], preq[LMC_SHARD_SLOTS]; /* unit held (-1 none), gather in flight (-1 none) */
    int gunit[LMC_SHARD_SLOTS], greq[LMC_SHARD_SLOTS]; /* likewise for gradients and their reduce-scatter */
    int keep_embed;    /* the embeddings unit's gradients stay whole for the step (a tied pipeline sums them over stages first) */
    lmc_status status; /* the first failure inside a hook */
    double wait_s;     /* blocked waiting for collectives (exposed communication) */
    lmc_unit_hooks hooks;
} lmc_shard;

lmc_status lmc_shard_open(lmc_shard **out, lmc_model *m, lmc_comm *c, int stage);
void lmc_shard_close(lmc_shard *s);
/* Zeroes the gradient shard (a new step). */
void lmc_shard_zero_grads(lmc_shard *s);
/* Waits for every reduce-scatter and adds them into the gradient shard. */
lmc_status lmc_shard_finish_grads(lmc_shard *s);
/* keep_embed: the embeddings unit's gradient summed over the data-parallel
 * group, then over `stages` (a tied model's first and last pipeline stage),
 * and this rank's part added into its shard. */
lmc_status lmc_shard_sum_embed(lmc_shard *s, lmc_comm *stages);
/* The parameters changed (the optimizer ran, or were loaded): the gathered
 * copies are stale. */
lmc_status lmc_shard_params_changed(lmc_shard *s);
/* The parameters this rank updates: element own_begin of the parameters. */
float *lmc_shard_params(lmc_shard *s);
/* Elements [begin, end) of the parameters into dst (device memory): a
 * collective under ZeRO-3 (every rank calls it with the same range). */
lmc_status lmc_shard_gather_range(lmc_shard *s, size_t begin, size_t end, float *dst);

#endif
