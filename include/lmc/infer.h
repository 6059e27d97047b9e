/* infer.h: the inference engine: a KV cache per slot, prefill of a prompt
 * in one pass, and one decode step for many sequences at once (continuous
 * batching), with optional weight-only quantization. The numeric work is
 * backend ops only; sampling and text handling are host code.
 *
 * An engine is not thread-safe: one thread drives it (the server runs an
 * engine thread, `lmc generate` its main thread). See docs/serving.md. */
#ifndef LMC_INFER_H
#define LMC_INFER_H

#include "lmc/core.h"
#include "lmc/model.h"
#include "lmc/sampler.h"

typedef struct lmc_backend lmc_backend;

/* ---------- the engine ---------- */

typedef enum { LMC_QUANT_NONE = 0, LMC_QUANT_BF16 = 1, LMC_QUANT_INT8 = 2 } lmc_quant;

/* "none"/"fp32", "bf16", "int8" (flag named by `what` in the message). */
lmc_status lmc_quant_parse(const char *s, const char *what, lmc_quant *q);
const char *lmc_quant_name(lmc_quant q);

typedef struct {
    int slots;       /* sequences decoded together; each has its own KV cache */
    int ctx;         /* tokens per slot (prompt + generated); 0 = the model's max_seq */
    lmc_quant quant; /* weights of the linear layers and the output head */
    /* tensor parallelism: > 1 splits every layer over the ranks of an MPI
     * launch of exactly tp processes, which all make the same calls */
    int tp;
    /* a mixture of experts' balancing bias (n_layer x n_expert, host,
     * copied; lmc_weights_load_moe_bias): added to the router's scores to
     * choose each token's experts, as in training. NULL: none */
    const float *moe_bias;
    /* params NULL: the weights (a file or a sharded folder, what
     * lmc_weights_load reads) from which each rank reads only its part:
     * under tp > 1 no rank holds the whole model */
    const char *weights;
} lmc_engine_opts;

typedef struct lmc_engine lmc_engine;

/* params: host fp32 parameters in the model's layout (lmc_weights_load);
 * copied, so the caller may free them; NULL: each rank reads its part from
 * o->weights. Fails with a message naming the missing op when the backend
 * lacks one the engine needs. */
lmc_status lmc_engine_open(lmc_engine **out, lmc_backend *be, const lmc_model_config *cfg, const float *params,
                           const lmc_engine_opts *o);
void lmc_engine_close(lmc_engine *e);
const lmc_model_config *lmc_engine_config(const lmc_engine *e);
int lmc_engine_slots(const lmc_engine *e);
int lmc_engine_ctx(const lmc_engine *e);
/* This process's rank in a tensor-parallel engine (0 without). Rank 0
 * leads: it is used as any engine, and its prefill and decode calls run on
 * every rank of the group. The other ranks call lmc_engine_follow, which
 * runs those calls until the leader's engine closes. */
int lmc_engine_rank(const lmc_engine *e);
lmc_status lmc_engine_follow(lmc_engine *e);
/* Bytes of weights one decode step reads (all linear layers and the head,
 * at the engine's weight type): the numerator of the bandwidth bound. */
double lmc_engine_weight_bytes(const lmc_engine *e);
/* Device memory the engine holds (weights, copies, KV cache, buffers). */
double lmc_engine_device_bytes(const lmc_engine *e);

/* Low level. prefill: runs ids[0..n) (1 <= n <= ctx) through the model
 * into slot's KV cache and writes the logits of the last position to host
 * logits (V floats). decode: one step for rows 0..nb-1, row b = slot b:
 * token[b] at position pos[b] (its KV goes to that position), or an idle
 * row when pos[b] < 0; host logits (nb, V). */
lmc_status lmc_engine_prefill(lmc_engine *e, int slot, const int *ids, int n, float *logits);
lmc_status lmc_engine_decode(lmc_engine *e, int nb, const int *tokens, const int *pos, float *logits);

/* One sequence from its prompt to its end through slot 0 (lmc_generate's
 * loop over the engine): with o->recompute every token comes from a
 * prefill, else the first from a prefill and the others from decode
 * steps; a full context slides (a prefill of its last ctx tokens) or ends
 * generation as o->slide says. Many sequences at once go through the
 * scheduler below. */
lmc_status lmc_engine_generate(lmc_engine *e, const int *prompt, int n, const lmc_gen_opts *o);

/* ---------- sequences and the scheduler step ---------- */

typedef enum { LMC_SEQ_NEW, LMC_SEQ_RUNNING, LMC_SEQ_DONE } lmc_seq_state;
typedef enum { LMC_FINISH_NONE, LMC_FINISH_LENGTH, LMC_FINISH_STOP, LMC_FINISH_CANCEL } lmc_finish;

typedef struct lmc_seq lmc_seq;
/* Called on the engine's thread for every generated token that is not a
 * stop token; may call lmc_seq_stop (a stop string matched). */
typedef void (*lmc_token_fn)(lmc_seq *s, int token, void *ctx);

struct lmc_seq {
    int *ids;          /* prompt, then the generated tokens */
    int n, n_prompt, cap;
    int max_new;       /* generated tokens at most */
    lmc_sampling sp;
    lmc_rng rng;
    int *stop_ids;     /* tokens that end generation (finish STOP, not passed to on_token) */
    int n_stop_ids;
    int *bias_ids;     /* OpenAI logit_bias: added to the logits before sampling */
    float *bias_vals;
    int n_bias;
    int slot;          /* KV cache slot, set by the caller before the first iterate */
    lmc_seq_state state;
    lmc_finish finish;
    int n_gen;         /* generated tokens, stop token included */
    lmc_token_fn on_token;
    void *ctx;
    double t_prefill;  /* seconds spent in this sequence's prefill */
};

/* Copies the prompt; room for max_new more tokens. Then set slot, stop_ids,
 * bias, on_token as needed. */
lmc_status lmc_seq_init(lmc_seq *s, const int *prompt, int n, int max_new, const lmc_sampling *sp, uint64_t seed);
/* Copies ids (and values) into the sequence. */
lmc_status lmc_seq_set_stop_ids(lmc_seq *s, const int *ids, int n);
lmc_status lmc_seq_set_bias(lmc_seq *s, const int *ids, const float *vals, int n);
void lmc_seq_free(lmc_seq *s);
/* Ends the sequence with the given reason (callable from on_token). */
void lmc_seq_stop(lmc_seq *s, lmc_finish why);

/* One scheduler iteration: prefills the NEW sequences (each on its own
 * slot, distinct from every other sequence's), then one decode step shared
 * by all RUNNING ones; on_token is called for each new token; a sequence
 * that reaches max_new, the context, or a stop token becomes DONE and its
 * slot is free for the caller to reuse. Prompts are checked here: ids in
 * the vocabulary, 1 <= length < ctx. */
lmc_status lmc_engine_iterate(lmc_engine *e, lmc_seq *const *seqs, int n);

typedef struct {
    double prefill_tokens, prefill_seconds;
    double decode_tokens, decode_steps, decode_seconds;
} lmc_engine_stats;
void lmc_engine_get_stats(const lmc_engine *e, lmc_engine_stats *st);

/* ---------- streaming text with stop strings ----------
 * Tokens arrive as bytes; text is handed out only when it cannot be part
 * of a stop string still being matched and ends on a whole UTF-8
 * character, so a client never sees half a stop string or half a
 * character. */
typedef struct {
    lmc_sb text;      /* generated bytes, cut before a matched stop string */
    size_t emitted;   /* bytes already handed out */
    char **stop;
    size_t *stop_len;
    int n_stop;
    int stopped;      /* a stop string matched */
} lmc_textstream;

lmc_status lmc_text_init(lmc_textstream *t, const char *const *stops, int n_stops);
void lmc_text_free(lmc_textstream *t);
/* Appends a token's bytes; returns 1 when a stop string now matches (the
 * text is cut before it; later pushes are ignored). */
int lmc_text_push(lmc_textstream *t, const char *bytes, size_t n);
/* The next bytes safe to hand out (all of them when final), as a pointer
 * into t->text and a length; marks them emitted. */
size_t lmc_text_take(lmc_textstream *t, int final, const char **p);

#endif
