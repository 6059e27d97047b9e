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

/* The matrices decode reads per layer (lmc_engine.mats[layer * LMC_ENGINE_MATS
 * + which]); a mixture-of-experts layer's fc and proj are its shared
 * experts' (absent: rows 0), exp_fc and exp_proj its experts' stacked
 * weights. The head follows the layers. */
enum { LMC_EM_QKV, LMC_EM_ATTN, LMC_EM_FC, LMC_EM_PROJ, LMC_EM_EXP_FC, LMC_EM_EXP_PROJ, LMC_ENGINE_MATS };

struct lmc_engine_moe; /* experts.c */

struct lmc_engine {
    lmc_backend *be;
    lmc_model *m; /* fp32 parameters and layout; the forward's helpers */
    int borrowed; /* m is the caller's (lmc_engine_open_model): not closed with the engine */
    lmc_model_config cfg;
    int slots, ctx;
    lmc_quant quant;
    int hs, qkv_dim, fc_dim, act_dim, kvdim;
    lmc_wmat *mats; /* [layer * LMC_ENGINE_MATS + LMC_EM_*], then the head */
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
    struct lmc_engine_moe *moe; /* a mixture of experts' routing and rows; NULL for a dense model */
};

/* The passes on this rank alone (passes.c); lmc_engine_prefill and
 * lmc_engine_decode first send the call to a tensor-parallel group's
 * followers (follow.c). */
lmc_status lmc_engine_prefill_local(lmc_engine *e, int slot, const int *ids, int n, float *logits);
lmc_status lmc_engine_decode_local(lmc_engine *e, int nb, const int *tokens, const int *pos, float *logits);
/* out (M, rows) (+)= inp (M, K) . W[row0 .. row0+rows)^T (+ bias) (passes.c):
 * gemm and fp32, the backend's matmul as lmc_model_forward calls it;
 * otherwise the linear op, which streams the weights once. */
void lmc_engine_lin(lmc_engine *e, float *out, const float *inp, const lmc_wmat *W, size_t row0, size_t rows,
                    const float *bias, int M, int accumulate, int gemm);
/* ---- experts.c: mixture-of-experts layers ---- */
lmc_status lmc_engine_moe_open(lmc_engine *e);
void lmc_engine_moe_close(lmc_engine *e);
/* bias (L,E) into the model's balancing bias, which routing adds to the
 * scores to choose (NULL: none; a borrowed model keeps its own, live). */
void lmc_engine_moe_set_bias(lmc_engine *e, const float *bias);
/* e->x (N,C) += the shared and routed experts of e->ln (N,C) at layer l;
 * busy (nbusy of the N rows) lists the rows to route, NULL: all of them
 * (decode's idle rows get nothing and cost nothing). */
void lmc_engine_moe_mlp(lmc_engine *e, int l, int N, const int *busy, int nbusy, int gemm);
/* The leader tells its followers to return (lmc_engine_close). */
void lmc_engine_release_followers(lmc_engine *e);

#endif
