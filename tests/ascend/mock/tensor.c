/* tensor.c: the mock's aclTensor, aclScalar, aclIntArray, aclBoolArray,
 * and moving a tensor view's elements to and from plain host arrays. */
#include "mock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

aclTensor *aclCreateTensor(const int64_t *dims, uint64_t nd, int dtype, const int64_t *strides, int64_t offset,
                           int format, const int64_t *storage_dims, uint64_t storage_nd, void *data)
{
    if (nd > 8 || (nd && (!dims || !strides)) || offset < 0 || format != 2 || !mt_elem(dtype)) {
        mock_err(MOCK_PARAM_INVALID, "aclCreateTensor: %llu dims, format %d, dtype %d, offset %lld not supported by "
                 "the mock (ND format, up to 8 dims)", (unsigned long long)nd, format, dtype, (long long)offset);
        return NULL;
    }
    aclTensor *t = calloc(1, sizeof *t);
    t->nd = (int)nd;
    t->dtype = dtype;
    for (uint64_t i = 0; i < nd; i++) {
        if (dims[i] < 0 || strides[i] < 0) {
            mock_err(MOCK_PARAM_INVALID, "aclCreateTensor: dim %llu has size %lld, stride %lld (negative)",
                     (unsigned long long)i, (long long)dims[i], (long long)strides[i]);
            free(t);
            return NULL;
        }
        t->dims[i] = dims[i];
        t->st[i] = strides[i];
    }
    t->addr = (uint64_t)(uintptr_t)data + (uint64_t)offset * mt_elem(dtype);
    return t;
}

int aclDestroyTensor(const aclTensor *t)
{
    free((void *)t);
    return 0;
}

aclScalar *aclCreateScalar(void *value, int dtype)
{
    aclScalar *s = calloc(1, sizeof *s);
    s->dtype = dtype;
    switch (dtype) {
    case M_F32:
        s->v = *(float *)value;
        break;
    case M_I64:
        s->v = (double)*(int64_t *)value;
        break;
    case M_I32:
        s->v = *(int32_t *)value;
        break;
    default:
        mock_err(MOCK_PARAM_INVALID, "aclCreateScalar: dtype %d not supported by the mock", dtype);
        free(s);
        return NULL;
    }
    return s;
}

int aclDestroyScalar(const aclScalar *s)
{
    free((void *)s);
    return 0;
}

aclIntArray *aclCreateIntArray(const int64_t *v, uint64_t n)
{
    if (n > 16)
        return NULL;
    aclIntArray *a = calloc(1, sizeof *a);
    a->n = (int)n;
    memcpy(a->v, v, n * sizeof *v);
    return a;
}

int aclDestroyIntArray(const aclIntArray *a)
{
    free((void *)a);
    return 0;
}

aclBoolArray *aclCreateBoolArray(const bool *v, uint64_t n)
{
    if (n > 16)
        return NULL;
    aclBoolArray *a = calloc(1, sizeof *a);
    a->n = (int)n;
    memcpy(a->v, v, n * sizeof *v);
    return a;
}

int aclDestroyBoolArray(const aclBoolArray *a)
{
    free((void *)a);
    return 0;
}

/* ---------- views ---------- */

size_t mt_elem(int dtype)
{
    switch (dtype) {
    case M_F32:
    case M_I32:
        return 4;
    case M_I8:
    case M_U8:
    case M_BOOL:
        return 1;
    case M_I64:
        return 8;
    case M_BF16:
        return 2;
    default:
        return 0;
    }
}

int64_t mt_numel(const aclTensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->nd; i++)
        n *= t->dims[i];
    return n;
}

const char *mt_dims(const aclTensor *t, char *buf, size_t n)
{
    size_t at = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < t->nd && at < n; i++)
        at += (size_t)snprintf(buf + at, n - at, "%s%lld", i ? "," : "", (long long)t->dims[i]);
    if (at < n)
        snprintf(buf + at, n - at, ")");
    return buf;
}

int mt_same_dims(const aclTensor *a, const aclTensor *b)
{
    if (a->nd != b->nd)
        return 0;
    for (int i = 0; i < a->nd; i++)
        if (a->dims[i] != b->dims[i])
            return 0;
    return 1;
}

/* bytes from the first element to one past the last the view reaches */
static size_t span(const aclTensor *t)
{
    int64_t last = 0;
    for (int i = 0; i < t->nd; i++) {
        if (t->dims[i] == 0)
            return 0;
        last += (t->dims[i] - 1) * t->st[i];
    }
    return (size_t)(last + 1) * mt_elem(t->dtype);
}

int mt_check(const aclTensor *t, const char *what)
{
    if (!t)
        return mock_err(MOCK_PARAM_NULLPTR, "%s is NULL", what);
    size_t n = span(t);
    if (n && !mock_dev(t->addr, n, what))
        return MOCK_PARAM_INVALID;
    return 0;
}

float mock_bf16(float x)
{
    union { float f; uint32_t u; } v = {x};
    if ((v.u & 0x7f800000u) == 0x7f800000u)
        return x;
    v.u += 0x7fffu + ((v.u >> 16) & 1u);
    v.u &= 0xffff0000u;
    return v.f;
}

static double get(const char *p, int dtype)
{
    switch (dtype) {
    case M_F32:
        return *(const float *)p;
    case M_I32:
        return *(const int32_t *)p;
    case M_I64:
        return (double)*(const int64_t *)p;
    case M_I8:
        return *(const int8_t *)p;
    case M_U8:
    case M_BOOL:
        return *(const uint8_t *)p;
    default: { /* bf16 */
        union { uint32_t u; float f; } v = {(uint32_t)*(const uint16_t *)p << 16};
        return v.f;
    }
    }
}

static void put(char *p, int dtype, double x)
{
    switch (dtype) {
    case M_F32:
        *(float *)p = (float)x;
        break;
    case M_I32:
        *(int32_t *)p = (int32_t)x;
        break;
    case M_I64:
        *(int64_t *)p = (int64_t)x;
        break;
    case M_I8:
        *(int8_t *)p = (int8_t)x;
        break;
    case M_U8:
        *(uint8_t *)p = (uint8_t)x;
        break;
    case M_BOOL:
        *(uint8_t *)p = x != 0;
        break;
    default: {
        union { float f; uint32_t u; } v = {mock_bf16((float)x)};
        *(uint16_t *)p = (uint16_t)(v.u >> 16);
    }
    }
}

/* Visits every element in row-major order of the view: fn(i, byte address). */
typedef void (*visit_fn)(int64_t i, char *p, void *ctx);

static int visit(const aclTensor *t, const char *what, visit_fn fn, void *ctx)
{
    size_t n = span(t);
    if (!n)
        return 1;
    char *base = mock_dev(t->addr, n, what);
    if (!base) {
        mock_task_fail("%s", what); /* mock_dev set the message */
        return 0;
    }
    int64_t idx[8] = {0}, total = mt_numel(t), es = (int64_t)mt_elem(t->dtype);
    for (int64_t i = 0; i < total; i++) {
        int64_t off = 0;
        for (int d = 0; d < t->nd; d++)
            off += idx[d] * t->st[d];
        fn(i, base + off * es, ctx);
        for (int d = t->nd - 1; d >= 0 && ++idx[d] == t->dims[d]; d--)
            idx[d] = 0;
    }
    return 1;
}

typedef struct {
    int dtype;
    float *f;
    const float *cf;
    int64_t *i;
} io;

static void ld_f(int64_t i, char *p, void *c) { ((io *)c)->f[i] = (float)get(p, ((io *)c)->dtype); }
static void st_f(int64_t i, char *p, void *c) { put(p, ((io *)c)->dtype, ((io *)c)->cf[i]); }
static void ld_i(int64_t i, char *p, void *c) { ((io *)c)->i[i] = (int64_t)get(p, ((io *)c)->dtype); }

int mt_load(const aclTensor *t, float *out, const char *what)
{
    io c = {t->dtype, out, NULL, NULL};
    return visit(t, what, ld_f, &c);
}

int mt_store(const aclTensor *t, const float *in, const char *what)
{
    io c = {t->dtype, NULL, in, NULL};
    return visit(t, what, st_f, &c);
}

int mt_load_i(const aclTensor *t, int64_t *out, const char *what)
{
    io c = {t->dtype, NULL, NULL, out};
    return visit(t, what, ld_i, &c);
}

int mt_broadcast(const aclTensor *t, const aclTensor *out, aclTensor *view)
{
    if (t->nd > out->nd)
        return 0;
    *view = *out;
    view->dtype = t->dtype;
    view->addr = t->addr;
    int shift = out->nd - t->nd;
    for (int d = 0; d < out->nd; d++) {
        int64_t size = d < shift ? 1 : t->dims[d - shift];
        if (size != out->dims[d] && size != 1)
            return 0;
        view->st[d] = size == 1 ? 0 : t->st[d - shift];
    }
    return 1;
}
