/* cpu.h: private declarations shared by the CPU backend's op files. */
#ifndef LMC_CPU_H
#define LMC_CPU_H

#include "backend/backend.h"

#include <stdint.h>

typedef enum { LMC_ISA_C = 0, LMC_ISA_AVX2 = 1, LMC_ISA_AVX512 = 2 } lmc_cpu_isa;

typedef struct {
    lmc_cpu_isa isa;
    int dot; /* AVX-512 with vdpbf16ps (AVX512-BF16) in use for bf16 matmuls */
    float *scratch; /* grown on demand, reused: no allocation in steady state */
    size_t scratch_bytes;
    double peak[2]; /* measured peak FLOP/s, fp32 and bf16; 0 until asked */
    int kc_cap;     /* > 0: matmuls sum k in blocks of at most this (a numerics probe: --device cpu:kc=N) */
} lmc_cpu;

static inline lmc_cpu *cpu_of(lmc_backend *be) { return (lmc_cpu *)be->impl; }
/* Threads for an op over `work` floats: below this, waking the other
 * threads costs more than they save (decode works on single rows, and a
 * step runs ~10 ops per layer). */
#define LMC_CPU_PAR_MIN 32768
static inline int lmc_cpu_threads_for(const lmc_backend *be, size_t work)
{
    return work < LMC_CPU_PAR_MIN ? 1 : be->threads;
}
/* A scratch area of at least `bytes`, valid until the next call. */
float *lmc_cpu_scratch(lmc_backend *be, size_t bytes);

static inline float bf16_round(float x)
{
    union { float f; uint32_t u; } v = {x};
    if ((v.u & 0x7f800000u) == 0x7f800000u) /* inf/nan: truncate, keep nan quiet */
        return (v.u & 0xffffu) ? (union { uint32_t u; float f; }){(v.u | 0x10000u) & 0xffff0000u}.f
                               : x;
    v.u += 0x7fffu + ((v.u >> 16) & 1u);
    v.u &= 0xffff0000u;
    return v.f;
}

double lmc_cpu_peak_flops(lmc_backend *be, lmc_dtype prec);
void lmc_cpu_matmul(lmc_backend *be, float *c, const float *a, const float *b, const lmc_gemm *g);
void lmc_cpu_bias_grad(lmc_backend *be, float *dbias, const float *dout, int m, int n);
void lmc_cpu_embed_forward(lmc_backend *be, float *out, const int *tokens, const int *pos0,
                           const float *wte, const float *wpe, int B, int T, int C);
void lmc_cpu_embed_backward(lmc_backend *be, float *dwte, float *dwpe, const float *dout,
                            const int *tokens, int B, int T, int C);
void lmc_cpu_layernorm_forward(lmc_backend *be, float *out, float *mean, float *rstd,
                               const float *inp, const float *w, const float *b, int N, int C, float eps);
void lmc_cpu_layernorm_backward(lmc_backend *be, float *dinp, float *dw, float *db, const float *dout,
                                const float *inp, const float *w, const float *mean, const float *rstd,
                                int N, int C);
void lmc_cpu_rmsnorm_forward(lmc_backend *be, float *out, float *rstd, const float *inp, const float *w,
                             int N, int C, float eps);
void lmc_cpu_rmsnorm_backward(lmc_backend *be, float *dinp, float *dw, const float *dout, const float *inp,
                              const float *w, const float *rstd, int N, int C);
void lmc_cpu_gelu_forward(lmc_backend *be, float *out, const float *inp, size_t n);
void lmc_cpu_gelu_backward(lmc_backend *be, float *dinp, const float *inp, const float *dout, size_t n);
void lmc_cpu_swiglu_forward(lmc_backend *be, float *out, const float *inp, int N, int H);
void lmc_cpu_swiglu_backward(lmc_backend *be, float *dinp, const float *inp, const float *dout, int N, int H);
void lmc_cpu_rope(lmc_backend *be, float *qkv, const int *pos0, int B, int T, int NH, int NKV, int HS,
                  float theta, int inverse);
void lmc_cpu_attention_forward(lmc_backend *be, float *out, float *lse, const float *qkv, int B, int T,
                               int NH, int NKV, int HS);
void lmc_cpu_attention_forward_avx512(lmc_backend *be, float *out, float *lse, const float *qkv, int B, int T,
                                      int NH, int NKV, int HS);
void lmc_cpu_attention_backward_avx512(lmc_backend *be, float *dqkv, const float *dout, const float *out,
                                       const float *lse, const float *qkv, int B, int T, int NH, int NKV, int HS);
void lmc_cpu_attention_backward(lmc_backend *be, float *dqkv, const float *dout, const float *out,
                                const float *lse, const float *qkv, int B, int T, int NH, int NKV, int HS);
void lmc_cpu_attention_decode(lmc_backend *be, float *out, const float *q, const float *kcache,
                              const float *vcache, const int *len, int B, int maxT, int NH, int NKV, int HS);
/* One head of one sequence against its cache: o = softmax(q . k * scale) . v
 * over nk rows stride floats apart; p is scratch; returns the log-sum-exp. */
typedef float (*lmc_cpu_attend_fn)(float *o, float *p, const float *q, const float *k, const float *v,
                                   size_t stride, int nk, int HS, float scale);
/* attention_decode over every (sequence, head), threaded, with attend per row */
void lmc_cpu_decode_heads(lmc_backend *be, lmc_cpu_attend_fn attend, float *out, const float *q,
                          const float *kcache, const float *vcache, const int *len, int B, int maxT, int NH, int NKV,
                          int HS);
/* attention_decode with an AVX-512 path (attention_decode.c); the portable
 * lmc_cpu_attention_decode otherwise */
void lmc_cpu_attention_decode_fast(lmc_backend *be, float *out, const float *q, const float *kcache,
                                   const float *vcache, const int *len, int B, int maxT, int NH, int NKV, int HS);
void lmc_cpu_kv_store(lmc_backend *be, float *kcache, float *vcache, const float *k, const float *v,
                      size_t stride, const int *pos0, int B, int T, int maxT, int D);
void lmc_cpu_linear(lmc_backend *be, float *out, const float *inp, const void *w, lmc_dtype wtype,
                    const float *scale, const float *bias, int M, int N, int K, int accumulate);
void lmc_cpu_add(lmc_backend *be, float *out, const float *a, const float *b, size_t n);
void lmc_cpu_scale(lmc_backend *be, float *x, float s, size_t n);
void lmc_cpu_xent_part(lmc_backend *be, float *stats, float *logits, const int *targets, int N, int V, int Vp,
                       int v0, float dloss, int stage);
void lmc_cpu_xent(lmc_backend *be, float *losses, float *logits, const int *targets, int N, int V, int Vp,
                  float dloss, int backward);
void lmc_cpu_sum(lmc_backend *be, float *out, const float *x, size_t n, int squares);
void lmc_cpu_adamw(lmc_backend *be, float *p, const float *g, float *m, float *v, size_t n,
                   const lmc_adamw_hp *hp);
void lmc_cpu_cast(lmc_backend *be, void *dst, lmc_dtype dst_type, const void *src, lmc_dtype src_type,
                  size_t n);

#endif
