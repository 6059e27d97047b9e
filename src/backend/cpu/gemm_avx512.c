/* gemm_avx512.c: the AVX-512 fp32 GEMM path: packers (16 x 16 in-register
 * transposes for the k-contiguous operands of NT and NN, plain copies for the
 * others; rounding to bf16 on the way for bf16 on CPUs without AVX512-BF16),
 * the 8 x 48 FMA micro-kernel, and the vector GELU epilogue.
 *
 * Blocks: KC 384 (the 72 KB B micro-panel, reused by every tile of an A
 * block, stays in L1/L2; 12 KB A micro-panels stream from L2), MC 256 (the
 * A block, 384 KB, stays in L2; the 256-token GEMMs run "flat", see gemm.c),
 * NC 4080 (B block 6 MB in L3). Measured on Zen 5: KC 256 to 768 within
 * noise at m = 2048, 384 about 10% faster than 256 at m = 256 (half the C
 * passes over k = 768).
 */
#include "backend/cpu/gemm.h"

#if defined(__x86_64__)

#include "backend/cpu/gemm_avx512.h"

/* ---- bf16 rounding, exactly bf16_round (CPUs without AVX512-BF16) ---- */

LMC_TARGET(AVX512) static INL __m512i rne_hi(__m512 x)
{
    __m512i u = _mm512_castps_si512(x);
    __m512i one = _mm512_set1_epi32(1), exp = _mm512_set1_epi32(0x7f800000);
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
                                                     _mm512_and_si512(_mm512_srli_epi32(u, 16), one)));
    /* inf/nan truncate; a nan whose payload is all in the low half keeps bit 16 */
    __mmask16 spec = _mm512_cmpeq_epi32_mask(_mm512_and_si512(u, exp), exp);
    __mmask16 low = _mm512_test_epi32_mask(u, _mm512_set1_epi32(0xffff));
    r = _mm512_mask_mov_epi32(r, spec, u);
    return _mm512_mask_or_epi32(r, spec & low, u, _mm512_set1_epi32(0x10000));
}

LMC_TARGET(AVX512) static INL __m512 round_ps(__m512 x)
{
    return _mm512_castsi512_ps(_mm512_and_si512(rne_hi(x), _mm512_set1_epi32((int)0xffff0000u)));
}

LMC_TARGET(AVX512) static INL __m512 load_f32(const float *p, __mmask16 m, int round)
{
    __m512 x = _mm512_maskz_loadu_ps(m, p);
    return round ? round_ps(x) : x;
}

/* ---- packers ---- */

/* k-contiguous source (A of NN/NT, B of NT): 16 rows x 16 k at a time. */
LMC_TARGET(AVX512) static INL void pack_kmajor(uint32_t *dst, const float *src, size_t ld, int n, int kc, int w,
                                               int round)
{
    int npad = (n + w - 1) / w * w;
    for (int j0 = 0; j0 < npad; j0 += 16) {
        prefetch_rows(src, ld, j0 + 16, j0 + 32 < n ? j0 + 32 : n, kc);
        uint32_t *d = panel_at(dst, j0, w, kc);
        int rows = n - j0 < 16 ? n - j0 : 16;
        for (int p0 = 0; p0 < kc; p0 += 16) {
            __m512 r[16];
            __mmask16 m = kc - p0 >= 16 ? 0xffff : (__mmask16)((1u << (kc - p0)) - 1);
            for (int i = 0; i < 16; i++)
                r[i] = i < rows ? load_f32(src + (size_t)(j0 + i) * ld + p0, m, round) : _mm512_setzero_ps();
            transpose16(r);
            store_group(d, r, p0, kc - p0 < 16 ? kc - p0 : 16, w, (size_t)kc * w, w == 8 && j0 + 8 < npad);
        }
    }
}

/* panel-contiguous source (A of TN, B of NN): each source row is one k */
LMC_TARGET(AVX512) static INL void pack_nmajor(uint32_t *dst, const float *src, size_t ld, int n, int kc, int w,
                                               int round)
{
    for (int j0 = 0; j0 < n; j0 += w) {
        uint32_t *d = panel_at(dst, j0, w, kc);
        for (int p = 0; p < kc; p++, d += w)
            for (int c = 0; c < w; c += 16) {
                int cols = n - j0 - c;
                __mmask16 m = cols >= 16 ? 0xffff : cols > 0 ? (__mmask16)((1u << cols) - 1) : 0;
                __mmask16 ms = w - c >= 16 ? 0xffff : (__mmask16)((1u << (w - c)) - 1);
                __m512 v = load_f32(src + (size_t)p * ld + j0 + c, m, round);
                _mm512_mask_storeu_ps((float *)d + c, ms, v);
            }
    }
}

/* one instance per (layout, rounding), so each inlines its constants */
LMC_TARGET(AVX512) static void pack_a_f32(void *dst, const float *a, size_t lda, int trans, int mc, int kc, int round)
{
    if (trans)
        round ? pack_nmajor(dst, a, lda, mc, kc, MR, 1) : pack_nmajor(dst, a, lda, mc, kc, MR, 0);
    else
        round ? pack_kmajor(dst, a, lda, mc, kc, MR, 1) : pack_kmajor(dst, a, lda, mc, kc, MR, 0);
}

LMC_TARGET(AVX512) static void pack_b_f32(void *dst, const float *b, size_t ldb, int trans, int kc, int nc, int round)
{
    if (trans)
        round ? pack_kmajor(dst, b, ldb, nc, kc, NR, 1) : pack_kmajor(dst, b, ldb, nc, kc, NR, 0);
    else
        round ? pack_nmajor(dst, b, ldb, nc, kc, NR, 1) : pack_nmajor(dst, b, ldb, nc, kc, NR, 0);
}

/* ---- micro-kernel ---- */

LMC_TARGET(AVX512) static INL void step_f32(__m512 acc[MR][3], const float *ap, const float *bp)
{
    __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16), b2 = _mm512_loadu_ps(bp + 32);
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        __m512 a = _mm512_set1_ps(ap[i]);
        acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
        acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
        acc[i][2] = _mm512_fmadd_ps(a, b2, acc[i][2]);
    }
}

LMC_TARGET(AVX512) static void kernel_f32(int kc, const void *ap_, const void *bp_, float *c, size_t ldc, int add_c,
                                          const float *bias)
{
    const float *ap = ap_, *bp = bp_;
    __m512 acc[MR][3];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
        acc[i][0] = acc[i][1] = acc[i][2] = _mm512_setzero_ps();
    int p = 0, body = add_c && kc > TAIL_STEPS ? kc - TAIL_STEPS : kc;
    if (add_c)
        PREFETCH_TILE(c, ldc, _MM_HINT_T1);
    for (; p < body; p++, ap += MR, bp += NR)
        step_f32(acc, ap, bp);
    if (add_c)
        PREFETCH_TILE(c, ldc, _MM_HINT_T0);
    for (; p < kc; p++, ap += MR, bp += NR)
        step_f32(acc, ap, bp);
    store_tile(acc, c, ldc, add_c, bias);
}

/* ---- GELU epilogue ---- */

LMC_TARGET(AVX512) void lmc_gemm_gelu_avx512(float *x, int n)
{
    for (int j = 0; j < n; j += 16) {
        __mmask16 m = lmc_mask16(n - j);
        _mm512_mask_storeu_ps(x + j, m, lmc_gelu512(_mm512_maskz_loadu_ps(m, x + j)));
    }
}

const lmc_gemm_impl lmc_gemm_avx512_f32 = {
    .name = "avx512",
    .mr = MR,
    .nr = NR,
    .kpack = 1,
    .mc = 256,
    .kc = 384,
    .nc = 4080,
    .pack_a = pack_a_f32,
    .pack_b = pack_b_f32,
    .kernel = kernel_f32,
    .gelu = lmc_gemm_gelu_avx512,
};

#endif
