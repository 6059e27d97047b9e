/* cmd_sample.c: `lmc sample`: generation by full recomputation through
 * the engine, the plain reference of `lmc generate` (lmc_sample_run,
 * src/infer/run_sample.c). */
#include "cli.h"
#include "lmc/generate.h"

typedef struct {
    const char *model, *tokenizer, *prompt, *prompt_ids, *device;
    long long max_tokens, top_k, seed, threads;
    double temperature, top_p;
} sample_opts;

int lmc_cmd_sample(int argc, char **argv)
{
    sample_opts o = {.device = "cpu", .max_tokens = 64, .top_k = 40, .seed = 1337, .temperature = 1.0, .top_p = 1.0};
    cli_opt opts[] = {
        {"model", CLI_STR, &o.model, "weights (.safetensors, HF folder, or .gguf)"},
        {"tokenizer", CLI_STR, &o.tokenizer, "tokenizer folder or .gguf (text in and out; a .gguf model's own "
                                             "unless --prompt-ids)"},
        {"prompt", CLI_STR, &o.prompt, "prompt text (default: start of a document)"},
        {"prompt-ids", CLI_STR, &o.prompt_ids, "prompt as token ids (\"1 2 3\")"},
        {"max-tokens", CLI_INT, &o.max_tokens, "tokens to generate", 0, 1 << 20},
        {"temperature", CLI_FLOAT, &o.temperature, "0 = greedy", 0, 100},
        {"top-k", CLI_INT, &o.top_k, "sample among the k most likely (0 = all)", 0, 1 << 24},
        {"top-p", CLI_FLOAT, &o.top_p, "nucleus sampling mass (1 = off)", 0, 1},
        {"seed", CLI_INT, &o.seed, "sampling seed", 0, 1LL << 62},
        {"threads", CLI_INT, &o.threads, "CPU threads", 0, 4096},
        {"device", CLI_STR, &o.device, "cpu | cuda[:N]"},
        {NULL},
    };
    cli_spec spec = {.cmd = "sample", .synopsis = "--model FILE [--tokenizer DIR] [--prompt TEXT | --prompt-ids IDS]",
                     .opts = opts};
    lmc_status s = cli_parse(&spec, argc, argv, NULL);
    if (s)
        return cli_exit(&spec, s);
    if (!o.model)
        return cli_fail("sample", lmc_err(LMC_EINVAL, "--model FILE is required"));
    lmc_gen_request r = {.model = o.model, .tokenizer = o.tokenizer, .prompt = o.prompt, .prompt_ids = o.prompt_ids,
                         .device = o.device, .threads = (int)o.threads, .max_tokens = (int)o.max_tokens,
                         .sp = {(float)o.temperature, (int)o.top_k, (float)o.top_p}, .seed = (uint64_t)o.seed,
                         .out = stdout};
    return cli_fail("sample", lmc_sample_run(&r));
}
