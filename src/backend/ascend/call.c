/* call.c: running aclnn operators: tensor views, the two phases, the
 * workspace, per-op scratch and error recording. */
#include "backend/ascend/npu.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ALIGN 512

void npu_fail(lmc_backend *be, const char *fmt, ...)
{
    npu_state *s = npu_of(be);
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->bad = 1;
    lmc_backend_fail(be, s->op, LMC_EIO, "%s", msg);
}

int npu_ok(lmc_backend *be, acl_error e, const char *what)
{
    if (e == NPU_ACL_SUCCESS)
        return 1;
    const char *m = npu_of(be)->api->aclGetRecentErrMsg();
    npu_fail(be, "%s: error %d%s%s", what, e, m && *m ? ": " : "", m && *m ? m : "");
    return 0;
}

int npu_drain(lmc_backend *be, const char *what)
{
    npu_state *s = npu_of(be);
    return npu_ok(be, s->api->aclrtSynchronizeStream(s->stream), what);
}

/* Several chunks after the last op: wait, then replace them by one of
 * their total size, so steady state uses one block and no allocation. */
static void merge_chunks(lmc_backend *be)
{
    npu_state *s = npu_of(be);
    size_t total = 0;
    for (int i = 0; i < s->n_chunk; i++)
        total += s->chunk_bytes[i];
    if (!npu_drain(be, "scratch: sync"))
        return;
    for (int i = 0; i < s->n_chunk; i++)
        s->api->aclrtFree(s->chunk[i]);
    s->n_chunk = 0;
    void *p = NULL;
    if (npu_ok(be, s->api->aclrtMalloc(&p, total, NPU_MEM_MALLOC_HUGE_FIRST), "scratch: aclrtMalloc")) {
        s->chunk[0] = p;
        s->chunk_bytes[0] = total;
        s->n_chunk = 1;
    }
}

void npu_enter(lmc_backend *be, lmc_op op)
{
    npu_state *s = npu_of(be);
    s->op = op;
    s->bad = 0;
    s->n_obj = 0;
    if (s->n_chunk > 1)
        merge_chunks(be);
    s->chunk_used = 0;
}

void *npu_tmp(lmc_backend *be, size_t bytes)
{
    npu_state *s = npu_of(be);
    size_t need = (bytes + ALIGN - 1) / ALIGN * ALIGN;
    if (!need)
        need = ALIGN;
    if (s->bad)
        return NULL;
    /* chunk_used counts within the last chunk */
    if (s->n_chunk && s->chunk_used + need <= s->chunk_bytes[s->n_chunk - 1]) {
        void *p = (char *)s->chunk[s->n_chunk - 1] + s->chunk_used;
        s->chunk_used += need;
        return p;
    }
    if (s->n_chunk == NPU_MAX_CHUNKS) {
        npu_fail(be, "scratch: more than %d blocks in one op", NPU_MAX_CHUNKS);
        return NULL;
    }
    size_t size = need < ((size_t)1 << 20) ? ((size_t)1 << 20) : need;
    void *p = NULL;
    if (!npu_ok(be, s->api->aclrtMalloc(&p, size, NPU_MEM_MALLOC_HUGE_FIRST), "scratch: aclrtMalloc"))
        return NULL;
    s->chunk[s->n_chunk] = p;
    s->chunk_bytes[s->n_chunk++] = size;
    s->chunk_used = need;
    return p;
}

/* obj, remembered for npu_release; NULL (recorded) when creation failed */
static void *keep(lmc_backend *be, void *obj, int kind)
{
    npu_state *s = npu_of(be);
    if (!obj) {
        npu_fail(be, "could not create an aclnn argument (%s)",
                 kind == 0 ? "aclCreateTensor" : kind == 1 ? "aclCreateScalar" : "aclCreate*Array");
        return NULL;
    }
    if (s->n_obj == NPU_MAX_OBJS) {
        npu_fail(be, "more than %d aclnn arguments in one call", NPU_MAX_OBJS);
        return obj;
    }
    s->obj[s->n_obj] = obj;
    s->obj_kind[s->n_obj++] = kind;
    return obj;
}

acl_tensor *npu_tensor(lmc_backend *be, const void *data, int dtype, int ndim, const int64_t *dims,
                       const int64_t *strides)
{
    npu_state *s = npu_of(be);
    int64_t st[8], extent = 1;
    for (int i = ndim - 1; i >= 0; i--)
        st[i] = strides ? strides[i] : (i == ndim - 1 ? 1 : st[i + 1] * dims[i + 1]);
    for (int i = 0; i < ndim; i++)
        extent += dims[i] > 0 ? (dims[i] - 1) * st[i] : 0;
    /* storage: the elements the view spans, starting at data */
    if (s->bad)
        return NULL;
    return keep(be, s->api->aclCreateTensor(dims, (uint64_t)ndim, dtype, st, 0, NPU_ACL_FORMAT_ND, &extent, 1,
                                            (void *)data), 0);
}

acl_tensor *npu_f1(lmc_backend *be, const float *p, int64_t n) { return npu_tensor(be, p, NPU_ACL_FLOAT, 1, &n, NULL); }

acl_tensor *npu_f2(lmc_backend *be, const float *p, int64_t a, int64_t b)
{
    int64_t d[2] = {a, b};
    return npu_tensor(be, p, NPU_ACL_FLOAT, 2, d, NULL);
}

acl_tensor *npu_f3(lmc_backend *be, const float *p, int64_t a, int64_t b, int64_t c)
{
    int64_t d[3] = {a, b, c};
    return npu_tensor(be, p, NPU_ACL_FLOAT, 3, d, NULL);
}

acl_scalar *npu_scalar_f(lmc_backend *be, float v)
{
    npu_state *s = npu_of(be);
    return s->bad ? NULL : keep(be, s->api->aclCreateScalar(&v, NPU_ACL_FLOAT), 1);
}

acl_scalar *npu_scalar_i(lmc_backend *be, int64_t v)
{
    npu_state *s = npu_of(be);
    return s->bad ? NULL : keep(be, s->api->aclCreateScalar(&v, NPU_ACL_INT64), 1);
}

acl_int_array *npu_ints(lmc_backend *be, const int64_t *v, int n)
{
    npu_state *s = npu_of(be);
    return s->bad ? NULL : keep(be, s->api->aclCreateIntArray(v, (uint64_t)n), 2);
}

acl_bool_array *npu_bools(lmc_backend *be, const bool *v, int n)
{
    npu_state *s = npu_of(be);
    return s->bad ? NULL : keep(be, s->api->aclCreateBoolArray(v, (uint64_t)n), 3);
}

void npu_release(lmc_backend *be)
{
    npu_state *s = npu_of(be);
    for (int i = 0; i < s->n_obj; i++) {
        if (s->obj_kind[i] == 0)
            s->api->aclDestroyTensor(s->obj[i]);
        else if (s->obj_kind[i] == 1)
            s->api->aclDestroyScalar(s->obj[i]);
        else if (s->obj_kind[i] == 2)
            s->api->aclDestroyIntArray(s->obj[i]);
        else
            s->api->aclDestroyBoolArray(s->obj[i]);
    }
    s->n_obj = 0;
}

/* The workspace grows to the largest an operator asked for; the old one
 * is freed after the stream drained (queued operators may still use it). */
static void *workspace(lmc_backend *be, uint64_t bytes)
{
    npu_state *s = npu_of(be);
    if (!bytes)
        return NULL;
    if (bytes <= s->ws_bytes)
        return s->ws;
    if (s->ws && (!npu_drain(be, "workspace: sync") || !npu_ok(be, s->api->aclrtFree(s->ws), "workspace: aclrtFree")))
        return NULL;
    s->ws = NULL;
    s->ws_bytes = 0;
    size_t want = (size_t)bytes + bytes / 4;
    if (!npu_ok(be, s->api->aclrtMalloc(&s->ws, want, NPU_MEM_MALLOC_HUGE_FIRST), "workspace: aclrtMalloc"))
        return NULL;
    s->ws_bytes = want;
    return s->ws;
}

void npu_launch(lmc_backend *be, const char *name, aclnn_status st, uint64_t ws, acl_executor *ex,
                npu_op_run_fn run)
{
    char what[96];
    snprintf(what, sizeof what, "%sGetWorkspaceSize", name);
    if (!npu_ok(be, st, what))
        return;
    void *w = workspace(be, ws);
    if (ws && !w)
        return;
    npu_ok(be, run(w, ws, ex, npu_of(be)->stream), name);
}

void npu_acc(lmc_backend *be, float *dst, const float *src, size_t n)
{
    NPU_RUN(be, aclnnInplaceAdd, npu_f1(be, dst, (int64_t)n), npu_f1(be, src, (int64_t)n), npu_scalar_f(be, 1.0f));
}
