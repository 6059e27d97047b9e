/* server.c: the HTTP side, on libmicrohttpd with a thread per connection:
 * routing, authentication, the request body (size-limited, UTF-8
 * checked), queueing to the engine thread, and the responses: whole JSON
 * bodies, or server-sent events fed by a content-reader callback that
 * waits for the engine's next piece of text. Waits poll the client's
 * socket, so a client that disconnects frees its slot within ~0.2 s even
 * while nothing is being written. */
#define _GNU_SOURCE /* POLLRDHUP */
#include "serve/serve_internal.h"

#ifdef LMC_HAVE_MHD

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    lmc_server *sv;
    struct MHD_Connection *conn;
    srv_endpoint ep;
    lmc_sb body;
    int too_large, responded;
    srv_req *r;
    double t0;
    /* streaming */
    lmc_sb pending;
    size_t pend_off;
    int started, stream_done;
} conn_ctx;

/* ---------- helpers ---------- */

static void deadline_in(struct timespec *ts, double seconds)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    long long ns = ts->tv_nsec + (long long)(seconds * 1e9);
    ts->tv_sec += (time_t)(ns / 1000000000LL);
    ts->tv_nsec = (long)(ns % 1000000000LL);
}

static void cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
}

/* The peer closed or reset the connection (nothing we send will arrive). */
static int client_gone(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return 0;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* Strict UTF-8: no overlong forms, surrogates or code points past U+10FFFF. */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (!len || i + (size_t)len > n)
            return 0;
        unsigned cp = c & (0x7F >> len);
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += (size_t)len;
    }
    return 1;
}

static enum MHD_Result send_body(conn_ctx *c, int status, const char *type, const char *body, size_t len,
                                 const char *h1, const char *v1)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", type);
    if (h1)
        MHD_add_response_header(resp, h1, v1);
    enum MHD_Result rc = MHD_queue_response(c->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    c->responded = 1;
    srv_metrics_request(&c->sv->metrics, c->ep, status);
    return rc;
}

static enum MHD_Result send_json(conn_ctx *c, int status, lmc_sb *b)
{
    if (b->oom)
        return MHD_NO;
    return send_body(c, status, "application/json", b->s ? b->s : "", b->len, NULL, NULL);
}

static enum MHD_Result send_error(conn_ctx *c, const srv_error *e)
{
    lmc_sb b;
    lmc_sb_init(&b);
    srv_error_json(&b, e);
    const char *h = NULL, *v = NULL;
    if (e->status == 429 || e->status == 503)
        h = "Retry-After", v = "1";
    if (e->status == 405)
        h = "Allow", v = c->ep == EP_COMPLETIONS || c->ep == EP_CHAT ? "POST" : "GET";
    enum MHD_Result rc = b.oom ? MHD_NO : send_body(c, e->status, "application/json", b.s, b.len, h, v);
    lmc_sb_free(&b);
    return rc;
}

static enum MHD_Result fail(conn_ctx *c, int status, const char *type, const char *code, const char *fmt,
                            const char *arg)
{
    srv_error e;
    srv_set_error(&e, status, type, code, NULL, fmt, arg);
    return send_error(c, &e);
}

/* ---------- routing and authentication ---------- */

static srv_endpoint route(const char *url, const char **model)
{
    *model = NULL;
    if (!strcmp(url, "/v1/completions"))
        return EP_COMPLETIONS;
    if (!strcmp(url, "/v1/chat/completions"))
        return EP_CHAT;
    if (!strcmp(url, "/v1/models"))
        return EP_MODELS;
    if (!strncmp(url, "/v1/models/", 11)) {
        *model = url + 11;
        return EP_MODELS;
    }
    if (!strcmp(url, "/health"))
        return EP_HEALTH;
    if (!strcmp(url, "/metrics"))
        return EP_METRICS;
    return EP_OTHER;
}

/* 0 when allowed; compares in constant time */
static int check_key(const lmc_server *sv, struct MHD_Connection *conn, const char **why)
{
    if (!sv->api_key)
        return 0;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) {
        *why = "You didn't provide an API key. You need to provide your API key in an Authorization header using "
               "Bearer auth (i.e. Authorization: Bearer YOUR_KEY).";
        return -1;
    }
    const char *k = h + 7;
    size_t n = strlen(k), m = strlen(sv->api_key);
    unsigned diff = (unsigned)(n != m);
    for (size_t i = 0; i < m; i++)
        diff |= (unsigned char)sv->api_key[i] ^ (unsigned char)(i < n ? k[i] : 0);
    if (diff) {
        *why = "Incorrect API key provided.";
        return -1;
    }
    return 0;
}

static enum MHD_Result get_endpoint(conn_ctx *c, const char *model)
{
    lmc_server *sv = c->sv;
    lmc_sb b;
    lmc_sb_init(&b);
    enum MHD_Result rc;
    if (c->ep == EP_HEALTH) {
        pthread_mutex_lock(&sv->mu);
        int stopping = sv->stopping, running = sv->running, queued = sv->queued;
        pthread_mutex_unlock(&sv->mu);
        lmc_sb_printf(&b, "{\"status\":\"%s\",\"running\":%d,\"queued\":%d,\"slots\":%d}",
                      stopping ? "shutting down" : "ok", running, queued, sv->slots);
        rc = send_json(c, stopping ? 503 : 200, &b);
    } else if (c->ep == EP_METRICS) {
        pthread_mutex_lock(&sv->mu);
        int running = sv->running, queued = sv->queued;
        pthread_mutex_unlock(&sv->mu);
        srv_metrics_render(&sv->metrics, &b, queued, running, sv->slots);
        rc = b.oom ? MHD_NO : send_body(c, 200, "text/plain; version=0.0.4", b.s, b.len, NULL, NULL);
    } else if (model && strcmp(model, sv->model_name)) {
        rc = fail(c, 404, "invalid_request_error", "model_not_found", "The model '%.100s' does not exist", model);
    } else {
        srv_models_json(sv, &b, model);
        rc = send_json(c, 200, &b);
    }
    lmc_sb_free(&b);
    return rc;
}

/* After the headers: route, method, key and declared size; GETs answered. */
static enum MHD_Result first_call(conn_ctx *c, const char *url, const char *method)
{
    lmc_server *sv = c->sv;
    const char *model, *why;
    c->ep = route(url, &model);
    int post = c->ep == EP_COMPLETIONS || c->ep == EP_CHAT;
    if (c->ep == EP_OTHER) {
        srv_error e;
        srv_set_error(&e, 404, "invalid_request_error", "unknown_url", NULL, "Unknown request URL: %.8s %.200s",
                      method, url);
        return send_error(c, &e);
    }
    if (strcmp(method, post ? "POST" : "GET"))
        return fail(c, 405, "invalid_request_error", "method_not_allowed", "Method %.8s is not allowed here",
                    method);
    if (!strncmp(url, "/v1/", 4) && check_key(sv, c->conn, &why))
        return fail(c, 401, "invalid_request_error", "invalid_api_key", "%s", why);
    if (!post)
        return get_endpoint(c, model);
    const char *cl = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > sv->o.max_body) {
        srv_error e;
        srv_set_error(&e, 413, "invalid_request_error", "request_too_large", NULL,
                      "The request body of %.20s bytes exceeds this server's limit of %zu bytes", cl,
                      sv->o.max_body);
        return send_error(c, &e);
    }
    return MHD_YES;
}

/* ---------- generation ---------- */

static srv_req *new_request(lmc_server *sv, conn_ctx *c, req_params *p, srv_error *e)
{
    srv_req *r = calloc(1, sizeof *r);
    if (!r) {
        srv_set_error(e, 500, "server_error", NULL, NULL, "out of memory");
        return NULL;
    }
    r->p = *p;
    memset(p, 0, sizeof *p);
    r->sv = sv;
    cond_init(&r->cv);
    lmc_sb_init(&r->out);
    lmc_sb_init(&r->stage);
    pthread_mutex_lock(&sv->mu);
    unsigned long long id = ++sv->next_id;
    pthread_mutex_unlock(&sv->mu);
    snprintf(r->id, sizeof r->id, "%s-%llx%08llx", r->p.kind == EP_CHAT ? "chatcmpl" : "cmpl", id,
             (unsigned long long)(lmc_hash64(id ^ (uint64_t)(c->t0 * 1e9)) & 0xffffffffu));
    r->created = (long long)time(NULL);
    r->t_arrive = c->t0;
    r->refs = 2;
    lmc_status s = lmc_seq_init(&r->seq, r->p.prompt, r->p.n_prompt, r->p.max_new, &r->p.sp, r->p.seed);
    if (s == LMC_OK)
        s = lmc_seq_set_stop_ids(&r->seq, r->p.stop_ids, r->p.n_stop_ids);
    if (s == LMC_OK)
        s = lmc_seq_set_bias(&r->seq, r->p.bias_ids, r->p.bias_vals, r->p.n_bias);
    if (s == LMC_OK)
        s = lmc_text_init(&r->text, (const char *const *)r->p.stop, r->p.n_stop);
    if (s != LMC_OK) {
        srv_set_error(e, 500, "server_error", NULL, NULL, "%s", lmc_errmsg());
        srv_req_free(r);
        return NULL;
    }
    return r;
}

/* Waits until the request is done; -1 when the client left first (the
 * request is then cancelled). Under mu on return. */
static int wait_done(lmc_server *sv, conn_ctx *c)
{
    srv_req *r = c->r;
    while (r->state != REQ_DONE) {
        struct timespec ts;
        deadline_in(&ts, 0.2);
        pthread_cond_timedwait(&r->cv, &sv->mu, &ts);
        if (r->state != REQ_DONE && client_gone(c->conn)) {
            r->cancelled = 1;
            pthread_cond_signal(&sv->engine_cv);
            return -1;
        }
    }
    return 0;
}

static void account_done(lmc_server *sv, conn_ctx *c)
{
    srv_hist_add(&sv->metrics, &sv->metrics.latency, lmc_now() - c->t0);
    pthread_mutex_lock(&sv->metrics.mu);
    sv->metrics.completion_tokens += (unsigned long long)c->r->completion_tokens;
    pthread_mutex_unlock(&sv->metrics.mu);
}

static enum MHD_Result respond_whole(conn_ctx *c)
{
    lmc_server *sv = c->sv;
    pthread_mutex_lock(&sv->mu);
    int gone = wait_done(sv, c);
    pthread_mutex_unlock(&sv->mu);
    if (gone)
        return MHD_NO; /* nobody to answer: close */
    srv_req *r = c->r;
    account_done(sv, c);
    if (r->failed)
        return fail(c, 500, "server_error", NULL, "the engine failed: %s", r->errmsg);
    if (r->finish == LMC_FINISH_CANCEL)
        return fail(c, 503, "server_error", "shutting_down", "%s", "the server is shutting down");
    lmc_sb b;
    lmc_sb_init(&b);
    srv_completion_json(sv, r, &b);
    enum MHD_Result rc = send_json(c, 200, &b);
    lmc_sb_free(&b);
    return rc;
}

/* Fills c->pending with the next events; 0 when the client left. */
static int next_events(conn_ctx *c)
{
    lmc_server *sv = c->sv;
    srv_req *r = c->r;
    if (!c->started) {
        c->started = 1;
        if (r->p.kind == EP_CHAT || r->p.echo) {
            srv_chunk_json(sv, r, "", 0, 1, NULL, &c->pending);
            return 1;
        }
    }
    pthread_mutex_lock(&sv->mu);
    while (!r->out.len && r->state != REQ_DONE) {
        struct timespec ts;
        deadline_in(&ts, 0.2);
        pthread_cond_timedwait(&r->cv, &sv->mu, &ts);
        if (!r->out.len && r->state != REQ_DONE && client_gone(c->conn)) {
            r->cancelled = 1;
            pthread_cond_signal(&sv->engine_cv);
            pthread_mutex_unlock(&sv->mu);
            return 0;
        }
    }
    lmc_sb text = r->out;
    lmc_sb_init(&r->out);
    int done = r->state == REQ_DONE;
    pthread_mutex_unlock(&sv->mu);
    if (text.len)
        srv_chunk_json(sv, r, text.s, text.len, 0, NULL, &c->pending);
    lmc_sb_free(&text);
    if (!done)
        return 1;
    c->stream_done = 1;
    account_done(sv, c);
    if (r->failed || r->finish == LMC_FINISH_CANCEL) {
        srv_error e;
        if (r->failed)
            srv_set_error(&e, 500, "server_error", NULL, NULL, "the engine failed: %s", r->errmsg);
        else
            srv_set_error(&e, 503, "server_error", "shutting_down", NULL, "the server is shutting down");
        lmc_sb_puts(&c->pending, "data: ");
        srv_error_json(&c->pending, &e);
        lmc_sb_puts(&c->pending, "\n\n");
        return 1;
    }
    srv_chunk_json(sv, r, "", 0, 0, srv_finish_name(r->finish), &c->pending);
    if (r->p.include_usage)
        srv_usage_chunk(sv, r, &c->pending);
    lmc_sb_puts(&c->pending, "data: [DONE]\n\n");
    return 1;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    conn_ctx *c = cls;
    (void)pos;
    for (;;) {
        if (c->pend_off < c->pending.len) {
            size_t n = c->pending.len - c->pend_off < max ? c->pending.len - c->pend_off : max;
            memcpy(buf, c->pending.s + c->pend_off, n);
            c->pend_off += n;
            return (ssize_t)n;
        }
        c->pending.len = c->pend_off = 0;
        if (c->stream_done)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (!next_events(c) || c->pending.oom)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

static enum MHD_Result respond_stream(conn_ctx *c)
{
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_reader, c, NULL);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    enum MHD_Result rc = MHD_queue_response(c->conn, 200, resp);
    MHD_destroy_response(resp);
    c->responded = 1;
    srv_metrics_request(&c->sv->metrics, c->ep, 200);
    return rc;
}

static enum MHD_Result generate(conn_ctx *c)
{
    lmc_server *sv = c->sv;
    if (c->too_large) {
        srv_error e;
        srv_set_error(&e, 413, "invalid_request_error", "request_too_large", NULL,
                      "The request body exceeds this server's limit of %zu bytes", sv->o.max_body);
        return send_error(c, &e);
    }
    if (!utf8_valid((const unsigned char *)c->body.s, c->body.len))
        return fail(c, 400, "invalid_request_error", NULL, "%s", "The request body is not valid UTF-8");
    req_params p;
    srv_error e;
    if (srv_parse_request(sv, c->ep, c->body.s ? c->body.s : "", c->body.len, &p, &e)) {
        srv_params_free(&p);
        return send_error(c, &e);
    }
    srv_req *r = new_request(sv, c, &p, &e);
    if (!r) {
        srv_params_free(&p);
        return send_error(c, &e);
    }
    char msg[256];
    int refused = srv_enqueue(sv, r, msg, sizeof msg);
    if (refused) {
        srv_req_free(r);
        srv_set_error(&e, refused, refused == 429 ? "rate_limit_error" : "server_error",
                      refused == 429 ? "rate_limit_exceeded" : "shutting_down", NULL, "%s", msg);
        return send_error(c, &e);
    }
    c->r = r;
    pthread_mutex_lock(&sv->mu);
    sv->inflight++;
    pthread_mutex_unlock(&sv->mu);
    pthread_mutex_lock(&sv->metrics.mu);
    sv->metrics.prompt_tokens += (unsigned long long)r->p.n_prompt;
    pthread_mutex_unlock(&sv->metrics.mu);
    return r->p.stream ? respond_stream(c) : respond_whole(c);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    lmc_server *sv = cls;
    conn_ctx *c = *con_cls;
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c)
            return MHD_NO;
        c->sv = sv;
        c->conn = conn;
        c->t0 = lmc_now();
        lmc_sb_init(&c->body);
        lmc_sb_init(&c->pending);
        *con_cls = c;
        return first_call(c, url, method);
    }
    if (*upload_size) {
        if (!c->too_large && !c->responded) {
            if (c->body.len + *upload_size > sv->o.max_body) {
                c->too_large = 1;
                lmc_sb_free(&c->body);
            } else {
                lmc_sb_put(&c->body, upload, *upload_size);
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (c->responded)
        return MHD_YES;
    if (c->body.oom)
        return fail(c, 500, "server_error", NULL, "%s", "out of memory");
    return generate(c);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)conn, (void)toe;
    lmc_server *sv = cls;
    conn_ctx *c = *con_cls;
    if (!c)
        return;
    if (c->r) {
        pthread_mutex_lock(&sv->mu);
        if (c->r->state != REQ_DONE) { /* the client left mid-request: free its slot */
            c->r->cancelled = 1;
            pthread_cond_signal(&sv->engine_cv);
        }
        srv_req_release(sv, c->r);
        if (--sv->inflight == 0)
            pthread_cond_broadcast(&sv->idle_cv);
        pthread_mutex_unlock(&sv->mu);
    }
    lmc_sb_free(&c->body);
    lmc_sb_free(&c->pending);
    free(c);
    *con_cls = NULL;
}

/* ---------- start and stop ---------- */

static lmc_status resolve(const char *host, int port, struct sockaddr_storage *addr, int *v6)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc || !res)
        return lmc_err(LMC_EINVAL, "--host '%s': %s", host, gai_strerror(rc));
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *v6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    return LMC_OK;
}

lmc_status srv_http_start(lmc_server *sv)
{
    struct sockaddr_storage addr;
    int v6 = 0;
    LMC_TRY(resolve(sv->host, sv->o.port, &addr, &v6));
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
    unsigned maxconn = sv->o.max_connections > 0 ? (unsigned)sv->o.max_connections
                                                 : (unsigned)(2 * (sv->slots + sv->o.queue) + 64);
    sv->daemon = MHD_start_daemon(flags, (uint16_t)sv->o.port, NULL, NULL, handler, sv, MHD_OPTION_SOCK_ADDR,
                                  (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, completed, sv,
                                  MHD_OPTION_CONNECTION_LIMIT, maxconn, MHD_OPTION_CONNECTION_TIMEOUT,
                                  (unsigned)120, MHD_OPTION_END);
    if (!sv->daemon)
        return lmc_err(LMC_EIO, "cannot listen on %s port %d (in use, or not an address of this machine?)",
                       sv->host, sv->o.port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(sv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    sv->port = di ? di->port : sv->o.port;
    return LMC_OK;
}

int lmc_server_connections(const lmc_server *sv)
{
    const union MHD_DaemonInfo *di =
        sv->daemon ? MHD_get_daemon_info(sv->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS) : NULL;
    return di ? (int)di->num_connections : 0;
}

void srv_http_stop(lmc_server *sv, double grace)
{
    pthread_mutex_lock(&sv->mu);
    sv->stopping = 1;
    pthread_mutex_unlock(&sv->mu);
    MHD_socket fd = MHD_quiesce_daemon(sv->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    /* wait for the responses, not just the engine: a stream's last events
     * are written after its sequence ends */
    double end = lmc_now() + grace;
    pthread_mutex_lock(&sv->mu);
    while (sv->inflight && lmc_now() < end) {
        struct timespec ts;
        deadline_in(&ts, 0.1);
        pthread_cond_timedwait(&sv->idle_cv, &sv->mu, &ts);
    }
    if (sv->inflight) { /* out of time: cancel, and let the cancellations be sent */
        sv->cancel_all = 1;
        pthread_cond_signal(&sv->engine_cv);
        end = lmc_now() + 2;
        while (sv->inflight && lmc_now() < end) {
            struct timespec ts;
            deadline_in(&ts, 0.1);
            pthread_cond_timedwait(&sv->idle_cv, &sv->mu, &ts);
        }
    }
    pthread_mutex_unlock(&sv->mu);
    MHD_stop_daemon(sv->daemon);
    sv->daemon = NULL;
}

void srv_cond_init(pthread_cond_t *cv) { cond_init(cv); }

#else /* built without libmicrohttpd */

#include <time.h>

lmc_status srv_http_start(lmc_server *sv)
{
    (void)sv;
    return lmc_err(LMC_EUNSUPPORTED,
                   "this lmc was built without libmicrohttpd (install libmicrohttpd-dev and rebuild)");
}

void srv_http_stop(lmc_server *sv, double grace) { (void)sv, (void)grace; }

void srv_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
}

#endif
