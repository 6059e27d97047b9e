/* fuzz_http.c: libFuzzer target for the HTTP layer of `lmc serve`
 * (src/serve/server.c on libmicrohttpd: request line, headers, routing,
 * authentication, the body's size limit and UTF-8 check, chunked bodies,
 * then the JSON request path to the engine and back, whole or streamed).
 * Two real servers run in this process on 127.0.0.1, each with its own
 * engine on the cpu backend (a 1-layer GPT-2 of width 16, context 32, 2
 * slots, max_tokens 4, body limit 1024 bytes); the second requires the API
 * key "k3y". Each input is sent on a fresh connection and the first
 * response read back.
 * The first byte: bit 0 picks the server; bits 1-2 the framing: 0 the
 * rest is a request head, then (after the first blank line) a body, sent
 * with the body's Content-Length added; 1 the same body sent chunked
 * (Transfer-Encoding: chunked, chunk sizes from the body's bytes); 2 and 3
 * the rest sent as it is.
 * Properties of a response read whole:
 *  - the status line is HTTP/1.x with a status in [100, 599];
 *  - a JSON response (application/json) is valid JSON; an error (>= 400)
 *    holds "error" with a "message"; a 200 from /v1/completions or chat
 *    holds "choices";
 *  - an event stream is "data: JSON" events ended by "data: [DONE]";
 *  - the keyed server answers 200 to /v1/ only to a request holding its key.
 * No response within the wait (the head or body is incomplete, or the
 * request is still being served) is not a failure, but the server must
 * then still answer GET /health within 10 s (a hang is a failure).
 * After each input, once the client has closed its connections, the server
 * must close and clean up every one of them within 10 s: then no server
 * thread is still working on the input, so libFuzzer's leak check, made
 * when the input returns, sees a quiet process. Without this wait it once
 * reported an error response that a server thread was still building (its
 * text and its MHD_Response) as leaked, at 14,575 executions; that input
 * run alone 500 times left nothing behind at exit.
 * Seeds: requests to every endpoint, in the three framings. */
#define _GNU_SOURCE /* memmem */
#include "fuzz_common.h"
#include "lmc/backend.h"
#include "lmc/serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define KEY "k3y"
#define RESP_MAX (1 << 20)

static lmc_server *sv[2];
static char *resp;

static const char *CORPUS = "The quick brown fox jumps over the lazy dog. It's 12:30, isn't it? "
                            "<|im_start|>user\nhello<|im_end|>\n naïve café 3.14159\n";

static void die(const char *what)
{
    fprintf(stderr, "fuzz setup failed: %s: %s\n", what, lmc_errmsg());
    abort();
}

static lmc_server *start(const lmc_tokenizer *tok, const lmc_model_config *c, const float *p, const char *key)
{
    lmc_backend *be;
    lmc_engine *e;
    lmc_server *s;
    if (lmc_backend_open("cpu", 1, &be))
        die("backend");
    if (lmc_engine_open(&e, be, c, p, &(lmc_engine_opts){.slots = 2, .ctx = 32}))
        die("engine");
    lmc_serve_opts o = {.host = "127.0.0.1", .api_key = key, .model_name = "lmc", .max_tokens = 4, .queue = 4,
                        .max_body = 1024};
    if (lmc_server_start(&s, e, tok, &o))
        die("server");
    return s; /* the engine and backend live as long as the process */
}

/* ---------- seeds ---------- */

static void seed(const char *name, int mode, const char *head, const char *body)
{
    fuzz_seed2(name, mode, head, strlen(head), -1, body, body ? strlen(body) : 0);
}

static void seeds(void)
{
    const char *cmp = "{\"model\": \"lmc\", \"prompt\": \"Once upon a time\", \"max_tokens\": 3, \"temperature\": 0}";
    const char *chat = "{\"model\": \"lmc\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stream\": "
                       "true, \"stream_options\": {\"include_usage\": true}}";
    seed("seed-completion", 0, "POST /v1/completions HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n\r\n",
         cmp);
    seed("seed-chat-stream", 0, "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\n\r\n", chat);
    seed("seed-chat-chunked", 2, "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\n\r\n", chat);
    seed("seed-keyed", 1, "POST /v1/completions HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " KEY "\r\n\r\n", cmp);
    seed("seed-keyed-wrong", 1, "POST /v1/completions HTTP/1.1\r\nAuthorization: bearer k3x\r\n\r\n", cmp);
    seed("seed-models", 0, "GET /v1/models HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
    seed("seed-model", 1, "GET /v1/models/lmc HTTP/1.1\r\nAuthorization: Bearer " KEY "\r\n\r\n", NULL);
    seed("seed-model-unknown", 0, "GET /v1/models/gpt-4 HTTP/1.1\r\n\r\n", NULL);
    seed("seed-health", 0, "GET /health HTTP/1.1\r\n\r\n", NULL);
    seed("seed-metrics", 0, "GET /metrics HTTP/1.0\r\n\r\n", NULL);
    seed("seed-405", 0, "GET /v1/completions HTTP/1.1\r\n\r\n", NULL);
    seed("seed-404", 0, "DELETE /v2/x?y=1 HTTP/1.1\r\n\r\n", NULL);
    seed("seed-not-utf8", 0, "POST /v1/completions HTTP/1.1\r\n\r\n", "{\"prompt\": \"\xc3\x28\"}");
    seed("seed-raw", 4, "POST /v1/completions HTTP/1.1\r\nHost: a\r\nContent-Length: 35\r\nConnection: close\r\n\r\n",
         "{\"prompt\": \"hello\", \"max_tokens\": 2}");
    seed("seed-raw-expect", 4,
         "POST /v1/chat/completions HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 47\r\n\r\n",
         "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}");
    seed("seed-raw-chunked", 6,
         "POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\n{\"pro\r\n11\r\nmpt\": \"hi "
         "there\"\r\n1\r\n}\r\n0\r\nTrailer: t\r\n\r\n",
         NULL);
    seed("seed-raw-too-large", 4, "POST /v1/completions HTTP/1.1\r\nContent-Length: 999999\r\n\r\n", "{}");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (fuzz_seeding())
        seeds();
    const char *specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    lmc_tok_train_opts to = {.vocab_size = 300, .specials = specials, .n_specials = 3, .min_frequency = 1};
    lmc_tok_trainer *tr = NULL;
    lmc_tokenizer *tok;
    if (lmc_tok_trainer_new(&to, &tr) || lmc_tok_trainer_feed(tr, CORPUS, strlen(CORPUS)) ||
        lmc_tok_trainer_finish(tr, &tok))
        die("tokenizer");
    lmc_tok_trainer_free(tr);
    lmc_model_config c;
    lmc_layout l;
    if (lmc_config_preset("d6", &c))
        die("config");
    c.n_layer = 1, c.dim = 16, c.n_head = c.n_kv_head = 2, c.ffn_dim = 32, c.vocab = 300, c.max_seq = 32;
    if (lmc_config_finish(&c) || lmc_layout_build(&c, &l))
        die("config");
    float *p = lmc_alloc(l.total * sizeof(float), "params");
    lmc_weights_init(&c, &l, p, 7);
    sv[0] = start(tok, &c, p, NULL);
    sv[1] = start(tok, &c, p, KEY);
    lmc_free(p);
    lmc_layout_free(&l);
    resp = malloc(RESP_MAX + 1);
    return resp ? 0 : -1;
}

/* ---------- the connection ---------- */

/* connect(), finished when a signal interrupts it: libFuzzer's timer
 * (SIGALRM every 11 s with -timeout=20) stopped a connect() that was
 * waiting, at the 208,686th connection of a run (EINTR; an earlier stop
 * whose errno was not recorded was likely the same). A connect() slower
 * than 0.2 s is counted on stderr (1st, 2nd, 4th, 8th...). */
static int connect_wait(int fd, const struct sockaddr_in *a)
{
    static unsigned slow;
    double t0 = lmc_now();
    int ok = connect(fd, (const struct sockaddr *)a, sizeof *a) == 0;
    if (!ok && errno == EINTR) {
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        int r, err = 0;
        socklen_t n = sizeof err;
        while ((r = poll(&pf, 1, 100)) == 0 || (r < 0 && errno == EINTR))
            if (lmc_now() - t0 > 10) {
                errno = ETIMEDOUT;
                return 0;
            }
        if (r > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &n) == 0)
            errno = err, ok = err == 0;
    }
    double took = lmc_now() - t0;
    if (took > 0.2) {
        slow++;
        if ((slow & (slow - 1)) == 0)
            fprintf(stderr, "slow connect() number %u: %.2f s\n", slow, took);
    }
    return ok;
}

/* A fresh connection, from 127.0.0.2-251 in turn: each closed connection
 * holds its local port for a minute (TIME_WAIT), and at 500 or more
 * inputs a second one source address runs out of ports. */
static int connect_to(const lmc_server *s)
{
    static unsigned turn;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)lmc_server_port(s))};
    struct sockaddr_in from = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    from.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1 + turn++ % 250);
    if (fd < 0 || bind(fd, (struct sockaddr *)&from, sizeof from) != 0 || !connect_wait(fd, &a)) {
        fprintf(stderr, "connection %u from 127.0.0.%u: %s\n", turn, 2 + (turn - 1) % 250, strerror(errno));
        FUZZ_ASSERT(!"a connection to the server opens");
    }
    return fd;
}

/* Sends what it can (the server may close early, e.g. after a 413). */
static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;
        c += k, n -= (size_t)k;
    }
}

/* Reads into resp[*len..] until at least want bytes or until the
 * deadline; 1 when there are want bytes, 0 at EOF or timeout. */
static int read_until(int fd, size_t *len, size_t want, double deadline, int *eof)
{
    while (*len < want && *len < RESP_MAX) {
        double left = deadline - lmc_now();
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (left <= 0)
            return 0;
        int r = poll(&pf, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        ssize_t k = recv(fd, resp + *len, RESP_MAX - *len, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            *eof = 1;
            return 0;
        }
        *len += (size_t)k;
        resp[*len] = 0;
    }
    return *len >= want;
}

/* The value of header name in the head [h, end), or NULL. */
static const char *header(const char *h, const char *end, const char *name, size_t *vlen)
{
    size_t n = strlen(name);
    for (const char *l = strstr(h, "\r\n"); l && l + 2 < end; l = strstr(l + 2, "\r\n")) {
        const char *s = l + 2;
        if ((size_t)(end - s) > n && !strncasecmp(s, name, n) && s[n] == ':') {
            s += n + 1;
            while (*s == ' ')
                s++;
            const char *e = strstr(s, "\r\n");
            *vlen = (size_t)(e - s);
            return s;
        }
    }
    return NULL;
}

typedef struct {
    int status;
    const char *type; /* Content-Type (NUL-terminated in place), or "" */
    char *body;
    size_t body_len;
} response;

/* Decodes a chunked body in place from resp + off, reading more as
 * needed; 1 when whole. */
static int read_chunked(int fd, size_t *len, size_t off, double deadline, response *r)
{
    int eof = 0;
    size_t out = off;
    for (;;) {
        char *crlf;
        while (!(crlf = strstr(resp + off, "\r\n")))
            if (!read_until(fd, len, *len + 1, deadline, &eof))
                return 0;
        unsigned long n = strtoul(resp + off, NULL, 16);
        FUZZ_ASSERT(n < RESP_MAX);
        size_t data = (size_t)(crlf + 2 - resp);
        if (!read_until(fd, len, data + n + 2, deadline, &eof))
            return 0;
        if (n == 0)
            break;
        memmove(resp + out, resp + data, n);
        out += n, off = data + n + 2;
    }
    r->body_len = out - (size_t)(r->body - resp);
    r->body[r->body_len] = 0;
    return 1;
}

/* The first non-1xx response, read whole; 0 when none came in time. */
static int read_response(int fd, double wait, response *r)
{
    size_t len = 0, start = 0;
    int eof = 0;
    double deadline = lmc_now() + wait;
    resp[0] = 0;
    for (;;) {
        char *end;
        while (!(end = strstr(resp + start, "\r\n\r\n")))
            if (!read_until(fd, &len, len + 1, deadline, &eof))
                return 0;
        FUZZ_ASSERT(!strncmp(resp + start, "HTTP/1.", 7) && sscanf(resp + start + 9, "%3d", &r->status) == 1);
        FUZZ_ASSERT(r->status >= 100 && r->status <= 599);
        size_t vl;
        const char *cl = header(resp + start, end + 2, "Content-Length", &vl);
        const char *te = header(resp + start, end + 2, "Transfer-Encoding", &vl);
        const char *ct = header(resp + start, end + 2, "Content-Type", &vl);
        r->type = "";
        if (ct) {
            ((char *)ct)[vl] = 0;
            r->type = ct;
        }
        r->body = end + 4;
        size_t off = (size_t)(r->body - resp);
        if (r->status < 200) { /* 100 Continue: the real answer follows */
            start = off;
            continue;
        }
        if (te && !strncasecmp(te, "chunked", 7))
            return read_chunked(fd, &len, off, deadline, r);
        if (cl) {
            size_t n = strtoull(cl, NULL, 10);
            FUZZ_ASSERT(n < RESP_MAX);
            if (!read_until(fd, &len, off + n, deadline, &eof))
                return 0;
            r->body_len = n;
        } else { /* until the server closes */
            while (read_until(fd, &len, len + 1, deadline, &eof))
                ;
            if (!eof)
                return 0;
            r->body_len = len - off;
        }
        r->body[r->body_len] = 0;
        return 1;
    }
}

/* ---------- properties ---------- */

static lmc_json *parse_json(const char *s, size_t n)
{
    lmc_json *j = NULL;
    if (lmc_json_parse(s, n, "response", &j) != LMC_OK) {
        fprintf(stderr, "not JSON: %.*s\n", (int)(n < 500 ? n : 500), s);
        FUZZ_ASSERT(!"a JSON response is valid JSON");
    }
    return j;
}

static void check_json(const response *r, const char *path)
{
    lmc_json *j = parse_json(r->body, r->body_len);
    if (r->status >= 400) {
        const lmc_json *e = lmc_json_get(j, "error");
        FUZZ_ASSERT(e && e->type == LMC_JSON_OBJ);
        const lmc_json *m = lmc_json_get(e, "message");
        FUZZ_ASSERT(m && m->type == LMC_JSON_STR);
    } else if (r->status == 200 && (!strcmp(path, "/v1/completions") || !strcmp(path, "/v1/chat/completions"))) {
        const lmc_json *c = lmc_json_get(j, "choices");
        FUZZ_ASSERT(c && c->type == LMC_JSON_ARR);
    }
    lmc_json_free(j);
}

static void check_stream(const response *r)
{
    FUZZ_ASSERT(r->status == 200);
    const char *p = r->body, *end = r->body + r->body_len;
    int done = 0;
    while (p < end) {
        FUZZ_ASSERT(!done && !strncmp(p, "data: ", 6));
        const char *e = strstr(p, "\n\n");
        FUZZ_ASSERT(e != NULL);
        if (!strncmp(p + 6, "[DONE]", 6) && e == p + 12)
            done = 1;
        else
            lmc_json_free(parse_json(p + 6, (size_t)(e - p - 6)));
        p = e + 2;
    }
    FUZZ_ASSERT(done);
}

/* The request's path (up to '?' or space) from its request line. */
static void request_path(const char *req, size_t n, char *out, size_t cap)
{
    const char *sp = memchr(req, ' ', n);
    size_t i = 0;
    if (sp)
        for (const char *p = sp + 1; p < req + n && *p != ' ' && *p != '?' && *p != '\r' && i + 1 < cap; p++)
            out[i++] = *p;
    out[i] = 0;
}

/* GET /health answers 200 within 10 s (a connection refused while the
 * server is at its connection limit is tried again). */
static void health_check(const lmc_server *s)
{
    const char get[] = "GET /health HTTP/1.1\r\nConnection: close\r\n\r\n";
    double deadline = lmc_now() + 10;
    for (;;) {
        int fd = connect_to(s);
        send_all(fd, get, sizeof get - 1);
        response r;
        int got = read_response(fd, deadline - lmc_now(), &r);
        close(fd);
        if (got) {
            FUZZ_ASSERT(r.status == 200);
            return;
        }
        if (lmc_now() > deadline)
            FUZZ_ASSERT(!"the server answers GET /health within 10 s");
        usleep(10000);
    }
}

/* ---------- one input ---------- */

/* Builds the request of framing mode 0 (Content-Length) or 1 (chunked). */
static void frame(lmc_sb *out, const char *in, size_t n, int chunked)
{
    const char *sep = memmem(in, n, "\r\n\r\n", 4);
    size_t hn = sep ? (size_t)(sep - in) : n;
    const char *body = sep ? sep + 4 : in + n;
    size_t bn = (size_t)(in + n - body);
    lmc_sb_put(out, in, hn);
    if (!chunked) {
        lmc_sb_printf(out, "\r\nContent-Length: %zu\r\n\r\n", bn);
        lmc_sb_put(out, body, bn);
        return;
    }
    lmc_sb_puts(out, "\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (size_t i = 0; i < bn;) {
        size_t k = 1 + (unsigned char)body[i] % 17;
        k = k < bn - i ? k : bn - i;
        lmc_sb_printf(out, "%zx\r\n", k);
        lmc_sb_put(out, body + i, k);
        lmc_sb_puts(out, "\r\n");
        i += k;
    }
    lmc_sb_puts(out, "0\r\n\r\n");
}

/* Every connection closed and cleaned up within 10 s. */
static void settle(const lmc_server *s)
{
    double deadline = lmc_now() + 10;
    while (lmc_server_connections(s) > 0) {
        FUZZ_ASSERT(lmc_now() < deadline && "the server cleans up closed connections within 10 s");
        nanosleep(&(struct timespec){.tv_nsec = 50000}, NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int keyed = data[0] & 1, framing = (data[0] >> 1) & 3;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    lmc_sb req;
    lmc_sb_init(&req);
    if (framing < 2)
        frame(&req, in, n, framing);
    else
        lmc_sb_put(&req, in, n);
    FUZZ_ASSERT(!req.oom);
    lmc_server *s = sv[keyed];
    int fd = connect_to(s);
    send_all(fd, req.s, req.len);
    response r;
    /* a framed request is whole: its answer comes; a raw one may wait for more */
    int got = read_response(fd, framing < 2 ? 0.5 : 0.02, &r);
    close(fd);
    if (got) {
        char path[256];
        request_path(req.s, req.len, path, sizeof path);
        if (!strncmp(r.type, "application/json", 16))
            check_json(&r, path);
        else if (!strncmp(r.type, "text/event-stream", 17))
            check_stream(&r);
        if (keyed && r.status == 200 && !strncmp(path, "/v1/", 4))
            FUZZ_ASSERT(memmem(req.s, req.len, KEY, 3) != NULL);
    } else {
        health_check(s);
    }
    settle(s);
    lmc_sb_free(&req);
    return 0;
}
