/* internal.h: pieces of the cost model shared by src/plan/ files only. */
#ifndef LMC_PLAN_INTERNAL_H
#define LMC_PLAN_INTERNAL_H

#include "lmc/plan.h"
#include "backend/backend.h"

/* Latency of one hop inside a node (NVLink/HCCS plus a kernel launch), us,
 * for a chip whose entry gives no intra_latency_us. */
#define LMC_PLAN_INTRA_LAT_US 3.0

/* A chip's latency of one hop inside a node, seconds (a chip built by
 * hand with none: LMC_PLAN_INTRA_LAT_US). */
static inline double lmc_plan_intra_lat_s(const lmc_plan_chip *c)
{
    return (c->intra_latency_us > 0 ? c->intra_latency_us : LMC_PLAN_INTRA_LAT_US) * 1e-6;
}
/* Fraction of the datasheet memory bandwidth streaming kernels reach
 * (STREAM-like copies reach 80-90% on HBM parts). */
#define LMC_PLAN_MEM_EFF 0.8
/* Kernels launched per layer per micro-batch, forward and backward (about
 * 10 forward, 20 backward in llm.c and Megatron). */
#define LMC_PLAN_KERNELS 30

/* ---------- calibration (calib.c) ---------- */

/* steps, used, kept, median, mean and least of n step times (ms) after
 * `skip` warm-up steps (at least one used), over the steps whose share of
 * their cores (share: NULL or < 0 when not known) is at least
 * LMC_PLAN_CORES_MIN, or over all used when none is; comm (NULL: none) the
 * median of those steps' comm_ms. Returns the steps dropped. */
int lmc_plan_step_times(const double *ms, const double *share, const double *comm, int n, int skip,
                        lmc_plan_log_stats *st);

/* ---------- pipelines (pipeline.c) ---------- */

/* The most virtual stages (pp x vpp) the planner cuts a model into. */
#define LMC_PLAN_MAX_VSTAGES 1024

/* Where a pipeline cuts the layers: lmc_train's own cut (lmc_pipeline_cut,
 * balanced by cost) into pp x vpp virtual stages; virtual stage s holds
 * layers [begin[s], begin[s + 1]) and lives on pipeline rank s mod pp. */
typedef struct {
    int pp, vpp;
    int begin[LMC_PLAN_MAX_VSTAGES + 1];
} lmc_plan_cut;

/* One pipeline rank's share of the cut. */
typedef struct {
    int layers;    /* all its chunks together */
    int max_chunk; /* the largest chunk: the layers of one activation set */
    int first;     /* holds the embeddings (rank 0) */
    int last;      /* holds the final norm, the head and the loss (rank pp - 1) */
} lmc_plan_stage;

/* The cut for a layout (pp = 1: all layers in one stage). Errors when
 * pp x vpp exceeds the layers. */
lmc_status lmc_plan_cut_make(const lmc_plan_job *job, int pp, int vpp, lmc_plan_cut *cut);
void lmc_plan_cut_stage(const lmc_plan_cut *cut, int rank, lmc_plan_stage *st);
/* Chunk c of pipeline rank r as [bounds[2c], bounds[2c + 1]) (the
 * trainer's lmc_pipe_bounds). */
void lmc_plan_cut_bounds(const lmc_plan_cut *cut, int rank, int *bounds);
/* Parameters on pipeline rank r, and on the rank holding the most, before
 * tensor parallelism (a tied head counts on both end stages: both hold it). */
double lmc_plan_stage_params(const lmc_model_config *c, const lmc_plan_cut *cut, int rank);
double lmc_plan_max_stage_params(const lmc_model_config *c, const lmc_plan_cut *cut);
double lmc_plan_layer_params(const lmc_model_config *c);

/* ---------- mixtures of experts (moe.c) ---------- */

/* Routed experts' parameters (all layers), and the parameters one token
 * uses (the total less the experts it is not routed to). */
double lmc_plan_expert_params(const lmc_model_config *c);
double lmc_plan_active_params(const lmc_model_config *c);
/* The MLP width a token computes, over the layers (dense: ffn_dim; with
 * experts top_k + shared experts' widths). */
double lmc_plan_ffn_active(const lmc_model_config *c);
/* Routed experts' parameters on pipeline rank r (before --ep). */
double lmc_plan_stage_expert_params(const lmc_model_config *c, const lmc_plan_cut *cut, int rank);
/* Bytes one rank sends by all-to-all per micro-batch (job->ep ranks per
 * expert group; 0 without), and their time on the chip's links. */
double lmc_plan_a2a_bytes(const lmc_plan_job *job, int micro_batch, lmc_plan_recompute rc);
double lmc_plan_a2a_s(const lmc_plan_job *job, const lmc_plan_chip *chip, int cpn, const lmc_plan_layout *l);
/* Forward GEMM seconds of one layer's MLP for n tokens, over the layers
 * (a mixture of experts: router, E / ep experts over balanced rows,
 * shared experts). */
double lmc_plan_mlp_fwd_s(const lmc_plan_job *job, const lmc_plan_chip *chip, double n, int tp);

/* The cost model with the cut given (search.c makes it once per shape). */
void lmc_plan_evaluate_cut(const lmc_plan_job *job, const lmc_plan_pool *pools, const long long *counts,
                           int n_pools, const lmc_plan_layout *l, const lmc_plan_cut *cut, lmc_plan_result *r);
int lmc_plan_memory_cut(const lmc_plan_job *job, const lmc_plan_chip *chip, const lmc_plan_layout *l,
                        int microbatches, const lmc_plan_cut *cut, lmc_plan_mem *m);
lmc_status lmc_plan_trainer_stage_memory_cut(const lmc_plan_job *job, const lmc_plan_layout *l, int grad_accum,
                                             int stage, const lmc_plan_cut *cut, lmc_plan_mem *m);
/* Microbatch time with the pool's chips-per-node (pipeline links). */
void lmc_plan_microbatch_time_cut(const lmc_plan_job *job, const lmc_plan_chip *chip, int cpn,
                                  const lmc_plan_layout *l, const lmc_plan_cut *cut, lmc_plan_mb_time *t);
/* Exposed data-parallel gradient sync per step, and the optimizer step. */
double lmc_plan_dp_sync_s(const lmc_plan_job *job, const lmc_plan_chip *chip, int cpn, const lmc_plan_layout *l,
                          const lmc_plan_cut *cut, int cross_pools, const lmc_plan_mb_time *mb);
double lmc_plan_optimizer_s(const lmc_plan_job *job, const lmc_plan_chip *chip, const lmc_plan_layout *l,
                            const lmc_plan_cut *cut);
/* xgroup.c: the exposed sync per step of replicas on several pools (lmc
 * train's hierarchical communicator: groups, host staging, the leaders over
 * the network; twice, as a mixed job runs ZeRO-1). */
double lmc_plan_xgroup_sync_s(const lmc_plan_job *job, const lmc_plan_pool *pools, const int *pool_dp,
                              const int *pool_mb, int n, const lmc_plan_layout *l, const lmc_plan_cut *cut,
                              const lmc_plan_mb_time *mb);

/* measure.c: the three GEMMs of a training step's linear layer on `tokens`
 * rows, C = 768 in, 3C out (forward, input gradient, weight gradient), on
 * operands a, b and output c, the backend synchronised after. */
void lmc_plan_gemm3(lmc_backend *be, const float *a, const float *b, float *c, int tokens, lmc_dtype prec);

#endif
