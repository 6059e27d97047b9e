/* serve.c: the server's life: start (engine thread, then the HTTP daemon)
 * and a graceful stop (no new work, drain, cancel what remains, close). */
#include "serve/serve_internal.h"

#include <stdlib.h>
#include <string.h>

static lmc_status check_opts(const lmc_serve_opts *o, const lmc_engine *e, const lmc_tokenizer *tok)
{
    if (o->port < 0 || o->port > 65535)
        return lmc_err(LMC_ERANGE, "--port %d must be in [0, 65535]", o->port);
    if (o->queue < 0)
        return lmc_err(LMC_ERANGE, "--queue %d must be >= 0", o->queue);
    if (o->max_body < 1024)
        return lmc_err(LMC_ERANGE, "--max-body %zu must be at least 1024 bytes", o->max_body);
    if (o->api_key && !*o->api_key)
        return lmc_err(LMC_EINVAL, "--api-key must not be empty");
    if (lmc_tok_vocab_size(tok) > lmc_engine_config(e)->vocab)
        return lmc_err(LMC_EINVAL, "the tokenizer has %d tokens but the model only %d", lmc_tok_vocab_size(tok),
                       lmc_engine_config(e)->vocab);
    return LMC_OK;
}

lmc_status lmc_server_start(lmc_server **out, lmc_engine *e, const lmc_tokenizer *tok, const lmc_serve_opts *o)
{
    *out = NULL;
    LMC_TRY(check_opts(o, e, tok));
    lmc_server *sv = calloc(1, sizeof *sv);
    if (!sv)
        return lmc_err(LMC_ENOMEM, "out of memory");
    sv->engine = e;
    sv->tok = tok;
    sv->o = *o;
    sv->host = lmc_strdup(o->host ? o->host : "127.0.0.1");
    sv->model_name = lmc_strdup(o->model_name ? o->model_name : "lmc");
    sv->api_key = o->api_key ? lmc_strdup(o->api_key) : NULL;
    sv->slots = lmc_engine_slots(e);
    sv->ctx = lmc_engine_ctx(e);
    sv->vocab = lmc_engine_config(e)->vocab;
    sv->max_tokens = o->max_tokens > 0 && o->max_tokens < sv->ctx ? o->max_tokens : sv->ctx;
    sv->eot_id = lmc_tok_special_id(tok, "<|endoftext|>");
    sv->im_start_id = lmc_tok_special_id(tok, "<|im_start|>");
    sv->im_end_id = lmc_tok_special_id(tok, "<|im_end|>");
    pthread_mutex_init(&sv->mu, NULL);
    srv_cond_init(&sv->engine_cv);
    srv_cond_init(&sv->idle_cv);
    srv_metrics_init(&sv->metrics);
    if (!sv->host || !sv->model_name || (o->api_key && !sv->api_key)) {
        lmc_server_free(sv);
        return lmc_err(LMC_ENOMEM, "out of memory");
    }
    if (pthread_create(&sv->engine_thread, NULL, srv_engine_main, sv)) {
        lmc_server_free(sv);
        return lmc_err(LMC_EIO, "cannot start the engine thread");
    }
    sv->engine_started = 1;
    lmc_status s = srv_http_start(sv);
    if (s) {
        lmc_server_shutdown(sv, 0);
        lmc_server_free(sv);
        return s;
    }
    *out = sv;
    return LMC_OK;
}

int lmc_server_port(const lmc_server *s) { return s->port; }

void lmc_server_shutdown(lmc_server *sv, double grace)
{
    if (sv->daemon)
        srv_http_stop(sv, grace);
    if (sv->engine_started) {
        pthread_mutex_lock(&sv->mu);
        sv->quit = 1;
        pthread_cond_signal(&sv->engine_cv);
        pthread_mutex_unlock(&sv->mu);
        pthread_join(sv->engine_thread, NULL);
        sv->engine_started = 0;
    }
}

void lmc_server_free(lmc_server *sv)
{
    if (!sv)
        return;
    lmc_server_shutdown(sv, 0);
    pthread_mutex_destroy(&sv->mu);
    pthread_cond_destroy(&sv->engine_cv);
    pthread_cond_destroy(&sv->idle_cv);
    pthread_mutex_destroy(&sv->metrics.mu);
    free(sv->host), free(sv->model_name), free(sv->api_key);
    free(sv);
}
