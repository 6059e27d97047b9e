/* outlook.c: what a lab can commit to. Beside the best case (the cost
 * model as is), three timelines: expected (the median efficiency published
 * runs on these chips reached relative to lmc's best case, and the time
 * failures cost), fast (the best such efficiency, deliveries on time) and
 * slow (the worst, every delivery as late as its slip allows). */
#include "lmc/plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double factor;
    const lmc_plan_reliab *rel;
    double params;
} scale_ctx;

/* A segment runs at factor x its best case, less the time lost to
 * failures on the chips it uses. */
static double segment_scale(void *ctx, const lmc_plan_segment *seg)
{
    const scale_ctx *c = ctx;
    double ckpt = 0, interval = 0;
    return c->factor * lmc_plan_effective(c->rel, (double)seg->plan.chips_used, c->params, &ckpt, &interval);
}

/* The fleet's factors: each pool's chip class, weighted by its chips. */
static void fleet_eff(const lmc_plan_fleet *f, const lmc_plan_effs *effs, lmc_plan_eff *out)
{
    double w = 0, e = 0, lo = 0, hi = 0;
    int runs = 0;
    for (int i = 0; i < f->n; i++) {
        lmc_plan_eff pe;
        lmc_plan_eff_for(effs, f->pools[i].chip.name, -1, &pe);
        double c = (double)f->pools[i].count;
        w += c, e += c * pe.expected, lo += c * pe.low, hi += c * pe.high;
        runs = i == 0 || pe.runs < runs ? pe.runs : runs;
    }
    *out = (lmc_plan_eff){w > 0 ? e / w : 1, w > 0 ? lo / w : 1, w > 0 ? hi / w : 1, runs, 0};
}

static lmc_status run_one(const lmc_plan_job *job, const lmc_plan_fleet *f, const lmc_plan_fix *fx, double tokens,
                          int start, double replan, double factor, const lmc_plan_outlook *o, lmc_plan_timeline *tl)
{
    scale_ctx c = {factor, &o->rel, o->params};
    return lmc_plan_timeline_run_scaled(job, f, fx, tokens, start, replan, segment_scale, &c, tl);
}

lmc_status lmc_plan_outlook_run(const lmc_plan_job *job, const lmc_plan_fleet *f, const lmc_plan_fix *fx,
                                double tokens, int start_day, double replan_hours, const lmc_plan_effs *effs,
                                const lmc_plan_eff *calibrated, const lmc_plan_reliab *rel, lmc_plan_outlook *o)
{
    memset(o, 0, sizeof *o);
    o->rel = *rel;
    o->params = lmc_config_num_params(&job->model);
    if (calibrated)
        o->eff = *calibrated;
    else
        fleet_eff(f, effs, &o->eff);
    for (int i = 0; i < f->n; i++)
        o->chips += (double)f->pools[i].count, o->slipped |= f->pools[i].slip_days > 0;
    o->effective = lmc_plan_effective(&o->rel, o->chips, o->params, &o->ckpt_h, &o->interval_h);
    o->mtbf_h = o->rel.rate > 0 ? 1 / (o->rel.rate * o->chips) : INFINITY;
    lmc_plan_fleet late = {malloc((size_t)f->n * sizeof *f->pools), f->n};
    if (!late.pools)
        return lmc_err(LMC_ENOMEM, "plan: out of memory");
    for (int i = 0; i < f->n; i++) {
        late.pools[i] = f->pools[i];
        if (late.pools[i].arrives != LMC_PLAN_NOW)
            late.pools[i].arrives += late.pools[i].slip_days;
    }
    lmc_status s = run_one(job, f, fx, tokens, start_day, replan_hours, o->eff.expected, o, &o->expected);
    if (!s)
        s = run_one(job, f, fx, tokens, start_day, replan_hours, o->eff.high, o, &o->fast);
    if (!s)
        s = run_one(job, &late, fx, tokens, start_day, replan_hours, o->eff.low, o, &o->slow);
    free(late.pools);
    if (s)
        lmc_plan_outlook_free(o);
    return s;
}

void lmc_plan_outlook_free(lmc_plan_outlook *o)
{
    lmc_plan_timeline_free(&o->expected);
    lmc_plan_timeline_free(&o->fast);
    lmc_plan_timeline_free(&o->slow);
}
