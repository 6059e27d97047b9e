/* cmd_export.c: `lmc export`: a model and its tokenizer as a GGUF file for
 * llama.cpp (lmc_export_run, src/model/export_run.c). */
#include "cli.h"
#include "lmc/gguf.h"

int lmc_cmd_export(int argc, char **argv)
{
    lmc_export_opts o = {.format = "gguf", .type = "f32", .log = stderr};
    cli_opt opts[] = {
        {"model", CLI_STR, &o.model, "weights (.safetensors, HF folder, or .gguf)"},
        {"tokenizer", CLI_STR, &o.tokenizer, "tokenizer folder (default: the model's, when it is a .gguf)"},
        {"format", CLI_STR, &o.format, "gguf (llama.cpp)"},
        {"type", CLI_STR, &o.type, "weight type: f32 | f16 | bf16 | q8_0 (default f32)"},
        {"out", CLI_STR, &o.out, "output file (written atomically)"},
        {"name", CLI_STR, &o.name, "general.name (default: the model file's base name)"},
        {NULL},
    };
    cli_spec spec = {.cmd = "export",
                     .synopsis = "--model FILE|DIR --tokenizer DIR [--format gguf] [--type f32] --out FILE.gguf",
                     .about = "Writes a GPT-2 or Llama model with its tokenizer as GGUF v3 for llama.cpp: its "
                              "architecture's metadata, the byte-level BPE tokenizer (ids as `lmc encode` gives "
                              "them), tensors under llama.cpp's names. 1-D tensors and position embeddings stay "
                              "f32. lmc reads such files back with --model / --init / --tokenizer FILE.gguf.",
                     .opts = opts};
    lmc_status s = cli_parse_require(&spec, argc, argv, "model out");
    if (s != LMC_OK)
        return cli_exit(&spec, s);
    return cli_fail("export", lmc_export_run(&o));
}
