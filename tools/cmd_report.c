/* cmd_report.c: `lmc report LOG.jsonl [LOG2.jsonl ...] --out report.html`:
 * training logs drawn as one self-contained HTML page (lmc_report_run_files,
 * src/report/files.c). What is odd in a log is a warning here; a file that
 * is not a log is an error. */
#include "cli.h"
#include "lmc/report.h"

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
    s = lmc_report_run_files((const char *const *)logs.v, logs.n, out, stderr);
    cli_list_free(&logs);
    return cli_fail("report", s);
}
