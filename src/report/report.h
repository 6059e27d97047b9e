/* report/report.h: what the files of src/report/ share: warnings while
 * reading a log, the chart model (series of points, bars) and the SVG
 * writers that draw it. */
#ifndef LMC_REPORT_INTERNAL_H
#define LMC_REPORT_INTERNAL_H

#include "lmc/report.h"

/* ---------- warnings (warn.c) ---------- */

enum {
    LMC_REP_W_BROKEN,    /* a line that is not JSON */
    LMC_REP_W_SHAPE,     /* JSON, but not a step record */
    LMC_REP_W_TYPE,      /* a field of the wrong type */
    LMC_REP_W_NONFINITE, /* NaN or infinite value */
    LMC_REP_W_RESUME,    /* repeated steps */
    LMC_REP_W_MISSING,   /* fields some records lack */
    LMC_REP_W_KINDS
};

/* The first LMC_REP_WARN_KEEP of each kind are kept in run->warn; the rest
 * are counted and summed up in one line at the end. */
#define LMC_REP_WARN_KEEP 5
typedef struct {
    lmc_report_run *run;
    int count[LMC_REP_W_KINDS];
} lmc_rep_warns;

lmc_status lmc_rep_warn(lmc_rep_warns *w, int kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
lmc_status lmc_rep_warn_summary(lmc_rep_warns *w, const char *file);

/* ---------- reading (read.c, order.c, nonfinite.c) ---------- */

/* Sorts run->pts by step; of records with the same step the last read wins. */
lmc_status lmc_rep_sort_steps(lmc_report_run *run);
/* lmc_json_parse, retried with bare NaN / Infinity / -Infinity (Python's
 * json writes them) quoted as strings when the first try fails. */
lmc_status lmc_rep_parse_json(const char *s, size_t n, const char *what, lmc_json **out);

/* ---------- charts (charts.c builds them, svg.c and bars.c draw) ---------- */

typedef struct {
    char *name; /* legend */
    int colour; /* palette index */
    int dashed;
    int n;
    double *x, *y;      /* y: NAN for a gap (marked when bad[i]) */
    unsigned char *bad; /* the logged value was not a finite number */
    long long *step;
} lmc_rep_series;

typedef struct {
    double x;
    const char *what;
    const char *run;
} lmc_rep_mark;

typedef struct {
    const char *id;    /* data-chart attribute */
    const char *xname; /* "step" or "tokens" */
    const char *xlabel, *ylabel;
    const char *yname; /* in tips: "loss" */
    const char *yunit; /* in tips after the value: " ms", "%" (may be "") */
    int logy;
    int nser;
    lmc_rep_series *ser;
    int nmark; /* resumes and layout changes (step axes only) */
    lmc_rep_mark *mark;
} lmc_rep_chart;

/* Stacked horizontal bars, one row per (run, rank). */
#define LMC_REP_SEGS 3
typedef struct {
    const char *id, *xlabel;
    const char *seg_name[LMC_REP_SEGS];
    int nrow;
    char **label;                /* [nrow] */
    double (*seg)[LMC_REP_SEGS]; /* [nrow] */
    char **tip;                  /* [nrow] */
} lmc_rep_bars;

void lmc_rep_svg_lines(lmc_sb *o, const lmc_rep_chart *c);
void lmc_rep_svg_bars(lmc_sb *o, const lmc_rep_bars *b);
/* The balance picture (balance.c): left out for single-process runs. */
lmc_status lmc_rep_balance(lmc_sb *o, const lmc_report_run *runs, int n);
/* Every chart of the runs, each as <figure> with a heading and its SVG. */
lmc_status lmc_rep_charts(lmc_sb *o, const lmc_report_run *runs, int n);

/* ---------- drawing helpers (axis.c) ---------- */

extern const char *const lmc_rep_palette[10];
void lmc_rep_esc(lmc_sb *o, const char *s); /* text and attribute values */
/* The shortest decimal that reads back as v (tips show exact values). */
void lmc_rep_fmt_exact(char *buf, size_t n, double v);

typedef struct {
    double lo, hi; /* data range, log10 of it when log */
    int log;
    double p0, p1; /* pixels of lo and hi */
} lmc_rep_axis;

/* The range of vals (finite ones; positive ones for log), padded. */
void lmc_rep_axis_fit(lmc_rep_axis *a, double lo, double hi, int log, int pad);
double lmc_rep_axis_px(const lmc_rep_axis *a, double v); /* NAN when v cannot be drawn */
/* Up to max tick values into t; returns how many. Labels into lab[i]. */
int lmc_rep_axis_ticks(const lmc_rep_axis *a, double *t, char (*lab)[24], int max);
/* Grid lines at a's ticks across [from, to] with their labels: for the x
 * axis (is_x) vertical lines from top to bottom, labels under the bottom;
 * for the y axis horizontal lines from left to right, labels left of it. */
void lmc_rep_grid(lmc_sb *o, const lmc_rep_axis *a, int is_x, int from, int to);
/* The x axis's grid over [top, bot] and its label centred below. */
void lmc_rep_x_axis(lmc_sb *o, const lmc_rep_axis *ax, int top, int bot, const char *label);

#endif
