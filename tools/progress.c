/* progress.c: the progress line. */
#include "progress.h"

#include <unistd.h>

void lmc_progress_init(lmc_progress *p)
{
    p->tty = isatty(2);
    p->last_pct = -100;
    p->open = 0;
}

void lmc_progress_show(lmc_progress *p, double done, double total, const char *line)
{
    if (p->tty) {
        fprintf(stderr, "\r\033[K%s", line);
        p->open = 1;
        if (done >= total)
            lmc_progress_break(p);
        return;
    }
    int pct = total > 0 ? (int)(100.0 * done / total) : 100;
    if (pct - p->last_pct >= 5 || done >= total || done <= 1) {
        fprintf(stderr, "%s\n", line);
        p->last_pct = pct;
    }
}

void lmc_progress_break(lmc_progress *p)
{
    if (p->open)
        fputc('\n', stderr);
    p->open = 0;
}

void lmc_format_duration(double s, char *buf, size_t n)
{
    if (s < 0)
        s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60)
        snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, n, "%lds", t);
}
