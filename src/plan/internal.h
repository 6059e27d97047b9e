/* internal.h: pieces of the cost model shared by src/plan/ files only. */
#ifndef LMC_PLAN_INTERNAL_H
#define LMC_PLAN_INTERNAL_H

#include "lmc/plan.h"

/* Latency of one hop inside a node (NVLink/HCCS plus a kernel launch). */
#define LMC_PLAN_INTRA_LAT 3e-6
/* Fraction of the datasheet memory bandwidth streaming kernels reach
 * (STREAM-like copies reach 80-90% on HBM parts). */
#define LMC_PLAN_MEM_EFF 0.8
/* Kernels launched per layer per micro-batch, forward and backward (about
 * 10 forward, 20 backward in llm.c and Megatron). */
#define LMC_PLAN_KERNELS 30

/* Parameters on the busiest pipeline stage, before tensor parallelism. */
double lmc_plan_stage_params(const lmc_model_config *c, int pp);
double lmc_plan_layer_params(const lmc_model_config *c);


/* Exposed data-parallel gradient sync per step, and the optimizer step. */
double lmc_plan_dp_sync_s(const lmc_plan_job *job, const lmc_plan_chip *chip, int cpn, const lmc_plan_layout *l,
                          int cross_pools, const lmc_plan_mb_time *mb);
double lmc_plan_optimizer_s(const lmc_plan_job *job, const lmc_plan_chip *chip, const lmc_plan_layout *l);
/* Microbatch time with the pool's chips-per-node (pipeline links). */
void lmc_plan_microbatch_time_cpn(const lmc_plan_job *job, const lmc_plan_chip *chip, int cpn,
                                  const lmc_plan_layout *l, lmc_plan_mb_time *t);

#endif
