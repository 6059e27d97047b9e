/* trainlog.c: following the trainer's JSON Lines log (--log, rank 0, one
 * object per step, flushed after each) while the job runs: the last step
 * done and when it was seen, and each step's time. A restart appends to
 * the same log from its checkpoint on, so a step redone after a failure
 * appears twice; its last run is the one that counts. Also the newest
 * checkpoint of an --out folder. */
#include "launch/launch_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

lmc_status lmc_trainlog_open(lmc_trainlog *tl, const char *path, int steps)
{
    memset(tl, 0, sizeof *tl);
    tl->path = path;
    tl->steps = steps;
    lmc_sb_init(&tl->part);
    tl->step_ms = calloc((size_t)steps + 1, sizeof *tl->step_ms);
    if (!tl->step_ms)
        return lmc_err(LMC_ENOMEM, "out of memory for %d steps' times", steps);
    return LMC_OK;
}

void lmc_trainlog_close(lmc_trainlog *tl)
{
    free(tl->step_ms);
    tl->step_ms = NULL;
    lmc_sb_free(&tl->part);
}

static void take_line(lmc_trainlog *tl, const char *s, size_t n)
{
    lmc_json *j;
    if (n == 0 || lmc_json_parse(s, n, tl->path, &j))
        return; /* not a step (or a line cut by a crash): nothing to learn */
    double step = -1, ms = 0;
    if (j->type == LMC_JSON_OBJ && lmc_json_get_num(j, "step", "", &step) == LMC_OK &&
        lmc_json_get_num(j, "ms", "", &ms) == LMC_OK && step >= 1 && step <= tl->steps) {
        tl->step_ms[(int)step] = ms;
        tl->last_step = (int)step;
        tl->last_t = lmc_now();
        if (tl->seen++ == 0)
            tl->first_step = tl->last_step, tl->first_t = tl->last_t;
    }
    lmc_json_free(j);
}

void lmc_trainlog_read(lmc_trainlog *tl)
{
    struct stat st;
    if (stat(tl->path, &st) != 0)
        return;
    if ((long long)st.st_size < tl->offset) /* a fresh start rewrote it */
        tl->offset = 0, tl->part.len = 0;
    FILE *f = fopen(tl->path, "rb");
    if (!f)
        return;
    if (fseek(f, (long)tl->offset, SEEK_SET) == 0) {
        int c;
        while ((c = fgetc(f)) != EOF) {
            tl->offset++;
            if (c == '\n') {
                take_line(tl, tl->part.s, tl->part.len);
                tl->part.len = 0;
            } else if (tl->part.len < (1 << 20)) {
                lmc_sb_putc(&tl->part, (char)c);
            }
        }
    }
    fclose(f);
}

void lmc_trainlog_mark(lmc_trainlog *tl)
{
    tl->seen = 0;
}

double lmc_trainlog_ms(const lmc_trainlog *tl, int from, int to)
{
    double sum = 0;
    for (int s = from + 1; s <= to && s <= tl->steps; s++)
        sum += s >= 1 ? tl->step_ms[s] : 0;
    return sum;
}

double lmc_trainlog_useful_ms(const lmc_trainlog *tl, int upto)
{
    return lmc_trainlog_ms(tl, 0, upto);
}

int lmc_latest_checkpoint(const char *out)
{
    char path[4096], name[64] = "";
    snprintf(path, sizeof path, "%s/latest", out);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int step = -1;
    if (fgets(name, sizeof name, f) && sscanf(name, "step_%d", &step) != 1)
        step = -1;
    fclose(f);
    return step;
}
