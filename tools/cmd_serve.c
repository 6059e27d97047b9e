/* cmd_serve.c: `lmc serve`: the OpenAI-compatible HTTP server. SIGINT or
 * SIGTERM stop it gracefully: no new requests, in-flight ones finish (up to
 * --drain seconds, then they are cancelled), exit 0.
 *
 * --tp N (under mpirun -np N): every rank loads the model and holds its part;
 * rank 0 serves HTTP and drives the engine, whose calls the other ranks
 * follow (lmc_engine_follow) until rank 0 closes it. Rank 0 alone takes the
 * stop signals: mpirun forwards a SIGTERM of its own to every rank and kills
 * them a second later, so a graceful stop is a SIGTERM to rank 0 (its pid is
 * in the log); its followers then end with it, exit 0. The work is
 * lmc_serve_run (src/serve/run.c); the signals are this file's. */
#include "cli.h"
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
    cli_catch_stop(on_signal);
    signal(SIGPIPE, SIG_IGN); /* a client that hangs up must not kill the server */
    return LMC_OK;
}

static lmc_status on_serving(void *ctx) { return install_handlers(); }

static const char *wait_for_signal(void *ctx)
{
    unsigned char b = 0;
    while (read(stop_pipe[0], &b, 1) < 0 && errno == EINTR)
        ;
    return b == SIGINT ? "SIGINT" : "SIGTERM";
}

int lmc_cmd_serve(int argc, char **argv)
{
    struct {
        const char *model, *tokenizer, *host, *api_key, *key_file, *name, *quant, *device;
        long long port, slots, queue, max_tokens, ctx, threads, max_body, max_conn, tp;
        double drain;
    } o = {.host = "127.0.0.1", .port = 8000, .slots = 4, .queue = 64, .quant = "none", .device = "cpu",
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
    lmc_serve_job j = {.model = o.model, .tokenizer = o.tokenizer, .device = o.device, .quant = o.quant,
                       .name = o.name, .key_file = o.key_file, .threads = (int)o.threads, .slots = (int)o.slots,
                       .ctx = (int)o.ctx, .tp = (int)o.tp, .drain = o.drain, .on_serving = on_serving,
                       .wait = wait_for_signal, .log = stderr,
                       .http = {.host = o.host, .port = (int)o.port, .api_key = o.api_key,
                                .max_tokens = (int)o.max_tokens, .queue = (int)o.queue,
                                .max_body = (size_t)o.max_body, .max_connections = (int)o.max_conn}};
    return cli_fail("serve", lmc_serve_run(&j));
}
