/* peak.c: the measured peak FLOP/s of this CPU (all backend threads), the
 * denominator of MFU: an FMA-only loop, fp32 (vfmadd) or bf16 (vdpbf16ps). */
#include "backend/cpu/cpu.h"
#include "backend/cpu/simd_math.h"

#include <omp.h>
#include <time.h>

#if defined(__x86_64__)

#define PEAK_ITERS 2000000

LMC_TARGET(AVX512) static double fma_f32_avx512(void)
{
    __m512 acc[12], x = _mm512_set1_ps(1e-7f), y = _mm512_set1_ps(0.999f);
    for (int i = 0; i < 12; i++)
        acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < PEAK_ITERS; it++)
        for (int i = 0; i < 12; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], y, x);
    float sink = 0;
    for (int i = 0; i < 12; i++)
        sink += _mm512_reduce_add_ps(acc[i]);
    __asm__ volatile("" : : "x"(sink));
    return 12.0 * PEAK_ITERS * 16 * 2;
}

LMC_TARGET(AVX512_BF16) static double dot_bf16_avx512(void)
{
    __m512 acc[12];
    __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380);
    for (int i = 0; i < 12; i++)
        acc[i] = _mm512_setzero_ps();
    for (long it = 0; it < PEAK_ITERS; it++)
        for (int i = 0; i < 12; i++)
            acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
    float sink = 0;
    for (int i = 0; i < 12; i++)
        sink += _mm512_reduce_add_ps(acc[i]);
    __asm__ volatile("" : : "x"(sink));
    return 12.0 * PEAK_ITERS * 32 * 2;
}

LMC_TARGET(AVX2) static double fma_f32_avx2(void)
{
    __m256 acc[12], x = _mm256_set1_ps(1e-7f), y = _mm256_set1_ps(0.999f);
    for (int i = 0; i < 12; i++)
        acc[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < PEAK_ITERS; it++)
        for (int i = 0; i < 12; i++)
            acc[i] = _mm256_fmadd_ps(acc[i], y, x);
    float buf[8], sink = 0;
    for (int i = 0; i < 12; i++) {
        _mm256_storeu_ps(buf, acc[i]);
        sink += buf[0];
    }
    __asm__ volatile("" : : "x"(sink));
    return 12.0 * PEAK_ITERS * 8 * 2;
}

#endif

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Each thread's rate over its own CPU time, summed: other processes on a
 * shared machine cannot make the chip look slower than it is. */
static double measure(int threads, double (*loop)(void))
{
    double rate = 0;
#pragma omp parallel num_threads(threads) reduction(+ : rate)
    {
        double t0 = thread_cpu(), flops = loop(), t = thread_cpu() - t0;
        rate += t > 0 ? flops / t : 0;
    }
    return rate;
}

double lmc_cpu_peak_flops(lmc_backend *be, lmc_dtype prec)
{
    lmc_cpu *c = cpu_of(be);
    int bf = prec == LMC_BF16;
    if (c->peak[bf] > 0)
        return c->peak[bf];
    double (*loop)(void) = NULL;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (bf && __builtin_cpu_supports("avx512bf16"))
        loop = dot_bf16_avx512;
    else if (__builtin_cpu_supports("avx512f"))
        loop = fma_f32_avx512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        loop = fma_f32_avx2;
#endif
    /* best of three short runs: noise only ever makes a run slower */
    double best = 0;
    for (int r = 0; loop && r < 3; r++) {
        double f = measure(be->threads, loop);
        if (f > best)
            best = f;
    }
    if (best <= 0)
        best = 2e9 * be->threads; /* portable C: about one scalar FMA per cycle */
    c->peak[bf] = best;
    return best;
}
