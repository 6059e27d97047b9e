/* cmd_export.c: `lmc export`: a model and its tokenizer as a GGUF file for
 * llama.cpp (src/model/gguf_export.c does the work). */
#include "cli.h"
#include "lmc/gguf.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *model, *tokenizer, *format, *type, *out, *name;
} export_opts;

/* "runs/m/model.safetensors" -> "model"; a folder's own name. */
static char *base_name(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    size_t b = n;
    while (b > 0 && path[b - 1] != '/')
        b--;
    size_t e = n;
    for (size_t i = n; i > b; i--)
        if (path[i - 1] == '.') {
            e = i - 1;
            break;
        }
    if (e == b)
        e = n;
    char *s = malloc(e - b + 1);
    if (s) {
        memcpy(s, path + b, e - b);
        s[e - b] = 0;
    }
    return s;
}

static lmc_status run(const export_opts *o)
{
    int ftype;
    LMC_TRY(lmc_gguf_ftype_parse(o->type, &ftype));
    if (strcmp(o->format, "gguf"))
        return lmc_err(LMC_EINVAL, "--format: unknown format '%s' (lmc exports gguf)", o->format);
    const char *tokdir = o->tokenizer ? o->tokenizer : lmc_gguf_is_path(o->model) ? o->model : NULL;
    if (!tokdir)
        return lmc_err(LMC_EINVAL, "--tokenizer DIR is required (a GGUF file carries its tokenizer)");
    lmc_tokenizer *tok = NULL;
    lmc_model_config cfg;
    lmc_layout layout;
    float *params = NULL;
    char *name = o->name ? lmc_strdup(o->name) : base_name(o->model);
    lmc_status s = name ? lmc_tok_load(tokdir, &tok) : lmc_err(LMC_ENOMEM, "out of memory");
    if (s == LMC_OK)
        s = lmc_weights_load(o->model, &cfg, &layout, &params);
    if (s == LMC_OK) {
        double t0 = lmc_now();
        s = lmc_gguf_export(o->out, name, &cfg, &layout, params, tok, ftype);
        if (s == LMC_OK)
            fprintf(stderr, "lmc export: %s: %s, %d layers, %d tokens, %s weights (%.2f s)\n", o->out, cfg.family,
                    cfg.n_layer, cfg.vocab, o->type, lmc_now() - t0);
        lmc_layout_free(&layout);
    }
    lmc_free(params);
    lmc_tok_free(tok);
    free(name);
    return s;
}

int lmc_cmd_export(int argc, char **argv)
{
    export_opts o = {.format = "gguf", .type = "f32"};
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
    lmc_status s = cli_parse(&spec, argc, argv, NULL);
    if (s == LMC_OK)
        s = cli_require(&spec, "model out");
    if (s != LMC_OK)
        return cli_exit(&spec, s);
    return cli_fail("export", run(&o));
}
