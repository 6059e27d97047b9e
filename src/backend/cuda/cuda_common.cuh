/* cuda_common.cuh: private declarations shared by the CUDA backend's op files.
 *
 * Every op enqueues work on the backend's one stream and returns; nothing
 * waits for the device except download, sync, free and alloc. An op can
 * fail (a bad pointer, an out-of-memory scratch grow, a shape it cannot
 * run, a cuBLASLt status): the first such error is recorded in the backend
 * against the op that met it (lmc_backend_fail), and the caller's
 * lmc_backend_check returns it.
 *
 * The same sources build for a host emulator (tests/gpu/emu) when
 * LMC_CUDA_EMU is defined: that is why kernels are launched through
 * CU_LAUNCH, shared memory is declared through CU_SHARED (static) and
 * CU_DYN_SMEM (dynamic), so the emulator can size, limit and poison it, and
 * only the intrinsics the emulator provides are used (__syncthreads,
 * __shfl_xor_sync, no atomics).
 */
#ifndef LMC_CUDA_COMMON_CUH
#define LMC_CUDA_COMMON_CUH

#ifndef LMC_CUDA_EMU
#include <cublasLt.h>
#include <cuda_runtime.h>
#endif

#include <math.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/peaks.h"
}

/* How LMC_F32 matmuls run (backend/peaks.h: LMC_CUDA_F32_TF32): cuBLASLt's
 * compute type, and the words `lmc devices` states it in. */
#if LMC_CUDA_F32_TF32
#define CU_F32_COMPUTE CUBLAS_COMPUTE_32F_FAST_TF32
#define CU_F32_MODE "on TF32 tensor cores (CUBLAS_COMPUTE_32F_FAST_TF32)"
#else
#define CU_F32_COMPUTE CUBLAS_COMPUTE_32F
#define CU_F32_MODE "in plain fp32, no TF32 (CUBLAS_COMPUTE_32F)"
#endif

#ifndef LMC_CUDA_EMU
#define CU_LAUNCH(kern, grid, block, smem, stream, ...) \
    kern<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)
#define CU_DYN_SMEM(type, name)                                  \
    extern __shared__ __align__(16) unsigned char cu_dyn_smem_[]; \
    type *name = reinterpret_cast<type *>(cu_dyn_smem_)
/* CU_SHARED(float, sh, [8][33]) is __shared__ float sh[8][33] */
#define CU_SHARED(type, name, dims) __shared__ type name dims
#endif

/* ---------- backend state ---------- */

#define CU_STAGE_SLOTS 2
#define CU_STAGE_BYTES ((size_t)4 << 20)
#define CU_LT_WS_BYTES ((size_t)32 << 20)
#define CU_ALGO_CACHE 64

typedef struct {
    /* the problem: shapes, transposes, precision, epilogue, pointer alignments */
    int m, n, k, ta, tb, prec, epi, beta1, align;
    int valid;
    cublasLtMatmulAlgo_t algo;
} cu_algo_entry;

typedef struct {
    lmc_backend_ops ops; /* be->ops points here */
    int device;
    char name[24];      /* "cuda:N", what be->name points to */
    char dev_name[256]; /* "NVIDIA H200" */
    int sm_count, cc_major, cc_minor, clock_khz;
    size_t smem_optin;  /* max dynamic shared memory per block */
    int mempools;       /* cudaMallocAsync available (cudaDevAttrMemoryPoolsSupported) */
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *lt_ws;        /* cuBLASLt workspace, fixed size */
    void *scratch;      /* per-op temporaries, grown on demand (stream ordered) */
    size_t scratch_bytes;
    void *stage[CU_STAGE_SLOTS]; /* pinned host buffers for asynchronous uploads */
    cudaEvent_t stage_done[CU_STAGE_SLOTS];
    int stage_next;
    cu_algo_entry algos[CU_ALGO_CACHE];
    int algo_next;
    int fuse_gelu; /* bf16 matmuls use cuBLASLt's GELU epilogue (off by default, see matmul.cu) */
    lmc_op op;          /* the op running now (cu_enter): errors are recorded against it */
    lmc_op last_kernel; /* the last op that queued device work, named by errors found at sync */
} lmc_cuda;

static inline lmc_cuda *cu_of(lmc_backend *be) { return (lmc_cuda *)be->impl; }

/* Records a device error against the current op (the first since the last
 * check is kept); returns 0 on error so call sites read
 * `if (!cu_ok(be, e, "what")) return;`. */
int cu_ok(lmc_backend *be, cudaError_t e, const char *what);
/* Records a failure that is not a cudaError_t (cuBLASLt, unsupported shape). */
void cu_fail(lmc_backend *be, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Checks the launch just made. */
static inline int cu_launched(lmc_backend *be, const char *what)
{
    return cu_ok(be, cudaGetLastError(), what);
}
/* Device memory for one op's temporaries, valid until the next call: grown
 * with the stream-ordered allocator so in-flight kernels keep the old block.
 * NULL (error recorded) when the device is out of memory. */
void *cu_scratch(lmc_backend *be, size_t bytes);
/* At the start of every op: makes this backend's device current (a process
 * may also hold a NCCL communicator or another backend that moved it) and
 * notes the op, which errors then name. */
void cu_enter(lmc_backend *be, lmc_op op);

/* Grid size for a grid-stride loop over n items. */
static inline unsigned cu_grid(size_t n, int threads)
{
    size_t g = (n + (size_t)threads - 1) / (size_t)threads;
    if (g > 65536)
        g = 65536;
    return g ? (unsigned)g : 1u;
}

static inline size_t cu_align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* ---------- device helpers ---------- */

/* f32 -> bf16 bits, round to nearest even; NaN stays NaN (quiet), exactly as
 * the CPU backend's bf16_round so both produce the same bits. */
__host__ __device__ static inline uint16_t cu_f32_to_bf16(float x)
{
    union { float f; uint32_t u; } v;
    v.f = x;
    if ((v.u & 0x7f800000u) == 0x7f800000u)
        return (uint16_t)((v.u & 0xffffu) ? ((v.u | 0x10000u) >> 16) : (v.u >> 16));
    v.u += 0x7fffu + ((v.u >> 16) & 1u);
    return (uint16_t)(v.u >> 16);
}

__host__ __device__ static inline float cu_bf16_to_f32(uint16_t h)
{
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}

/* xor-butterfly sums: every lane ends with the same bits (a+b == b+a), and
 * the order is fixed, so reductions are deterministic. */
template <typename T> __device__ static inline T cu_warp_sum(T v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

template <typename T> __device__ static inline T cu_warp_max(T v)
{
    for (int o = 16; o > 0; o >>= 1) {
        T w = __shfl_xor_sync(0xffffffffu, v, o);
        v = w > v ? w : v;
    }
    return v;
}

/* Sum over the block (blockDim.x a multiple of 32); every thread gets it.
 * sh: 32 elements of shared memory owned by the caller. */
template <typename T> __device__ static inline T cu_block_sum(T v, T *sh)
{
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = cu_warp_sum(v);
    __syncthreads(); /* sh may still be read by a previous call */
    if (lane == 0)
        sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : (T)0;
    return cu_warp_sum(v);
}

template <typename T> __device__ static inline T cu_block_max(T v, T *sh)
{
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = cu_warp_max(v);
    __syncthreads();
    if (lane == 0)
        sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : (T)-INFINITY;
    return cu_warp_max(v);
}

/* ---------- deterministic column sums (weight and bias gradients) ----------
 * Rows are split into a fixed number of chunks (a function of the shape
 * only); each chunk's column sums go to a partial row, then the partial rows
 * are added in order. Same shape, same bits, no atomics. */
int cu_colsum_chunks(int rows);

/* ---------- ops, one file per family ---------- */

/* Every op of the table is cu_<op> (cuda.cu fills the table from this list). */
#define CU_DECLARE_(kind, name, ret, params) ret cu_##name params;
LMC_BACKEND_OPS(CU_DECLARE_)
#undef CU_DECLARE_

/* supports for the attention ops: head size, grouping, shared memory */
int cu_attention_supports(lmc_backend *be, const lmc_op_query *q, char *why, size_t why_len);

/* Shared by matmul (bias / GELU epilogues done by hand) and elementwise. */
void cu_gelu_inplace_keep(lmc_backend *be, float *c, float *pre, size_t n);
void cu_cast_f32_bf16(lmc_backend *be, uint16_t *dst, const float *src, size_t n);
/* dst (rows, ld) bf16 = src (rows, cols) fp32, pad columns zeroed (ld >= cols) */
void cu_cast_f32_bf16_pad(lmc_backend *be, uint16_t *dst, const float *src, int rows, int cols, int ld);

#endif
