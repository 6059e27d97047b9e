/* ops.h: what the mock's operator files share: one argument record per
 * call (copies of the tensors and attributes, since the caller may
 * destroy them right after the first phase), checks that build the first
 * phase's error message, and the second phase, the same for every op. */
#ifndef LMC_ASCEND_MOCK_OPS_H
#define LMC_ASCEND_MOCK_OPS_H

#include "mock.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_T 12

typedef struct {
    const char *op;
    aclTensor t[MAX_T];
    int has[MAX_T];
    double f[8];
    int64_t i[8];
    aclIntArray ia;
    aclBoolArray ba;
    int st; /* the first error of the first phase */
} margs;

static inline margs *margs_new(const char *op)
{
    margs *a = calloc(1, sizeof *a);
    a->op = op;
    return a;
}

/* Slot k takes t (NULL allowed when optional); checks it is device memory. */
static inline void arg_t(margs *a, int k, const aclTensor *t, const char *name, int required)
{
    char what[128];
    snprintf(what, sizeof what, "%s: %s", a->op, name);
    if (!t) {
        if (required && !a->st)
            a->st = mock_err(MOCK_PARAM_NULLPTR, "%s is NULL", what);
        return;
    }
    a->t[k] = *t;
    a->has[k] = 1;
    if (!a->st)
        a->st = mt_check(t, what);
}

/* A first-phase rule: when cond fails, the call fails with the message. */
#define RULE(a, cond, ...)                                                          \
    do {                                                                            \
        if (!(a)->st && !(cond)) {                                                  \
            char m_[400];                                                           \
            snprintf(m_, sizeof m_, __VA_ARGS__);                                   \
            (a)->st = mock_err(MOCK_PARAM_INVALID, "%s: %s", (a)->op, m_);          \
        }                                                                           \
    } while (0)

/* Workspace a call asks for: some, so the backend must provide it. */
static inline uint64_t ws_for(const aclTensor *t) { return 512 + (uint64_t)(t ? mt_numel(t) : 0) * 4 / 8; }

#define PHASE2(name)                                                                \
    int name(void *w, uint64_t ws, aclOpExecutor *ex, void *stream)                 \
    {                                                                               \
        return mock_phase2(w, ws, ex, stream);                                      \
    }

#define FINISH(a, run, out_t, ws_out, ex) mock_phase1((a)->st, (a)->op, ws_for(out_t), run, a, free, ws_out, ex)

static inline float *fbuf(int64_t n) { return malloc((size_t)(n > 0 ? n : 1) * sizeof(float)); }

/* load slot k broadcast to slot o's dims into buf */
static inline int load_b(margs *a, int k, int o, float *buf)
{
    aclTensor v;
    if (!mt_broadcast(&a->t[k], &a->t[o], &v)) {
        mock_task_fail("%s: cannot broadcast", a->op);
        return 0;
    }
    return mt_load(&v, buf, a->op);
}

int mock_broadcast_ok(const aclTensor *x, const aclTensor *y, const aclTensor *out);

#endif
