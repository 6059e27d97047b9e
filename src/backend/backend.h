/* backend.h: the ops table every chip implements.
 *
 * A backend owns device memory and runs kernels on it. Model code calls only
 * these functions, so a new chip is a new folder under src/backend/ that
 * fills this table and passes tests/conformance. All tensors are row-major,
 * fp32 unless a dtype says otherwise; pointers are device pointers from
 * alloc(). Shapes are explicit in every call. "+=" below means the op
 * accumulates into its output (gradients), "=" that it overwrites.
 *
 * Ops may be asynchronous and return nothing: an op that fails (a device
 * error, scratch memory it could not get, a shape it cannot run) records the
 * error in the backend (lmc_backend_fail), and the caller learns it from
 * lmc_backend_check once per step. Callers check shapes and ids before
 * calling, and ask lmc_backend_supports_model before the first step.
 *
 * Backends other than the CPU are plugins, liblmc_<name>.so, found by name
 * (plugin.c) through one exported function, lmc_backend_plugin_entry.
 */
#ifndef LMC_BACKEND_H
#define LMC_BACKEND_H

#include "lmc/backend.h"
#include "lmc/core.h"
#include "lmc/model.h"

/* LMC_I8: int8 weights with one fp32 scale per row (weight-only
 * quantization for inference; only the `linear` op takes it). */
typedef enum { LMC_F32 = 0, LMC_BF16 = 1, LMC_I8 = 2 } lmc_dtype;

/* C (m,n) = op(A) (m,k) . op(B) (k,n) [+ bias (n)] [then GELU].
 * op(A) = A if !trans_a (A stored (m,k)) else A^T (A stored (k,m)).
 * op(B) = B if !trans_b (B stored (k,n)) else B^T (B stored (n,k)).
 * prec: the precision the inputs are rounded to before multiplying
 * (LMC_BF16 = bf16 inputs with fp32 accumulation); C is always fp32.
 * With gelu set, `pre` (if not NULL) receives the pre-activation. */
typedef struct {
    int m, n, k;
    int trans_a, trans_b;
    int accumulate; /* C += result (+ bias) instead of C = ...; not with gelu */
    lmc_dtype prec;
    const float *bias;
    int gelu;
    float *pre;
} lmc_gemm;

/* torch.optim.AdamW on one tensor: p -= lr*wd*p; m,v moments; p -= lr/bc1 *
 * m / (sqrt(v)/sqrt(bc2) + eps). Gradients are multiplied by grad_scale
 * first (clipping and averaging). */
typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
    float bias_corr1, bias_corr2; /* 1 - beta^t */
    float grad_scale;
} lmc_adamw_hp;

typedef struct lmc_backend lmc_backend;
typedef struct lmc_backend_ops lmc_backend_ops;

/* The ops table, written once: X(kind, name, return type, (parameters)).
 * It generates the members of struct lmc_backend_ops, the op ids
 * (LMC_OP_<name>), their names (lmc_op_name) and which a backend must fill
 * (lmc_backend_ops_check). kind: CORE every backend fills; INFER the
 * inference engine needs (a training-only backend may leave it NULL); OPT
 * may be NULL (callers test it, as --tp tests xent_part). */
#define LMC_BACKEND_OPS(X)                                                                                            \
    /* ---- memory and control ---- */                                                                                \
    /* zeroed; NULL + error (lmc_err) on failure */                                                                   \
    X(CORE, alloc, void *, (lmc_backend *be, size_t bytes))                                                           \
    X(CORE, free, void, (lmc_backend *be, void *p))                                                                   \
    X(CORE, upload, void, (lmc_backend *be, void *dst, const void *host_src, size_t bytes))                           \
    X(CORE, download, void, (lmc_backend *be, void *host_dst, const void *src, size_t bytes))                         \
    X(CORE, copy, void, (lmc_backend *be, void *dst, const void *src, size_t bytes))                                  \
    X(CORE, zero, void, (lmc_backend *be, void *p, size_t bytes))                                                     \
    /* Page-locked host memory for staging copies between the device and the                                          \
     * host (a communicator's: hier.c), freed with host_free. May be NULL                                             \
     * (the CPU's is its ordinary memory); NULL + error on failure. */                                                \
    X(OPT, host_alloc, void *, (lmc_backend *be, size_t bytes))                                                       \
    X(OPT, host_free, void, (lmc_backend *be, void *p))                                                               \
    /* Waits for all queued work. Returns the first error an op met since                                             \
     * the last lmc_backend_check (lmc_err set, naming the op), leaving it                                            \
     * pending: lmc_backend_check clears it. */                                                                       \
    X(CORE, sync, lmc_status, (lmc_backend *be))                                                                      \
    X(CORE, destroy, void, (lmc_backend *be))                                                                         \
    /* 1 when this backend can run the call q describes (op, dtype, shapes);                                          \
     * 0 with the reason in why ("head size 300 is not supported (supported:                                          \
     * 1 to 256)"). lmc_backend_supports wraps it with the op's name. */                                              \
    X(CORE, supports, int, (lmc_backend *be, const lmc_op_query *q, char *why, size_t why_len))                       \
    /* Peak dense FLOP/s of this device at the given matmul precision, for                                            \
     * MFU: measured (CPU: an FMA loop on all threads) or from the vendor. */                                         \
    X(CORE, peak_flops, double, (lmc_backend *be, lmc_dtype prec))                                                    \
    /* Ordering with another queue (a communicator's): the vendor's handle of                                         \
     * the queue ops run on (cudaStream_t, aclrtStream), NULL when ops finish                                         \
     * before they return (CPU). event_record marks, in a vendor event the                                            \
     * caller created (cudaEvent_t, aclrtEvent), the point after all work                                             \
     * queued so far; event_wait makes work queued from now on wait for an                                            \
     * event the caller recorded on its own queue. No-ops on the CPU. */                                              \
    X(CORE, stream, void *, (lmc_backend *be))                                                                        \
    X(CORE, event_record, lmc_status, (lmc_backend *be, void *event))                                                 \
    X(CORE, event_wait, lmc_status, (lmc_backend *be, void *event))                                                   \
    /* ---- linear algebra ---- */                                                                                    \
    X(CORE, matmul, void, (lmc_backend *be, float *c, const float *a, const float *b, const lmc_gemm *g))             \
    /* dbias (n) += column sums of dout (m,n) */                                                                      \
    X(CORE, bias_grad, void, (lmc_backend *be, float *dbias, const float *dout, int m, int n))                        \
    /* ---- rows by index: a mixture of experts' dropless dispatch ----                                               \
     * idx and w are device arrays of n; rows have C floats. May be NULL (a                                           \
     * backend without mixtures of experts: supports says so).                                                        \
     * out (n,C) = in[idx[i]], times w[i] when w is not NULL. */                                                      \
    X(OPT, gather_rows, void, (lmc_backend *be, float *out, const float *in, const int *idx, const float *w,          \
                               int n, int C))                                                                         \
    /* out[idx[i]] += w[i] * in[i] (w NULL: += in[i]), in (n,C). The idx are                                          \
     * distinct: each out row takes at most one in row per call, so the                                               \
     * result does not depend on the order rows are added in. */                                                      \
    X(OPT, scatter_add_rows, void, (lmc_backend *be, float *out, const float *in, const int *idx,                     \
                                    const float *w, int n, int C))                                                    \
    /* out (n) = dot(a[idx[i]], b[i]) over the C columns (idx NULL: a[i]) */                                          \
    X(OPT, row_dot, void, (lmc_backend *be, float *out, const float *a, const int *idx, const float *b, int n,       \
                           int C))                                                                                    \
    /* ---- embeddings ---- out (B,T,C) = wte[tokens] + wpe[pos0[b] + t]                                              \
     * wpe may be NULL (rotary models); pos0 (B) may be NULL (= 0). A                                                 \
     * negative id is a token whose row another rank holds (a vocabulary-                                             \
     * parallel embedding): its wte row reads as zeros and gets no gradient;                                          \
     * wpe and dwpe still apply. Backends without vocabulary-parallel                                                 \
     * support (no xent_part) never receive negative ids. */                                                          \
    X(CORE, embed_forward, void, (lmc_backend *be, float *out, const int *tokens, const int *pos0,                    \
                                  const float *wte, const float *wpe, int B, int T, int C))                           \
    /* dwte (V,C) +=, dwpe (maxT,C) += (if not NULL), dout (B,T,C) */                                                 \
    X(CORE, embed_backward, void, (lmc_backend *be, float *dwte, float *dwpe, const float *dout,                      \
                                   const int *tokens, int B, int T, int C))                                           \
    /* ---- normalisation over the last dim C of N rows ----                                                          \
     * mean/rstd (N) are saved for backward; NULL in inference. b may be NULL. */                                     \
    X(CORE, layernorm_forward, void, (lmc_backend *be, float *out, float *mean, float *rstd,                          \
                                      const float *inp, const float *w, const float *b, int N, int C, float eps))     \
    /* dinp +=, dw +=, db += (if not NULL) */                                                                         \
    X(CORE, layernorm_backward, void, (lmc_backend *be, float *dinp, float *dw, float *db,                            \
                                       const float *dout, const float *inp, const float *w,                           \
                                       const float *mean, const float *rstd, int N, int C))                           \
    X(CORE, rmsnorm_forward, void, (lmc_backend *be, float *out, float *rstd, const float *inp,                       \
                                    const float *w, int N, int C, float eps))                                         \
    /* dinp +=, dw += */                                                                                              \
    X(CORE, rmsnorm_backward, void, (lmc_backend *be, float *dinp, float *dw, const float *dout,                      \
                                     const float *inp, const float *w, const float *rstd, int N, int C))              \
    /* ---- activations ---- GELU is the tanh approximation (GPT-2's gelu_new) */                                     \
    X(CORE, gelu_forward, void, (lmc_backend *be, float *out, const float *inp, size_t n))                            \
    /* dinp = gelu'(inp) * dout; dinp may alias dout */                                                               \
    X(CORE, gelu_backward, void, (lmc_backend *be, float *dinp, const float *inp, const float *dout, size_t n))       \
    /* inp (N, 2H) holds [gate | up] per row; out (N,H) = silu(gate) * up */                                          \
    X(CORE, swiglu_forward, void, (lmc_backend *be, float *out, const float *inp, int N, int H))                      \
    /* dinp (N,2H) = */                                                                                               \
    X(CORE, swiglu_backward, void, (lmc_backend *be, float *dinp, const float *inp, const float *dout, int N, int H)) \
    /* ---- attention ----                                                                                            \
     * qkv (B,T,(NH+2*NKV)*HS): per token the NH query heads, then NKV key                                            \
     * heads, then NKV value heads. Query head h attends with kv head                                                 \
     * h / (NH/NKV). Causal, scale 1/sqrt(HS).                                                                        \
     * Rotary embedding in place on the q and k heads of qkv, rotating the two                                        \
     * halves of each head (Hugging Face convention), position pos0[b] + t;                                           \
     * inverse rotates back (the backward pass). NH or NKV may be 0: with                                             \
     * NKV = 0 the buffer is q alone (B,T,NH*HS) and all its heads rotate;                                            \
     * with NH = 0 it is k|v (B,T,2*NKV*HS) and the NKV k heads rotate (the                                           \
     * inference engine computes q and k|v into separate buffers). */                                                 \
    X(CORE, rope, void, (lmc_backend *be, float *qkv, const int *pos0, int B, int T, int NH, int NKV,                 \
                         int HS, float theta, int inverse))                                                           \
    /* out (B,T,NH*HS) =, lse (B,NH,T) = log-sum-exp of each score row (NULL: not saved) */                           \
    X(CORE, attention_forward, void, (lmc_backend *be, float *out, float *lse, const float *qkv,                      \
                                      int B, int T, int NH, int NKV, int HS))                                         \
    /* dqkv (B,T,(NH+2NKV)*HS) = */                                                                                   \
    X(CORE, attention_backward, void, (lmc_backend *be, float *dqkv, const float *dout, const float *out,             \
                                       const float *lse, const float *qkv, int B, int T, int NH, int NKV, int HS))    \
    /* Decode against a KV cache. q (B,NH*HS) holds one new query per sequence;                                       \
     * kcache/vcache (B, maxT, NKV*HS); sequence b attends to its first                                               \
     * len[b] cached positions (len is a device array). out (B,NH*HS) = */                                            \
    X(INFER, attention_decode, void, (lmc_backend *be, float *out, const float *q, const float *kcache,               \
                                      const float *vcache, const int *len, int B, int maxT, int NH, int NKV, int HS)) \
    /* Writes new keys and values into a KV cache. For b < B, t < T:                                                  \
     * kcache[b][pos0[b] + t][0..D) = k[(b*T + t)*stride + 0..D), and vcache                                          \
     * likewise from v. Caches are (B, maxT, D); pos0 is a device array (B);                                          \
     * callers guarantee 0 <= pos0[b] and pos0[b] + T <= maxT. k and v are                                            \
     * strided rows so they can point into a fused qkv buffer                                                         \
     * (stride (NH+2NKV)*HS) or a k|v buffer (stride 2*D). */                                                         \
    X(INFER, kv_store, void, (lmc_backend *be, float *kcache, float *vcache, const float *k, const float *v,          \
                              size_t stride, const int *pos0, int B, int T, int maxT, int D))                         \
    /* ---- inference linear layer (weight-only quantization) ----                                                    \
     * out (M,N) = (or += with accumulate) inp (M,K) . W^T (+ bias (N)),                                              \
     * W (N,K) row-major as nn.Linear stores it, in wtype:                                                            \
     *   LMC_F32:  float weights (scale NULL);                                                                        \
     *   LMC_BF16: uint16_t bf16 bit patterns, value = bits << 16 (scale NULL);                                       \
     *   LMC_I8:   int8_t q, value W[n][k] = q[n][k] * scale[n] (scale (N) fp32).                                     \
     * inp, bias, out are fp32; products and sums are fp32 (the weight is                                             \
     * converted exactly to fp32, the input is not rounded). Tuned for small                                          \
     * M (decode: one row per sequence); valid for any M >= 1. out must not                                           \
     * alias inp. */                                                                                                  \
    X(INFER, linear, void, (lmc_backend *be, float *out, const float *inp, const void *w, lmc_dtype wtype,            \
                            const float *scale, const float *bias, int M, int N, int K, int accumulate))              \
    /* ---- elementwise and reductions ---- */                                                                        \
    X(CORE, add, void, (lmc_backend *be, float *out, const float *a, const float *b, size_t n))                       \
    X(CORE, scale, void, (lmc_backend *be, float *x, float s, size_t n))                                              \
    /* Fused softmax + cross-entropy over the first V of Vp columns:                                                  \
     * losses (N) = logsumexp(logits) - logits[target]. With backward set the                                         \
     * logits are overwritten in place by dloss * (softmax - onehot), and the                                         \
     * padded columns V..Vp by 0. targets are valid ids < V. */                                                       \
    X(CORE, xent, void, (lmc_backend *be, float *losses, float *logits, const int *targets,                           \
                         int N, int V, int Vp, float dloss, int backward))                                            \
    /* Vocabulary-parallel softmax cross-entropy (Megatron-LM): this rank                                             \
     * holds the logits' columns [v0, v0 + V) of the vocabulary, (N, Vp)                                              \
     * with V valid. stats (N, 2), per row: stage 0 writes {max of the row's                                          \
     * columns (-inf when V = 0), the target's logit (0 when another rank                                             \
     * holds it)}; stage 1 reads stats[r][0] = the max over all ranks and                                             \
     * writes stats[r][1] = sum of exp(x - max) over this rank's columns;                                             \
     * stage 2 reads stats[r][0] = the log-sum-exp over all ranks and                                                 \
     * overwrites the logits by dloss * (softmax - onehot(target)), the                                               \
     * padded columns by 0. May be NULL (no vocabulary parallelism). */                                               \
    X(OPT, xent_part, void, (lmc_backend *be, float *stats, float *logits, const int *targets, int N, int V,          \
                             int Vp, int v0, float dloss, int stage))                                                 \
    /* out[0] = sum of x (squares: of x^2), accumulated in double */                                                  \
    X(CORE, sum, void, (lmc_backend *be, float *out, const float *x, size_t n, int squares))                          \
    X(CORE, adamw, void, (lmc_backend *be, float *p, const float *g, float *m, float *v, size_t n,                    \
                          const lmc_adamw_hp *hp))                                                                    \
    /* dst = src converted (F32 <-> BF16, round to nearest even) */                                                   \
    X(CORE, cast, void, (lmc_backend *be, void *dst, lmc_dtype dst_type, const void *src,                             \
                         lmc_dtype src_type, size_t n))

/* Op ids: LMC_OP_matmul, LMC_OP_attention_forward, ... (the member names). */
typedef enum {
#define LMC_OP_ENUM_(kind, name, ret, params) LMC_OP_##name,
    LMC_BACKEND_OPS(LMC_OP_ENUM_)
#undef LMC_OP_ENUM_
    LMC_OP_COUNT
} lmc_op;

typedef enum { LMC_OPK_CORE, LMC_OPK_INFER, LMC_OPK_OPT } lmc_op_kind;

/* One call a caller means to make, for supports: the op, its dtype and its
 * sizes (0 where they do not apply).
 *   dtype: matmul: prec; linear: the weight type; cast: the non-fp32 side;
 *          otherwise LMC_F32.
 *   attention_*, rope: heads NH, kv_heads NKV, head_size HS, m = B, n = T
 *          (attention_decode: n = maxT, the cache length).
 *   matmul, linear: m, n, k as the op takes them.
 *   norms, embeddings, xent: m = rows (B*T), n = width (C, or Vp for xent).
 *   gather_rows, scatter_add_rows, row_dot: m = rows n, n = width C.
 *   elementwise, sum, adamw, cast: m = element count. */
typedef struct {
    lmc_op op;
    lmc_dtype dtype;
    int heads, kv_heads, head_size;
    long long m, n, k;
} lmc_op_query;

struct lmc_backend_ops {
#define LMC_OP_MEMBER_(kind, name, ret, params) ret(*name) params;
    LMC_BACKEND_OPS(LMC_OP_MEMBER_)
#undef LMC_OP_MEMBER_
};

/* A backend. Callers read its properties instead of comparing names. */
struct lmc_backend {
    const lmc_backend_ops *ops;
    const char *name; /* "cpu", "cuda:0" */
    int threads;
    void *impl; /* backend private state */
    /* Properties. host_memory: alloc returns host memory, so the CPU and
     * host communicators (MPI) may read and write tensors directly.
     * deterministic: the same call on the same inputs gives the same bits,
     * run after run (same device, same thread count). */
    int host_memory, deterministic;
    /* The first error since the last check (lmc_backend_fail, _check). */
    int err_claimed;
    lmc_status err_code;
    char err_msg[480];
};

/* ---- opening: lmc_backend_open, lmc_backend_close (lmc/backend.h) ---- */

/* ---- the ops table ---- */

const char *lmc_op_name(lmc_op op); /* "matmul"; "unknown op" when out of range */
lmc_op lmc_op_from_name(const char *name); /* LMC_OP_COUNT when no op has that name */
lmc_op_kind lmc_op_kind_of(lmc_op op);
int lmc_backend_has_op(const lmc_backend *be, lmc_op op);
/* LMC_EUNSUPPORTED naming the first CORE op the backend left NULL. */
lmc_status lmc_backend_ops_check(const lmc_backend *be);

/* ---- errors ---- */

/* Records that op failed: the first error since the last check is kept
 * ("cuda:0: matmul: cublasLtMatmul: status 13"), later ones are dropped.
 * For backends; safe to call from several threads. */
void lmc_backend_fail(lmc_backend *be, lmc_op op, lmc_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The pending error as a status (lmc_err set), LMC_OK when none; does not
 * clear it. What a backend's sync returns after waiting. */
lmc_status lmc_backend_pending(const lmc_backend *be);
/* The pending error's message, NULL when none. */
const char *lmc_backend_error(const lmc_backend *be);
/* Once per step (training) or per decode step: waits for the queued work
 * and returns the first error since the last check, naming the op, then
 * clears it. After a device error the results of the step are garbage. */
lmc_status lmc_backend_check(lmc_backend *be);

/* ---- what a backend supports ---- */

/* LMC_OK, or LMC_EUNSUPPORTED with "backend cuda:0: attention_forward: head
 * size 300 is not supported (supported: 1 to 256)" (also when the op is
 * missing from the table). */
lmc_status lmc_backend_supports(lmc_backend *be, const lmc_op_query *q);

/* What a run asks of a backend, for lmc_backend_supports_model. */
typedef struct {
    int B, T;           /* the largest batch and sequence of one forward call */
    int training;       /* backward ops and AdamW too */
    lmc_dtype prec;     /* matmul input precision */
    int tp;             /* tensor-parallel ranks (heads per rank = heads / tp); <= 1: whole */
    int vocab_parallel; /* the vocabulary-parallel cross-entropy (xent_part) */
    int engine;         /* the inference engine: linear, kv_store, attention_decode */
    lmc_dtype wtype;    /* the engine's linear weights (F32, BF16, I8) */
} lmc_backend_use;

/* Asks the backend about every op a model of this config runs with this
 * use, before the first step: the first it cannot run is the error. */
lmc_status lmc_backend_supports_model(lmc_backend *be, const lmc_model_config *cfg, const lmc_backend_use *use);

/* ---- plugins (plugin.c) ---- */

/* Bump when lmc_backend, lmc_backend_ops or lmc_backend_plugin change: a
 * plugin built against another version is refused with a rebuild hint. */
#define LMC_BACKEND_ABI 4

/* What liblmc_<name>.so's one exported function returns:
 *   const lmc_backend_plugin *lmc_backend_plugin_entry(void); */
typedef struct {
    int abi;          /* LMC_BACKEND_ABI */
    size_t ops_size;  /* sizeof(lmc_backend_ops) */
    const char *name; /* "cuda": what --device names */
    const char *about; /* "NVIDIA GPUs (CUDA runtime, cuBLASLt)" */
    /* Opens device `index` (< 0: this process's local rank's device). */
    lmc_status (*open)(int index, int threads, lmc_backend **out);
    /* The usable devices: *count of them and one line each in desc
     * ("cuda:0 NVIDIA H200 (sm_90, 140 GiB)"); when there are none, an
     * error saying why ("no CUDA device: cudaGetDeviceCount: ..."). */
    lmc_status (*probe)(int *count, char *desc, size_t desc_len);
} lmc_backend_plugin;

#define LMC_BACKEND_PLUGIN_ENTRY "lmc_backend_plugin_entry"
typedef const lmc_backend_plugin *(*lmc_backend_plugin_fn)(void);

/* The backend called `name`: built in (cpu; cuda in the host emulation
 * build) or liblmc_<name>.so, loaded on first use and kept. The error
 * names the library and every place it looked (LMC_EUNSUPPORTED), why it
 * would not load (LMC_EIO), or why it is not a plugin for this lmc
 * (LMC_EFORMAT: another interface version, no entry point). */
lmc_status lmc_backend_find(const char *name, const lmc_backend_plugin **out);
/* Names of the backends lmc knows (cpu, cuda, npu), then those of any
 * other liblmc_<name>.so in the plugin folders; returns how many (<= max). */
int lmc_backend_names(char (*names)[32], int max);
/* Loads liblmc_<name>.so (once per process) and looks up `symbol` in it;
 * `what` starts error messages ("--dist nccl"). */
lmc_status lmc_plugin_symbol(const char *name, const char *symbol, const char *what, void **sym);
/* liblmc_<name>.so's descriptor, checked against this lmc's interface
 * (the plugin half of lmc_backend_find). */
lmc_status lmc_plugin_backend(const char *name, const lmc_backend_plugin **out);
/* Where liblmc_<name>.so was loaded from; NULL when it is not loaded. */
const char *lmc_plugin_path(const char *name);
/* The places searched for plugins, in order, as one line for messages:
 * "$LMC_PLUGIN_DIR (not set), /opt/lmc/bin (beside lmc), ..., the loader's
 * path (LD_LIBRARY_PATH, ld.so.cache)". */
void lmc_plugin_where(char *buf, size_t len);
/* Adds to names[n..max) the <name> of each liblmc_<name>.so in the plugin
 * folders not already among names[0..n); returns the new count. */
int lmc_plugin_scan(char (*names)[32], int n, int max);

/* The CUDA plugin's symbol `name` (lmc_plugin_symbol("cuda", ...)). */
lmc_status lmc_cuda_plugin_symbol(const char *name, const char *what, void **sym);

/* ---- the CPU backend (built in) ---- */

/* CPU backend with a forced instruction set: "auto", "avx512",
 * "avx512-nodot" (without AVX512-BF16's vdpbf16ps), "avx2", "c". */
lmc_status lmc_cpu_backend_open(int threads, const char *isa, lmc_backend **out);
/* kc > 0: the CPU backend's matmuls sum k in blocks of at most kc. */
void lmc_cpu_set_kc_cap(lmc_backend *be, int kc);
/* Names of the CPU instruction-set paths this machine can run, best first. */
int lmc_cpu_isa_list(const char **names, int max);

#endif
