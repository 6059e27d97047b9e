/* checkpoint.h: training checkpoints that resume bit for bit.
 * A checkpoint is a folder OUT/step_NNNNNNNN holding model.safetensors (HF
 * names, config in metadata), optim.safetensors (AdamW m and v over the
 * whole flat buffer: "adamw.m", "adamw.v") and state.json. It is written
 * into OUT/.partial_step_NNNNNNNN and renamed when complete; OUT/latest names
 * the newest complete one. A kill at any moment leaves the last good one.
 * Under ZeRO-2/3 every rank writes its own part instead: the weights in
 * Hugging Face's sharded layout (model-0000k-of-0000n.safetensors +
 * model.safetensors.index.json) and AdamW's m and v for its shard
 * (optim-0000k-of-0000n.safetensors, the range in the metadata), so no rank
 * ever holds the whole model. Either way a checkpoint written by N ranks
 * resumes on any number of ranks and any ZeRO stage, each rank reading only
 * the range it needs. */
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
    /* written, not read back here: a mixture of experts' balancing biases
     * (moe_bias_n floats; lmc_ckpt_moe_bias_parse reads them on resume) */
    const float *moe_bias;
    int moe_bias_n;
} lmc_ckpt_state;

/* params, m, v: host buffers of layout->total floats. Keeps the newest
 * `keep` checkpoints (keep <= 0: all). saved receives the folder path. */
lmc_status lmc_ckpt_save(const char *out_dir, const lmc_ckpt_state *st, const lmc_model_config *cfg,
                         const lmc_layout *layout, const float *params, const float *m, const float *v, int keep,
                         char *saved, size_t saved_len);
/* The pieces of lmc_ckpt_save for checkpoints written by many ranks: start
 * makes the empty OUT/.partial_step_N folder (tmp), the ranks write their
 * files into it, and commit adds state.json and renames it into place. */
lmc_status lmc_ckpt_start(const char *out_dir, int step, char *tmp, size_t n);
lmc_status lmc_ckpt_write_optim_shard(const char *tmp, int k, int n, size_t total, size_t begin, size_t end,
                                      const float *m, const float *v);
lmc_status lmc_ckpt_commit(const char *out_dir, const char *tmp, const lmc_ckpt_state *st, int keep, char *saved,
                           size_t saved_len);
/* optim.safetensors of a total-float model written in pieces in any order
 * (the parts of a --tp/--pp/--ep job): open writes the header into a temp
 * file in dir, put the elements [begin, begin + n) of m and v; every
 * element must be put before lmc_afile_commit(&o->af) (or lmc_afile_abort). */
typedef struct {
    lmc_afile af;
    size_t total, data_at;
} lmc_ckpt_optim_out;
lmc_status lmc_ckpt_optim_open(lmc_ckpt_optim_out *o, const char *dir, size_t total);
lmc_status lmc_ckpt_optim_put(lmc_ckpt_optim_out *o, size_t begin, const float *m, const float *v, size_t n);
/* state.json: writes st, or reads text (file names it in messages). */
void lmc_ckpt_state_json(const lmc_ckpt_state *st, lmc_sb *sb);
lmc_status lmc_ckpt_state_parse(const char *text, size_t len, const char *file, lmc_ckpt_state *st);
/* state.json's text: its moe_bias (n numbers: a mixture of experts'
 * balancing biases, layers x experts) into bias; absent: bias untouched. */
lmc_status lmc_ckpt_moe_bias_parse(const char *text, size_t len, const char *file, float *bias, int n);
/* dir may be an OUT folder (its latest checkpoint) or a step folder. */
lmc_status lmc_ckpt_resolve(const char *dir, char *path, size_t n);
/* Loads the state and the weights; *params is a host buffer (lmc_free). */
lmc_status lmc_ckpt_load(const char *path, lmc_ckpt_state *st, lmc_model_config *cfg, lmc_layout *layout,
                         float **params);
/* The state and the parameters [begin, end) into dst (end - begin floats). */
lmc_status lmc_ckpt_load_range(const char *path, lmc_ckpt_state *st, lmc_model_config *cfg, lmc_layout *layout,
                               size_t begin, size_t end, float *dst);
/* Reads elements [begin, end) of AdamW's m and v (of a model of `total`
 * floats) into host buffers of end - begin floats: each rank of any count
 * takes its shard from the full state, touching only those pages. */
lmc_status lmc_ckpt_load_optim(const char *path, size_t total, size_t begin, size_t end, float *m, float *v);
/* The same for the runs of a part map (a tp/pp/ep rank's part, under ZeRO
 * its shards of it): m->floats floats each, only the runs' elements read. */
lmc_status lmc_ckpt_load_optim_part(const char *path, size_t total, const lmc_part_map *m, float *mdst,
                                    float *vdst);
/* The state and a part map's runs of the parameters (lmc_weights_load_part). */
lmc_status lmc_ckpt_load_part(const char *path, lmc_ckpt_state *st, lmc_model_config *cfg, lmc_layout *layout,
                              const lmc_part_map *m, float *dst);

#endif
