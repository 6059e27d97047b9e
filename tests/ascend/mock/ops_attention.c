/* ops_attention.c: the mock's aclnnFlashAttentionScore and
 * aclnnFlashAttentionScoreGrad, BSND layout, computed in double from the
 * pages' formulas, with their rules: Nq = headNum, a whole multiple of Nkv
 * (query head h reads kv head h / (Nq / Nkv)), N in 1..256, D in 1..768,
 * softmax statistics [B,N,Sq,8] FLOAT, attenMask shapes per sparseMode
 * (0: the mask as given, [B,1,Sq,Skv] and friends; 2 and 3: the
 * compressed 2048x2048 causal mask, 1 above the diagonal), keepProb 1 (no
 * dropout: the mock implements no random mask). */
#include "ops.h"

enum { Q, K, V, MASK, SMAX, SSUM, OUT, DY, DQ, DK, DV };

typedef struct {
    int64_t B, Sq, Skv, N, Nkv, D;
    int mode;
    float scale;
} fa_shape;

static fa_shape shape_of(const margs *a)
{
    fa_shape s = {a->t[Q].dims[0], a->t[Q].dims[1], a->t[K].dims[1], a->t[Q].dims[2], a->t[K].dims[2], a->t[Q].dims[3],
                  (int)a->i[0], (float)a->f[0]};
    return s;
}

/* 1 when query i may not see key j */
static int masked(const fa_shape *s, const uint8_t *mask, const int64_t *mdims, int mnd, int64_t b, int64_t h,
                  int64_t i, int64_t j)
{
    if (s->mode == 2)
        return j > i;
    if (s->mode == 3)
        return j > i + s->Skv - s->Sq;
    if (!mask)
        return 0;
    int64_t mb = mnd == 4 && mdims[0] > 1 ? b : 0, mh = mnd == 4 && mdims[1] > 1 ? h : 0;
    int64_t Nm = mnd == 4 ? mdims[1] : 1;
    return mask[((mb * Nm + mh) * s->Sq + i) * s->Skv + j] != 0;
}

/* Loads q, k, v and the mask (as 0/1 bytes, sparseMode 0 only). */
static int load_qkv(margs *a, const fa_shape *s, float **q, float **k, float **v, uint8_t **mask)
{
    *q = fbuf(s->B * s->Sq * s->N * s->D);
    *k = fbuf(s->B * s->Skv * s->Nkv * s->D);
    *v = fbuf(s->B * s->Skv * s->Nkv * s->D);
    *mask = NULL;
    int ok = mt_load(&a->t[Q], *q, a->op) && mt_load(&a->t[K], *k, a->op) && mt_load(&a->t[V], *v, a->op);
    if (ok && a->has[MASK] && s->mode == 0) {
        int64_t n = mt_numel(&a->t[MASK]);
        float *f = fbuf(n);
        *mask = malloc((size_t)(n > 0 ? n : 1));
        ok = mt_load(&a->t[MASK], f, a->op);
        for (int64_t i = 0; ok && i < n; i++)
            (*mask)[i] = f[i] != 0;
        free(f);
    }
    return ok;
}

/* The compressed causal mask must hold what its page says: the mock reads
 * the rows and columns a call of this size would. */
static int causal_mask_ok(margs *a, const fa_shape *s)
{
    int64_t side = 2048, n = s->Sq < side ? s->Sq : side, m = s->Skv < side ? s->Skv : side;
    float *f = fbuf(side * side);
    int ok = mt_load(&a->t[MASK], f, a->op);
    for (int64_t i = 0; ok && i < n; i++)
        for (int64_t j = 0; ok && j < m; j++)
            if ((f[i * side + j] != 0) != (j > i)) {
                mock_task_fail("%s: sparseMode %d's attenMask is not the compressed causal mask (1 above the "
                               "diagonal): row %lld col %lld holds %g", a->op, s->mode, (long long)i, (long long)j,
                               f[i * side + j]);
                ok = 0;
            }
    free(f);
    return ok;
}

#define QI(b, i, h) ((((b) * s.Sq + (i)) * s.N + (h)) * s.D)
#define KI(b, j, g) ((((b) * s.Skv + (j)) * s.Nkv + (g)) * s.D)

static void fa_run(void *p)
{
    margs *a = p;
    fa_shape s = shape_of(a);
    float *q, *k, *v, *o = fbuf(s.B * s.Sq * s.N * s.D), *mx = fbuf(s.B * s.N * s.Sq * 8), *sm = fbuf(s.B * s.N * s.Sq * 8);
    uint8_t *mask;
    double *sc = malloc((size_t)(s.Skv > 0 ? s.Skv : 1) * sizeof(double));
    int ok = load_qkv(a, &s, &q, &k, &v, &mask) && (s.mode == 0 || causal_mask_ok(a, &s));
    for (int64_t b = 0; ok && b < s.B; b++)
        for (int64_t h = 0; h < s.N; h++) {
            int64_t g = h / (s.N / s.Nkv);
            for (int64_t i = 0; i < s.Sq; i++) {
                double m = -INFINITY, sum = 0;
                for (int64_t j = 0; j < s.Skv; j++) {
                    double d = 0;
                    for (int64_t c = 0; c < s.D; c++)
                        d += (double)q[QI(b, i, h) + c] * k[KI(b, j, g) + c];
                    sc[j] = masked(&s, mask, a->t[MASK].dims, a->t[MASK].nd, b, h, i, j) ? -INFINITY : d * s.scale;
                    m = sc[j] > m ? sc[j] : m;
                }
                for (int64_t j = 0; j < s.Skv; j++)
                    sum += sc[j] == -INFINITY ? 0 : exp(sc[j] - m);
                for (int64_t c = 0; c < s.D; c++) {
                    double acc = 0;
                    for (int64_t j = 0; j < s.Skv; j++)
                        acc += sc[j] == -INFINITY ? 0 : exp(sc[j] - m) * v[KI(b, j, g) + c];
                    o[QI(b, i, h) + c] = sum > 0 ? (float)(acc / sum) : 0.0f;
                }
                for (int e = 0; e < 8; e++) {
                    mx[((b * s.N + h) * s.Sq + i) * 8 + e] = (float)m;
                    sm[((b * s.N + h) * s.Sq + i) * 8 + e] = (float)sum;
                }
            }
        }
    if (ok)
        ok = mt_store(&a->t[OUT], o, a->op) && mt_store(&a->t[SMAX], mx, a->op) && mt_store(&a->t[SSUM], sm, a->op);
    free(q), free(k), free(v), free(o), free(mx), free(sm), free(mask), free(sc);
}

/* The rules both phases share. */
static void fa_rules(margs *a, int64_t head_num, const char *layout, double keep_prob, int64_t sparse,
                     int64_t pre, int64_t next, const void *const *unsupported)
{
    const aclTensor *q = &a->t[Q], *k = &a->t[K], *v = &a->t[V];
    char d1[64], d2[64];
    RULE(a, layout && !strcmp(layout, "BSND"), "inputLayout %s: the mock implements BSND", layout ? layout : "NULL");
    RULE(a, q->nd == 4 && k->nd == 4 && mt_same_dims(k, v), "q, k, v are 4-D BSND; key and value alike (%s, %s)",
         mt_dims(k, d1, 64), mt_dims(v, d2, 64));
    RULE(a, q->dims[0] == k->dims[0] && q->dims[3] == k->dims[3], "B and D must match between query and key");
    RULE(a, q->dims[2] == head_num, "headNum %lld is not query's N %lld", (long long)head_num, (long long)q->dims[2]);
    RULE(a, k->dims[2] > 0 && q->dims[2] % k->dims[2] == 0, "Nq %lld must be a whole multiple of Nkv %lld (GQA)",
         (long long)q->dims[2], (long long)k->dims[2]);
    RULE(a, q->dims[2] >= 1 && q->dims[2] <= 256, "N %lld is outside 1..256", (long long)q->dims[2]);
    RULE(a, q->dims[3] >= 1 && q->dims[3] <= 768, "D %lld is outside 1..768", (long long)q->dims[3]);
    RULE(a, q->dtype == k->dtype && q->dtype == v->dtype && (q->dtype == M_F32 || q->dtype == M_BF16),
         "query, key, value share a float dtype");
    RULE(a, keep_prob == 1.0, "keepProb %g: the mock implements no dropout", keep_prob);
    for (int i = 0; i < 4; i++)
        RULE(a, !unsupported[i], "pse, dropMask, paddingMask and prefix are not implemented by the mock");
    RULE(a, sparse == 0 || sparse == 2 || sparse == 3, "sparseMode %lld: the mock implements 0, 2 and 3",
         (long long)sparse);
    const aclTensor *m = &a->t[MASK];
    int64_t Sq = q->dims[1], Skv = k->dims[1];
    if (sparse == 2 || sparse == 3)
        RULE(a, a->has[MASK] && m->nd == 2 && m->dims[0] == 2048 && m->dims[1] == 2048 &&
                (m->dtype == M_BOOL || m->dtype == M_U8),
             "sparseMode %lld needs the compressed 2048x2048 BOOL/UINT8 attenMask", (long long)sparse);
    if (sparse == 0 && a->has[MASK]) {
        int four = m->nd == 4 && (m->dims[0] == 1 || m->dims[0] == q->dims[0]) &&
                   (m->dims[1] == 1 || m->dims[1] == q->dims[2]) && m->dims[2] == Sq && m->dims[3] == Skv;
        int two = m->nd == 2 && m->dims[0] == Sq && m->dims[1] == Skv;
        RULE(a, (four || two) && (m->dtype == M_BOOL || m->dtype == M_U8),
             "attenMask %s must be BOOL/UINT8 [B,N,Sq,Skv], [B,1,Sq,Skv], [1,1,Sq,Skv] or [Sq,Skv]", mt_dims(m, d1, 64));
        RULE(a, pre >= Sq && next >= Skv, "preTokens %lld / nextTokens %lld: with a full mask they must cover the "
             "whole matrix (the mock implements no band)", (long long)pre, (long long)next);
    }
    a->i[0] = sparse;
}

/* The arguments both phases take: q, k, v, the mask, the statistics. */
static margs *fa_args(const char *op, const aclTensor *q, const aclTensor *k, const aclTensor *v,
                      const aclTensor *mask, const aclTensor *smax, const aclTensor *ssum, int grad, double scale)
{
    margs *a = margs_new(op);
    arg_t(a, Q, q, "query", 1);
    arg_t(a, K, k, grad ? "keyIn" : "key", 1);
    arg_t(a, V, v, "value", 1);
    arg_t(a, MASK, mask, "attenMaskOptional", 0);
    arg_t(a, SMAX, smax, grad ? "softmaxMaxOptional" : "softmaxMaxOut", 1);
    arg_t(a, SSUM, ssum, grad ? "softmaxSumOptional" : "softmaxSumOut", 1);
    a->f[0] = scale;
    return a;
}

static int stat_ok(const aclTensor *t, const aclTensor *q)
{
    return t->nd == 4 && t->dtype == M_F32 && t->dims[0] == q->dims[0] && t->dims[1] == q->dims[2] &&
           t->dims[2] == q->dims[1] && t->dims[3] == 8;
}

int aclnnFlashAttentionScoreGetWorkspaceSize(const aclTensor *q, const aclTensor *k, const aclTensor *v,
                                             const aclTensor *pse, const aclTensor *drop, const aclTensor *pad,
                                             const aclTensor *mask, const aclIntArray *prefix, double scale,
                                             double keep_prob, int64_t pre, int64_t next, int64_t head_num,
                                             char *layout, int64_t inner, int64_t sparse, const aclTensor *smax,
                                             const aclTensor *ssum, const aclTensor *sout, const aclTensor *out,
                                             uint64_t *ws, aclOpExecutor **ex)
{
    margs *a = fa_args("aclnnFlashAttentionScore", q, k, v, mask, smax, ssum, 0, scale);
    const void *unsupported[4] = {pse, drop, pad, prefix};
    arg_t(a, OUT, out, "attentionOutOut", 1);
    fa_rules(a, head_num, layout, keep_prob, sparse, pre, next, unsupported);
    RULE(a, stat_ok(&a->t[SMAX], &a->t[Q]) && stat_ok(&a->t[SSUM], &a->t[Q]), "softmaxMaxOut and softmaxSumOut must "
         "be FLOAT [B,N,Sq,8]");
    RULE(a, mt_same_dims(&a->t[OUT], &a->t[Q]) && a->t[OUT].dtype == a->t[Q].dtype, "attentionOutOut must be "
         "query's shape and dtype");
    RULE(a, inner >= 0 && inner <= 2, "innerPrecise %lld is not 0..2", (long long)inner);
    (void)sout;
    return FINISH(a, fa_run, out, ws, ex);
}

PHASE2(aclnnFlashAttentionScore)

static void fag_run(void *p)
{
    margs *a = p;
    fa_shape s = shape_of(a);
    int64_t nq = s.B * s.Sq * s.N * s.D, nk = s.B * s.Skv * s.Nkv * s.D;
    float *q, *k, *v, *dy = fbuf(nq), *o = fbuf(nq), *mx = fbuf(s.B * s.N * s.Sq * 8), *sm = fbuf(s.B * s.N * s.Sq * 8);
    double *dq = calloc((size_t)nq + 1, sizeof(double)), *dk = calloc((size_t)nk + 1, sizeof(double));
    double *dv = calloc((size_t)nk + 1, sizeof(double)), *P = malloc((size_t)(s.Skv + 1) * sizeof(double));
    double *dP = malloc((size_t)(s.Skv + 1) * sizeof(double));
    uint8_t *mask;
    int ok = load_qkv(a, &s, &q, &k, &v, &mask) && (s.mode == 0 || causal_mask_ok(a, &s)) &&
             mt_load(&a->t[DY], dy, a->op) && mt_load(&a->t[OUT], o, a->op) && mt_load(&a->t[SMAX], mx, a->op) &&
             mt_load(&a->t[SSUM], sm, a->op);
    for (int64_t b = 0; ok && b < s.B; b++)
        for (int64_t h = 0; h < s.N; h++) {
            int64_t g = h / (s.N / s.Nkv);
            for (int64_t i = 0; i < s.Sq; i++) {
                int64_t si = ((b * s.N + h) * s.Sq + i) * 8;
                double Di = 0;
                for (int64_t c = 0; c < s.D; c++)
                    Di += (double)dy[QI(b, i, h) + c] * o[QI(b, i, h) + c];
                for (int64_t j = 0; j < s.Skv; j++) {
                    double d = 0, e = 0;
                    for (int64_t c = 0; c < s.D; c++) {
                        d += (double)q[QI(b, i, h) + c] * k[KI(b, j, g) + c];
                        e += (double)dy[QI(b, i, h) + c] * v[KI(b, j, g) + c];
                    }
                    P[j] = masked(&s, mask, a->t[MASK].dims, a->t[MASK].nd, b, h, i, j)
                               ? 0
                               : exp(d * s.scale - mx[si]) / sm[si];
                    dP[j] = e;
                }
                for (int64_t j = 0; j < s.Skv; j++) {
                    double dS = P[j] * (dP[j] - Di) * s.scale;
                    for (int64_t c = 0; c < s.D; c++) {
                        dq[QI(b, i, h) + c] += dS * k[KI(b, j, g) + c];
                        dk[KI(b, j, g) + c] += dS * q[QI(b, i, h) + c];
                        dv[KI(b, j, g) + c] += P[j] * dy[QI(b, i, h) + c];
                    }
                }
            }
        }
    float *fq = fbuf(nq), *fk = fbuf(nk), *fv = fbuf(nk);
    for (int64_t i = 0; i < nq; i++)
        fq[i] = (float)dq[i];
    for (int64_t i = 0; i < nk; i++)
        fk[i] = (float)dk[i], fv[i] = (float)dv[i];
    if (ok)
        ok = mt_store(&a->t[DQ], fq, a->op) && mt_store(&a->t[DK], fk, a->op) && mt_store(&a->t[DV], fv, a->op);
    free(q), free(k), free(v), free(dy), free(o), free(mx), free(sm), free(dq), free(dk), free(dv), free(P);
    free(dP), free(mask), free(fq), free(fk), free(fv);
}

int aclnnFlashAttentionScoreGradGetWorkspaceSize(
    const aclTensor *q, const aclTensor *k, const aclTensor *v, const aclTensor *dy, const aclTensor *pse,
    const aclTensor *drop, const aclTensor *pad, const aclTensor *mask, const aclTensor *smax, const aclTensor *ssum,
    const aclTensor *sin_, const aclTensor *attn_in, const aclIntArray *prefix, double scale, double keep_prob,
    int64_t pre, int64_t next, int64_t head_num, char *layout, int64_t inner, int64_t sparse, const aclTensor *dq,
    const aclTensor *dk, const aclTensor *dv, const aclTensor *dpse, uint64_t *ws, aclOpExecutor **ex)
{
    margs *a = fa_args("aclnnFlashAttentionScoreGrad", q, k, v, mask, smax, ssum, 1, scale);
    const void *unsupported[4] = {pse, drop, pad, prefix};
    arg_t(a, DY, dy, "dy", 1);
    arg_t(a, OUT, attn_in, "attentionInOptional", 1);
    arg_t(a, DQ, dq, "dqOut", 1);
    arg_t(a, DK, dk, "dkOut", 1);
    arg_t(a, DV, dv, "dvOut", 1);
    fa_rules(a, head_num, layout, keep_prob, sparse, pre, next, unsupported);
    RULE(a, stat_ok(&a->t[SMAX], &a->t[Q]) && stat_ok(&a->t[SSUM], &a->t[Q]), "softmaxMax and softmaxSum must be "
         "FLOAT [B,N,Sq,8] (lmc must adapt its lse (B,NH,T))");
    RULE(a, mt_same_dims(&a->t[DY], &a->t[Q]) && mt_same_dims(&a->t[OUT], &a->t[Q]), "dy and attentionIn must be "
         "query's shape");
    RULE(a, mt_same_dims(&a->t[DQ], &a->t[Q]) && mt_same_dims(&a->t[DK], &a->t[K]) && mt_same_dims(&a->t[DV], &a->t[V]),
         "dq, dk, dv must have the shapes of query, key, value");
    RULE(a, inner >= 0 && inner <= 2, "innerPrecise %lld is not 0..2", (long long)inner);
    (void)sin_;
    (void)dpse;
    return FINISH(a, fag_run, dq, ws, ex);
}

PHASE2(aclnnFlashAttentionScoreGrad)
