/* serve.h: an OpenAI-compatible HTTP server over the inference engine
 * (libmicrohttpd): /v1/completions, /v1/chat/completions (streaming as
 * server-sent events), /v1/models, /health, /metrics. One engine thread
 * runs the batched decode loop; HTTP threads parse, tokenize and validate
 * requests and queue them to it. See docs/serving.md. */
#ifndef LMC_SERVE_H
#define LMC_SERVE_H

#include <stdio.h>

#include "lmc/core.h"
#include "lmc/infer.h"
#include "lmc/tokenizer.h"

typedef struct {
    const char *host;       /* address to bind: "127.0.0.1", "::1", "0.0.0.0", a name */
    int port;               /* 0: any free port (lmc_server_port tells which) */
    const char *api_key;    /* NULL: no authentication */
    const char *model_name; /* the id in /v1/models and responses */
    int max_tokens;         /* cap on a request's max_tokens; 0 = the context */
    int queue;              /* requests waiting for a slot before 429 */
    size_t max_body;        /* request body limit in bytes (413 beyond) */
    int max_connections;    /* open connections at most (0: derived from slots and queue) */
} lmc_serve_opts;

typedef struct lmc_server lmc_server;

/* Starts the engine thread and the HTTP daemon. The engine and tokenizer
 * must outlive the server. */
lmc_status lmc_server_start(lmc_server **out, lmc_engine *e, const lmc_tokenizer *tok, const lmc_serve_opts *o);
int lmc_server_port(const lmc_server *s);
/* Connections the HTTP daemon holds now: accepted and not yet closed and
 * cleaned up (their threads joined, their responses freed). */
int lmc_server_connections(const lmc_server *s);
/* Graceful stop: no new connections or requests (503), in-flight requests
 * finish for up to grace seconds, then the rest are cancelled; returns once
 * every connection is closed and the engine thread has ended. */
void lmc_server_shutdown(lmc_server *s, double grace);
void lmc_server_free(lmc_server *s);

/* ---------- lmc serve, start to end ---------- */
typedef struct {
    const char *model, *tokenizer;  /* tokenizer NULL: a .gguf model's own */
    const char *device, *quant;     /* quant NULL: the model file's own type (lmc_model_quant) */
    const char *name;               /* the model id; NULL: the file's base name */
    const char *key_file;           /* the API key read from a file (not visible in ps); NULL: http.api_key */
    int threads, slots, ctx, tp;    /* the engine's (ctx 0: the model's; tp > 1 under mpirun) */
    double drain;                   /* seconds in-flight requests get to finish */
    lmc_serve_opts http;            /* model_name is set from name */
    /* rank 0, before the server starts (the command line installs its
     * signal handlers); may be NULL */
    lmc_status (*on_serving)(void *ctx);
    /* rank 0: blocks until the server should stop; returns why ("SIGTERM") */
    const char *(*wait)(void *ctx);
    void *cb_ctx;                   /* the callbacks' ctx */
    FILE *log;                      /* what is served where, and the stop */
} lmc_serve_job;

/* Loads the model and tokenizer, opens the device and the engine; rank 0
 * serves until wait returns, then stops gracefully; under tp > 1 the other
 * ranks follow rank 0's engine until it closes. */
lmc_status lmc_serve_run(const lmc_serve_job *j);

#endif
