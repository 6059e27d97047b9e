/* vecmath.h: vector math shared by the CPU kernels' AVX-512 paths. */
#ifndef LMC_CPU_VECMATH_H
#define LMC_CPU_VECMATH_H

#if defined(__x86_64__)
#include <immintrin.h>

#define LMC_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

/* e^x, 16 lanes, ~1 ulp (Cephes' expf polynomial after reducing by n ln2
 * with ln2 split in two parts); inputs below -87 give e^-87, not 0: callers
 * use it on scores minus their maximum, where that is harmless. */
LMC_AVX512 static inline __m512 lmc_exp512(__m512 x)
{
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.0f)), _mm512_set1_ps(-87.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* mask of the first n lanes (none for n <= 0, all 16 for n >= 16) */
static inline __mmask16 lmc_mask16(int n) { return (__mmask16)(n >= 16 ? 0xffffu : n <= 0 ? 0u : (1u << n) - 1u); }

#endif
#endif
