/* cmd_report.c: `lmc report LOG.jsonl [LOG2.jsonl ...] --out report.html`:
 * training logs drawn as one self-contained HTML page (src/report/). What
 * is odd in a log is a warning here; a file that is not a log is an error. */
#include "cli.h"
#include "lmc/report.h"

#include <stdlib.h>

static lmc_status read_all(const cli_list *logs, lmc_report_run *runs, long *steps)
{
    *steps = 0;
    for (int i = 0; i < logs->n; i++) {
        LMC_TRY(lmc_report_read(logs->v[i], &runs[i]));
        for (int k = 0; k < runs[i].nwarn; k++)
            fprintf(stderr, "lmc report: warning: %s\n", runs[i].warn[k]);
        *steps += runs[i].n;
    }
    if (!*steps)
        return lmc_err(LMC_EFORMAT, "no step records in %s%s", logs->v[0], logs->n > 1 ? " or the other logs" : "");
    return LMC_OK;
}

static lmc_status run(const cli_list *logs, const char *out)
{
    if (!logs->n)
        return lmc_err(LMC_EINVAL, "no log given (usage: lmc report LOG.jsonl [LOG2.jsonl ...] --out FILE.html)");
    lmc_report_run *runs = calloc((size_t)logs->n, sizeof *runs);
    if (!runs)
        return lmc_err(LMC_ENOMEM, "out of memory");
    long steps;
    lmc_status s = read_all(logs, runs, &steps);
    if (s == LMC_OK)
        s = lmc_report_save(out, runs, logs->n);
    if (s == LMC_OK)
        fprintf(stderr, "lmc report: %s: %d log%s, %ld steps\n", out, logs->n, logs->n > 1 ? "s" : "", steps);
    for (int i = 0; i < logs->n; i++)
        lmc_report_run_free(&runs[i]);
    free(runs);
    return s;
}

int lmc_cmd_report(int argc, char **argv)
{
    const char *out = NULL;
    cli_opt opts[] = {
        {"out", CLI_STR, &out, "the HTML page to write (atomically)"},
        {NULL},
    };
    cli_spec spec = {.cmd = "report",
                     .synopsis = "LOG.jsonl [LOG2.jsonl ...] --out FILE.html",
                     .about = "Draws the JSON Lines logs of `lmc train --log` as one self-contained HTML page "
                              "(inline SVG, no network): loss by step and by tokens, validation bits per byte, "
                              "learning rate, gradient norm, throughput and MFU, time per step, memory per rank, "
                              "the balance across ranks and the pipeline bubble. Several logs are overlaid. "
                              "Unfinished lines, repeated steps and non-finite values are warnings.",
                     .opts = opts};
    cli_list logs = {0};
    lmc_status s = cli_parse(&spec, argc, argv, &logs);
    if (s == LMC_OK)
        s = cli_require(&spec, "out");
    if (s != LMC_OK) {
        cli_list_free(&logs);
        return cli_exit(&spec, s);
    }
    s = run(&logs, out);
    cli_list_free(&logs);
    return cli_fail("report", s);
}
