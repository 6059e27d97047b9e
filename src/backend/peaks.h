/* peaks.h: peak FLOP/s per precision, one table for lmc plan and the
 * backends' MFU: the planner's chip catalogue (share/chips.json, built in),
 * with its sources. */
#ifndef LMC_BACKEND_PEAKS_H
#define LMC_BACKEND_PEAKS_H

#include "backend/backend.h"
#include "lmc/plan.h"

/* Whether the CUDA backend runs LMC_F32 matmuls on TF32 tensor cores
 * (CUBLAS_COMPUTE_32F_FAST_TF32) rather than in plain fp32
 * (CUBLAS_COMPUTE_32F). 0: plain fp32, so its results match the CPU's
 * tightly. Its fp32 MFU and lmc plan's fp32 predictions for NVIDIA chips
 * follow it: the chip's fp32 peak, or its tf32 one when set. */
#define LMC_CUDA_F32_TF32 0

/* Whether lmc's backend for a chip runs fp32 matmuls on TF32 tensor cores:
 * NVIDIA chips LMC_CUDA_F32_TF32; the others none (Ascend: cubeMathType
 * KEEP_DTYPE; the CPU: fp32 FMA; AMD: no lmc backend). */
int lmc_chip_f32_tf32(const lmc_plan_chip *c);

/* A chip's dense peak FLOP/s at a matmul precision: bf16, or fp32 (its
 * TF32 figure where lmc_chip_f32_tf32 says so and the chip has one). */
double lmc_chip_peak(const lmc_plan_chip *c, lmc_dtype prec);

/* The same for a chip the built-in catalogue names ("NVIDIA H100 80GB
 * HBM3", "Ascend910B2": lmc_plan_catalog_find); 0 when it does not know it. */
double lmc_chip_peak_named(const char *name, lmc_dtype prec);

#endif
