/* test_serve_conn.c: lmc_server_connections counts the connections the
 * HTTP daemon holds: two while two clients wait in the middle of a request
 * (a third, answered and closed, no longer counts), then one and none as
 * they close. The server's fuzz target waits for 0 before each leak check.
 * A real server on 127.0.0.1, a 1-layer GPT-2 of width 16 on the cpu
 * backend. */
#include "lmc/backend.h"
#include "lmc/serve.h"
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* waits up to 10 s for the count to become `want`; returns the last count */
static int connections_become(const lmc_server *s, int want)
{
    double end = lmc_now() + 10;
    int n;
    while ((n = lmc_server_connections(s)) != want && lmc_now() < end)
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    return n;
}

static int connect_to(const lmc_server *s)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)lmc_server_port(s))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    return fd;
}

/* the head of a request, not yet ended: the server holds the connection
 * open, waiting for the rest */
static void half_request(int fd)
{
    const char head[] = "GET /health HTTP/1.1\r\nHost: a\r\n";
    CHECK(send(fd, head, sizeof head - 1, 0) == (ssize_t)(sizeof head - 1));
}

/* sends GET /health and reads its answer */
static void health(int fd)
{
    const char get[] = "GET /health HTTP/1.1\r\nHost: a\r\n\r\n";
    char buf[512];
    CHECK(send(fd, get, sizeof get - 1, 0) == (ssize_t)(sizeof get - 1));
    ssize_t k = recv(fd, buf, sizeof buf - 1, 0);
    CHECK(k > 12);
    buf[k > 0 ? k : 0] = 0;
    CHECK_MSG(!strncmp(buf, "HTTP/1.1 200", 12), "answer: %.40s", buf);
}

static void test_connections_counted(void)
{
    const char *text = "the quick brown fox jumps over the lazy dog, again and again. ";
    lmc_tok_train_opts to = {.vocab_size = 280, .min_frequency = 1};
    lmc_tok_trainer *tr = NULL;
    lmc_tokenizer *tok = NULL;
    CHECK_OK(lmc_tok_trainer_new(&to, &tr));
    CHECK_OK(lmc_tok_trainer_feed(tr, text, strlen(text)));
    CHECK_OK(lmc_tok_trainer_finish(tr, &tok));
    lmc_tok_trainer_free(tr);
    lmc_model_config c;
    lmc_layout l;
    CHECK_OK(lmc_config_preset("d6", &c));
    c.n_layer = 1, c.dim = 16, c.n_head = c.n_kv_head = 2, c.ffn_dim = 32, c.vocab = 280, c.max_seq = 32;
    CHECK_OK(lmc_config_finish(&c));
    CHECK_OK(lmc_layout_build(&c, &l));
    float *p = malloc(l.total * sizeof(float));
    lmc_weights_init(&c, &l, p, 7);
    lmc_backend *be = NULL;
    lmc_engine *e = NULL;
    lmc_server *s = NULL;
    CHECK_OK(lmc_backend_open("cpu", 1, &be));
    CHECK_OK(lmc_engine_open(&e, be, &c, p, &(lmc_engine_opts){.slots = 1, .ctx = 32}));
    lmc_serve_opts o = {.host = "127.0.0.1", .model_name = "lmc", .max_tokens = 4, .queue = 2, .max_body = 4096};
    CHECK_OK(lmc_server_start(&s, e, tok, &o));
    if (s) {
        CHECK(lmc_server_connections(s) == 0);
        int a = connect_to(s), b = connect_to(s), h = connect_to(s);
        half_request(a);
        half_request(b);
        health(h);
        close(h);
        CHECK_MSG(connections_become(s, 2) == 2, "two open connections: %d", lmc_server_connections(s));
        close(a);
        CHECK_MSG(connections_become(s, 1) == 1, "one closed: %d", lmc_server_connections(s));
        close(b);
        CHECK_MSG(connections_become(s, 0) == 0, "all closed: %d", lmc_server_connections(s));
        lmc_server_shutdown(s, 1);
        lmc_server_free(s);
    }
    lmc_engine_close(e);
    lmc_backend_close(be);
    lmc_tok_free(tok);
    lmc_layout_free(&l);
    free(p);
}

int main(void)
{
    RUN(test_connections_counted);
    return test_summary();
}
