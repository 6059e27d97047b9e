/* train.h: the training loop: options, events for a progress display, and
 * the pieces it is built from (schedule, optimizer, checkpoints). */
#ifndef LMC_TRAIN_H
#define LMC_TRAIN_H

#include "lmc/model.h"

typedef struct {
    /* model: a preset or config (with overrides), or weights to start from */
    const char *model, *init;
    int layers, heads, kv_heads, dim, ffn, vocab, max_seq; /* 0 = keep */
    /* data */
    const char *data, *val_data, *tokenizer;
    int batch, seq, grad_accum, steps, shuffle;
    uint64_t seed;
    /* optimizer and schedule */
    double lr, min_lr_frac, weight_decay, beta1, beta2, eps, clip;
    int warmup;
    const char *schedule; /* cosine | linear | constant */
    /* execution */
    const char *device, *precision, *dist;
    int threads, zero;     /* zero: ZeRO stage 0-3 */
    int tp;                /* tensor-parallel degree: consecutive ranks split each layer */
    int sp;                /* sequence parallelism inside the tensor-parallel group */
    int pp;                /* pipeline stages: each holds consecutive layers (ranks: tp innermost, then pp, then dp) */
    const char *pp_layers; /* "a,b,...": layers per (virtual) stage by hand (NULL: balanced by cost) */
    int vpp;               /* interleaved pipeline: chunks per rank (virtual stages pp x vpp) */
    int ep;                /* expert parallelism: consecutive data-parallel ranks splitting the experts */
    double moe_bias_step;  /* aux-loss-free balancing's bias step; < 0: the model config's */
    const char *recompute; /* none | selective | full */
    const char *balance;   /* off | auto */
    /* outputs */
    const char *save, *out_dir, *resume, *log;
    const char *report; /* HTML page drawn from log, rewritten at each evaluation and at the end */
    double max_shard_mb; /* --save into a folder: files of at most this size (HF's max_shard_size) */
    int save_every, keep, eval_every, eval_batches, sample_every, sample_tokens;
    int check_every; /* the ranks compare a hash of their weights every N steps (0: at checkpoints and the end) */
} lmc_train_opts;

void lmc_train_defaults(lmc_train_opts *o);
/* --recompute's value as the model's enum; an unknown name is an error. */
lmc_status lmc_recompute_parse(const char *name, lmc_recompute *rc);

typedef enum { LMC_EV_START, LMC_EV_STEP, LMC_EV_EVAL, LMC_EV_SAMPLE, LMC_EV_SAVE, LMC_EV_DONE } lmc_event_kind;

typedef struct {
    lmc_event_kind kind;
    int step, steps;        /* step just finished (1-based), total */
    float loss, lr, grad_norm;
    double tokens_per_s, mfu, ms, elapsed_s, eta_s;
    float val_loss, val_bpb; /* EVAL; bpb < 0 when unknown */
    const char *text;       /* START: description; SAMPLE: the sample; SAVE: path */
    int rank, world;
} lmc_train_event;

typedef void (*lmc_train_cb)(void *ctx, const lmc_train_event *ev);

/* Runs a whole training job; events go to cb (on every rank; printers
 * usually act on rank 0 only). */
lmc_status lmc_train(const lmc_train_opts *o, lmc_train_cb cb, void *ctx);

/* Learning rate at 0-based step: linear warmup from lr/warmup to lr over
 * `warmup` steps, then the schedule decays to lr * min_lr_frac at the end. */
double lmc_lr_at(const lmc_train_opts *o, int step);

#endif
