/* test_mock.c: the Ascend mock's strictness, each rule proven by a broken
 * call it catches (as tests/gpu/emu's test_emu does for the CUDA host
 * emulation): a mock that let these through would pass a backend that
 * fails on an NPU. Talks to the mock through the backend's own loader
 * (npu_api_load, LMC_ASCEND_LIBDIR), so the declarations are tested too. */
#include "backend/ascend/npu.h"
#include "test.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static const npu_api *A;
static acl_stream S;

#define CALL(status_var, opname, ...)                                                            \
    do {                                                                                        \
        uint64_t ws_ = 0;                                                                       \
        acl_executor *ex_ = NULL;                                                               \
        status_var = A->opname##GetWorkspaceSize(__VA_ARGS__, &ws_, &ex_);                      \
        void *w_ = NULL;                                                                        \
        if (!status_var && ws_)                                                                 \
            A->aclrtMalloc(&w_, ws_, 0);                                                        \
        if (!status_var)                                                                        \
            status_var = A->opname(w_, ws_, ex_, S);                                            \
        pending_ws = w_;                                                                        \
    } while (0)

static void *pending_ws; /* freed after the stream ran */

static void *dev_floats(const float *h, size_t n)
{
    void *d = NULL;
    CHECK(A->aclrtMalloc(&d, n * 4, 0) == 0);
    CHECK(A->aclrtMemcpy(d, n * 4, h, n * 4, NPU_MEMCPY_H2D) == 0);
    return d;
}

static acl_tensor *t1(void *p, int64_t n) { return A->aclCreateTensor(&n, 1, NPU_ACL_FLOAT, (int64_t[]){1}, 0, 2, &n, 1, p); }

static void expect_msg(int st, const char *needle, const char *what)
{
    const char *m = A->aclGetRecentErrMsg();
    CHECK_MSG(st != 0 && strstr(m, needle), "%s: status %d, message '%s', wanted one with '%s'", what, st, m, needle);
    fprintf(stderr, "ok   caught: %s: %s\n", what, m);
}

static void sync_free(void)
{
    A->aclrtSynchronizeStream(S);
    if (pending_ws)
        A->aclrtFree(pending_ws);
    pending_ws = NULL;
}

/* 1. a host pointer as device memory; 2. use after free */
static void t_memory_spaces(void)
{
    float h[4] = {1, 2, 3, 4};
    int st;
    acl_tensor *x = t1(h, 4);
    CALL(st, aclnnInplaceMuls, x, A->aclCreateScalar(&(float){2}, NPU_ACL_FLOAT));
    expect_msg(st, "not device memory", "a host pointer passed as device memory");
    A->aclDestroyTensor(x);
    void *d = dev_floats(h, 4);
    A->aclrtFree(d);
    x = t1(d, 4);
    CALL(st, aclnnInplaceMuls, x, A->aclCreateScalar(&(float){2}, NPU_ACL_FLOAT));
    expect_msg(st, "freed", "device memory used after aclrtFree");
    A->aclDestroyTensor(x);
    void *d2 = dev_floats(h, 4);
    st = A->aclrtMemcpy(h, 16, d2, 16, NPU_MEMCPY_H2D);
    expect_msg(st, "is host memory", "a copy whose kind lies about its ends");
    A->aclrtFree(d2);
}

/* 3. the host cannot read device memory: a dereference faults */
static void t_no_host_access(void)
{
    float h[1] = {1};
    volatile float *d = dev_floats(h, 1);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr)) /* ASan reports the fault: not for this log */
            _exit(2);
        float v = *d; /* must fault */
        _exit(v == 1.0f ? 42 : 43); /* read: no fault */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    /* killed by SIGSEGV, or ended by ASan's report of it (exit code 1) */
    CHECK_MSG(!(WIFEXITED(status) && WEXITSTATUS(status) >= 42), "a host read of device memory did not fault");
    fprintf(stderr, "ok   caught: a host dereference of a device pointer faults\n");
    A->aclrtFree((void *)d);
}

/* 4. work is queued: reading before the sync gives the old data */
static void t_missing_sync(void)
{
    float h[4] = {1, 2, 3, 4}, back[4];
    void *d = dev_floats(h, 4);
    int st;
    acl_tensor *x = t1(d, 4);
    CALL(st, aclnnInplaceMuls, x, A->aclCreateScalar(&(float){10}, NPU_ACL_FLOAT));
    CHECK(st == 0);
    A->aclrtMemcpy(back, 16, d, 16, NPU_MEMCPY_D2H);
    CHECK_MSG(back[1] == 2, "read before the sync saw %g: queued work ran early", back[1]);
    sync_free();
    A->aclrtMemcpy(back, 16, d, 16, NPU_MEMCPY_D2H);
    CHECK_MSG(back[1] == 20, "after the sync: %g, wanted 20", back[1]);
    fprintf(stderr, "ok   caught: a read without aclrtSynchronizeStream sees stale data (2, then 20 after it)\n");
    A->aclDestroyTensor(x);
    A->aclrtFree(d);
}

/* 5. workspace too small; 6. an executor run twice; 7. async copy from pageable memory */
static void t_workspace_and_executors(void)
{
    float h[4] = {1, 2, 3, 4};
    void *d = dev_floats(h, 4), *w = NULL;
    acl_tensor *x = t1(d, 4);
    acl_scalar *s = A->aclCreateScalar(&(float){2}, NPU_ACL_FLOAT);
    uint64_t ws = 0;
    acl_executor *ex = NULL;
    CHECK(A->aclnnInplaceMulsGetWorkspaceSize(x, s, &ws, &ex) == 0 && ws > 0);
    A->aclrtMalloc(&w, ws, 0);
    expect_msg(A->aclnnInplaceMuls(w, ws - 1, ex, S), "workspace", "a workspace smaller than the first phase asked");
    expect_msg(A->aclnnInplaceMuls(h, ws, ex, S), "workspace", "a host buffer as the workspace");
    CHECK(A->aclnnInplaceMuls(w, ws, ex, S) == 0);
    expect_msg(A->aclnnInplaceMuls(w, ws, ex, S), "run once", "an executor run twice");
    sync_free();
    expect_msg(A->aclrtMemcpyAsync(d, 16, h, 16, NPU_MEMCPY_H2D, S), "pinned", "an async copy from pageable memory");
    A->aclDestroyTensor(x);
    A->aclDestroyScalar(s);
    A->aclrtFree(w);
    A->aclrtFree(d);
}

/* a BSND (B,S,N,D) tensor over d */
static acl_tensor *bsnd(void *d, int64_t B, int64_t S_, int64_t N, int64_t D)
{
    int64_t dims[4] = {B, S_, N, D}, st[4] = {S_ * N * D, N * D, D, 1}, n = B * S_ * N * D;
    return A->aclCreateTensor(dims, 4, NPU_ACL_FLOAT, st, 0, 2, &n, 1, d);
}

/* 8. GQA ratio, softmax statistics' shape, sparseMode 2's mask */
static void t_attention_rules(void)
{
    int64_t B = 1, T = 4, D = 8, N = 3;
    float *h = calloc(4096 * 1024, 1);
    void *q = dev_floats(h, (size_t)B * T * N * D), *k = dev_floats(h, (size_t)B * T * 2 * D), *o = dev_floats(h, 512);
    void *st8 = dev_floats(h, (size_t)B * N * T * 8), *st4 = dev_floats(h, (size_t)B * N * T * 4);
    void *mask = NULL;
    A->aclrtMalloc(&mask, 2048 * 2048, 0);
    A->aclrtMemcpy(mask, 2048 * 2048, h, 2048 * 2048, NPU_MEMCPY_H2D); /* all zeros: not a causal mask */
    int64_t sd8[4] = {B, N, T, 8}, sd4[4] = {B, N, T, 4}, md[2] = {2048, 2048}, n8 = B * N * T * 8, n4 = n8 / 2;
    int64_t s8[4] = {N * T * 8, T * 8, 8, 1}, s4[4] = {N * T * 4, T * 4, 4, 1}, ms[2] = {2048, 1}, mn = 2048 * 2048;
    char bs[] = "BSND";
    int st;
    CALL(st, aclnnFlashAttentionScore, bsnd(q, B, T, N, D), bsnd(k, B, T, 2, D), bsnd(k, B, T, 2, D), NULL, NULL, NULL,
        NULL, NULL, 0.5, 1.0, 65536, 0, N, bs, 0, 0, A->aclCreateTensor(sd8, 4, 0, s8, 0, 2, &n8, 1, st8),
        A->aclCreateTensor(sd8, 4, 0, s8, 0, 2, &n8, 1, st8), NULL, bsnd(o, B, T, N, D));
    expect_msg(st, "multiple", "3 query heads over 2 kv heads (GQA needs a whole ratio)");
    CALL(st, aclnnFlashAttentionScore, bsnd(q, B, T, N, D), bsnd(k, B, T, 1, D), bsnd(k, B, T, 1, D), NULL, NULL, NULL,
        NULL, NULL, 0.5, 1.0, 65536, 0, N, bs, 0, 0, A->aclCreateTensor(sd4, 4, 0, s4, 0, 2, &n4, 1, st4),
        A->aclCreateTensor(sd4, 4, 0, s4, 0, 2, &n4, 1, st4), NULL, bsnd(o, B, T, N, D));
    expect_msg(st, "[B,N,Sq,8]", "softmax statistics [B,N,S,4] instead of [B,N,S,8]");
    CALL(st, aclnnFlashAttentionScore, bsnd(q, B, T, N, D), bsnd(k, B, T, 1, D), bsnd(k, B, T, 1, D), NULL, NULL, NULL,
        NULL, NULL, 0.5, 1.0, 65536, 0, N, bs, 0, 2, A->aclCreateTensor(sd8, 4, 0, s8, 0, 2, &n8, 1, st8),
        A->aclCreateTensor(sd8, 4, 0, s8, 0, 2, &n8, 1, st8), NULL, bsnd(o, B, T, N, D));
    expect_msg(st, "2048x2048", "sparseMode 2 without the compressed causal mask");
    CALL(st, aclnnFlashAttentionScore, bsnd(q, B, T, N, D), bsnd(k, B, T, 1, D), bsnd(k, B, T, 1, D), NULL, NULL, NULL,
        A->aclCreateTensor(md, 2, NPU_ACL_UINT8, ms, 0, 2, &mn, 1, mask), NULL, 0.5, 1.0, 65536, 0, N, bs, 0, 2,
        A->aclCreateTensor(sd8, 4, 0, s8, 0, 2, &n8, 1, st8), A->aclCreateTensor(sd8, 4, 0, s8, 0, 2, &n8, 1, st8), NULL,
        bsnd(o, B, T, N, D));
    CHECK(st == 0);
    st = A->aclrtSynchronizeStream(S);
    expect_msg(st, "causal mask", "sparseMode 2 with a mask that is not causal (caught when the stream runs)");
    sync_free();
    void *p[] = {q, k, o, st8, st4, mask};
    for (int i = 0; i < 6; i++)
        A->aclrtFree(p[i]);
    free(h);
}

int main(void)
{
    test_current = "ascend mock";
    CHECK_OK(npu_api_load(&A));
    if (!A)
        return test_summary();
    CHECK(A->aclrtSetDevice(0) == 0 && A->aclrtCreateStream(&S) == 0);
    t_memory_spaces();
    t_no_host_access();
    t_missing_sync();
    t_workspace_and_executors();
    t_attention_rules();
    A->aclrtDestroyStream(S);
    return test_summary();
}
