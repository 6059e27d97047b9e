/* devices.c: what `lmc devices` reports: every backend lmc knows, whether
 * it can run here and why not (the library missing, not loading, or no
 * device), and one opened device's properties. */
#include "backend/backend.h"

#include <stdio.h>

#define MAX_BACKENDS 32

/* One line per backend: name, yes/no, where it comes from and what it found. */
static void list_one(const char *name, lmc_sb *out)
{
    char desc[2048] = "";
    const lmc_backend_plugin *p;
    int count = 0;
    if (lmc_backend_find(name, &p) != LMC_OK) {
        lmc_sb_printf(out, "%-8s %-4s %s\n", name, "no", lmc_errmsg());
        return;
    }
    const char *path = lmc_plugin_path(name);
    char from[1200];
    if (path)
        snprintf(from, sizeof from, "liblmc_%s.so: found (%s)", name, path);
    else
        snprintf(from, sizeof from, "built in");
    if (p->probe(&count, desc, sizeof desc) != LMC_OK)
        lmc_sb_printf(out, "%-8s %-4s %s; %s\n", name, "no", from, lmc_errmsg());
    else
        lmc_sb_printf(out, "%-8s %-4s %s; %d device%s: %s\n", name, "yes", from, count, count == 1 ? "" : "s", desc);
}

void lmc_devices_list(lmc_sb *out)
{
    char names[MAX_BACKENDS][32];
    int n = lmc_backend_names(names, MAX_BACKENDS);
    lmc_sb_printf(out, "%-8s %-4s %s\n", "backend", "here", "why");
    for (int i = 0; i < n; i++)
        list_one(names[i], out);
    char where[4096];
    lmc_plugin_where(where, sizeof where);
    lmc_sb_printf(out, "\nplugins (liblmc_NAME.so, --device NAME[:N]) are looked for in: %s\n", where);
}

lmc_status lmc_device_describe(const char *device, int threads, lmc_sb *out)
{
    lmc_backend *be;
    LMC_TRY(lmc_backend_open(device, threads, &be));
    int missing = 0;
    for (int i = 0; i < LMC_OP_COUNT; i++)
        missing += !lmc_backend_has_op(be, (lmc_op)i);
    lmc_sb_printf(out, "%s: opened; %d threads; %s memory; %sdeterministic; %d of %d ops", be->name, be->threads,
                  be->host_memory ? "host" : "device", be->deterministic ? "" : "not ", LMC_OP_COUNT - missing,
                  LMC_OP_COUNT);
    for (int i = 0, first = 1; i < LMC_OP_COUNT; i++)
        if (!lmc_backend_has_op(be, (lmc_op)i)) {
            lmc_sb_printf(out, "%s%s", first ? " (without " : ", ", lmc_op_name((lmc_op)i));
            first = 0;
        }
    lmc_sb_printf(out, "%s\n", missing ? ")" : "");
    lmc_status s = lmc_backend_check(be);
    lmc_backend_close(be);
    return s;
}
