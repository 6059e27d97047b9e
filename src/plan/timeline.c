/* timeline.c: deliveries. Each arrival date starts a segment: the chips
 * on hand are re-planned (best layout, mixed kinds balanced), the job
 * loses `replan_hours` to checkpoint and restart, then runs at the new
 * speed until the next arrival or until the token budget is done. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int lmc_plan_fleet_on_hand(const lmc_plan_fleet *f, double day, lmc_plan_pool *groups, long long *counts)
{
    int n = 0;
    for (int i = 0; i < f->n; i++) {
        const lmc_plan_pool *p = &f->pools[i];
        int here = p->arrives == LMC_PLAN_NOW || p->arrives <= day;
        int g = 0;
        while (g < n && !(strcmp(groups[g].chip.name, p->chip.name) == 0 &&
                          groups[g].chips_per_node == p->chips_per_node))
            g++;
        if (g == n) {
            groups[n] = *p;
            counts[n++] = 0;
        }
        counts[g] += here ? p->count : 0;
    }
    for (int g = 0; g < n; g++)
        groups[g].count = counts[g], groups[g].arrives = LMC_PLAN_NOW;
    return n;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Distinct event days: the start and every later arrival. */
static int event_days(const lmc_plan_fleet *f, int start, int *days)
{
    int n = 0;
    days[n++] = start;
    for (int i = 0; i < f->n; i++)
        if (f->pools[i].arrives != LMC_PLAN_NOW && f->pools[i].arrives > start)
            days[n++] = f->pools[i].arrives;
    qsort(days, (size_t)n, sizeof *days, cmp_int);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (m == 0 || days[i] != days[m - 1])
            days[m++] = days[i];
    return m;
}

static lmc_status plan_segment(const lmc_plan_job *job, const lmc_plan_fleet *f, const lmc_plan_fix *fx, double day,
                               lmc_plan_segment *seg, char *why, lmc_plan_scale_fn scale, void *ctx)
{
    lmc_plan_pool groups[LMC_PLAN_MAX_POOLS];
    long long counts[LMC_PLAN_MAX_POOLS];
    int ng = lmc_plan_fleet_on_hand(f, day, groups, counts);
    memset(seg, 0, sizeof *seg);
    seg->day = day;
    for (int g = 0; g < ng; g++)
        seg->chips += counts[g];
    if (seg->chips == 0)
        return LMC_OK;
    int n = 0;
    LMC_TRY(lmc_plan_search(job, groups, counts, ng, fx, &seg->plan, 1, &n, why));
    seg->scale = n && scale ? scale(ctx, seg) : 1;
    seg->tokens_per_s = n ? seg->plan.tokens_per_s * seg->scale : 0;
    return LMC_OK;
}

/* Runs the segments forward until the budget is met. */
static void integrate(lmc_plan_timeline *tl)
{
    double done = 0;
    tl->finish_day = -1;
    for (int i = 0; i < tl->n; i++) {
        lmc_plan_segment *s = &tl->seg[i];
        s->tokens_at_start = done;
        if (s->tokens_per_s <= 0)
            continue;
        int restart = i > 0 && tl->seg[i - 1].tokens_per_s > 0; /* a running job re-plans */
        double begin = s->day + (restart ? tl->replan_hours / 24 : 0);
        double end = i + 1 < tl->n ? tl->seg[i + 1].day : INFINITY;
        double need_days = (tl->tokens - done) / s->tokens_per_s / 86400;
        if (begin + need_days <= end) {
            tl->finish_day = begin + need_days;
            tl->n = i + 1; /* later deliveries do not matter */
            return;
        }
        if (end > begin)
            done += (end - begin) * 86400 * s->tokens_per_s;
    }
}

lmc_status lmc_plan_timeline_run(const lmc_plan_job *job, const lmc_plan_fleet *f, const lmc_plan_fix *fx,
                                 double tokens, int start_day, double replan_hours, lmc_plan_timeline *tl)
{
    return lmc_plan_timeline_run_scaled(job, f, fx, tokens, start_day, replan_hours, NULL, NULL, tl);
}

lmc_status lmc_plan_timeline_run_scaled(const lmc_plan_job *job, const lmc_plan_fleet *f, const lmc_plan_fix *fx,
                                        double tokens, int start_day, double replan_hours, lmc_plan_scale_fn scale,
                                        void *ctx, lmc_plan_timeline *tl)
{
    memset(tl, 0, sizeof *tl);
    tl->start_day = start_day;
    tl->tokens = tokens;
    tl->replan_hours = replan_hours;
    int *days = malloc((size_t)(f->n + 1) * sizeof *days);
    tl->seg = calloc((size_t)f->n + 1, sizeof *tl->seg);
    if (!days || !tl->seg) {
        free(days);
        lmc_plan_timeline_free(tl);
        return lmc_err(LMC_ENOMEM, "timeline: out of memory");
    }
    int nd = event_days(f, start_day, days);
    char why[256] = "", last_why[256] = "";
    lmc_status s = LMC_OK;
    for (int i = 0; i < nd && !s; i++) {
        s = plan_segment(job, f, fx, days[i], &tl->seg[tl->n], why, scale, ctx);
        if (why[0])
            memcpy(last_why, why, sizeof why);
        tl->n++;
    }
    free(days);
    if (s) {
        lmc_plan_timeline_free(tl);
        return s;
    }
    integrate(tl);
    if (tl->finish_day < 0) {
        lmc_plan_timeline_free(tl);
        return lmc_err(LMC_ERANGE, "the model fits nowhere on this fleet: %s",
                       last_why[0] ? last_why : "no chips ever arrive");
    }
    tl->hours = (tl->finish_day - start_day) * 24;
    return LMC_OK;
}

double lmc_plan_timeline_tokens_at(const lmc_plan_timeline *tl, double day)
{
    double done = 0;
    for (int i = 0; i < tl->n; i++) {
        const lmc_plan_segment *s = &tl->seg[i];
        if (day < s->day)
            break;
        int restart = i > 0 && tl->seg[i - 1].tokens_per_s > 0;
        double begin = s->day + (restart ? tl->replan_hours / 24 : 0);
        double end = i + 1 < tl->n ? tl->seg[i + 1].day : tl->finish_day;
        double until = fmin(day, end);
        done = s->tokens_at_start + (until > begin ? (until - begin) * 86400 * s->tokens_per_s : 0);
    }
    return done < tl->tokens ? done : tl->tokens;
}

void lmc_plan_timeline_free(lmc_plan_timeline *tl)
{
    free(tl->seg);
    tl->seg = NULL;
    tl->n = 0;
}
