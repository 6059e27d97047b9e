/* bars.c: the balance picture: one stacked bar per rank (and run) of the
 * mean time per step spent computing, waiting for the others, and on the
 * rest of the step. A slow rank shows as a long compute bar, the ranks
 * waiting for it as long waiting bars. */
#include "report/report.h"

#include <math.h>
#include <string.h>

enum { W = 640, X1 = W - 18, ROW = 20, GAP = 6, TOP = 30, BOTTOM = 46 };
static const char *const seg_colour[LMC_REP_SEGS] = {"#4e79a7", "#e15759", "#bab0ac"};

static int label_width(const lmc_rep_bars *b)
{
    size_t w = 0;
    for (int i = 0; i < b->nrow; i++)
        if (strlen(b->label[i]) > w)
            w = strlen(b->label[i]);
    double px = 6.4 * (double)w + 12;
    return px < 60 ? 60 : px > 240 ? 240 : (int)px;
}

static void seg_legend(lmc_sb *o, const lmc_rep_bars *b, int x0)
{
    double x = x0;
    for (int k = 0; k < LMC_REP_SEGS; k++) {
        lmc_sb_printf(o, "<rect x=\"%.1f\" y=\"8\" width=\"12\" height=\"10\" fill=\"%s\"/><text x=\"%.1f\" y=\"17\">",
                      x, seg_colour[k], x + 16);
        lmc_rep_esc(o, b->seg_name[k]);
        lmc_sb_puts(o, "</text>\n");
        x += 16 + 6.4 * (double)strlen(b->seg_name[k]) + 18;
    }
}

static void row(lmc_sb *o, const lmc_rep_bars *b, int i, const lmc_rep_axis *ax, int x0)
{
    int y = TOP + GAP + i * (ROW + GAP);
    lmc_sb_printf(o, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", x0 - 6, y + ROW / 2 + 4);
    lmc_rep_esc(o, b->label[i]);
    lmc_sb_puts(o, "</text>\n");
    double at = 0;
    for (int k = 0; k < LMC_REP_SEGS; k++) {
        double v = b->seg[i][k] > 0 ? b->seg[i][k] : 0;
        double xa = lmc_rep_axis_px(ax, at), xb = lmc_rep_axis_px(ax, at + v);
        at += v;
        if (!(xb > xa))
            continue;
        lmc_sb_printf(o, "<rect class=\"bar\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\" data-tip=\"",
                      xa, y, xb - xa, ROW, seg_colour[k]);
        lmc_rep_esc(o, b->tip[i]);
        lmc_sb_puts(o, "\"/>\n");
    }
}

void lmc_rep_svg_bars(lmc_sb *o, const lmc_rep_bars *b)
{
    int x0 = label_width(b), bot = TOP + GAP + b->nrow * (ROW + GAP), h = bot + BOTTOM;
    double hi = 0;
    for (int i = 0; i < b->nrow; i++) {
        double sum = 0;
        for (int k = 0; k < LMC_REP_SEGS; k++)
            sum += b->seg[i][k] > 0 ? b->seg[i][k] : 0;
        hi = fmax(hi, sum);
    }
    lmc_rep_axis ax = {.p0 = x0, .p1 = X1};
    lmc_rep_axis_fit(&ax, 0, hi, 0, 1);
    lmc_sb_printf(o,
                  "<svg class=\"chart\" data-chart=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
                  "width=\"%d\" height=\"%d\" aria-label=\"time per step by rank\">\n",
                  b->id, W, h, W, h);
    seg_legend(o, b, x0);
    lmc_sb_printf(o, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fcfcfc\" stroke=\"#999\"/>\n", x0, TOP,
                  X1 - x0, bot - TOP);
    lmc_rep_x_axis(o, &ax, TOP, bot, b->xlabel);
    for (int i = 0; i < b->nrow; i++)
        row(o, b, i, &ax, x0);
    lmc_sb_puts(o, "</svg>\n");
}
