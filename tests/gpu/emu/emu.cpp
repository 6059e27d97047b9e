/* emu.cpp: the host emulation of CUDA, cuBLASLt and CUB declared in
 * cuda_emu.h. See there for what it checks and what it cannot. */
#include "cuda_emu.h"

#include <algorithm>
#include <numeric>
#include <stdio.h>
#include <stdlib.h>
#include <vector>

thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;
static thread_local cudaError_t t_last = cudaSuccess;

/* ---------- threads of a block: cooperative fibers ----------
 * Each CUDA thread of a block is a fiber (ucontext) with its own stack. The
 * scheduler runs every runnable fiber until it waits at a barrier
 * (__syncthreads: the block's; a shuffle: its warp's) or returns; a barrier
 * releases when all threads still running have arrived, as on the hardware,
 * where exited threads no longer count. Passes alternate forward and reverse
 * thread order, so a missing barrier between a write and a read by another
 * thread reads garbage in one of them. Deterministic, and fast enough for
 * the whole conformance suite. */

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/common_interface_defs.h>
#define ASAN_START(save, bottom, size) __sanitizer_start_switch_fiber(save, bottom, size)
#define ASAN_FINISH(save, bottom, size) __sanitizer_finish_switch_fiber(save, bottom, size)
#else
#define ASAN_START(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#define ASAN_FINISH(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#endif
#include <sys/mman.h>
#include <ucontext.h>

#define FIBER_STACK ((size_t)256 << 10)

struct barrier_c {
    int active = 0, arrived = 0;
    unsigned long gen = 0;
    void reset(int n) { active = n, arrived = 0; }
    void release() { arrived = 0, gen++; }
    void leave()
    {
        active--;
        if (arrived > 0 && arrived >= active)
            release();
    }
};

struct fiber {
    ucontext_t ctx;
    char *stack;
    int done;
    barrier_c *waiting;
    unsigned long wait_gen;
    void *fake; /* ASan's fake stack of this fiber */
};

struct launch_state {
    int nthreads, cur;
    dim3 grid, block;
    std::function<void()> *body;
    barrier_c blockbar;
    std::vector<barrier_c> warps;
    std::vector<fiber> fibers;
    std::vector<uint64_t> slots;
    std::vector<unsigned char> smem;
    ucontext_t sched;
    void *sched_fake;
    const void *sched_bottom;
    size_t sched_size;
};
static launch_state *g_launch;
static char *g_stacks; /* 1024 fiber stacks, mapped once */

/* from the running fiber back to the scheduler */
static void to_scheduler(int finishing)
{
    launch_state *L = g_launch;
    fiber *f = &L->fibers[L->cur];
    ASAN_START(finishing ? nullptr : &f->fake, L->sched_bottom, L->sched_size);
    swapcontext(&f->ctx, &L->sched);
    ASAN_FINISH(f->fake, &L->sched_bottom, &L->sched_size);
}

static void barrier_wait(barrier_c *b)
{
    if (++b->arrived >= b->active) {
        b->release();
        return;
    }
    fiber *f = &g_launch->fibers[g_launch->cur];
    f->waiting = b;
    f->wait_gen = b->gen;
    to_scheduler(0);
}

static void fiber_main(void)
{
    launch_state *L = g_launch;
    ASAN_FINISH(nullptr, &L->sched_bottom, &L->sched_size);
    (*L->body)();
    L = g_launch;
    int t = L->cur;
    L->fibers[t].done = 1;
    L->blockbar.leave();
    L->warps[t / 32].leave();
    to_scheduler(1);
}

void __syncthreads(void) { barrier_wait(&g_launch->blockbar); }

void emu_shfl_exchange(void *val, size_t bytes, int lanemask)
{
    launch_state *L = g_launch;
    int t = L->cur, w = t / 32, lane = t % 32, partner = w * 32 + (lane ^ lanemask);
    if (bytes > 8 || partner >= L->nthreads) {
        fprintf(stderr, "emu: bad shuffle (bytes %zu, partner %d of %d threads)\n", bytes, partner, L->nthreads);
        abort();
    }
    memcpy(&L->slots[t], val, bytes);
    barrier_wait(&L->warps[w]);
    memcpy(val, &L->slots[partner], bytes);
    barrier_wait(&L->warps[w]);
}

void *emu_dyn_smem(void) { return g_launch->smem.data(); }

static void set_thread(launch_state *L, int t)
{
    L->cur = t;
    threadIdx = dim3(t % L->block.x, (t / L->block.x) % L->block.y, t / (L->block.x * L->block.y));
}

/* its own frame: getcontext returns twice, which must not touch a caller's loop */
__attribute__((noinline)) static void init_fiber(fiber *f, int t)
{
    f->stack = g_stacks + (size_t)t * FIBER_STACK;
    f->done = 0;
    f->waiting = nullptr;
    f->fake = nullptr;
    getcontext(&f->ctx);
    f->ctx.uc_stack.ss_sp = f->stack;
    f->ctx.uc_stack.ss_size = FIBER_STACK;
    f->ctx.uc_link = nullptr;
    makecontext(&f->ctx, fiber_main, 0);
}

static void run_block(launch_state *L)
{
    int n = L->nthreads;
    L->blockbar.reset(n);
    for (int w = 0; w * 32 < n; w++)
        L->warps[w].reset(std::min(32, n - w * 32));
    /* shared memory starts as garbage on the device: NaN here */
    std::fill(L->smem.begin(), L->smem.end(), (unsigned char)0xff);
    for (int t = 0; t < n; t++)
        init_fiber(&L->fibers[t], t);
    int remaining = n;
    for (int pass = 0; remaining > 0; pass++) {
        int progress = 0;
        for (int i = 0; i < n; i++) {
            int t = pass % 2 ? n - 1 - i : i;
            fiber *f = &L->fibers[t];
            if (f->done || (f->waiting && f->waiting->gen == f->wait_gen))
                continue;
            f->waiting = nullptr;
            set_thread(L, t);
            ASAN_START(&L->sched_fake, f->stack, FIBER_STACK);
            swapcontext(&L->sched, &f->ctx);
            ASAN_FINISH(L->sched_fake, nullptr, nullptr);
            progress = 1;
            if (f->done)
                remaining--;
        }
        if (!progress) {
            fprintf(stderr, "emu: deadlock: %d threads wait at barriers that cannot release\n", remaining);
            abort();
        }
    }
}

static int emu_smem_optin(void)
{
    int v = 0;
    cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0);
    return v;
}

void emu_launch(dim3 grid, dim3 block, size_t smem, std::function<void()> body)
{
    int n = (int)(block.x * block.y * block.z);
    if (n <= 0 || n > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535 ||
        smem > (size_t)emu_smem_optin()) {
        t_last = cudaErrorInvalidConfiguration;
        return;
    }
    if (!g_stacks) {
        g_stacks = (char *)mmap(nullptr, 1024 * FIBER_STACK, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (g_stacks == MAP_FAILED) {
            fprintf(stderr, "emu: cannot map fiber stacks\n");
            abort();
        }
    }
    launch_state L;
    L.nthreads = n;
    L.grid = grid;
    L.block = block;
    L.body = &body;
    L.warps.assign((n + 31) / 32, barrier_c());
    L.fibers.assign(n, fiber());
    L.slots.assign(n, 0);
    L.smem.assign(smem ? smem : 1, 0);
    g_launch = &L;
    blockDim = block;
    gridDim = grid;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                blockIdx = dim3(x, y, z);
                run_block(&L);
            }
    g_launch = nullptr;
}

void emu_set_smem_limit(const void *kern, int bytes)
{
    (void)kern;
    (void)bytes;
}

/* ---------- runtime ---------- */

static int no_device(void) { return getenv("EMU_NO_DEVICE") != nullptr; }

cudaError_t cudaGetDeviceCount(int *n)
{
    *n = no_device() ? 0 : 1;
    return no_device() ? cudaErrorNoDevice : cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return d == 0 && !no_device() ? cudaSuccess : cudaErrorInvalidValue; }
cudaError_t cudaGetDevice(int *d)
{
    *d = 0;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d)
{
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "EMU H100 80GB HBM3 (host emulation)");
    p->multiProcessorCount = 132;
    p->major = 9;
    p->minor = 0;
    return d == 0 ? cudaSuccess : cudaErrorInvalidValue;
}
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int d)
{
    /* EMU_SMEM_OPTIN=bytes: a smaller device (A100: 166912) */
    const char *optin = getenv("EMU_SMEM_OPTIN");
    *v = a == cudaDevAttrClockRate ? 1980000
         : a == cudaDevAttrMaxSharedMemoryPerBlockOptin ? (optin ? atoi(optin) : 232448) : 0;
    return d == 0 ? cudaSuccess : cudaErrorInvalidValue;
}
cudaError_t cudaStreamCreate(cudaStream_t *s)
{
    *s = (cudaStream_t)malloc(1);
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s)
{
    free(s);
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }

/* device memory starts as garbage: NaN bytes, so code that relies on zeroed
 * memory without zeroing it fails its test */
cudaError_t cudaMalloc(void **p, size_t n)
{
    *p = aligned_alloc(256, (n + 255) / 256 * 256);
    if (!*p)
        return cudaErrorMemoryAllocation;
    memset(*p, 0xff, n);
    return cudaSuccess;
}
cudaError_t cudaFree(void *p)
{
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMallocAsync(void **p, size_t n, cudaStream_t) { return cudaMalloc(p, n); }
cudaError_t cudaFreeAsync(void *p, cudaStream_t) { return cudaFree(p); }
cudaError_t cudaMallocHost(void **p, size_t n)
{
    *p = malloc(n);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFreeHost(void *p)
{
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind)
{
    memmove(d, s, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind k, cudaStream_t)
{
    return cudaMemcpy(d, s, n, k);
}
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t)
{
    memset(p, v, n);
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b)
{
    *free_b = *total_b = (size_t)80 << 30;
    return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned)
{
    *e = (cudaEvent_t)malloc(1);
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e)
{
    free(e);
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaGetLastError(void)
{
    cudaError_t e = t_last;
    t_last = cudaSuccess;
    return e;
}
const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    }
    return "unknown error";
}
const char *cudaGetErrorName(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    }
    return "cudaErrorUnknown";
}

/* ---------- cuBLASLt, from its documented column-major semantics ----------
 * D (M,N) = alpha op(A) (M,K) op(B) (K,N) + beta C, column-major with
 * leading dimensions; BIAS adds bias[i] (i: row of D) to every column; GELU
 * epilogues write the pre-activation to aux (ld auxld) and D = gelu. */

struct emu_desc {
    cublasOperation_t ta = CUBLAS_OP_N, tb = CUBLAS_OP_N;
    int epi = CUBLASLT_EPILOGUE_DEFAULT;
    const float *bias = nullptr;
    float *aux = nullptr;
    int64_t auxld = 0;
};
struct emu_layout {
    cudaDataType_t t;
    uint64_t rows, cols;
    int64_t ld;
};
struct emu_pref {
    uint32_t align[4] = {256, 256, 256, 256};
};

cublasStatus_t cublasLtCreate(cublasLtHandle_t *h)
{
    *h = (cublasLtHandle_t)malloc(1);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h)
{
    free(h);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t, cudaDataType_t)
{
    *d = (cublasLtMatmulDesc_t) new emu_desc;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d)
{
    delete (emu_desc *)d;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d0, cublasLtMatmulDescAttributes_t a, const void *v,
                                              size_t n)
{
    emu_desc *d = (emu_desc *)d0;
    switch (a) {
    case CUBLASLT_MATMUL_DESC_TRANSA: memcpy(&d->ta, v, n); break;
    case CUBLASLT_MATMUL_DESC_TRANSB: memcpy(&d->tb, v, n); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE: {
        int32_t e;
        memcpy(&e, v, sizeof e);
        d->epi = e;
        break;
    }
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: memcpy(&d->bias, v, n); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER: memcpy(&d->aux, v, n); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD: memcpy(&d->auxld, v, n); break;
    default: return CUBLAS_STATUS_INVALID_VALUE;
    }
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType_t t, uint64_t rows, uint64_t cols,
                                          int64_t ld)
{
    if (ld < (int64_t)rows || ld < 1)
        return CUBLAS_STATUS_INVALID_VALUE;
    *l = (cublasLtMatrixLayout_t) new emu_layout{t, rows, cols, ld};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l)
{
    delete (emu_layout *)l;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p)
{
    *p = (cublasLtMatmulPreference_t) new emu_pref;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p)
{
    delete (emu_pref *)p;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p0,
                                                    cublasLtMatmulPreferenceAttributes_t a, const void *v, size_t n)
{
    emu_pref *p = (emu_pref *)p0;
    if (a >= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES && a <= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES)
        memcpy(&p->align[a - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES], v, n);
    return CUBLAS_STATUS_SUCCESS;
}

/* Do the shapes of A, B, D agree with the transposes? */
static int shapes_ok(const emu_desc *d, const emu_layout *a, const emu_layout *b, const emu_layout *dl, uint64_t *K)
{
    uint64_t M = dl->rows, N = dl->cols;
    uint64_t am = d->ta == CUBLAS_OP_N ? a->rows : a->cols, ak = d->ta == CUBLAS_OP_N ? a->cols : a->rows;
    uint64_t bk = d->tb == CUBLAS_OP_N ? b->rows : b->cols, bn = d->tb == CUBLAS_OP_N ? b->cols : b->rows;
    *K = ak;
    return am == M && bn == N && ak == bk && a->t == b->t;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t d0, cublasLtMatrixLayout_t a,
                                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t dl,
                                              cublasLtMatmulPreference_t p0, int, cublasLtMatmulHeuristicResult_t *res,
                                              int *found)
{
    emu_desc *d = (emu_desc *)d0;
    emu_pref *p = (emu_pref *)p0;
    uint64_t K;
    *found = 0;
    if (!shapes_ok(d, (emu_layout *)a, (emu_layout *)b, (emu_layout *)dl, &K)) {
        fprintf(stderr, "emu cuBLASLt: inconsistent shapes\n");
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    /* EMU_LT_NO_EPILOGUE: pretend no fused algorithm exists (tests the fallback) */
    if (d->epi != CUBLASLT_EPILOGUE_DEFAULT && getenv("EMU_LT_NO_EPILOGUE"))
        return CUBLAS_STATUS_SUCCESS;
    if ((d->epi & 128) && (d->auxld % 8 || d->auxld < (int64_t)((emu_layout *)dl)->rows))
        return CUBLAS_STATUS_SUCCESS;
    memset(res, 0, sizeof *res);
    for (int i = 0; i < 4; i++)
        res->algo.data[i] = p->align[i]; /* matmul checks the pointers against these */
    *found = 1;
    return CUBLAS_STATUS_SUCCESS;
}

static float load(const void *m, cudaDataType_t t, size_t i)
{
    if (t == CUDA_R_32F)
        return ((const float *)m)[i];
    uint32_t u = (uint32_t)((const uint16_t *)m)[i] << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t d0, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t al0, const void *B, cublasLtMatrixLayout_t bl0, const void *beta,
                              const void *C, cublasLtMatrixLayout_t cl0, void *D, cublasLtMatrixLayout_t dl0,
                              const cublasLtMatmulAlgo_t *algo, void *, size_t, cudaStream_t)
{
    emu_desc *d = (emu_desc *)d0;
    emu_layout *al = (emu_layout *)al0, *bl = (emu_layout *)bl0, *cl = (emu_layout *)cl0, *dl = (emu_layout *)dl0;
    const void *ptrs[4] = {A, B, C, D};
    for (int i = 0; i < 4; i++)
        if ((uintptr_t)ptrs[i] % algo->data[i]) {
            fprintf(stderr, "emu cuBLASLt: pointer %d (%p) is not %llu-byte aligned as the algorithm was chosen for\n",
                    i, ptrs[i], (unsigned long long)algo->data[i]);
            return CUBLAS_STATUS_INVALID_VALUE;
        }
    uint64_t K;
    if (!shapes_ok(d, al, bl, dl, &K) || cl->rows != dl->rows || cl->cols != dl->cols)
        return CUBLAS_STATUS_INVALID_VALUE;
    float a = *(const float *)alpha, bt = *(const float *)beta;
    for (uint64_t j = 0; j < dl->cols; j++)
        for (uint64_t i = 0; i < dl->rows; i++) {
            double acc = 0;
            for (uint64_t l = 0; l < K; l++) {
                size_t ia = d->ta == CUBLAS_OP_N ? i + l * al->ld : l + i * al->ld;
                size_t ib = d->tb == CUBLAS_OP_N ? l + j * bl->ld : j + l * bl->ld;
                acc += (double)load(A, al->t, ia) * load(B, bl->t, ib);
            }
            float v = a * (float)acc;
            if (bt != 0.0f)
                v += bt * ((const float *)C)[i + j * cl->ld];
            if (d->epi & 4)
                v += d->bias[i];
            if (d->epi & 32) {
                if (d->epi & 128)
                    d->aux[i + j * d->auxld] = v;
                v = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
            }
            ((float *)D)[i + j * dl->ld] = v;
        }
    return CUBLAS_STATUS_SUCCESS;
}

/* ---------- CUB stand-in ---------- */

cudaError_t emu_sort_pairs(void *temp, size_t *temp_bytes, const int *keys_in, int *keys_out, const int *vals_in,
                           int *vals_out, int n)
{
    if (!temp) {
        *temp_bytes = 64;
        return cudaSuccess;
    }
    std::vector<int> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int x, int y) { return keys_in[x] < keys_in[y]; });
    std::vector<int> k(n), v(n);
    for (int i = 0; i < n; i++)
        k[i] = keys_in[idx[i]], v[i] = vals_in[idx[i]];
    memcpy(keys_out, k.data(), n * sizeof(int));
    memcpy(vals_out, v.data(), n * sizeof(int));
    return cudaSuccess;
}
