/* report.h: a training run as a page: the JSON Lines log that `lmc train
 * --log` writes, read into series (robust to what real logs hold) and drawn
 * as one self-contained HTML file of inline SVG charts. */
#ifndef LMC_REPORT_H
#define LMC_REPORT_H

#include <stdio.h>

#include "lmc/core.h"

/* The log's numbers, by key (report_read.c names them). */
enum {
    LMC_REP_LOSS,
    LMC_REP_LR,
    LMC_REP_GRAD_NORM,
    LMC_REP_TOKENS_PER_S,
    LMC_REP_MFU,
    LMC_REP_MS,
    LMC_REP_TOKENS,
    LMC_REP_COMM_MS,
    LMC_REP_COMM_BUSY_MS,
    LMC_REP_TP_VALUES,
    LMC_REP_VAL_LOSS,
    LMC_REP_VAL_BPB,
    LMC_REP_NFIELDS
};

/* The log's arrays: one value per rank (mb .. rss_mb) or per stage. */
enum { LMC_REP_MB, LMC_REP_COMPUTE_MS, LMC_REP_IDLE_MS, LMC_REP_RSS_MB, LMC_REP_PP_BUBBLE, LMC_REP_NARRAYS };

typedef struct {
    int n;
    double *v; /* NAN where an item is not a finite number */
} lmc_report_arr;

/* One step. v[f] is NAN unless the field is present and finite; bit f of
 * has: the field is present; of bad: present but not a finite number
 * (null, "NaN", "Infinity"). */
typedef struct {
    long long step;
    double v[LMC_REP_NFIELDS];
    unsigned has, bad;
    lmc_report_arr arr[LMC_REP_NARRAYS];
} lmc_report_point;

/* A resume (steps start again) or a change in the number of ranks. */
typedef struct {
    long long step;
    char *what;
} lmc_report_event;

typedef struct {
    char *name;            /* the log's file name without folders and .jsonl, for legends */
    int n;                 /* steps */
    lmc_report_point *pts; /* by step, one per step: a repeated step's last record wins */
    int nev;
    lmc_report_event *ev;
    int nwarn;   /* warnings kept (the first few of each kind) */
    char **warn; /* "FILE line N: what was odd and what was done" */
} lmc_report_run;

/* Reads a log. An unfinished last line, a broken line inside, missing
 * fields, repeated steps and non-finite values are warnings (run->warn);
 * a file that is not JSON Lines (its first record does not parse) is an
 * error naming the file and line. Free with lmc_report_run_free. */
lmc_status lmc_report_read(const char *path, lmc_report_run *run);
/* The same over bytes; name stands for the file in messages and legends. */
lmc_status lmc_report_parse(const char *text, size_t n, const char *name, lmc_report_run *run);
void lmc_report_run_free(lmc_report_run *run);

/* The page for runs[0..n) (overlaid, one colour per run) into out. */
lmc_status lmc_report_html(const lmc_report_run *runs, int n, lmc_sb *out);
/* The page written atomically to path. */
lmc_status lmc_report_save(const char *path, const lmc_report_run *runs, int n);
/* Reads one log and rewrites its page (for `lmc train --report`); warnings
 * are dropped: `lmc report` on the log shows them. */
lmc_status lmc_report_update(const char *path, const char *log);

/* lmc report: reads the n logs (their warnings to log), writes the page
 * to out and one line saying so to log. */
lmc_status lmc_report_run_files(const char *const *logs, int n, const char *out, FILE *log);

#endif
