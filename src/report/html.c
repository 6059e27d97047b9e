/* html.c: the report page: one self-contained file (inline CSS, SVG and
 * a few lines of script for the hover tips; nothing fetched), with a
 * table of the runs, the charts and what was odd in the logs. */
#include "report/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const char css[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:20px;color:#222;background:#fff}\n"
    "main{display:flex;flex-wrap:wrap;gap:14px}\n"
    "figure{margin:0;padding:8px;border:1px solid #ddd;border-radius:6px}\n"
    "figure h3{margin:0 0 4px;font-size:14px}\n"
    "svg text{font:11px sans-serif;fill:#333}svg .axl{font-size:12px;fill:#111}\n"
    "circle.nan{fill:#fff;stroke-width:2}line.nanl{stroke:#e15759;stroke-opacity:.3}\n"
    ".hi{stroke:#000;stroke-width:2}\n"
    "#tip{position:absolute;display:none;background:#222;color:#fff;padding:4px 7px;border-radius:4px;"
    "font-size:12px;pointer-events:none;white-space:nowrap;z-index:9}\n"
    "#logy:checked~main .lin{display:none}#logy:not(:checked)~main .log{display:none}\n"
    "table{border-collapse:collapse;margin-bottom:10px}td,th{padding:2px 10px;border-bottom:1px solid #eee;"
    "text-align:left}\n"
    ".note{color:#666;font-size:12px}\n";

/* Hover: the dot nearest the pointer (or the bar under it) shows its tip.
 * data-tips on the body says the script ran to its end (tests look). */
static const char js[] =
    "(function(){var tip=document.getElementById('tip');\n"
    "document.querySelectorAll('svg.chart').forEach(function(svg){\n"
    " var dots=[].slice.call(svg.querySelectorAll('circle[data-tip]')),hi=null;\n"
    " function show(el,e){if(hi&&hi!==el)hi.classList.remove('hi');hi=el;\n"
    "  if(!el){tip.style.display='none';return;}el.classList.add('hi');\n"
    "  tip.textContent=el.getAttribute('data-tip');tip.style.display='block';\n"
    "  tip.style.left=(e.pageX+14)+'px';tip.style.top=(e.pageY+14)+'px';}\n"
    " svg.addEventListener('mousemove',function(e){\n"
    "  if(e.target.classList.contains('bar')){show(e.target,e);return;}\n"
    "  var m=svg.getScreenCTM();if(!m)return;var p=svg.createSVGPoint();p.x=e.clientX;p.y=e.clientY;\n"
    "  p=p.matrixTransform(m.inverse());var best=null,bd=400;\n"
    "  dots.forEach(function(c){var dx=c.cx.baseVal.value-p.x,dy=c.cy.baseVal.value-p.y,d=dx*dx+dy*dy;\n"
    "   if(d<bd){bd=d;best=c;}});show(best,e);});\n"
    " svg.addEventListener('mouseleave',function(e){show(null,e);});});\n"
    " document.body.setAttribute('data-tips','on');})();\n";

static double best_val(const lmc_report_run *r)
{
    double v = NAN;
    for (int i = 0; i < r->n; i++) {
        double x = r->pts[i].v[LMC_REP_VAL_LOSS];
        if (isfinite(x) && !(x >= v))
            v = x;
    }
    return v;
}

/* A number for the table: six digits (the charts' tips hold every one). */
static void cell_num(lmc_sb *o, double v, int bad)
{
    if (bad)
        lmc_sb_puts(o, "<td>not finite</td>");
    else if (isfinite(v))
        lmc_sb_printf(o, "<td>%.6g</td>", v);
    else
        lmc_sb_puts(o, "<td>&ndash;</td>");
}

static void run_row(lmc_sb *o, const lmc_report_run *r, int i)
{
    lmc_sb_printf(o, "<tr><td><span style=\"color:%s\">&#9632;</span> ", lmc_rep_palette[i % 10]);
    lmc_rep_esc(o, r->name);
    lmc_sb_printf(o, "</td><td>%d</td>", r->n);
    const lmc_report_point *last = r->n ? &r->pts[r->n - 1] : NULL;
    lmc_sb_printf(o, "<td>%lld</td>", last ? last->step : 0);
    double tokens = last ? last->v[LMC_REP_TOKENS] : NAN;
    if (isfinite(tokens))
        lmc_sb_printf(o, "<td>%.0f</td>", tokens);
    else
        lmc_sb_puts(o, "<td>&ndash;</td>");
    cell_num(o, last ? last->v[LMC_REP_LOSS] : NAN, last && last->bad >> LMC_REP_LOSS & 1);
    cell_num(o, best_val(r), 0);
    lmc_sb_printf(o, "<td>%d</td><td>%d</td></tr>\n", r->nev, r->nwarn);
}

static void summary(lmc_sb *o, const lmc_report_run *runs, int n)
{
    lmc_sb_puts(o, "<table><tr><th>log</th><th>steps logged</th><th>last step</th><th>tokens</th>"
                   "<th>last loss</th><th>best validation loss</th><th>resumes, layout changes</th>"
                   "<th>warnings</th></tr>\n");
    for (int i = 0; i < n; i++)
        run_row(o, &runs[i], i);
    lmc_sb_puts(o, "</table>\n");
}

static void warnings(lmc_sb *o, const lmc_report_run *runs, int n)
{
    int total = 0;
    for (int i = 0; i < n; i++)
        total += runs[i].nwarn;
    if (!total)
        return;
    lmc_sb_printf(o, "<details><summary>%d warning%s while reading the logs</summary><ul>\n", total,
                  total == 1 ? "" : "s");
    for (int i = 0; i < n; i++)
        for (int k = 0; k < runs[i].nwarn; k++) {
            lmc_sb_puts(o, "<li>");
            lmc_rep_esc(o, runs[i].warn[k]);
            lmc_sb_puts(o, "</li>\n");
        }
    lmc_sb_puts(o, "</ul></details>\n");
}

lmc_status lmc_report_html(const lmc_report_run *runs, int n, lmc_sb *o)
{
    char when[64] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    lmc_sb_printf(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>lmc report: ");
    for (int i = 0; i < n; i++) {
        lmc_sb_puts(o, i ? ", " : "");
        lmc_rep_esc(o, runs[i].name);
    }
    lmc_sb_printf(o, "</title>\n<style>\n%s</style></head><body>\n<h1>Training report</h1>\n", css);
    lmc_sb_printf(o,
                  "<p class=\"note\">Written by lmc at %s from the logs below (lmc train --report rewrites it at "
                  "every evaluation: reload to update). Hover a chart for exact values; rings on a chart's top "
                  "edge mark values that were not finite; dashed verticals mark resumes.</p>\n",
                  when);
    summary(o, runs, n);
    warnings(o, runs, n);
    lmc_sb_puts(o, "<input type=\"checkbox\" id=\"logy\"><label for=\"logy\"> loss on a log scale</label>\n<main>\n");
    LMC_TRY(lmc_rep_charts(o, runs, n));
    lmc_sb_printf(o, "</main>\n<div id=\"tip\"></div>\n<script>\n%s</script>\n</body></html>\n", js);
    return o->oom ? lmc_err(LMC_ENOMEM, "out of memory writing the report") : LMC_OK;
}

lmc_status lmc_report_save(const char *path, const lmc_report_run *runs, int n)
{
    lmc_sb o;
    lmc_sb_init(&o);
    lmc_status st = lmc_report_html(runs, n, &o);
    if (st == LMC_OK)
        st = lmc_mkdir_parent(path);
    if (st == LMC_OK)
        st = lmc_write_file_atomic(path, o.s, o.len);
    lmc_sb_free(&o);
    return st;
}

lmc_status lmc_report_update(const char *path, const char *log)
{
    lmc_report_run run;
    LMC_TRY(lmc_report_read(log, &run));
    lmc_status st = lmc_report_save(path, &run, 1);
    lmc_report_run_free(&run);
    if (st != LMC_OK)
        return lmc_err_wrap(st, "--report %s", path);
    return LMC_OK;
}
