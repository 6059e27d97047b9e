/* svg.c: the timeline as a plot, because a line is quicker to read than a
 * table: tokens done (left axis), chips on hand (right axis, steps),
 * re-plans as dotted verticals, the target and the finish date. Plain SVG
 * 1.1 that browsers and editors open; written atomically. */
#include "lmc/plan.h"

#include <math.h>
#include <string.h>

enum { W = 900, H = 480, X0 = 90, X1 = 800, Y0 = 70, Y1 = 400 };

typedef struct {
    double d0, d1, tmax, cmax;
} scale;

static double sx(const scale *s, double day) { return X0 + (day - s->d0) / (s->d1 - s->d0) * (X1 - X0); }
static double sy_tok(const scale *s, double t) { return Y1 - t / s->tmax * (Y1 - Y0); }
static double sy_chip(const scale *s, double c) { return Y1 - c / s->cmax * (Y1 - Y0); }

static void text_esc(lmc_sb *o, const char *t)
{
    for (; *t; t++) {
        if (*t == '<')
            lmc_sb_puts(o, "&lt;");
        else if (*t == '>')
            lmc_sb_puts(o, "&gt;");
        else if (*t == '&')
            lmc_sb_puts(o, "&amp;");
        else if (*t == '"')
            lmc_sb_puts(o, "&quot;");
        else
            lmc_sb_putc(o, *t);
    }
}

static void label(lmc_sb *o, double x, double y, const char *anchor, const char *extra, const char *t)
{
    lmc_sb_printf(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" %s>", x, y, anchor, extra ? extra : "");
    text_esc(o, t);
    lmc_sb_puts(o, "</text>\n");
}

static void fmt_count(double v, char *buf, size_t n)
{
    const char *suf[] = {"", "k", "M", "B", "T", "P"};
    int i = 0;
    while (fabs(v) >= 1000 && i < 5) {
        v /= 1000;
        i++;
    }
    snprintf(buf, n, v == floor(v) ? "%.0f%s" : "%.3g%s", v, suf[i]);
}

/* A round tick step (1, 2 or 5 times a power of ten) giving about n ticks. */
static double nice_step(double span, int n)
{
    double raw = span / n, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

static void axes(lmc_sb *o, const scale *s)
{
    lmc_sb_printf(o, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fbfbfb\" stroke=\"#888\"/>\n", X0,
                  Y0, X1 - X0, Y1 - Y0);
    char buf[64];
    double st = nice_step(s->tmax, 5), sc = nice_step(s->cmax, 5);
    for (double t = 0; t <= s->tmax * 1.0001; t += st) {
        double y = sy_tok(s, t);
        fmt_count(t, buf, sizeof buf);
        lmc_sb_printf(o, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", X0, y, X1, y);
        label(o, X0 - 6, y + 4, "end", NULL, buf);
    }
    for (double c = 0; c <= s->cmax * 1.0001; c += sc) {
        fmt_count(c, buf, sizeof buf);
        label(o, X1 + 6, sy_chip(s, c) + 4, "start", "fill=\"#a0522d\"", buf);
    }
    for (int i = 0; i <= 5; i++) {
        double d = s->d0 + (s->d1 - s->d0) * i / 5, x = sx(s, d);
        char date[16];
        lmc_plan_format_date(d, date);
        lmc_sb_printf(o, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#888\"/>\n", x, Y1, x, Y1 + 5);
        label(o, x, Y1 + 20, "middle", NULL, date);
    }
    label(o, 20, (Y0 + Y1) / 2.0, "middle", "transform=\"rotate(-90 20 235)\"", "tokens trained");
    label(o, W - 14, (Y0 + Y1) / 2.0, "middle", "fill=\"#a0522d\" transform=\"rotate(90 886 235)\"",
          "chips on hand");
}

static void chips_line(lmc_sb *o, const lmc_plan_timeline *tl, const scale *s)
{
    lmc_sb_puts(o, "<polyline fill=\"none\" stroke=\"#a0522d\" stroke-width=\"1.5\" stroke-dasharray=\"5,3\" points=\"");
    for (int i = 0; i < tl->n; i++) {
        double x = sx(s, tl->seg[i].day), y = sy_chip(s, (double)tl->seg[i].chips);
        if (i > 0)
            lmc_sb_printf(o, "%.1f,%.1f ", x, sy_chip(s, (double)tl->seg[i - 1].chips));
        lmc_sb_printf(o, "%.1f,%.1f ", x, y);
    }
    lmc_sb_printf(o, "%.1f,%.1f\"/>\n", sx(s, s->d1), sy_chip(s, (double)tl->seg[tl->n - 1].chips));
}

static void tokens_line(lmc_sb *o, const lmc_plan_timeline *tl, const scale *s)
{
    lmc_sb_puts(o, "<polyline fill=\"none\" stroke=\"#1f5fa8\" stroke-width=\"2.5\" points=\"");
    for (int i = 0; i < tl->n; i++) {
        const lmc_plan_segment *g = &tl->seg[i];
        double restart = i > 0 && tl->seg[i - 1].tokens_per_s > 0 ? tl->replan_hours / 24 : 0;
        lmc_sb_printf(o, "%.1f,%.1f ", sx(s, g->day), sy_tok(s, g->tokens_at_start));
        if (restart > 0 && g->tokens_per_s > 0)
            lmc_sb_printf(o, "%.1f,%.1f ", sx(s, g->day + restart), sy_tok(s, g->tokens_at_start));
    }
    lmc_sb_printf(o, "%.1f,%.1f\"/>\n", sx(s, tl->finish_day), sy_tok(s, tl->tokens));
}

static void events(lmc_sb *o, const lmc_plan_timeline *tl, const scale *s)
{
    for (int i = 1; i < tl->n; i++) {
        double x = sx(s, tl->seg[i].day);
        char buf[96], c[32];
        fmt_count((double)tl->seg[i].chips, c, sizeof c);
        snprintf(buf, sizeof buf, "re-plan: %s chips", c);
        lmc_sb_printf(o, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#777\" stroke-dasharray=\"2,3\"/>\n",
                      x, Y0, x, Y1);
        label(o, x + 3, Y0 + 14 + 14 * ((i - 1) % 3), "start", "font-size=\"11\" fill=\"#555\"", buf);
    }
    double ty = sy_tok(s, tl->tokens);
    char buf[96], t[32], date[16];
    fmt_count(tl->tokens, t, sizeof t);
    lmc_sb_printf(o, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#2a7d2a\" stroke-dasharray=\"6,4\"/>\n",
                  X0, ty, X1, ty);
    snprintf(buf, sizeof buf, "target %s tokens", t);
    label(o, X0 + 6, ty - 6, "start", "fill=\"#2a7d2a\"", buf);
    double fx = sx(s, tl->finish_day);
    lmc_plan_format_date(tl->finish_day, date);
    lmc_sb_printf(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"#1f5fa8\"/>\n", fx, ty);
    snprintf(buf, sizeof buf, "done %s (%.0f h)", date, tl->hours);
    label(o, fx - 8, ty + 18, "end", "font-weight=\"bold\"", buf);
}

void lmc_plan_svg(const lmc_plan_timeline *tl, const char *title, lmc_sb *o)
{
    scale s = {tl->start_day, tl->finish_day, tl->tokens * 1.08, 1};
    double span = s.d1 - s.d0;
    if (span < 1.0 / 24)
        span = 1.0 / 24;
    s.d1 = s.d0 + span * 1.06;
    for (int i = 0; i < tl->n; i++)
        s.cmax = fmax(s.cmax, (double)tl->seg[i].chips * 1.15);
    lmc_sb_printf(o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                     "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" "
                     "fill=\"white\"/>\n",
                  W, H, W, H);
    label(o, W / 2.0, 30, "middle", "font-size=\"16\" font-weight=\"bold\"", title ? title : "lmc plan");
    label(o, W / 2.0, 50, "middle", "fill=\"#555\"",
          "blue: tokens trained; dashed brown: chips on hand; dotted: re-plans as chips arrive");
    axes(o, &s);
    chips_line(o, tl, &s);
    tokens_line(o, tl, &s);
    events(o, tl, &s);
    lmc_sb_puts(o, "</svg>\n");
}

lmc_status lmc_plan_svg_write(const lmc_plan_timeline *tl, const char *title, const char *path)
{
    if (tl->n < 1 || tl->finish_day < 0)
        return lmc_err(LMC_EINVAL, "--plot %s: no timeline to draw", path);
    lmc_sb b;
    lmc_sb_init(&b);
    lmc_plan_svg(tl, title, &b);
    lmc_status s = b.oom ? lmc_err(LMC_ENOMEM, "--plot %s: out of memory", path)
                         : lmc_write_file_atomic(path, b.s, b.len);
    lmc_sb_free(&b);
    return s;
}
