/* plan.h: the planner. For a model, a token budget and a fleet of chips it
 * answers which parallel layout fits in memory, how fast it runs and when
 * training ends as chips arrive. Pieces, one file each under src/plan/:
 *   catalog.c   chip catalogue (share/chips.json, embedded at build time)
 *   measure.c   the `cpu` chip, measured on this machine
 *   fleet.c     fleets (FLEET.json or NxCHIP), dates, planner model shapes
 *   cost.c      the cost model: memory, compute, communication per layout
 *   memory.c    what lmc train itself allocates per rank (the cpu chip)
 *   search.c    layouts: enumerate, evaluate, rank; unequal-rank balancing
 *   timeline.c  deliveries: re-plans, tokens done by date, finish date
 *   svg.c       the timeline as a plot
 *   calib.c     training logs (JSONL) against predictions; random shards
 *   calrun.c    calibration runs: lmc_train in this process, CPU time per step
 *   report.c    text and JSON reports
 * The formulas and their sources are in docs/planner.md. */
#ifndef LMC_PLAN_H
#define LMC_PLAN_H

#include "lmc/core.h"
#include "lmc/model.h"

/* ---------- chips ---------- */

#define LMC_PLAN_NAME 48
#define LMC_PLAN_MAX_ALIASES 8

typedef struct {
    char name[LMC_PLAN_NAME];
    char vendor[LMC_PLAN_NAME];
    char aliases[LMC_PLAN_MAX_ALIASES][LMC_PLAN_NAME];
    int n_aliases;
    double bf16_tflops;    /* dense bf16/fp16 matmul peak */
    double fp32_tflops;    /* dense plain fp32 peak (no TF32: how lmc's backends run fp32 matmuls) */
    double tf32_tflops;    /* dense TF32 tensor-core peak; 0: none */
    double fp8_tflops;     /* dense fp8 peak; 0: none */
    double memory_gb;      /* capacity, 1e9 bytes */
    double memory_bw_gbs;  /* memory bandwidth, GB/s */
    double intra_node_gbs; /* per chip, one direction, inside a node */
    double network_gbs;    /* per chip, one direction, between nodes */
    int chips_per_node;
    double matmul_eff;     /* fraction of the bf16 peak large GEMMs reach */
    double attn_eff;       /* fraction of the bf16 peak fused (flash) attention reaches */
    double matmul_eff_fp32, attn_eff_fp32; /* the same at fp32 */
    double latency_us;     /* per-hop collective latency between nodes */
    double intra_latency_us; /* per-hop collective latency inside a node (a measured cpu chip:
                              * with the wait for the partner rank, host.c) */
    double kernel_us;      /* fixed cost of one kernel launch (or parallel region) */
    double gemm_m0;        /* GEMM efficiency halves when its smallest dimension is this */
    double sfu_gops;       /* exp/tanh evaluations per second (1e9); 0: never the limit */
    double optim_ns;       /* measured AdamW + grad-norm ns per parameter; 0: from bandwidth */
    int measure;           /* figures come from measuring this machine (cpu) */
    int measured;          /* measure done */
    /* ranks of one job sharing this host (a measured chip; host.c): each
     * gets host_share of the compute (cores / (ranks x threads), at most
     * 1), host_bw_share of the time on a memory stream (cores / ranks) at
     * rank_bw_gbs (the bandwidth one rank gets beside the others; 0: not
     * measured), its GEMMs at host_contention of their speed alone (shared
     * caches and memory; 1 or 0: none), and with comm_on_cores every core
     * computes, so gradient sums in shared memory run on them and hide
     * behind nothing */
    /* and, measured with GEMMs between barriers (host.c), the slowest
     * rank's pace against the average (host_pace, in host_contention) and
     * what a rank waits for its partner at each collective beyond that
     * (host_wait_us, in intra_latency_us) */
    int host_ranks;
    double host_share, host_bw_share, rank_bw_gbs, host_contention, host_pace, host_wait_us;
    int comm_on_cores;
} lmc_plan_chip;

typedef struct {
    lmc_plan_chip *chips;
    int n, cap;
} lmc_plan_catalog;

/* The catalogue built into the binary (share/chips.json). */
lmc_status lmc_plan_catalog_load_default(lmc_plan_catalog *cat);
/* Adds chips from JSON text ({"chips": [...]}); a chip whose name (or
 * alias) matches an existing one replaces it. `what` names the source. */
lmc_status lmc_plan_catalog_add_json(lmc_plan_catalog *cat, const char *text, size_t n, const char *what);
lmc_status lmc_plan_catalog_add_file(lmc_plan_catalog *cat, const char *path);
/* Case-insensitive; "Ascend 910B2", "nvidia-h100" and "H100-SXM" all work
 * (vendor words and punctuation are ignored). NULL when unknown. */
const lmc_plan_chip *lmc_plan_catalog_find(const lmc_plan_catalog *cat, const char *name);
/* As find, but an unknown name is an error naming `what` and the known chips. */
lmc_status lmc_plan_catalog_get(const lmc_plan_catalog *cat, const char *name, const char *what,
                                const lmc_plan_chip **out);
void lmc_plan_catalog_free(lmc_plan_catalog *cat);
/* Canonical comparison key of a chip name: lower case, no vendor prefix,
 * letters and digits only. */
void lmc_plan_chip_key(const char *name, char *key, size_t n);

/* Files embedded at build time (share/chips.json, share/models/ *.json). */
const char *lmc_plan_embedded(const char *path, size_t *len);
/* The i-th embedded model shape's name ("llama3-405b"); 0 past the end. */
int lmc_plan_embedded_model(int i, char *name, size_t n);

/* Fills a chip marked "measure" from this machine: peak FLOP/s of the CPU
 * backend (an FMA loop), sgemm efficiency, attention efficiency, memory
 * bandwidth and capacity. threads <= 0: all cores. */
lmc_status lmc_plan_chip_measure_cpu(lmc_plan_chip *c, int threads);
/* Only the capacity: this machine's RAM size (instant). */
void lmc_plan_chip_measure_memory(lmc_plan_chip *c);
/* `ranks` ranks of `threads` threads each (<= 0: all cores) sharing this
 * host: their shares of its cores and memory, and with ranks > 1 the
 * memory bandwidth each gets and the shared-memory sum rate (the chip's
 * intra-node link), measured with one lane per rank at once (host.c);
 * chips_per_node becomes ranks. */
#define LMC_PLAN_HOST_LANES 64
lmc_status lmc_plan_chip_measure_host(lmc_plan_chip *c, int threads, int ranks);
/* The shares alone, for a host of `cores` cores (no measurement). */
void lmc_plan_chip_host_shares(lmc_plan_chip *c, int threads, int ranks, int cores);

/* ---------- models ---------- */

/* A preset (model.h), a planner shape embedded from share/models/NAME.json
 * ("llama3-405b", "gpt3-175b", "pangu-ultra-135b"), or a config.json path. */
lmc_status lmc_plan_model_load(const char *name, lmc_model_config *c);

/* ---------- dates (whole days since 1970-01-01, UTC) ---------- */

lmc_status lmc_plan_parse_date(const char *s, const char *what, int *day);
void lmc_plan_format_date(double day, char out[16]);
int lmc_plan_today(void);

/* ---------- fleets ---------- */

#define LMC_PLAN_NOW (-2147483647)

typedef struct {
    lmc_plan_chip chip; /* a copy: measurement and per-pool overrides stay local */
    long long count;
    int chips_per_node;
    int arrives; /* day, or LMC_PLAN_NOW (available at the start) */
    int slip_days; /* the delivery may come this many days late (the range covers it) */
    char name[64];
} lmc_plan_pool;

typedef struct {
    lmc_plan_pool *pools;
    int n;
} lmc_plan_fleet;

/* "8xH100", "8xH100,16xA100" or a FLEET.json path:
 *   {"pools": [{"chip": "910B2", "count": 30000, "chips_per_node": 8,
 *               "arrives": "2026-03-01", "name": "phase 2"}, ...]}
 * Arrival dates before start_day are an error. */
lmc_status lmc_plan_fleet_load(const lmc_plan_catalog *cat, const char *spec, int start_day, lmc_plan_fleet *f);
lmc_status lmc_plan_fleet_parse_json(const lmc_plan_catalog *cat, const char *text, size_t n, const char *what,
                                     int start_day, lmc_plan_fleet *f);
void lmc_plan_fleet_free(lmc_plan_fleet *f);
/* The pools on hand by `day` (INFINITY: all), merged by chip kind and node
 * size, since replicas of one kind may span deliveries. Fills groups and
 * counts (LMC_PLAN_MAX_POOLS each); returns the number of groups. */
int lmc_plan_fleet_on_hand(const lmc_plan_fleet *f, double day, lmc_plan_pool *groups, long long *counts);

/* ---------- the job and a layout ---------- */

typedef lmc_recompute lmc_plan_recompute; /* the trainer's --recompute */

typedef struct {
    lmc_model_config model;
    int seq;                   /* tokens per sequence */
    long long global_batch;    /* sequences per optimizer step */
    int bf16;                  /* 1: bf16 mixed precision (fp32 master + Adam); 0: fp32 */
    int flash;                 /* fused attention: no (T x T) scores kept (default 1) */
    int dropout;               /* dropout masks kept for backward (default 0) */
    int seq_parallel;          /* Megatron sequence parallelism with tp > 1 (default 1) */
    double tp_overlap;         /* fraction of tensor-parallel traffic hidden by compute */
    double dp_overlap;         /* fraction of the last backward that hides the gradient sync */
    double mem_reserve;        /* fraction of chip memory kept back (allocator, runtime) */
    int ep;                    /* expert parallelism (lmc train --ep): data-parallel ranks sharing a model's
                                  experts, E / ep each, tokens exchanged by all-to-all; 1: none */
} lmc_plan_job;

/* Defaults for everything but model/seq/global_batch. */
void lmc_plan_job_defaults(lmc_plan_job *job);
/* A token batch in the spirit of GPT-3's table when none is given. */
long long lmc_plan_default_batch(const lmc_model_config *c, int seq);

typedef struct {
    int dp, tp, pp, vpp; /* vpp: virtual stages per pipeline rank (interleaving) */
    int micro_batch;     /* sequences per micro-batch */
    int zero;            /* ZeRO stage 0..3 */
    lmc_plan_recompute recompute;
} lmc_plan_layout;

/* ---------- the cost model (cost.c) ---------- */

typedef struct {
    double weights, grads, optim, activations, logits, buffers; /* bytes per chip */
    double startup;  /* lmc train: the host copy of the starting weights, alive until uploaded */
    double overhead; /* lmc train: the process itself (binary, libraries, MPI) */
    double total;    /* the peak: every part above at once */
    double usable;   /* bytes the chip offers */
    int trainer;     /* 1: what lmc train allocates (the cpu chip); 0: the generic mixed-precision model */
    int stage;       /* the pipeline rank these figures are for: the one needing the most */
} lmc_plan_mem;

/* Activation bytes of one transformer layer for one micro-batch of b
 * sequences on one chip of a tp-way group (Korthikanti et al. 2022, with
 * GQA, SwiGLU, flash attention and dropout as switches). */
double lmc_plan_act_bytes_layer(const lmc_plan_job *job, int b, int tp, lmc_plan_recompute rc);
/* Per-chip memory of a layout on a chip, on the pipeline stage that needs
 * the most (microbatches: per replica per step); returns 1 when it fits. On
 * the `cpu` chip it is lmc_plan_trainer_stage_memory (what lmc train
 * allocates); elsewhere the generic model (docs/planner.md). */
int lmc_plan_memory(const lmc_plan_job *job, const lmc_plan_chip *chip, const lmc_plan_layout *l,
                    int microbatches, lmc_plan_mem *m);

/* Per-rank peak memory of `lmc train` on the CPU backend (memory.c;
 * docs/zero_memory.md): micro-batches of batch x seq tokens, `ranks`
 * data-parallel ranks, ZeRO stage 0..3, recomputation. Everything is fp32
 * (bf16 only rounds matmul inputs) and host memory, so all of it is RSS.
 * Sets every part and total; usable is left 0. */
lmc_status lmc_plan_trainer_memory(const lmc_model_config *c, int batch, int seq, int ranks, int zero,
                                   lmc_plan_recompute rc, lmc_plan_mem *m);
/* The same for any layout lmc train runs: pipeline rank `stage` (tensor-
 * parallel rank 0) of tp x pp x dp ranks with --grad-accum grad_accum: its
 * part of the model (lmc_layout_build_chunks over lmc_pipeline_cut's cut),
 * ZeRO over the dp ranks, the activation sets its schedule holds
 * (lmc_plan_act_sets), each with the logits on the last stage, and
 * sequence parallelism when job->seq_parallel and tp > 1. */
lmc_status lmc_plan_trainer_stage_memory(const lmc_plan_job *job, const lmc_plan_layout *l, int grad_accum,
                                         int stage, lmc_plan_mem *m);
/* 1 when lmc train runs the layout with --grad-accum grad_accum (the rules
 * it checks before step 1: tp divides the heads, kv heads, MLP and padded
 * vocabulary; pp x vpp <= layers; grad-accum >= pp, a multiple of pp with
 * vpp; ZeRO-3 over >= 2 data-parallel ranks; sequence-parallel rows split
 * evenly); else 0 and `why` (n bytes) says which rule. */
int lmc_plan_trainer_runs(const lmc_plan_job *job, const lmc_plan_layout *l, int grad_accum, char *why, size_t n);
/* Activation sets pipeline rank `rank` holds (src/train/pipeline.c): its
 * warm-up forwards + 1 (1F1B: pp - rank; interleaved: 2 (pp - rank - 1) +
 * (vpp - 1) pp + 1 chunk-sized sets), at most cap (micro-batches x vpp). */
int lmc_plan_act_sets(int pp, int vpp, int rank, long long cap);
/* The pipeline bubble's share of the schedule: (p-1)/(m+p-1) for 1F1B,
 * (p-1)/(v m + p-1) interleaved (Narayanan et al. 2021, sec. 2.2). */
double lmc_plan_bubble_fraction(int pp, int vpp, long long microbatches);
/* 1 when the chip is lmc's own CPU backend (the catalogue's `cpu`). */
int lmc_plan_chip_is_cpu(const lmc_plan_chip *chip);

/* Collectives over n ranks on links of bw bytes/s (one direction) with a
 * per-step latency lat seconds: ring algorithms (Patarasuk & Yuan 2009;
 * Thakur et al. 2005). bytes is the full buffer size. */
double lmc_plan_allreduce_s(double bytes, int n, double bw, double lat);
double lmc_plan_reduce_scatter_s(double bytes, int n, double bw, double lat);
double lmc_plan_allgather_s(double bytes, int n, double bw, double lat);
/* A collective over n ranks spaced `stride` chips apart on nodes of cpn
 * chips: a ring inside each node, then rings between nodes, each chip of a
 * node carrying its share through its own NIC (NCCL's hierarchy).
 * factor: 2 for all-reduce, 1 for reduce-scatter or all-gather. */
double lmc_plan_collective_s(const lmc_plan_chip *chip, int cpn, double factor, double bytes, int n, int stride);
/* One GEMM (m,k)x(k,n) at 16/32-bit: roofline of peak*eff and memory. */
double lmc_plan_gemm_s(const lmc_plan_chip *chip, int bf16, double m, double n, double k);
/* Peak FLOP/s of a chip at the job's precision. */
double lmc_plan_peak(const lmc_plan_chip *chip, int bf16);

/* Time of one micro-batch (forward + backward) on one pipeline stage, and
 * its parts. */
typedef struct {
    double compute;   /* matmuls + attention (+ recompute) */
    double memory;    /* memory-bound ops: norms, activations, residuals, loss */
    double tp_comm;   /* exposed tensor-parallel collectives */
    double ep_comm;   /* expert-parallel all-to-all (a mixture of experts with ep > 1) */
    double pp_comm;   /* stage-to-stage sends */
    double zero3;     /* exposed ZeRO-3 parameter gathers */
    double total;
} lmc_plan_mb_time;
void lmc_plan_microbatch_time(const lmc_plan_job *job, const lmc_plan_chip *chip, const lmc_plan_layout *l,
                              lmc_plan_mb_time *t);

/* ---------- evaluating and searching layouts (search.c) ---------- */

#define LMC_PLAN_MAX_POOLS 16

typedef struct {
    lmc_plan_layout layout;
    int n_pools;
    int pool_dp[LMC_PLAN_MAX_POOLS];     /* data-parallel replicas on each pool */
    int pool_mb[LMC_PLAN_MAX_POOLS];     /* micro-batches per replica on each pool */
    double pool_busy[LMC_PLAN_MAX_POOLS]; /* seconds per step that pool computes */
    char pool_chip[LMC_PLAN_MAX_POOLS][LMC_PLAN_NAME];
    int fits;
    long long chips_used;
    double step_s, tokens_per_s, mfu;
    double t_compute, t_memory, t_tp, t_pp, t_bubble, t_dp, t_opt, t_zero3, t_idle; /* seconds per step */
    lmc_plan_mem mem;    /* of the tightest pool */
    const char *bottleneck;
    char why[160];       /* why it does not fit, or notes */
} lmc_plan_result;

/* Constraints from the command line: 0 (or -1 for zero/recompute) = free. */
typedef struct {
    int tp, pp, dp, vpp, micro_batch, zero, recompute;
} lmc_plan_fix;
void lmc_plan_fix_none(lmc_plan_fix *fx);

/* Step time of one layout on the pools, micro-batches spread over replicas
 * in proportion to their speed. */
void lmc_plan_evaluate(const lmc_plan_job *job, const lmc_plan_pool *pools, const long long *counts, int n_pools,
                       const lmc_plan_layout *l, lmc_plan_result *r);
/* The best (highest tokens/s) layouts, at most max, distinct and sorted.
 * *n = 0 when nothing fits; then `why` (if not NULL, 256 bytes) says the
 * closest miss. counts: chips of each pool available now. */
lmc_status lmc_plan_search(const lmc_plan_job *job, const lmc_plan_pool *pools, const long long *counts, int n_pools,
                           const lmc_plan_fix *fx, lmc_plan_result *best, int max, int *n, char *why);

/* ---------- deliveries (timeline.c) ---------- */

typedef struct {
    double day;             /* when this segment starts (fractional days) */
    long long chips;        /* available */
    double tokens_at_start; /* tokens done when it starts */
    double tokens_per_s;    /* 0 while nothing fits; the plan's times scale */
    double scale;           /* efficiency x effective time applied to the plan (1: best case) */
    lmc_plan_result plan;   /* the layout used (plan.fits == 0: idle) */
} lmc_plan_segment;

typedef struct {
    int start_day;
    double tokens;          /* target */
    double replan_hours;    /* lost at each re-plan (checkpoint, restart) */
    lmc_plan_segment *seg;
    int n;
    double finish_day;      /* < 0 when never */
    double hours;           /* from start to finish */
} lmc_plan_timeline;

lmc_status lmc_plan_timeline_run(const lmc_plan_job *job, const lmc_plan_fleet *f, const lmc_plan_fix *fx,
                                 double tokens, int start_day, double replan_hours, lmc_plan_timeline *tl);
/* The same with each segment's tokens/s multiplied by scale(ctx, segment)
 * (expected and range: efficiency and time lost to failures). */
typedef double (*lmc_plan_scale_fn)(void *ctx, const lmc_plan_segment *seg);
lmc_status lmc_plan_timeline_run_scaled(const lmc_plan_job *job, const lmc_plan_fleet *f, const lmc_plan_fix *fx,
                                        double tokens, int start_day, double replan_hours, lmc_plan_scale_fn scale,
                                        void *ctx, lmc_plan_timeline *tl);
void lmc_plan_timeline_free(lmc_plan_timeline *tl);
/* Tokens done by a day (linear within segments). */
double lmc_plan_timeline_tokens_at(const lmc_plan_timeline *tl, double day);

/* ---------- the plot (svg.c) ---------- */

void lmc_plan_svg(const lmc_plan_timeline *tl, const char *title, lmc_sb *out);
lmc_status lmc_plan_svg_write(const lmc_plan_timeline *tl, const char *title, const char *path);

/* ---------- calibration (calib.c) ---------- */

#define LMC_PLAN_LOG_STAGES 64

/* The run a log came from, when its first object says so:
 * {"run": {"dp": 2, "tp": 1, "pp": 2, "vpp": 1, "sp": false, "zero": 1,
 *          "recompute": "none", "batch": 1, "grad_accum": 8, "seq": 128,
 *          "precision": "fp32", "threads": 1}}
 * (fields absent stay 0 / ""). */
typedef struct {
    int found;
    int dp, tp, pp, vpp, ep, sp, zero, batch, grad_accum, seq, threads;
    char recompute[16], precision[8];
    char device[16]; /* the backend the run trained on ("cpu", "cuda", "npu"; "" if absent) */
    double params;   /* the model's parameters (0 if absent) */
} lmc_plan_log_run;

/* A step of lmc's cpu backend got its cores when the process's CPU time in
 * it (the log's cpu_ms, each rank's) was at least this share of the step's
 * wall-clock time x threads; other steps are left out of the figures. */
#define LMC_PLAN_CORES_MIN 0.9
/* A calibration is fitted from at least this many such steps. */
#define LMC_PLAN_FIT_MIN_STEPS 5

typedef struct {
    int steps;        /* lines with a step time */
    int used;         /* after dropping warm-up steps */
    int kept;         /* of those, the steps that got their cores (all when not judged): the figures are theirs */
    int judged;       /* the steps carry cpu_ms of lmc's cpu backend, so each was judged */
    double share_median; /* the used steps' median share of their cores (CPU time / (step x threads)) */
    double comm_ms;   /* median comm_ms (exposed communication) of the kept steps; -1: not in the log */
    double median_ms, mean_ms, min_ms;
    double tokens_per_s, mfu; /* medians of the logged figures (0 if absent) */
    int rss_ranks;    /* entries of the last step's "rss_mb" (lmc train: the data-parallel ranks of stage 0) */
    double rss_max_mb, rss_min_mb;
    int dp_mb;        /* the last step's "mb" of the first rank (micro-batches; 0 if absent) */
    int stages;       /* entries of "pp_bubble" (pipeline stages; 0 if absent) */
    double bubble[LMC_PLAN_LOG_STAGES]; /* each stage's median waiting share of the step */
    lmc_plan_log_run run;
} lmc_plan_log_stats;

/* JSON Lines from `lmc train --log` (one object per step with at least
 * "step" and "ms"; optional "rss_mb", "mb", "cpu_ms" and "pp_bubble"
 * arrays, "comm_ms"); the first `skip` steps are warm-up; a step of the
 * cpu device whose cpu_ms shows it did not get its cores (any rank under
 * LMC_PLAN_CORES_MIN) is left out of the median, mean and least unless no
 * step got them. Errors name what:line and the field. */
lmc_status lmc_plan_log_parse(const char *text, size_t n, const char *what, int skip, lmc_plan_log_stats *st);
lmc_status lmc_plan_log_read(const char *path, int skip, lmc_plan_log_stats *st);
/* A shard in llm.c's format (magic 20240520, version 1, uint16 tokens)
 * with uniform random tokens below vocab; written atomically. */
lmc_status lmc_plan_write_random_shard(const char *path, long long tokens, int vocab, uint64_t seed);
/* Predicted step time (seconds) of `lmc train` on one chip: batch sequences
 * of seq tokens, no gradient accumulation, no parallelism. */
double lmc_plan_predict_single(const lmc_model_config *c, const lmc_plan_chip *chip, int batch, int seq, int bf16,
                               lmc_plan_result *r);

/* ---------- calibration runs (calrun.c) ---------- */

/* A short `lmc train` of model (a preset or config.json) on random tokens,
 * in this process on the CPU backend: steps steps of batch x seq tokens
 * with threads threads at precision (fp32 | bf16; NULL: fp32); the first
 * skip steps are warm-up. */
typedef struct {
    const char *model, *precision;
    int batch, seq, steps, skip, threads;
} lmc_plan_calib_opts;

typedef struct {
    lmc_plan_log_stats st; /* the steps' wall-clock times (steps, used, kept, median, mean, least; judged) */
    int threads;
} lmc_plan_calib_run;

/* Trains through lmc_train, noting the process's CPU time at each step's
 * event (lmc plan --calibrate): a step's share of its cores is the CPU
 * time since the previous event over the wall-clock time x threads, and
 * the figures are those of the steps that got them (lmc_plan_log_stats). */
lmc_status lmc_plan_calibrate(const lmc_plan_calib_opts *o, lmc_plan_calib_run *r);

/* ---------- reports (report.c) ---------- */

typedef struct {
    const lmc_plan_job *job;
    const char *model_name;
    const char *fleet_spec;
    double tokens;
    const lmc_plan_fleet *fleet;
    const lmc_plan_result *best; /* layouts at the full fleet */
    int n_best;
    const lmc_plan_timeline *tl;
    const char *model_args; /* lmc train's model flags ("--model d6 --layers 4"); NULL: --model model_name */
    const struct lmc_plan_outlook *outlook; /* expected, range and lost time (NULL: the best case only) */
} lmc_plan_report;

void lmc_plan_report_text(const lmc_plan_report *r, lmc_sb *out);
/* The command that runs a layout: "[mpirun -np N ]lmc train MODEL_ARGS
 * --seq T --batch MB --grad-accum ACC [--tp T [--sp]] [--pp P] [--vpp V]
 * [--zero Z] [--recompute R] [--precision bf16]" (flags at lmc train's
 * defaults left out; model_args NULL: "--model NAME"). */
void lmc_plan_command(const lmc_plan_job *job, const char *model_args, const lmc_plan_layout *l, int grad_accum,
                      lmc_sb *out);
/* A result's grad-accum (micro-batches per replica; with replicas on
 * several chip kinds, what --balance auto spreads: ceil(micro-batches / dp),
 * and *balance = 1). */
int lmc_plan_result_accum(const lmc_plan_job *job, const lmc_plan_result *r, int *balance);
void lmc_plan_report_json(const lmc_plan_report *r, lmc_sb *out);
const char *lmc_plan_recompute_name(lmc_plan_recompute rc);

/* One layout's memory per chip, part by part (`lmc plan --memory`). */
typedef struct {
    const lmc_plan_job *job;
    const char *model_name;
    const lmc_plan_chip *chip;
    const lmc_plan_layout *layout;
    const lmc_plan_mem *mem;
    const char *model_args; /* as in lmc_plan_report */
    int grad_accum;         /* micro-batches per replica per step */
} lmc_plan_memory_report;
void lmc_plan_memory_text(const lmc_plan_memory_report *r, lmc_sb *out);
void lmc_plan_memory_json(const lmc_plan_memory_report *r, lmc_sb *out);

/* ---------- published runs (runs.c, share/runs.json) ---------- */

typedef struct {
    char name[96];
    char chip[LMC_PLAN_NAME];
    long long chips;
    lmc_model_config model;
    char model_name[64];  /* a planner shape or preset; "" for a config object */
    int seq;
    long long global_batch; /* 0: not published (the planner's default) */
    double tokens;          /* 0: not published */
    lmc_plan_fix fix;       /* the layout the authors state; free where they do not */
    double pub_mfu;         /* published throughput as MFU in lmc's model FLOPs (F = 6N + 12Lhs) */
    const char *basis;      /* which figure gave it: "mfu", "tflops_per_chip", ... */
    int end_to_end;         /* from wall clock or GPU-hours: includes every stop of the run */
    double interruptions, interruption_days, effective_time; /* 0: not published */
    double network_gbs;     /* the run's cluster: per chip, one direction, between nodes (0: the chip's) */
} lmc_plan_run;

typedef struct {
    lmc_plan_run *runs;
    int n;
} lmc_plan_runs;

/* {"runs": [...]} as share/runs.json; every figure needs its source in the
 * run's "sources" (an error names the file, run and field otherwise). */
lmc_status lmc_plan_runs_parse(const lmc_plan_catalog *cat, const char *text, size_t n, const char *what,
                               lmc_plan_runs *rs);
lmc_status lmc_plan_runs_load(const lmc_plan_catalog *cat, const char *path, lmc_plan_runs *rs); /* NULL: built in */
void lmc_plan_runs_free(lmc_plan_runs *rs);
/* The best case of a run at its own layout (r->fits == 0: nothing fits; why says). */
lmc_status lmc_plan_run_predict(const lmc_plan_catalog *cat, const lmc_plan_run *run, lmc_plan_result *r);
/* A chip's class for efficiency figures: "A100", "H100" (H100, H800, H200, H20),
 * "Ascend" (910B*, 910C) or "" (others). */
const char *lmc_plan_chip_class(const char *chip_name);

/* Expected and range: published MFU over lmc's best case, per chip class. */
#define LMC_PLAN_MAX_RUNS 64
typedef struct {
    int n;
    char cls[LMC_PLAN_MAX_RUNS][16];
    double ratio[LMC_PLAN_MAX_RUNS]; /* published / best case; 0: not predicted */
} lmc_plan_effs;
typedef struct {
    double expected, low, high; /* factors on the best case's tokens/s */
    int runs;                   /* runs of the class behind them (0: all runs) */
    int calibrated;             /* from --calibration */
} lmc_plan_eff;
/* rl (NULL: none): a figure from wall clock or GPU-hours includes the time
 * the run lost to failures; the model's effective-time fraction for its
 * chips is taken out of it first (the plan adds lost time separately). */
struct lmc_plan_reliab;
lmc_status lmc_plan_effs_make(const lmc_plan_catalog *cat, const lmc_plan_runs *rs, const struct lmc_plan_reliab *rl,
                              lmc_plan_effs *e);
/* The effective-time fraction a run's published figure includes: the
 * model's for its chips when it is end to end, else 1. */
double lmc_plan_run_effective(const lmc_plan_run *run, const struct lmc_plan_reliab *rl);
/* The factors for a chip; skip >= 0 leaves that run out (validation). */
void lmc_plan_eff_for(const lmc_plan_effs *e, const char *chip_name, int skip, lmc_plan_eff *out);

/* ---------- lost time: failures, restarts, checkpoints (reliab.c) ---------- */

typedef struct lmc_plan_reliab {
    double rate;       /* interruptions per chip-hour */
    double restart_h;  /* detect, relaunch, reload: hours per interruption */
    double ckpt_gbs;   /* checkpoint write bandwidth, GB/s (the whole job) */
    double state_bytes_per_param; /* model state written per parameter */
    char rate_from[160], restart_from[320]; /* where the figures come from */
} lmc_plan_reliab;

/* Rate from the runs that publish interruptions; restart cost fitted to the
 * run that publishes its effective time, unless restart_h > 0 already. */
void lmc_plan_reliab_defaults(const lmc_plan_runs *rs, lmc_plan_reliab *rl);
/* For `chips` training a model of `params`: the checkpoint write time and
 * the Young/Daly interval (hours) and the effective-time fraction. */
double lmc_plan_effective(const lmc_plan_reliab *rl, double chips, double params, double *ckpt_h,
                          double *interval_h);
/* The mean restart cost (hours) of `lmc launch --log` FILE's "resumed"
 * events (lost_s less redone_s: detect, relaunch, reload, first step). */
lmc_status lmc_plan_launch_restart(const char *text, size_t n, const char *what, double *hours, int *events);

/* `lmc plan --validate` (validate.c): each run's best case at its own
 * layout, the expected figure and range, beside the published figure. */
typedef struct {
    int runs, predicted;
    int inside;      /* published inside [low, high] */
    int within25;    /* |expected / published - 1| <= 25% */
    int loo_within25; /* the same with the run left out of its own factors */
} lmc_plan_validation;
lmc_status lmc_plan_validate(const lmc_plan_catalog *cat, const lmc_plan_runs *rs, const lmc_plan_reliab *rl,
                             lmc_sb *out, lmc_plan_validation *v);

/* ---------- expected, range and lost time for a plan (outlook.c) ---------- */

typedef struct lmc_plan_outlook {
    lmc_plan_eff eff;       /* factors on the best case, weighted by the fleet's chips */
    lmc_plan_reliab rel;
    double chips, params;   /* the whole fleet */
    double mtbf_h, ckpt_h, interval_h, effective; /* at the whole fleet */
    lmc_plan_timeline expected, fast, slow; /* fast: the high factor on time; slow: the low one, deliveries late */
    int slipped;            /* some delivery may slip */
} lmc_plan_outlook;

/* Expected and range timelines beside the best case; rel must be filled
 * (lmc_plan_reliab_defaults, then any measured restart cost); calibrated
 * (NULL: from effs) gives the factors measured on the fleet's own chips. */
lmc_status lmc_plan_outlook_run(const lmc_plan_job *job, const lmc_plan_fleet *f, const lmc_plan_fix *fx,
                                double tokens, int start_day, double replan_hours, const lmc_plan_effs *effs,
                                const lmc_plan_eff *calibrated, const lmc_plan_reliab *rel, lmc_plan_outlook *o);
void lmc_plan_outlook_free(lmc_plan_outlook *o);

/* ---------- calibration files (calfile.c) ---------- */

/* The efficiency a short run on the fleet's own chips reached relative to
 * lmc's best case (lmc plan --calibrate-log ... --save-calibration FILE);
 * lmc plan --calibration FILE uses it instead of the published runs'. */
#define LMC_PLAN_CALIB_FIGS 11 /* the figures lmc_plan_chip_measure_cpu sets */
typedef struct {
    char chip[LMC_PLAN_NAME];
    char model[64];
    double params;
    int steps;
    double measured_ms, predicted_ms; /* median step of the log; lmc's best case */
    lmc_plan_eff eff;                 /* expected = predicted / measured; low, high from the steps' spread */
    /* the exposed data-parallel communication, when the log had it and the
     * layout some: comm_eff = predicted / measured (0: not fitted), and eff
     * is then the rest of the step's (compute) */
    double comm_eff, comm_measured_ms, comm_predicted_ms;
    /* a measured chip (cpu): the figures the fit was made against, at
     * `threads` threads (0: none kept) */
    int threads;
    double figs[LMC_PLAN_CALIB_FIGS];
} lmc_plan_calib;
/* Keeps a measured chip's figures in the calibration (threads: those it
 * was measured with); later plans at the same threads use them instead of
 * measuring again, so the factor and the prediction see the same chip. */
void lmc_plan_calib_keep_chip(lmc_plan_calib *c, const lmc_plan_chip *chip, int threads);
/* 1 and the kept figures set on the chip (measured) when the calibration
 * has them for this many threads and the chip is measured here; else 0. */
int lmc_plan_calib_use_chip(const lmc_plan_calib *c, lmc_plan_chip *chip, int threads);

/* From a log's step times (the steps that got their cores) against lmc's
 * best-case step predicted_s, of which comm_s is exposed data-parallel
 * communication: without communication in both, expected = predicted /
 * median, high = predicted / least, low = predicted / (2 median - least);
 * with it, the same for the step less the communication, and comm_eff =
 * comm_s / the log's median comm_ms. */
void lmc_plan_calib_fit(const lmc_plan_log_stats *st, double predicted_s, double comm_s, lmc_plan_calib *c);
/* A fit needs LMC_PLAN_FIT_MIN_STEPS steps that got their cores; else an
 * error naming the log, how many did and why it is not fitted. */
lmc_status lmc_plan_calib_check_steps(const lmc_plan_log_stats *st, const char *log);
/* The calibrated step time (seconds) of a best-case step of step_s, comm_s
 * of it exposed data-parallel communication: the rest over eff.expected,
 * the communication over comm_eff (at the best case when not fitted). */
double lmc_plan_calib_predict(const lmc_plan_calib *c, double step_s, double comm_s);
lmc_status lmc_plan_calib_save(const lmc_plan_calib *c, const char *path);
lmc_status lmc_plan_calib_parse(const char *text, size_t n, const char *what, lmc_plan_calib *c);
lmc_status lmc_plan_calib_load(const char *path, lmc_plan_calib *c);
/* The calibration is for every pool's chip of the fleet; else an error naming the file and the chips. */
lmc_status lmc_plan_calib_check_fleet(const lmc_plan_calib *c, const lmc_plan_fleet *f, const char *what);
/* A log's "run" line agrees with the chip and model it calibrates: its
 * device is the chip's kind (cpu: lmc's cpu chip; cuda: NVIDIA; npu:
 * Ascend) and its parameter count the model's (within 0.5%). */
lmc_status lmc_plan_calib_check_log(const lmc_plan_log_run *run, const lmc_plan_chip *chip, double params,
                                    const char *log, const char *model);

#endif
