/* checkpoint.h: training checkpoints that resume bit for bit.
 * A checkpoint is a folder OUT/step_NNNNNNNN holding model.safetensors (HF
 * names, config in metadata), optim.safetensors (AdamW m and v over the
 * whole flat buffer: "adamw.m", "adamw.v") and state.json. It is written
 * into OUT/.partial_step_NNNNNNNN and renamed when complete; OUT/latest names
 * the newest complete one. A kill at any moment leaves the last good one.
 * The optimizer state is always whole (not per-rank shards), so a checkpoint
 * written by N ranks resumes on any number of ranks. */
#ifndef LMC_CHECKPOINT_H
#define LMC_CHECKPOINT_H

#include "lmc/model.h"

typedef struct {
    int step;          /* optimizer steps taken */
    uint64_t consumed; /* training sequences consumed (the data position) */
    uint64_t seed;
    int shuffle, seq, world;
    int adam_t;
    float loss;
} lmc_ckpt_state;

/* params, m, v: host buffers of layout->total floats. Keeps the newest
 * `keep` checkpoints (keep <= 0: all). saved receives the folder path. */
lmc_status lmc_ckpt_save(const char *out_dir, const lmc_ckpt_state *st, const lmc_model_config *cfg,
                         const lmc_layout *layout, const float *params, const float *m, const float *v, int keep,
                         char *saved, size_t saved_len);
/* dir may be an OUT folder (its latest checkpoint) or a step folder. */
lmc_status lmc_ckpt_resolve(const char *dir, char *path, size_t n);
/* Loads the state and the weights; *params is a host buffer (lmc_free). */
lmc_status lmc_ckpt_load(const char *path, lmc_ckpt_state *st, lmc_model_config *cfg, lmc_layout *layout,
                         float **params);
/* Reads elements [begin, end) of AdamW's m and v (of a model of `total`
 * floats) into host buffers of end - begin floats: each rank of any count
 * takes its shard from the full state, touching only those pages. */
lmc_status lmc_ckpt_load_optim(const char *path, size_t total, size_t begin, size_t end, float *m, float *v);

#endif
