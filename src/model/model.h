/* model.h: a transformer (GPT-2 or Llama family) on a backend: parameters,
 * gradients and activations allocated once, forward and backward passes
 * written only against the backend ops table. */
#ifndef LMC_MODEL_RT_H
#define LMC_MODEL_RT_H

#include "backend/backend.h"
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
    float *lnf, *lnf_mean, *lnf_rstd; // (N,C), (N), (N)
    float *logits;                  // (N,Vp) or (B,Vp) for last-position-only
    float *losses;                  // (N)
    float *scalar;                  // (4) reductions land here
    float *dres;                    // (N,C) residual-stream gradient
    float *dbuf_a, *dbuf_b;         // (N,X) scratch gradients
} lmc_acts;

/* One layer's slice of the saved activations. */
typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *atty, *lse, *res2;
    float *ln2, *ln2_mean, *ln2_rstd, *fch, *fch_act, *res3;
} lmc_layer_acts;

typedef struct {
    lmc_model_config cfg;
    lmc_layout layout;
    lmc_backend *be;
    float *params, *grads; /* device; grads NULL when not training */
    int B, T;              /* activation capacity */
    int training;
    lmc_dtype prec;        /* matmul input precision */
    lmc_acts a;
    void *act_mem;
    size_t act_floats, layer_stride[13];
    int *tokens, *targets; /* device (B*T) */
    int qkv_dim, fc_dim, act_dim, hs;
} lmc_model;

typedef enum {
    LMC_FWD_LAST_LOGITS, /* logits of each sequence's last position only (generation) */
    LMC_FWD_LOSS,        /* losses of every position, logits kept */
    LMC_FWD_TRAIN,       /* losses, and the logits replaced by dloss * dlogits */
} lmc_fwd_mode;

/* Called by backward as each gradient bucket (lmc_layout_bucket) completes. */
typedef void (*lmc_bucket_hook)(void *ctx, int bucket);

lmc_status lmc_model_open(lmc_model **out, const lmc_model_config *cfg, lmc_backend *be, int B, int T,
                          int training);
void lmc_model_close(lmc_model *m);
void lmc_model_upload_params(lmc_model *m, const float *host);
void lmc_model_download_params(lmc_model *m, float *host);
/* Checks ids < vocab, B <= capacity and T <= capacity, then uploads.
 * targets may be NULL (no loss). `what` names the source for messages. */
lmc_status lmc_model_set_batch(lmc_model *m, const int *tokens, const int *targets, int B, int T,
                               const char *what);
void lmc_model_forward(lmc_model *m, int B, int T, lmc_fwd_mode mode, float dloss);
/* Accumulates into m->grads (zero them with lmc_model_zero_grads). */
void lmc_model_backward(lmc_model *m, int B, int T, lmc_bucket_hook hook, void *ctx);
void lmc_model_zero_grads(lmc_model *m);
/* Mean of the last forward's per-position losses. */
float lmc_model_mean_loss(lmc_model *m, int B, int T);
void lmc_model_layer_acts(const lmc_model *m, int layer, lmc_layer_acts *la);
/* The forward pass's building blocks, shared with the inference engine
 * (src/infer/): the model's norm (layernorm or rmsnorm) over N rows, and
 * out (M,n) (+)= inp (M,k) . W^T (+ bias) with W (n,k) as nn.Linear stores
 * it, at the model's matmul precision. */
void lmc_model_norm_forward(lmc_model *m, float *out, float *mean, float *rstd, const float *inp, const float *w,
                            const float *b, int N);
void lmc_model_linear(lmc_model *m, float *out, const float *inp, const float *w, const float *bias, int M, int n,
                      int k, int accumulate);
size_t lmc_model_activation_bytes(const lmc_model_config *cfg, int B, int T, int training);

#endif
