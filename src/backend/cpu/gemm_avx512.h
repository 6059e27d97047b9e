/* gemm_avx512.h: what the AVX-512 GEMM files share (x86-64 only): the
 * 8 x 48 micro-tile, the in-register 16 x 16 transpose the packers use, the
 * kernels' C-tile store and prefetch, and the GELU epilogue.
 *
 * Micro-tile 8 x 48: 24 zmm accumulators, 3 B loads and 8 broadcast A loads
 * per k step (per k pair in bf16). Two 512-bit FMA pipes need >= 8
 * independent chains; 24 leave room to hide load latency. 48 columns and 8
 * rows divide every GPT-2 width (384 ... 3072, and the padded vocabulary
 * 50304) and token count, so the big shapes have no edge tiles.
 */
#ifndef LMC_GEMM_AVX512_H
#define LMC_GEMM_AVX512_H

#include "backend/cpu/gemm.h"
#include "backend/cpu/simd_math.h"

#include <immintrin.h>

#define MR 8
#define NR 48
#define INL __attribute__((always_inline)) inline

/* In-register 16 x 16 transpose of 32-bit elements: r[i] row i -> r[c] column c. */
LMC_TARGET(AVX512) static INL void transpose16(__m512 r[16])
{
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) { /* u[4i + x]: column 4L + x of rows 4i..4i+3 */
        u[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int x = 0; x < 4; x++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[x], u[4 + x], 0x88);
        __m512 v4 = _mm512_shuffle_f32x4(u[x], u[4 + x], 0xDD);
        __m512 v8 = _mm512_shuffle_f32x4(u[8 + x], u[12 + x], 0x88);
        __m512 v12 = _mm512_shuffle_f32x4(u[8 + x], u[12 + x], 0xDD);
        r[x] = _mm512_shuffle_f32x4(v0, v8, 0x88);
        r[x + 8] = _mm512_shuffle_f32x4(v0, v8, 0xDD);
        r[x + 4] = _mm512_shuffle_f32x4(v4, v12, 0x88);
        r[x + 12] = _mm512_shuffle_f32x4(v4, v12, 0xDD);
    }
}

/* Packed panels, in 32-bit units (a k step is one fp32 value or one bf16
 * pair): element (row j, step q) of a w-wide panel block is at panel j / w,
 * offset q*w + j % w. Rows past the matrix are zero. */
LMC_TARGET(AVX512) static INL uint32_t *panel_at(uint32_t *dst, int j0, int w, int kq)
{
    return dst + (size_t)(j0 / w) * kq * w + j0 % w;
}

/* Stores one transposed 16-row group (r[c]: step q0 + c) into its panels: a
 * group is a third of a B panel (w = 48) or two A panels (w = 8). */
LMC_TARGET(AVX512) static INL void store_group(uint32_t *d, const __m512 r[16], int q0, int nq, int w, size_t pstride,
                                               int second)
{
    for (int c = 0; c < nq; c++) {
        float *o = (float *)(d + (size_t)(q0 + c) * w);
        if (w != 8) {
            _mm512_storeu_ps(o, r[c]);
        } else {
            _mm256_storeu_ps(o, _mm512_castps512_ps256(r[c]));
            if (second)
                _mm256_storeu_ps(o + pstride, _mm512_extractf32x8_ps(r[c], 1));
        }
    }
}

/* Strided source rows come from L3 or DRAM, too many streams for the
 * hardware prefetchers: the packers fetch the next 16 rows ahead. */
LMC_TARGET(AVX512) static INL void prefetch_rows(const float *src, size_t ld, int from, int to, int len)
{
    for (int i = from; i < to; i++)
        for (int p = 0; p < len; p += 16)
            _mm_prefetch((const char *)(src + (size_t)i * ld + p), _MM_HINT_T0);
}

LMC_TARGET(AVX512) static INL void store_tile(__m512 acc[MR][3], float *c, size_t ldc, int add_c, const float *bias)
{
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
        for (int v = 0; v < 3; v++) {
            float *p = c + (size_t)i * ldc + 16 * v;
            __m512 x = acc[i][v];
            if (add_c)
                x = _mm512_add_ps(x, _mm512_loadu_ps(p));
            if (bias)
                x = _mm512_add_ps(x, _mm512_loadu_ps(bias + 16 * v));
            _mm512_storeu_ps(p, x);
        }
}

/* C tile prefetch: towards L2 when the kernel starts, into L1 a few k
 * steps before the end (a start-time T0 prefetch would be evicted by the
 * streaming panels before the tile is read). */
#define PREFETCH_TILE(c, ldc, hint)                                                   \
    do {                                                                              \
        _Pragma("GCC unroll 8") for (int i_ = 0; i_ < MR; i_++) {                     \
            const char *r_ = (const char *)((c) + (size_t)i_ * (ldc));                \
            _mm_prefetch(r_, hint), _mm_prefetch(r_ + 64, hint);                      \
            _mm_prefetch(r_ + 128, hint), _mm_prefetch(r_ + 191, hint);               \
        }                                                                             \
    } while (0)
#define TAIL_STEPS 16

/* In place GELU of n values (both AVX-512 paths' epilogue). */
void lmc_gemm_gelu_avx512(float *x, int n);

#endif
