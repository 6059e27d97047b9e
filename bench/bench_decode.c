/* bench_decode.c: decode speed of the inference engine beside the memory
 * bandwidth limit measured in the same run.
 *
 * Decode of one stream reads every weight of the linear layers and the
 * output head once per token, so its ceiling is
 *     limit tokens/s = read bandwidth / bytes of weights per token.
 * The bandwidth is measured STREAM-style: a read (sum) of a buffer the
 * size of those weights, on the same threads, as 4 prefetched streams per
 * thread like the decode kernel, best of several passes.
 * Single-stream tokens/s for fp32, bf16 and int8 weights is printed beside
 * that limit as a ratio (KV-cache and embedding reads are left out of the
 * limit: they are under 2% of the bytes at these lengths).
 * Then aggregate tokens/s with 1, 4 and 16 concurrent streams (one decode
 * step shared by all), and the speedup over one stream.
 *
 * Machines are noisy (shared cores and memory): each rep measures the
 * bandwidth right before and after its decode runs; the best bandwidth and
 * the best decode rate over all reps are reported, so the ratio errs low.
 * --cpu-time times by the process's CPU time divided by the thread
 * count instead of the wall clock, for a machine so loaded that the bench
 * is descheduled (exact with --threads 1; with more threads, time spent
 * waiting at barriers for a descheduled thread still counts).
 *
 * Usage: bench_decode [--model d12] [--threads N] [--tokens 48] [--prompt 16]
 *                     [--reps 3] [--streams 1,4,16] [--quick] [--cpu-time]
 *        bench_decode --bandwidth MB [--threads N]   (the read bandwidth only)
 */
#include "backend/backend.h"
#include "lmc/infer.h"

#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int CPU_TIME = 0;

/* seconds: wall clock, or the process's CPU time per thread */
static double now(int threads)
{
    if (!CPU_TIME)
        return lmc_now();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (ts.tv_sec + ts.tv_nsec * 1e-9) / threads;
}

static int THREADS = 0, TOKENS = 48, PROMPT = 16, REPS = 3;
static const char *MODEL = "d12";

/* ---------- the bandwidth peer: a STREAM-style read ---------- */

/* A read of n floats as 4 interleaved streams with software prefetch 4 KB
 * ahead: the access pattern of the decode kernel (4 weight rows at a
 * time), so the peer gets the same memory-level parallelism; a single
 * sequential stream measures lower than what decode achieves. */
__attribute__((target("avx512f"))) static float read512(const float *p, size_t n)
{
    size_t q = n / 4 / 64 * 64;
    const float *s0 = p, *s1 = p + q, *s2 = p + 2 * q, *s3 = p + 3 * q;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < q; i += 16) {
        _mm_prefetch((const char *)(s0 + i) + 4096, _MM_HINT_T0);
        _mm_prefetch((const char *)(s1 + i) + 4096, _MM_HINT_T0);
        _mm_prefetch((const char *)(s2 + i) + 4096, _MM_HINT_T0);
        _mm_prefetch((const char *)(s3 + i) + 4096, _MM_HINT_T0);
        a0 = _mm512_add_ps(a0, _mm512_loadu_ps(s0 + i));
        a1 = _mm512_add_ps(a1, _mm512_loadu_ps(s1 + i));
        a2 = _mm512_add_ps(a2, _mm512_loadu_ps(s2 + i));
        a3 = _mm512_add_ps(a3, _mm512_loadu_ps(s3 + i));
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    for (size_t i = 4 * q; i < n; i++)
        s += p[i];
    return s;
}

static float read_c(const float *p, size_t n)
{
    float s = 0;
    for (size_t i = 0; i < n; i++)
        s += p[i];
    return s;
}

/* GB/s reading `bytes` of buf on nt threads, each a contiguous part */
static double bandwidth(const float *buf, size_t bytes, int nt)
{
    int avx = __builtin_cpu_supports("avx512f");
    size_t n = bytes / 4;
    double best = 0;
    volatile float sink = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = now(nt);
        float tot = 0;
#pragma omp parallel num_threads(nt) reduction(+ : tot)
        {
            int id = omp_get_thread_num(), cnt = omp_get_num_threads();
            size_t lo = n * id / cnt / 64 * 64, hi = id == cnt - 1 ? n : n * (id + 1) / cnt / 64 * 64;
            tot += avx ? read512(buf + lo, hi - lo) : read_c(buf + lo, hi - lo);
        }
        double dt = now(nt) - t0;
        sink += tot;
        if (bytes / dt / 1e9 > best)
            best = bytes / dt / 1e9;
    }
    (void)sink;
    return best;
}

/* ---------- decode ---------- */

/* Aggregate decode tokens/s of `streams` sequences decoded together
 * (prefill excluded), one run. */
static double decode_rate(lmc_engine *e, int streams, int vocab, int threads)
{
    int *tok = malloc((size_t)streams * sizeof(int)), *pos = malloc((size_t)streams * sizeof(int));
    float *logits = malloc((size_t)streams * vocab * sizeof(float));
    int prompt[512];
    double best = 0;
    {
        for (int s = 0; s < streams; s++) {
            for (int i = 0; i < PROMPT; i++)
                prompt[i] = (i * 131 + s * 17 + 7) % vocab;
            if (lmc_engine_prefill(e, s, prompt, PROMPT, logits) != LMC_OK) {
                fprintf(stderr, "prefill: %s\n", lmc_errmsg());
                exit(1);
            }
            tok[s] = 1 + s, pos[s] = PROMPT;
        }
        double t0 = now(threads);
        for (int t = 0; t < TOKENS; t++) {
            if (lmc_engine_decode(e, streams, tok, pos, logits) != LMC_OK) {
                fprintf(stderr, "decode: %s\n", lmc_errmsg());
                exit(1);
            }
            for (int s = 0; s < streams; s++) { /* greedy, as generation would */
                const float *l = logits + (size_t)s * vocab;
                int b = 0;
                for (int v = 1; v < vocab; v++)
                    b = l[v] > l[b] ? v : b;
                tok[s] = b;
                pos[s]++;
            }
        }
        double rate = (double)streams * TOKENS / (now(threads) - t0);
        best = rate > best ? rate : best;
    }
    free(tok), free(pos), free(logits);
    return best;
}

/* --bandwidth MB: only the read bandwidth over a buffer of that size, best
 * of 3 passes (a peer's ceiling: bench_gguf.mjs divides it by the bytes
 * one token reads) */
static int bandwidth_only(double mb)
{
    size_t bytes = (size_t)(mb * 1e6) / 256 * 256;
    float *buf = bytes ? lmc_alloc(bytes + 64, "bandwidth buffer") : NULL;
    if (!buf) {
        fprintf(stderr, "--bandwidth %g: need a size in MB that fits in memory\n", mb);
        return 2;
    }
    for (size_t i = 0; i < bytes / 4; i++)
        buf[i] = (float)(i & 7);
    int nt = THREADS > 0 ? THREADS : omp_get_max_threads();
    printf("bandwidth %.2f GB/s (%.1f MB, %d threads)\n", bandwidth(buf, bytes, nt), bytes / 1e6, nt);
    lmc_free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    int quick = 0, streams[8] = {1, 4, 16}, nstreams = 3;
    double bw_mb = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--cpu-time"))
            CPU_TIME = 1;
        else if (!strcmp(argv[i], "--model") && i + 1 < argc)
            MODEL = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            THREADS = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc)
            TOKENS = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--prompt") && i + 1 < argc)
            PROMPT = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            REPS = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--bandwidth") && i + 1 < argc)
            bw_mb = atof(argv[++i]);
        else if (!strcmp(argv[i], "--streams") && i + 1 < argc) {
            nstreams = 0;
            for (char *s = argv[++i]; *s && nstreams < 8; s++) {
                streams[nstreams++] = (int)strtol(s, &s, 10);
                if (!*s)
                    break;
            }
        } else {
            fprintf(stderr, "usage: bench_decode [--model d12] [--threads N] [--tokens 48] [--prompt 16] "
                            "[--reps 3] [--streams 1,4,16] [--quick] [--cpu-time]\n");
            return 2;
        }
    }
    if (bw_mb > 0)
        return bandwidth_only(bw_mb);
    if (quick)
        TOKENS = 16, REPS = 2;
    if (PROMPT < 1 || PROMPT > 500 || TOKENS < 1) {
        fprintf(stderr, "--prompt must be in [1, 500] and --tokens >= 1\n");
        return 2;
    }
    lmc_backend *be;
    if (lmc_cpu_backend_open(THREADS, "auto", &be) != LMC_OK) {
        fprintf(stderr, "%s\n", lmc_errmsg());
        return 1;
    }
    lmc_model_config cfg;
    lmc_layout lay;
    if (lmc_config_preset(MODEL, &cfg) != LMC_OK || lmc_layout_build(&cfg, &lay) != LMC_OK) {
        fprintf(stderr, "%s\n", lmc_errmsg());
        return 1;
    }
    float *params = lmc_alloc(lay.total * sizeof(float), "params");
    lmc_weights_init(&cfg, &lay, params, 1);
    int maxs = 1;
    for (int i = 0; i < nstreams; i++)
        maxs = streams[i] > maxs ? streams[i] : maxs;
    int ctx = PROMPT + TOKENS + 1 < cfg.max_seq ? PROMPT + TOKENS + 1 : cfg.max_seq;
    printf("decode benchmark: %s (%.0fM parameters), %d threads, prompt %d, %d tokens per stream, best of %d, "
           "timed by %s\n", MODEL, lmc_config_num_params(&cfg) / 1e6, be->threads, PROMPT, TOKENS, REPS,
           CPU_TIME ? "CPU time per thread" : "the wall clock");

    static const lmc_quant qs[3] = {LMC_QUANT_NONE, LMC_QUANT_BF16, LMC_QUANT_INT8};
    lmc_engine *eng[3] = {0};
    double wbytes[3], bw[3], single[3], agg[3][8];
    size_t maxbytes = 0;
    for (int q = 0; q < 3; q++) {
        lmc_engine_opts o = {.slots = maxs, .ctx = ctx, .quant = qs[q]};
        if (lmc_engine_open(&eng[q], be, &cfg, params, &o) != LMC_OK) {
            fprintf(stderr, "engine: %s\n", lmc_errmsg());
            return 1;
        }
        wbytes[q] = lmc_engine_weight_bytes(eng[q]);
        maxbytes = (size_t)wbytes[q] > maxbytes ? (size_t)wbytes[q] : maxbytes;
    }
    float *buf = lmc_alloc(maxbytes + 64, "bandwidth buffer");
    for (size_t i = 0; i < maxbytes / 4; i++)
        buf[i] = (float)(i & 7);
    for (int q = 0; q < 3; q++) {
        bw[q] = 0;
        for (int i = 0; i < nstreams; i++)
            agg[q][i] = 0;
        for (int r = 0; r < REPS; r++) {
            double b = bandwidth(buf, (size_t)wbytes[q], be->threads);
            bw[q] = b > bw[q] ? b : bw[q];
            for (int i = 0; i < nstreams; i++) {
                double a = decode_rate(eng[q], streams[i], cfg.vocab, be->threads);
                agg[q][i] = a > agg[q][i] ? a : agg[q][i];
            }
            b = bandwidth(buf, (size_t)wbytes[q], be->threads);
            bw[q] = b > bw[q] ? b : bw[q];
        }
        single[q] = agg[q][0];
    }
    printf("\nsingle stream (%d stream%s first in --streams):\n", streams[0], streams[0] == 1 ? "" : "s");
    printf("  %-6s %12s %14s %14s %14s %8s\n", "weights", "MB/token", "bandwidth", "limit tok/s", "lmc tok/s",
           "ratio");
    for (int q = 0; q < 3; q++) {
        double limit = bw[q] * 1e9 / wbytes[q] * streams[0];
        printf("  %-6s %12.1f %11.1f GB/s %14.1f %14.1f %7.0f%%\n", lmc_quant_name(qs[q]), wbytes[q] / 1e6, bw[q],
               limit, single[q], 100 * single[q] / limit);
    }
    printf("\naggregate decode tokens/s by concurrent streams (speedup over %d stream%s):\n", streams[0],
           streams[0] == 1 ? "" : "s");
    printf("  %-6s", "weights");
    for (int i = 0; i < nstreams; i++)
        printf(" %10d streams", streams[i]);
    printf("\n");
    for (int q = 0; q < 3; q++) {
        printf("  %-6s", lmc_quant_name(qs[q]));
        for (int i = 0; i < nstreams; i++)
            printf(" %10.1f (%4.1fx)", agg[q][i], agg[q][i] / agg[q][0]);
        printf("\n");
    }
    for (int q = 0; q < 3; q++)
        lmc_engine_close(eng[q]);
    lmc_free(buf);
    lmc_free(params);
    lmc_layout_free(&lay);
    be->ops->destroy(be);
    return 0;
}
