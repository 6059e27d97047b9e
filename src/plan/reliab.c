/* reliab.c: time lost to failures. A job on `chips` chips is interrupted
 * every M = 1 / (rate * chips) hours on average. It writes a checkpoint
 * of C hours every tau hours, tau by Young's rule sqrt(2 C M) (Young 1974;
 * Daly 2006), and each interruption costs the restart R (detect, relaunch,
 * reload) plus, on average, half an interval of redone work:
 *     lost fraction = C / tau + (R + tau / 2) / M.
 * The rate comes from the published runs that count their interruptions;
 * R is lmc launch's measured figure when given, else the largest R that
 * leaves the run publishing its effective time at that figure. */
#include "lmc/plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Llama 3 (arXiv:2407.21783) sec. 3.3.1: Tectonic sustains 2 TB/s. */
#define CKPT_GBS 2000.0
/* What a checkpoint holds per parameter: 16-bit weights and fp32 master
 * weights, Adam m and v (the planner's memory model, docs/planner.md). */
#define STATE_BYTES 14.0

static double ckpt_hours(const lmc_plan_reliab *rl, double params)
{
    return params * rl->state_bytes_per_param / (rl->ckpt_gbs * 1e9) / 3600;
}

static double lost_fraction(double C, double M, double R, double *tau)
{
    *tau = sqrt(2 * C * M);
    return (*tau > 0 ? C / *tau : 0) + (R + *tau / 2) / M;
}

void lmc_plan_reliab_defaults(const lmc_plan_runs *rs, lmc_plan_reliab *rl)
{
    double count = 0, chip_h = 0;
    rl->ckpt_gbs = rl->ckpt_gbs > 0 ? rl->ckpt_gbs : CKPT_GBS;
    rl->state_bytes_per_param = STATE_BYTES;
    for (int i = 0; i < rs->n; i++)
        if (rs->runs[i].interruptions > 0) {
            count += rs->runs[i].interruptions;
            chip_h += rs->runs[i].interruption_days * 24 * rs->runs[i].chips;
        }
    rl->rate = chip_h > 0 ? count / chip_h : 0;
    size_t at = (size_t)snprintf(rl->rate_from, sizeof rl->rate_from, "%s", chip_h > 0 ? "from" : "none published");
    for (int i = 0; i < rs->n && at < sizeof rl->rate_from; i++)
        if (rs->runs[i].interruptions > 0)
            at += (size_t)snprintf(rl->rate_from + at, sizeof rl->rate_from - at, " %s%.40s", at > 5 ? "and " : "",
                                   rs->runs[i].name);
    if (rl->restart_h > 0)
        return;
    for (int i = 0; i < rs->n; i++) {
        const lmc_plan_run *r = &rs->runs[i];
        if (r->effective_time <= 0 || r->interruptions <= 0)
            continue;
        double M = r->interruption_days * 24 / r->interruptions, tau = 0;
        double C = ckpt_hours(rl, lmc_config_num_params(&r->model));
        double ckpt_and_redo = lost_fraction(C, M, 0, &tau) * M;
        rl->restart_h = fmax(0, (1 - r->effective_time) * M - ckpt_and_redo);
        snprintf(rl->restart_from, sizeof rl->restart_from, "the most that leaves %.60s at its published %.0f%% "
                 "effective time", r->name, r->effective_time * 100);
        return;
    }
    rl->restart_h = 0.5; /* no run publishes an effective time: --replan-hours' default */
    snprintf(rl->restart_from, sizeof rl->restart_from, "estimate");
}

double lmc_plan_effective(const lmc_plan_reliab *rl, double chips, double params, double *ckpt_h,
                          double *interval_h)
{
    double C = ckpt_hours(rl, params), tau = 0;
    *ckpt_h = C;
    *interval_h = 0;
    if (!(rl->rate > 0) || chips <= 0)
        return 1;
    double M = 1 / (rl->rate * chips);
    double lost = lost_fraction(C, M, rl->restart_h, &tau);
    *interval_h = tau;
    return fmax(0.01, 1 - lost);
}

/* One "resumed" event's restart cost in seconds; 0 when the line is another event. */
static lmc_status resumed_line(const lmc_json *j, const char *w, double *sec)
{
    const char *ev = NULL;
    *sec = 0;
    if (j->type != LMC_JSON_OBJ)
        return lmc_err(LMC_EFORMAT, "%s: expected a JSON object (lmc launch --log writes one per line)", w);
    LMC_TRY(lmc_json_get_str(j, "event", w, &ev));
    if (!ev || strcmp(ev, "resumed"))
        return LMC_OK;
    double lost = -1, redone = 0;
    LMC_TRY(lmc_json_get_num(j, "lost_s", w, &lost));
    LMC_TRY(lmc_json_get_num(j, "redone_s", w, &redone));
    if (!(lost >= 0 && lost < 1e9) || !(redone >= 0 && redone <= lost))
        return lmc_err(LMC_EFORMAT, "%s: a \"resumed\" event needs lost_s >= redone_s >= 0 (lost_s = %g, redone_s = "
                       "%g)", w, lost, redone);
    *sec = fmax(lost - redone, 1e-9);
    return LMC_OK;
}

lmc_status lmc_plan_launch_restart(const char *text, size_t n, const char *what, double *hours, int *events)
{
    double sum = 0;
    int line = 0;
    *events = 0;
    *hours = 0;
    for (size_t at = 0; at < n; line++) {
        const char *nl = memchr(text + at, '\n', n - at);
        size_t len = nl ? (size_t)(nl - (text + at)) : n - at;
        char w[300];
        snprintf(w, sizeof w, "%s:%d", what, line + 1);
        if (len > 0 && !(len == 1 && text[at] == '\r')) {
            lmc_json *j = NULL;
            double sec = 0;
            LMC_TRY(lmc_json_parse(text + at, len, w, &j));
            lmc_status s = resumed_line(j, w, &sec);
            lmc_json_free(j);
            LMC_TRY(s);
            sum += sec;
            *events += sec > 0;
        }
        at += len + (nl ? 1 : 0);
    }
    if (*events == 0)
        return lmc_err(LMC_EFORMAT, "%s: no \"resumed\" events (lmc launch --log writes one per restart; a run "
                       "without a failure measures no restart)", what);
    *hours = sum / *events / 3600;
    return LMC_OK;
}
