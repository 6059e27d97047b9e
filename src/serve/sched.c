/* sched.c: the engine thread. It admits queued requests into free slots,
 * runs one engine iteration (prefill of the new ones, one decode step
 * shared by all), and publishes each request's new text under the lock,
 * waking the HTTP thread that waits for it. A request the client
 * abandoned is dropped from its slot at the next iteration. The model runs
 * outside the lock, so HTTP threads can parse and queue meanwhile. */
#include "serve/serve_internal.h"

#include <stdlib.h>
#include <string.h>

void srv_req_free(srv_req *r)
{
    if (!r)
        return;
    srv_params_free(&r->p);
    lmc_sb_free(&r->out);
    lmc_sb_free(&r->stage);
    lmc_seq_free(&r->seq);
    lmc_text_free(&r->text);
    pthread_cond_destroy(&r->cv);
    free(r);
}

void srv_req_release(lmc_server *sv, srv_req *r)
{
    (void)sv;
    if (--r->refs == 0)
        srv_req_free(r);
}

int srv_enqueue(lmc_server *sv, srv_req *r, char *msg, size_t msglen)
{
    pthread_mutex_lock(&sv->mu);
    int status = 0;
    if (sv->stopping) {
        snprintf(msg, msglen, "the server is shutting down");
        status = 503;
    } else if (sv->queued >= sv->o.queue && sv->running + sv->queued >= sv->slots) {
        snprintf(msg, msglen, "too many concurrent requests: %d running in %d slots and %d queued (the limit); "
                 "retry later", sv->running, sv->slots, sv->queued);
        status = 429;
    } else {
        r->state = REQ_QUEUED;
        r->next = NULL;
        if (sv->queue_tail)
            sv->queue_tail->next = r;
        else
            sv->queue_head = r;
        sv->queue_tail = r;
        sv->queued++;
        pthread_cond_signal(&sv->engine_cv);
    }
    pthread_mutex_unlock(&sv->mu);
    return status;
}

/* engine thread: a token's bytes through the stop-string matcher into the
 * request's staging buffer (published under the lock after the step) */
static void on_token(lmc_seq *s, int token, void *ctx)
{
    srv_req *r = ctx;
    size_t len = 0;
    const char *b = lmc_tok_token_bytes(r->sv->tok, token, &len);
    r->n_tokens++;
    if (b && lmc_text_push(&r->text, b, len))
        lmc_seq_stop(s, LMC_FINISH_STOP);
    const char *p;
    size_t n = lmc_text_take(&r->text, 0, &p);
    lmc_sb_put(&r->stage, p, n);
}

/* under mu: the request is over; wake its HTTP thread, drop the engine's reference */
static void finish_req(lmc_server *sv, srv_req *r, lmc_finish why)
{
    r->finish = why;
    r->state = REQ_DONE;
    if (why == LMC_FINISH_CANCEL) {
        pthread_mutex_lock(&sv->metrics.mu);
        sv->metrics.cancelled++;
        pthread_mutex_unlock(&sv->metrics.mu);
    }
    pthread_cond_broadcast(&r->cv);
    srv_req_release(sv, r);
}

typedef struct {
    srv_req *req[4096];
    lmc_seq *seq[4096];
    int n;
    unsigned char used[4096];
} active_set;

static void drop(active_set *a, int i)
{
    a->used[a->seq[i]->slot] = 0;
    a->n--;
    a->req[i] = a->req[a->n];
    a->seq[i] = a->seq[a->n];
}

/* under mu: take queued requests into free slots */
static void admit(lmc_server *sv, active_set *a)
{
    while (sv->queue_head && a->n < sv->slots) {
        srv_req *r = sv->queue_head;
        sv->queue_head = r->next;
        if (!sv->queue_head)
            sv->queue_tail = NULL;
        sv->queued--;
        if (r->cancelled || sv->cancel_all) {
            finish_req(sv, r, LMC_FINISH_CANCEL);
            continue;
        }
        int slot = 0;
        while (a->used[slot])
            slot++;
        a->used[slot] = 1;
        r->seq.slot = slot;
        r->seq.on_token = on_token;
        r->seq.ctx = r;
        r->state = REQ_RUNNING;
        a->req[a->n] = r;
        a->seq[a->n++] = &r->seq;
        sv->running++;
    }
}

/* under mu: move staged text out, finish the sequences that ended */
static void publish(lmc_server *sv, active_set *a, lmc_status st, double now)
{
    for (int i = 0; i < a->n; i++) {
        srv_req *r = a->req[i];
        if (st != LMC_OK) {
            r->failed = 1;
            snprintf(r->errmsg, sizeof r->errmsg, "%s", lmc_errmsg());
            lmc_seq_stop(&r->seq, LMC_FINISH_CANCEL);
        }
        if (r->seq.state == LMC_SEQ_DONE) {
            const char *p;
            size_t n = lmc_text_take(&r->text, 1, &p);
            lmc_sb_put(&r->stage, p, n);
        }
        if (r->stage.len) {
            lmc_sb_put(&r->out, r->stage.s, r->stage.len);
            r->stage.len = 0;
        }
        if (r->n_tokens && !r->t_first) {
            r->t_first = now;
            srv_hist_add(&sv->metrics, &sv->metrics.ttft, now - r->t_arrive);
        }
        r->completion_tokens = r->n_tokens;
        if (r->seq.state == LMC_SEQ_DONE) {
            sv->running--;
            lmc_finish why = r->seq.finish;
            drop(a, i--);
            finish_req(sv, r, why);
        } else {
            pthread_cond_broadcast(&r->cv);
        }
    }
}

/* under mu: requests whose client left, or all of them at a forced stop */
static void reap_cancelled(lmc_server *sv, active_set *a)
{
    for (int i = 0; i < a->n; i++) {
        srv_req *r = a->req[i];
        if (!r->cancelled && !sv->cancel_all)
            continue;
        sv->running--;
        drop(a, i--);
        finish_req(sv, r, LMC_FINISH_CANCEL);
    }
    if (sv->cancel_all)
        admit(sv, a); /* drains the queue as cancelled */
}

void *srv_engine_main(void *arg)
{
    lmc_server *sv = arg;
    active_set *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    pthread_mutex_lock(&sv->mu);
    for (;;) {
        reap_cancelled(sv, a);
        admit(sv, a);
        if (a->n == 0) {
            pthread_cond_broadcast(&sv->idle_cv);
            if (sv->quit)
                break;
            pthread_cond_wait(&sv->engine_cv, &sv->mu);
            continue;
        }
        pthread_mutex_unlock(&sv->mu);
        double t0 = lmc_now();
        int rows = 0;
        for (int i = 0; i < a->n; i++)
            rows += a->seq[i]->state == LMC_SEQ_RUNNING;
        lmc_status st = lmc_engine_iterate(sv->engine, a->seq, a->n);
        double t1 = lmc_now();
        pthread_mutex_lock(&sv->metrics.mu);
        sv->metrics.decode_steps++;
        sv->metrics.decode_rows += (unsigned long long)rows;
        pthread_mutex_unlock(&sv->metrics.mu);
        srv_hist_add(&sv->metrics, &sv->metrics.step, t1 - t0);
        pthread_mutex_lock(&sv->mu);
        publish(sv, a, st, t1);
    }
    pthread_mutex_unlock(&sv->mu);
    free(a);
    return NULL;
}
