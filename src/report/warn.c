/* warn.c: what was odd in a log, for the user to see (lmc report prints
 * run->warn on stderr). A log with a million NaN losses must not print a
 * million lines: the first few of each kind are kept, the rest counted. */
#include "report/report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static lmc_status keep(lmc_report_run *r, const char *msg)
{
    char **w = realloc(r->warn, (size_t)(r->nwarn + 1) * sizeof *w);
    if (!w)
        return lmc_err(LMC_ENOMEM, "out of memory keeping a warning");
    r->warn = w;
    w[r->nwarn] = lmc_strdup(msg);
    if (!w[r->nwarn])
        return lmc_err(LMC_ENOMEM, "out of memory keeping a warning");
    r->nwarn++;
    return LMC_OK;
}

lmc_status lmc_rep_warn(lmc_rep_warns *w, int kind, const char *fmt, ...)
{
    if (++w->count[kind] > LMC_REP_WARN_KEEP)
        return LMC_OK;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return keep(w->run, msg);
}

lmc_status lmc_rep_warn_summary(lmc_rep_warns *w, const char *file)
{
    static const char *const kind_name[LMC_REP_W_KINDS] = {
        "lines that are not JSON",  "records that are not steps",
        "fields of the wrong type", "non-finite values",
        "repeated steps",           "missing fields",
    };
    for (int k = 0; k < LMC_REP_W_KINDS; k++)
        if (w->count[k] > LMC_REP_WARN_KEEP) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s: %d more warnings about %s", file, w->count[k] - LMC_REP_WARN_KEEP,
                     kind_name[k]);
            LMC_TRY(keep(w->run, msg));
        }
    return LMC_OK;
}
