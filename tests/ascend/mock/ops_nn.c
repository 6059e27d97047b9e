/* ops_nn.c: the mock's neural-network operators, computed in double from
 * the formulas of their pages (aclnnMatmul, aclnnLayerNorm,
 * aclnnLayerNormBackward, aclnnRmsNorm, aclnnRmsNormGrad, aclnnGeluV2,
 * aclnnGeluBackwardV2, aclnnSwiGlu, aclnnSwiGluGrad, aclnnLogSoftmax),
 * with their shape, dtype, attribute and contiguity rules. */
#include "ops.h"

static int contiguous(const aclTensor *t)
{
    int64_t want = 1;
    for (int d = t->nd - 1; d >= 0; d--) {
        if (t->dims[d] != 1 && t->st[d] != want)
            return 0;
        want *= t->dims[d];
    }
    return 1;
}

static int64_t last(const aclTensor *t) { return t->nd ? t->dims[t->nd - 1] : 1; }

/* ---- Matmul: 2-D (m,k) @ (k,n), same float dtype in and out ---- */

static void matmul_run(void *p)
{
    margs *a = p;
    int64_t m = a->t[0].dims[0], k = a->t[0].dims[1], n = a->t[1].dims[1];
    float *x = fbuf(m * k), *y = fbuf(k * n), *o = fbuf(m * n);
    if (mt_load(&a->t[0], x, a->op) && mt_load(&a->t[1], y, a->op)) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0;
                for (int64_t q = 0; q < k; q++)
                    s += (double)x[i * k + q] * y[q * n + j];
                o[i * n + j] = (float)s;
            }
        mt_store(&a->t[2], o, a->op);
    }
    free(x);
    free(y);
    free(o);
}

int aclnnMatmulGetWorkspaceSize(const aclTensor *self, const aclTensor *mat2, aclTensor *out, int8_t cube,
                                uint64_t *ws, aclOpExecutor **ex)
{
    margs *a = margs_new("aclnnMatmul");
    arg_t(a, 0, self, "self", 1);
    arg_t(a, 1, mat2, "mat2", 1);
    arg_t(a, 2, out, "out", 1);
    const aclTensor *x = &a->t[0], *y = &a->t[1], *o = &a->t[2];
    RULE(a, x->nd == 2 && y->nd == 2 && o->nd == 2, "the mock implements 2-D operands only");
    RULE(a, x->dims[1] == y->dims[0] && o->dims[0] == x->dims[0] && o->dims[1] == y->dims[1],
         "(%lld,%lld) @ (%lld,%lld) into (%lld,%lld)", (long long)x->dims[0], (long long)x->dims[1],
         (long long)y->dims[0], (long long)y->dims[1], (long long)o->dims[0], (long long)o->dims[1]);
    RULE(a, x->dtype == y->dtype && (x->dtype == M_F32 || x->dtype == M_BF16), "self and mat2 must share a float "
         "dtype (BFLOAT16 with FLOAT32 is not deduced on Atlas A2)");
    RULE(a, o->dtype == x->dtype, "out dtype %d differs from the inputs' %d", o->dtype, x->dtype);
    RULE(a, cube >= 0 && cube <= 4, "cubeMathType %d is not 0..4", cube);
    RULE(a, x->dims[1] > 0, "K is 0");
    return FINISH(a, matmul_run, out, ws, ex);
}

PHASE2(aclnnMatmul)

/* ---- LayerNorm over the last dim ---- */

static void layernorm_run(void *p)
{
    margs *a = p;
    int64_t C = last(&a->t[0]), N = mt_numel(&a->t[0]) / (C ? C : 1);
    float *x = fbuf(N * C), *w = fbuf(C), *b = fbuf(C), *y = fbuf(N * C), *mu = fbuf(N), *rs = fbuf(N);
    int ok = mt_load(&a->t[0], x, a->op) && (!a->has[1] || mt_load(&a->t[1], w, a->op)) &&
             (!a->has[2] || mt_load(&a->t[2], b, a->op));
    for (int64_t r = 0; ok && r < N; r++) {
        double s = 0, v = 0;
        for (int64_t c = 0; c < C; c++)
            s += x[r * C + c];
        s /= C;
        for (int64_t c = 0; c < C; c++)
            v += (x[r * C + c] - s) * (x[r * C + c] - s);
        double rstd = 1.0 / sqrt(v / C + a->f[0]);
        for (int64_t c = 0; c < C; c++)
            y[r * C + c] = (float)((x[r * C + c] - s) * rstd * (a->has[1] ? w[c] : 1) + (a->has[2] ? b[c] : 0));
        mu[r] = (float)s;
        rs[r] = (float)rstd;
    }
    if (ok && mt_store(&a->t[3], y, a->op) && a->has[4])
        mt_store(&a->t[4], mu, a->op);
    if (ok && a->has[5])
        mt_store(&a->t[5], rs, a->op);
    free(x), free(w), free(b), free(y), free(mu), free(rs);
}

/* stats shape: x's dims with the normalised (last) dim 1 */
static int stat_shape(const aclTensor *s, const aclTensor *x)
{
    if (s->nd != x->nd || last(s) != 1)
        return 0;
    for (int d = 0; d < x->nd - 1; d++)
        if (s->dims[d] != x->dims[d])
            return 0;
    return 1;
}

int aclnnLayerNormGetWorkspaceSize(const aclTensor *input, const aclIntArray *nshape, const aclTensor *weight,
                                   const aclTensor *bias, double eps, aclTensor *out, aclTensor *mean,
                                   aclTensor *rstd, uint64_t *ws, aclOpExecutor **ex)
{
    margs *a = margs_new("aclnnLayerNorm");
    arg_t(a, 0, input, "input", 1);
    arg_t(a, 1, weight, "weightOptional", 0);
    arg_t(a, 2, bias, "biasOptional", 0);
    arg_t(a, 3, out, "out", 1);
    arg_t(a, 4, mean, "meanOutOptional", 0);
    arg_t(a, 5, rstd, "rstdOutOptional", 0);
    a->f[0] = eps;
    int64_t C = last(&a->t[0]);
    RULE(a, nshape && nshape->n == 1 && nshape->v[0] == C, "normalizedShape must be [%lld] (the mock normalises the "
         "last dim)", (long long)C);
    RULE(a, (!weight || (a->t[1].nd == 1 && a->t[1].dims[0] == C)) && (!bias || (a->t[2].nd == 1 && a->t[2].dims[0] == C)),
         "weight and bias must have normalizedShape");
    RULE(a, mt_same_dims(&a->t[0], &a->t[3]), "out's shape differs from input's");
    RULE(a, (!mean || stat_shape(&a->t[4], &a->t[0])) && (!rstd || stat_shape(&a->t[5], &a->t[0])),
         "meanOut and rstdOut are [A1..Ai, 1]: input's shape with the normalised dim 1");
    return FINISH(a, layernorm_run, out, ws, ex);
}

PHASE2(aclnnLayerNorm)

static void layernorm_bwd_run(void *p)
{
    margs *a = p;
    int64_t C = last(&a->t[1]), N = mt_numel(&a->t[1]) / (C ? C : 1);
    float *dy = fbuf(N * C), *x = fbuf(N * C), *mu = fbuf(N), *rs = fbuf(N), *w = fbuf(C);
    float *dx = fbuf(N * C), *dw = fbuf(C), *db = fbuf(C);
    double *sw = calloc((size_t)C, sizeof(double)), *sb = calloc((size_t)C, sizeof(double));
    int ok = mt_load(&a->t[0], dy, a->op) && mt_load(&a->t[1], x, a->op) && mt_load(&a->t[2], mu, a->op) &&
             mt_load(&a->t[3], rs, a->op) && (!a->has[4] || mt_load(&a->t[4], w, a->op));
    for (int64_t r = 0; ok && r < N; r++) {
        double m1 = 0, m2 = 0;
        for (int64_t c = 0; c < C; c++) {
            double xh = (x[r * C + c] - mu[r]) * rs[r], g = dy[r * C + c] * (a->has[4] ? w[c] : 1);
            m1 += g;
            m2 += g * xh;
            sw[c] += dy[r * C + c] * xh;
            sb[c] += dy[r * C + c];
        }
        m1 /= C;
        m2 /= C;
        for (int64_t c = 0; c < C; c++) {
            double xh = (x[r * C + c] - mu[r]) * rs[r], g = dy[r * C + c] * (a->has[4] ? w[c] : 1);
            dx[r * C + c] = (float)(rs[r] * (g - m1 - xh * m2));
        }
    }
    for (int64_t c = 0; c < C; c++)
        dw[c] = (float)sw[c], db[c] = (float)sb[c];
    if (ok && a->ba.v[0])
        ok = mt_store(&a->t[6], dx, a->op);
    if (ok && a->ba.v[1])
        ok = mt_store(&a->t[7], dw, a->op);
    if (ok && a->ba.v[2])
        mt_store(&a->t[8], db, a->op);
    free(dy), free(x), free(mu), free(rs), free(w), free(dx), free(dw), free(db), free(sw), free(sb);
}

int aclnnLayerNormBackwardGetWorkspaceSize(const aclTensor *dy, const aclTensor *input, const aclIntArray *nshape,
                                           const aclTensor *mean, const aclTensor *rstd, const aclTensor *weight,
                                           const aclTensor *bias, const aclBoolArray *mask, aclTensor *gi,
                                           aclTensor *gw, aclTensor *gb, uint64_t *ws, aclOpExecutor **ex)
{
    margs *a = margs_new("aclnnLayerNormBackward");
    arg_t(a, 0, dy, "gradOut", 1);
    arg_t(a, 1, input, "input", 1);
    arg_t(a, 2, mean, "mean", 1);
    arg_t(a, 3, rstd, "rstd", 1);
    arg_t(a, 4, weight, "weightOptional", 0);
    arg_t(a, 5, bias, "biasOptional", 0);
    RULE(a, mask && mask->n == 3, "outputMask must have 3 entries");
    if (mask && mask->n == 3)
        a->ba = *mask;
    arg_t(a, 6, gi, "gradInputOut", a->ba.v[0]);
    arg_t(a, 7, gw, "gradWeightOut", a->ba.v[1]);
    arg_t(a, 8, gb, "gradBiasOut", a->ba.v[2]);
    int64_t C = last(&a->t[1]);
    RULE(a, nshape && nshape->n == 1 && nshape->v[0] == C, "normalizedShape must be [%lld]", (long long)C);
    RULE(a, mt_same_dims(&a->t[0], &a->t[1]) && (!gi || mt_same_dims(&a->t[6], &a->t[1])),
         "gradOut, input and gradInputOut must have one shape");
    RULE(a, stat_shape(&a->t[2], &a->t[1]) && stat_shape(&a->t[3], &a->t[1]),
         "mean and rstd are [A1..Ai, 1]: input's shape with the normalised dim 1");
    RULE(a, (!gw || mt_numel(&a->t[7]) == C) && (!gb || mt_numel(&a->t[8]) == C), "weight gradients are [%lld]",
         (long long)C);
    return FINISH(a, layernorm_bwd_run, gi, ws, ex);
}

PHASE2(aclnnLayerNormBackward)

/* ---- RmsNorm ---- */

static void rmsnorm_run(void *p)
{
    margs *a = p;
    int64_t C = last(&a->t[0]), N = mt_numel(&a->t[0]) / (C ? C : 1);
    float *x = fbuf(N * C), *g = fbuf(C), *y = fbuf(N * C), *rs = fbuf(N);
    int ok = mt_load(&a->t[0], x, a->op) && mt_load(&a->t[1], g, a->op);
    for (int64_t r = 0; ok && r < N; r++) {
        double s = 0;
        for (int64_t c = 0; c < C; c++)
            s += (double)x[r * C + c] * x[r * C + c];
        double rstd = 1.0 / sqrt(s / C + a->f[0]);
        for (int64_t c = 0; c < C; c++)
            y[r * C + c] = (float)(x[r * C + c] * rstd * g[c]);
        rs[r] = (float)rstd;
    }
    if (ok && mt_store(&a->t[2], y, a->op))
        mt_store(&a->t[3], rs, a->op);
    free(x), free(g), free(y), free(rs);
}

int aclnnRmsNormGetWorkspaceSize(const aclTensor *x, const aclTensor *gamma, double eps, const aclTensor *y,
                                 const aclTensor *rstd, uint64_t *ws, aclOpExecutor **ex)
{
    margs *a = margs_new("aclnnRmsNorm");
    arg_t(a, 0, x, "x", 1);
    arg_t(a, 1, gamma, "gamma", 1);
    arg_t(a, 2, y, "yOut", 1);
    arg_t(a, 3, rstd, "rstdOut", 1);
    a->f[0] = eps;
    RULE(a, a->t[1].nd == 1 && a->t[1].dims[0] == last(&a->t[0]), "gamma must be x's last dim (the mock)");
    RULE(a, mt_same_dims(&a->t[0], &a->t[2]), "yOut's shape differs from x's");
    RULE(a, stat_shape(&a->t[3], &a->t[0]) && a->t[3].dtype == M_F32,
         "rstdOut is FLOAT with x's dims, the normalised ones 1");
    return FINISH(a, rmsnorm_run, y, ws, ex);
}

PHASE2(aclnnRmsNorm)

static void rmsnorm_grad_run(void *p)
{
    margs *a = p;
    int64_t C = last(&a->t[1]), N = mt_numel(&a->t[1]) / (C ? C : 1);
    float *dy = fbuf(N * C), *x = fbuf(N * C), *rs = fbuf(N), *g = fbuf(C), *dx = fbuf(N * C), *dg = fbuf(C);
    double *sg = calloc((size_t)C, sizeof(double));
    int ok = mt_load(&a->t[0], dy, a->op) && mt_load(&a->t[1], x, a->op) && mt_load(&a->t[2], rs, a->op) &&
             mt_load(&a->t[3], g, a->op);
    for (int64_t r = 0; ok && r < N; r++) {
        double m = 0;
        for (int64_t c = 0; c < C; c++) {
            double xh = x[r * C + c] * rs[r];
            m += dy[r * C + c] * g[c] * xh;
            sg[c] += dy[r * C + c] * xh;
        }
        m /= C;
        for (int64_t c = 0; c < C; c++)
            dx[r * C + c] = (float)(rs[r] * (dy[r * C + c] * g[c] - x[r * C + c] * rs[r] * m));
    }
    for (int64_t c = 0; c < C; c++)
        dg[c] = (float)sg[c];
    if (ok && mt_store(&a->t[4], dx, a->op))
        mt_store(&a->t[5], dg, a->op);
    free(dy), free(x), free(rs), free(g), free(dx), free(dg), free(sg);
}

int aclnnRmsNormGradGetWorkspaceSize(const aclTensor *dy, const aclTensor *x, const aclTensor *rstd,
                                     const aclTensor *gamma, const aclTensor *dx, const aclTensor *dgamma,
                                     uint64_t *ws, aclOpExecutor **ex)
{
    margs *a = margs_new("aclnnRmsNormGrad");
    arg_t(a, 0, dy, "dy", 1);
    arg_t(a, 1, x, "x", 1);
    arg_t(a, 2, rstd, "rstd", 1);
    arg_t(a, 3, gamma, "gamma", 1);
    arg_t(a, 4, dx, "dxOut", 1);
    arg_t(a, 5, dgamma, "dgammaOut", 1);
    const aclTensor *xt = &a->t[1], *rt = &a->t[2];
    int rstd_ok = rt->nd == xt->nd - 1 && rt->dtype == M_F32;
    for (int d = 0; rstd_ok && d < rt->nd; d++)
        rstd_ok = rt->dims[d] == xt->dims[d];
    RULE(a, rstd_ok, "rstd is FLOAT of x_shape[0:n] (x's dims without the normalised one)");
    RULE(a, mt_same_dims(&a->t[0], xt) && mt_same_dims(&a->t[4], xt), "dy, x and dxOut must have one shape");
    RULE(a, a->t[5].dtype == M_F32 && mt_same_dims(&a->t[5], &a->t[3]), "dgammaOut is FLOAT, gamma's shape");
    return FINISH(a, rmsnorm_grad_run, dx, ws, ex);
}

PHASE2(aclnnRmsNormGrad)

/* ---- GELU ---- */

static double gelu(double x, int tanh_form, double *deriv)
{
    if (tanh_form) {
        double k = sqrt(2.0 / M_PI), u = k * (x + 0.044715 * x * x * x), t = tanh(u);
        *deriv = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x);
        return 0.5 * x * (1 + t);
    }
    *deriv = 0.5 * (1 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / sqrt(2 * M_PI);
    return 0.5 * x * (1 + erf(x / sqrt(2.0)));
}

static void gelu_run(void *p)
{
    margs *a = p;
    int64_t n = mt_numel(&a->t[2]);
    float *x = fbuf(n), *dy = fbuf(n);
    int bwd = a->has[1];
    if (mt_load(&a->t[0], x, a->op) && (!bwd || mt_load(&a->t[1], dy, a->op))) {
        for (int64_t i = 0; i < n; i++) {
            double d, y = gelu(x[i], (int)a->i[0], &d);
            x[i] = (float)(bwd ? dy[i] * d : y);
        }
        mt_store(&a->t[2], x, a->op);
    }
    free(x), free(dy);
}

int aclnnGeluV2GetWorkspaceSize(const aclTensor *x, int64_t approximate, aclTensor *y, uint64_t *ws,
                                aclOpExecutor **ex)
{
    margs *a = margs_new("aclnnGeluV2");
    arg_t(a, 0, x, "x", 1);
    arg_t(a, 2, y, "y", 1);
    a->i[0] = approximate;
    RULE(a, approximate == 0 || approximate == 1, "approximate %lld is not 0 (none) or 1 (tanh)", (long long)approximate);
    RULE(a, mt_same_dims(&a->t[0], &a->t[2]), "y's shape differs from x's");
    return FINISH(a, gelu_run, y, ws, ex);
}

int aclnnGeluBackwardV2GetWorkspaceSize(const aclTensor *dy, const aclTensor *self, char *approximate,
                                        aclTensor *gi, uint64_t *ws, aclOpExecutor **ex)
{
    margs *a = margs_new("aclnnGeluBackwardV2");
    arg_t(a, 0, self, "self", 1);
    arg_t(a, 1, dy, "gradOutput", 1);
    arg_t(a, 2, gi, "gradInput", 1);
    int tanh_form = approximate && !strcmp(approximate, "tanh");
    a->i[0] = tanh_form;
    RULE(a, approximate && (tanh_form || !strcmp(approximate, "none")), "approximate must be \"none\" or \"tanh\"");
    RULE(a, mt_same_dims(&a->t[0], &a->t[1]) && mt_same_dims(&a->t[0], &a->t[2]),
         "gradOutput, self and gradInput must have one shape (the mock does not broadcast here)");
    return FINISH(a, gelu_run, gi, ws, ex);
}

PHASE2(aclnnGeluV2)
PHASE2(aclnnGeluBackwardV2)

/* ---- SwiGlu: out = swish(A) * B, A and B the halves of the last dim ---- */

static void swiglu_run(void *p)
{
    margs *a = p;
    const aclTensor *x = &a->t[0];
    int64_t H2 = last(x), H = H2 / 2, N = mt_numel(x) / (H2 ? H2 : 1);
    int bwd = a->has[1];
    float *in = fbuf(N * H2), *dy = fbuf(N * H), *o = fbuf(bwd ? N * H2 : N * H);
    if (mt_load(x, in, a->op) && (!bwd || mt_load(&a->t[1], dy, a->op))) {
        for (int64_t r = 0; r < N; r++)
            for (int64_t j = 0; j < H; j++) {
                double A = in[r * H2 + j], B = in[r * H2 + H + j], s = 1.0 / (1.0 + exp(-A));
                if (!bwd) {
                    o[r * H + j] = (float)(A * s * B);
                } else {
                    double g = dy[r * H + j];
                    o[r * H2 + j] = (float)(g * B * (s + A * s * (1 - s)));
                    o[r * H2 + H + j] = (float)(g * A * s);
                }
            }
        mt_store(&a->t[2], o, a->op);
    }
    free(in), free(dy), free(o);
}

static int swiglu(const char *op, const aclTensor *dy, const aclTensor *x, int64_t dim, const aclTensor *out,
                  uint64_t *ws, aclOpExecutor **ex)
{
    margs *a = margs_new(op);
    arg_t(a, 0, x, "x", 1);
    if (dy)
        arg_t(a, 1, dy, "yGrad", 1);
    arg_t(a, 2, out, "out", 1);
    const aclTensor *xt = &a->t[0], *ot = &a->t[2];
    RULE(a, dim == -1 || dim == xt->nd - 1, "dim %lld: the mock splits the last dim only", (long long)dim);
    RULE(a, xt->nd > 0 && last(xt) % 2 == 0, "x's dim %lld must be even", (long long)dim);
    RULE(a, contiguous(xt) && contiguous(ot), "x and out must be contiguous (the page marks them not supporting "
         "non-contiguous tensors)");
    int64_t want = dy ? last(xt) : last(xt) / 2;
    RULE(a, ot->nd == xt->nd && last(ot) == want && mt_numel(ot) / (want ? want : 1) == mt_numel(xt) / (last(xt) ? last(xt) : 1),
         "out must be x's shape with dim %lld %s", (long long)dim, dy ? "unchanged" : "halved");
    RULE(a, !dy || (mt_numel(&a->t[1]) * 2 == mt_numel(xt)), "yGrad must be half of x");
    return FINISH(a, swiglu_run, out, ws, ex);
}

int aclnnSwiGluGetWorkspaceSize(const aclTensor *x, int64_t dim, const aclTensor *out, uint64_t *ws, aclOpExecutor **ex)
{
    return swiglu("aclnnSwiGlu", NULL, x, dim, out, ws, ex);
}

int aclnnSwiGluGradGetWorkspaceSize(const aclTensor *dy, const aclTensor *x, int64_t dim, const aclTensor *out,
                                    uint64_t *ws, aclOpExecutor **ex)
{
    return swiglu("aclnnSwiGluGrad", dy, x, dim, out, ws, ex);
}

PHASE2(aclnnSwiGlu)
PHASE2(aclnnSwiGluGrad)

/* ---- LogSoftmax over the last dim ---- */

static void logsoftmax_run(void *p)
{
    margs *a = p;
    int64_t C = last(&a->t[0]), N = mt_numel(&a->t[0]) / (C ? C : 1);
    float *x = fbuf(N * C);
    if (mt_load(&a->t[0], x, a->op)) {
        for (int64_t r = 0; r < N; r++) {
            double mx = -INFINITY, s = 0;
            for (int64_t c = 0; c < C; c++)
                mx = x[r * C + c] > mx ? x[r * C + c] : mx;
            for (int64_t c = 0; c < C; c++)
                s += exp((double)x[r * C + c] - mx);
            for (int64_t c = 0; c < C; c++)
                x[r * C + c] = (float)((double)x[r * C + c] - mx - log(s));
        }
        mt_store(&a->t[2], x, a->op);
    }
    free(x);
}

int aclnnLogSoftmaxGetWorkspaceSize(const aclTensor *self, int64_t dim, aclTensor *out, uint64_t *ws,
                                    aclOpExecutor **ex)
{
    margs *a = margs_new("aclnnLogSoftmax");
    arg_t(a, 0, self, "self", 1);
    arg_t(a, 2, out, "out", 1);
    RULE(a, dim == -1 || dim == a->t[0].nd - 1, "dim %lld: the mock implements the last dim", (long long)dim);
    RULE(a, mt_same_dims(&a->t[0], &a->t[2]), "out's shape differs from self's");
    return FINISH(a, logsoftmax_run, out, ws, ex);
}

PHASE2(aclnnLogSoftmax)
