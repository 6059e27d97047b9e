/* files.c: lmc report: the logs read (their oddities as warnings), drawn
 * as one page. */
#include "lmc/report.h"

#include <stdio.h>
#include <stdlib.h>

static lmc_status read_all(const char *const *logs, int n, FILE *log, lmc_report_run *runs, long *steps)
{
    *steps = 0;
    for (int i = 0; i < n; i++) {
        LMC_TRY(lmc_report_read(logs[i], &runs[i]));
        for (int k = 0; k < runs[i].nwarn; k++)
            fprintf(log, "lmc report: warning: %s\n", runs[i].warn[k]);
        *steps += runs[i].n;
    }
    if (!*steps)
        return lmc_err(LMC_EFORMAT, "no step records in %s%s", logs[0], n > 1 ? " or the other logs" : "");
    return LMC_OK;
}

lmc_status lmc_report_run_files(const char *const *logs, int n, const char *out, FILE *log)
{
    if (!n)
        return lmc_err(LMC_EINVAL, "no log given (usage: lmc report LOG.jsonl [LOG2.jsonl ...] --out FILE.html)");
    lmc_report_run *runs = calloc((size_t)n, sizeof *runs);
    if (!runs)
        return lmc_err(LMC_ENOMEM, "out of memory");
    long steps;
    lmc_status s = read_all(logs, n, log, runs, &steps);
    if (s == LMC_OK)
        s = lmc_report_save(out, runs, n);
    if (s == LMC_OK)
        fprintf(log, "lmc report: %s: %d log%s, %ld steps\n", out, n, n > 1 ? "s" : "", steps);
    for (int i = 0; i < n; i++)
        lmc_report_run_free(&runs[i]);
    free(runs);
    return s;
}

