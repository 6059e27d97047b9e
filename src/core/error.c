/* error.c: the per-thread last error message. */
#include "lmc/core.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char errbuf[2048];

lmc_status lmc_err(lmc_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    return code;
}

lmc_status lmc_err_wrap(lmc_status code, const char *fmt, ...)
{
    char prev[sizeof errbuf];
    memcpy(prev, errbuf, sizeof prev);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    size_t at = n < 0 ? 0 : (size_t)n, room = sizeof errbuf - 1;
    if (at + 2 < room) { /* append ": <previous message>", truncated to fit */
        memcpy(errbuf + at, ": ", 2);
        at += 2;
        size_t len = strnlen(prev, room - at);
        memcpy(errbuf + at, prev, len);
        errbuf[at + len] = 0;
    }
    return code;
}

const char *lmc_errmsg(void)
{
    return errbuf[0] ? errbuf : "unknown error";
}

const char *lmc_status_name(lmc_status s)
{
    switch (s) {
    case LMC_OK: return "ok";
    case LMC_EINVAL: return "invalid argument";
    case LMC_EIO: return "io error";
    case LMC_EFORMAT: return "bad format";
    case LMC_ERANGE: return "out of range";
    case LMC_ENOMEM: return "out of memory";
    case LMC_EUNSUPPORTED: return "unsupported";
    case LMC_ECOMM: return "communication error";
    }
    return "?";
}
