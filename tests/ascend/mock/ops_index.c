/* ops_index.c: the mock's indexed operators and the optimizer (pages:
 * aclnnGather, aclnnScatterValue&aclnnInplaceScatterValue, aclnnEmbedding,
 * aclnnIndexAdd, aclnnIndexCopy&aclnnInplaceIndexCopy, aclnnApplyAdamW,
 * aclnnRotaryPositionEmbedding). An index out of range fails the stream:
 * the pages forbid it (a device would give garbage or an error). */
#include "ops.h"

static int index_dtype(const aclTensor *t) { return t->dtype == M_I32 || t->dtype == M_I64; }

static int64_t *ibuf(int64_t n) { return malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t)); }

/* ---- Gather along dim 1 of 2-D: out[i][j] = self[i][index[i][j]] ---- */

static void gather_run(void *p)
{
    margs *a = p;
    int64_t R = a->t[1].dims[0], K = a->t[1].dims[1], C = a->t[0].dims[1];
    float *x = fbuf(R * C), *o = fbuf(R * K);
    int64_t *ix = ibuf(R * K);
    int ok = mt_load(&a->t[0], x, a->op) && mt_load_i(&a->t[1], ix, a->op);
    for (int64_t i = 0; ok && i < R * K; i++) {
        if (ix[i] < 0 || ix[i] >= C) {
            mock_task_fail("%s: index %lld out of range [0, %lld)", a->op, (long long)ix[i], (long long)C);
            ok = 0;
        } else {
            o[i] = x[(i / K) * C + ix[i]];
        }
    }
    if (ok)
        mt_store(&a->t[2], o, a->op);
    free(x), free(o), free(ix);
}

int aclnnGatherGetWorkspaceSize(const aclTensor *self, const int64_t dim, const aclTensor *index, aclTensor *out,
                                uint64_t *ws, aclOpExecutor **ex)
{
    margs *a = margs_new("aclnnGather");
    arg_t(a, 0, self, "self", 1);
    arg_t(a, 1, index, "index", 1);
    arg_t(a, 2, out, "out", 1);
    RULE(a, dim == 1 && a->t[0].nd == 2, "the mock gathers along dim 1 of 2-D tensors");
    RULE(a, a->t[1].nd == a->t[0].nd && index_dtype(&a->t[1]), "index: INT32/INT64 with self's number of dims");
    RULE(a, mt_same_dims(&a->t[1], &a->t[2]) && a->t[1].dims[0] <= a->t[0].dims[0], "out must have index's shape");
    return FINISH(a, gather_run, out, ws, ex);
}

PHASE2(aclnnGather)

/* ---- InplaceScatterValue along dim 1 of 2-D ---- */

static void scatter_run(void *p)
{
    margs *a = p;
    int64_t R = a->t[0].dims[0], C = a->t[0].dims[1], K = a->t[1].dims[1], KR = a->t[1].dims[0];
    float *x = fbuf(R * C);
    int64_t *ix = ibuf(KR * K);
    int ok = mt_load(&a->t[0], x, a->op) && mt_load_i(&a->t[1], ix, a->op);
    for (int64_t i = 0; ok && i < KR * K; i++) {
        if (ix[i] < 0 || ix[i] >= C) {
            mock_task_fail("%s: index %lld out of range [0, %lld)", a->op, (long long)ix[i], (long long)C);
            ok = 0;
            break;
        }
        float *t = &x[(i / K) * C + ix[i]];
        *t = a->i[0] == 0 ? (float)a->f[0] : a->i[0] == 1 ? *t + (float)a->f[0] : *t * (float)a->f[0];
    }
    if (ok)
        mt_store(&a->t[0], x, a->op);
    free(x), free(ix);
}

int aclnnInplaceScatterValueGetWorkspaceSize(aclTensor *self, int64_t dim, const aclTensor *index,
                                             const aclScalar *value, int64_t reduce, uint64_t *ws, aclOpExecutor **ex)
{
    margs *a = margs_new("aclnnInplaceScatterValue");
    arg_t(a, 0, self, "selfRef", 1);
    arg_t(a, 1, index, "index", 1);
    RULE(a, value != NULL, "value is NULL");
    a->f[0] = value ? value->v : 0;
    a->i[0] = reduce;
    RULE(a, reduce >= 0 && reduce <= 2, "reduce %lld is not 0 (none), 1 (add) or 2 (multiply)", (long long)reduce);
    RULE(a, dim == 1 && a->t[0].nd == 2 && a->t[1].nd == 2, "the mock scatters along dim 1 of 2-D tensors");
    RULE(a, index_dtype(&a->t[1]) && a->t[1].dims[0] <= a->t[0].dims[0], "index: INT32/INT64, at most self's rows");
    return FINISH(a, scatter_run, self, ws, ex);
}

PHASE2(aclnnInplaceScatterValue)

/* ---- rows by index: Embedding, IndexAdd, InplaceIndexCopy (dim 0) ---- */

enum { R_EMBED, R_ADD, R_COPY };

/* weight/self in slot 0 (V,C), index slot 1, source slot 3, out slot 2 */
static void rows_run(void *p)
{
    margs *a = p;
    int64_t V = a->t[0].dims[0], C = a->t[0].dims[1], n = mt_numel(&a->t[1]);
    float *w = fbuf(V * C), *src = fbuf(n * C), *o = fbuf(a->i[0] == R_EMBED ? n * C : V * C);
    int64_t *ix = ibuf(n);
    int ok = mt_load(&a->t[0], w, a->op) && mt_load_i(&a->t[1], ix, a->op) &&
             (a->i[0] == R_EMBED || mt_load(&a->t[3], src, a->op));
    if (ok && a->i[0] != R_EMBED)
        memcpy(o, w, (size_t)(V * C) * sizeof(float));
    for (int64_t i = 0; ok && i < n; i++) {
        if (ix[i] < 0 || ix[i] >= V) {
            mock_task_fail("%s: index %lld out of range [0, %lld)", a->op, (long long)ix[i], (long long)V);
            ok = 0;
            break;
        }
        for (int64_t c = 0; c < C; c++) {
            if (a->i[0] == R_EMBED)
                o[i * C + c] = w[ix[i] * C + c];
            else if (a->i[0] == R_ADD)
                o[ix[i] * C + c] += (float)a->f[0] * src[i * C + c];
            else
                o[ix[i] * C + c] = src[i * C + c];
        }
    }
    if (ok)
        mt_store(&a->t[2], o, a->op);
    free(w), free(src), free(o), free(ix);
}

int aclnnEmbeddingGetWorkspaceSize(const aclTensor *weight, const aclTensor *indices, const aclTensor *out,
                                   uint64_t *ws, aclOpExecutor **ex)
{
    margs *a = margs_new("aclnnEmbedding");
    arg_t(a, 0, weight, "weight", 1);
    arg_t(a, 1, indices, "indices", 1);
    arg_t(a, 2, out, "out", 1);
    a->i[0] = R_EMBED;
    const aclTensor *w = &a->t[0], *ix = &a->t[1], *o = &a->t[2];
    int shape = w->nd == 2 && o->nd == ix->nd + 1 && o->dims[o->nd - 1] == w->dims[1];
    for (int d = 0; shape && d < ix->nd; d++)
        shape = o->dims[d] == ix->dims[d];
    RULE(a, index_dtype(ix), "indices must be INT32 or INT64");
    RULE(a, shape, "out must be indices' shape then weight's last dim");
    RULE(a, o->dtype == w->dtype, "out's dtype differs from weight's");
    return FINISH(a, rows_run, out, ws, ex);
}

static int rows_into(const char *op, int kind, const aclTensor *self, int64_t dim, const aclTensor *index,
                     const aclTensor *source, double alpha, const aclTensor *out, uint64_t *ws, aclOpExecutor **ex)
{
    margs *a = margs_new(op);
    arg_t(a, 0, self, "self", 1);
    arg_t(a, 1, index, "index", 1);
    arg_t(a, 2, out, "out", 1);
    arg_t(a, 3, source, "source", 1);
    a->i[0] = kind;
    a->f[0] = alpha;
    const aclTensor *s = &a->t[0], *ix = &a->t[1], *src = &a->t[3];
    RULE(a, dim == 0 && s->nd == 2, "the mock implements dim 0 of a 2-D self");
    RULE(a, ix->nd <= 1 && index_dtype(ix), "index must be 1-D INT32 or INT64");
    RULE(a, src->nd == 2 && src->dims[0] == mt_numel(ix) && src->dims[1] == s->dims[1] && src->dtype == s->dtype,
         "source must be (len(index), self's other dims) of self's dtype");
    RULE(a, mt_same_dims(s, &a->t[2]), "out must have self's shape");
    return FINISH(a, rows_run, out, ws, ex);
}

int aclnnIndexAddGetWorkspaceSize(const aclTensor *self, const int64_t dim, const aclTensor *index,
                                  const aclTensor *source, const aclScalar *alpha, aclTensor *out, uint64_t *ws,
                                  aclOpExecutor **ex)
{
    if (!alpha)
        return mock_err(MOCK_PARAM_NULLPTR, "aclnnIndexAdd: alpha is NULL");
    return rows_into("aclnnIndexAdd", R_ADD, self, dim, index, source, alpha->v, out, ws, ex);
}

int aclnnInplaceIndexCopyGetWorkspaceSize(aclTensor *self, int64_t dim, const aclTensor *index,
                                          const aclTensor *source, uint64_t *ws, aclOpExecutor **ex)
{
    return rows_into("aclnnInplaceIndexCopy", R_COPY, self, dim, index, source, 1, self, ws, ex);
}

PHASE2(aclnnEmbedding)
PHASE2(aclnnIndexAdd)
PHASE2(aclnnInplaceIndexCopy)

/* ---- ApplyAdamW (the page's formula; beta powers are of step t-1) ---- */

enum { P_VAR, P_M, P_V, P_G, P_B1P, P_B2P, P_LR, P_WD, P_B1, P_B2, P_EPS };

static void adamw_run(void *p)
{
    margs *a = p;
    int64_t n = mt_numel(&a->t[P_VAR]);
    float *x = fbuf(n), *m = fbuf(n), *v = fbuf(n), *g = fbuf(n), h[7];
    int ok = mt_load(&a->t[P_VAR], x, a->op) && mt_load(&a->t[P_M], m, a->op) && mt_load(&a->t[P_V], v, a->op) &&
             mt_load(&a->t[P_G], g, a->op);
    for (int k = 0; ok && k < 7; k++)
        ok = mt_load(&a->t[P_B1P + k], &h[k], a->op);
    if (ok) {
        double b1p = (double)h[0] * h[4], b2p = (double)h[1] * h[5], lr = h[2], wd = h[3], b1 = h[4], b2 = h[5];
        for (int64_t i = 0; i < n; i++) {
            double gi = a->i[1] ? -g[i] : g[i];
            double mi = b1 * m[i] + (1 - b1) * gi, vi = b2 * v[i] + (1 - b2) * gi * gi;
            double mh = mi / (1 - b1p), vh = vi / (1 - b2p);
            x[i] = (float)(x[i] - lr * mh / (sqrt(vh) + h[6]) - lr * wd * x[i]);
            m[i] = (float)mi;
            v[i] = (float)vi;
        }
        ok = mt_store(&a->t[P_VAR], x, a->op) && mt_store(&a->t[P_M], m, a->op) && mt_store(&a->t[P_V], v, a->op);
    }
    free(x), free(m), free(v), free(g);
}

int aclnnApplyAdamWGetWorkspaceSize(aclTensor *var, aclTensor *m, aclTensor *v, const aclTensor *b1p,
                                    const aclTensor *b2p, const aclTensor *lr, const aclTensor *wd,
                                    const aclTensor *b1, const aclTensor *b2, const aclTensor *eps,
                                    const aclTensor *grad, const aclTensor *max_grad_norm, bool amsgrad,
                                    bool maximize, uint64_t *ws, aclOpExecutor **ex)
{
    margs *a = margs_new("aclnnApplyAdamW");
    const aclTensor *hp[7] = {b1p, b2p, lr, wd, b1, b2, eps};
    static const char *const names[7] = {"beta1Power", "beta2Power", "lr", "weightDecay", "beta1", "beta2", "eps"};
    arg_t(a, P_VAR, var, "varRef", 1);
    arg_t(a, P_M, m, "mRef", 1);
    arg_t(a, P_V, v, "vRef", 1);
    arg_t(a, P_G, grad, "grad", 1);
    for (int k = 0; k < 7; k++) {
        arg_t(a, P_B1P + k, hp[k], names[k], 1);
        RULE(a, mt_numel(&a->t[P_B1P + k]) == 1 && a->t[P_B1P + k].dtype == a->t[P_VAR].dtype,
             "%s must be a [1] tensor of varRef's dtype", names[k]);
    }
    a->i[1] = maximize;
    RULE(a, !amsgrad, "amsgrad needs maxGradNormOptional (lmc never asks)");
    RULE(a, mt_same_dims(&a->t[P_VAR], &a->t[P_M]) && mt_same_dims(&a->t[P_VAR], &a->t[P_V]) &&
            mt_same_dims(&a->t[P_VAR], &a->t[P_G]), "varRef, mRef, vRef and grad must have one shape");
    (void)max_grad_norm;
    return FINISH(a, adamw_run, var, ws, ex);
}

PHASE2(aclnnApplyAdamW)

/* ---- RotaryPositionEmbedding, mode 0 (half), x (B,S,N,D) ---- */

static void rope_run(void *p)
{
    margs *a = p;
    const aclTensor *x = &a->t[0], *c = &a->t[1];
    int64_t B = x->dims[0], S = x->dims[1], N = x->dims[2], D = x->dims[3], h = D / 2;
    float *in = fbuf(B * S * N * D), *cs = fbuf(mt_numel(c)), *sn = fbuf(mt_numel(c)), *o = fbuf(B * S * N * D);
    if (mt_load(x, in, a->op) && mt_load(c, cs, a->op) && mt_load(&a->t[3], sn, a->op)) {
        for (int64_t b = 0; b < B; b++)
            for (int64_t s = 0; s < S; s++)
                for (int64_t n = 0; n < N; n++) {
                    int64_t ci = (((c->dims[0] > 1 ? b : 0) * c->dims[1] + (c->dims[1] > 1 ? s : 0)) * c->dims[2] +
                                  (c->dims[2] > 1 ? n : 0)) * D;
                    float *xi = in + ((b * S + s) * N + n) * D, *oi = o + ((b * S + s) * N + n) * D;
                    for (int64_t d = 0; d < D; d++) {
                        float rot = d < h ? -xi[d + h] : xi[d - h];
                        oi[d] = xi[d] * cs[ci + d] + rot * sn[ci + d];
                    }
                }
        mt_store(&a->t[2], o, a->op);
    }
    free(in), free(cs), free(sn), free(o);
}

static int contiguous4(const aclTensor *t)
{
    return t->st[3] == 1 && t->st[2] == t->dims[3] && t->st[1] == t->dims[2] * t->dims[3] &&
           t->st[0] == t->dims[1] * t->dims[2] * t->dims[3];
}

int aclnnRotaryPositionEmbeddingGetWorkspaceSize(const aclTensor *x, const aclTensor *cos, const aclTensor *sin,
                                                 int64_t mode, aclTensor *out, uint64_t *ws, aclOpExecutor **ex)
{
    margs *a = margs_new("aclnnRotaryPositionEmbedding");
    arg_t(a, 0, x, "x", 1);
    arg_t(a, 1, cos, "cos", 1);
    arg_t(a, 2, out, "out", 1);
    arg_t(a, 3, sin, "sin", 1);
    const aclTensor *xt = &a->t[0], *ct = &a->t[1];
    RULE(a, mode == 0, "mode %lld: the mock implements 0 (half)", (long long)mode);
    RULE(a, xt->nd == 4 && ct->nd == 4 && mt_same_dims(ct, &a->t[3]), "x, cos and sin are 4-D; cos and sin alike");
    RULE(a, mt_same_dims(xt, &a->t[2]) && contiguous4(&a->t[2]), "out must be x's shape and contiguous");
    RULE(a, xt->dims[3] % 2 == 0 && xt->dims[3] < 896 && ct->dims[3] == xt->dims[3], "D %lld must be even, below 896 "
         "and the same in cos", (long long)xt->dims[3]);
    /* half mode, BSND x: cos/sin 1S1D, BS1D or BSND */
    RULE(a, (ct->dims[0] == 1 || ct->dims[0] == xt->dims[0]) && ct->dims[1] == xt->dims[1] &&
            (ct->dims[2] == 1 || ct->dims[2] == xt->dims[2]), "cos/sin must be 1S1D, BS1D or BSND for a BSND x");
    RULE(a, xt->dims[0] < 1000 && xt->dims[2] < 1000, "B and N must be below 1000 in half mode");
    RULE(a, xt->dtype == ct->dtype && xt->dtype == a->t[2].dtype, "x, cos, sin and out share a dtype");
    return FINISH(a, rope_run, out, ws, ex);
}

PHASE2(aclnnRotaryPositionEmbedding)
