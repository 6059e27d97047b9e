/* moe.h: a mixture-of-experts MLP block (moe.c) and its routing (route.c).
 *
 * Dropless dispatch, as Hugging Face's Mixtral computes it: the router's
 * logits (N, E) = ln2 . Wr^T come to the host, which picks each token's
 * top_k experts and their weights and sorts the N x top_k (token, expert)
 * pairs into rows by expert, then by token. The rows' inputs are gathered,
 * each expert runs its SwiGLU over its rows (one matmul per expert), and
 * each row's output, times its weight, is added to its token's residual.
 * Hugging Face's load-balancing loss is computed over every layer's
 * router logits after the forward pass; its gradient, and that of the
 * routing weights, reach the logits on the host too (routing is small:
 * N x E numbers per layer) and go back through the router's matmul. */
#ifndef LMC_MOE_H
#define LMC_MOE_H

#include "model/model.h"

/* One layer's routing of the last forward, host memory, N tokens (<= the
 * model's B x T), E experts, k per token. Rows r < N x k are in expert
 * order: expert e's are [off[e], off[e + 1]), their tokens increasing. */
typedef struct {
    int N;
    int *sel;      /* (N,k) each token's experts, best first (ties: the lower index) */
    float *prob;   /* (N,E) the router's scores: softmax, or sigmoid */
    float *soft;   /* (N,E) softmax of the logits (the load-balancing loss's); = prob for a softmax router */
    int *tok;      /* (N*k) row r's token */
    float *w;      /* (N*k) row r's routing weight */
    int *row;      /* (N*k) the row of token i's j-th choice, at i * k + j */
    int *off;      /* (E+1) */
    double *psum;  /* (E) sum over tokens of soft */
    int *fill;     /* (E) scratch */
    const float *bias; /* (E) added to the scores only to choose the top k, not to the weights (NULL: none) */
    float *pick;   /* (E) scratch: the biased scores */
} lmc_route;

typedef struct lmc_moe_ep lmc_moe_ep; /* expert parallelism's state (moe_ep.c) */

/* The model's routing state (lmc_model.moe). */
typedef struct lmc_moe {
    lmc_moe_ep *ep;        /* NULL without --ep */
    lmc_route *route;      /* [n_layer]: those of mixture-of-experts layers */
    float *h_logits, *h_dw, *h_dz; /* host scratch: (N,E), (N*k), (N,E) */
    float *aux_c;          /* (E): d(objective) / d(softmax prob of expert e), the same for every token and layer */
    double *aux_f, *aux_p; /* (E) scratch: tokens per expert and summed probabilities over the layers */
    float aux_loss;        /* of the last forward */
    /* DeepSeek-V3's auxiliary-loss-free balancing (cfg.bias_step > 0):
     * each layer's per-expert selection bias, moved after every step
     * against the experts' loads (no gradient) */
    float *bias;           /* (L,E) */
    double *load;          /* (L,E) rows routed to each expert by training forwards since lmc_moe_take_load */
} lmc_moe;

/* ---- route.c (host) ---- */
lmc_status lmc_route_alloc(lmc_route *r, int N, int E, int k);
void lmc_route_free(lmc_route *r);
/* Routes N tokens from their logits (N,E). */
void lmc_route_forward(lmc_route *r, const float *logits, int N, int E, int k, lmc_router_kind kind);
/* dz (N,E) = d(objective)/d(logits): from the rows' weight gradients dw
 * (N*k, row order) through the normalised top-k weights, plus through the
 * load-balancing loss's softmax, d/d(soft[i][e]) = aux_c[e] (NULL: none). */
void lmc_route_backward(const lmc_route *r, int E, int k, lmc_router_kind kind, const float *dw, const float *aux_c,
                        float *dz);

/* ---- moe.c ---- */
/* Routing state for a model with experts (nothing for a dense one); the
 * layouts it cannot yet run (tensor, sequence or pipeline parallel) are
 * refused here with the reason. */
lmc_status lmc_moe_open(lmc_model *m);
void lmc_moe_close(lmc_model *m);
/* Layer l's MLP block: res3 (N,C) = res2 + shared experts + routed experts of ln2. */
void lmc_moe_forward(lmc_model *m, lmc_layer_acts *la, int l, int N);
/* dres holds d(res3) on entry and d(res2) on exit; the router's gradient
 * includes the load-balancing loss's. */
void lmc_moe_backward(lmc_model *m, const lmc_layer_acts *la, int l, int N);
/* --recompute selective: the gathered rows and the activations again (the
 * routing is kept), by the same ops: the same bits. */
void lmc_moe_recompute(lmc_model *m, const lmc_layer_acts *la, int l, int N);
/* Experts e0 .. e0 + ne - 1 of those this rank holds (all of them, or
 * under --ep its own, from 0) over R rows in expert order (expert e0 + j's
 * are [off[j], off[j + 1])): h (R,2F) = x . [gate; up]^T, a (R,F) =
 * SwiGLU(h), y (R,C) = a . down^T; and backward from dy (R,C), which is
 * replaced by the rows' input gradients, with da (R,F), dh (R,2F) scratch,
 * the experts' weight gradients accumulated. */
void lmc_moe_experts_forward(lmc_model *m, int l, int e0, int ne, const int *off, const float *x, float *h,
                             float *a, float *y, int R);
void lmc_moe_experts_backward(lmc_model *m, int l, int e0, int ne, const int *off, float *dy, const float *x,
                              const float *h, const float *a, float *da, float *dh, int R);
/* After a forward over N tokens: the load-balancing loss, and (dloss > 0,
 * training) its gradient factors aux_c for the backward pass, scaled as
 * the language-model loss (dloss per token). */
void lmc_moe_aux(lmc_model *m, int N, float dloss);

/* The rows each expert got in the training forwards since the last call
 * ((L,E), host), then counts anew. */
void lmc_moe_take_load(lmc_model *m, double *load);
/* DeepSeek-V3's update from the step's loads (L,E) (summed over every
 * rank): bias[e] += step * sign(mean load - load[e]) in each layer, the
 * change centred to mean 0 (as torchtitan does; a shift of every bias
 * changes no choice). */
void lmc_moe_update_bias(lmc_model *m, const double *load, float step);
/* The selection biases (L,E), host; NULL for a dense model. */
float *lmc_moe_bias(lmc_model *m);

/* ---- moe_ep.c: expert parallelism (m->ep ranks in m->ep_comm) ---- */
/* --ep against the model: a mixture of experts whose experts it divides. */
lmc_status lmc_moe_ep_check(const lmc_model_config *c, int ep);
lmc_status lmc_moe_ep_open(lmc_model *m);
void lmc_moe_ep_close(lmc_model *m);
/* The sender's rows la->exg to their owners, the owner's experts, the
 * outputs back into la->ey (failures into m->tp_status). */
void lmc_moe_ep_forward(lmc_model *m, lmc_layer_acts *la, int l, int N);
/* dy (R,C): the rows' output gradients to their owners, the rows' input
 * gradients back into dy. */
void lmc_moe_ep_backward(lmc_model *m, int l, float *dy);
/* Seconds in the exchanges and floats sent to other ranks, since open. */
void lmc_moe_ep_stats(const lmc_model *m, double *a2a_s, double *values);

#endif
