/* calrun.c: lmc plan --calibrate's measurement. A short training run of a
 * model on random tokens, in this process through lmc_train, noting the
 * process's CPU time at each step's event: the CPU time of every step is
 * then known, which a busy machine cannot stretch the way it stretches
 * wall-clock time. */
#include "internal.h"
#include "lmc/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CPU seconds (user + system, all threads) this process has used so far. */
static double process_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

typedef struct {
    double *ms, *cpu; /* each step's wall-clock ms, and the process's CPU seconds at its event */
    int n, cap;
} step_marks;

static void on_event(void *ctx, const lmc_train_event *ev)
{
    step_marks *m = ctx;
    if (ev->kind == LMC_EV_STEP && ev->rank == 0 && m->n < m->cap) {
        m->cpu[m->n] = process_cpu();
        m->ms[m->n++] = ev->ms;
    }
}

/* The least CPU time of a step after warm-up, seconds: step k's is
 * cpu[k] - cpu[k-1] (the first step's includes start-up). Other processes
 * only ever add to a step's CPU time (cache and memory-bandwidth
 * contention), never take from it, so the least is the least disturbed. */
static double least_step_cpu(const step_marks *m, int skip)
{
    double least = 0;
    for (int k = skip > 1 ? skip : 1, first = k; k < m->n; k++) {
        double d = m->cpu[k] - m->cpu[k - 1];
        least = k == first || d < least ? d : least;
    }
    return least;
}

static lmc_status train_marked(const lmc_plan_calib_opts *c, const char *shard, step_marks *m,
                               lmc_plan_calib_run *r)
{
    lmc_train_opts o;
    lmc_train_defaults(&o);
    o.model = c->model, o.data = shard, o.precision = c->precision ? c->precision : "fp32";
    o.batch = c->batch, o.seq = c->seq, o.steps = c->steps, o.threads = c->threads;
    double t0 = lmc_now(), c0 = process_cpu();
    lmc_status s = lmc_train(&o, on_event, m);
    double wall = lmc_now() - t0, cpu = process_cpu() - c0;
    if (s) {
        char why[512];
        snprintf(why, sizeof why, "%s", lmc_errmsg());
        return lmc_err(s, "calibrate: training %s failed: %s", c->model, why);
    }
    if (m->n < 1)
        return lmc_err(LMC_EIO, "calibrate: training %s reported no steps", c->model);
    r->share = wall > 0 ? cpu / (wall * c->threads) : 1;
    r->share = r->share < 1 ? r->share : 1;
    r->cpu_ms = least_step_cpu(m, c->skip) / c->threads * 1e3;
    lmc_plan_step_times(m->ms, m->n, c->skip, &r->st);
    return LMC_OK;
}

lmc_status lmc_plan_calibrate(const lmc_plan_calib_opts *c, lmc_plan_calib_run *r)
{
    memset(r, 0, sizeof *r);
    r->threads = c->threads;
    if (c->threads < 1 || c->batch < 1 || c->seq < 1 || c->steps < 1)
        return lmc_err(LMC_EINVAL, "calibrate: threads %d, batch %d, seq %d, steps %d must be at least 1",
                       c->threads, c->batch, c->seq, c->steps);
    lmc_model_config cfg;
    LMC_TRY(lmc_plan_model_load(c->model, &cfg));
    char dir[] = "/tmp/lmc-calib-XXXXXX", shard[64];
    if (!mkdtemp(dir))
        return lmc_err(LMC_EIO, "calibrate: cannot create a folder under /tmp");
    snprintf(shard, sizeof shard, "%s/calib_train_000000.bin", dir);
    step_marks m = {.ms = calloc((size_t)c->steps, sizeof(double)), .cpu = calloc((size_t)c->steps, sizeof(double)),
                    .cap = c->steps};
    lmc_status s = m.ms && m.cpu ? LMC_OK : lmc_err(LMC_ENOMEM, "calibrate: out of memory");
    long long tokens = (long long)(c->steps + 2) * c->batch * c->seq + 1;
    if (!s)
        s = lmc_plan_write_random_shard(shard, tokens, cfg.vocab < 65536 ? cfg.vocab : 65536, 1234);
    if (!s)
        s = train_marked(c, shard, &m, r);
    lmc_rm_rf(dir);
    free(m.ms);
    free(m.cpu);
    return s;
}
