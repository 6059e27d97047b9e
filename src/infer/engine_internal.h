/* engine_internal.h: the engine's state, shared by src/infer/ files. */
#ifndef LMC_ENGINE_INTERNAL_H
#define LMC_ENGINE_INTERNAL_H

#include "lmc/infer.h"
#include "model/model.h"

/* A weight matrix as decode reads it: rows x cols in `type`, with per-row
 * scales for int8. fp32 matrices point into the model's parameters. */
typedef struct {
    const void *w;
    const float *scale;
    lmc_dtype type;
    size_t rows, cols;
} lmc_wmat;

struct lmc_engine {
    lmc_backend *be;
    lmc_model *m; /* fp32 parameters and layout; the forward's helpers */
    lmc_model_config cfg;
    int slots, ctx;
    lmc_quant quant;
    int hs, qkv_dim, fc_dim, act_dim, kvdim;
    lmc_wmat *mats; /* [layer*4 + {qkv, attn, fc, proj}], then the head */
    void *qmem;     /* quantized copies (device), NULL in fp32 */
    double weight_bytes, device_bytes;
    /* device activations, rows = max(ctx, slots) */
    float *buf, *x, *ln, *qkv, *atty, *fch, *act, *logits;
    float *kcache, *vcache; /* [layer][slot][ctx][kvdim] */
    int *ints, *d_tok, *d_pos, *d_len, *d_zero;
    /* host */
    int *h_ints;
    float *h_logits, *h_scratch;
    int *h_counts;
    lmc_engine_stats stats;
    lmc_comm *tp_comm; /* tensor parallelism (lmc_engine_opts.tp), NULL without */
};

/* The passes on this rank alone (passes.c); lmc_engine_prefill and
 * lmc_engine_decode first send the call to a tensor-parallel group's
 * followers (follow.c). */
lmc_status lmc_engine_prefill_local(lmc_engine *e, int slot, const int *ids, int n, float *logits);
lmc_status lmc_engine_decode_local(lmc_engine *e, int nb, const int *tokens, const int *pos, float *logits);
/* The leader tells its followers to return (lmc_engine_close). */
void lmc_engine_release_followers(lmc_engine *e);

#endif
