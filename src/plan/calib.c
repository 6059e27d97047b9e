/* calib.c: the model against measurements. A training log (JSON Lines,
 * one object per step with "ms", from `lmc train --log` here or from a GPU
 * run elsewhere) gives a measured step time; the cost model gives a
 * predicted one for the same setup; their ratio is the model's error. */
#include "internal.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    if (n <= 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct {
    double *ms, *tps, *mfu;
    double *share, *comm; /* each step's share of its cores and comm_ms (-1: not known) */
    int n, ntps, nmfu, cap;
    double *bub; /* stages values per step line */
    int stages, nbub, bubcap;
    lmc_plan_log_stats last; /* the last step line's rss_mb and mb */
} samples;

static lmc_status grow(samples *s)
{
    if (s->n < s->cap)
        return LMC_OK;
    int cap = s->cap ? s->cap * 2 : 64;
    double *a = realloc(s->ms, (size_t)cap * sizeof *a), *b = a ? realloc(s->tps, (size_t)cap * sizeof *b) : NULL;
    if (a)
        s->ms = a;
    if (b)
        s->tps = b;
    double *c = b ? realloc(s->mfu, (size_t)cap * sizeof *c) : NULL;
    if (c)
        s->mfu = c;
    double *d = c ? realloc(s->share, (size_t)cap * sizeof *d) : NULL;
    if (d)
        s->share = d;
    double *e = d ? realloc(s->comm, (size_t)cap * sizeof *e) : NULL;
    if (!e)
        return lmc_err(LMC_ENOMEM, "training log: out of memory");
    s->comm = e;
    s->cap = cap;
    return LMC_OK;
}

/* An array field of numbers, at most max of them into v; -1 if absent. */
static lmc_status num_array(const lmc_json *j, const char *key, const char *w, double *v, int max, int *n)
{
    const lmc_json *a = lmc_json_get(j, key);
    *n = -1;
    if (!a)
        return LMC_OK;
    if (a->type != LMC_JSON_ARR || a->n > max)
        return lmc_err(LMC_EFORMAT, "%s: field '%s' must be an array of at most %d numbers", w, key, max);
    int i = 0;
    for (const lmc_json *e = a->child; e; e = e->next, i++) {
        if (e->type != LMC_JSON_NUM || !isfinite(e->num) || e->num < 0)
            return lmc_err(LMC_EFORMAT, "%s: %s[%d] must be a number >= 0", w, key, i);
        v[i] = e->num;
    }
    *n = i;
    return LMC_OK;
}

/* The per-rank and per-stage arrays lmc train logs: peak RSS of each
 * data-parallel rank, micro-batches of each, each stage's bubble. */
static lmc_status parse_arrays(const lmc_json *j, const char *w, samples *s)
{
    double v[4096], b[LMC_PLAN_LOG_STAGES];
    int n;
    LMC_TRY(num_array(j, "rss_mb", w, v, 4096, &n));
    if (n > 0) {
        s->last.rss_ranks = n;
        s->last.rss_max_mb = 0, s->last.rss_min_mb = 1e300;
        for (int i = 0; i < n; i++) {
            s->last.rss_max_mb = fmax(s->last.rss_max_mb, v[i]);
            s->last.rss_min_mb = fmin(s->last.rss_min_mb, v[i]);
        }
    }
    LMC_TRY(num_array(j, "mb", w, v, 4096, &n));
    if (n > 0 && v[0] > INT_MAX)
        return lmc_err(LMC_EFORMAT, "%s: mb[0] = %g is out of range [0, %d]", w, v[0], INT_MAX);
    if (n > 0)
        s->last.dp_mb = (int)v[0];
    LMC_TRY(num_array(j, "pp_bubble", w, b, LMC_PLAN_LOG_STAGES, &n));
    if (n < 0)
        return LMC_OK;
    if (s->nbub > 0 && n != s->stages)
        return lmc_err(LMC_EFORMAT, "%s: pp_bubble has %d stages, earlier lines %d", w, n, s->stages);
    if (n == 0) /* nothing to keep (and maybe no buffer yet) */
        return LMC_OK;
    if (s->nbub + n > s->bubcap) {
        int cap = s->bubcap ? s->bubcap * 2 : 256;
        cap = cap > s->nbub + n ? cap : s->nbub + n;
        double *nb = realloc(s->bub, (size_t)cap * sizeof *nb);
        if (!nb)
            return lmc_err(LMC_ENOMEM, "training log: out of memory");
        s->bub = nb, s->bubcap = cap;
    }
    s->stages = n;
    memcpy(s->bub + s->nbub, b, (size_t)n * sizeof *b);
    s->nbub += n;
    return LMC_OK;
}

/* {"run": {...}}: the layout of the run (lmc_plan_log_run). */
static lmc_status parse_run(const lmc_json *r, const char *w, lmc_plan_log_run *run)
{
    static const char *const keys[] = {"dp",    "tp",         "pp",  "vpp",    "ep",
                                       "zero",  "batch", "grad_accum", "seq", "threads"};
    int *dst[] = {&run->dp,   &run->tp,    &run->pp,         &run->vpp, &run->ep,
                  &run->zero, &run->batch, &run->grad_accum, &run->seq, &run->threads};
    if (r->type != LMC_JSON_OBJ)
        return lmc_err(LMC_EFORMAT, "%s: field 'run' must be an object", w);
    for (int i = 0; i < 10; i++) {
        long long v = 0;
        LMC_TRY(lmc_json_get_int(r, keys[i], w, &v));
        if (v < 0 || v > 1 << 30)
            return lmc_err(LMC_EFORMAT, "%s: run.%s = %lld is out of range", w, keys[i], v);
        *dst[i] = (int)v;
    }
    const char *rc = "", *prec = "", *dev = "";
    LMC_TRY(lmc_json_get_str(r, "device", w, &dev));
    LMC_TRY(lmc_json_get_num(r, "params", w, &run->params));
    snprintf(run->device, sizeof run->device, "%s", dev ? dev : "");
    LMC_TRY(lmc_json_get_bool(r, "sp", w, &run->sp));
    LMC_TRY(lmc_json_get_str(r, "recompute", w, &rc));
    LMC_TRY(lmc_json_get_str(r, "precision", w, &prec));
    snprintf(run->recompute, sizeof run->recompute, "%s", rc);
    snprintf(run->precision, sizeof run->precision, "%s", prec);
    run->found = 1;
    return LMC_OK;
}

/* The step's share of its cores: the least over the ranks of cpu_ms /
 * ((ms - the rank's time blocked on communication) x threads), for lmc's
 * cpu backend (whose work is the CPU's): a rank waiting for a collective
 * does not need its cores (rank_comm_ms of each rank, else comm_ms); -1
 * when the line or the run does not say. */
static lmc_status step_share(const lmc_json *j, const char *w, double ms, double comm, const lmc_plan_log_run *run,
                             double *share)
{
    double v[4096], c[4096];
    int n, nc;
    *share = -1;
    LMC_TRY(num_array(j, "cpu_ms", w, v, 4096, &n));
    LMC_TRY(num_array(j, "rank_comm_ms", w, c, 4096, &nc));
    if (n <= 0 || !run->found || run->threads <= 0 || strcmp(run->device, "cpu"))
        return LMC_OK;
    double least = 1e3;
    for (int i = 0; i < n; i++) {
        double wait = nc == n ? c[i] : comm > 0 ? comm : 0, busy = ms - wait > 1e-3 * ms ? ms - wait : 1e-3 * ms;
        least = fmin(least, v[i] / (busy * run->threads)); /* at most 1e3: finite whatever the figures */
    }
    *share = least;
    return LMC_OK;
}

/* comm_ms: rank 0's time blocked on communication in the step (-1: absent). */
static lmc_status step_comm(const lmc_json *j, const char *w, double *comm)
{
    const lmc_json *c = lmc_json_get(j, "comm_ms");
    *comm = -1;
    if (!c)
        return LMC_OK;
    if (c->type != LMC_JSON_NUM || !(c->num >= 0 && c->num <= 1e12))
        return lmc_err(LMC_EFORMAT, "%s: field 'comm_ms' must be a number of milliseconds in [0, 1e12]", w);
    *comm = c->num;
    return LMC_OK;
}

/* One line: objects without "ms" (evaluations, headers) are skipped. */
static lmc_status parse_line(const char *line, size_t len, const char *what, int lineno, samples *s)
{
    char w[512];
    snprintf(w, sizeof w, "%s:%d", what, lineno);
    lmc_json *j = NULL;
    LMC_TRY(lmc_json_parse(line, len, w, &j));
    lmc_status st = LMC_OK;
    if (j->type != LMC_JSON_OBJ)
        st = lmc_err(LMC_EFORMAT, "%s: expected one JSON object per line", w);
    lmc_json *ms = st ? NULL : lmc_json_get(j, "ms");
    lmc_json *run = st ? NULL : lmc_json_get(j, "run");
    if (run && !s->last.run.found)
        st = parse_run(run, w, &s->last.run);
    if (ms) {
        double tps = -1, mfu = -1;
        long long step = 0;
        st = lmc_json_get_int(j, "step", w, &step);
        if (!st && (ms->type != LMC_JSON_NUM || !(ms->num > 0 && ms->num <= 1e12))) /* 1e12 ms: 31 years */
            st = lmc_err(LMC_EFORMAT, "%s: field 'ms' must be a positive number of milliseconds, at most 1e12", w);
        if (!st)
            st = lmc_json_get_num(j, "tokens_per_s", w, &tps);
        if (!st)
            st = lmc_json_get_num(j, "mfu", w, &mfu);
        if (!st)
            st = grow(s);
        if (!st)
            st = parse_arrays(j, w, s);
        if (!st)
            st = step_comm(j, w, &s->comm[s->n]);
        if (!st)
            st = step_share(j, w, ms->num, s->comm[s->n], &s->last.run, &s->share[s->n]);
        if (!st) {
            s->ms[s->n++] = ms->num;
            if (tps >= 0)
                s->tps[s->ntps++] = tps;
            if (mfu >= 0)
                s->mfu[s->nmfu++] = mfu;
        }
    }
    lmc_json_free(j);
    return st;
}

/* Each stage's median bubble over the step lines after warm-up (lines
 * without pp_bubble do not count). */
static void bubble_medians(samples *s, int drop, lmc_plan_log_stats *st)
{
    int lines = s->stages ? s->nbub / s->stages : 0, first = drop < lines ? drop : lines - 1;
    st->stages = lines > 0 ? s->stages : 0;
    for (int k = 0; k < st->stages; k++) {
        double v[4096];
        int n = 0;
        for (int i = first; i < lines && n < 4096; i++)
            v[n++] = s->bub[i * s->stages + k];
        st->bubble[k] = median(v, n);
    }
}

/* The steps after warm-up that got their cores (all when share is NULL
 * or says nothing): their indices into idx, and how many. */
static int kept_steps(const double *share, int n, int drop, int *idx)
{
    int k = 0;
    for (int i = drop; i < n; i++)
        if (!share || share[i] < 0 || share[i] >= LMC_PLAN_CORES_MIN)
            idx[k++] = i;
    return k;
}

/* The median of v over the k indices (scratch: k doubles). */
static double median_at(const double *v, const int *idx, int k, double *scratch)
{
    for (int i = 0; i < k; i++)
        scratch[i] = v[idx[i]];
    return median(scratch, k);
}

/* Each step's share after warm-up, when every one of them has one: 1 and
 * their median, else 0. */
static int judge(const double *share, int n, int drop, double *scratch, double *med)
{
    int j = 0;
    for (int i = drop; share && i < n; i++)
        if (share[i] >= 0)
            scratch[j++] = share[i];
    *med = j == n - drop ? median(scratch, j) : 0;
    return j == n - drop;
}

static void figures(const double *ms, const double *comm, const int *idx, int k, double *tmp, lmc_plan_log_stats *st)
{
    double sum = 0, mn = 1e300;
    int has_comm = comm != NULL;
    for (int i = 0; i < k; i++) {
        sum += ms[idx[i]];
        mn = fmin(mn, ms[idx[i]]);
        has_comm &= comm && comm[idx[i]] >= 0;
    }
    st->mean_ms = sum / k;
    st->min_ms = mn;
    st->median_ms = median_at(ms, idx, k, tmp);
    st->comm_ms = has_comm ? median_at(comm, idx, k, tmp) : -1;
}

int lmc_plan_step_times(const double *ms, const double *share, const double *comm, int n, int skip,
                        lmc_plan_log_stats *st)
{
    st->steps = n;
    int drop = skip < n ? (skip > 0 ? skip : 0) : n - 1; /* keep at least one */
    st->used = n - drop;
    int *idx = malloc((size_t)n * sizeof *idx);
    double *tmp = malloc((size_t)n * sizeof *tmp);
    if (!idx || !tmp) { /* no memory for a scratch copy: the last step stands for them all */
        free(idx), free(tmp);
        st->kept = 1, st->comm_ms = -1, st->median_ms = st->mean_ms = st->min_ms = ms[n - 1];
        return drop;
    }
    st->judged = judge(share, n, drop, tmp, &st->share_median);
    st->kept = kept_steps(st->judged ? share : NULL, n, drop, idx);
    int k = st->kept ? st->kept : kept_steps(NULL, n, drop, idx); /* none got its cores: all of them */
    figures(ms, comm, idx, k, tmp, st);
    free(idx);
    free(tmp);
    return drop;
}

lmc_status lmc_plan_log_parse(const char *text, size_t n, const char *what, int skip, lmc_plan_log_stats *st)
{
    memset(st, 0, sizeof *st);
    samples s = {0};
    lmc_status rc = LMC_OK;
    int lineno = 0;
    for (size_t i = 0; i < n && !rc;) {
        size_t j = i;
        while (j < n && text[j] != '\n')
            j++;
        lineno++;
        size_t k = i;
        while (k < j && (text[k] == ' ' || text[k] == '\t' || text[k] == '\r'))
            k++;
        if (k < j)
            rc = parse_line(text + i, j - i, what, lineno, &s);
        i = j + 1;
    }
    if (!rc && s.n == 0)
        rc = lmc_err(LMC_EFORMAT, "%s: no step lines (objects with \"step\" and \"ms\")", what);
    if (!rc) {
        int drop = lmc_plan_step_times(s.ms, s.share, s.comm, s.n, skip, st);
        int dt = drop < s.ntps ? drop : 0, dm = drop < s.nmfu ? drop : 0;
        st->tokens_per_s = median(s.tps + dt, s.ntps - dt);
        st->mfu = median(s.mfu + dm, s.nmfu - dm);
        bubble_medians(&s, drop, st);
        st->rss_ranks = s.last.rss_ranks;
        st->rss_max_mb = s.last.rss_max_mb;
        st->rss_min_mb = s.last.rss_ranks ? s.last.rss_min_mb : 0;
        st->dp_mb = s.last.dp_mb;
        st->run = s.last.run;
    }
    free(s.bub);
    free(s.ms);
    free(s.tps);
    free(s.mfu);
    free(s.share);
    free(s.comm);
    return rc;
}

lmc_status lmc_plan_log_read(const char *path, int skip, lmc_plan_log_stats *st)
{
    char *text = NULL;
    size_t n = 0;
    LMC_TRY(lmc_read_file(path, &text, &n));
    lmc_status s = lmc_plan_log_parse(text, n, path, skip, st);
    free(text);
    return s;
}

lmc_status lmc_plan_write_random_shard(const char *path, long long tokens, int vocab, uint64_t seed)
{
    if (tokens < 1 || tokens > (1LL << 31) - 1 || vocab < 2 || vocab > 65536)
        return lmc_err(LMC_EINVAL, "random shard %s: %lld tokens of vocab %d is out of range", path, tokens, vocab);
    size_t bytes = 1024 + (size_t)tokens * 2;
    uint8_t *buf = lmc_alloc(bytes, "random shard");
    if (!buf)
        return LMC_ENOMEM;
    uint32_t hdr[3] = {20240520u, 1u, (uint32_t)tokens};
    for (int i = 0; i < 3; i++) /* little-endian whatever the host */
        for (int b = 0; b < 4; b++)
            buf[4 * i + b] = (uint8_t)(hdr[i] >> (8 * b));
    lmc_rng r;
    lmc_rng_seed(&r, seed);
    for (long long i = 0; i < tokens; i++) {
        uint32_t t = (uint32_t)(lmc_rng_u64(&r) % (uint64_t)vocab);
        buf[1024 + 2 * i] = (uint8_t)t;
        buf[1024 + 2 * i + 1] = (uint8_t)(t >> 8);
    }
    lmc_status s = lmc_write_file_atomic(path, buf, bytes);
    lmc_free(buf);
    return s;
}

double lmc_plan_predict_single(const lmc_model_config *c, const lmc_plan_chip *chip, int batch, int seq, int bf16,
                               lmc_plan_result *r)
{
    lmc_plan_job job;
    lmc_plan_job_defaults(&job);
    job.model = *c;
    job.seq = seq;
    job.global_batch = batch;
    job.bf16 = bf16;
    job.mem_reserve = 0; /* a measurement already ran, so it fitted */
    lmc_plan_pool pool;
    memset(&pool, 0, sizeof pool);
    pool.chip = *chip;
    pool.count = 1;
    pool.chips_per_node = 1;
    long long one = 1;
    lmc_plan_layout l = {.dp = 1, .tp = 1, .pp = 1, .vpp = 1, .micro_batch = batch};
    lmc_plan_result tmp;
    if (!r)
        r = &tmp;
    lmc_plan_evaluate(&job, &pool, &one, 1, &l, r);
    if (!r->fits) { /* time it anyway: the run it is compared with happened */
        lmc_plan_mb_time t;
        lmc_plan_microbatch_time(&job, chip, &l, &t);
        return t.total;
    }
    return r->step_s;
}
