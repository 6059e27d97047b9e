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
 *
 * What is sharded over whom is a list of pieces (lmc_shard_pieces), the
 * description ZeRO-1, 2 and 3 share: each piece is a range of the model's
 * buffer sharded over its own group, this rank's shards of all pieces
 * packed one after the other. Plain data parallelism has one piece, the
 * whole buffer over the data-parallel group; expert parallelism (--ep,
 * experts_ep.c) cuts each unit into its rest (over every data-parallel
 * rank) and its experts (over the ranks holding the same ones).
 */
#ifndef LMC_SHARD_H
#define LMC_SHARD_H

#include "dist/comm.h"
#include "model/model.h"

enum { LMC_SHARD_SLOTS = 3 }; /* slot 0: the embeddings unit; 1, 2: a ring by unit parity */
enum { LMC_SHARD_UNIT_PIECES = 2 }; /* pieces one unit may overlap (--ep: its rest and its experts) */

typedef struct {
    size_t b, n;     /* the piece: elements [b, b + n) of the model's buffer */
    size_t own, cnt; /* this rank's shard of it (lmc_comm_shard over g): [b + own, b + own + cnt) */
    size_t at;       /* where that shard begins in this rank's packed shards */
    lmc_comm *g;     /* the ranks sharing the piece (NULL: this rank alone, no collective) */
} lmc_shard_piece;

typedef struct {
    lmc_shard_piece *p;
    int n, cap;
    size_t count; /* floats of this rank's shards, packed */
} lmc_shard_pieces;

lmc_status lmc_shard_pieces_open(lmc_shard_pieces *ps, int cap);
void lmc_shard_pieces_close(lmc_shard_pieces *ps);
/* Appends the piece [b, e) sharded over g (pieces are added in buffer order). */
void lmc_shard_pieces_add(lmc_shard_pieces *ps, size_t b, size_t e, lmc_comm *g);
/* This rank's shards of a host buffer in the model's layout, packed into dst. */
void lmc_shard_pieces_pick(const lmc_shard_pieces *ps, const float *whole, float *dst);

typedef struct {
    lmc_model *m;
    lmc_comm *c;
    lmc_backend *be;
    const lmc_shard_pieces *pc; /* what is sharded over whom (the caller's, outlives this) */
    int stage;
    float *own_params; /* ZeRO-3: this rank's shards of the parameters, packed (device); ZeRO-2: NULL (the model holds all) */
    float *own_grads;  /* this rank's part of the summed gradients, packed likewise */
    float *pslot[LMC_SHARD_SLOTS], *gslot[LMC_SHARD_SLOTS];
    int punit[LMC_SHARD_SLOTS], gunit[LMC_SHARD_SLOTS]; /* unit held (-1 none): parameters, gradients */
    int gpend[LMC_SHARD_SLOTS];                         /* the gradient slot's sum not yet added to the shards */
    int preq[LMC_SHARD_SLOTS][LMC_SHARD_UNIT_PIECES], greq[LMC_SHARD_SLOTS][LMC_SHARD_UNIT_PIECES]; /* in flight (-1 none) */
    lmc_comm *pcomm[LMC_SHARD_SLOTS][LMC_SHARD_UNIT_PIECES], *gcomm[LMC_SHARD_SLOTS][LMC_SHARD_UNIT_PIECES];
    int keep_embed;    /* the embeddings unit's gradients stay whole for the step (a tied pipeline sums them over stages first) */
    lmc_status status; /* the first failure inside a hook */
    double wait_s;     /* blocked waiting for collectives (exposed communication) */
    lmc_unit_hooks hooks;
} lmc_shard;

/* c: the data-parallel group (the whole tied embedding is summed over it);
 * pc: the pieces (lmc_shard_pieces), all of them units' ranges. */
lmc_status lmc_shard_open(lmc_shard **out, lmc_model *m, lmc_comm *c, const lmc_shard_pieces *pc, int stage);
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
/* The parameters of this rank's shard of piece i (ZeRO-3: packed, ZeRO-2:
 * in the model's buffer). */
float *lmc_shard_params(lmc_shard *s, int i);
/* Elements [begin, end) of the parameters into dst (device memory): a
 * collective under ZeRO-3 (every rank calls it with the same range). */
lmc_status lmc_shard_gather_range(lmc_shard *s, size_t begin, size_t end, float *dst);

#endif
