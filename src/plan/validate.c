/* validate.c: `lmc plan --validate`: for each published run, lmc's best
 * case at the run's own layout, the expected figure and range for its
 * chip class, the published figure and the errors. "left out" is the
 * expected figure from the other runs only: how well lmc predicts a run it
 * has not seen. */
#include "lmc/plan.h"

#include <math.h>
#include <string.h>

/* An end-to-end figure is compared with the expected one less the time
 * the model says the run lost to failures. */
static void row(lmc_sb *o, const lmc_plan_run *run, const lmc_plan_result *r, double eff_time, const lmc_plan_eff *e,
                const lmc_plan_eff *loo, lmc_plan_validation *v)
{
    char lay[48];
    snprintf(lay, sizeof lay, "%dx%dx%d", r->layout.dp, r->layout.tp, r->layout.pp);
    double best = r->mfu * eff_time, exp = best * e->expected, lo = best * e->low, hi = best * e->high;
    double err = exp / run->pub_mfu - 1, lerr = best * loo->expected / run->pub_mfu - 1;
    int inside = run->pub_mfu >= lo * (1 - 1e-9) && run->pub_mfu <= hi * (1 + 1e-9);
    v->predicted++;
    v->inside += inside;
    v->within25 += fabs(err) <= 0.25;
    v->loo_within25 += fabs(lerr) <= 0.25;
    lmc_sb_printf(o, "  %-36.36s %-8s %6lld %-11s %5.1f%%%s %5.1f%%  %5.1f%% (%4.1f-%4.1f) %+6.1f%% %+6.1f%%%s\n",
                  run->name, run->chip, run->chips, lay, run->pub_mfu * 100, run->end_to_end ? "*" : " ", best * 100,
                  exp * 100, lo * 100, hi * 100, err * 100, lerr * 100, inside ? "" : "  OUTSIDE");
}

lmc_status lmc_plan_validate(const lmc_plan_catalog *cat, const lmc_plan_runs *rs, const lmc_plan_reliab *rl,
                             lmc_sb *o, lmc_plan_validation *v)
{
    lmc_plan_effs effs;
    memset(v, 0, sizeof *v);
    LMC_TRY(lmc_plan_effs_make(cat, rs, rl, &effs));
    lmc_sb_puts(o, "published runs at their own layouts (MFU: model FLOPs 6N + 12Lhs over the bf16 peak; * from wall "
                   "clock or GPU-hours, every stop included)\n"
                   "  run                                  chip      chips dp x tp x pp published   best  expected "
                   "(range)       error  left out\n");
    for (int i = 0; i < rs->n; i++) {
        const lmc_plan_run *run = &rs->runs[i];
        lmc_plan_result r;
        LMC_TRY(lmc_plan_run_predict(cat, run, &r));
        v->runs++;
        if (!r.fits) {
            lmc_sb_printf(o, "  %-36.36s %-8s %6lld not predicted: %s\n", run->name, run->chip, run->chips, r.why);
            continue;
        }
        lmc_plan_eff e, loo;
        lmc_plan_eff_for(&effs, run->chip, -1, &e);
        lmc_plan_eff_for(&effs, run->chip, i, &loo);
        row(o, run, &r, lmc_plan_run_effective(run, rl), &e, &loo, v);
    }
    lmc_sb_puts(o, "expected = best x the median of published/best over the runs of the chip class (A100, H100-class, "
                   "Ascend; fewer than 3 runs: their median, all runs' spread); left out: the same without the run\n");
    lmc_sb_printf(o, "%d of %d runs predicted; published inside the range: %d; expected within 25%%: %d (%.0f%%); "
                  "left out within 25%%: %d (%.0f%%)\n", v->predicted, v->runs, v->inside, v->within25,
                  v->predicted ? 100.0 * v->within25 / v->predicted : 0, v->loo_within25,
                  v->predicted ? 100.0 * v->loo_within25 / v->predicted : 0);
    lmc_sb_printf(o, "goal (issue 23): expected within 25%% for at least 80%% of runs: %s\n",
                  v->within25 * 5 >= v->predicted * 4 ? "met" : "NOT met");
    return LMC_OK;
}
