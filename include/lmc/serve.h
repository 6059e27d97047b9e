/* serve.h: an OpenAI-compatible HTTP server over the inference engine
 * (libmicrohttpd): /v1/completions, /v1/chat/completions (streaming as
 * server-sent events), /v1/models, /health, /metrics. One engine thread
 * runs the batched decode loop; HTTP threads parse, tokenize and validate
 * requests and queue them to it. See docs/serving.md. */
#ifndef LMC_SERVE_H
#define LMC_SERVE_H

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
/* Graceful stop: no new connections or requests (503), in-flight requests
 * finish for up to grace seconds, then the rest are cancelled; returns once
 * every connection is closed and the engine thread has ended. */
void lmc_server_shutdown(lmc_server *s, double grace);
void lmc_server_free(lmc_server *s);

#endif
