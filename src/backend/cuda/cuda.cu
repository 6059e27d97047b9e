/* cuda.cu: the CUDA backend's table, device memory, errors, open and the
 * plugin's entry point (liblmc_cuda.so: lmc_backend_plugin_entry).
 *
 * One stream per backend, created blocking (cudaStreamCreate) on purpose:
 * the NCCL communicator orders its collectives after our kernels by recording
 * an event on the legacy default stream, which waits for blocking streams
 * (src/dist/nccl.c). The stream, event_record and event_wait ops give a
 * communicator the same ordering without the legacy stream.
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

/* Against the current op; a message that starts with the op's name
 * ("attention_forward: ...") drops it, as lmc_backend_fail adds it. */
static void cu_record(lmc_backend *be, const char *msg)
{
    lmc_op op = cu_of(be)->op;
    const char *name = lmc_op_name(op);
    size_t n = strlen(name);
    if (!strncmp(msg, name, n) && msg[n] == ':' && msg[n + 1] == ' ')
        msg += n + 2;
    lmc_backend_fail(be, op, LMC_EIO, "%s", msg);
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

extern "C" const char *lmc_cuda_error(lmc_backend *be) { return lmc_backend_error(be); }

extern "C" void lmc_cuda_set_fused_gelu(lmc_backend *be, int on)
{
    cu_of(be)->fuse_gelu = on != 0;
    cu_of(be)->algo_next = 0; /* the cached algorithms were chosen for the other path */
    memset(cu_of(be)->algos, 0, sizeof cu_of(be)->algos);
}

void cu_enter(lmc_backend *be, lmc_op op)
{
    lmc_cuda *c = cu_of(be);
    c->op = op;
    if (op != LMC_OP_sync)
        c->last_kernel = op;
    int cur = -1;
    if (cudaGetDevice(&cur) != cudaSuccess || cur != c->device)
        cu_ok(be, cudaSetDevice(c->device), "cudaSetDevice");
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

void *cu_alloc(lmc_backend *be, size_t bytes)
{
    lmc_cuda *c = cu_of(be);
    cu_enter(be, LMC_OP_alloc);
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
        lmc_backend_pending(be); /* the message, for the caller that sees NULL */
        return NULL;
    }
    return p;
}

void cu_free(lmc_backend *be, void *p)
{
    if (!p)
        return;
    cu_enter(be, LMC_OP_free);
    cu_ok(be, cudaStreamSynchronize(cu_of(be)->stream), "free: sync");
    cu_ok(be, cudaFree(p), "cudaFree");
}

/* Host -> device without waiting: the bytes are copied into a pinned staging
 * slot (after that slot's previous copy finished), then the DMA is queued on
 * the stream. The caller may reuse host_src as soon as we return. */
void cu_upload(lmc_backend *be, void *dst, const void *host_src, size_t bytes)
{
    lmc_cuda *c = cu_of(be);
    cu_enter(be, LMC_OP_upload);
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

void cu_download(lmc_backend *be, void *host_dst, const void *src, size_t bytes)
{
    lmc_cuda *c = cu_of(be);
    cu_enter(be, LMC_OP_download);
    if (!bytes)
        return;
    cu_ok(be, cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, c->stream), "download");
    cu_ok(be, cudaStreamSynchronize(c->stream), "download: sync");
}

void cu_copy(lmc_backend *be, void *dst, const void *src, size_t bytes)
{
    cu_enter(be, LMC_OP_copy);
    if (bytes && dst != src)
        cu_ok(be, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cu_of(be)->stream), "copy");
}

void cu_zero(lmc_backend *be, void *p, size_t bytes)
{
    cu_enter(be, LMC_OP_zero);
    if (bytes)
        cu_ok(be, cudaMemsetAsync(p, 0, bytes, cu_of(be)->stream), "zero");
}

/* Page-locked host memory (cudaMallocHost): a communicator's staging. */
void *cu_host_alloc(lmc_backend *be, size_t bytes)
{
    void *p = NULL;
    cu_enter(be, LMC_OP_host_alloc);
    cudaError_t e = cudaMallocHost(&p, bytes ? bytes : 64);
    if (e != cudaSuccess) {
        lmc_err(LMC_ENOMEM, "%s: cannot allocate %zu bytes of page-locked host memory: %s", be->name, bytes,
                cudaGetErrorString(e));
        return NULL;
    }
    return p;
}

void cu_host_free(lmc_backend *be, void *p)
{
    if (!p)
        return;
    cu_enter(be, LMC_OP_host_free);
    cu_ok(be, cudaFreeHost(p), "host_free");
}

/* A kernel that failed on the device shows only here: the error names the
 * last op that queued work, as the one it happened in or after. */
lmc_status cu_sync(lmc_backend *be)
{
    lmc_cuda *c = cu_of(be);
    lmc_op last = c->last_kernel;
    cu_enter(be, LMC_OP_sync);
    cudaError_t e = cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess)
        lmc_backend_fail(be, LMC_OP_sync, LMC_EIO, "%s (%s) in work queued up to %s", cudaGetErrorString(e),
                         cudaGetErrorName(e), lmc_op_name(last));
    return lmc_backend_pending(be);
}

void *cu_stream(lmc_backend *be) { return (void *)cu_of(be)->stream; }

/* event: a cudaEvent_t the caller created on this backend's device */
lmc_status cu_event_record(lmc_backend *be, void *event)
{
    cu_enter(be, LMC_OP_event_record);
    cudaError_t e = cudaEventRecord((cudaEvent_t)event, cu_of(be)->stream);
    return e == cudaSuccess ? LMC_OK : lmc_err(LMC_EIO, "%s: event_record: %s", be->name, cudaGetErrorString(e));
}

lmc_status cu_event_wait(lmc_backend *be, void *event)
{
    cu_enter(be, LMC_OP_event_wait);
    cudaError_t e = cudaStreamWaitEvent(cu_of(be)->stream, (cudaEvent_t)event, 0);
    return e == cudaSuccess ? LMC_OK : lmc_err(LMC_EIO, "%s: event_wait: %s", be->name, cudaGetErrorString(e));
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

void cu_destroy(lmc_backend *be)
{
    cu_enter(be, LMC_OP_destroy);
    cu_release(cu_of(be));
    free(be->impl);
    free(be);
}

/* Any size; matmul and cast in fp32 or bf16, linear's weights also int8;
 * attention by head size and shared memory (attention.cu). */
int cu_supports(lmc_backend *be, const lmc_op_query *q, char *why, size_t why_len)
{
    int ok = 1;
    switch (q->op) {
    case LMC_OP_attention_forward:
    case LMC_OP_attention_backward:
    case LMC_OP_attention_decode:
        return cu_attention_supports(be, q, why, why_len);
    case LMC_OP_linear:
        ok = q->dtype == LMC_F32 || q->dtype == LMC_BF16 || q->dtype == LMC_I8;
        break;
    case LMC_OP_matmul:
    case LMC_OP_cast:
        ok = q->dtype == LMC_F32 || q->dtype == LMC_BF16;
        break;
    default:
        break;
    }
    if (!ok)
        snprintf(why, why_len, "dtype %d is not supported (supported: fp32, bf16%s)", (int)q->dtype,
                 q->op == LMC_OP_linear ? ", int8" : "");
    return ok;
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

/* The chip catalogue's vendor figures (backend/peaks.h: the table lmc plan
 * uses, with its sources), by the name the device reports ("NVIDIA H100 80GB
 * HBM3"); a part it does not list gets SMs x clock x the rate per SM. fp32
 * is plain fp32 unless LMC_CUDA_F32_TF32. */
double cu_peak_flops(lmc_backend *be, lmc_dtype prec)
{
    lmc_cuda *c = cu_of(be);
    double peak = lmc_chip_peak_named(c->dev_name, prec);
    if (peak > 0)
        return peak;
    double per_bf = 0, per_f = 0;
    per_sm_clock(c->cc_major, c->cc_minor, &per_bf, &per_f);
    per_f = LMC_CUDA_F32_TF32 ? per_bf / 2 : per_f;
    return (double)c->sm_count * c->clock_khz * 1e3 * (prec == LMC_BF16 ? per_bf : per_f);
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

/* Every op is cu_<op> (declared from backend.h's list in cuda_common.cuh),
 * except those this backend does not have, empty in the table. */
#define cu_xent_part nullptr
static void fill_ops(lmc_backend_ops *o)
{
    memset(o, 0, sizeof *o);
#define CU_FILL_(kind, name, ret, params) o->name = cu_##name;
    LMC_BACKEND_OPS(CU_FILL_)
#undef CU_FILL_
}
#undef cu_xent_part

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
    be->host_memory = 0;
    be->deterministic = 1; /* fixed reduction orders, no atomics; cuBLASLt's in-place split-k is ordered */

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

/* ---------- the plugin's entry point ---------- */

/* The devices here, one line each; with none, why. */
static lmc_status cu_probe(int *count, char *desc, size_t len)
{
    int n = 0, drv = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    *count = 0;
    desc[0] = 0;
    if (e != cudaSuccess || n <= 0) {
        cudaGetLastError();
        cudaDriverGetVersion(&drv);
        if (e == cudaErrorInsufficientDriver && drv != 0)
            return no_device(0, 0, e); /* names the driver and toolkit versions */
        return lmc_err(LMC_EUNSUPPORTED, "no CUDA device: cudaGetDeviceCount: %s%s",
                       e != cudaSuccess ? cudaGetErrorString(e) : "0 devices",
                       e == cudaErrorInsufficientDriver ? " (no NVIDIA driver: libcuda.so not found)" : "");
    }
    size_t at = 0;
    for (int d = 0; d < n && at < len; d++) {
        cudaDeviceProp p;
        if (cudaGetDeviceProperties(&p, d) != cudaSuccess) {
            cudaGetLastError();
            continue;
        }
        at += (size_t)snprintf(desc + at, len - at, "%scuda:%d %s (sm_%d%d, %d SMs)", at ? "; " : "", d, p.name,
                               p.major, p.minor, p.multiProcessorCount);
    }
    if (at < len)
        snprintf(desc + at, len - at, "; fp32 matmuls %s", CU_F32_MODE);
    *count = n;
    return LMC_OK;
}

static lmc_status cu_plugin_open(int index, int threads, lmc_backend **out)
{
    return lmc_cuda_backend_open(index, out);
}

static const lmc_backend_plugin cu_plugin = {LMC_BACKEND_ABI, sizeof(lmc_backend_ops), "cuda",
                                             "NVIDIA GPUs (CUDA runtime, cuBLASLt; fp32 matmuls " CU_F32_MODE ")",
                                             cu_plugin_open, cu_probe};

extern "C" const lmc_backend_plugin *lmc_backend_plugin_entry(void) { return &cu_plugin; }
