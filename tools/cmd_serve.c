/* cmd_serve.c: `lmc serve`: the OpenAI-compatible HTTP server. SIGINT or
 * SIGTERM stop it gracefully: no new requests, in-flight ones finish (up to
 * --drain seconds, then they are cancelled), exit 0.
 *
 * --tp N (under mpirun -np N): every rank loads the model and holds its part;
 * rank 0 serves HTTP and drives the engine, whose calls the other ranks
 * follow (lmc_engine_follow) until rank 0 closes it. Rank 0 alone takes the
 * stop signals: mpirun forwards a SIGTERM of its own to every rank and kills
 * them a second later, so a graceful stop is a SIGTERM to rank 0 (its pid is
 * in the log); its followers then end with it, exit 0. */
#include "cli.h"
#include "lmc/backend.h"
#include "lmc/generate.h"
#include "lmc/serve.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int stop_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (write(stop_pipe[1], &b, 1) < 0) {
        /* nothing to do in a handler: the pipe is full, a stop is pending */
    }
    errno = saved;
}

static lmc_status install_handlers(void)
{
    if (pipe(stop_pipe))
        return lmc_err(LMC_EIO, "pipe: %s", strerror(errno));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a client that hangs up must not kill the server */
    return LMC_OK;
}

static int wait_for_signal(void)
{
    unsigned char b = 0;
    while (read(stop_pipe[0], &b, 1) < 0 && errno == EINTR)
        ;
    return b;
}

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

typedef struct {
    const char *model, *tokenizer, *host, *api_key, *key_file, *name, *quant, *device;
    long long port, slots, queue, max_tokens, ctx, threads, max_body, max_conn, tp;
    double drain;
} serve_opts;

/* Rank 0: the HTTP server over e until a stop signal, then a graceful stop. */
static lmc_status serve(const serve_opts *o, lmc_engine *e, const lmc_tokenizer *tok, const lmc_model_config *cfg,
                        lmc_quant quant, const char *name, const char *key)
{
    lmc_server *sv = NULL;
    lmc_serve_opts so = {.host = o->host, .port = (int)o->port, .api_key = key ? key : o->api_key,
                         .model_name = name, .max_tokens = (int)o->max_tokens, .queue = (int)o->queue,
                         .max_body = (size_t)o->max_body, .max_connections = (int)o->max_conn};
    LMC_TRY(install_handlers());
    LMC_TRY(lmc_server_start(&sv, e, tok, &so));
    fprintf(stderr, "lmc serve: '%s' (%s, %d layers, %s weights, %.0f MB on %s) on http://%s:%d/v1 with %d "
            "slots of %d tokens%s\n", name, cfg->family, cfg->n_layer, lmc_quant_name(quant),
            lmc_engine_device_bytes(e) / 1e6, o->device, o->host, lmc_server_port(sv), lmc_engine_slots(e),
            lmc_engine_ctx(e), so.api_key ? ", API key required" : "");
    if (o->tp > 1)
        fprintf(stderr, "lmc serve: tensor parallel over %lld ranks (MB above: rank 0's part); rank 0 is pid %d: "
                "kill -TERM %d stops the job gracefully\n", o->tp, (int)getpid(), (int)getpid());
    fprintf(stderr, "listening on port %d\n", lmc_server_port(sv));
    int sig = wait_for_signal();
    fprintf(stderr, "lmc serve: %s: finishing in-flight requests (up to %.0f s)\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM", o->drain);
    lmc_server_shutdown(sv, o->drain);
    lmc_engine_stats st;
    lmc_engine_get_stats(e, &st);
    fprintf(stderr, "lmc serve: stopped; %.0f prompt tokens, %.0f generated in %.0f steps\n", st.prefill_tokens,
            st.decode_tokens, st.decode_steps);
    lmc_server_free(sv);
    return LMC_OK;
}

static lmc_status run(const serve_opts *o)
{
    lmc_tokenizer *tok = NULL;
    lmc_backend *be = NULL;
    lmc_engine *e = NULL;
    float *host = NULL;
    char *name = NULL, *key = NULL;
    lmc_model_config cfg;
    lmc_layout layout;
    lmc_engine_opts eo = {.slots = (int)o->slots, .ctx = (int)o->ctx, .tp = (int)o->tp};
    lmc_status s = lmc_model_quant(o->model, o->quant, &eo.quant);
    if (s == LMC_OK && o->key_file)
        s = read_key(o->key_file, &key);
    if (s == LMC_OK)
        s = lmc_tok_load(lmc_model_tokenizer(o->model, o->tokenizer, NULL), &tok);
    if (s == LMC_OK)
        s = lmc_weights_load(o->model, &cfg, &layout, &host);
    if (s == LMC_OK) {
        lmc_layout_free(&layout);
        if (eo.ctx > cfg.max_seq)
            eo.ctx = cfg.max_seq;
        s = lmc_backend_open(o->device, (int)o->threads, &be);
    }
    if (s == LMC_OK)
        s = lmc_engine_open(&e, be, &cfg, host, &eo);
    lmc_free(host);
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

int lmc_cmd_serve(int argc, char **argv)
{
    serve_opts o = {.host = "127.0.0.1", .port = 8000, .slots = 4, .queue = 64, .quant = "none", .device = "cpu",
                    .max_body = 1 << 20, .drain = 30, .tp = 1};
    cli_opt opts[] = {
        {"model", CLI_STR, &o.model, "weights (.safetensors, HF folder, or .gguf)"},
        {"tokenizer", CLI_STR, &o.tokenizer, "tokenizer folder or .gguf (default: a .gguf model's own)"},
        {"host", CLI_STR, &o.host, "address to listen on (default 127.0.0.1)"},
        {"port", CLI_INT, &o.port, "TCP port (0: any free one; the log says which)", 0, 65535},
        {"slots", CLI_INT, &o.slots, "sequences decoded together (continuous batching)", 1, 4096},
        {"queue", CLI_INT, &o.queue, "requests waiting for a slot before 429", 0, 1 << 20},
        {"api-key", CLI_STR, &o.api_key, "require Authorization: Bearer KEY on /v1/*"},
        {"api-key-file", CLI_STR, &o.key_file, "read the API key from a file (not visible in ps)"},
        {"name", CLI_STR, &o.name, "model id in the API (default: the file's base name)"},
        {"max-tokens", CLI_INT, &o.max_tokens, "cap on a request's max_tokens (default: the context)", 0, 1 << 24},
        {"ctx", CLI_INT, &o.ctx, "tokens per sequence, prompt included (default: the model's)", 0, 1 << 24},
        {"max-body", CLI_INT, &o.max_body, "request body limit in bytes (413 beyond)", 1024, 1LL << 32},
        {"max-connections", CLI_INT, &o.max_conn, "open connections at most (default 2(slots+queue)+64)", 0, 1 << 20},
        {"drain", CLI_FLOAT, &o.drain, "seconds in-flight requests get to finish at shutdown", 0, 86400},
        {"quant", CLI_STR, &o.quant, "weights for decode: none | bf16 | int8 (default: a .gguf's own type)"},
        {"threads", CLI_INT, &o.threads, "CPU threads for the model", 0, 4096},
        {"device", CLI_STR, &o.device, "cpu | cuda[:N]"},
        {"tp", CLI_INT, &o.tp, "tensor parallel: split the model over the N ranks of mpirun -np N (rank 0 serves)",
         1, 4096},
        {NULL},
    };
    cli_spec spec = {.cmd = "serve", .synopsis = "--model FILE --tokenizer DIR [--host H] [--port P] [--slots N]",
                     .about = "OpenAI-compatible HTTP server: POST /v1/completions, POST /v1/chat/completions "
                              "(stream: true for server-sent events), GET /v1/models, /health, /metrics. "
                              "See docs/serving.md.",
                     .opts = opts};
    lmc_status s = cli_parse(&spec, argc, argv, NULL);
    if (s)
        return cli_exit(&spec, s);
    if (!cli_was_set(&spec, "quant"))
        o.quant = NULL; /* the model file's own type (lmc_model_quant) */
    if (!o.model || !lmc_model_tokenizer(o.model, o.tokenizer, NULL))
        return cli_fail("serve", lmc_err(LMC_EINVAL, "--model FILE and --tokenizer DIR are required (a .gguf model "
                                         "carries its tokenizer)"));
    return cli_fail("serve", run(&o));
}
