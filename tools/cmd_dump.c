/* cmd_dump.c: `lmc dump`: one forward + backward pass on the first batch of
 * a shard, written out for comparison with a reference implementation
 * (tests/oracle): acts.safetensors and grads.safetensors (lmc_dump,
 * src/train/dump.c). */
#include "cli.h"
#include "lmc/dump.h"

int lmc_cmd_dump(int argc, char **argv)
{
    const char *init = NULL, *data = NULL, *out = NULL, *precision = "fp32", *device = "cpu";
    long long batch = 2, seq = 16, threads = 0;
    cli_opt opts[] = {
        {"init", CLI_STR, &init, "weights (.safetensors)"},
        {"data", CLI_STR, &data, "token shard(s); the first batch is used, in order"},
        {"out", CLI_STR, &out, "output folder"},
        {"batch", CLI_INT, &batch, "B", 1, 1 << 16},
        {"seq", CLI_INT, &seq, "T", 1, 1 << 20},
        {"precision", CLI_STR, &precision, "fp32 | bf16"},
        {"device", CLI_STR, &device, "cpu | cuda[:N]"},
        {"threads", CLI_INT, &threads, "CPU threads", 0, 4096},
        {NULL},
    };
    cli_spec spec = {.cmd = "dump", .synopsis = "--init FILE --data GLOB --out DIR [--batch B --seq T]", .opts = opts};
    lmc_status s = cli_parse_require(&spec, argc, argv, "init data out");
    if (s)
        return cli_exit(&spec, s);
    lmc_dump_opts o = {.init = init, .data = data, .out = out, .precision = precision, .device = device,
                       .batch = (int)batch, .seq = (int)seq, .threads = (int)threads};
    return cli_fail("dump", lmc_dump(&o));
}
