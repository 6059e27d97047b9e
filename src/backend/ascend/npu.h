/* npu.h: private declarations shared by the Ascend backend's files.
 *
 * The backend runs every op on one AscendCL stream through the aclnn
 * two-phase API: npu_tensor describes device memory as aclTensor views
 * (strided views of lmc's buffers: a q head inside qkv, a transposed
 * matrix), NPU_RUN sizes the workspace and queues the operator, and errors
 * are recorded against the op being run (lmc_backend_fail), so the step
 * learns of them at lmc_backend_check. Temporaries an op needs come from
 * npu_tmp, a per-op bump allocator over device memory kept between ops. */
#ifndef LMC_NPU_H
#define LMC_NPU_H

#include "backend/ascend/acl_decls.h"
#include "backend/backend.h"

/* The AscendCL, aclnn and (on demand) HCCL entry points, found by
 * acl_load.c. */
typedef struct {
#define NPU_FN_(ret, name, params) ret(*name) params;
    NPU_RUNTIME_FUNCS(NPU_FN_)
    NPU_TENSOR_FUNCS(NPU_FN_)
#undef NPU_FN_
#define NPU_OPFN_(name, params) aclnn_status(*name##GetWorkspaceSize) NPU_OP_PARAMS_ params; npu_op_run_fn name;
    NPU_OPS(NPU_OPFN_)
#undef NPU_OPFN_
} npu_api;

typedef struct {
#define NPU_FN_(ret, name, params) ret(*name) params;
    NPU_HCCL_FUNCS(NPU_FN_)
#undef NPU_FN_
} npu_hccl_api;

/* Loads libascendcl, libnnopbase and libopapi (once per process) from
 * $LMC_ASCEND_LIBDIR, else $ASCEND_TOOLKIT_HOME/lib64, else CANN's default
 * install; the error names the missing library or symbol and where it
 * looked. Calls aclInit once. */
lmc_status npu_api_load(const npu_api **out);
/* libhccl.so from the same folder (--dist hccl). */
lmc_status npu_hccl_load(const npu_hccl_api **out);
/* Where the libraries are looked for, as one phrase for messages. */
void npu_lib_where(char *buf, size_t len);

#define NPU_MAX_OBJS 48
#define NPU_MAX_CHUNKS 8
#define NPU_HP_SLOTS 256 /* AdamW hyperparameter sets in flight */
#define NPU_ROPE_MAXPOS 32768 /* rotary tables cover positions [0, this) */
#define NPU_MASK_SIDE 2048    /* the compressed causal mask of sparseMode 2 */

typedef struct {
    lmc_backend_ops ops;
    char name[32];
    char soc[64];
    int device;
    const npu_api *api;
    acl_stream stream;
    lmc_op op; /* the op being run, for errors */
    int bad;   /* an error in the current op: its later launches are skipped */
    /* objects to destroy after the current launch: kind 0 tensor, 1 scalar,
     * 2 int array, 3 bool array */
    void *obj[NPU_MAX_OBJS];
    int obj_kind[NPU_MAX_OBJS];
    int n_obj;
    void *ws; /* aclnn workspace, grown on demand */
    size_t ws_bytes;
    void *chunk[NPU_MAX_CHUNKS]; /* npu_tmp's device memory */
    size_t chunk_bytes[NPU_MAX_CHUNKS], chunk_used;
    int n_chunk;
    float *hp_host, *hp_dev; /* AdamW hyperparameters: pinned host ring, device copy */
    int hp_next;
    uint8_t *causal_mask; /* device (2048, 2048): 1 above the diagonal */
    float *rope_cos, *rope_sin; /* device (NPU_ROPE_MAXPOS, HS) */
    int rope_hs;
    float rope_theta;
    float *one; /* device 1.0f (softmax sums, read with stride 0), then int32 0 */
    /* the blocks alloc returned (an embedding table's rows are sized by
     * the block holding it: the table does not pass the vocabulary) */
    struct {
        char *p;
        size_t bytes;
    } *blocks;
    int n_blocks, cap_blocks;
} npu_state;

static inline npu_state *npu_of(lmc_backend *be) { return (npu_state *)be->impl; }

/* The ops of the table: npu_<op>, declared from backend.h's list. Weak:
 * an op this backend does not define (xent_part, the mixture-of-experts
 * row ops, any op added to the table later) is NULL in the table, and
 * lmc_backend_ops_check names a missing required one at open. */
#define NPU_DECLARE_(kind, name, ret, params) ret npu_##name params __attribute__((weak));
LMC_BACKEND_OPS(NPU_DECLARE_)
#undef NPU_DECLARE_

/* ---- calls (call.c) ---- */

/* Starts op: errors name it; npu_tmp's space is reset. */
void npu_enter(lmc_backend *be, lmc_op op);
/* Records an error against the current op and skips its later launches. */
void npu_fail(lmc_backend *be, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An AscendCL status: 1 when success, else recorded ("what: error N: msg"). */
int npu_ok(lmc_backend *be, acl_error e, const char *what);
/* Device scratch valid until the op returns (512-byte aligned); NULL after
 * an error (recorded). */
void *npu_tmp(lmc_backend *be, size_t bytes);
/* An aclTensor over device memory: ndim dims, strides in elements (NULL:
 * contiguous), released after the next launch. dtype: NPU_ACL_*. */
acl_tensor *npu_tensor(lmc_backend *be, const void *data, int dtype, int ndim, const int64_t *dims,
                       const int64_t *strides);
/* Shorthands: a contiguous fp32 tensor of 1, 2, 3 or 4 dims. */
acl_tensor *npu_f1(lmc_backend *be, const float *p, int64_t n);
acl_tensor *npu_f2(lmc_backend *be, const float *p, int64_t a, int64_t b);
acl_tensor *npu_f3(lmc_backend *be, const float *p, int64_t a, int64_t b, int64_t c);
acl_scalar *npu_scalar_f(lmc_backend *be, float v);
acl_scalar *npu_scalar_i(lmc_backend *be, int64_t v);
acl_int_array *npu_ints(lmc_backend *be, const int64_t *v, int n);
acl_bool_array *npu_bools(lmc_backend *be, const bool *v, int n);
/* Second phase: checks the first phase's status, provides the workspace,
 * queues the operator on the stream; then releases the call's objects. */
void npu_launch(lmc_backend *be, const char *name, aclnn_status st, uint64_t ws, acl_executor *ex,
                npu_op_run_fn run);
void npu_release(lmc_backend *be);
/* Waits for the stream (before freeing memory queued work may still use). */
int npu_drain(lmc_backend *be, const char *what);

/* NPU_RUN(be, aclnnXxx, args...): both phases of one operator. */
#define NPU_RUN(be, opname, ...)                                                                        \
    do {                                                                                                \
        uint64_t ws_ = 0;                                                                               \
        acl_executor *ex_ = NULL;                                                                       \
        npu_state *s_ = npu_of(be);                                                                     \
        if (!s_->bad) {                                                                                 \
            aclnn_status st_ = s_->api->opname##GetWorkspaceSize(__VA_ARGS__, &ws_, &ex_);               \
            npu_launch(be, #opname, st_, ws_, ex_, s_->api->opname);                                    \
        }                                                                                               \
        npu_release(be);                                                                                \
    } while (0)

/* ---- shared pieces of ops ---- */

/* Bytes from p to the end of the alloc() block holding it; 0 if none. */
size_t npu_block_rest(lmc_backend *be, const void *p);

/* dst (n fp32) += src (n fp32) */
void npu_acc(lmc_backend *be, float *dst, const float *src, size_t n);
/* attention: 1 when the head shape can run, else 0 with why (attention.c) */
int npu_attention_ok(int NH, int NKV, int HS, char *why, size_t why_len);
/* device int32 (B, T) of pos0[b] + t (pos0 NULL: t) in scratch (rope.c) */
int32_t *npu_positions(lmc_backend *be, const int *pos0, int B, int T);

#endif
