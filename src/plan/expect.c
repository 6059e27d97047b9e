/* expect.c: the expected figure and its range. The cost model gives a best
 * case (what a well-engineered stack reaches); published runs on a chip
 * class reached some fraction of lmc's best case at their own layouts.
 * The median of those fractions is the expected factor, their least and
 * most the range. A class with fewer than three runs keeps its own median
 * and borrows the spread of all runs around theirs. */
#include "lmc/plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

lmc_status lmc_plan_run_predict(const lmc_plan_catalog *cat, const lmc_plan_run *run, lmc_plan_result *r)
{
    lmc_plan_job job;
    lmc_plan_job_defaults(&job);
    job.model = run->model;
    job.seq = run->seq;
    job.global_batch = run->global_batch > 0 ? run->global_batch : lmc_plan_default_batch(&run->model, run->seq);
    const lmc_plan_chip *c = NULL;
    LMC_TRY(lmc_plan_catalog_get(cat, run->chip, run->name, &c));
    lmc_plan_pool pool = {.chip = *c, .count = run->chips, .chips_per_node = c->chips_per_node,
                          .arrives = LMC_PLAN_NOW};
    snprintf(pool.name, sizeof pool.name, "%s", c->name);
    if (run->network_gbs > 0) /* the run's own cluster */
        pool.chip.network_gbs = run->network_gbs;
    int n = 0;
    char why[256] = "";
    memset(r, 0, sizeof *r);
    LMC_TRY(lmc_plan_search(&job, &pool, &pool.count, 1, &run->fix, r, 1, &n, why));
    if (n != 1) {
        memset(r, 0, sizeof *r);
        snprintf(r->why, sizeof r->why, "%s", why);
    }
    return LMC_OK;
}

double lmc_plan_run_effective(const lmc_plan_run *run, const lmc_plan_reliab *rl)
{
    double ckpt = 0, interval = 0;
    if (!rl || !run->end_to_end)
        return 1;
    return lmc_plan_effective(rl, (double)run->chips, lmc_config_num_params(&run->model), &ckpt, &interval);
}

lmc_status lmc_plan_effs_make(const lmc_plan_catalog *cat, const lmc_plan_runs *rs, const lmc_plan_reliab *rl,
                              lmc_plan_effs *e)
{
    memset(e, 0, sizeof *e);
    for (int i = 0; i < rs->n && i < LMC_PLAN_MAX_RUNS; i++) {
        lmc_plan_result r;
        const lmc_plan_run *run = &rs->runs[i];
        LMC_TRY(lmc_plan_run_predict(cat, run, &r));
        snprintf(e->cls[i], sizeof e->cls[i], "%s", lmc_plan_chip_class(run->chip));
        e->ratio[i] = r.fits && r.mfu > 0 ? run->pub_mfu / (r.mfu * lmc_plan_run_effective(run, rl)) : 0;
        e->n = i + 1;
    }
    return LMC_OK;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median, least and most of the ratios of a class ("*": all), skipping one. */
static int stats(const lmc_plan_effs *e, const char *cls, int skip, double *med, double *lo, double *hi)
{
    double v[LMC_PLAN_MAX_RUNS];
    int n = 0;
    for (int i = 0; i < e->n; i++)
        if (i != skip && e->ratio[i] > 0 && (!strcmp(cls, "*") || !strcmp(cls, e->cls[i])))
            v[n++] = e->ratio[i];
    if (n == 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    *med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    *lo = v[0], *hi = v[n - 1];
    return n;
}

void lmc_plan_eff_for(const lmc_plan_effs *e, const char *chip_name, int skip, lmc_plan_eff *out)
{
    memset(out, 0, sizeof *out);
    out->expected = out->low = out->high = 1;
    const char *cls = lmc_plan_chip_class(chip_name);
    double med = 1, lo = 1, hi = 1, am = 1, al = 1, ah = 1;
    int n = cls[0] ? stats(e, cls, skip, &med, &lo, &hi) : 0;
    int all = stats(e, "*", skip, &am, &al, &ah);
    if (n >= 3) {
        *out = (lmc_plan_eff){med, lo, hi, n, 0};
    } else if (n > 0 && all > 0) { /* own median, everyone's spread; own runs stay inside */
        *out = (lmc_plan_eff){med, fmin(lo, med * al / am), fmax(hi, med * ah / am), n, 0};
    } else if (all > 0) {
        *out = (lmc_plan_eff){am, al, ah, 0, 0};
    }
}
