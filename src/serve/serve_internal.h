/* serve_internal.h: the server's shared state. Locking: `mu` guards the
 * queue, the slots and every field of srv_req marked "shared"; the engine
 * thread owns the "engine" fields (its lmc_seq, text stream, staging
 * buffer) and publishes into the shared ones under `mu`. The metrics have
 * their own lock. */
#ifndef LMC_SERVE_INTERNAL_H
#define LMC_SERVE_INTERNAL_H

#include "lmc/serve.h"

#include <pthread.h>

typedef enum { EP_COMPLETIONS, EP_CHAT, EP_MODELS, EP_HEALTH, EP_METRICS, EP_OTHER, EP_COUNT } srv_endpoint;
typedef enum { REQ_QUEUED, REQ_RUNNING, REQ_DONE } req_state;

/* A request as parsed and validated on the HTTP thread. */
typedef struct {
    srv_endpoint kind;       /* EP_COMPLETIONS or EP_CHAT */
    int *prompt;
    int n_prompt;
    int max_new;
    lmc_sampling sp;
    uint64_t seed;
    char **stop;
    int n_stop;
    int *stop_ids;
    int n_stop_ids;
    int *bias_ids;
    float *bias_vals;
    int n_bias;
    int stream, include_usage, echo;
    char *echo_text;         /* the prompt as text, for echo */
    size_t echo_len;
} req_params;

typedef struct srv_req srv_req;
typedef struct lmc_server lmc_server;
struct srv_req {
    req_params p;
    lmc_server *sv;
    char id[48];
    long long created;
    double t_arrive;
    /* shared (under mu) */
    pthread_cond_t cv;
    req_state state;
    int cancelled;           /* the client went away, or shutdown */
    lmc_sb out;              /* text produced and not yet taken by the HTTP side */
    lmc_finish finish;
    int completion_tokens;
    int failed;              /* the engine failed: 500 */
    char errmsg[256];
    double t_first;          /* first token (0: none yet) */
    int refs;                /* the HTTP side and the engine side */
    srv_req *next;           /* queue link */
    /* engine-only */
    lmc_seq seq;
    lmc_textstream text;
    lmc_sb stage;
    int n_tokens;
};

/* ---------- metrics ---------- */

#define LAT_BUCKETS 14
typedef struct {
    double le[LAT_BUCKETS];
    unsigned long long count[LAT_BUCKETS + 1];
    double sum;
    unsigned long long n;
} srv_hist;

typedef struct {
    pthread_mutex_t mu;
    unsigned long long requests[EP_COUNT][6]; /* by status class: 200, 400, 401, 404/405, 413/429, 5xx */
    unsigned long long prompt_tokens, completion_tokens, cancelled, decode_steps, decode_rows;
    srv_hist latency, ttft, step;
    double started;
} srv_metrics;

void srv_metrics_init(srv_metrics *m);
void srv_metrics_request(srv_metrics *m, srv_endpoint ep, int status);
void srv_hist_add(srv_metrics *m, srv_hist *h, double v);
/* Prometheus text exposition (with gauges read from the server). */
void srv_metrics_render(srv_metrics *m, lmc_sb *out, int queued, int running, int slots);

/* ---------- the server ---------- */

struct lmc_server {
    lmc_engine *engine;
    const lmc_tokenizer *tok;
    lmc_serve_opts o;
    char *model_name, *api_key, *host;
    int slots, ctx, vocab, max_tokens, port;
    int eot_id, im_start_id, im_end_id; /* -1 when the tokenizer lacks them */
    struct MHD_Daemon *daemon;
    pthread_t engine_thread;
    int engine_started;
    pthread_mutex_t mu;
    pthread_cond_t engine_cv;  /* work arrived, or quit */
    pthread_cond_t idle_cv;    /* the engine ran out of work */
    srv_req *queue_head, *queue_tail;
    int queued, running;
    int inflight;              /* accepted requests whose response is not yet complete */
    int stopping, cancel_all, quit;
    unsigned long long next_id;
    srv_metrics metrics;
};

/* server.c: the HTTP daemon */
lmc_status srv_http_start(lmc_server *sv);
void srv_http_stop(lmc_server *sv, double grace);
void srv_cond_init(pthread_cond_t *cv); /* waits on CLOCK_MONOTONIC */

/* sched.c: the engine thread and the queue */
void *srv_engine_main(void *arg);
/* Queues r (refs must be 2): LMC_OK, or 429/503 conditions as a status
 * and message for the caller. Returns the HTTP status to send on refusal,
 * 0 when queued. */
int srv_enqueue(lmc_server *sv, srv_req *r, char *msg, size_t msglen);
void srv_req_release(lmc_server *sv, srv_req *r); /* under mu */
void srv_req_free(srv_req *r);

/* api.c: requests in, responses out */
typedef struct {
    int status;              /* 0 = ok */
    const char *type, *code; /* OpenAI error type and code */
    char param[64];
    char message[512];
} srv_error;

int srv_parse_request(lmc_server *sv, srv_endpoint kind, const char *body, size_t len, req_params *p,
                      srv_error *err);
void srv_params_free(req_params *p);
void srv_error_json(lmc_sb *out, const srv_error *e);
void srv_set_error(srv_error *e, int status, const char *type, const char *code, const char *param,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
const char *srv_finish_name(lmc_finish f);
/* Whole (non-streamed) response bodies */
void srv_completion_json(lmc_server *sv, const srv_req *r, lmc_sb *out);
/* Streamed chunks: text piece (may be empty), final chunk with finish
 * reason, usage chunk, [DONE] */
void srv_chunk_json(lmc_server *sv, const srv_req *r, const char *text, size_t n, int role, const char *finish,
                    lmc_sb *out);
void srv_usage_chunk(lmc_server *sv, const srv_req *r, lmc_sb *out);
void srv_models_json(lmc_server *sv, lmc_sb *out, const char *only);

#endif
