/* run.c: lmc serve: the model, its tokenizer and the engine, then (rank 0)
 * the HTTP server until the caller says stop, and a graceful stop; under
 * --tp the other ranks follow rank 0's engine. */
#include "lmc/backend.h"
#include "infer/run.h"
#include "lmc/serve.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "path/to/model.safetensors" -> "model" */
static char *default_name(const char *path)
{
    const char *base = path;
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    for (size_t i = 0; i < n; i++)
        if (path[i] == '/' && i + 1 < n)
            base = path + i + 1;
    size_t len = (size_t)(path + n - base);
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    memcpy(out, base, len);
    out[len] = 0;
    char *dot = strrchr(out, '.');
    if (dot && (!strcmp(dot, ".safetensors") || !strcmp(dot, ".gguf")))
        *dot = 0;
    return out;
}

static lmc_status read_key(const char *path, char **key)
{
    char *data = NULL;
    size_t len = 0;
    LMC_TRY(lmc_read_file(path, &data, &len));
    while (len && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' '))
        data[--len] = 0;
    if (!len || strlen(data) != len) {
        free(data);
        return lmc_err(LMC_EINVAL, "--api-key-file %s: empty, or holds a NUL byte", path);
    }
    *key = data;
    return LMC_OK;
}

/* Rank 0: the HTTP server over e until o->wait returns, then a graceful stop. */
static lmc_status serve(const lmc_serve_job *o, lmc_engine *e, const lmc_tokenizer *tok, const lmc_model_config *cfg,
                        lmc_quant quant, const char *name, const char *key)
{
    lmc_server *sv = NULL;
    lmc_serve_opts so = o->http;
    so.api_key = key ? key : so.api_key;
    so.model_name = name;
    if (o->on_serving)
        LMC_TRY(o->on_serving(o->cb_ctx));
    LMC_TRY(lmc_server_start(&sv, e, tok, &so));
    fprintf(o->log, "lmc serve: '%s' (%s, %d layers, %s weights, %.0f MB on %s) on http://%s:%d/v1 with %d "
            "slots of %d tokens%s\n", name, cfg->family, cfg->n_layer, lmc_quant_name(quant),
            lmc_engine_device_bytes(e) / 1e6, o->device, so.host, lmc_server_port(sv), lmc_engine_slots(e),
            lmc_engine_ctx(e), so.api_key ? ", API key required" : "");
    if (o->tp > 1)
        fprintf(o->log, "lmc serve: tensor parallel over %d ranks (MB above: rank 0's part); rank 0 is pid %d: "
                "kill -TERM %d stops the job gracefully\n", o->tp, (int)getpid(), (int)getpid());
    fprintf(o->log, "listening on port %d\n", lmc_server_port(sv));
    const char *why = o->wait(o->cb_ctx);
    fprintf(o->log, "lmc serve: %s: finishing in-flight requests (up to %.0f s)\n", why, o->drain);
    lmc_server_shutdown(sv, o->drain);
    lmc_engine_stats st;
    lmc_engine_get_stats(e, &st);
    fprintf(o->log, "lmc serve: stopped; %.0f prompt tokens, %.0f generated in %.0f steps\n", st.prefill_tokens,
            st.decode_tokens, st.decode_steps);
    lmc_server_free(sv);
    return LMC_OK;
}

lmc_status lmc_serve_run(const lmc_serve_job *o)
{
    lmc_tokenizer *tok = NULL;
    lmc_backend *be = NULL;
    lmc_engine *e = NULL;
    char *name = NULL, *key = NULL;
    lmc_model_file f = {0};
    lmc_engine_opts eo = {.slots = o->slots, .ctx = o->ctx, .tp = o->tp, .weights = o->model};
    lmc_status s = lmc_model_quant(o->model, o->quant, &eo.quant);
    if (s == LMC_OK && o->key_file)
        s = read_key(o->key_file, &key);
    if (s == LMC_OK)
        s = lmc_tok_load(lmc_model_tokenizer(o->model, o->tokenizer, NULL), &tok);
    if (s == LMC_OK)
        s = lmc_model_file_load(o->model, o->tp, &f);
    const lmc_model_config cfg = f.cfg;
    if (s == LMC_OK) {
        if (eo.ctx > cfg.max_seq)
            eo.ctx = cfg.max_seq;
        s = lmc_backend_open(o->device, o->threads, &be);
    }
    eo.moe_bias = f.moe_bias;
    if (s == LMC_OK)
        s = lmc_engine_open(&e, be, &cfg, f.params, &eo);
    lmc_model_file_free(&f);
    name = o->name ? lmc_strdup(o->name) : default_name(o->model);
    if (s == LMC_OK && !name)
        s = lmc_err(LMC_ENOMEM, "out of memory");
    if (s == LMC_OK && lmc_engine_rank(e) != 0) /* tensor parallel: rank 0 serves, the others follow */
        s = lmc_engine_follow(e);
    else if (s == LMC_OK)
        s = serve(o, e, tok, &cfg, eo.quant, name, key);
    lmc_engine_close(e); /* on rank 0 this releases the followers, whatever happened */
    lmc_backend_close(be);
    lmc_tok_free(tok);
    free(name);
    free(key);
    return s;
}

