/* cuda_common.cuh: private declarations shared by the CUDA backend's op files.
 *
 * Every op enqueues work on the backend's one stream and returns; nothing
 * waits for the device except download, sync, free and alloc. Kernels do not
 * fail by contract, but the device can (a bad pointer, an out-of-memory
 * scratch grow): the first such error is kept in the backend and printed
 * once, and lmc_cuda_error() returns it (see cuda_backend.h).
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
}

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
    int failed;
    char err[512];
} lmc_cuda;

static inline lmc_cuda *cu_of(lmc_backend *be) { return (lmc_cuda *)be->impl; }

/* Records the first device error (sticky) and prints it once; returns 0 on
 * error so call sites read `if (!cu_ok(be, e, "what")) return;`. */
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
/* Makes this backend's device current (a process may also hold a NCCL
 * communicator or another backend that moved it). */
void cu_enter(lmc_backend *be);

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

double cu_peak_flops(lmc_backend *be, lmc_dtype prec);
void cu_matmul(lmc_backend *be, float *c, const float *a, const float *b, const lmc_gemm *g);
void cu_bias_grad(lmc_backend *be, float *dbias, const float *dout, int m, int n);
void cu_embed_forward(lmc_backend *be, float *out, const int *tokens, const int *pos0,
                      const float *wte, const float *wpe, int B, int T, int C);
void cu_embed_backward(lmc_backend *be, float *dwte, float *dwpe, const float *dout,
                       const int *tokens, int B, int T, int C);
void cu_layernorm_forward(lmc_backend *be, float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int N, int C, float eps);
void cu_layernorm_backward(lmc_backend *be, float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, const float *mean, const float *rstd,
                           int N, int C);
void cu_rmsnorm_forward(lmc_backend *be, float *out, float *rstd, const float *inp, const float *w,
                        int N, int C, float eps);
void cu_rmsnorm_backward(lmc_backend *be, float *dinp, float *dw, const float *dout, const float *inp,
                         const float *w, const float *rstd, int N, int C);
void cu_gelu_forward(lmc_backend *be, float *out, const float *inp, size_t n);
void cu_gelu_backward(lmc_backend *be, float *dinp, const float *inp, const float *dout, size_t n);
void cu_swiglu_forward(lmc_backend *be, float *out, const float *inp, int N, int H);
void cu_swiglu_backward(lmc_backend *be, float *dinp, const float *inp, const float *dout, int N, int H);
void cu_rope(lmc_backend *be, float *qkv, const int *pos0, int B, int T, int NH, int NKV, int HS,
             float theta, int inverse);
void cu_attention_forward(lmc_backend *be, float *out, float *lse, const float *qkv, int B, int T,
                          int NH, int NKV, int HS);
void cu_attention_backward(lmc_backend *be, float *dqkv, const float *dout, const float *out,
                           const float *lse, const float *qkv, int B, int T, int NH, int NKV, int HS);
void cu_attention_decode(lmc_backend *be, float *out, const float *q, const float *kcache,
                         const float *vcache, const int *len, int B, int maxT, int NH, int NKV, int HS);
void cu_kv_store(lmc_backend *be, float *kcache, float *vcache, const float *k, const float *v, size_t stride,
                 const int *pos0, int B, int T, int maxT, int D);
void cu_linear(lmc_backend *be, float *out, const float *inp, const void *w, lmc_dtype wtype, const float *scale,
               const float *bias, int M, int N, int K, int accumulate);
void cu_add(lmc_backend *be, float *out, const float *a, const float *b, size_t n);
void cu_scale(lmc_backend *be, float *x, float s, size_t n);
void cu_xent(lmc_backend *be, float *losses, float *logits, const int *targets, int N, int V, int Vp,
             float dloss, int backward);
void cu_sum(lmc_backend *be, float *out, const float *x, size_t n, int squares);
void cu_adamw(lmc_backend *be, float *p, const float *g, float *m, float *v, size_t n,
              const lmc_adamw_hp *hp);
void cu_cast(lmc_backend *be, void *dst, lmc_dtype dst_type, const void *src, lmc_dtype src_type,
             size_t n);

/* Shared by matmul (bias / GELU epilogues done by hand) and elementwise. */
void cu_gelu_inplace_keep(lmc_backend *be, float *c, float *pre, size_t n);
void cu_cast_f32_bf16(lmc_backend *be, uint16_t *dst, const float *src, size_t n);
/* dst (rows, ld) bf16 = src (rows, cols) fp32, pad columns zeroed (ld >= cols) */
void cu_cast_f32_bf16_pad(lmc_backend *be, uint16_t *dst, const float *src, int rows, int cols, int ld);

#endif
