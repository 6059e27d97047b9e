/* backend.h: the ops table every chip implements.
 *
 * A backend owns device memory and runs kernels on it. Model code calls only
 * these functions, so a new chip is a new folder under src/backend/ that
 * fills this table and passes tests/conformance. All tensors are row-major,
 * fp32 unless a dtype says otherwise; pointers are device pointers from
 * alloc(). Shapes are explicit in every call. Kernels do not fail: callers
 * check shapes and ids before calling. "+=" below means the op accumulates
 * into its output (gradients), "=" that it overwrites.
 */
#ifndef LMC_BACKEND_H
#define LMC_BACKEND_H

#include "lmc/core.h"

/* LMC_I8: int8 weights with one fp32 scale per row (weight-only
 * quantization for inference; only the `linear` op takes it). */
typedef enum { LMC_F32 = 0, LMC_BF16 = 1, LMC_I8 = 2 } lmc_dtype;

typedef enum {
    LMC_OP_MATMUL,
    LMC_OP_BIAS_GRAD,
    LMC_OP_EMBED,
    LMC_OP_LAYERNORM,
    LMC_OP_RMSNORM,
    LMC_OP_GELU,
    LMC_OP_SWIGLU,
    LMC_OP_ROPE,
    LMC_OP_ATTENTION,
    LMC_OP_ATTENTION_DECODE,
    LMC_OP_ADD,
    LMC_OP_XENT,
    LMC_OP_SUM,
    LMC_OP_ADAMW,
    LMC_OP_CAST,
    LMC_OP_LINEAR,   /* inference: fp32 input times F32/BF16/I8 weights */
    LMC_OP_KV_STORE, /* inference: write keys/values into a KV cache */
    LMC_OP_COUNT
} lmc_op;

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

struct lmc_backend {
    const lmc_backend_ops *ops;
    const char *name; /* "cpu", "cuda:0" */
    int threads;
    void *impl; /* backend private state */
};

struct lmc_backend_ops {
    /* ---- memory ---- */
    void *(*alloc)(lmc_backend *be, size_t bytes); /* zeroed; NULL + error on failure */
    void (*free)(lmc_backend *be, void *p);
    void (*upload)(lmc_backend *be, void *dst, const void *host_src, size_t bytes);
    void (*download)(lmc_backend *be, void *host_dst, const void *src, size_t bytes);
    void (*copy)(lmc_backend *be, void *dst, const void *src, size_t bytes);
    void (*zero)(lmc_backend *be, void *p, size_t bytes);
    void (*sync)(lmc_backend *be);
    void (*destroy)(lmc_backend *be);
    int (*supports)(lmc_backend *be, lmc_op op, lmc_dtype dtype);
    /* Peak dense FLOP/s of this device at the given matmul precision, for
     * MFU: measured (CPU: an FMA loop on all threads) or from the vendor. */
    double (*peak_flops)(lmc_backend *be, lmc_dtype prec);

    /* ---- linear algebra ---- */
    void (*matmul)(lmc_backend *be, float *c, const float *a, const float *b, const lmc_gemm *g);
    /* dbias (n) += column sums of dout (m,n) */
    void (*bias_grad)(lmc_backend *be, float *dbias, const float *dout, int m, int n);

    /* ---- embeddings ---- out (B,T,C) = wte[tokens] + wpe[pos0[b] + t]
     * wpe may be NULL (rotary models); pos0 (B) may be NULL (= 0). A
     * negative id is a token whose row another rank holds (a vocabulary-
     * parallel embedding): its wte row reads as zeros and gets no gradient;
     * wpe and dwpe still apply. Backends without vocabulary-parallel
     * support (no xent_part) never receive negative ids. */
    void (*embed_forward)(lmc_backend *be, float *out, const int *tokens, const int *pos0,
                          const float *wte, const float *wpe, int B, int T, int C);
    /* dwte (V,C) +=, dwpe (maxT,C) += (if not NULL), dout (B,T,C) */
    void (*embed_backward)(lmc_backend *be, float *dwte, float *dwpe, const float *dout,
                           const int *tokens, int B, int T, int C);

    /* ---- normalisation over the last dim C of N rows ----
     * mean/rstd (N) are saved for backward; NULL in inference. b may be NULL. */
    void (*layernorm_forward)(lmc_backend *be, float *out, float *mean, float *rstd,
                              const float *inp, const float *w, const float *b,
                              int N, int C, float eps);
    /* dinp +=, dw +=, db += (if not NULL) */
    void (*layernorm_backward)(lmc_backend *be, float *dinp, float *dw, float *db,
                               const float *dout, const float *inp, const float *w,
                               const float *mean, const float *rstd, int N, int C);
    void (*rmsnorm_forward)(lmc_backend *be, float *out, float *rstd, const float *inp,
                            const float *w, int N, int C, float eps);
    /* dinp +=, dw += */
    void (*rmsnorm_backward)(lmc_backend *be, float *dinp, float *dw, const float *dout,
                             const float *inp, const float *w, const float *rstd, int N, int C);

    /* ---- activations ---- GELU is the tanh approximation (GPT-2's gelu_new) */
    void (*gelu_forward)(lmc_backend *be, float *out, const float *inp, size_t n);
    /* dinp = gelu'(inp) * dout; dinp may alias dout */
    void (*gelu_backward)(lmc_backend *be, float *dinp, const float *inp, const float *dout, size_t n);
    /* inp (N, 2H) holds [gate | up] per row; out (N,H) = silu(gate) * up */
    void (*swiglu_forward)(lmc_backend *be, float *out, const float *inp, int N, int H);
    /* dinp (N,2H) = */
    void (*swiglu_backward)(lmc_backend *be, float *dinp, const float *inp, const float *dout, int N, int H);

    /* ---- attention ----
     * qkv (B,T,(NH+2*NKV)*HS): per token the NH query heads, then NKV key
     * heads, then NKV value heads. Query head h attends with kv head
     * h / (NH/NKV). Causal, scale 1/sqrt(HS). */
    /* Rotary embedding in place on the q and k heads of qkv, rotating the two
     * halves of each head (Hugging Face convention), position pos0[b] + t;
     * inverse rotates back (the backward pass). NH or NKV may be 0: with
     * NKV = 0 the buffer is q alone (B,T,NH*HS) and all its heads rotate;
     * with NH = 0 it is k|v (B,T,2*NKV*HS) and the NKV k heads rotate (the
     * inference engine computes q and k|v into separate buffers). */
    void (*rope)(lmc_backend *be, float *qkv, const int *pos0, int B, int T, int NH, int NKV,
                 int HS, float theta, int inverse);
    /* out (B,T,NH*HS) =, lse (B,NH,T) = log-sum-exp of each score row (NULL: not saved) */
    void (*attention_forward)(lmc_backend *be, float *out, float *lse, const float *qkv,
                              int B, int T, int NH, int NKV, int HS);
    /* dqkv (B,T,(NH+2NKV)*HS) = */
    void (*attention_backward)(lmc_backend *be, float *dqkv, const float *dout, const float *out,
                               const float *lse, const float *qkv, int B, int T, int NH, int NKV, int HS);
    /* Decode against a KV cache. q (B,NH*HS) holds one new query per sequence;
     * kcache/vcache (B, maxT, NKV*HS); sequence b attends to its first
     * len[b] cached positions (len is a device array). out (B,NH*HS) = */
    void (*attention_decode)(lmc_backend *be, float *out, const float *q, const float *kcache,
                             const float *vcache, const int *len, int B, int maxT, int NH, int NKV, int HS);
    /* Writes new keys and values into a KV cache. For b < B, t < T:
     * kcache[b][pos0[b] + t][0..D) = k[(b*T + t)*stride + 0..D), and vcache
     * likewise from v. Caches are (B, maxT, D); pos0 is a device array (B);
     * callers guarantee 0 <= pos0[b] and pos0[b] + T <= maxT. k and v are
     * strided rows so they can point into a fused qkv buffer
     * (stride (NH+2NKV)*HS) or a k|v buffer (stride 2*D). */
    void (*kv_store)(lmc_backend *be, float *kcache, float *vcache, const float *k, const float *v,
                     size_t stride, const int *pos0, int B, int T, int maxT, int D);

    /* ---- inference linear layer (weight-only quantization) ----
     * out (M,N) = (or += with accumulate) inp (M,K) . W^T (+ bias (N)),
     * W (N,K) row-major as nn.Linear stores it, in wtype:
     *   LMC_F32:  float weights (scale NULL);
     *   LMC_BF16: uint16_t bf16 bit patterns, value = bits << 16 (scale NULL);
     *   LMC_I8:   int8_t q, value W[n][k] = q[n][k] * scale[n] (scale (N) fp32).
     * inp, bias, out are fp32; products and sums are fp32 (the weight is
     * converted exactly to fp32, the input is not rounded). Tuned for small
     * M (decode: one row per sequence); valid for any M >= 1. out must not
     * alias inp. */
    void (*linear)(lmc_backend *be, float *out, const float *inp, const void *w, lmc_dtype wtype,
                   const float *scale, const float *bias, int M, int N, int K, int accumulate);

    /* ---- elementwise and reductions ---- */
    void (*add)(lmc_backend *be, float *out, const float *a, const float *b, size_t n);
    void (*scale)(lmc_backend *be, float *x, float s, size_t n);
    /* Fused softmax + cross-entropy over the first V of Vp columns:
     * losses (N) = logsumexp(logits) - logits[target]. With backward set the
     * logits are overwritten in place by dloss * (softmax - onehot), and the
     * padded columns V..Vp by 0. targets are valid ids < V. */
    void (*xent)(lmc_backend *be, float *losses, float *logits, const int *targets,
                 int N, int V, int Vp, float dloss, int backward);
    /* Vocabulary-parallel softmax cross-entropy (Megatron-LM): this rank
     * holds the logits' columns [v0, v0 + V) of the vocabulary, (N, Vp)
     * with V valid. stats (N, 2), per row: stage 0 writes {max of the row's
     * columns (-inf when V = 0), the target's logit (0 when another rank
     * holds it)}; stage 1 reads stats[r][0] = the max over all ranks and
     * writes stats[r][1] = sum of exp(x - max) over this rank's columns;
     * stage 2 reads stats[r][0] = the log-sum-exp over all ranks and
     * overwrites the logits by dloss * (softmax - onehot(target)), the
     * padded columns by 0. May be NULL (no vocabulary parallelism). */
    void (*xent_part)(lmc_backend *be, float *stats, float *logits, const int *targets, int N, int V, int Vp,
                      int v0, float dloss, int stage);
    /* out[0] = sum of x (squares: of x^2), accumulated in double */
    void (*sum)(lmc_backend *be, float *out, const float *x, size_t n, int squares);
    void (*adamw)(lmc_backend *be, float *p, const float *g, float *m, float *v, size_t n,
                  const lmc_adamw_hp *hp);
    /* dst = src converted (F32 <-> BF16, round to nearest even) */
    void (*cast)(lmc_backend *be, void *dst, lmc_dtype dst_type, const void *src,
                 lmc_dtype src_type, size_t n);
};

/* Opens a backend by name: "cpu", "cuda", "cuda:N". threads <= 0: all cores. */
lmc_status lmc_backend_open(const char *device, int threads, lmc_backend **out);
void lmc_backend_close(lmc_backend *be);

/* A symbol of the CUDA plugin (liblmc_cuda.so), loading it on first use;
 * `what` names the request in error messages ("--device cuda"). */
lmc_status lmc_cuda_plugin_symbol(const char *name, const char *what, void **sym);

/* CPU backend with a forced instruction set: "auto", "avx512",
 * "avx512-nodot" (without AVX512-BF16's vdpbf16ps), "avx2", "c". */
lmc_status lmc_cpu_backend_open(int threads, const char *isa, lmc_backend **out);
/* kc > 0: the CPU backend's matmuls sum k in blocks of at most kc. */
void lmc_cpu_set_kc_cap(lmc_backend *be, int kc);
/* Names of the CPU instruction-set paths this machine can run, best first. */
int lmc_cpu_isa_list(const char **names, int max);

#endif
