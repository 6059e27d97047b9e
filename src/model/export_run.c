/* export_run.c: lmc export: a model file and its tokenizer as a GGUF file
 * for llama.cpp (lmc_gguf_export writes it). */
#include "lmc/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* A balancing bias that is not all zero changes which experts a token
 * gets; llama.cpp's llama architecture (the one a Mixtral exports to)
 * loads no blk.N.exp_probs_b.bias (its deepseek2 and other architectures
 * do, with other attention or weighting) and refuses a file with tensors
 * it does not load, so such a model is refused, the tensor named. */
static lmc_status check_bias(const char *path, const lmc_model_config *cfg)
{
    size_t E = (size_t)cfg->n_expert;
    if (cfg->n_expert <= 0)
        return LMC_OK;
    float *b = malloc((size_t)cfg->n_layer * E * sizeof(float));
    int found = 0;
    lmc_status s = b ? lmc_weights_load_moe_bias(path, cfg, b, &found) : lmc_err(LMC_ENOMEM, "out of memory");
    for (int l = 0; s == LMC_OK && found && l < cfg->n_layer; l++) {
        char name[112];
        for (size_t e = 0; e < E && lmc_hf_moe_bias_name(cfg, l, name, sizeof name); e++)
            if (b[l * E + e] != 0) {
                s = lmc_err(LMC_EUNSUPPORTED, "%s: tensor '%s' (DeepSeek-V3's balancing bias) is not zero "
                            "(expert %zu: %g): llama.cpp's llama architecture routes without one (no "
                            "blk.%d.exp_probs_b.bias), so it would choose other experts than lmc; not exported",
                            path, name, e, b[l * E + e], l);
                break;
            }
    }
    free(b);
    return s;
}

lmc_status lmc_export_run(const lmc_export_opts *o)
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
    if (s == LMC_OK && (s = check_bias(o->model, &cfg)) != LMC_OK)
        lmc_layout_free(&layout);
    if (s == LMC_OK) {
        double t0 = lmc_now();
        s = lmc_gguf_export(o->out, name, &cfg, &layout, params, tok, ftype);
        if (s == LMC_OK)
            fprintf(o->log, "lmc export: %s: %s, %d layers, %d tokens, %s weights (%.2f s)\n", o->out, cfg.family,
                    cfg.n_layer, cfg.vocab, o->type, lmc_now() - t0);
        lmc_layout_free(&layout);
    }
    lmc_free(params);
    lmc_tok_free(tok);
    free(name);
    return s;
}

