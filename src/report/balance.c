/* balance.c: the balance picture's numbers: per run and rank, the mean
 * over the logged steps of the compute time, the time waiting for the
 * gradient reduction, and the rest of the step (optimizer, gathers,
 * waiting elsewhere), drawn as stacked bars by bars.c. */
#include "report/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    double compute, idle, rest, mb;
    int steps;
} rank_mean;

static rank_mean mean_of(const lmc_report_run *r, int k)
{
    rank_mean m = {0};
    for (int i = 0; i < r->n; i++) {
        const lmc_report_point *p = &r->pts[i];
        const lmc_report_arr *c = &p->arr[LMC_REP_COMPUTE_MS], *w = &p->arr[LMC_REP_IDLE_MS];
        if (k >= c->n || k >= w->n || !isfinite(c->v[k]) || !isfinite(w->v[k]))
            continue;
        double ms = p->v[LMC_REP_MS], rest = ms - c->v[k] - w->v[k];
        m.compute += c->v[k], m.idle += w->v[k];
        m.rest += isfinite(rest) && rest > 0 ? rest : 0;
        m.mb += k < p->arr[LMC_REP_MB].n && isfinite(p->arr[LMC_REP_MB].v[k]) ? p->arr[LMC_REP_MB].v[k] : 0;
        m.steps++;
    }
    if (m.steps)
        m.compute /= m.steps, m.idle /= m.steps, m.rest /= m.steps, m.mb /= m.steps;
    return m;
}

static int ranks_of(const lmc_report_run *r)
{
    int m = 0;
    for (int i = 0; i < r->n; i++)
        if (r->pts[i].arr[LMC_REP_COMPUTE_MS].n > m)
            m = r->pts[i].arr[LMC_REP_COMPUTE_MS].n;
    return m;
}

static lmc_status add_row(lmc_rep_bars *b, const char *run, int k, const rank_mean *m)
{
    char label[512], tip[768];
    if (run)
        snprintf(label, sizeof label, "%s rank %d", run, k);
    else
        snprintf(label, sizeof label, "rank %d", k);
    snprintf(tip, sizeof tip,
             "%s: compute %.3f ms, waiting %.3f ms, rest %.3f ms per step (mean of %d steps; "
             "%.2f micro-batches)",
             label, m->compute, m->idle, m->rest, m->steps, m->mb);
    int i = b->nrow;
    b->label[i] = lmc_strdup(label);
    b->tip[i] = lmc_strdup(tip);
    if (!b->label[i] || !b->tip[i])
        return lmc_err(LMC_ENOMEM, "out of memory drawing the balance");
    b->seg[i][0] = m->compute, b->seg[i][1] = m->idle, b->seg[i][2] = m->rest;
    b->nrow++;
    return LMC_OK;
}

static lmc_status fill(lmc_rep_bars *b, const lmc_report_run *runs, int n)
{
    for (int r = 0; r < n; r++)
        for (int k = 0, m = ranks_of(&runs[r]); k < m; k++) {
            rank_mean mean = mean_of(&runs[r], k);
            if (mean.steps)
                LMC_TRY(add_row(b, n > 1 ? runs[r].name : NULL, k, &mean));
        }
    return LMC_OK;
}

lmc_status lmc_rep_balance(lmc_sb *o, const lmc_report_run *runs, int n)
{
    int rows = 0;
    for (int r = 0; r < n; r++)
        rows += ranks_of(&runs[r]);
    if (!rows)
        return LMC_OK;
    lmc_rep_bars b = {.id = "balance",
                      .xlabel = "ms per step (mean over the logged steps)",
                      .seg_name = {"compute (forward + backward)", "waiting for gradients", "rest of the step"}};
    b.label = calloc((size_t)rows, sizeof *b.label);
    b.tip = calloc((size_t)rows, sizeof *b.tip);
    b.seg = calloc((size_t)rows, sizeof *b.seg);
    lmc_status st =
        b.label && b.tip && b.seg ? fill(&b, runs, n) : lmc_err(LMC_ENOMEM, "out of memory drawing the balance");
    if (st == LMC_OK && b.nrow) {
        lmc_sb_puts(o, "<figure class=\"wide\"><h3>Balance: where each rank's step goes</h3>\n");
        lmc_rep_svg_bars(o, &b);
        lmc_sb_puts(o, "</figure>\n");
    }
    for (int i = 0; i < rows; i++) {
        if (b.label)
            free(b.label[i]);
        if (b.tip)
            free(b.tip[i]);
    }
    free(b.label);
    free(b.tip);
    free(b.seg);
    return st;
}
