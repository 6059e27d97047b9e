/* trainer.h: the training job's state, lmc_trainer, and one struct per
 * concern inside it, each owned by one file: the data (trainer.c opens it,
 * step.c and evaluate.c draw batches), the log (step.c), data parallelism
 * and ZeRO (step.c, shard.c), the pipeline (pipeline.c), the experts
 * (experts.c, experts_ep.c) and the balance (balance.c). Checkpoints are
 * save.c's and save_sharded.c's, validation and samples evaluate.c's. */
#ifndef LMC_TRAINER_H
#define LMC_TRAINER_H

#include "dist/comm.h"
#include "lmc/data.h"
#include "lmc/tokenizer.h"
#include "lmc/train.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "train/optim.h"
#include "train/shard.h"

/* What each rank reports after a step (all doubles: one allgather). */
typedef struct {
    double loss_sum;   /* sum of this rank's micro-batch mean losses */
    double mb;         /* micro-batches this rank ran */
    double compute_ms; /* its forward and backward passes (the test slowdown included) */
    double idle_ms;    /* then waiting for the gradient reduction to finish */
    double comm_ms;    /* blocked on communication in all (idle + ZeRO norm and gathers) */
    double busy_ms;    /* the communicator running collectives, overlapped or not */
    double step_ms;
    double cpu_ms;     /* the process's CPU time in the step, all threads (its share of the cores: / (step x threads)) */
    double rss_mb;     /* peak resident memory so far */
    double pp_wait_ms; /* waiting for the neighbouring pipeline stages (the bubble) */
    double tp_values;  /* values through the tensor-parallel group's collectives (allreduce, gather, scatter: N x C each) */
    double tp_ms;      /* time inside them (waiting for the group included) */
    double aux_sum;    /* sum of this rank's micro-batch load-balancing losses (mixtures of experts) */
    double a2a_ms;     /* expert parallelism: in the all-to-all exchanges (forward and backward) */
    double a2a_values; /* floats this rank sent to other ranks of its expert-parallel group */
    double params_local; /* parameters this rank holds (--ep: the rest and its experts; ZeRO-3: its shards) */
    double stop;       /* asked to stop (SIGUSR1): checkpoint and end after this step */
} lmc_rank_stats;

/* The training data (trainer.c opens it, step.c and evaluate.c draw batches). */
typedef struct {
    lmc_tokens train, val;
    int have_val;
    lmc_tokenizer *tok;
    int *inputs, *targets; /* host (B,T) */
    uint64_t consumed;     /* training sequences consumed by all ranks */
    uint64_t seed;
    int shuffle;
} lmc_train_data;

/* The JSONL log and the figures its lines need (step.c writes them). */
typedef struct {
    FILE *f;
    int logged_run; /* the log's first step line of this run carries its layout ("run") */
    float last_loss;
    double flops_per_token, peak_flops, start_time;
} lmc_train_log;

/* Data parallelism's gradient reduction and ZeRO (step.c, shard.c). */
typedef struct {
    int zero;                  /* ZeRO stage: 1 shards AdamW's state, 2 also the gradients, 3 also the parameters */
    lmc_shard *sh;             /* ZeRO-2/3 state (shard.c), NULL otherwise */
    lmc_shard_pieces pieces;   /* ZeRO-2/3, and ZeRO-1 under --ep: what is sharded over whom (shard.h) */
    lmc_unit_hooks dp_hooks;   /* without it: starts each unit's reduction as backward completes it */
    size_t own_begin, own_end; /* the parameters this rank's optimizer updates */
    int *reqs, nreq;           /* gradient buckets in flight */
    lmc_status hook_status;    /* the first failure inside the bucket hook */
    int consistent_error;      /* every rank saw the failure: no abort needed */
} lmc_train_dp;

/* Pipeline parallelism (pipeline.c). */
typedef struct {
    int pp, pp_rank;       /* stages, this rank's */
    int vpp;               /* chunks per rank (interleaved virtual stages; 1 without) */
    int *pp_begin;         /* [pp x vpp + 1]: each virtual stage's first layer */
    lmc_comm *ppc, *ppg;   /* this replica's stages, one rank each: activations, gradients (NULL without --pp) */
    int *pp_free, pp_nfree; /* activation sets not in use */
    int *pp_slot_of;       /* [vpp x pp_mbs_cap]: the set of each (chunk, micro-batch) in flight */
    int pp_mbs, pp_mbs_cap; /* micro-batches this step, at most */
    lmc_comm *embc;        /* a tied model's first and last stage: the embedding's gradient is summed */
    int *pp_req;           /* [3 x activation sets]: point-to-point operations in flight */
    double pp_wait_s;      /* this step's wait for the neighbouring stages */
    double *pp_bubble;     /* [pp]: each stage's wait / step time, last step */
    double *pp_rss;        /* [pp]: each stage's peak resident MB so far (this replica, tp rank 0's group) */
} lmc_train_pipe;

/* A mixture of experts: expert parallelism (experts_ep.c), loads and
 * balancing biases (experts.c). */
typedef struct {
    int ep;          /* expert parallelism: consecutive data-parallel ranks splitting the experts (1: none) */
    lmc_comm *epc;   /* their group (NULL without --ep) */
    int ep_grads;          /* expert gradients summed over the ranks holding the same experts (--ep) */
    lmc_comm *edpc;        /* those ranks (NULL: this rank alone) */
    int *ep_reqs, n_ep_reqs; /* their sums in flight */
    int ep_zero;           /* ZeRO under --ep: tr->dp.pieces cut each unit into its rest and its experts */
    double *moe_load;      /* experts.c: the last step's rows per expert (L,E), summed over the ranks */
    double *moe_imbalance; /* (L) each layer's max / mean of them */
} lmc_train_experts;

/* Micro-batches per rank (balance.c). */
typedef struct {
    int *mb_count;   /* [world] micro-batches per rank, sum = grad_accum x world */
    double *mb_ms;   /* [world] fastest measured ms per micro-batch */
    int measuring;   /* --balance auto: steps left to measure before assigning */
    double slowdown; /* test hook LMC_TEST_SLOWDOWN=X@R: rank R sleeps to run X times slower */
    int slow_rank;
    double fwdbwd_s; /* the slow rank's last forward + backward time */
} lmc_train_balance;

/* The training job: the model, its optimizer and process groups
 * (trainer.c), and each concern's state above. */
typedef struct {
    const lmc_train_opts *o;
    lmc_train_cb cb;
    void *ctx;
    lmc_comm *comm;  /* the data-parallel group: ranks holding the same part of the model */
    lmc_comm *world; /* every rank of the job (the same as comm without --tp) */
    lmc_comm *tpc;   /* the tensor-parallel group (NULL without --tp) */
    lmc_comm *kvc;   /* the tensor-parallel ranks sharing a replicated kv head (NULL: none replicated) */
    int tp, tp_rank;
    lmc_backend *be;
    lmc_model_config cfg;
    lmc_model *m;
    lmc_optim opt;
    int step;                /* optimizer steps done */
    lmc_rank_stats me, *all; /* this step: this rank, every rank ([world]) */
    double max_step_s;       /* slowest step so far on any rank (watchdog) */
    int ckpt_world;          /* ranks that wrote the checkpoint resumed from */
    int stop;                /* some rank was asked to stop: every rank checkpoints and ends after this step */
    lmc_train_data data;
    lmc_train_log log;
    lmc_train_dp dp;
    lmc_train_pipe pipe;
    lmc_train_experts ex;
    lmc_train_balance bal;
} lmc_trainer;

void lmc_trainer_emit(lmc_trainer *tr, lmc_train_event *ev);
/* Every rank learns whether any rank's s failed (a collective: all call it). */
lmc_status lmc_trainer_agree(lmc_trainer *tr, lmc_status s, const char *what);
/* step.c */
lmc_status lmc_trainer_step(lmc_trainer *tr);
void lmc_trainer_dp_hooks(lmc_trainer *tr);
/* SIGUSR1 from now on asks for a checkpoint and a stop after the current step. */
void lmc_trainer_catch_stop(void);
/* replicas.c */
lmc_status lmc_trainer_kv_open(lmc_trainer *tr);
/* Sums the replicated K and V rows' gradients over the kv group; grads
 * points at own_begin (this rank's optimizer range). */
lmc_status lmc_trainer_kv_sum(lmc_trainer *tr, float *grads);
/* Where the elements of a tensor that the gradient norm counts on this rank end. */
size_t lmc_trainer_counted_end(const lmc_trainer *tr, int layer, int kind);
/* Sequence parallelism: sums the norms' gradients over the group. */
lmc_status lmc_trainer_sp_sum(lmc_trainer *tr, float *grads);
/* pipeline.c */
lmc_status lmc_pipe_open(lmc_trainer *tr);
/* Forward and backward of this rank's micro-batches, 1F1B; *loss gets the
 * sum of their mean losses on the last stage. */
lmc_status lmc_pipe_accumulate(lmc_trainer *tr, float dloss, float *loss);
/* One forward of the current batch through the stages (evaluation, samples). */
lmc_status lmc_pipe_forward(lmc_trainer *tr, int B, int T, lmc_fwd_mode mode);
/* After the data-parallel reduction: a tied embedding's gradient summed
 * over the first and last stage. */
lmc_status lmc_pipe_sync_embed(lmc_trainer *tr);
/* Pipeline rank `rank`'s chunks: bounds[2c], bounds[2c + 1] (vpp chunks). */
void lmc_pipe_bounds(const lmc_trainer *tr, int rank, int *bounds);
/* Activation sets this rank needs (micro-batches in flight at most). */
int lmc_pipe_act_sets(const lmc_trainer *tr);
/* save.c */
lmc_status lmc_trainer_save(lmc_trainer *tr);
lmc_status lmc_trainer_save_final(lmc_trainer *tr);
lmc_status lmc_trainer_check_same(lmc_trainer *tr);
/* agree.c: the ranks compare the model and the flags that shape the numbers */
lmc_status lmc_trainer_check_job(lmc_trainer *tr);
/* save_sharded.c: under ZeRO-2/3 every rank writes its part (of the
 * checkpoint folder tmp, or the weights) */
lmc_status lmc_trainer_write_sharded(lmc_trainer *tr, const char *tmp);
lmc_status lmc_trainer_write_weights(lmc_trainer *tr, const char *path, int sharded);
/* save_joined.c: under --tp, --pp or --ep the parts stream to rank 0, a
 * unit of the whole model at a time, into a checkpoint (folder tmp) or the
 * final weights (path); collectives of the whole job */
lmc_status lmc_trainer_save_joined(lmc_trainer *tr, const char *tmp);
lmc_status lmc_trainer_write_joined(lmc_trainer *tr, const char *path);
/* part_load.c: under --tp, --pp or --ep a rank reads only its part at
 * start-up. holds_part: whether this rank's model is a part; params: its
 * parameters (ZeRO-3: its shards of them) from the checkpoint ckpt, else
 * --init's weights, else a fresh init, into the model; load_optim (any
 * layout): AdamW's m and v of its optimizer range from ckpt into tr->opt;
 * params_map, optim_map: where in the whole model the elements of the
 * parameters and of m and v this rank holds lie (what a save sends). */
int lmc_trainer_holds_part(const lmc_trainer *tr);
lmc_status lmc_trainer_params_map(const lmc_trainer *tr, lmc_part_map *m);
lmc_status lmc_trainer_optim_map(const lmc_trainer *tr, lmc_part_map *m);
lmc_status lmc_trainer_part_params(lmc_trainer *tr, const char *ckpt);
lmc_status lmc_trainer_load_optim(lmc_trainer *tr, const char *ckpt);
/* experts.c: a mixture of experts' loads and balancing biases (nothing for a dense model) */
lmc_status lmc_trainer_experts_open(lmc_trainer *tr); /* --moe-bias-step into the config, before the model */
void lmc_trainer_experts_close(lmc_trainer *tr);
lmc_status lmc_trainer_experts_step(lmc_trainer *tr); /* after each step: loads over the ranks, the bias update */
void lmc_trainer_experts_log(const lmc_trainer *tr, lmc_sb *sb);
void lmc_trainer_experts_state(lmc_trainer *tr, lmc_ckpt_state *st); /* the biases into a checkpoint's state */
lmc_status lmc_trainer_experts_resume(lmc_trainer *tr, const char *ckpt);
/* Expert parallelism (experts_ep.c): each rank holds its own
 * experts only. The groups; a MoE layer's bucket in
 * pieces (*done = 0: not one, post it whole); the expert pieces' wait;
 * whether unit u holds split experts and where ([x0, x1): they end it);
 * the parameters this rank holds (any layout; padding not counted; ZeRO-3:
 * its shards); rank 0's
 * parameters to the others (the rest over every rank, the experts over
 * the ranks holding them). */
lmc_status lmc_trainer_ep_split(lmc_trainer *tr); /* a collective: before setup_local */
lmc_status lmc_trainer_ep_open(lmc_trainer *tr);
void lmc_trainer_ep_close(lmc_trainer *tr);
lmc_status lmc_trainer_ep_post(lmc_trainer *tr, int unit, int *done);
lmc_status lmc_trainer_ep_wait(lmc_trainer *tr);
int lmc_trainer_ep_experts(const lmc_trainer *tr, int unit, size_t *x0, size_t *x1);
size_t lmc_trainer_params_held(const lmc_trainer *tr);
lmc_status lmc_trainer_ep_bcast(lmc_trainer *tr);
/* ZeRO-1, 2 and 3 under --ep (experts_ep.c): each unit's rest sharded
 * over every data-parallel rank, its experts over the ranks holding them
 * (tr->dp.pieces, which shard.c's ZeRO-2/3 hooks follow too). open: the
 * pieces and this rank's shards (*count floats of AdamW state, packed);
 * grads: this rank's gradient shard of piece i (*n floats; NULL past the
 * last: ZeRO-1 in the model's buffer, ZeRO-2/3 packed); adamw: the
 * step on the shards; allgather: the updated shards to their groups. */
lmc_status lmc_trainer_ep_zero_open(lmc_trainer *tr, size_t *count);
const float *lmc_trainer_ep_grads(const lmc_trainer *tr, int i, size_t *n);
void lmc_trainer_ep_adamw(lmc_trainer *tr, float lr, float scale);
lmc_status lmc_trainer_ep_allgather(lmc_trainer *tr);
/* balance.c */
lmc_status lmc_balance_open(lmc_trainer *tr);
void lmc_balance_close(lmc_trainer *tr);
int lmc_balance_first(const lmc_trainer *tr); /* this rank's first micro-batch index */
int lmc_balance_total(const lmc_trainer *tr); /* micro-batches per step, all ranks */
void lmc_balance_slowdown(lmc_trainer *tr, double forward_s);
void lmc_balance_update(lmc_trainer *tr);
/* The counts (sum = total) that minimise the slowest rank's time when rank
 * r needs ms[r] per micro-batch; deterministic (ties go to the lower rank). */
void lmc_balance_assign(const double *ms, int world, int total, int *count);
lmc_status lmc_trainer_eval(lmc_trainer *tr, float *val_loss, float *val_bpb);
lmc_status lmc_trainer_sample(lmc_trainer *tr, lmc_sb *text);

#endif
