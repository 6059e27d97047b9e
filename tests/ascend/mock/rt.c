/* rt.c: the mock AscendCL runtime: init, devices, tagged device memory,
 * pinned host memory, copies, streams that run at synchronisation, events,
 * error messages. */
#define _GNU_SOURCE
#include "mock.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define RESERVE ((size_t)64 << 30) /* device address space: never touched by the host */
#define ALIGN 512

/* ---------- errors ---------- */

static __thread char recent[1024];

int mock_err(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(recent, sizeof recent, fmt, ap);
    va_end(ap);
    if (getenv("MOCK_TRACE"))
        fprintf(stderr, "ascend mock: error %d: %s\n", code, recent);
    return code;
}

const char *aclGetRecentErrMsg(void) { return recent; }

/* ---------- device memory ---------- */

typedef struct {
    uint64_t addr;
    size_t bytes;
    char *host;
    int freed;
} block;

static struct {
    pthread_mutex_t mu;
    char *base; /* the reserved range: device addresses */
    size_t next;
    block *b;
    int n, cap;
    void **pinned;
    size_t *pinned_bytes;
    int n_pinned, cap_pinned;
    int inited, device, deterministic;
} M = {PTHREAD_MUTEX_INITIALIZER};

static int reserve(void)
{
    if (M.base)
        return 0;
    void *p = mmap(NULL, RESERVE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return mock_err(MOCK_BAD_ARG, "cannot reserve the mock device's address space");
    M.base = p;
    M.next = ALIGN; /* no block at offset 0 */
    return 0;
}

/* The block holding addr (live or freed), or NULL. Blocks are in address order. */
static block *find(uint64_t addr)
{
    int lo = 0, hi = M.n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        block *k = &M.b[mid];
        if (addr < k->addr)
            hi = mid - 1;
        else if (addr >= k->addr + (k->bytes ? k->bytes : 1))
            lo = mid + 1;
        else
            return k;
    }
    return NULL;
}

void *mock_dev(uint64_t addr, size_t bytes, const char *what)
{
    pthread_mutex_lock(&M.mu);
    block *k = find(addr);
    void *h = NULL;
    if (!k)
        mock_err(MOCK_PARAM_INVALID, "%s: address %#llx is not device memory (a host pointer passed as device memory, "
                 "or never allocated)", what, (unsigned long long)addr);
    else if (k->freed)
        mock_err(MOCK_PARAM_INVALID, "%s: address %#llx is in device memory already freed (aclrtFree)", what,
                 (unsigned long long)addr);
    else if (addr + bytes > k->addr + k->bytes)
        mock_err(MOCK_PARAM_INVALID, "%s: %zu bytes at offset %llu run past the end of a %zu-byte allocation", what,
                 bytes, (unsigned long long)(addr - k->addr), k->bytes);
    else
        h = k->host + (addr - k->addr);
    pthread_mutex_unlock(&M.mu);
    return h;
}

static int is_device(const void *p) { return M.base && (const char *)p >= M.base && (const char *)p < M.base + RESERVE; }

int aclrtMalloc(void **dev, size_t size, int policy)
{
    if (!dev || !size)
        return mock_err(MOCK_BAD_ARG, "aclrtMalloc: %s", !dev ? "devPtr is NULL" : "size 0");
    pthread_mutex_lock(&M.mu);
    int e = reserve();
    size_t span = (size + ALIGN - 1) / ALIGN * ALIGN;
    if (!e && M.next + span > RESERVE)
        e = mock_err(207001, "aclrtMalloc: the mock device is out of memory (%zu bytes asked)", size);
    if (!e && M.n == M.cap) {
        int cap = M.cap ? 2 * M.cap : 256;
        block *nb = realloc(M.b, (size_t)cap * sizeof *nb);
        if (!nb)
            e = mock_err(207001, "aclrtMalloc: out of host memory");
        else
            M.b = nb, M.cap = cap;
    }
    char *h = e ? NULL : malloc(size);
    if (!e && !h)
        e = mock_err(207001, "aclrtMalloc: out of host memory for %zu bytes", size);
    if (!e) {
        memset(h, 0xa5, size); /* device memory is not zeroed */
        M.b[M.n++] = (block){(uint64_t)(uintptr_t)(M.base + M.next), size, h, 0};
        *dev = M.base + M.next;
        M.next += span;
    }
    pthread_mutex_unlock(&M.mu);
    return e;
}

int aclrtFree(void *dev)
{
    pthread_mutex_lock(&M.mu);
    block *k = is_device(dev) ? find((uint64_t)(uintptr_t)dev) : NULL;
    int e = 0;
    if (!k || k->addr != (uint64_t)(uintptr_t)dev)
        e = mock_err(MOCK_BAD_ARG, "aclrtFree: %p is not the start of a device allocation", dev);
    else if (k->freed)
        e = mock_err(MOCK_BAD_ARG, "aclrtFree: %p freed twice", dev);
    else {
        free(k->host);
        k->host = NULL;
        k->freed = 1;
    }
    pthread_mutex_unlock(&M.mu);
    return e;
}

int aclrtMallocHost(void **host, size_t size)
{
    pthread_mutex_lock(&M.mu);
    int e = 0;
    if (M.n_pinned == M.cap_pinned) {
        int cap = M.cap_pinned ? 2 * M.cap_pinned : 16;
        void **np = realloc(M.pinned, (size_t)cap * sizeof *np);
        size_t *nb = np ? realloc(M.pinned_bytes, (size_t)cap * sizeof *nb) : NULL;
        if (np)
            M.pinned = np;
        if (nb)
            M.pinned_bytes = nb, M.cap_pinned = cap;
        else
            e = mock_err(207001, "aclrtMallocHost: out of memory");
    }
    void *p = e ? NULL : calloc(1, size ? size : 1);
    if (!e && p) {
        M.pinned[M.n_pinned] = p;
        M.pinned_bytes[M.n_pinned++] = size;
        *host = p;
    } else if (!e) {
        e = mock_err(207001, "aclrtMallocHost: out of memory");
    }
    pthread_mutex_unlock(&M.mu);
    return e;
}

int aclrtFreeHost(void *host)
{
    pthread_mutex_lock(&M.mu);
    int e = mock_err(MOCK_BAD_ARG, "aclrtFreeHost: %p was not from aclrtMallocHost", host);
    for (int i = 0; i < M.n_pinned; i++)
        if (M.pinned[i] == host) {
            free(host);
            M.pinned[i] = M.pinned[--M.n_pinned];
            M.pinned_bytes[i] = M.pinned_bytes[M.n_pinned];
            e = 0;
            break;
        }
    pthread_mutex_unlock(&M.mu);
    return e;
}

int mock_pinned(const void *p, size_t bytes)
{
    pthread_mutex_lock(&M.mu);
    int ok = 0;
    for (int i = 0; i < M.n_pinned && !ok; i++)
        ok = (const char *)p >= (char *)M.pinned[i] && (const char *)p + bytes <= (char *)M.pinned[i] + M.pinned_bytes[i];
    pthread_mutex_unlock(&M.mu);
    return ok;
}

/* ---------- init, devices ---------- */

int aclInit(const char *config)
{
    if (M.inited)
        return mock_err(100002, "aclInit: repeated initialisation");
    M.inited = 1;
    return 0;
}

int aclFinalize(void) { return 0; }

static int device_count(void)
{
    const char *n = getenv("MOCK_NPU_COUNT");
    return n ? atoi(n) : 8;
}

int aclrtGetDeviceCount(uint32_t *count)
{
    if (!M.inited)
        return mock_err(100000, "aclrtGetDeviceCount before aclInit");
    *count = (uint32_t)device_count();
    return 0;
}

int aclrtSetDevice(int32_t device)
{
    if (!M.inited)
        return mock_err(100000, "aclrtSetDevice before aclInit");
    if (device < 0 || device >= device_count())
        return mock_err(107001, "aclrtSetDevice: device %d does not exist (%d devices)", device, device_count());
    M.device = device;
    return 0;
}

int aclrtResetDevice(int32_t device) { return 0; }

const char *aclrtGetSocName(void)
{
    const char *s = getenv("MOCK_SOC");
    return s ? s : "Ascend910B2";
}

int aclrtGetMemInfo(int attr, size_t *free_bytes, size_t *total_bytes)
{
    *total_bytes = (size_t)64 << 30;
    *free_bytes = *total_bytes - M.next;
    return 0;
}

int aclrtCtxSetSysParamOpt(int opt, int64_t value)
{
    if (opt == 0)
        M.deterministic = value != 0;
    return 0;
}

/* ---------- copies ---------- */

static const char *const kinds[] = {"host to host", "host to device", "device to host", "device to device"};

/* Host addresses of a copy after checking the direction it claims. */
static int copy_ends(void *dst, const void *src, size_t n, int kind, void **hd, const void **hs, const char *what)
{
    if (kind < 0 || kind > 3)
        return mock_err(MOCK_BAD_ARG, "%s: copy kind %d not supported", what, kind);
    int dd = kind == 1 || kind == 3, sd = kind == 2 || kind == 3;
    if (dd != is_device(dst) || sd != is_device(src))
        return mock_err(MOCK_BAD_ARG, "%s (%s): the %s pointer %p is %s memory", what, kinds[kind],
                        dd != is_device(dst) ? "destination" : "source", dd != is_device(dst) ? dst : src,
                        is_device(dd != is_device(dst) ? dst : src) ? "device" : "host");
    *hd = dd ? mock_dev((uint64_t)(uintptr_t)dst, n, what) : dst;
    *hs = sd ? mock_dev((uint64_t)(uintptr_t)src, n, what) : src;
    return *hd && *hs ? 0 : MOCK_BAD_ARG;
}

/* Synchronous: does not wait for any stream (nor does the real one). */
int aclrtMemcpy(void *dst, size_t dst_max, const void *src, size_t count, int kind)
{
    void *hd;
    const void *hs;
    if (count > dst_max)
        return mock_err(MOCK_BAD_ARG, "aclrtMemcpy: %zu bytes into a %zu-byte destination", count, dst_max);
    int e = copy_ends(dst, src, count, kind, &hd, &hs, "aclrtMemcpy");
    if (!e)
        memmove(hd, hs, count);
    return e;
}

typedef struct {
    void *dst;
    const void *src;
    size_t n;
    int kind, value, memset;
} copy_task;

static void run_copy(void *arg)
{
    copy_task *c = arg;
    void *hd;
    const void *hs = NULL;
    if (c->memset) {
        if ((hd = mock_dev((uint64_t)(uintptr_t)c->dst, c->n, "aclrtMemsetAsync")))
            memset(hd, c->value, c->n);
        else
            mock_task_fail("%s", aclGetRecentErrMsg());
        return;
    }
    if (copy_ends(c->dst, c->src, c->n, c->kind, &hd, &hs, "aclrtMemcpyAsync"))
        mock_task_fail("%s", aclGetRecentErrMsg());
    else
        memmove(hd, hs, c->n);
}

int aclrtMemcpyAsync(void *dst, size_t dst_max, const void *src, size_t count, int kind, void *stream)
{
    void *hd;
    const void *hs;
    if (count > dst_max)
        return mock_err(MOCK_BAD_ARG, "aclrtMemcpyAsync: %zu bytes into a %zu-byte destination", count, dst_max);
    int e = copy_ends(dst, src, count, kind, &hd, &hs, "aclrtMemcpyAsync");
    if (e)
        return e;
    if ((kind == 1 && !mock_pinned(src, count)) || (kind == 2 && !mock_pinned(dst, count)))
        return mock_err(MOCK_BAD_ARG, "aclrtMemcpyAsync (%s): the host side %p is not pinned memory from "
                        "aclrtMallocHost", kinds[kind], kind == 1 ? src : (const void *)dst);
    copy_task *c = malloc(sizeof *c);
    *c = (copy_task){dst, src, count, kind, 0, 0};
    return mock_enqueue(stream, run_copy, c, free, "aclrtMemcpyAsync");
}

int aclrtMemsetAsync(void *dev, size_t max, int32_t value, size_t count, void *stream)
{
    if (count > max)
        return mock_err(MOCK_BAD_ARG, "aclrtMemsetAsync: count %zu > max %zu", count, max);
    if (!mock_dev((uint64_t)(uintptr_t)dev, count, "aclrtMemsetAsync"))
        return MOCK_BAD_ARG;
    copy_task *c = malloc(sizeof *c);
    *c = (copy_task){dev, NULL, count, 0, value, 1};
    return mock_enqueue(stream, run_copy, c, free, "aclrtMemsetAsync");
}
