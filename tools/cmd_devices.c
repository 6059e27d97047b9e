/* cmd_devices.c: `lmc devices`: every backend lmc knows (cpu, cuda, npu,
 * and any other liblmc_NAME.so in the plugin folders), whether it can run
 * here, and why not: the library missing, not loading, or no device. With
 * --device NAME[:N] it opens that device and prints its properties. The
 * work is lmc_devices_list and lmc_device_describe (src/backend/devices.c). */
#include "cli.h"
#include "lmc/backend.h"

#include <stdio.h>

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
    lmc_sb out;
    lmc_sb_init(&out);
    if (device)
        s = lmc_device_describe(device, (int)threads, &out);
    else
        lmc_devices_list(&out);
    fputs(out.s ? out.s : "", stdout);
    lmc_sb_free(&out);
    return cli_fail("devices", s);
}
