/* gemm.h: the CPU backend's GEMM (Goto/BLIS design): operands are packed
 * into cache-sized blocks of micro-panels, and a register-blocked micro-kernel
 * computes one MR x NR tile of C from an A micro-panel (MR rows, k-major) and a
 * B micro-panel (NR columns, k-major). Each instruction-set path fills one
 * lmc_gemm_impl (gemm_c.c, gemm_avx2.c, gemm_avx512.c, gemm_avx512_bf16.c);
 * gemm.c holds the blocking loops, threading, edge tiles and epilogue.
 *
 * Packed layouts, for kpack = 1 (fp32 values, bf16-rounded when asked):
 *   A panel: ap[p*MR + i],  B panel: bp[p*NR + j]
 * and for kpack = 2 (bf16 pairs along k, the vdpbf16ps operand order):
 *   A panel: ap[(q*MR + i)*2 + s] = bf16(a(i, 2q+s)),  likewise B with NR.
 * Rows/columns beyond the matrix and the odd k of a pair are zero. The
 * AVX512-BF16 packers round with vcvtne2ps2bf16, which also flushes fp32
 * denormals (see gemm_avx512_bf16.c); all other rounding is bf16_round.
 */
#ifndef LMC_GEMM_H
#define LMC_GEMM_H

#include "backend/cpu/cpu.h"

#include <stddef.h>
#include <stdint.h>

#define LMC_GEMM_MAX_MR 16
#define LMC_GEMM_MAX_NR 64

/* Packs rows [0,mc) x k [0,kc) of op(A) into MR-row panels; element (i,p) is
 * a[p*lda + i] if trans else a[i*lda + p]. round: fp32 panels hold values
 * rounded to bf16 (kpack = 2 panels are always bf16). */
typedef void (*lmc_gemm_pack_a_fn)(void *dst, const float *a, size_t lda, int trans, int mc, int kc,
                                   int round);
/* Packs k [0,kc) x columns [0,nc) of op(B) into NR-column panels; element
 * (p,j) is b[j*ldb + p] if trans else b[p*ldb + j]. */
typedef void (*lmc_gemm_pack_b_fn)(void *dst, const float *b, size_t ldb, int trans, int kc, int nc,
                                   int round);
/* One full MR x NR tile: C = acc (+ C if add_c) (+ bias[j] if bias), in that
 * order, where acc is the sum over kc of the packed products. */
typedef void (*lmc_gemm_kernel_fn)(int kc, const void *ap, const void *bp, float *c, size_t ldc,
                                   int add_c, const float *bias);
/* In place GELU (simd_math.h's, of this instruction set) of n values. */
typedef void (*lmc_gemm_gelu_fn)(float *x, int n);

typedef struct {
    const char *name;
    int mr, nr;     /* micro-tile */
    int kpack;      /* 1: fp32 panels, 2: bf16 pairs */
    int mc, kc, nc; /* cache blocks: A block mc x kc (L2), B block kc x nc */
    lmc_gemm_pack_a_fn pack_a;
    lmc_gemm_pack_b_fn pack_b;
    lmc_gemm_kernel_fn kernel;
    lmc_gemm_gelu_fn gelu;
} lmc_gemm_impl;

/* The paths; the x86 ones exist only in x86-64 builds. */
extern const lmc_gemm_impl lmc_gemm_c_f32;
#if defined(__x86_64__)
extern const lmc_gemm_impl lmc_gemm_avx2_f32;
extern const lmc_gemm_impl lmc_gemm_avx512_f32;
extern const lmc_gemm_impl lmc_gemm_avx512_bf16;
#endif

/* The path for an instruction set and precision: bf16 uses vdpbf16ps where
 * the CPU has it (and allow_dot is set), else fp32 kernels on rounded inputs. */
const lmc_gemm_impl *lmc_gemm_pick(lmc_cpu_isa isa, lmc_dtype prec, int allow_dot);

/* Scratch bytes lmc_gemm_run needs for this call. */
size_t lmc_gemm_scratch_bytes(const lmc_gemm_impl *im, int threads, const lmc_gemm *g);
/* The whole matmul op (backend.h) on up to `threads` threads. scratch: at
 * least lmc_gemm_scratch_bytes, 64-byte aligned; NULL runs a slow unpacked
 * fallback. Results do not depend on the thread count. */
void lmc_gemm_run(const lmc_gemm_impl *im, int threads, void *scratch, float *c, const float *a,
                  const float *b, const lmc_gemm *g);

#endif
