/* emu_runtime.cpp: the CUDA runtime of the emulation: one device, memory
 * spaces, streams that queue their work, events, errors.
 *
 * Streams: every asynchronous call (a launch, cudaMemcpyAsync, cudaMemsetAsync,
 * cublasLtMatmul, cudaFreeAsync, an event record) is queued on its stream
 * and runs only when the host waits: cudaStreamSynchronize, cudaEventSynchronize
 * (up to the event), cudaDeviceSynchronize, and the calls that synchronise
 * implicitly (cudaMemcpy, cudaFree, cudaFreeHost, cudaStreamDestroy). The
 * device is thus as far behind the host as it can be, so a missing
 * synchronisation reads stale memory. As on the device, an asynchronous
 * copy from pinned host memory reads it when the copy runs, one from
 * pageable memory takes the bytes at the call, and a copy to pageable
 * memory waits for the stream. Memory spaces are checked: a copy or memset
 * whose device side is not inside one live device allocation fails
 * (cudaErrorInvalidValue). Device memory starts as NaN bytes. */
#include "emu_internal.h"

#include <deque>
#include <map>
#include <stdio.h>
#include <stdlib.h>
#include <vector>

static thread_local cudaError_t t_last = cudaSuccess;
static cudaError_t g_sticky = cudaSuccess, g_pending = cudaSuccess;

static int env_on(const char *name) { return getenv(name) != nullptr; }

/* ---------- errors ---------- */

void emu_set_last_error(cudaError_t e) { t_last = g_sticky ? g_sticky : e; }
void emu_set_pending_error(cudaError_t e)
{
    if (!g_pending)
        g_pending = e;
}

void emu_device_fault(cudaError_t e, const char *what)
{
    fprintf(stderr, "emu: device fault (%s): %s; the context is unusable from now on\n", cudaGetErrorName(e), what);
    if (!g_sticky)
        g_sticky = e;
}

/* what a synchronising call returns after the work it waited for ran */
static cudaError_t sync_status(void)
{
    if (g_sticky)
        return g_sticky;
    cudaError_t e = g_pending;
    g_pending = cudaSuccess;
    return e;
}

cudaError_t cudaGetLastError(void)
{
    if (g_sticky)
        return g_sticky;
    cudaError_t e = t_last;
    t_last = cudaSuccess;
    if (!e) {
        e = g_pending;
        g_pending = cudaSuccess;
    }
    return e;
}

#define ERRORS(X)                                                                                                    \
    X(cudaSuccess, "no error")                                                                                       \
    X(cudaErrorInvalidValue, "invalid argument")                                                                     \
    X(cudaErrorMemoryAllocation, "out of memory")                                                                    \
    X(cudaErrorInvalidConfiguration, "invalid configuration argument")                                               \
    X(cudaErrorInsufficientDriver, "CUDA driver version is insufficient for CUDA runtime version")                  \
    X(cudaErrorNoDevice, "no CUDA-capable device is detected")                                                       \
    X(cudaErrorNoKernelImageForDevice, "no kernel image is available for execution on the device")                  \
    X(cudaErrorNotReady, "device not ready")                                                                         \
    X(cudaErrorMisalignedAddress, "misaligned address")                                                              \
    X(cudaErrorNotSupported, "operation not supported")

const char *cudaGetErrorString(cudaError_t e)
{
#define X(code, text)                                                                                                \
    if (e == code)                                                                                                   \
        return text;
    ERRORS(X)
#undef X
    return "unknown error";
}

const char *cudaGetErrorName(cudaError_t e)
{
#define X(code, text)                                                                                                \
    if (e == code)                                                                                                   \
        return #code;
    ERRORS(X)
#undef X
    return "cudaErrorUnknown";
}

/* ---------- the device ---------- */

static int no_device(void) { return env_on("EMU_NO_DEVICE") || env_on("EMU_OLD_DRIVER"); }
int emu_no_kernel_image(void) { return env_on("EMU_NO_KERNEL_IMAGE"); }

cudaError_t cudaGetDeviceCount(int *n)
{
    *n = no_device() ? 0 : 1;
    /* EMU_OLD_DRIVER: a driver older than the toolkit (CUDA 13 needs R580) */
    return env_on("EMU_OLD_DRIVER") ? cudaErrorInsufficientDriver : no_device() ? cudaErrorNoDevice : cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int *v)
{
    *v = env_on("EMU_OLD_DRIVER") ? 12040 : 13000;
    return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int *v)
{
    *v = 13000;
    return cudaSuccess;
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
    const char *name = getenv("EMU_DEVICE_NAME"); /* another part's name (peak FLOP/s) */
    snprintf(p->name, sizeof p->name, "%s", name ? name : "EMU H100 80GB HBM3 (host emulation)");
    p->multiProcessorCount = 132;
    p->major = 9;
    p->minor = 0;
    return d == 0 ? cudaSuccess : cudaErrorInvalidValue;
}
int emu_smem_optin(void)
{
    /* EMU_SMEM_OPTIN=bytes: a smaller device (A100: 166912) */
    const char *optin = getenv("EMU_SMEM_OPTIN");
    return optin ? atoi(optin) : 232448;
}
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int d)
{
    switch (a) {
    case cudaDevAttrClockRate: *v = 1980000; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = emu_smem_optin(); break;
    case cudaDevAttrMemoryPoolsSupported: *v = !env_on("EMU_NO_MEMPOOLS"); break; /* e.g. some vGPUs */
    default: *v = 0;
    }
    return d == 0 ? cudaSuccess : cudaErrorInvalidValue;
}

/* ---------- streams and events ---------- */

struct emu_stream {
    std::deque<std::function<void()>> q;
    uint64_t queued = 0, done = 0; /* work items ever queued, ever run */
};
struct emu_event {
    emu_stream *s = nullptr;
    uint64_t seq = 0; /* complete once s->done reaches it */
};

static emu_stream g_legacy;
static std::vector<emu_stream *> g_streams = {&g_legacy};

static emu_stream *stream_of(cudaStream_t s)
{
    return s == nullptr || s == cudaStreamLegacy ? &g_legacy : (emu_stream *)s;
}

void emu_enqueue(cudaStream_t s, std::function<void()> work)
{
    if (g_sticky) /* a faulted context runs nothing more */
        return;
    emu_stream *st = stream_of(s);
    st->q.push_back(std::move(work));
    st->queued++;
}

static void drain(emu_stream *st, uint64_t upto)
{
    while (st->done < upto && !st->q.empty()) {
        std::function<void()> w = std::move(st->q.front());
        st->q.pop_front();
        st->done++;
        if (!g_sticky)
            w();
    }
}

/* the legacy default stream and blocking streams wait for one another */
static void drain_all(void)
{
    for (size_t i = 0; i < g_streams.size(); i++)
        drain(g_streams[i], UINT64_MAX);
}

cudaError_t cudaStreamCreate(cudaStream_t *s)
{
    emu_stream *st = new emu_stream;
    g_streams.push_back(st);
    *s = (cudaStream_t)st;
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s)
{
    emu_stream *st = stream_of(s);
    if (st == &g_legacy)
        return cudaErrorInvalidValue;
    drain(st, UINT64_MAX);
    for (size_t i = 0; i < g_streams.size(); i++)
        if (g_streams[i] == st)
            g_streams.erase(g_streams.begin() + (long)i);
    delete st;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s)
{
    if (stream_of(s) == &g_legacy)
        drain_all();
    else
        drain(stream_of(s), UINT64_MAX);
    return sync_status();
}
cudaError_t cudaDeviceSynchronize(void)
{
    drain_all();
    return sync_status();
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned)
{
    *e = (cudaEvent_t) new emu_event;
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e)
{
    delete (emu_event *)e;
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e0, cudaStream_t s)
{
    emu_event *e = (emu_event *)e0;
    emu_enqueue(s, []() {});
    e->s = stream_of(s);
    e->seq = e->s->queued;
    return g_sticky;
}
/* Work queued on s from now on runs after the event's stream reached the
 * event: a marker in s's queue that, when s runs it, first runs the other
 * stream up to the event (an event never recorded: nothing to wait for). */
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e0, unsigned int flags)
{
    emu_event *e = (emu_event *)e0;
    if (flags)
        return cudaErrorInvalidValue;
    emu_stream *from = e->s;
    uint64_t upto = e->seq;
    emu_enqueue(s, [from, upto]() {
        if (from)
            drain(from, upto);
    });
    return g_sticky;
}
/* an event never recorded is complete, as on the device */
cudaError_t cudaEventSynchronize(cudaEvent_t e0)
{
    emu_event *e = (emu_event *)e0;
    if (e->s)
        drain(e->s, e->seq);
    return sync_status();
}

/* ---------- memory ---------- */

/* live allocations: key(base) -> bytes. The key sets the top bit (same
 * order, not a pointer), so LeakSanitizer still reports leaked device memory. */
static std::map<uintptr_t, size_t> g_device, g_pinned;
static uintptr_t key(const void *p) { return (uintptr_t)p | (uintptr_t)1 << 63; }

static int inside(const std::map<uintptr_t, size_t> &m, const void *p, size_t n)
{
    uintptr_t u = key(p);
    auto it = m.upper_bound(u);
    if (it == m.begin())
        return 0;
    --it;
    return u >= it->first && u + n <= it->first + it->second;
}
int emu_is_device(const void *p, size_t n) { return inside(g_device, p, n); }

/* device memory starts as garbage: NaN bytes, so code that relies on zeroed
 * memory without zeroing it fails its test */
cudaError_t cudaMalloc(void **p, size_t n)
{
    if (g_sticky)
        return g_sticky;
    *p = aligned_alloc(256, (n + 255) / 256 * 256);
    if (!*p)
        return cudaErrorMemoryAllocation;
    memset(*p, 0xff, n);
    g_device[key(*p)] = n;
    return cudaSuccess;
}
/* synchronises the device first, as cudaFree does */
cudaError_t cudaFree(void *p)
{
    drain_all();
    if (!p)
        return sync_status();
    if (!g_device.erase(key(p)))
        return cudaErrorInvalidValue;
    free(p);
    return sync_status();
}
cudaError_t cudaMallocAsync(void **p, size_t n, cudaStream_t)
{
    if (env_on("EMU_NO_MEMPOOLS"))
        return cudaErrorNotSupported;
    return cudaMalloc(p, n);
}
/* frees when the stream gets there: work queued before still has the memory */
cudaError_t cudaFreeAsync(void *p, cudaStream_t s)
{
    if (env_on("EMU_NO_MEMPOOLS"))
        return cudaErrorNotSupported;
    if (!p)
        return g_sticky;
    if (g_device.find(key(p)) == g_device.end())
        return cudaErrorInvalidValue;
    emu_enqueue(s, [p]() {
        g_device.erase(key(p));
        free(p);
    });
    return g_sticky;
}
cudaError_t cudaMallocHost(void **p, size_t n)
{
    *p = malloc(n ? n : 1);
    if (!*p)
        return cudaErrorMemoryAllocation;
    g_pinned[key(*p)] = n;
    return cudaSuccess;
}
cudaError_t cudaFreeHost(void *p)
{
    drain_all();
    if (!g_pinned.erase(key(p)))
        return cudaErrorInvalidValue;
    free(p);
    return sync_status();
}
cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b)
{
    *free_b = *total_b = (size_t)80 << 30;
    return cudaSuccess;
}

/* Are the two sides of a copy in the memory spaces its kind says? */
static int spaces_ok(void *d, const void *s, size_t n, cudaMemcpyKind k)
{
    int dd = k == cudaMemcpyHostToDevice || k == cudaMemcpyDeviceToDevice;
    int sd = k == cudaMemcpyDeviceToHost || k == cudaMemcpyDeviceToDevice;
    return (!dd || emu_is_device(d, n)) && (!sd || emu_is_device(s, n)) && (dd || !emu_is_device(d, n)) &&
           (sd || !emu_is_device(s, n));
}

/* what any copy checks first: a faulted context, the memory spaces */
static cudaError_t copy_check(void *d, const void *s, size_t n, cudaMemcpyKind k)
{
    if (g_sticky || !n)
        return g_sticky;
    return spaces_ok(d, s, n, k) ? cudaSuccess : cudaErrorInvalidValue;
}

cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind k)
{
    drain_all(); /* the legacy default stream: after all work of blocking streams */
    cudaError_t e = copy_check(d, s, n, k);
    if (e || !n)
        return e;
    memmove(d, s, n);
    return sync_status();
}

cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind k, cudaStream_t st)
{
    cudaError_t e = copy_check(d, s, n, k);
    if (e || !n)
        return e;
    if (k == cudaMemcpyHostToDevice && !inside(g_pinned, s, n)) {
        /* pageable source: staged by the driver, the caller may reuse it */
        std::vector<unsigned char> bytes((const unsigned char *)s, (const unsigned char *)s + n);
        emu_enqueue(st, [d, bytes]() { memcpy(d, bytes.data(), bytes.size()); });
        return cudaSuccess;
    }
    if (k == cudaMemcpyDeviceToHost && !inside(g_pinned, d, n)) {
        /* pageable destination: returns once the copy is done */
        drain(stream_of(st), UINT64_MAX);
        if (g_sticky)
            return g_sticky;
        memcpy(d, s, n);
        return cudaSuccess;
    }
    emu_enqueue(st, [d, s, n]() { memmove(d, s, n); });
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t st)
{
    if (g_sticky)
        return g_sticky;
    if (!n)
        return cudaSuccess;
    if (!emu_is_device(p, n))
        return cudaErrorInvalidValue;
    emu_enqueue(st, [p, v, n]() { memset(p, v, n); });
    return cudaSuccess;
}
