/* util.c: aligned allocation, rng, clocks, strict number parsing. */
#define _GNU_SOURCE
#include "lmc/core.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

void *lmc_alloc(size_t bytes, const char *what)
{
    void *p = NULL;
    size_t n = (bytes + 63) & ~(size_t)63;
    if (n == 0)
        n = 64;
    if (posix_memalign(&p, 64, n) != 0) {
        lmc_err(LMC_ENOMEM, "out of memory allocating %zu bytes for %s", bytes, what);
        return NULL;
    }
    memset(p, 0, n);
    return p;
}

void lmc_free(void *p) { free(p); }

int lmc_reserve(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 1;
    size_t ncap = *cap ? *cap : 1024;
    while (ncap < need)
        ncap *= 2;
    void *np = realloc(*p, ncap * elem);
    if (!np)
        return 0;
    *p = np;
    *cap = ncap;
    return 1;
}

char *lmc_strdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        lmc_err(LMC_ENOMEM, "out of memory");
    return d;
}

uint64_t lmc_hash64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void lmc_rng_seed(lmc_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) {
        seed += 0x9e3779b97f4a7c15ULL;
        r->s[i] = lmc_hash64(seed);
    }
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t lmc_rng_u64(lmc_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

float lmc_rng_uniform(lmc_rng *r) { return (float)(lmc_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

float lmc_rng_normal(lmc_rng *r)
{
    /* Box-Muller in double for accuracy; one draw per call keeps state simple */
    double u1 = ((lmc_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (lmc_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

double lmc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double lmc_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

size_t lmc_peak_rss(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (size_t)ru.ru_maxrss * 1024;
}

lmc_status lmc_parse_int(const char *s, const char *what, long long lo, long long hi, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || errno)
        return lmc_err(LMC_EINVAL, "%s: '%s' is not an integer", what, s ? s : "(missing)");
    if (v < lo || v > hi)
        return lmc_err(LMC_ERANGE, "%s: %lld is out of range [%lld, %lld]", what, v, lo, hi);
    *out = v;
    return LMC_OK;
}

lmc_status lmc_parse_float(const char *s, const char *what, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || isnan(v))
        return lmc_err(LMC_EINVAL, "%s: '%s' is not a number", what, s ? s : "(missing)");
    if (v < lo || v > hi)
        return lmc_err(LMC_ERANGE, "%s: %g is out of range [%g, %g]", what, v, lo, hi);
    *out = v;
    return LMC_OK;
}

lmc_status lmc_parse_count(const char *s, const char *what, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || errno || isnan(v) || end == s)
        return lmc_err(LMC_EINVAL, "%s: '%s' is not a count", what, s ? s : "(missing)");
    double mul = 1;
    if (*end) {
        switch (*end) {
        case 'k': case 'K': mul = 1e3; break;
        case 'm': case 'M': mul = 1e6; break;
        case 'g': case 'G': case 'b': case 'B': mul = 1e9; break;
        case 't': case 'T': mul = 1e12; break;
        default: mul = 0;
        }
        if (mul == 0 || end[1])
            return lmc_err(LMC_EINVAL, "%s: '%s' is not a count (use e.g. 10B, 500M, 4k)", what, s);
    }
    v *= mul;
    if (v < 0 || !isfinite(v))
        return lmc_err(LMC_ERANGE, "%s: '%s' must be a non-negative count", what, s);
    *out = v;
    return LMC_OK;
}
