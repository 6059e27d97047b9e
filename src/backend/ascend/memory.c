/* memory.c: device memory, copies, the stream and events (AscendCL).
 *
 * Every op queues work on the backend's one stream. Host <-> device copies
 * first wait for the stream, then copy synchronously (aclrtMemcpy does not
 * order itself after queued work: without the wait a download would read
 * what the queued ops have not written yet, and an upload could overwrite
 * a buffer they still read). Device copies and zeroing are queued. */
#include "backend/ascend/npu.h"

#include <stdio.h>
#include <stdlib.h>

static void remember(lmc_backend *be, void *p, size_t bytes)
{
    npu_state *s = npu_of(be);
    if (s->n_blocks == s->cap_blocks) {
        int cap = s->cap_blocks ? 2 * s->cap_blocks : 64;
        void *nb = realloc(s->blocks, (size_t)cap * sizeof *s->blocks);
        if (!nb)
            return; /* only embeddings need it: they fail naming the table */
        s->blocks = nb;
        s->cap_blocks = cap;
    }
    s->blocks[s->n_blocks].p = p;
    s->blocks[s->n_blocks++].bytes = bytes;
}

static void forget(lmc_backend *be, void *p)
{
    npu_state *s = npu_of(be);
    for (int i = 0; i < s->n_blocks; i++)
        if (s->blocks[i].p == p) {
            s->blocks[i] = s->blocks[--s->n_blocks];
            return;
        }
}

size_t npu_block_rest(lmc_backend *be, const void *p)
{
    npu_state *s = npu_of(be);
    const char *c = p;
    for (int i = 0; i < s->n_blocks; i++)
        if (c >= s->blocks[i].p && c < s->blocks[i].p + s->blocks[i].bytes)
            return (size_t)(s->blocks[i].p + s->blocks[i].bytes - c);
    return 0;
}

void *npu_alloc(lmc_backend *be, size_t bytes)
{
    npu_state *s = npu_of(be);
    npu_enter(be, LMC_OP_alloc);
    size_t n = bytes ? bytes : 512; /* never NULL for 0 bytes: NULL means failure */
    void *p = NULL;
    acl_error e = s->api->aclrtMalloc(&p, n, NPU_MEM_MALLOC_HUGE_FIRST);
    if (e != NPU_ACL_SUCCESS) {
        size_t free_b = 0, total_b = 0;
        s->api->aclrtGetMemInfo(NPU_HBM_MEM, &free_b, &total_b);
        lmc_err(LMC_ENOMEM, "%s: cannot allocate %zu bytes of device memory (aclrtMalloc error %d; %zu of %zu MiB "
                "free)", be->name, bytes, e, free_b >> 20, total_b >> 20);
        return NULL;
    }
    /* zeroed, and visible to every stream (a communicator's) on return */
    if (!npu_ok(be, s->api->aclrtMemsetAsync(p, n, 0, n, s->stream), "zeroing new memory") ||
        !npu_drain(be, "zeroing new memory")) {
        s->api->aclrtFree(p);
        lmc_backend_pending(be);
        return NULL;
    }
    remember(be, p, n);
    return p;
}

void npu_free(lmc_backend *be, void *p)
{
    if (!p)
        return;
    npu_enter(be, LMC_OP_free);
    forget(be, p);
    if (npu_drain(be, "free: sync"))
        npu_ok(be, npu_of(be)->api->aclrtFree(p), "aclrtFree");
}

/* Page-locked host memory (aclrtMallocHost): a communicator's staging. */
void *npu_host_alloc(lmc_backend *be, size_t bytes)
{
    void *p = NULL;
    npu_enter(be, LMC_OP_host_alloc);
    acl_error e = npu_of(be)->api->aclrtMallocHost(&p, bytes ? bytes : 64);
    if (e != NPU_ACL_SUCCESS) {
        lmc_err(LMC_ENOMEM, "%s: cannot allocate %zu bytes of page-locked host memory (aclrtMallocHost error %d)",
                be->name, bytes, e);
        return NULL;
    }
    return p;
}

void npu_host_free(lmc_backend *be, void *p)
{
    if (!p)
        return;
    npu_enter(be, LMC_OP_host_free);
    npu_ok(be, npu_of(be)->api->aclrtFreeHost(p), "aclrtFreeHost");
}

void npu_upload(lmc_backend *be, void *dst, const void *host_src, size_t bytes)
{
    npu_enter(be, LMC_OP_upload);
    if (bytes && npu_drain(be, "upload: sync"))
        npu_ok(be, npu_of(be)->api->aclrtMemcpy(dst, bytes, host_src, bytes, NPU_MEMCPY_H2D), "upload: aclrtMemcpy");
}

void npu_download(lmc_backend *be, void *host_dst, const void *src, size_t bytes)
{
    npu_enter(be, LMC_OP_download);
    if (bytes && npu_drain(be, "download: sync"))
        npu_ok(be, npu_of(be)->api->aclrtMemcpy(host_dst, bytes, src, bytes, NPU_MEMCPY_D2H),
               "download: aclrtMemcpy");
}

void npu_copy(lmc_backend *be, void *dst, const void *src, size_t bytes)
{
    npu_state *s = npu_of(be);
    npu_enter(be, LMC_OP_copy);
    if (bytes && dst != src)
        npu_ok(be, s->api->aclrtMemcpyAsync(dst, bytes, src, bytes, NPU_MEMCPY_D2D, s->stream), "aclrtMemcpyAsync");
}

void npu_zero(lmc_backend *be, void *p, size_t bytes)
{
    npu_state *s = npu_of(be);
    npu_enter(be, LMC_OP_zero);
    if (bytes)
        npu_ok(be, s->api->aclrtMemsetAsync(p, bytes, 0, bytes, s->stream), "aclrtMemsetAsync");
}

/* An operator that failed on the device shows here, as the stream's error. */
lmc_status npu_sync(lmc_backend *be)
{
    npu_state *s = npu_of(be);
    lmc_op last = s->op;
    npu_enter(be, LMC_OP_sync);
    acl_error e = s->api->aclrtSynchronizeStream(s->stream);
    if (e != NPU_ACL_SUCCESS)
        lmc_backend_fail(be, LMC_OP_sync, LMC_EIO, "aclrtSynchronizeStream: error %d (%s) in work queued up to %s", e,
                         s->api->aclGetRecentErrMsg(), lmc_op_name(last));
    return lmc_backend_pending(be);
}

void *npu_stream(lmc_backend *be) { return npu_of(be)->stream; }

/* event: an aclrtEvent the caller created */
lmc_status npu_event_record(lmc_backend *be, void *event)
{
    npu_state *s = npu_of(be);
    acl_error e = s->api->aclrtRecordEvent(event, s->stream);
    return e == NPU_ACL_SUCCESS ? LMC_OK : lmc_err(LMC_EIO, "%s: event_record: aclrtRecordEvent error %d", be->name, e);
}

lmc_status npu_event_wait(lmc_backend *be, void *event)
{
    npu_state *s = npu_of(be);
    acl_error e = s->api->aclrtStreamWaitEvent(s->stream, event);
    return e == NPU_ACL_SUCCESS ? LMC_OK
                                : lmc_err(LMC_EIO, "%s: event_wait: aclrtStreamWaitEvent error %d", be->name, e);
}
