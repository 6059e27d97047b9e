/* gemm_avx512_bf16.c: the AVX512-BF16 GEMM path: inputs rounded to bf16
 * while packing, into k pairs (the vdpbf16ps operand order), and an 8 x 48
 * micro-kernel of vdpbf16ps: two bf16 products per lane per instruction,
 * exact (8-bit significands), accumulated in fp32.
 *
 * Rounding is vcvtne2ps2bf16: round to nearest even exactly as bf16_round,
 * except that fp32 denormals become 0 (vdpbf16ps treats bf16 denormals as 0
 * anyway, so only inputs within half a bf16 ulp below 2^-126 differ, by
 * < 1.2e-38 each) and nans are quieted (nan either way). It is several times
 * cheaper than integer rounding, and packing is a third of the bf16 time at
 * 256 tokens. Blocks as the fp32 path with KC doubled (768: same bytes).
 */
#include "backend/cpu/gemm.h"

#if defined(__x86_64__)

#include "backend/cpu/gemm_avx512.h"

/* 32 floats (masked) -> 16 dwords of bf16 pairs (x[2q] low, x[2q+1] high) */
LMC_TARGET(AVX512_BF16) static INL __m512 load_pairs(const float *p, int kn)
{
    __mmask32 m = kn >= 32 ? 0xffffffffu : (1u << kn) - 1;
    __m512 lo = _mm512_maskz_loadu_ps((__mmask16)m, p), hi = _mm512_maskz_loadu_ps((__mmask16)(m >> 16), p + 16);
    return (__m512)_mm512_cvtne2ps_pbh(hi, lo);
}

/* two rows of 16 floats (masked) -> 16 dwords (e low, o high); o may be NULL */
LMC_TARGET(AVX512_BF16) static INL __m512 interleave_pairs(const float *e, const float *o, __mmask16 m)
{
    static const short idx[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                  8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    __m512 ev = _mm512_maskz_loadu_ps(m, e), ov = o ? _mm512_maskz_loadu_ps(m, o) : _mm512_setzero_ps();
    __m512i both = (__m512i)_mm512_cvtne2ps_pbh(ov, ev);
    return _mm512_castsi512_ps(_mm512_permutexvar_epi16(_mm512_loadu_si512(idx), both));
}

/* k-contiguous source (A of NN/NT, B of NT): 16 rows x 16 pairs at a time;
 * a row's bf16 pairs are already dwords, so this is the fp32 transpose. */
LMC_TARGET(AVX512_BF16) static INL void pack_kmajor(uint32_t *dst, const float *src, size_t ld, int n, int kc, int w)
{
    int kq = (kc + 1) / 2, npad = (n + w - 1) / w * w;
    for (int j0 = 0; j0 < npad; j0 += 16) {
        prefetch_rows(src, ld, j0 + 16, j0 + 32 < n ? j0 + 32 : n, kc);
        uint32_t *d = panel_at(dst, j0, w, kq);
        int rows = n - j0 < 16 ? n - j0 : 16;
        for (int q0 = 0; q0 < kq; q0 += 16) {
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = i < rows ? load_pairs(src + (size_t)(j0 + i) * ld + 2 * q0, kc - 2 * q0)
                                : _mm512_setzero_ps();
            transpose16(r);
            store_group(d, r, q0, kq - q0 < 16 ? kq - q0 : 16, w, (size_t)kq * w, w == 8 && j0 + 8 < npad);
        }
    }
}

/* panel-contiguous source (A of TN, B of NN): k rows 2q and 2q+1 interleave */
LMC_TARGET(AVX512_BF16) static INL void pack_nmajor(uint32_t *dst, const float *src, size_t ld, int n, int kc, int w)
{
    int kq = (kc + 1) / 2;
    for (int j0 = 0; j0 < n; j0 += w) {
        uint32_t *d = panel_at(dst, j0, w, kq);
        for (int q = 0; q < kq; q++, d += w)
            for (int c = 0; c < w; c += 16) {
                int cols = n - j0 - c;
                __mmask16 m = cols >= 16 ? 0xffff : cols > 0 ? (__mmask16)((1u << cols) - 1) : 0;
                __mmask16 ms = w - c >= 16 ? 0xffff : (__mmask16)((1u << (w - c)) - 1);
                const float *e = src + (size_t)(2 * q) * ld + j0 + c;
                __m512 v = interleave_pairs(e, 2 * q + 1 < kc ? e + ld : NULL, m);
                _mm512_mask_storeu_ps((float *)d + c, ms, v);
            }
    }
}

LMC_TARGET(AVX512_BF16) static void pack_a_bf16(void *dst, const float *a, size_t lda, int trans, int mc, int kc,
                                                int round)
{
    (void)round; /* always bf16 */
    if (trans)
        pack_nmajor(dst, a, lda, mc, kc, MR);
    else
        pack_kmajor(dst, a, lda, mc, kc, MR);
}

LMC_TARGET(AVX512_BF16) static void pack_b_bf16(void *dst, const float *b, size_t ldb, int trans, int kc, int nc,
                                                int round)
{
    (void)round;
    if (trans)
        pack_kmajor(dst, b, ldb, nc, kc, NR);
    else
        pack_nmajor(dst, b, ldb, nc, kc, NR);
}

/* ---- micro-kernel ---- */

LMC_TARGET(AVX512_BF16) static INL void step_bf16(__m512 acc[MR][3], const int32_t *ap, const __m512i *bp)
{
    __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp), b1 = (__m512bh)_mm512_loadu_si512(bp + 1),
             b2 = (__m512bh)_mm512_loadu_si512(bp + 2);
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        __m512bh a = (__m512bh)_mm512_set1_epi32(ap[i]);
        acc[i][0] = _mm512_dpbf16_ps(acc[i][0], a, b0);
        acc[i][1] = _mm512_dpbf16_ps(acc[i][1], a, b1);
        acc[i][2] = _mm512_dpbf16_ps(acc[i][2], a, b2);
    }
}

LMC_TARGET(AVX512_BF16) static void kernel_bf16(int kc, const void *ap_, const void *bp_, float *c, size_t ldc,
                                                int add_c, const float *bias)
{
    const int32_t *ap = ap_;
    const __m512i *bp = bp_;
    __m512 acc[MR][3];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
        acc[i][0] = acc[i][1] = acc[i][2] = _mm512_setzero_ps();
    int q = 0, kq = (kc + 1) / 2, body = add_c && kq > TAIL_STEPS ? kq - TAIL_STEPS : kq;
    if (add_c)
        PREFETCH_TILE(c, ldc, _MM_HINT_T1);
    for (; q < body; q++, ap += MR, bp += 3)
        step_bf16(acc, ap, bp);
    if (add_c)
        PREFETCH_TILE(c, ldc, _MM_HINT_T0);
    for (; q < kq; q++, ap += MR, bp += 3)
        step_bf16(acc, ap, bp);
    store_tile(acc, c, ldc, add_c, bias);
}

const lmc_gemm_impl lmc_gemm_avx512_bf16 = {
    .name = "avx512-bf16",
    .mr = MR,
    .nr = NR,
    .kpack = 2,
    .mc = 256,
    .kc = 768,
    .nc = 4080,
    .pack_a = pack_a_bf16,
    .pack_b = pack_b_bf16,
    .kernel = kernel_bf16,
    .gelu = lmc_gemm_gelu_avx512,
};

#endif
