/* exec.c: the two phases of a mock aclnn operator. The first phase (each
 * operator's GetWorkspaceSize) checks the arguments and returns an
 * executor and the workspace it needs; the second checks that workspace
 * (device memory, large enough), consumes the executor and queues the
 * computation on the stream, where it runs when the stream is waited for.
 * The workspace is scribbled on when the operator runs, as a device's
 * operator would use it. */
#include "mock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct aclOpExecutor {
    char name[64];
    uint64_t ws;
    mock_task_fn run;
    void *arg;
    void (*free_fn)(void *);
    uint32_t magic;
    int queued; /* its second phase ran: an executor runs once */
};

#define MAGIC 0x61636c6e

typedef struct {
    aclOpExecutor *ex;
    uint64_t workspace;
} queued;

aclOpExecutor *mock_executor(const char *name, uint64_t ws, mock_task_fn run, void *arg, void (*free_fn)(void *))
{
    aclOpExecutor *e = calloc(1, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->ws = ws;
    e->run = run;
    e->arg = arg;
    e->free_fn = free_fn;
    e->magic = MAGIC;
    return e;
}

int mock_phase1(int st, const char *name, uint64_t ws, mock_task_fn run, void *arg, void (*free_fn)(void *),
                uint64_t *ws_out, aclOpExecutor **ex)
{
    if (!ws_out || !ex) {
        free_fn(arg);
        return mock_err(MOCK_PARAM_NULLPTR, "%sGetWorkspaceSize: workspaceSize or executor is NULL", name);
    }
    *ex = NULL;
    *ws_out = 0;
    if (st) {
        free_fn(arg);
        return st;
    }
    *ex = mock_executor(name, ws, run, arg, free_fn);
    *ws_out = ws;
    return 0;
}

static void run_queued(void *p)
{
    queued *q = p;
    if (q->ex->ws) {
        void *w = mock_dev(q->workspace, q->ex->ws, q->ex->name);
        if (!w) {
            mock_task_fail("%s: its workspace: %s", q->ex->name, aclGetRecentErrMsg());
            return;
        }
        memset(w, 0xcd, q->ex->ws);
    }
    q->ex->run(q->ex->arg);
}

static void free_queued(void *p)
{
    queued *q = p;
    q->ex->free_fn(q->ex->arg);
    q->ex->magic = 0;
    free(q->ex);
    free(q);
}

int mock_phase2(void *workspace, uint64_t ws, aclOpExecutor *ex, void *stream)
{
    if (!ex || ex->magic != MAGIC || ex->queued)
        return mock_err(MOCK_PARAM_INVALID, "an aclnn executor that is not one (NULL, or already run: executors "
                        "run once)");
    if (ws < ex->ws || (ex->ws && !workspace))
        return mock_err(MOCK_PARAM_INVALID, "%s: workspace of %llu bytes at %p given, its first phase asked for %llu",
                        ex->name, (unsigned long long)ws, workspace, (unsigned long long)ex->ws);
    if (ex->ws && !mock_dev((uint64_t)(uintptr_t)workspace, ex->ws, "the workspace")) {
        char why[600];
        snprintf(why, sizeof why, "%s", aclGetRecentErrMsg());
        return mock_err(MOCK_PARAM_INVALID, "%s: %s", ex->name, why);
    }
    ex->queued = 1;
    queued *q = malloc(sizeof *q);
    q->ex = ex;
    q->workspace = (uint64_t)(uintptr_t)workspace;
    char what[80];
    snprintf(what, sizeof what, "%s", ex->name);
    int e = mock_enqueue(stream, run_queued, q, free_queued, what);
    return e;
}
