/* progress.h: a one-line progress display for long jobs (stderr): updated
 * in place on a terminal, a line every few percent otherwise. */
#ifndef LMC_PROGRESS_H
#define LMC_PROGRESS_H

#include <stdio.h>

typedef struct {
    int tty;
    int last_pct;
    int open; /* a line is being updated in place */
} lmc_progress;

void lmc_progress_init(lmc_progress *p);
/* done/total drive the in-place vs. every-few-percent choice */
void lmc_progress_show(lmc_progress *p, double done, double total, const char *line);
/* Ends an in-place line so ordinary output can follow. */
void lmc_progress_break(lmc_progress *p);
void lmc_format_duration(double s, char *buf, size_t n);

#endif
