/* events.c: what lmc launch reports: one line per event for the console
 * (through the caller's callback: the library prints nothing itself) and,
 * with --log, one JSON object per event, flushed at once so that a crash
 * of the supervisor loses nothing already reported:
 *   {"event":"failure","time":1733400000.123,"t":12.345,...fields}
 * time: Unix seconds; t: seconds since the supervisor started. */
#define _GNU_SOURCE
#include "launch/launch_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/time.h>

static double unix_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec * 1e-6;
}

lmc_status lmc_launch_log_open(lmc_launch_log *lg, const char *path, void (*cb)(void *, const char *), void *ctx)
{
    memset(lg, 0, sizeof *lg);
    lg->t0 = lmc_now();
    lg->wall0 = unix_now();
    lg->cb = cb;
    lg->ctx = ctx;
    if (!path)
        return LMC_OK;
    LMC_TRY(lmc_mkdir_parent(path));
    lg->f = fopen(path, "we"); /* close-on-exec: mpirun does not inherit it */
    if (!lg->f)
        return lmc_err(LMC_EIO, "--log %s: cannot open for writing: %s", path, strerror(errno));
    return LMC_OK;
}

void lmc_launch_event(lmc_launch_log *lg, const char *kind, const char *fields, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (lg->cb)
        lg->cb(lg->ctx, text);
    if (!lg->f)
        return;
    double t = lmc_now() - lg->t0;
    lmc_sb sb;
    lmc_sb_init(&sb);
    lmc_sb_puts(&sb, "{\"event\":");
    lmc_sb_json_str(&sb, kind, strlen(kind));
    lmc_sb_printf(&sb, ",\"time\":%.3f,\"t\":%.3f", lg->wall0 + t, t);
    if (fields && *fields)
        lmc_sb_printf(&sb, ",%s", fields);
    lmc_sb_puts(&sb, ",\"message\":");
    lmc_sb_json_str(&sb, text, strlen(text));
    lmc_sb_puts(&sb, "}\n");
    if (!sb.oom) {
        fwrite(sb.s, 1, sb.len, lg->f);
        fflush(lg->f);
    }
    lmc_sb_free(&sb);
}

void lmc_launch_log_close(lmc_launch_log *lg)
{
    if (lg->f)
        fclose(lg->f);
    lg->f = NULL;
}
