/* mock.h: a CPU mock of the Ascend C API lmc calls (AscendCL runtime,
 * aclnn operators, HCCL), built as one shared library that stands in for
 * libascendcl.so, libnnopbase.so, libopapi.so and libhccl.so (run.sh
 * links those names to it; LMC_ASCEND_LIBDIR points the backend there).
 *
 * It enforces the documented contract, so the backend fails here where it
 * would fail on an NPU:
 *  - device memory is apart from host memory: aclrtMalloc hands out
 *    addresses in a reserved, inaccessible range (a host dereference
 *    faults), every tensor must lie inside a live allocation (a host
 *    pointer, a freed block or a view past the end is an error naming the
 *    argument), copies check the direction they are told;
 *  - streams queue their work and run it only when the host waits
 *    (aclrtSynchronizeStream / Event, or another stream waiting on an
 *    event): reading results without a sync reads stale memory;
 *    asynchronous host copies need pinned (aclrtMallocHost) memory and
 *    read it when they run;
 *  - the workspace given to an operator's second phase must be device
 *    memory of at least what its first phase asked (each operator asks for
 *    some), and an executor runs once;
 *  - each operator's documented dtype, shape and attribute rules (GQA
 *    ratio, softmax statistics [B,N,S,8], the compressed causal mask of
 *    sparseMode 2, RoPE's cos/sin layouts, LayerNorm's (N,1) statistics).
 * Errors of the first phase return ACLNN_ERR_PARAM_INVALID with the reason
 * in aclGetRecentErrMsg; errors met while a stream runs make its
 * synchronisation fail. MOCK_TRACE=1 prints each queued operator. */
#ifndef LMC_ASCEND_MOCK_H
#define LMC_ASCEND_MOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MOCK_PARAM_INVALID 161002
#define MOCK_PARAM_NULLPTR 161001
#define MOCK_RT_ERROR 507011 /* a queued task failed */
#define MOCK_BAD_ARG 100000  /* ACL_ERROR_INVALID_PARAM */

/* dtypes (aclDataType values) */
enum { M_F32 = 0, M_I8 = 2, M_I32 = 3, M_U8 = 4, M_I64 = 9, M_BOOL = 12, M_BF16 = 27 };

typedef struct aclTensor {
    int nd, dtype;
    int64_t dims[8], st[8];
    uint64_t addr; /* device address of element 0 of the view */
} aclTensor;

typedef struct aclScalar {
    int dtype;
    double v;
} aclScalar;

typedef struct aclIntArray {
    int n;
    int64_t v[16];
} aclIntArray;

typedef struct aclBoolArray {
    int n;
    bool v[16];
} aclBoolArray;

/* ---- errors (rt.c) ---- */
/* Sets the recent error message and returns code. */
int mock_err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *aclGetRecentErrMsg(void);

/* ---- memory (rt.c) ---- */
/* Host address of device range [addr, addr + bytes), NULL (error set,
 * naming what) when it is not inside one live device allocation. */
void *mock_dev(uint64_t addr, size_t bytes, const char *what);
/* 1 when p lies in memory from aclrtMallocHost */
int mock_pinned(const void *p, size_t bytes);

/* ---- streams (rt.c) ---- */
typedef void (*mock_task_fn)(void *arg);
/* Queues fn(arg) on stream; free_fn(arg) after it ran (or is dropped). */
int mock_enqueue(void *stream, mock_task_fn fn, void *arg, void (*free_fn)(void *), const char *what);
/* Records a failure of the running task: its stream's sync reports it. */
void mock_task_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- tensors (tensor.c) ---- */
int64_t mt_numel(const aclTensor *t);
size_t mt_elem(int dtype);
/* The tensor's bytes are in device memory (first phase): 0 or an error */
int mt_check(const aclTensor *t, const char *what);
/* Load into / store from a contiguous float (or int64) array, converting.
 * At run time; 0 on failure (recorded against the task). */
int mt_load(const aclTensor *t, float *out, const char *what);
int mt_store(const aclTensor *t, const float *in, const char *what);
int mt_load_i(const aclTensor *t, int64_t *out, const char *what);
/* a view of t broadcast to out's dims (stride 0 where t has size 1) */
int mt_broadcast(const aclTensor *t, const aclTensor *out, aclTensor *view);
int mt_same_dims(const aclTensor *a, const aclTensor *b);
const char *mt_dims(const aclTensor *t, char *buf, size_t n);
float mock_bf16(float x); /* round to bf16, nearest even */

/* ---- executors (exec.c) ---- */
/* An operator's second phase: runs run(arg) on the stream later. */
typedef struct aclOpExecutor aclOpExecutor;
aclOpExecutor *mock_executor(const char *name, uint64_t ws, mock_task_fn run, void *arg, void (*free_fn)(void *));
/* The first phase's end: *ws and *ex set, or the error freed. */
int mock_phase1(int st, const char *name, uint64_t ws, mock_task_fn run, void *arg, void (*free_fn)(void *),
                uint64_t *ws_out, aclOpExecutor **ex);
int mock_phase2(void *workspace, uint64_t ws, aclOpExecutor *ex, void *stream);

#endif
