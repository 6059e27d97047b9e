/* stream.c: mock streams and events. A stream is a queue of tasks that run
 * only when the host waits for it (aclrtSynchronizeStream), for an event
 * on it (aclrtSynchronizeEvent, aclrtQueryEventStatus), or when another
 * stream that waits on one of its events runs: so work read before a sync
 * is stale. A failed task fails its stream's next synchronisation. */
#define _GNU_SOURCE
#include "mock.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    mock_task_fn fn;
    void *arg;
    void (*free_fn)(void *);
    char what[48];
} task;

typedef struct stream {
    task *q;
    size_t n, cap, done; /* queued, capacity, run */
    size_t base;         /* tasks run before the queue last restarted: seq = base + index */
    int running, destroyed;
    char err[512];
} stream;

typedef struct {
    stream *s;
    size_t seq; /* recorded after task number seq of s (counted since its creation) */
    int recorded;
} event;

static __thread stream *current; /* the stream whose task is running */

void mock_task_fail(const char *fmt, ...)
{
    stream *s = current;
    if (!s || s->err[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    if (getenv("MOCK_TRACE"))
        fprintf(stderr, "ascend mock: task failed: %s\n", s->err);
}

int aclrtCreateStream(void **out)
{
    stream *s = calloc(1, sizeof *s);
    if (!s)
        return mock_err(207001, "aclrtCreateStream: out of memory");
    *out = s;
    return 0;
}

int mock_enqueue(void *sp, mock_task_fn fn, void *arg, void (*free_fn)(void *), const char *what)
{
    stream *s = sp;
    if (!s || s->destroyed) {
        if (free_fn)
            free_fn(arg);
        return mock_err(MOCK_BAD_ARG, "%s: %s stream", what, s ? "a destroyed" : "no (NULL)");
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        task *nq = realloc(s->q, cap * sizeof *nq);
        if (!nq)
            return mock_err(207001, "%s: out of memory queueing", what);
        s->q = nq;
        s->cap = cap;
    }
    task *t = &s->q[s->n++];
    *t = (task){fn, arg, free_fn, ""};
    snprintf(t->what, sizeof t->what, "%s", what);
    if (getenv("MOCK_TRACE"))
        fprintf(stderr, "ascend mock: queued %s on stream %p (#%zu)\n", what, sp, s->n);
    return 0;
}

/* Runs s's tasks up to (not including) index upto. After a failure the
 * rest are dropped, as a device stops a stream at its first error. */
static void run_until(stream *s, size_t upto)
{
    if (s->running) /* a wait on an event of the stream being run: already ordered */
        return;
    s->running = 1;
    stream *saved = current;
    while (s->done < upto) {
        task t = s->q[s->done++];
        current = s;
        if (!s->err[0])
            t.fn(t.arg);
        if (t.free_fn)
            t.free_fn(t.arg);
    }
    current = saved;
    if (s->done == s->n) { /* drained: reuse the queue from the start */
        s->base += s->n;
        s->done = s->n = 0;
    }
    s->running = 0;
}

int aclrtSynchronizeStream(void *sp)
{
    stream *s = sp;
    if (!s)
        return mock_err(MOCK_BAD_ARG, "aclrtSynchronizeStream: NULL stream (lmc never uses the default stream)");
    run_until(s, s->n);
    if (s->err[0]) {
        int e = mock_err(MOCK_RT_ERROR, "%s", s->err);
        s->err[0] = 0;
        return e;
    }
    return 0;
}

int aclrtDestroyStream(void *sp)
{
    stream *s = sp;
    if (!s)
        return mock_err(MOCK_BAD_ARG, "aclrtDestroyStream: NULL");
    if (s->n != s->done) {
        int e = mock_err(MOCK_BAD_ARG, "aclrtDestroyStream: %zu tasks still queued (destroy without a sync)",
                         s->n - s->done);
        run_until(s, s->n);
        free(s->q);
        free(s);
        return e;
    }
    free(s->q);
    free(s);
    return 0;
}

int aclrtCreateEvent(void **out)
{
    event *e = calloc(1, sizeof *e);
    if (!e)
        return mock_err(207001, "aclrtCreateEvent: out of memory");
    *out = e;
    return 0;
}

int aclrtDestroyEvent(void *ev)
{
    free(ev);
    return 0;
}

static void noop(void *arg) {}

/* The event marks the point after everything queued on the stream so far. */
int aclrtRecordEvent(void *ev, void *sp)
{
    event *e = ev;
    stream *s = sp;
    if (!e || !s)
        return mock_err(MOCK_BAD_ARG, "aclrtRecordEvent: NULL %s", !e ? "event" : "stream");
    int r = mock_enqueue(s, noop, NULL, NULL, "aclrtRecordEvent"); /* a task, so the seq survives queue reuse */
    if (r)
        return r;
    e->s = s;
    e->seq = s->base + s->n;
    e->recorded = 1;
    return 0;
}

/* Runs s up to absolute task number seq (nothing when already past). */
static void run_to_seq(stream *s, size_t seq)
{
    if (seq > s->base + s->done)
        run_until(s, seq - s->base);
}

static void reach(event *e)
{
    if (e->recorded)
        run_to_seq(e->s, e->seq);
}

typedef struct {
    event *e;
    stream *s;
    size_t seq;
} wait_task;

static void run_wait(void *arg)
{
    wait_task *w = arg;
    run_to_seq(w->s, w->seq);
}

int aclrtStreamWaitEvent(void *sp, void *ev)
{
    event *e = ev;
    if (!e || !sp)
        return mock_err(MOCK_BAD_ARG, "aclrtStreamWaitEvent: NULL %s", !e ? "event" : "stream");
    if (!e->recorded)
        return 0; /* an event never recorded is complete */
    wait_task *w = malloc(sizeof *w);
    *w = (wait_task){e, e->s, e->seq};
    return mock_enqueue(sp, run_wait, w, free, "aclrtStreamWaitEvent");
}

int aclrtSynchronizeEvent(void *ev)
{
    event *e = ev;
    if (!e)
        return mock_err(MOCK_BAD_ARG, "aclrtSynchronizeEvent: NULL");
    reach(e);
    if (e->recorded && e->s->err[0])
        return mock_err(MOCK_RT_ERROR, "%s", e->s->err);
    return 0;
}

/* The device makes progress on its own: a query runs the work up to e. */
int aclrtQueryEventStatus(void *ev, int *status)
{
    event *e = ev;
    if (!e || !status)
        return mock_err(MOCK_BAD_ARG, "aclrtQueryEventStatus: NULL argument");
    reach(e);
    *status = 1;
    return 0;
}
