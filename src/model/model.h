/* model.h: a transformer (GPT-2 or Llama family) on a backend: parameters,
 * gradients and activations allocated once, forward and backward passes
 * written only against the backend ops table. */
#ifndef LMC_MODEL_RT_H
#define LMC_MODEL_RT_H

#include "backend/backend.h"
#include "dist/comm.h"
#include "lmc/model.h"

/* Saved activations. Per-layer arrays are [L][...] in training; in
 * inference every layer shares one slot (layer_stride = 0). */
typedef struct {
    float *encoded;                 // (N,C) embeddings
    float *ln1, *ln1_mean, *ln1_rstd; // (L,N,C), (L,N), (L,N)
    float *qkv;                     // (L,N,QKV) after rope
    float *atty;                    // (L,N,C) attention output
    float *lse;                     // (L,B,NH,T)
    float *res2;                    // (L,N,C) residual after attention
    float *ln2, *ln2_mean, *ln2_rstd; // (L,N,C), (L,N), (L,N)
    float *fch;                     // (L,N,F) MLP pre-activation
    float *fch_act;                 // (L,N,H) MLP activation
    float *res3;                    // (L,N,C) layer output
    /* mixture-of-experts layers, R = N x top_k rows in expert order (moe.c) */
    int *etok;                      // (L,R) the token of each row
    float *ew;                      // (L,R) its routing weight
    float *exg;                     // (L,R,C) the rows' inputs, gathered
    float *eh, *ea, *ey;            // (L,R,2F), (L,R,F), (L,R,C) experts' pre-activation, activation, output
    float *rlogits;                 // (N,E) router logits
    float *edy, *eda, *edh, *edw, *edz; // (R,C), (R,F), (R,2F), (R), (N,E) their gradients (scratch)
    float *lnf, *lnf_mean, *lnf_rstd; // (N,C), (N), (N)
    float *logits;                  // (N,Vp) or (B,Vp) for last-position-only
    float *losses;                  // (N)
    float *scalar;                  // (4) reductions land here
    float *dres;                    // (N,C) residual-stream gradient
    float *dbuf_a, *dbuf_b;         // (N,X) scratch gradients
    float *gath;                    // (N,C) sequence parallelism: a gathered input or a partial sum
} lmc_acts;

/* One layer's slice of the saved activations. */
typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *atty, *lse, *res2;
    float *ln2, *ln2_mean, *ln2_rstd, *fch, *fch_act, *res3;
    int *etok;
    float *ew, *exg, *eh, *ea, *ey;
} lmc_layer_acts;

/* Per-layer activation slots (model.c's A_* list). */
#define LMC_LAYER_ACTS 19

struct lmc_moe; /* a mixture of experts' routing state (moe.h) */

/* Where a unit's parameters and gradients live while the model uses them
 * (lmc_layout_unit: embeddings, layers, final). Without sharding they point
 * into the model's own buffers; a sharded trainer (ZeRO-3, and ZeRO-2 for
 * gradients) points them at gathered or transient buffers from its hooks. */
typedef struct {
    /* The passes call these around each unit, always in the order of
     * lmc_model_walk_units: acquire before the unit's parameters (forward;
     * in backward also its gradients) are used, release after; a backward
     * release means the unit's gradients are complete. The embeddings unit
     * (0) is acquired first in forward and, in training, released last in
     * backward: a tied head uses it in between. */
    void (*acquire)(void *ctx, int unit, int backward);
    void (*release)(void *ctx, int unit, int backward);
    void *ctx;
} lmc_unit_hooks;

typedef struct {
    int training;
    lmc_recompute recompute;
    int no_params, no_grads; /* the caller provides them per unit (sharded training) */
    /* Tensor parallelism (Megatron-LM): this rank holds 1/tp of each
     * layer's heads and MLP columns (lmc_layout_build_tp) and sums partial
     * results over tp_comm; tp <= 1: the whole model. */
    int tp, tp_rank;
    lmc_comm *tp_comm;
    int vocab_parallel; /* also split the token embedding and the head by vocabulary rows (training) */
    /* Sequence parallelism (Megatron-LM, with tp > 1): the residual stream,
     * the norms and their inputs are split by rows over the group, each
     * rank holding N / tp consecutive rows of the B*T; reduce-scatter and
     * all-gather replace the sums around the attention and MLP blocks. */
    int sp;
    /* Pipeline parallelism: this stage's chunks of consecutive layers (one,
     * or several under interleaving): chunk_bounds[2i], [2i + 1] are chunk
     * i's first layer and end (chunks 0: one chunk of all layers). The
     * chunk holding layer 0 embeds, the one ending at the last computes the
     * loss. */
    int chunks;
    const int *chunk_bounds;
    int act_slots; /* activation sets for micro-batches in flight (lmc_model_use_slot); 0 means 1 */
    /* Expert parallelism: the experts split over ep ranks of ep_comm, the
     * rows routed to them exchanged by all-to-all (moe_ep.c); ep <= 1: none. */
    int ep;
    lmc_comm *ep_comm;
} lmc_model_opts;

typedef struct {
    lmc_model_config cfg;
    lmc_layout layout;
    lmc_backend *be;
    float *params, *grads; /* device; NULL when not training, or provided per unit */
    float **unit_params, **unit_grads; /* [units]: where unit u's floats begin */
    size_t *unit_begin;    /* [units]: unit u's first element in the flat buffer */
    const lmc_unit_hooks *hooks; /* NULL: none */
    int B, T;              /* activation capacity */
    int training;
    lmc_recompute recompute;
    lmc_dtype prec;        /* matmul input precision */
    lmc_acts a;
    void *act_mem;
    size_t act_floats, layer_stride[LMC_LAYER_ACTS];
    int *tokens, *targets; /* device (B*T), the current slot's */
    int layer_begin, layer_end; /* the layers the passes run: the current chunk's (lmc_model_use_chunk) */
    int chunks, *chunk_bounds;  /* [2 x chunks] */
    int act_layers;        /* layers of the largest chunk: per-layer activations in each set */
    int act_slots;         /* activation sets, each act_floats, and tokens per set */
    int *tokens_all, *targets_all, *tokens_part_all;
    int qkv_dim, fc_dim, act_dim, hs;
    int nh, nkv;           /* this rank's query and key/value heads */
    int tp, tp_rank;       /* tensor parallelism (lmc_model_opts) */
    lmc_comm *tp_comm;
    int sp;                /* sequence parallelism (lmc_model_opts) */
    double tp_values;      /* values summed, gathered or scattered over the group so far (each collective's N x C) */
    double tp_s;           /* seconds inside the group's collectives so far (waiting for the others included) */
    lmc_status tp_status;  /* the first failed collective in the passes (tensor-parallel sum, expert exchange); checked once */
    /* vocabulary parallelism: this rank's rows [v0, v0 + vrows) of the
     * embedding and head, vvalid of them real tokens (the rest padding) */
    int vocab_split, v0, vrows, vvalid;
    int *tokens_part;      /* device (B*T): token ids relative to v0, -1 for other ranks' */
    int *h_ids;            /* host (B*T) */
    float *xstats, *h_xstats; /* device and host (N,2): xent_part's statistics */
    double *h_rows;        /* host (3N): per-row reductions over the group */
    struct lmc_moe *moe;   /* mixture-of-experts routing state; NULL for a dense model */
    int ep;                /* expert parallelism (lmc_model_opts) */
    lmc_comm *ep_comm;
} lmc_model;

typedef enum {
    LMC_FWD_LAST_LOGITS, /* logits of each sequence's last position only (generation) */
    LMC_FWD_LOSS,        /* losses of every position, logits kept */
    LMC_FWD_TRAIN,       /* losses, and the logits replaced by dloss * dlogits */
} lmc_fwd_mode;

lmc_status lmc_model_open(lmc_model **out, const lmc_model_config *cfg, lmc_backend *be, int B, int T,
                          int training);
lmc_status lmc_model_open_opts(lmc_model **out, const lmc_model_config *cfg, lmc_backend *be, int B, int T,
                               const lmc_model_opts *o);
void lmc_model_close(lmc_model *m);
void lmc_model_upload_params(lmc_model *m, const float *host);
void lmc_model_download_params(lmc_model *m, float *host);
/* Checks ids < vocab, B <= capacity and T <= capacity, then uploads.
 * targets may be NULL (no loss). `what` names the source for messages. */
lmc_status lmc_model_set_batch(lmc_model *m, const int *tokens, const int *targets, int B, int T,
                               const char *what);
/* Forward over this model's layers: the first stage embeds the batch, a
 * later one starts from lmc_model_stage_input (filled by the caller); the
 * last computes logits and loss, an earlier one leaves its output in
 * lmc_model_stage_output. */
void lmc_model_forward(lmc_model *m, int B, int T, lmc_fwd_mode mode, float dloss);
/* Pipeline stages: the (B*T, dim) activations entering and leaving this
 * stage, and the gradient buffer that holds d(output) before a non-last
 * stage's backward (the caller fills it) and d(input) after a non-first
 * stage's. */
float *lmc_model_stage_input(lmc_model *m);
const float *lmc_model_stage_output(const lmc_model *m);
float *lmc_model_stage_grad(lmc_model *m);
/* Makes activation set k (< act_slots) and its batch the current one: a
 * pipeline stage keeps each micro-batch in flight in its own set. */
void lmc_model_use_slot(lmc_model *m, int k);
/* Makes chunk c's layers the ones the passes run (and the activation sets
 * hold): interleaved pipeline stages hold several. */
void lmc_model_use_chunk(lmc_model *m, int c);
/* Accumulates into the units' gradients (zero them with lmc_model_zero_grads,
 * or the hooks provide zeroed ones). With --recompute the intermediates not
 * kept by forward are computed again here, by the same ops: same bits. */
void lmc_model_backward(lmc_model *m, int B, int T);
/* Calls the hooks in the order one forward (training: + backward) does,
 * computing nothing: a rank with no micro-batch joins the others'
 * collectives this way. */
void lmc_model_walk_units(lmc_model *m, int training);
/* A tensor of a unit in use (NULL when the model has no such tensor). */
static inline float *lmc_model_tensor(const lmc_model *m, float *const *units, int layer, int kind)
{
    const lmc_tensor_slot *s = lmc_layout_slot(&m->layout, layer, kind);
    if (s->offset == LMC_ABSENT)
        return NULL;
    int u = lmc_layout_unit_of(&m->layout, layer, kind);
    return units[u] + (s->offset - m->unit_begin[u]);
}
void lmc_model_zero_grads(lmc_model *m);
/* Mean of the last forward's per-position losses. */
float lmc_model_mean_loss(lmc_model *m, int B, int T);
/* Hugging Face Mixtral's load-balancing loss of the last forward (over
 * every mixture-of-experts layer's router logits, unweighted: the
 * objective adds cfg.aux_coef times it); 0 for a dense model. */
float lmc_model_aux_loss(const lmc_model *m);
void lmc_model_layer_acts(const lmc_model *m, int layer, lmc_layer_acts *la);
/* Layer l's input: the embeddings or layer l-1's output. */
const float *lmc_model_layer_input(const lmc_model *m, int l);
/* One layer's forward from input x into its activation slots. */
void lmc_model_layer_forward(lmc_model *m, int l, const float *x, int B, int T);
/* buf (n floats) = its sum over the tensor-parallel group (no-op without);
 * a failure is kept in m->tp_status. */
void lmc_model_tp_sum(lmc_model *m, float *buf, size_t n);
/* Rows of the residual stream this rank holds for a batch of N rows. */
static inline int lmc_model_rows(const lmc_model *m, int N) { return m->sp ? N / m->tp : N; }
/* Sequence parallelism (seqpar.c): full (N, C) = every rank's row shard
 * (this rank's from `shard`, which may be full's own rows); and full's
 * partial sums reduce-scattered, this rank's rows of the sum into shard. */
void lmc_model_sp_gather(lmc_model *m, float *full, const float *shard, int N);
void lmc_model_sp_scatter(lmc_model *m, float *full, float *shard, int N);
/* The input of the head: the final norm's output, whole rows. */
const float *lmc_model_head_input(const lmc_model *m);
/* Vocabulary-parallel classifier (forward.c's, in vocab.c). */
void lmc_model_vocab_forward(lmc_model *m, int B, int T, lmc_fwd_mode mode, float dloss);
/* Whether the current chunk uses the embeddings unit: it embeds, or its
 * tied head is the token embedding. */
static inline int lmc_model_chunk_embeds(const lmc_model *m)
{
    return m->layer_begin == 0 || (m->cfg.tied && m->layer_end == m->cfg.n_layer);
}
/* Calls the acquire (1) or release (0) hook of a unit, if any. */
void lmc_model_hook(lmc_model *m, int acquire, int unit, int backward);
/* The forward pass's building blocks, shared with the inference engine
 * (src/infer/): the model's norm (layernorm or rmsnorm) over N rows, and
 * out (M,n) (+)= inp (M,k) . W^T (+ bias) with W (n,k) as nn.Linear stores
 * it, at the model's matmul precision. */
void lmc_model_norm_forward(lmc_model *m, float *out, float *mean, float *rstd, const float *inp, const float *w,
                            const float *b, int N);
void lmc_model_linear(lmc_model *m, float *out, const float *inp, const float *w, const float *bias, int M, int n,
                      int k, int accumulate);
/* Its backward: dinp (M,k) (+)= dout . W (skipped when dinp is NULL),
 * dW (n,k) += dout^T . inp, db (n) += colsum(dout) (when not NULL). */
void lmc_model_linear_backward(lmc_model *m, float *dinp, int accumulate, float *dw, float *db, const float *dout,
                               const float *inp, const float *w, int M, int n, int k);
/* The model's norm backward: dinp +=, dw +=, db += (as the backend ops). */
void lmc_model_norm_backward(lmc_model *m, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                             const float *w, const float *mean, const float *rstd, int N);
size_t lmc_model_activation_bytes(const lmc_model_config *cfg, int B, int T, int training, lmc_recompute rc);
/* Per-layer intermediates that forward keeps under rc (1) or recomputes (0). */
int lmc_model_keeps(lmc_recompute rc, int act_index);

#endif
