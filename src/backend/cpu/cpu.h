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
    lmc_op fail_op; /* tests: this op's scratch requests fail (LMC_TEST_FAIL_OP); LMC_OP_COUNT: none */
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
/* A scratch area of at least `bytes` for op, valid until the next call.
 * NULL when it cannot be had: the failure is recorded against op
 * (lmc_backend_fail) and the op returns without computing. */
float *lmc_cpu_scratch(lmc_backend *be, size_t bytes, lmc_op op);

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

/* Every op of the table is lmc_cpu_<op> (cpu.c fills the table from this
 * list): declared here once, from backend.h's LMC_BACKEND_OPS. */
#define LMC_CPU_DECLARE_(kind, name, ret, params) ret lmc_cpu_##name params;
LMC_BACKEND_OPS(LMC_CPU_DECLARE_)
#undef LMC_CPU_DECLARE_

/* AVX-512 paths of attention (attention_avx512.c) */
void lmc_cpu_attention_forward_avx512(lmc_backend *be, float *out, float *lse, const float *qkv, int B, int T,
                                      int NH, int NKV, int HS);
void lmc_cpu_attention_backward_avx512(lmc_backend *be, float *dqkv, const float *dout, const float *out,
                                       const float *lse, const float *qkv, int B, int T, int NH, int NKV, int HS);
/* The portable attention_decode (attention.c): the conformance suite's
 * reference; lmc_cpu_attention_decode takes the AVX-512 path where it can. */
void lmc_cpu_attention_decode_c(lmc_backend *be, float *out, const float *q, const float *kcache,
                                const float *vcache, const int *len, int B, int maxT, int NH, int NKV, int HS);
/* One head of one sequence against its cache: o = softmax(q . k * scale) . v
 * over nk rows stride floats apart; p is scratch; returns the log-sum-exp. */
typedef float (*lmc_cpu_attend_fn)(float *o, float *p, const float *q, const float *k, const float *v,
                                   size_t stride, int nk, int HS, float scale);
/* attention_decode over every (sequence, head), threaded, with attend per row */
void lmc_cpu_decode_heads(lmc_backend *be, lmc_cpu_attend_fn attend, float *out, const float *q,
                          const float *kcache, const float *vcache, const int *len, int B, int maxT, int NH, int NKV,
                          int HS);

#endif
