/* cmd_generate.c: `lmc generate`: text from a prompt with the KV-cache
 * engine, streamed to stdout as it is produced; speeds on stderr
 * (lmc_generate_run, src/infer/run_generate.c). */
#include "cli.h"
#include "lmc/generate.h"

typedef struct {
    const char *model, *tokenizer, *prompt, *prompt_ids, *device, *quant;
    long long max_tokens, top_k, seed, threads, ctx, tp;
    double temperature, top_p, rep, freq, pres;
    int ignore_eos, quiet, logprobs;
    cli_list stops;
} gen_opts;

int lmc_cmd_generate(int argc, char **argv)
{
    gen_opts o = {.device = "cpu", .quant = "none", .max_tokens = 256, .top_k = 40, .seed = 1337, .tp = 1,
                  .temperature = 1.0, .top_p = 1.0, .rep = 1.0};
    cli_opt opts[] = {
        {"model", CLI_STR, &o.model, "weights (.safetensors, HF folder, or .gguf)"},
        {"tokenizer", CLI_STR, &o.tokenizer, "tokenizer folder or .gguf (text in and out; without it ids in and out; "
                                             "a .gguf model's own unless --prompt-ids)"},
        {"prompt", CLI_STR, &o.prompt, "prompt text (default: start of a document)"},
        {"prompt-ids", CLI_STR, &o.prompt_ids, "prompt as token ids (\"1 2 3\")"},
        {"max-tokens", CLI_INT, &o.max_tokens, "tokens to generate at most", 0, 1 << 24},
        {"temperature", CLI_FLOAT, &o.temperature, "0 = greedy", 0, 100},
        {"top-k", CLI_INT, &o.top_k, "sample among the k most likely (0 = all)", 0, 1 << 24},
        {"top-p", CLI_FLOAT, &o.top_p, "nucleus sampling mass (1 = off)", 0, 1},
        {"repetition-penalty", CLI_FLOAT, &o.rep, "divide seen tokens' logits (1 = off)", 0, 100},
        {"frequency-penalty", CLI_FLOAT, &o.freq, "OpenAI frequency penalty", -2, 2},
        {"presence-penalty", CLI_FLOAT, &o.pres, "OpenAI presence penalty", -2, 2},
        {"stop", CLI_LIST, &o.stops, "stop string (repeatable); not printed"},
        {"ignore-eos", CLI_BOOL, &o.ignore_eos, "do not stop at <|endoftext|>"},
        {"seed", CLI_INT, &o.seed, "sampling seed", 0, 1LL << 62},
        {"quant", CLI_STR, &o.quant, "weights for decode: none | bf16 | int8 (default: a .gguf's own type)"},
        {"ctx", CLI_INT, &o.ctx, "context tokens, prompt included (default: the model's)", 0, 1 << 24},
        {"threads", CLI_INT, &o.threads, "CPU threads", 0, 4096},
        {"device", CLI_STR, &o.device, "cpu | cuda[:N]"},
        {"tp", CLI_INT, &o.tp, "tensor parallel: split the model over the N ranks of mpirun -np N", 1, 4096},
        {"quiet", CLI_BOOL, &o.quiet, "no speed line on stderr"},
        {"logprobs", CLI_BOOL, &o.logprobs, "print {\"id\": N, \"logprob\": X} lines (raw logits) instead of text"},
        {NULL},
    };
    cli_spec spec = {.cmd = "generate",
                     .synopsis = "--model FILE [--tokenizer DIR] [--prompt TEXT | --prompt-ids IDS]",
                     .about = "Generates with the KV-cache engine (prefill in one pass, then one token per step), "
                              "printing text as it is produced, then prompt and decode speeds on stderr.",
                     .opts = opts};
    lmc_status s = cli_parse(&spec, argc, argv, NULL);
    if (s) {
        cli_list_free(&o.stops);
        return cli_exit(&spec, s);
    }
    if (!o.model) {
        cli_list_free(&o.stops);
        return cli_fail("generate", lmc_err(LMC_EINVAL, "--model FILE is required"));
    }
    if (!cli_was_set(&spec, "quant"))
        o.quant = NULL; /* the model file's own type (lmc_model_quant) */
    lmc_generate_request g = {
        .r = {.model = o.model, .tokenizer = o.tokenizer, .prompt = o.prompt, .prompt_ids = o.prompt_ids,
              .device = o.device, .threads = (int)o.threads, .max_tokens = (int)o.max_tokens,
              .sp = {(float)o.temperature, (int)o.top_k, (float)o.top_p, (float)o.rep, (float)o.freq, (float)o.pres},
              .seed = (uint64_t)o.seed, .out = stdout},
        .quant = o.quant, .ctx = (int)o.ctx, .tp = (int)o.tp, .ignore_eos = o.ignore_eos, .quiet = o.quiet,
        .logprobs = o.logprobs, .stops = (const char *const *)o.stops.v, .n_stops = o.stops.n, .err = stderr};
    s = lmc_generate_run(&g);
    cli_list_free(&o.stops);
    return cli_fail("generate", s);
}
