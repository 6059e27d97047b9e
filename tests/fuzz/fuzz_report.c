/* fuzz_report.c: libFuzzer target for the training-log reader of `lmc
 * report` (src/report/read.c, order.c, nonfinite.c) and the page drawn
 * from what it reads (charts.c, svg.c, bars.c, html.c). On any bytes:
 *  - reading succeeds or refuses with LMC_EFORMAT and a message naming the
 *    file; it never crashes, leaks or reads out of bounds;
 *  - a run read holds its steps in increasing order, one point per step;
 *    a value is a number exactly when its field is present and finite;
 *  - the page is drawn without error, with as many </svg> as <svg and
 *    the page's one script (nothing from the log becomes markup).
 * Seeds: logs as `lmc train --log` writes them (one process, ranks and
 * stages, validation), resumed, with NaN, cut short. */
#define _GNU_SOURCE /* memmem */
#include "fuzz_common.h"
#include "lmc/report.h"

#include <math.h>
#include <string.h>

static void seed_log(const char *name, int lines, int ranks, int stages, int resume_at, int nan_at, int cut)
{
    lmc_sb o;
    lmc_sb_init(&o);
    for (int i = 0, step = 1; i < lines; i++, step++) {
        if (i == resume_at)
            step = 2;
        double loss = step == nan_at ? NAN : 4.0 / (1 + 0.1 * step);
        lmc_sb_printf(&o, "{\"step\":%d,\"loss\":", step);
        lmc_sb_json_num(&o, loss);
        lmc_sb_puts(&o, ",\"lr\":");
        lmc_sb_json_num(&o, 6e-4 * step / (step + 3.0));
        lmc_sb_printf(&o, ",\"grad_norm\":%.4f,\"tokens_per_s\":%.2f,\"mfu\":%.5f,\"ms\":%.3f,\"tokens\":%d", 2.5,
                      9e4 + step, 0.031, 5.2, 32 * step);
        lmc_sb_printf(&o, ",\"comm_ms\":%.3f,\"comm_busy_ms\":%.3f", 0.1 * ranks, 0.05);
        if (ranks > 1)
            lmc_sb_puts(&o, ",\"mb\":[2,1],\"compute_ms\":[3.1,2.2],\"idle_ms\":[0.4,1.5]");
        lmc_sb_puts(&o, ranks > 1 ? ",\"rss_mb\":[18.5,18.3]" : ",\"rss_mb\":[7.8]");
        if (stages > 1)
            lmc_sb_puts(&o, ",\"pp_bubble\":[0.0761,0.1045]");
        if (step % 3 == 0)
            lmc_sb_puts(&o, ",\"val_loss\":3.9,\"val_bpb\":1.25");
        lmc_sb_puts(&o, "}\n");
    }
    fuzz_seed(name, -1, o.s, cut ? o.len - cut : o.len);
    lmc_sb_free(&o);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (fuzz_seeding()) {
        seed_log("seed-one-process", 6, 1, 1, -1, -1, 0);
        seed_log("seed-ranks-stages", 4, 2, 2, -1, -1, 0);
        seed_log("seed-resumed-nan-cut", 7, 1, 1, 4, 3, 9);
        static const char py[] = "{\"step\": 1, \"loss\": NaN, \"lr\": Infinity, \"grad_norm\": -Infinity}\n"
                                 "{\"step\": 2, \"loss\": \"NaN\", \"note\": \"NaN inside\"}\n";
        fuzz_seed("seed-python-nonfinite", -1, py, sizeof py - 1);
    }
    return 0;
}

static void check_run(const lmc_report_run *r)
{
    FUZZ_ASSERT(r->name && !strcmp(r->name, "fuzz"));
    for (int i = 0; i < r->n; i++) {
        const lmc_report_point *p = &r->pts[i];
        FUZZ_ASSERT(i == 0 || p->step > r->pts[i - 1].step);
        FUZZ_ASSERT((p->bad & ~p->has) == 0);
        for (int f = 0; f < LMC_REP_NFIELDS; f++)
            FUZZ_ASSERT(isnan(p->v[f]) || ((p->has >> f & 1) && !(p->bad >> f & 1)));
        for (int a = 0; a < LMC_REP_NARRAYS; a++)
            FUZZ_ASSERT(p->arr[a].n >= 0 && (p->arr[a].n == 0) == (p->arr[a].v == NULL));
    }
    for (int k = 0; k < r->nwarn; k++)
        FUZZ_ASSERT(r->warn[k] && r->warn[k][0]);
}

static int count(const char *s, size_t n, const char *what)
{
    int c = 0;
    size_t w = strlen(what);
    for (const char *p = s, *end = s + n; (p = memmem(p, (size_t)(end - p), what, w)); p += w)
        c++;
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lmc_report_run run;
    lmc_status s = lmc_report_parse((const char *)data, size, "fuzz.jsonl", &run);
    if (s != LMC_OK) {
        FUZZ_ASSERT(s == LMC_EFORMAT && !strncmp(lmc_errmsg(), "fuzz.jsonl", 10) && run.n == 0 && !run.pts);
        return 0;
    }
    check_run(&run);
    lmc_sb page;
    lmc_sb_init(&page);
    FUZZ_ASSERT(lmc_report_html(&run, 1, &page) == LMC_OK);
    FUZZ_ASSERT(count(page.s, page.len, "<svg") == count(page.s, page.len, "</svg>"));
    FUZZ_ASSERT(count(page.s, page.len, "<script") == 1);
    lmc_sb_free(&page);
    lmc_report_run_free(&run);
    return 0;
}
