/* cuda_emu.h: just enough of CUDA, cuBLASLt and CUB to run the CUDA
 * backend's sources on the host (tests/gpu/emu/run.sh).
 *
 * Why: the development machine has no GPU, so this is the only way to
 * execute the kernels' index arithmetic, tiling, masking and reductions
 * before a GPU session. It is strict on purpose: where a GPU would fail or
 * give garbage, so does the emulation (each rule has a deliberately broken
 * case in test_emu.cpp that it catches):
 *  - each CUDA thread is a fiber with its own stack, so __syncthreads and
 *    warp shuffles are real rendezvous; a shuffle's mask must name only
 *    live lanes, its own lane and its partner (emu_exec.cpp);
 *  - blocks run one at a time in a shuffled order, and shared memory (static
 *    and dynamic) is poisoned (NaN bytes) before every block;
 *  - shared memory is limited as on the device: static + dynamic <= 48 KB
 *    unless cudaFuncSetAttribute raised the kernel's dynamic limit, up to
 *    the device's opt-in maximum; grid and block limits are checked;
 *  - streams queue their work, which runs only when the host waits (stream
 *    or event synchronisation, a synchronous copy, cudaFree): a missing sync
 *    reads stale results, a pinned host buffer reused while its copy is
 *    queued uploads the new bytes, cudaFreeAsync frees when the stream gets
 *    there (emu_runtime.cpp);
 *  - cuBLASLt refuses (NOT_SUPPORTED) unaligned pointers and leading
 *    dimensions, and type combinations it does not offer; a misaligned bias
 *    faults the context (a sticky error); it accumulates in fp32 (emu_lt.cpp).
 * Everything runs under AddressSanitizer, so out-of-bounds accesses in
 * kernels and use of memory freed by cudaFreeAsync are caught.
 *
 * What it cannot check: timing, memory coalescing, bank conflicts, real warp
 * scheduling (lanes of a warp do not run in lockstep here, so warp-
 * synchronous code without __syncwarp is not caught), or that cuBLASLt's
 * GELU is the tanh form. Force-included (-include) into every .cu compiled
 * as C++ with -DLMC_CUDA_EMU.
 */
#ifndef LMC_CUDA_EMU_H
#define LMC_CUDA_EMU_H

#include <functional>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <tuple>
#include <type_traits>
#include <utility>

/* ---------- language ---------- */

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
/* Static shared memory is declared with CU_SHARED (cuda_common.cuh), which
 * the emulation can size, poison and limit; a bare __shared__ does not
 * compile here. */
#define __shared__ use_CU_SHARED_for_static_shared_memory

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

extern thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

/* CUDA's vector types: alignment matters (misaligned float4 loads fault on
 * the device; under ASan+UBSan here they are reported) */
struct alignas(16) float4 {
    float x, y, z, w;
};
struct alignas(8) float2 {
    float x, y;
};

void __syncthreads(void);
void emu_shfl_exchange(void *val, size_t bytes, unsigned mask, int lanemask);

template <typename T> static inline T __shfl_xor_sync(unsigned mask, T v, int lanemask)
{
    emu_shfl_exchange(&v, sizeof v, mask, lanemask);
    return v;
}

typedef struct emu_stream *cudaStream_t;

/* The launch: checks the configuration now (errors go to cudaGetLastError,
 * as on the device) and queues the grid on the stream. kern identifies the
 * kernel (its shared memory attribute and static size). */
void emu_launch(const void *kern, dim3 grid, dim3 block, size_t smem, cudaStream_t s, std::function<void()> body);
void *emu_dyn_smem(void);
/* This block's copy of a static shared array; site: one per declaration */
void *emu_static_smem(const void *site, size_t bytes, size_t align);

/* Arguments are converted to the kernel's parameter types and copied at the
 * launch, as CUDA does: the kernel runs later, when the stream does. */
template <typename... P, typename... A>
static inline void emu_launch_k(void (*k)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, A &&...a)
{
    std::tuple<typename std::decay<P>::type...> args(std::forward<A>(a)...);
    emu_launch((const void *)k, grid, block, smem, s, [k, args]() { std::apply(k, args); });
}

#define CU_LAUNCH(kern, grid, block, smem, stream, ...) \
    emu_launch_k(kern, dim3(grid), dim3(block), (smem), (stream), __VA_ARGS__)
#define CU_DYN_SMEM(type, name) type *name = reinterpret_cast<type *>(emu_dyn_smem())
#define CU_SHARED(type, name, dims)                                                               \
    typedef type emu_shared_t_##name dims;                                                        \
    static const char emu_shared_site_##name = 0;                                                 \
    emu_shared_t_##name &name = *reinterpret_cast<emu_shared_t_##name *>(                         \
        emu_static_smem(&emu_shared_site_##name, sizeof(emu_shared_t_##name), alignof(emu_shared_t_##name)))

/* ---------- runtime ---------- */

typedef enum {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInsufficientDriver = 35,
    cudaErrorNoDevice = 100,
    cudaErrorNoKernelImageForDevice = 209,
    cudaErrorNotReady = 600,
    cudaErrorMisalignedAddress = 716,
    cudaErrorNotSupported = 801,
} cudaError_t;

typedef struct emu_event *cudaEvent_t;
#define cudaStreamLegacy ((cudaStream_t)0x1)
#define cudaStreamNonBlocking 0x01
#define cudaEventDisableTiming 0x02

typedef enum {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
} cudaMemcpyKind;

typedef struct {
    char name[256];
    int multiProcessorCount, major, minor;
} cudaDeviceProp;

typedef enum {
    cudaDevAttrClockRate = 13,
    cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
    cudaDevAttrMemoryPoolsSupported = 115,
} cudaDeviceAttr;

typedef enum { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 } cudaFuncAttribute;

cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaDriverGetVersion(int *v);
cudaError_t cudaRuntimeGetVersion(int *v);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDevice(int *d);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d);
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int d);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaStreamCreate(cudaStream_t *s);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaMalloc(void **p, size_t n);
cudaError_t cudaFree(void *p);
cudaError_t cudaMallocAsync(void **p, size_t n, cudaStream_t s);
cudaError_t cudaFreeAsync(void *p, cudaStream_t s);
cudaError_t cudaMallocHost(void **p, size_t n);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind k);
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind k, cudaStream_t st);
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t st);
cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int flags);
cudaError_t cudaGetLastError(void);
const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);
cudaError_t emu_set_smem_limit(const void *kern, int bytes);
template <typename K> static inline cudaError_t cudaFuncSetAttribute(K kern, cudaFuncAttribute a, int v)
{
    (void)a;
    return emu_set_smem_limit((const void *)kern, v);
}

/* ---------- cuBLASLt ---------- */

typedef enum { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_INVALID_VALUE = 7, CUBLAS_STATUS_NOT_SUPPORTED = 15 } cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum { CUDA_R_32F = 0, CUDA_R_16F = 2, CUDA_R_16BF = 14 } cudaDataType_t;
typedef enum { CUBLAS_COMPUTE_32F = 68, CUBLAS_COMPUTE_32F_FAST_TF32 = 77 } cublasComputeType_t;
typedef enum {
    CUBLASLT_EPILOGUE_DEFAULT = 1,
    CUBLASLT_EPILOGUE_BIAS = 4,
    CUBLASLT_EPILOGUE_GELU = 32,
    CUBLASLT_EPILOGUE_GELU_AUX = 32 | 128,
    CUBLASLT_EPILOGUE_GELU_BIAS = 32 | 4,
    CUBLASLT_EPILOGUE_GELU_AUX_BIAS = 32 | 128 | 4,
} cublasLtEpilogue_t;
typedef enum {
    CUBLASLT_MATMUL_DESC_TRANSA = 3,
    CUBLASLT_MATMUL_DESC_TRANSB = 4,
    CUBLASLT_MATMUL_DESC_EPILOGUE = 7,
    CUBLASLT_MATMUL_DESC_BIAS_POINTER = 8,
    CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER = 11,
    CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD = 12,
} cublasLtMatmulDescAttributes_t;
typedef enum {
    CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8,
} cublasLtMatmulPreferenceAttributes_t;

typedef struct emu_lt *cublasLtHandle_t;
typedef struct emu_desc *cublasLtMatmulDesc_t;
typedef struct emu_layout *cublasLtMatrixLayout_t;
typedef struct emu_pref *cublasLtMatmulPreference_t;
typedef struct {
    uint64_t data[8];
} cublasLtMatmulAlgo_t;
typedef struct {
    cublasLtMatmulAlgo_t algo;
    size_t workspaceSize;
    cublasStatus_t state;
    float wavesCount;
    int reserved[4];
} cublasLtMatmulHeuristicResult_t;

cublasStatus_t cublasLtCreate(cublasLtHandle_t *h);
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h);
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t ct, cudaDataType_t scale);
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d);
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const void *v,
                                              size_t n);
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType_t t, uint64_t rows, uint64_t cols,
                                          int64_t ld);
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l);
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p);
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p);
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
                                                    cublasLtMatmulPreferenceAttributes_t a, const void *v, size_t n);
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t a,
                                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
                                              cublasLtMatrixLayout_t dl, cublasLtMatmulPreference_t p, int want,
                                              cublasLtMatmulHeuristicResult_t *res, int *found);
cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t d, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t al, const void *B, cublasLtMatrixLayout_t bl, const void *beta,
                              const void *C, cublasLtMatrixLayout_t cl, void *D, cublasLtMatrixLayout_t dl,
                              const cublasLtMatmulAlgo_t *algo, void *ws, size_t wsn, cudaStream_t s);

/* ---------- CUB stand-in ---------- */

cudaError_t emu_sort_pairs(void *temp, size_t *temp_bytes, const int *keys_in, int *keys_out, const int *vals_in,
                           int *vals_out, int n, cudaStream_t s);

#endif
