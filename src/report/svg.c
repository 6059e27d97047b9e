/* svg.c: a line chart as inline SVG: series over step or tokens, a legend,
 * ticks, axis labels with units, a dot per logged value carrying its exact
 * value (data-tip, shown on hover by the page's script), non-finite values
 * as rings along the top edge, resumes as dashed verticals. */
#include "report/report.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { W = 640, PX0 = 74, PX1 = W - 18, PLOT_H = 240, BOTTOM = 46, MAX_DOTS = 2000 };

static double text_w(const char *s) { return 6.4 * (double)strlen(s); }

/* Draws the legend (when draw) and returns the plot's top edge. */
static int legend(lmc_sb *o, const lmc_rep_chart *c, int draw)
{
    double x = PX0;
    int y = 16;
    for (int i = 0; i < c->nser; i++) {
        const lmc_rep_series *s = &c->ser[i];
        double w = 26 + text_w(s->name) + 14;
        if (x + w > PX1 && x > PX0)
            x = PX0, y += 16;
        if (draw) {
            lmc_sb_printf(o, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"%s/>",
                          x, y - 4, x + 20, y - 4, lmc_rep_palette[s->colour % 10],
                          s->dashed ? " stroke-dasharray=\"5 3\"" : "");
            lmc_sb_printf(o, "<text x=\"%.1f\" y=\"%d\">", x + 25, y);
            lmc_rep_esc(o, s->name);
            lmc_sb_puts(o, "</text>\n");
        }
        x += w;
    }
    return y + 12;
}

static void fit(const lmc_rep_chart *c, lmc_rep_axis *ax, lmc_rep_axis *ay)
{
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < c->nser; i++)
        for (int k = 0; k < c->ser[i].n; k++) {
            double x = c->ser[i].x[k], y = c->ser[i].y[k];
            x0 = fmin(x0, x), x1 = fmax(x1, x);
            if (isfinite(y) && (!c->logy || y > 0))
                y0 = fmin(y0, y), y1 = fmax(y1, y);
        }
    for (int m = 0; m < c->nmark; m++)
        x0 = fmin(x0, c->mark[m].x), x1 = fmax(x1, c->mark[m].x);
    lmc_rep_axis_fit(ax, x0, x1, 0, 0);
    lmc_rep_axis_fit(ay, y0, y1, c->logy, 1);
}

static void frame(lmc_sb *o, const lmc_rep_chart *c, const lmc_rep_axis *ax, const lmc_rep_axis *ay, int top)
{
    int bot = top + PLOT_H;
    lmc_sb_printf(o, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fcfcfc\" stroke=\"#999\"/>\n", PX0,
                  top, PX1 - PX0, PLOT_H);
    lmc_rep_grid(o, ay, 0, PX0, PX1);
    lmc_rep_x_axis(o, ax, top, bot, c->xlabel);
    lmc_sb_printf(o,
                  "<text x=\"14\" y=\"%d\" text-anchor=\"middle\" class=\"axl\" "
                  "transform=\"rotate(-90 14 %d)\">",
                  top + PLOT_H / 2, top + PLOT_H / 2);
    lmc_rep_esc(o, c->ylabel);
    lmc_sb_puts(o, c->logy ? " (log scale)</text>\n" : "</text>\n");
}

static void marks(lmc_sb *o, const lmc_rep_chart *c, const lmc_rep_axis *ax, int top)
{
    for (int m = 0; m < c->nmark; m++) {
        double x = lmc_rep_axis_px(ax, c->mark[m].x);
        lmc_sb_printf(o, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#777\" stroke-dasharray=\"2 3\"/>",
                      x, top, x, top + PLOT_H);
        lmc_sb_printf(o, "<circle class=\"ev\" cx=\"%.1f\" cy=\"%d\" r=\"3.5\" fill=\"#777\" data-tip=\"", x,
                      top + PLOT_H);
        lmc_rep_esc(o, c->mark[m].run);
        lmc_sb_puts(o, ": ");
        lmc_rep_esc(o, c->mark[m].what);
        lmc_sb_puts(o, "\"/>\n");
    }
}

/* The line, broken where a value is missing or not finite. */
static void path(lmc_sb *o, const lmc_rep_series *s, const lmc_rep_axis *ax, const lmc_rep_axis *ay)
{
    lmc_sb_printf(o, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s d=\"", lmc_rep_palette[s->colour % 10],
                  s->dashed ? " stroke-dasharray=\"5 3\"" : "");
    int pen = 0;
    for (int i = 0; i < s->n; i++) {
        double x = lmc_rep_axis_px(ax, s->x[i]), y = lmc_rep_axis_px(ay, s->y[i]);
        if (!isfinite(y)) {
            pen = 0;
            continue;
        }
        lmc_sb_printf(o, "%c%.1f %.1f", pen ? 'L' : 'M', x, y);
        pen = 1;
    }
    lmc_sb_puts(o, "\"/>\n");
}

static void tip(lmc_sb *o, const lmc_rep_chart *c, const lmc_rep_series *s, int i)
{
    char v[40];
    lmc_sb_puts(o, " data-tip=\"");
    lmc_rep_esc(o, s->name);
    lmc_sb_printf(o, ": step %lld", s->step[i]);
    if (strcmp(c->xname, "step")) {
        lmc_rep_fmt_exact(v, sizeof v, s->x[i]);
        lmc_sb_printf(o, ", %s %s", c->xname, v);
    }
    if (s->bad[i]) {
        lmc_sb_printf(o, ": %s is not a finite number (NaN or infinite)\"", c->yname);
        return;
    }
    lmc_rep_fmt_exact(v, sizeof v, s->y[i]);
    lmc_sb_printf(o, ": %s %s", c->yname, v);
    lmc_rep_esc(o, c->yunit);
    lmc_sb_putc(o, '"');
}

/* A dot per value (every k-th past MAX_DOTS: the line keeps them all), a
 * ring on the top edge per non-finite one. */
static void dots(lmc_sb *o, const lmc_rep_chart *c, int si, const lmc_rep_axis *ax, const lmc_rep_axis *ay, int top)
{
    const lmc_rep_series *s = &c->ser[si];
    const char *col = lmc_rep_palette[s->colour % 10];
    int every = s->n > MAX_DOTS ? (s->n + MAX_DOTS - 1) / MAX_DOTS : 1;
    for (int i = 0; i < s->n; i++) {
        double x = lmc_rep_axis_px(ax, s->x[i]), y = lmc_rep_axis_px(ay, s->y[i]);
        if (s->bad[i]) {
            lmc_sb_printf(o, "<line class=\"nanl\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>", x, top, x,
                          top + PLOT_H);
            lmc_sb_printf(o, "<circle class=\"pt nan\" data-s=\"%d\" cx=\"%.1f\" cy=\"%d\" r=\"4\" stroke=\"%s\"", si,
                          x, top + 6, col);
        } else if (isfinite(y) && (i % every == 0 || i == s->n - 1)) {
            lmc_sb_printf(o, "<circle class=\"pt\" data-s=\"%d\" cx=\"%.1f\" cy=\"%.1f\" r=\"%s\" fill=\"%s\"", si, x,
                          y, s->dashed ? "3" : "2", col);
        } else {
            continue;
        }
        tip(o, c, s, i);
        lmc_sb_puts(o, "/>\n");
    }
}

void lmc_rep_svg_lines(lmc_sb *o, const lmc_rep_chart *c)
{
    int top = legend(o, c, 0), h = top + PLOT_H + BOTTOM;
    lmc_rep_axis ax = {.p0 = PX0, .p1 = PX1}, ay = {.p0 = top + PLOT_H, .p1 = top};
    fit(c, &ax, &ay);
    lmc_sb_printf(o,
                  "<svg class=\"chart\" data-chart=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
                  "width=\"%d\" height=\"%d\" aria-label=\"",
                  c->id, W, h, W, h);
    lmc_rep_esc(o, c->ylabel);
    lmc_sb_puts(o, " by ");
    lmc_rep_esc(o, c->xname);
    lmc_sb_puts(o, "\">\n");
    legend(o, c, 1);
    frame(o, c, &ax, &ay, top);
    marks(o, c, &ax, top);
    for (int i = 0; i < c->nser; i++)
        path(o, &c->ser[i], &ax, &ay);
    for (int i = 0; i < c->nser; i++)
        dots(o, c, i, &ax, &ay, top);
    lmc_sb_puts(o, "</svg>\n");
}
