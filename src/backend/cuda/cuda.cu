/* cuda.cu: the CUDA backend's table, device memory, errors and open.
 *
 * One stream per backend, created blocking (cudaStreamCreate) on purpose:
 * the NCCL communicator orders its collectives after our kernels by recording
 * an event on the legacy default stream, which waits for blocking streams
 * (src/dist/nccl.c).
 *
 * Open fails, with a message saying what to do, where the backend could not
 * work: no device, a driver older than the toolkit, a device older than sm_80,
 * or a build without code for this device (a probe kernel runs at open, so a
 * missing image is not a surprise at the first op: see CUDA_ARCHS in the
 * Makefile). */
#include "backend/cuda/cuda_common.cuh"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- errors ---------- */

static void cu_record(lmc_backend *be, const char *msg)
{
    lmc_cuda *c = cu_of(be);
    if (c->failed)
        return;
    c->failed = 1;
    snprintf(c->err, sizeof c->err, "%s: %s", be->name, msg);
    /* ops return void, so this is the only way the error reaches a person
     * before results silently go wrong; printed once */
    fprintf(stderr, "lmc: %s\n", c->err);
}

int cu_ok(lmc_backend *be, cudaError_t e, const char *what)
{
    if (e == cudaSuccess)
        return 1;
    char msg[400];
    snprintf(msg, sizeof msg, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
    cu_record(be, msg);
    return 0;
}

void cu_fail(lmc_backend *be, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cu_record(be, msg);
}

extern "C" const char *lmc_cuda_error(lmc_backend *be)
{
    lmc_cuda *c = cu_of(be);
    return c->failed ? c->err : NULL;
}

extern "C" void lmc_cuda_set_fused_gelu(lmc_backend *be, int on)
{
    cu_of(be)->fuse_gelu = on != 0;
    cu_of(be)->algo_next = 0; /* the cached algorithms were chosen for the other path */
    memset(cu_of(be)->algos, 0, sizeof cu_of(be)->algos);
}

void cu_enter(lmc_backend *be)
{
    int cur = -1;
    if (cudaGetDevice(&cur) != cudaSuccess || cur != cu_of(be)->device)
        cu_ok(be, cudaSetDevice(cu_of(be)->device), "cudaSetDevice");
}

/* Without memory pools (cudaDevAttrMemoryPoolsSupported = 0: some vGPU and
 * MIG set-ups) the old block is freed after the stream drained. */
static cudaError_t scratch_free(lmc_cuda *c, void *p)
{
    if (c->mempools)
        return cudaFreeAsync(p, c->stream);
    cudaError_t e = cudaStreamSynchronize(c->stream);
    return e != cudaSuccess ? e : cudaFree(p);
}

void *cu_scratch(lmc_backend *be, size_t bytes)
{
    lmc_cuda *c = cu_of(be);
    if (bytes <= c->scratch_bytes)
        return c->scratch;
    /* grow by at least 1/4 and to whole MiB so a slowly growing sequence of
     * requests does not reallocate every step */
    size_t want = cu_align_up(bytes + bytes / 4, (size_t)1 << 20);
    if (c->scratch)
        cu_ok(be, scratch_free(c, c->scratch), "freeing scratch");
    c->scratch = NULL;
    c->scratch_bytes = 0;
    cudaError_t e = c->mempools ? cudaMallocAsync(&c->scratch, want, c->stream) : cudaMalloc(&c->scratch, want);
    if (!cu_ok(be, e, "allocating scratch")) {
        c->scratch = NULL;
        return NULL;
    }
    c->scratch_bytes = want;
    return c->scratch;
}

/* ---------- memory ---------- */

static void *cu_alloc(lmc_backend *be, size_t bytes)
{
    lmc_cuda *c = cu_of(be);
    cu_enter(be);
    void *p = NULL;
    /* never NULL for 0 bytes: NULL means failure to callers */
    size_t n = bytes ? bytes : 256;
    cudaError_t e = cudaMalloc(&p, n);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* out of memory is not sticky: clear it */
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        lmc_err(LMC_ENOMEM, "%s: cannot allocate %zu bytes of device memory (%s; %zu of %zu MiB free)",
                be->name, bytes, cudaGetErrorString(e), free_b >> 20, total_b >> 20);
        return NULL;
    }
    /* zeroed, and visible to every stream (the communicator's too) on return */
    if (!cu_ok(be, cudaMemsetAsync(p, 0, n, c->stream), "zeroing new memory") ||
        !cu_ok(be, cudaStreamSynchronize(c->stream), "zeroing new memory")) {
        cudaFree(p);
        lmc_err(LMC_EIO, "%s", c->err);
        return NULL;
    }
    return p;
}

static void cu_free(lmc_backend *be, void *p)
{
    if (!p)
        return;
    cu_enter(be);
    cu_ok(be, cudaStreamSynchronize(cu_of(be)->stream), "free: sync");
    cu_ok(be, cudaFree(p), "cudaFree");
}

/* Host -> device without waiting: the bytes are copied into a pinned staging
 * slot (after that slot's previous copy finished), then the DMA is queued on
 * the stream. The caller may reuse host_src as soon as we return. */
static void cu_upload(lmc_backend *be, void *dst, const void *host_src, size_t bytes)
{
    lmc_cuda *c = cu_of(be);
    cu_enter(be);
    if (!c->stage[0]) {
        cu_ok(be, cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice), "upload");
        return;
    }
    for (size_t off = 0; off < bytes; off += CU_STAGE_BYTES) {
        size_t len = bytes - off < CU_STAGE_BYTES ? bytes - off : CU_STAGE_BYTES;
        int s = c->stage_next;
        c->stage_next = (s + 1) % CU_STAGE_SLOTS;
        if (!cu_ok(be, cudaEventSynchronize(c->stage_done[s]), "upload: staging wait"))
            return;
        memcpy(c->stage[s], (const char *)host_src + off, len);
        if (!cu_ok(be, cudaMemcpyAsync((char *)dst + off, c->stage[s], len, cudaMemcpyHostToDevice,
                                       c->stream), "upload"))
            return;
        cu_ok(be, cudaEventRecord(c->stage_done[s], c->stream), "upload: record");
    }
}

static void cu_download(lmc_backend *be, void *host_dst, const void *src, size_t bytes)
{
    lmc_cuda *c = cu_of(be);
    cu_enter(be);
    if (!bytes)
        return;
    cu_ok(be, cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, c->stream), "download");
    cu_ok(be, cudaStreamSynchronize(c->stream), "download: sync");
}

static void cu_copy(lmc_backend *be, void *dst, const void *src, size_t bytes)
{
    cu_enter(be);
    if (bytes && dst != src)
        cu_ok(be, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cu_of(be)->stream), "copy");
}

static void cu_zero(lmc_backend *be, void *p, size_t bytes)
{
    cu_enter(be);
    if (bytes)
        cu_ok(be, cudaMemsetAsync(p, 0, bytes, cu_of(be)->stream), "zero");
}

static void cu_sync(lmc_backend *be)
{
    cu_enter(be);
    cu_ok(be, cudaStreamSynchronize(cu_of(be)->stream), "sync");
}

static void cu_release(lmc_cuda *c)
{
    if (c->stream)
        cudaStreamSynchronize(c->stream);
    if (c->scratch)
        scratch_free(c, c->scratch);
    if (c->stream)
        cudaStreamSynchronize(c->stream);
    if (c->lt_ws)
        cudaFree(c->lt_ws);
    if (c->lt)
        cublasLtDestroy(c->lt);
    for (int s = 0; s < CU_STAGE_SLOTS; s++) {
        if (c->stage[s])
            cudaFreeHost(c->stage[s]);
        if (c->stage_done[s])
            cudaEventDestroy(c->stage_done[s]);
    }
    if (c->stream)
        cudaStreamDestroy(c->stream);
}

static void cu_destroy(lmc_backend *be)
{
    cu_enter(be);
    cu_release(cu_of(be));
    free(be->impl);
    free(be);
}

static int cu_supports(lmc_backend *be, lmc_op op, lmc_dtype dtype)
{
    (void)be;
    if (op == LMC_OP_LINEAR)
        return dtype == LMC_F32 || dtype == LMC_BF16 || dtype == LMC_I8;
    return op < LMC_OP_COUNT && (dtype == LMC_F32 || dtype == LMC_BF16);
}

/* ---------- peak FLOP/s ---------- */

/* Dense FLOPs per SM per clock: bf16 tensor cores with fp32 accumulation,
 * and plain fp32 FMA (2 per lane). Unknown future parts get Hopper's. */
static void per_sm_clock(int major, int minor, double *bf16, double *f32)
{
    if (major >= 10) {
        *bf16 = 8192, *f32 = 256;
    } else if (major == 9) {
        *bf16 = 4096, *f32 = 256;
    } else if (major == 8 && minor == 0) {
        *bf16 = 2048, *f32 = 128;
    } else if (major == 8) {
        *bf16 = 1024, *f32 = 256;
    } else if (major == 7) {
        *bf16 = 1024, *f32 = 128; /* Volta/Turing: fp16 tensor cores, no bf16 */
    } else {
        *bf16 = 256, *f32 = 256;
    }
}

double cu_peak_flops(lmc_backend *be, lmc_dtype prec)
{
    lmc_cuda *c = cu_of(be);
    const char *n = c->dev_name;
    int bf = prec == LMC_BF16;
    /* vendor figures for the parts we train on; MFU is quoted against these */
    if ((strstr(n, "H100") || strstr(n, "H200")) && strstr(n, "NVL")) /* PCIe cards, lower clocks and power */
        return bf ? 835e12 : 60e12;
    if (strstr(n, "H200") || strstr(n, "GH200") || (strstr(n, "H100") && strstr(n, "SXM")) ||
        (strstr(n, "H100") && strstr(n, "HBM3")))
        return bf ? 989e12 : 67e12;
    if (strstr(n, "H100") && strstr(n, "PCIe"))
        return bf ? 756e12 : 51e12;
    if (strstr(n, "A100"))
        return bf ? 312e12 : 19.5e12;
    double per_bf = 0, per_f = 0;
    per_sm_clock(c->cc_major, c->cc_minor, &per_bf, &per_f);
    return (double)c->sm_count * c->clock_khz * 1e3 * (bf ? per_bf : per_f);
}

/* ---------- table and open ---------- */

#ifndef LMC_CUDA_ARCHS
#define LMC_CUDA_ARCHS "unknown" /* the Makefile passes the list it built */
#endif

/* The device of the CUDA backend this process opened last, for the NCCL
 * communicator (src/dist/nccl.c): process state, as CUDA's current device
 * is. -1 before any. */
static int g_last_device = -1;

extern "C" int lmc_cuda_backend_device(void) { return g_last_device; }

__global__ static void probe_kernel(int *flag)
{
    if (blockIdx.x == 0 && threadIdx.x == 0)
        *flag = 0x6c6d63;
}

/* Runs one of our kernels: a binary without code for this device (or PTX
 * newer than the driver) fails here, at open, instead of at the first op. */
static lmc_status probe(lmc_cuda *c)
{
    int got = 0;
    cudaError_t e = cudaSuccess;
    CU_LAUNCH(probe_kernel, 1, 32, 0, c->stream, (int *)c->lt_ws);
    if ((e = cudaGetLastError()) == cudaSuccess && (e = cudaStreamSynchronize(c->stream)) == cudaSuccess)
        e = cudaMemcpy(&got, c->lt_ws, sizeof got, cudaMemcpyDeviceToHost);
    if (e == cudaSuccess && got == 0x6c6d63)
        return LMC_OK;
    return lmc_err(LMC_EUNSUPPORTED,
                   "%s: %s (compute capability %d.%d) cannot run this build's kernels: %s. This lmc was built with "
                   "CUDA_ARCHS=\"%s\": rebuild with %d%d in the list (make clean; make CUDA_ARCHS=\"... %d%d\")",
                   c->name, c->dev_name, c->cc_major, c->cc_minor,
                   e != cudaSuccess ? cudaGetErrorString(e) : "the probe kernel did not run", LMC_CUDA_ARCHS, c->cc_major,
                   c->cc_minor, c->cc_major, c->cc_minor);
}

/* No device found: say why, naming an old driver when that is the reason. */
static lmc_status no_device(int device, int count, cudaError_t e)
{
    int drv = 0, rt = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    if (e == cudaErrorInsufficientDriver && drv == 0)
        return lmc_err(LMC_EUNSUPPORTED, "cuda:%d: no NVIDIA driver is installed (libcuda.so not found): no GPU to use",
                       device < 0 ? 0 : device);
    if (e == cudaErrorInsufficientDriver) {
        return lmc_err(LMC_EUNSUPPORTED,
                       "cuda:%d: the NVIDIA driver supports CUDA %d.%d but lmc was built with the CUDA %d.%d "
                       "toolkit: install a driver for CUDA %d.%d or newer%s, or build with an older toolkit",
                       device < 0 ? 0 : device, drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10, rt / 1000,
                       rt % 1000 / 10, rt / 1000 == 13 ? " (R580 or later)" : "");
    }
    return lmc_err(LMC_EUNSUPPORTED, "cuda:%d: no such device (found %d CUDA devices%s%s)", device < 0 ? 0 : device,
                   count, e != cudaSuccess ? ": " : "", e != cudaSuccess ? cudaGetErrorString(e) : "");
}

/* Filled field by field (C++ has no designated initialisers before C++20)
 * so a reordered backend.h cannot silently shift the table. */
static void fill_ops(lmc_backend_ops *o)
{
    memset(o, 0, sizeof *o);
    o->alloc = cu_alloc;
    o->free = cu_free;
    o->upload = cu_upload;
    o->download = cu_download;
    o->copy = cu_copy;
    o->zero = cu_zero;
    o->sync = cu_sync;
    o->destroy = cu_destroy;
    o->supports = cu_supports;
    o->peak_flops = cu_peak_flops;
    o->matmul = cu_matmul;
    o->bias_grad = cu_bias_grad;
    o->embed_forward = cu_embed_forward;
    o->embed_backward = cu_embed_backward;
    o->layernorm_forward = cu_layernorm_forward;
    o->layernorm_backward = cu_layernorm_backward;
    o->rmsnorm_forward = cu_rmsnorm_forward;
    o->rmsnorm_backward = cu_rmsnorm_backward;
    o->gelu_forward = cu_gelu_forward;
    o->gelu_backward = cu_gelu_backward;
    o->swiglu_forward = cu_swiglu_forward;
    o->swiglu_backward = cu_swiglu_backward;
    o->rope = cu_rope;
    o->attention_forward = cu_attention_forward;
    o->attention_backward = cu_attention_backward;
    o->attention_decode = cu_attention_decode;
    o->kv_store = cu_kv_store;
    o->linear = cu_linear;
    o->add = cu_add;
    o->scale = cu_scale;
    o->xent = cu_xent;
    o->sum = cu_sum;
    o->adamw = cu_adamw;
    o->cast = cu_cast;
}

/* The launcher's local rank, so "one process per GPU" needs no flag. */
static int local_rank(void)
{
    const char *vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID", "LOCAL_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return atoi(v);
    }
    return 0;
}

static lmc_status open_fail(lmc_cuda *c, lmc_backend *be, lmc_status s)
{
    cu_release(c);
    free(c);
    free(be);
    return s;
}

extern "C" lmc_status lmc_cuda_backend_open(int device, lmc_backend **out)
{
    *out = NULL;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        cudaGetLastError();
        count = 0;
    }
    if (device < 0 && count > 0)
        device = local_rank() % count;
    if (device < 0 || device >= count)
        return no_device(device, count, e);
    lmc_backend *be = (lmc_backend *)calloc(1, sizeof *be);
    lmc_cuda *c = (lmc_cuda *)calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return lmc_err(LMC_ENOMEM, "out of memory opening cuda:%d", device);
    }
    c->device = device;
    snprintf(c->name, sizeof c->name, "cuda:%d", device);
    fill_ops(&c->ops);
    c->fuse_gelu = 0; /* see lmc_cuda_set_fused_gelu: whether cuBLASLt's GELU is within 1e-4 is unverified */
    be->ops = &c->ops;
    be->name = c->name;
    be->threads = 1;
    be->impl = c;

    cudaDeviceProp prop;
    int optin = 0;
    if ((e = cudaSetDevice(device)) != cudaSuccess || (e = cudaGetDeviceProperties(&prop, device)) != cudaSuccess ||
        (e = cudaDeviceGetAttribute(&c->clock_khz, cudaDevAttrClockRate, device)) != cudaSuccess ||
        (e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device)) != cudaSuccess ||
        (e = cudaDeviceGetAttribute(&c->mempools, cudaDevAttrMemoryPoolsSupported, device)) != cudaSuccess ||
        (e = cudaStreamCreate(&c->stream)) != cudaSuccess)
        return open_fail(c, be, lmc_err(LMC_EIO, "cuda:%d: cannot initialise the device: %s", device,
                                        cudaGetErrorString(e)));
    snprintf(c->dev_name, sizeof c->dev_name, "%s", prop.name);
    c->sm_count = prop.multiProcessorCount;
    c->cc_major = prop.major;
    c->cc_minor = prop.minor;
    c->smem_optin = (size_t)optin;
    if (prop.major < 8)
        return open_fail(c, be, lmc_err(LMC_EUNSUPPORTED,
                                        "cuda:%d: %s has compute capability %d.%d; lmc needs 8.0 or newer (bf16)",
                                        device, prop.name, prop.major, prop.minor));
    if ((e = cudaMalloc(&c->lt_ws, CU_LT_WS_BYTES)) != cudaSuccess)
        return open_fail(c, be, lmc_err(LMC_ENOMEM, "cuda:%d: cannot allocate the %zu MiB cuBLASLt workspace: %s",
                                        device, CU_LT_WS_BYTES >> 20, cudaGetErrorString(e)));
    lmc_status ps = probe(c);
    if (ps != LMC_OK)
        return open_fail(c, be, ps);
    cublasStatus_t bs = cublasLtCreate(&c->lt);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        c->lt = NULL;
        return open_fail(c, be, lmc_err(LMC_EIO, "cuda:%d: cublasLtCreate failed (status %d)", device, (int)bs));
    }
    /* pinned staging is an optimisation: without it uploads are synchronous */
    for (int s = 0; s < CU_STAGE_SLOTS; s++) {
        if (cudaMallocHost(&c->stage[s], CU_STAGE_BYTES) != cudaSuccess ||
            cudaEventCreateWithFlags(&c->stage_done[s], cudaEventDisableTiming) != cudaSuccess) {
            cudaGetLastError();
            for (int t = 0; t <= s; t++) {
                if (c->stage[t])
                    cudaFreeHost(c->stage[t]);
                if (c->stage_done[t])
                    cudaEventDestroy(c->stage_done[t]);
                c->stage[t] = NULL;
                c->stage_done[t] = NULL;
            }
            break;
        }
    }
    g_last_device = device;
    *out = be;
    return LMC_OK;
}
