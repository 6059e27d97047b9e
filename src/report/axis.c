/* axis.c: what every chart of the report needs: a value-to-pixel scale
 * (linear or log10), round tick values with short labels, colours, and
 * text safe inside SVG and HTML. */
#include "report/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Tableau 10: distinct, readable on white, kind to the colour-blind */
const char *const lmc_rep_palette[10] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
                                         "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

void lmc_rep_esc(lmc_sb *o, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': lmc_sb_puts(o, "&lt;"); break;
        case '>': lmc_sb_puts(o, "&gt;"); break;
        case '&': lmc_sb_puts(o, "&amp;"); break;
        case '"': lmc_sb_puts(o, "&quot;"); break;
        case '\'': lmc_sb_puts(o, "&#39;"); break;
        default: lmc_sb_putc(o, *s);
        }
    }
}

void lmc_rep_fmt_exact(char *buf, size_t n, double v)
{
    if (!isfinite(v)) {
        snprintf(buf, n, "%s", isnan(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
        return;
    }
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* 12345678 -> "12.3M": tokens and throughput read better with a suffix. */
static void fmt_count(char *buf, size_t n, double v)
{
    static const char *const suf[] = {"", "k", "M", "B", "T", "P"};
    int i = 0;
    while (fabs(v) >= 1000 && i < 5)
        v /= 1000, i++;
    snprintf(buf, n, "%.4g%s", v, suf[i]);
}

static void fmt_tick(char *buf, size_t n, double v, double step)
{
    if (fabs(v) >= 1e4 || step >= 1000) {
        fmt_count(buf, n, v);
        return;
    }
    int dec = step >= 1 ? 0 : (int)-floor(log10(step) + 1e-9);
    if (dec > 5)
        snprintf(buf, n, "%.3g", v);
    else
        snprintf(buf, n, "%.*f", dec, v);
}

void lmc_rep_axis_fit(lmc_rep_axis *a, double lo, double hi, int log, int pad)
{
    a->log = log;
    if (log && lo > 0 && hi > 0)
        lo = log10(lo), hi = log10(hi);
    if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi))
        lo = 0, hi = 1; /* nothing to scale: an empty frame */
    if (hi - lo < 1e-12 * (fabs(lo) + fabs(hi)) || hi == lo) {
        double d = log ? 0.5 : lo != 0 ? fabs(lo) * 0.1 : 1;
        lo -= d, hi += d;
    }
    if (pad) {
        double d = (hi - lo) * 0.05;
        int nonneg = !log && lo >= 0;
        lo -= d, hi += d;
        if (nonneg && lo < 0)
            lo = 0;
    }
    a->lo = lo, a->hi = hi;
}

double lmc_rep_axis_px(const lmc_rep_axis *a, double v)
{
    if (a->log)
        v = v > 0 ? log10(v) : NAN;
    if (!isfinite(v))
        return NAN;
    return a->p0 + (v - a->lo) / (a->hi - a->lo) * (a->p1 - a->p0);
}

/* A round step (1, 2 or 5 times a power of ten) giving about n ticks. */
static double nice_step(double span, int n)
{
    double raw = span / n, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

static int linear_ticks(const lmc_rep_axis *a, double *t, char (*lab)[24], int max)
{
    double st = nice_step(a->hi - a->lo, 5);
    int k = 0;
    for (double v = ceil(a->lo / st) * st; v <= a->hi + st * 1e-9 && k < max; v += st) {
        if (fabs(v) < st * 1e-9)
            v = 0;
        t[k] = v;
        fmt_tick(lab[k++], 24, v, st);
    }
    return k;
}

/* 1, 2, 5 per decade; every mantissa over a short span; decades only (or
 * every few) over a long one. */
static int log_ticks_with(const lmc_rep_axis *a, const int *mant, int nm, int every, double *t, char (*lab)[24],
                          int max)
{
    int k = 0;
    for (int d = (int)floor(a->lo); d <= (int)ceil(a->hi) && k < max; d++) {
        if (d % every)
            continue;
        for (int i = 0; i < nm && k < max; i++) {
            double v = mant[i] * pow(10, d), l = log10(v);
            if (l < a->lo - 1e-9 || l > a->hi + 1e-9)
                continue;
            t[k] = v;
            if (fabs(v) >= 1e4)
                fmt_count(lab[k++], 24, v);
            else
                snprintf(lab[k++], 24, "%g", v);
        }
    }
    return k;
}

static int log_ticks(const lmc_rep_axis *a, double *t, char (*lab)[24], int max)
{
    static const int all[] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, some[] = {1, 2, 5}, one[] = {1};
    double span = a->hi - a->lo;
    if (span < 0.6) {
        int k = log_ticks_with(a, all, 9, 1, t, lab, max);
        if (k >= 3)
            return k;
        /* a narrow span: round values in between, placed on the log scale */
        lmc_rep_axis lin = {pow(10, a->lo), pow(10, a->hi), 0, 0, 0};
        return linear_ticks(&lin, t, lab, max);
    }
    if (span < 2.5)
        return log_ticks_with(a, some, 3, 1, t, lab, max);
    int every = (int)ceil(span / 8);
    return log_ticks_with(a, one, 1, every, t, lab, max);
}

int lmc_rep_axis_ticks(const lmc_rep_axis *a, double *t, char (*lab)[24], int max)
{
    return a->log ? log_ticks(a, t, lab, max) : linear_ticks(a, t, lab, max);
}

void lmc_rep_grid(lmc_sb *o, const lmc_rep_axis *a, int is_x, int from, int to)
{
    double t[64];
    char lab[64][24];
    int n = lmc_rep_axis_ticks(a, t, lab, 64);
    for (int i = 0; i < n; i++) {
        double p = lmc_rep_axis_px(a, t[i]);
        if (is_x)
            lmc_sb_printf(o,
                          "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ebebeb\"/><text x=\"%.1f\" "
                          "y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                          p, from, p, to, p, to + 15, lab[i]);
        else
            lmc_sb_printf(o,
                          "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ebebeb\"/><text x=\"%d\" "
                          "y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                          from, p, to, p, from - 5, p + 4, lab[i]);
    }
}

void lmc_rep_x_axis(lmc_sb *o, const lmc_rep_axis *ax, int top, int bot, const char *label)
{
    lmc_rep_grid(o, ax, 1, top, bot);
    lmc_sb_printf(o, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" class=\"axl\">", (ax->p0 + ax->p1) / 2,
                  bot + 36);
    lmc_rep_esc(o, label);
    lmc_sb_puts(o, "</text>\n");
}
