/* calrun.c: lmc plan --calibrate's measurement. A short training run of a
 * model on random tokens, in this process through lmc_train, noting the
 * process's CPU time at each step's event: a step that did not get its
 * cores (a busy machine) shows it, and is left out of the figures. */
#include "internal.h"
#include "lmc/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double *ms, *share; /* each step's wall-clock ms, and its share of the cores */
    double wall, cpu;   /* at the previous step's event (the run's start before the first) */
    int n, cap, threads;
} step_marks;

/* A step's share of its cores: the process's CPU time between two step
 * events over the wall-clock time between them x threads. */
static void on_event(void *ctx, const lmc_train_event *ev)
{
    step_marks *m = ctx;
    if (ev->kind != LMC_EV_STEP || ev->rank != 0 || m->n >= m->cap)
        return;
    double wall = lmc_now(), cpu = lmc_cpu_now();
    m->share[m->n] = wall > m->wall ? (cpu - m->cpu) / ((wall - m->wall) * m->threads) : 0;
    m->ms[m->n++] = ev->ms;
    m->wall = wall, m->cpu = cpu;
}

static lmc_status train_marked(const lmc_plan_calib_opts *c, const char *shard, step_marks *m,
                               lmc_plan_calib_run *r)
{
    lmc_train_opts o;
    lmc_train_defaults(&o);
    o.model = c->model, o.data = shard, o.precision = c->precision ? c->precision : "fp32";
    o.batch = c->batch, o.seq = c->seq, o.steps = c->steps, o.threads = c->threads;
    m->wall = lmc_now(), m->cpu = lmc_cpu_now(), m->threads = c->threads;
    lmc_status s = lmc_train(&o, on_event, m);
    if (s) {
        char why[512];
        snprintf(why, sizeof why, "%s", lmc_errmsg());
        return lmc_err(s, "calibrate: training %s failed: %s", c->model, why);
    }
    if (m->n < 1)
        return lmc_err(LMC_EIO, "calibrate: training %s reported no steps", c->model);
    lmc_plan_step_times(m->ms, m->share, NULL, m->n, c->skip, &r->st);
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
    step_marks m = {.ms = calloc((size_t)c->steps, sizeof(double)),
                    .share = calloc((size_t)c->steps, sizeof(double)), .cap = c->steps};
    lmc_status s = m.ms && m.share ? LMC_OK : lmc_err(LMC_ENOMEM, "calibrate: out of memory");
    long long tokens = (long long)(c->steps + 2) * c->batch * c->seq + 1;
    if (!s)
        s = lmc_plan_write_random_shard(shard, tokens, cfg.vocab < 65536 ? cfg.vocab : 65536, 1234);
    if (!s)
        s = train_marked(c, shard, &m, r);
    lmc_rm_rf(dir);
    free(m.ms);
    free(m.share);
    return s;
}
