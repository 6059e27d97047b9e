/* charts.c: which charts a set of runs gets, and their series: loss
 * (training and validation, by step and by tokens, linear and log), the
 * optimizer's numbers, speed, memory per rank, time per rank and the
 * pipeline bubble per stage. A chart with nothing to draw is left out. */
#include "report/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A value of a point: a field (arr < 0) or item idx of an array. */
typedef struct {
    int f, arr, idx;
    double scale;
} getter;

static int get(const getter *g, const lmc_report_point *p, double *v, int *bad)
{
    if (g->arr < 0) {
        if (!(p->has >> g->f & 1))
            return 0;
        *bad = p->bad >> g->f & 1;
        *v = p->v[g->f] * g->scale;
        return 1;
    }
    const lmc_report_arr *a = &p->arr[g->arr];
    if (g->idx >= a->n)
        return 0;
    *v = a->v[g->idx] * g->scale;
    *bad = !isfinite(*v);
    return 1;
}

static lmc_status add_series(lmc_rep_chart *c, const lmc_report_run *r, const getter *g, int by_tokens,
                             const char *name, int colour, int dashed)
{
    lmc_rep_series *ser = realloc(c->ser, (size_t)(c->nser + 1) * sizeof *ser);
    if (!ser)
        return lmc_err(LMC_ENOMEM, "out of memory drawing %s", c->id);
    c->ser = ser;
    lmc_rep_series *s = memset(&ser[c->nser++], 0, sizeof *ser);
    size_t n = r->n ? (size_t)r->n : 1;
    s->name = lmc_strdup(name);
    s->x = malloc(n * sizeof *s->x);
    s->y = malloc(n * sizeof *s->y);
    s->step = malloc(n * sizeof *s->step);
    s->bad = malloc(n);
    if (!s->name || !s->x || !s->y || !s->step || !s->bad)
        return lmc_err(LMC_ENOMEM, "out of memory drawing %s", c->id);
    s->colour = colour, s->dashed = dashed;
    for (int i = 0; i < r->n; i++) {
        const lmc_report_point *p = &r->pts[i];
        double v, x = by_tokens ? p->v[LMC_REP_TOKENS] : (double)p->step;
        int bad;
        if (!isfinite(x) || !get(g, p, &v, &bad))
            continue;
        s->x[s->n] = x, s->y[s->n] = bad ? NAN : v, s->bad[s->n] = (unsigned char)bad, s->step[s->n] = p->step;
        s->n++;
    }
    return LMC_OK;
}

static lmc_status add_marks(lmc_rep_chart *c, const lmc_report_run *runs, int n)
{
    for (int r = 0; r < n; r++)
        for (int e = 0; e < runs[r].nev; e++) {
            lmc_rep_mark *m = realloc(c->mark, (size_t)(c->nmark + 1) * sizeof *m);
            if (!m)
                return lmc_err(LMC_ENOMEM, "out of memory drawing %s", c->id);
            c->mark = m;
            m[c->nmark++] = (lmc_rep_mark){(double)runs[r].ev[e].step, runs[r].ev[e].what, runs[r].name};
        }
    return LMC_OK;
}

static void chart_free(lmc_rep_chart *c)
{
    for (int i = 0; i < c->nser; i++) {
        free(c->ser[i].name);
        free(c->ser[i].x);
        free(c->ser[i].y);
        free(c->ser[i].step);
        free(c->ser[i].bad);
    }
    free(c->ser);
    free(c->mark);
}

/* Draws the chart inside a figure when it has anything to draw; frees it. */
static lmc_status emit(lmc_sb *o, lmc_rep_chart *c, const char *title, const char *cls, lmc_status st)
{
    int any = 0;
    for (int i = 0; i < c->nser; i++)
        any |= c->ser[i].n > 0;
    if (st == LMC_OK && any) {
        lmc_sb_printf(o, "<figure%s%s%s><h3>", cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
        lmc_rep_esc(o, title);
        lmc_sb_puts(o, "</h3>\n");
        lmc_rep_svg_lines(o, c);
        lmc_sb_puts(o, "</figure>\n");
    }
    chart_free(c);
    return st;
}

static void series_name(char *buf, size_t n, const lmc_report_run *runs, int nrun, int r, const char *what)
{
    if (nrun == 1 && what)
        snprintf(buf, n, "%s", what);
    else
        snprintf(buf, n, "%s%s%s", runs[r].name, what ? " " : "", what ? what : "");
}

static lmc_status loss_chart(lmc_sb *o, const lmc_report_run *runs, int n, int by_tokens, int logy)
{
    static const char *const ids[2][2] = {{"loss-step", "loss-step-log"}, {"loss-tokens", "loss-tokens-log"}};
    lmc_rep_chart c = {.id = ids[by_tokens][logy],
                       .xname = by_tokens ? "tokens" : "step",
                       .xlabel = by_tokens ? "tokens seen" : "step",
                       .ylabel = "loss (nats per token)",
                       .yname = "loss",
                       .yunit = "",
                       .logy = logy};
    lmc_status st = by_tokens ? LMC_OK : add_marks(&c, runs, n);
    char name[512];
    for (int r = 0; r < n && st == LMC_OK; r++) {
        getter tr = {LMC_REP_LOSS, -1, 0, 1}, va = {LMC_REP_VAL_LOSS, -1, 0, 1};
        series_name(name, sizeof name, runs, n, r, "train");
        st = add_series(&c, &runs[r], &tr, by_tokens, name, r, 0);
        series_name(name, sizeof name, runs, n, r, "validation");
        if (st == LMC_OK)
            st = add_series(&c, &runs[r], &va, by_tokens, name, r, 1);
    }
    return emit(o, &c, by_tokens ? "Loss by tokens" : "Loss by step", logy ? "log" : "lin", st);
}

typedef struct {
    const char *id, *title, *ylabel, *yname, *yunit;
    int f;
    double scale;
} field_chart;

static const field_chart simple[] = {
    {"val-bpb", "Validation bits per byte", "bits per byte", "val_bpb", "", LMC_REP_VAL_BPB, 1},
    {"lr", "Learning rate", "learning rate", "lr", "", LMC_REP_LR, 1},
    {"grad-norm", "Gradient norm", "gradient norm (L2, before clipping)", "grad_norm", "", LMC_REP_GRAD_NORM, 1},
    {"tokens-per-s", "Throughput", "tokens per second", "tokens/s", "", LMC_REP_TOKENS_PER_S, 1},
    {"mfu", "Model FLOPs utilization", "MFU (% of the chips' peak)", "MFU", "%", LMC_REP_MFU, 100},
};

static lmc_status field_chart_emit(lmc_sb *o, const lmc_report_run *runs, int n, const field_chart *fc)
{
    lmc_rep_chart c = {
        .id = fc->id, .xname = "step", .xlabel = "step", .ylabel = fc->ylabel, .yname = fc->yname, .yunit = fc->yunit};
    lmc_status st = add_marks(&c, runs, n);
    char name[512];
    for (int r = 0; r < n && st == LMC_OK; r++) {
        getter g = {fc->f, -1, 0, fc->scale};
        series_name(name, sizeof name, runs, n, r, NULL);
        st = add_series(&c, &runs[r], &g, 0, name, r, 0);
    }
    return emit(o, &c, fc->title, NULL, st);
}

/* Step time beside the time blocked on and spent in communication. */
static lmc_status time_chart(lmc_sb *o, const lmc_report_run *runs, int n)
{
    static const int f[3] = {LMC_REP_MS, LMC_REP_COMM_MS, LMC_REP_COMM_BUSY_MS};
    static const char *const what[3] = {"step", "blocked on communication", "communicator busy"};
    lmc_rep_chart c = {.id = "step-time",
                       .xname = "step",
                       .xlabel = "step",
                       .ylabel = "ms per step (rank 0)",
                       .yname = "time",
                       .yunit = " ms"};
    lmc_status st = add_marks(&c, runs, n);
    char name[512];
    for (int r = 0; r < n && st == LMC_OK; r++)
        for (int k = 0; k < 3 && st == LMC_OK; k++) {
            getter g = {f[k], -1, 0, 1};
            series_name(name, sizeof name, runs, n, r, what[k]);
            st = add_series(&c, &runs[r], &g, 0, name, c.nser, r % 2);
        }
    return emit(o, &c, "Time per step", NULL, st);
}

typedef struct {
    const char *id, *title, *ylabel, *yname, *yunit, *item;
    int arr;
    double scale;
} array_chart;

static const array_chart per_rank[] = {
    {"memory", "Peak memory per rank", "peak resident memory (MB)", "peak RSS", " MB", "rank", LMC_REP_RSS_MB, 1},
    {"compute-rank", "Compute per rank", "forward + backward (ms per step)", "compute", " ms", "rank",
     LMC_REP_COMPUTE_MS, 1},
    {"idle-rank", "Waiting per rank", "waiting for the gradient reduction (ms per step)", "waiting", " ms", "rank",
     LMC_REP_IDLE_MS, 1},
    {"microbatches", "Micro-batches per rank", "micro-batches per step", "micro-batches", "", "rank", LMC_REP_MB, 1},
    {"pp-bubble", "Pipeline bubble per stage", "bubble (% of the step waiting for neighbours)", "bubble", "%", "stage",
     LMC_REP_PP_BUBBLE, 100},
};

static int max_items(const lmc_report_run *r, int arr)
{
    int m = 0;
    for (int i = 0; i < r->n; i++)
        m = r->pts[i].arr[arr].n > m ? r->pts[i].arr[arr].n : m;
    return m;
}

/* Whether any item of the array differs from the run's first one (equal
 * micro-batch counts on every rank and step say nothing worth a chart). */
static int varies(const lmc_report_run *runs, int n, int arr)
{
    for (int r = 0; r < n; r++) {
        double first = NAN;
        for (int i = 0; i < runs[r].n; i++)
            for (int k = 0; k < runs[r].pts[i].arr[arr].n; k++) {
                double v = runs[r].pts[i].arr[arr].v[k];
                if (isnan(first))
                    first = v;
                else if (v != first)
                    return 1;
            }
    }
    return 0;
}

static lmc_status array_chart_emit(lmc_sb *o, const lmc_report_run *runs, int n, const array_chart *ac)
{
    if (ac->arr == LMC_REP_MB && !varies(runs, n, ac->arr))
        return LMC_OK;
    lmc_rep_chart c = {
        .id = ac->id, .xname = "step", .xlabel = "step", .ylabel = ac->ylabel, .yname = ac->yname, .yunit = ac->yunit};
    lmc_status st = add_marks(&c, runs, n);
    char name[512], item[32];
    for (int r = 0; r < n && st == LMC_OK; r++)
        for (int k = 0, m = max_items(&runs[r], ac->arr); k < m && st == LMC_OK; k++) {
            getter g = {0, ac->arr, k, ac->scale};
            snprintf(item, sizeof item, "%s %d", ac->item, k);
            series_name(name, sizeof name, runs, n, r, item);
            st = add_series(&c, &runs[r], &g, 0, name, c.nser, r % 2);
        }
    return emit(o, &c, ac->title, NULL, st);
}

lmc_status lmc_rep_charts(lmc_sb *o, const lmc_report_run *runs, int n)
{
    for (int t = 0; t < 2; t++)
        for (int lg = 0; lg < 2; lg++)
            LMC_TRY(loss_chart(o, runs, n, t, lg));
    for (size_t i = 0; i < sizeof simple / sizeof *simple; i++)
        LMC_TRY(field_chart_emit(o, runs, n, &simple[i]));
    LMC_TRY(time_chart(o, runs, n));
    for (size_t i = 0; i < sizeof per_rank / sizeof *per_rank; i++) {
        if (i == 1)
            LMC_TRY(lmc_rep_balance(o, runs, n));
        LMC_TRY(array_chart_emit(o, runs, n, &per_rank[i]));
    }
    return LMC_OK;
}
