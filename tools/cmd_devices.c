/* cmd_devices.c: `lmc devices`: every backend lmc knows (cpu, cuda, npu,
 * and any other liblmc_NAME.so in the plugin folders), whether it can run
 * here, and why not: the library missing, not loading, or no device. With
 * --device NAME[:N] it opens that device and prints its properties. */
#include "backend/backend.h"
#include "cli.h"

#include <stdio.h>
#include <string.h>

#define MAX_BACKENDS 32

/* One line per backend: name, yes/no, where it comes from and what it found. */
static void list_one(const char *name)
{
    char desc[2048] = "";
    const lmc_backend_plugin *p;
    int count = 0;
    lmc_status s = lmc_backend_find(name, &p);
    if (s != LMC_OK) {
        printf("%-8s %-4s %s\n", name, "no", lmc_errmsg());
        return;
    }
    const char *path = lmc_plugin_path(name);
    char from[1200];
    if (path)
        snprintf(from, sizeof from, "liblmc_%s.so: found (%s)", name, path);
    else
        snprintf(from, sizeof from, "built in");
    s = p->probe(&count, desc, sizeof desc);
    if (s != LMC_OK)
        printf("%-8s %-4s %s; %s\n", name, "no", from, lmc_errmsg());
    else
        printf("%-8s %-4s %s; %d device%s: %s\n", name, "yes", from, count, count == 1 ? "" : "s", desc);
}

static void list_all(void)
{
    char names[MAX_BACKENDS][32];
    int n = lmc_backend_names(names, MAX_BACKENDS);
    printf("%-8s %-4s %s\n", "backend", "here", "why");
    for (int i = 0; i < n; i++)
        list_one(names[i]);
    char where[4096];
    lmc_plugin_where(where, sizeof where);
    printf("\nplugins (liblmc_NAME.so, --device NAME[:N]) are looked for in: %s\n", where);
}

/* --device: open it, say what it is. */
static lmc_status show_one(const char *device, int threads)
{
    lmc_backend *be;
    LMC_TRY(lmc_backend_open(device, threads, &be));
    int missing = 0;
    for (int i = 0; i < LMC_OP_COUNT; i++)
        missing += !lmc_backend_has_op(be, (lmc_op)i);
    printf("%s: opened; %d threads; %s memory; %sdeterministic; %d of %d ops", be->name, be->threads,
           be->host_memory ? "host" : "device", be->deterministic ? "" : "not ", LMC_OP_COUNT - missing,
           LMC_OP_COUNT);
    for (int i = 0, first = 1; i < LMC_OP_COUNT; i++)
        if (!lmc_backend_has_op(be, (lmc_op)i)) {
            printf("%s%s", first ? " (without " : ", ", lmc_op_name((lmc_op)i));
            first = 0;
        }
    printf("%s\n", missing ? ")" : "");
    lmc_status s = lmc_backend_check(be);
    lmc_backend_close(be);
    return s;
}

int lmc_cmd_devices(int argc, char **argv)
{
    const char *device = NULL;
    long long threads = 0;
    cli_opt opts[] = {
        {"device", CLI_STR, &device, "open this one (NAME or NAME:N) and print its properties"},
        {"threads", CLI_INT, &threads, "threads for the cpu backend (0: all cores)", 0, 4096},
        {NULL},
    };
    cli_spec spec = {.cmd = "devices",
                     .synopsis = "[--device NAME[:N]]",
                     .about = "Lists every backend lmc knows, whether it can run here and why not. CPU is built "
                              "in; any other backend NAME is the plugin liblmc_NAME.so, looked for in "
                              "$LMC_PLUGIN_DIR, beside the lmc binary, in the build folder, then on the loader's "
                              "path.",
                     .opts = opts};
    lmc_status s = cli_parse(&spec, argc, argv, NULL);
    if (s != LMC_OK)
        return cli_exit(&spec, s);
    if (device)
        return cli_fail("devices", show_one(device, (int)threads));
    list_all();
    return 0;
}
