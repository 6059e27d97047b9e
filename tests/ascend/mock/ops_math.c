/* ops_math.c: the mock's elementwise, cast, copy and reduction operators
 * (pages: aclnnAdd&aclnnInplaceAdd, aclnnMul&aclnnInplaceMul,
 * aclnnMuls&aclnnInplaceMuls, aclnnCast, aclnnInplaceCopy,
 * aclnnInplaceZero, aclnnReduceSum, aclnnArange, aclnnGeTensor, aclnnLog,
 * aclnnExp): broadcasting as documented, outputs of the broadcast shape. */
#include "ops.h"

enum { B_ADD, B_MUL, B_GE };
enum { U_LOG, U_EXP, U_COPY, U_ZERO, U_MULS, U_CAST };

int mock_broadcast_ok(const aclTensor *x, const aclTensor *y, const aclTensor *out)
{
    aclTensor v;
    return mt_broadcast(x, out, &v) && (!y || mt_broadcast(y, out, &v));
}

static int is_float(int dt) { return dt == M_F32 || dt == M_BF16; }

static void binary_run(void *p)
{
    margs *a = p;
    int64_t n = mt_numel(&a->t[2]);
    float *x = fbuf(n), *y = fbuf(n);
    if (load_b(a, 0, 2, x) && load_b(a, 1, 2, y)) {
        for (int64_t i = 0; i < n; i++)
            x[i] = a->i[0] == B_ADD ? x[i] + (float)a->f[0] * y[i] : a->i[0] == B_MUL ? x[i] * y[i] : (float)(x[i] >= y[i]);
        mt_store(&a->t[2], x, a->op);
    }
    free(x);
    free(y);
}

static int binary(const char *op, int kind, const aclTensor *self, const aclTensor *other, const aclScalar *alpha,
                  const aclTensor *out, uint64_t *ws, aclOpExecutor **ex)
{
    margs *a = margs_new(op);
    char d1[64], d2[64], d3[64];
    arg_t(a, 0, self, "self", 1);
    arg_t(a, 1, other, "other", 1);
    arg_t(a, 2, out, "out", 1);
    a->i[0] = kind;
    a->f[0] = alpha ? alpha->v : 1.0;
    RULE(a, kind != B_ADD || alpha, "alpha is NULL");
    RULE(a, a->t[0].dtype == a->t[1].dtype, "self (dtype %d) and other (dtype %d) differ: the mock does not promote",
         a->t[0].dtype, a->t[1].dtype);
    RULE(a, kind == B_GE || a->t[2].dtype == a->t[0].dtype, "out dtype %d differs from the inputs'", a->t[2].dtype);
    RULE(a, mock_broadcast_ok(&a->t[0], &a->t[1], &a->t[2]), "out %s is not the broadcast of self %s and other %s",
         mt_dims(&a->t[2], d3, 64), mt_dims(&a->t[0], d1, 64), mt_dims(&a->t[1], d2, 64));
    RULE(a, a->t[0].nd <= 8 && a->t[2].nd <= 8, "more than 8 dims");
    return FINISH(a, binary_run, out, ws, ex);
}

int aclnnAddGetWorkspaceSize(const aclTensor *self, const aclTensor *other, const aclScalar *alpha, aclTensor *out,
                             uint64_t *ws, aclOpExecutor **ex)
{
    return binary("aclnnAdd", B_ADD, self, other, alpha, out, ws, ex);
}

/* selfRef: other must broadcast to self's own shape */
int aclnnInplaceAddGetWorkspaceSize(const aclTensor *self, const aclTensor *other, const aclScalar *alpha,
                                    uint64_t *ws, aclOpExecutor **ex)
{
    return binary("aclnnInplaceAdd", B_ADD, self, other, alpha, self, ws, ex);
}

int aclnnMulGetWorkspaceSize(const aclTensor *self, const aclTensor *other, aclTensor *out, uint64_t *ws,
                             aclOpExecutor **ex)
{
    return binary("aclnnMul", B_MUL, self, other, NULL, out, ws, ex);
}

int aclnnInplaceMulGetWorkspaceSize(aclTensor *self, const aclTensor *other, uint64_t *ws, aclOpExecutor **ex)
{
    return binary("aclnnInplaceMul", B_MUL, self, other, NULL, self, ws, ex);
}

int aclnnGeTensorGetWorkspaceSize(const aclTensor *self, const aclTensor *other, aclTensor *out, uint64_t *ws,
                                  aclOpExecutor **ex)
{
    return binary("aclnnGeTensor", B_GE, self, other, NULL, out, ws, ex);
}

PHASE2(aclnnAdd)
PHASE2(aclnnInplaceAdd)
PHASE2(aclnnMul)
PHASE2(aclnnInplaceMul)
PHASE2(aclnnGeTensor)

static void unary_run(void *p)
{
    margs *a = p;
    int64_t n = mt_numel(&a->t[2]);
    float *x = fbuf(n);
    int ok = a->i[0] == U_ZERO ? 1 : load_b(a, 0, 2, x);
    for (int64_t i = 0; ok && i < n; i++) {
        switch (a->i[0]) {
        case U_LOG:
            x[i] = logf(x[i]);
            break;
        case U_EXP:
            x[i] = expf(x[i]);
            break;
        case U_ZERO:
            x[i] = 0;
            break;
        case U_MULS:
            x[i] = x[i] * (float)a->f[0];
            break;
        default: /* copy, cast: conversion happens at the store */
            break;
        }
    }
    if (ok)
        mt_store(&a->t[2], x, a->op);
    free(x);
}

static int unary(const char *op, int kind, const aclTensor *self, const aclTensor *out, double s, uint64_t *ws,
                 aclOpExecutor **ex)
{
    margs *a = margs_new(op);
    char d1[64], d2[64];
    arg_t(a, 0, self, "self", 1);
    arg_t(a, 2, out, "out", 1);
    a->i[0] = kind;
    a->f[0] = s;
    int same = mt_same_dims(&a->t[0], &a->t[2]);
    RULE(a, kind == U_COPY ? mock_broadcast_ok(&a->t[0], NULL, &a->t[2]) : same, "shapes %s and %s do not match",
         mt_dims(&a->t[0], d1, 64), mt_dims(&a->t[2], d2, 64));
    RULE(a, kind == U_CAST || kind == U_COPY || a->t[0].dtype == a->t[2].dtype, "dtypes %d and %d differ",
         a->t[0].dtype, a->t[2].dtype);
    RULE(a, (kind != U_LOG && kind != U_EXP) || is_float(a->t[0].dtype), "dtype %d is not a float type",
         a->t[0].dtype);
    return FINISH(a, unary_run, out, ws, ex);
}

int aclnnLogGetWorkspaceSize(const aclTensor *self, aclTensor *out, uint64_t *ws, aclOpExecutor **ex)
{
    return unary("aclnnLog", U_LOG, self, out, 0, ws, ex);
}

int aclnnExpGetWorkspaceSize(const aclTensor *self, aclTensor *out, uint64_t *ws, aclOpExecutor **ex)
{
    return unary("aclnnExp", U_EXP, self, out, 0, ws, ex);
}

int aclnnInplaceCopyGetWorkspaceSize(aclTensor *self, const aclTensor *src, uint64_t *ws, aclOpExecutor **ex)
{
    return unary("aclnnInplaceCopy", U_COPY, src, self, 0, ws, ex);
}

int aclnnInplaceZeroGetWorkspaceSize(aclTensor *self, uint64_t *ws, aclOpExecutor **ex)
{
    return unary("aclnnInplaceZero", U_ZERO, self, self, 0, ws, ex);
}

int aclnnMulsGetWorkspaceSize(const aclTensor *self, const aclScalar *other, aclTensor *out, uint64_t *ws,
                              aclOpExecutor **ex)
{
    if (!other)
        return mock_err(MOCK_PARAM_NULLPTR, "aclnnMuls: other is NULL");
    return unary("aclnnMuls", U_MULS, self, out, other->v, ws, ex);
}

int aclnnInplaceMulsGetWorkspaceSize(aclTensor *self, const aclScalar *other, uint64_t *ws, aclOpExecutor **ex)
{
    if (!other)
        return mock_err(MOCK_PARAM_NULLPTR, "aclnnInplaceMuls: other is NULL");
    return unary("aclnnInplaceMuls", U_MULS, self, self, other->v, ws, ex);
}

int aclnnCastGetWorkspaceSize(const aclTensor *self, int dtype, aclTensor *out, uint64_t *ws, aclOpExecutor **ex)
{
    if (out && out->dtype != dtype)
        return mock_err(MOCK_PARAM_INVALID, "aclnnCast: dtype %d but out has dtype %d", dtype, out->dtype);
    return unary("aclnnCast", U_CAST, self, out, 0, ws, ex);
}

PHASE2(aclnnLog)
PHASE2(aclnnExp)
PHASE2(aclnnInplaceCopy)
PHASE2(aclnnInplaceZero)
PHASE2(aclnnMuls)
PHASE2(aclnnInplaceMuls)
PHASE2(aclnnCast)

/* ---- ReduceSum: sums over the dims listed, in double ---- */

static void reduce_run(void *p)
{
    margs *a = p;
    const aclTensor *x = &a->t[0];
    int64_t n = mt_numel(x), m = mt_numel(&a->t[2]);
    float *in = fbuf(n), *out = fbuf(m);
    double *acc = calloc((size_t)(m > 0 ? m : 1), sizeof(double));
    if (mt_load(x, in, a->op)) {
        int64_t idx[8] = {0};
        for (int64_t i = 0; i < n; i++) {
            int64_t o = 0;
            for (int d = 0; d < x->nd; d++) {
                int reduced = 0;
                for (int k = 0; k < a->ia.n; k++)
                    reduced |= (a->ia.v[k] + x->nd) % x->nd == d;
                if (!reduced)
                    o = o * x->dims[d] + idx[d];
            }
            acc[o] += in[i];
            for (int d = x->nd - 1; d >= 0 && ++idx[d] == x->dims[d]; d--)
                idx[d] = 0;
        }
        for (int64_t i = 0; i < m; i++)
            out[i] = (float)acc[i];
        mt_store(&a->t[2], out, a->op);
    }
    free(in);
    free(out);
    free(acc);
}

int aclnnReduceSumGetWorkspaceSize(const aclTensor *self, const aclIntArray *dims, bool keep, int dtype,
                                   aclTensor *out, uint64_t *ws, aclOpExecutor **ex)
{
    margs *a = margs_new("aclnnReduceSum");
    arg_t(a, 0, self, "self", 1);
    arg_t(a, 2, out, "out", 1);
    RULE(a, dims != NULL, "dims is NULL");
    if (dims)
        a->ia = *dims;
    int64_t want = 1;
    for (int d = 0; d < a->t[0].nd; d++) {
        int reduced = 0;
        for (int k = 0; k < a->ia.n; k++)
            reduced |= (a->ia.v[k] + a->t[0].nd) % a->t[0].nd == d;
        if (!reduced)
            want *= a->t[0].dims[d];
    }
    RULE(a, a->t[2].dtype == dtype, "dtype %d and out's dtype %d differ", dtype, a->t[2].dtype);
    RULE(a, mt_numel(&a->t[2]) == want, "out has %lld elements, the reduction %lld", (long long)mt_numel(&a->t[2]),
         (long long)want);
    RULE(a, keep ? a->t[2].nd == a->t[0].nd : a->t[2].nd == a->t[0].nd - a->ia.n, "out has %d dims (keepDims %d)",
         a->t[2].nd, (int)keep);
    return FINISH(a, reduce_run, out, ws, ex);
}

PHASE2(aclnnReduceSum)

/* ---- Arange ---- */

static void arange_run(void *p)
{
    margs *a = p;
    int64_t n = mt_numel(&a->t[2]);
    float *x = fbuf(n);
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(a->f[0] + (double)i * a->f[2]);
    mt_store(&a->t[2], x, a->op);
    free(x);
}

int aclnnArangeGetWorkspaceSize(const aclScalar *start, const aclScalar *end, const aclScalar *step, aclTensor *out,
                                uint64_t *ws, aclOpExecutor **ex)
{
    margs *a = margs_new("aclnnArange");
    arg_t(a, 2, out, "out", 1);
    RULE(a, start && end && step, "start, end or step is NULL");
    if (a->st)
        return FINISH(a, arange_run, out, ws, ex);
    a->f[0] = start->v;
    a->f[2] = step->v;
    int64_t n = (int64_t)ceil((end->v - start->v) / step->v);
    RULE(a, step->v > 0 ? start->v <= end->v : start->v >= end->v, "start %g, end %g, step %g is not a range",
         start->v, end->v, step->v);
    RULE(a, a->t[2].nd == 1 && a->t[2].dims[0] == n, "out must be (%lld)", (long long)n);
    return FINISH(a, arange_run, out, ws, ex);
}

PHASE2(aclnnArange)
