/* simd_math.h: the CPU backend's one home for vector math: the target
 * attribute of each instruction-set path (LMC_TARGET), e^x, tanh, sigmoid
 * and GELU (value and derivative) for AVX-512 (16 lanes), AVX2 (8 lanes)
 * and scalar C. The GEMM epilogues, the activations, attention and the
 * cross-entropy take their math from here (the CUDA and Ascend backends
 * have their own device code, tested against these by the conformance suite).
 *
 * GELU is GPT-2's tanh form (gelu_new, PyTorch's approximate='tanh'):
 *   gelu(x) = 0.5 x (1 + tanh u),  u = K (x + C x^3),  K = sqrt(2/pi).
 * Each path keeps the exact float operations it trained with (a d6 run gives
 * the same bits as before this header existed), so the paths round
 * differently: the vector forms write 0.5 (1 + tanh u) as sigmoid(2u) =
 * 1 / (1 + e^{-2u}) and the vector derivative tanh u as 1 - 2 / (e^{2u} + 1),
 * the scalar forms call tanhf. tests/unit/test_simd_math.c bounds every form
 * against the others and tests/oracle/test_simd_math.py against PyTorch.
 */
#ifndef LMC_CPU_SIMD_MATH_H
#define LMC_CPU_SIMD_MATH_H

#include <math.h>

#define LMC_GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define LMC_GELU_C 0.044715f

/* scalar sigmoid (SwiGLU's), GELU, and GELU's derivative d gelu / dx */
static inline float lmc_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

static inline float lmc_gelu(float x)
{
    return 0.5f * x * (1.0f + tanhf(LMC_GELU_K * (x + LMC_GELU_C * x * x * x)));
}

static inline float lmc_gelu_grad(float x)
{
    float th = tanhf(LMC_GELU_K * (x + LMC_GELU_C * x * x * x));
    float sech2 = 1.0f - th * th;
    return 0.5f * (1.0f + th) + 0.5f * x * sech2 * LMC_GELU_K * (1.0f + 3.0f * LMC_GELU_C * x * x);
}

#if defined(__x86_64__)
#include <immintrin.h>

/* The instruction sets of each path, as the CPU check in cpu.c requires
 * them; LMC_TARGET(AVX512) void f(...) compiles f for one of them. */
#define LMC_FEATURES_AVX512 "avx512f,avx512bw,avx512vl,avx512dq"
#define LMC_FEATURES_AVX512_BF16 LMC_FEATURES_AVX512 ",avx512bf16"
#define LMC_FEATURES_AVX2 "avx2,fma"
#define LMC_TARGET(isa) __attribute__((target(LMC_FEATURES_##isa)))

/* Cephes' expf, one vector width W (512, 256): n = round(x log2 e),
 * r = x - n ln2 with ln2 in two parts (r exact), then p, the degree-5
 * polynomial of (e^r - 1 - r) / r^2 from its top coefficient down. */
static const float lmc_exp_poly[5] = {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f,
                                      5.0000001201e-1f};
#define LMC_EXP_CORE(W, round, x, n, r, p)                                                                       \
    __m##W n = round(_mm##W##_mul_ps(x, _mm##W##_set1_ps(1.44269504088896341f)),                               \
                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);                                           \
    __m##W r = _mm##W##_fnmadd_ps(n, _mm##W##_set1_ps(0.693359375f), x);                                       \
    r = _mm##W##_fnmadd_ps(n, _mm##W##_set1_ps(-2.12194440e-4f), r);                                           \
    __m##W p = _mm##W##_set1_ps(1.9875691500e-4f);                                                             \
    for (int i_ = 0; i_ < 5; i_++)                                                                             \
        p = _mm##W##_fmadd_ps(p, r, _mm##W##_set1_ps(lmc_exp_poly[i_]))

/* e^x, 16 lanes, ~1 ulp; inputs below -87 give e^-87, not 0 (harmless on
 * scores minus their maximum, and in GELU's 1 / (1 + e^{-2u})). */
LMC_TARGET(AVX512) static inline __m512 lmc_exp512(__m512 x)
{
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.0f)), _mm512_set1_ps(-87.0f));
    LMC_EXP_CORE(512, _mm512_roundscale_ps, x, n, r, p);
    return _mm512_scalef_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f))), n);
}

/* e^x, 8 lanes; x clamped to [-87, 87], 2^n built in the exponent bits. It
 * rounds its last step differently from lmc_exp512 (the AVX2 path's bits). */
LMC_TARGET(AVX2) static inline __m256 lmc_exp256(__m256 x)
{
    x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(87.0f)), _mm256_set1_ps(-87.0f));
    LMC_EXP_CORE(256, _mm256_round_ps, x, n, r, p);
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* tanh u = 1 - 2 / (e^{2u} + 1): exact at both ends, ~1e-7 absolute between */
LMC_TARGET(AVX512) static inline __m512 lmc_tanh512(__m512 u)
{
    __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(lmc_exp512(_mm512_add_ps(u, u)), one)));
}

LMC_TARGET(AVX512) static inline __m512 lmc_sigmoid512(__m512 x)
{
    __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, lmc_exp512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

/* GELU as x sigmoid(2u) = x / (1 + e^{-2u}), u = K (C (x x) x + x) */
LMC_TARGET(AVX512) static inline __m512 lmc_gelu512(__m512 x)
{
    __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
    __m512 u = _mm512_mul_ps(_mm512_set1_ps(LMC_GELU_K), _mm512_fmadd_ps(_mm512_set1_ps(LMC_GELU_C), x3, x));
    return _mm512_div_ps(x, _mm512_add_ps(lmc_exp512(_mm512_mul_ps(u, _mm512_set1_ps(-2.0f))), _mm512_set1_ps(1.0f)));
}

LMC_TARGET(AVX2) static inline __m256 lmc_gelu256(__m256 x)
{
    __m256 u = _mm256_mul_ps(_mm256_set1_ps(LMC_GELU_K),
                             _mm256_fmadd_ps(_mm256_set1_ps(LMC_GELU_C), _mm256_mul_ps(_mm256_mul_ps(x, x), x), x));
    return _mm256_div_ps(x, _mm256_add_ps(lmc_exp256(_mm256_mul_ps(u, _mm256_set1_ps(-2.0f))), _mm256_set1_ps(1.0f)));
}

/* d gelu / dx = 0.5 (1 + tanh u) + 0.5 x sech^2(u) K (1 + 3 C x^2), with
 * u = K ((C x^2) x + x) and tanh as lmc_tanh512 (the AVX2 and C paths use
 * lmc_gelu_grad). */
LMC_TARGET(AVX512) static inline __m512 lmc_gelu_grad512(__m512 x)
{
    __m512 k = _mm512_set1_ps(LMC_GELU_K), half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 th = lmc_tanh512(_mm512_mul_ps(k, _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(LMC_GELU_C), x2), x, x)));
    __m512 sech2 = _mm512_fnmadd_ps(th, th, one);
    return _mm512_fmadd_ps(_mm512_mul_ps(_mm512_mul_ps(half, x), sech2),
                           _mm512_mul_ps(k, _mm512_fmadd_ps(_mm512_set1_ps(3.0f * LMC_GELU_C), x2, one)),
                           _mm512_mul_ps(half, _mm512_add_ps(one, th)));
}

/* mask of the first n lanes (none for n <= 0, all 16 for n >= 16) */
static inline __mmask16 lmc_mask16(int n) { return (__mmask16)(n >= 16 ? 0xffffu : n <= 0 ? 0u : (1u << n) - 1u); }

#endif
#endif
