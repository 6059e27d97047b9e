/* cuda_backend.h: the CUDA backend's entry points for C callers (backend.c,
 * tests/gpu). Everything else goes through the ops table in backend.h. */
#ifndef LMC_CUDA_BACKEND_H
#define LMC_CUDA_BACKEND_H

#include "backend/backend.h"

/* Opens CUDA device `device` (a negative device: the launcher's local rank,
 * OMPI_COMM_WORLD_LOCAL_RANK / SLURM_LOCALID / LOCAL_RANK, modulo the device
 * count). Fails with a message naming the device when it does not exist. */
lmc_status lmc_cuda_backend_open(int device, lmc_backend **out);

/* The pending error (lmc_backend_error): the first an op met since the
 * last lmc_backend_check, NULL when none. */
const char *lmc_cuda_error(lmc_backend *be);

/* on: bf16 matmuls with gelu set use cuBLASLt's fused GELU(_AUX) epilogue;
 * off (the default): the GEMM, then this backend's own tanhf GELU kernel,
 * as fp32 matmuls always do. Whether cuBLASLt's GELU is within the
 * conformance tolerance (1e-4) is not documented: tests/gpu/test_cuda_ops
 * measures it, and the default can change once a GPU has said so. On, the
 * backend no longer meets gelu_forward's contract of reproducing the
 * epilogue's bits (activation recomputation would differ slightly). */
void lmc_cuda_set_fused_gelu(lmc_backend *be, int on);

/* The device of the CUDA backend this process opened last, -1 before any:
 * the NCCL communicator binds to it (one process per GPU, whichever GPU
 * --device cuda:N named). */
int lmc_cuda_backend_device(void);

#endif
