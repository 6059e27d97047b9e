/* activation.c: GELU (tanh approximation) and SwiGLU, forward and backward. */
#include "backend/cpu/cpu.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/simd_math.h"

#include <string.h>

#define ELEM_BLOCK 4096 /* elements per parallel block */

#if defined(__x86_64__)
/* GELU's backward over [i0, i1): dst = gelu'(x) dout */
LMC_TARGET(AVX512) static void gelu_avx512(float *dst, const float *inp, const float *dout, size_t i0, size_t i1)
{
    for (size_t i = i0; i < i1; i += 16) {
        __mmask16 m = lmc_mask16((int)(i1 - i < 16 ? i1 - i : 16));
        __m512 g = lmc_gelu_grad512(_mm512_maskz_loadu_ps(m, inp + i));
        _mm512_mask_storeu_ps(dst + i, m, _mm512_mul_ps(g, _mm512_maskz_loadu_ps(m, dout + i)));
    }
}

/* one row of SwiGLU: forward (dout NULL) or backward */
LMC_TARGET(AVX512) static void swiglu_avx512(float *dst, const float *g, const float *dout, int H)
{
    const float *u = g + H;
    for (int i = 0; i < H; i += 16) {
        __mmask16 m = lmc_mask16(H - i);
        __m512 vg = _mm512_maskz_loadu_ps(m, g + i), vu = _mm512_maskz_loadu_ps(m, u + i), sg = lmc_sigmoid512(vg);
        __m512 silu = _mm512_mul_ps(vg, sg);
        if (!dout) {
            _mm512_mask_storeu_ps(dst + i, m, _mm512_mul_ps(silu, vu));
            continue;
        }
        __m512 d = _mm512_maskz_loadu_ps(m, dout + i), one = _mm512_set1_ps(1.0f);
        __m512 dsilu = _mm512_mul_ps(sg, _mm512_fmadd_ps(vg, _mm512_sub_ps(one, sg), one));
        _mm512_mask_storeu_ps(dst + H + i, m, _mm512_mul_ps(d, silu));
        _mm512_mask_storeu_ps(dst + i, m, _mm512_mul_ps(_mm512_mul_ps(d, vu), dsilu));
    }
}

/* runs the AVX-512 GELU over n elements in blocks on all threads */
static void gelu_blocks(lmc_backend *be, float *dst, const float *inp, const float *dout, size_t n)
{
    size_t nb = (n + ELEM_BLOCK - 1) / ELEM_BLOCK;
#pragma omp parallel for num_threads(lmc_cpu_threads_for(be, n)) schedule(static)
    for (size_t b = 0; b < nb; b++)
        gelu_avx512(dst, inp, dout, b * ELEM_BLOCK, b * ELEM_BLOCK + ELEM_BLOCK < n ? b * ELEM_BLOCK + ELEM_BLOCK : n);
}
#define USE_AVX512(be) (cpu_of(be)->isa == LMC_ISA_AVX512)
#else
#define USE_AVX512(be) 0
#endif

/* The matmul's fused GELU epilogue kernel of this instruction set, over
 * blocks on all threads: GELU alone gives the same bits as the fused form,
 * so a recomputed activation (--recompute) equals the one first computed. */
void lmc_cpu_gelu_forward(lmc_backend *be, float *out, const float *inp, size_t n)
{
    const lmc_gemm_impl *im = lmc_gemm_pick(cpu_of(be)->isa, LMC_F32, 1);
    size_t nb = (n + ELEM_BLOCK - 1) / ELEM_BLOCK;
#pragma omp parallel for num_threads(lmc_cpu_threads_for(be, n)) schedule(static)
    for (size_t b = 0; b < nb; b++) {
        size_t i0 = b * ELEM_BLOCK, k = n - i0 < ELEM_BLOCK ? n - i0 : ELEM_BLOCK;
        if (out != inp)
            memcpy(out + i0, inp + i0, k * sizeof(float));
        im->gelu(out + i0, (int)k);
    }
}

void lmc_cpu_gelu_backward(lmc_backend *be, float *dinp, const float *inp, const float *dout, size_t n)
{
#if defined(__x86_64__)
    if (USE_AVX512(be)) {
        gelu_blocks(be, dinp, inp, dout, n);
        return;
    }
#endif
#pragma omp parallel for num_threads(be->threads) schedule(static)
    for (size_t i = 0; i < n; i++)
        dinp[i] = lmc_gelu_grad(inp[i]) * dout[i];
}

// out (N,H) = silu(gate) * up, inp (N,2H) = [gate | up]
void lmc_cpu_swiglu_forward(lmc_backend *be, float *out, const float *inp, int N, int H)
{
#if defined(__x86_64__)
    if (USE_AVX512(be)) {
#pragma omp parallel for num_threads(lmc_cpu_threads_for(be, (size_t)N * H)) schedule(static)
        for (int r = 0; r < N; r++)
            swiglu_avx512(out + (size_t)r * H, inp + (size_t)r * 2 * H, NULL, H);
        return;
    }
#endif
#pragma omp parallel for num_threads(lmc_cpu_threads_for(be, (size_t)N * H)) schedule(static)
    for (int r = 0; r < N; r++) {
        const float *g = inp + (size_t)r * 2 * H, *u = g + H;
        float *o = out + (size_t)r * H;
        for (int i = 0; i < H; i++) {
            float sg = lmc_sigmoid(g[i]);
            o[i] = g[i] * sg * u[i];
        }
    }
}

void lmc_cpu_swiglu_backward(lmc_backend *be, float *dinp, const float *inp, const float *dout, int N, int H)
{
#if defined(__x86_64__)
    if (USE_AVX512(be)) {
#pragma omp parallel for num_threads(be->threads) schedule(static)
        for (int r = 0; r < N; r++)
            swiglu_avx512(dinp + (size_t)r * 2 * H, inp + (size_t)r * 2 * H, dout + (size_t)r * H, H);
        return;
    }
#endif
#pragma omp parallel for num_threads(be->threads) schedule(static)
    for (int r = 0; r < N; r++) {
        const float *g = inp + (size_t)r * 2 * H, *u = g + H, *d = dout + (size_t)r * H;
        float *dg = dinp + (size_t)r * 2 * H, *du = dg + H;
        for (int i = 0; i < H; i++) {
            float sg = lmc_sigmoid(g[i]);
            float silu = g[i] * sg;
            du[i] = d[i] * silu;
            dg[i] = d[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
        }
    }
}
