/* gguf_read.c: the GGUF parser. Every count is checked against the bytes
 * left before anything is allocated for it, every string and array must
 * lie inside the file, and every tensor's data too; a message names the
 * file, the key or tensor, and the value. The file's bytes are used in
 * place (strings and tensor data point into them). Layout (little-endian):
 *
 *   "GGUF" u32 version, u64 n_tensors, u64 n_kv
 *   n_kv x    (string key, u32 type, value)       value of ARR: u32 type, u64 n, n values
 *   n_tensors x (string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset)
 *   padding to general.alignment (default 32), then the data section
 *
 * where a string is a u64 length and that many bytes. */
#include "lmc/gguf.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *p;
    size_t n, pos;
    const char *what;
    char ctx[160]; /* what is being read, for the truncation message */
} rd;

static uint64_t le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static lmc_status truncated(const rd *r, size_t need)
{
    return lmc_err(LMC_EFORMAT, "%s: truncated: %s needs %zu bytes at offset %zu, but the file ends at %zu", r->what,
                   r->ctx, need, r->pos, r->n);
}

static lmc_status need(const rd *r, size_t k) { return r->n - r->pos < k ? truncated(r, k) : LMC_OK; }

static lmc_status rd_u32(rd *r, uint32_t *v)
{
    LMC_TRY(need(r, 4));
    *v = (uint32_t)le(r->p + r->pos, 4);
    r->pos += 4;
    return LMC_OK;
}

static lmc_status rd_u64(rd *r, uint64_t *v)
{
    LMC_TRY(need(r, 8));
    *v = le(r->p + r->pos, 8);
    r->pos += 8;
    return LMC_OK;
}

static lmc_status rd_str(rd *r, lmc_gguf_str *s)
{
    uint64_t n;
    LMC_TRY(rd_u64(r, &n));
    if (n > r->n - r->pos)
        return lmc_err(LMC_EFORMAT, "%s: %s: a string of %llu bytes at offset %zu runs past the end of the file (%zu "
                       "bytes)", r->what, r->ctx, (unsigned long long)n, r->pos - 8, r->n);
    s->s = (const char *)r->p + r->pos;
    s->n = (size_t)n;
    r->pos += (size_t)n;
    return LMC_OK;
}

/* A key or tensor name: not empty, no NUL byte; copied with a NUL. */
static lmc_status rd_name(rd *r, const char *kind, long long index, char **out)
{
    lmc_gguf_str s = {0};
    LMC_TRY(rd_str(r, &s));
    if (s.n == 0)
        return lmc_err(LMC_EFORMAT, "%s: %s %lld is empty", r->what, kind, index);
    if (memchr(s.s, 0, s.n))
        return lmc_err(LMC_EFORMAT, "%s: %s %lld ('%.*s') holds a NUL byte", r->what, kind, index,
                       (int)(s.n < 80 ? s.n : 80), s.s);
    if (!(*out = malloc(s.n + 1)))
        return lmc_err(LMC_ENOMEM, "%s: out of memory", r->what);
    memcpy(*out, s.s, s.n);
    (*out)[s.n] = 0;
    return LMC_OK;
}

static const char *const vtype_names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                                          "string", "array", "u64", "i64", "f64"};

const char *lmc_gguf_type_name(lmc_gguf_vtype t)
{
    return t >= 0 && t < LMC_GGUF_NTYPES ? vtype_names[t] : "unknown";
}

static size_t vtype_size(lmc_gguf_vtype t)
{
    static const size_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return sz[t];
}

/* ---------- tensor types ---------- */

/* ggml's type numbers, for messages about the ones lmc does not read */
static const char *const ggml_names[] = {
    "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K",
    "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS",
    "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16"};

const char *lmc_ggml_type_name(uint32_t type)
{
    return type < sizeof ggml_names / sizeof *ggml_names ? ggml_names[type] : "unknown";
}

static int known_type(uint32_t t)
{
    return t == LMC_GGML_F32 || t == LMC_GGML_F16 || t == LMC_GGML_BF16 || t == LMC_GGML_Q8_0;
}

static uint64_t block_of(uint32_t t) { return t == LMC_GGML_Q8_0 ? LMC_Q8_0_BLOCK : 1; }

/* ---------- key-value pairs ---------- */

static lmc_status rd_values(rd *r, lmc_gguf_kv *kv)
{
    lmc_gguf_vtype t = kv->type == LMC_GGUF_ARR ? kv->arr_type : kv->type;
    if (t == LMC_GGUF_STR) {
        /* each string takes at least its 8-byte length */
        if (kv->n > (r->n - r->pos) / 8)
            return lmc_err(LMC_EFORMAT, "%s: key '%s': %llu strings cannot fit in the %zu bytes left", r->what,
                           kv->key, (unsigned long long)kv->n, r->n - r->pos);
        if (!(kv->str = malloc((size_t)(kv->n ? kv->n : 1) * sizeof *kv->str)))
            return lmc_err(LMC_ENOMEM, "%s: out of memory for key '%s'", r->what, kv->key);
        for (uint64_t i = 0; i < kv->n; i++) {
            snprintf(r->ctx, sizeof r->ctx, "key '%.80s' element %llu", kv->key, (unsigned long long)i);
            LMC_TRY(rd_str(r, &kv->str[i]));
        }
        return LMC_OK;
    }
    size_t es = vtype_size(t);
    if (kv->n > (r->n - r->pos) / es)
        return lmc_err(LMC_EFORMAT, "%s: key '%s': %llu values of type %s (%zu bytes each) run past the end of the "
                       "file (%zu bytes left)", r->what, kv->key, (unsigned long long)kv->n, lmc_gguf_type_name(t),
                       es, r->n - r->pos);
    kv->data = r->p + r->pos;
    r->pos += (size_t)kv->n * es;
    for (uint64_t i = 0; t == LMC_GGUF_BOOL && i < kv->n; i++)
        if (kv->data[i] > 1)
            return lmc_err(LMC_EFORMAT, "%s: key '%s': bool value %u is neither 0 nor 1", r->what, kv->key,
                           kv->data[i]);
    return LMC_OK;
}

static lmc_status rd_kv(rd *r, long long i, lmc_gguf_kv *kv)
{
    snprintf(r->ctx, sizeof r->ctx, "key %lld", i);
    LMC_TRY(rd_name(r, "key", i, &kv->key));
    snprintf(r->ctx, sizeof r->ctx, "the type of key '%.80s'", kv->key);
    uint32_t t;
    LMC_TRY(rd_u32(r, &t));
    kv->n = 1;
    if (t == LMC_GGUF_ARR) {
        uint32_t et;
        snprintf(r->ctx, sizeof r->ctx, "the array header of key '%.80s'", kv->key);
        LMC_TRY(rd_u32(r, &et));
        LMC_TRY(rd_u64(r, &kv->n));
        if (et == LMC_GGUF_ARR)
            return lmc_err(LMC_EFORMAT, "%s: key '%s': arrays of arrays are not supported", r->what, kv->key);
        if (et >= LMC_GGUF_NTYPES)
            return lmc_err(LMC_EFORMAT, "%s: key '%s': unknown array element type %u", r->what, kv->key, et);
        kv->arr_type = (lmc_gguf_vtype)et;
    } else if (t >= LMC_GGUF_NTYPES) {
        return lmc_err(LMC_EFORMAT, "%s: key '%s': unknown value type %u", r->what, kv->key, t);
    }
    kv->type = (lmc_gguf_vtype)t;
    snprintf(r->ctx, sizeof r->ctx, "the value of key '%.80s'", kv->key);
    return rd_values(r, kv);
}

/* ---------- tensor infos ---------- */

static lmc_status rd_shape(rd *r, lmc_gguf_tensor *t)
{
    uint32_t nd;
    LMC_TRY(rd_u32(r, &nd));
    if (nd < 1 || nd > LMC_GGUF_MAX_DIMS)
        return lmc_err(LMC_EFORMAT, "%s: tensor '%s' has %u dimensions (1 to %d allowed)", r->what, t->name, nd,
                       LMC_GGUF_MAX_DIMS);
    t->ndim = (int)nd;
    uint64_t numel = 1;
    for (int d = 0; d < LMC_GGUF_MAX_DIMS; d++) {
        t->ne[d] = 1;
        if (d < t->ndim)
            LMC_TRY(rd_u64(r, &t->ne[d]));
        if (t->ne[d] > (uint64_t)INT64_MAX || __builtin_mul_overflow(numel, t->ne[d], &numel) ||
            numel > (uint64_t)INT64_MAX)
            return lmc_err(LMC_EFORMAT, "%s: tensor '%s': dimension %d (%llu) makes the element count overflow",
                           r->what, t->name, d, (unsigned long long)t->ne[d]);
    }
    uint32_t type;
    LMC_TRY(rd_u32(r, &type));
    t->type = type;
    if (!known_type(type))
        return lmc_err(LMC_EUNSUPPORTED, "%s: tensor '%s' has type %s (%u); lmc reads F32, F16, BF16 and Q8_0",
                       r->what, t->name, lmc_ggml_type_name(type), type);
    if (t->ne[0] % block_of(type))
        return lmc_err(LMC_EFORMAT, "%s: tensor '%s': rows of %llu values are not whole %s blocks of %llu", r->what,
                       t->name, (unsigned long long)t->ne[0], lmc_ggml_type_name(type),
                       (unsigned long long)block_of(type));
    t->bytes = lmc_ggml_bytes((lmc_ggml_type)type, numel); /* numel < 2^63: no overflow at <= 4 bytes each */
    return LMC_OK;
}

static lmc_status rd_tensor(rd *r, long long i, lmc_gguf_tensor *t)
{
    snprintf(r->ctx, sizeof r->ctx, "tensor info %lld", i);
    LMC_TRY(rd_name(r, "tensor name", i, &t->name));
    snprintf(r->ctx, sizeof r->ctx, "the info of tensor '%.80s'", t->name);
    LMC_TRY(rd_shape(r, t));
    return rd_u64(r, &t->offset);
}

/* ---------- lookups: names sorted once, then binary search ---------- */

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const lmc_gguf_kv *)a)->key, ((const lmc_gguf_kv *)b)->key);
}

static int cmp_tensor(const void *a, const void *b)
{
    return strcmp(((const lmc_gguf_tensor *)a)->name, ((const lmc_gguf_tensor *)b)->name);
}

const lmc_gguf_kv *lmc_gguf_find(const lmc_gguf *g, const char *key)
{
    lmc_gguf_kv k = {.key = (char *)key};
    return g->n_kv ? bsearch(&k, g->kv, (size_t)g->n_kv, sizeof *g->kv, cmp_kv) : NULL;
}

const lmc_gguf_tensor *lmc_gguf_tensor_find(const lmc_gguf *g, const char *name)
{
    lmc_gguf_tensor k = {.name = (char *)name};
    return g->n_tensors ? bsearch(&k, g->t, (size_t)g->n_tensors, sizeof *g->t, cmp_tensor) : NULL;
}

/* Sorts by name (lookups bisect) and rejects a name given twice. The
 * tensors' file order is not needed after their offsets are checked. */
static lmc_status sort_unique(lmc_gguf *g)
{
    if (g->n_kv)
        qsort(g->kv, (size_t)g->n_kv, sizeof *g->kv, cmp_kv);
    for (int i = 1; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, g->kv[i - 1].key))
            return lmc_err(LMC_EFORMAT, "%s: key '%s' appears twice", g->what, g->kv[i].key);
    if (g->n_tensors)
        qsort(g->t, (size_t)g->n_tensors, sizeof *g->t, cmp_tensor);
    for (int i = 1; i < g->n_tensors; i++)
        if (!strcmp(g->t[i].name, g->t[i - 1].name))
            return lmc_err(LMC_EFORMAT, "%s: tensor '%s' appears twice", g->what, g->t[i].name);
    return LMC_OK;
}

/* ---------- the file ---------- */

static lmc_status rd_header(rd *r, lmc_gguf *g, uint64_t *n_tensors, uint64_t *n_kv)
{
    snprintf(r->ctx, sizeof r->ctx, "the header");
    if (r->n < 4)
        return lmc_err(LMC_EFORMAT, "%s: %zu bytes is too short for a GGUF file", r->what, r->n);
    uint32_t magic;
    LMC_TRY(rd_u32(r, &magic));
    if (magic != LMC_GGUF_MAGIC)
        return lmc_err(LMC_EFORMAT, "%s: not a GGUF file (magic bytes %02x %02x %02x %02x, expected 'GGUF')", r->what,
                       r->p[0], r->p[1], r->p[2], r->p[3]);
    LMC_TRY(rd_u32(r, &g->version));
    if ((g->version & 0xFFFF) == 0 && g->version)
        return lmc_err(LMC_EUNSUPPORTED, "%s: version field 0x%08x: a big-endian GGUF file, which lmc does not read",
                       r->what, g->version);
    if (g->version != 2 && g->version != 3)
        return lmc_err(LMC_EUNSUPPORTED, "%s: GGUF version %u; lmc reads versions 2 and 3", r->what, g->version);
    LMC_TRY(rd_u64(r, n_tensors));
    LMC_TRY(rd_u64(r, n_kv));
    /* a key takes at least 13 bytes (length, one byte, type), a tensor info 25 */
    if (*n_kv > (r->n - r->pos) / 13)
        return lmc_err(LMC_EFORMAT, "%s: header claims %llu keys, more than the %zu bytes left can hold", r->what,
                       (unsigned long long)*n_kv, r->n - r->pos);
    if (*n_tensors > (r->n - r->pos) / 25)
        return lmc_err(LMC_EFORMAT, "%s: header claims %llu tensors, more than the %zu bytes left can hold", r->what,
                       (unsigned long long)*n_tensors, r->n - r->pos);
    return LMC_OK;
}

static lmc_status rd_alignment(lmc_gguf *g)
{
    g->alignment = LMC_GGUF_ALIGNMENT;
    const lmc_gguf_kv *a = lmc_gguf_find(g, "general.alignment");
    if (!a)
        return LMC_OK;
    if (a->type != LMC_GGUF_U32)
        return lmc_err(LMC_EFORMAT, "%s: key 'general.alignment' has type %s, expected u32", g->what,
                       lmc_gguf_type_name(a->type));
    g->alignment = le(a->data, 4);
    if (g->alignment == 0 || (g->alignment & (g->alignment - 1)))
        return lmc_err(LMC_EFORMAT, "%s: key 'general.alignment' = %llu is not a power of two", g->what,
                       (unsigned long long)g->alignment);
    return LMC_OK;
}

static lmc_status place_tensors(lmc_gguf *g, size_t end_of_infos, size_t file_size)
{
    uint64_t pad = (g->alignment - end_of_infos % g->alignment) % g->alignment;
    g->data_offset = end_of_infos + pad;
    if (g->n_tensors && g->data_offset > file_size)
        return lmc_err(LMC_EFORMAT, "%s: truncated: the data section would start at byte %llu, past the end of the "
                       "file (%zu bytes)", g->what, (unsigned long long)g->data_offset, file_size);
    g->data_size = g->data_offset <= file_size ? file_size - g->data_offset : 0;
    for (int i = 0; i < g->n_tensors; i++) {
        lmc_gguf_tensor *t = &g->t[i];
        if (t->offset % g->alignment)
            return lmc_err(LMC_EFORMAT, "%s: tensor '%s': data offset %llu is not a multiple of the alignment %llu",
                           g->what, t->name, (unsigned long long)t->offset, (unsigned long long)g->alignment);
        if (t->offset > g->data_size || t->bytes > g->data_size - t->offset)
            return lmc_err(LMC_EFORMAT, "%s: tensor '%s': its %llu bytes at data offset %llu lie outside the file "
                           "(the data section holds %llu bytes)", g->what, t->name, (unsigned long long)t->bytes,
                           (unsigned long long)t->offset, (unsigned long long)g->data_size);
    }
    return LMC_OK;
}

static lmc_status parse(lmc_gguf *g, rd *r)
{
    uint64_t nt = 0, nk = 0;
    LMC_TRY(rd_header(r, g, &nt, &nk));
    g->kv = calloc(nk ? (size_t)nk : 1, sizeof *g->kv);
    g->t = calloc(nt ? (size_t)nt : 1, sizeof *g->t);
    if (!g->kv || !g->t)
        return lmc_err(LMC_ENOMEM, "%s: out of memory", r->what);
    for (uint64_t i = 0; i < nk; i++) {
        g->n_kv++; /* counted first: a failed key's allocations are freed too */
        LMC_TRY(rd_kv(r, (long long)i, &g->kv[i]));
    }
    for (uint64_t i = 0; i < nt; i++) {
        g->n_tensors++;
        LMC_TRY(rd_tensor(r, (long long)i, &g->t[i]));
    }
    LMC_TRY(sort_unique(g));
    LMC_TRY(rd_alignment(g));
    LMC_TRY(place_tensors(g, r->pos, r->n));
    for (int i = 0; i < g->n_tensors; i++)
        g->t[i].data = r->p + g->data_offset + g->t[i].offset;
    return LMC_OK;
}

static lmc_status parse_into(lmc_gguf *g, const uint8_t *data, size_t n, const char *what)
{
    if (!(g->what = lmc_strdup(what)))
        return LMC_ENOMEM;
    rd r = {.p = data, .n = n, .what = g->what};
    lmc_status s = parse(g, &r);
    if (s != LMC_OK)
        lmc_gguf_close(g);
    return s;
}

lmc_status lmc_gguf_parse(lmc_gguf *g, const uint8_t *data, size_t n, const char *what)
{
    memset(g, 0, sizeof *g);
    return parse_into(g, data, n, what);
}

int lmc_gguf_is_path(const char *path)
{
    size_t n = strlen(path);
    return n > 5 && !strcmp(path + n - 5, ".gguf") && !lmc_is_dir(path);
}

lmc_status lmc_gguf_open(lmc_gguf *g, const char *path)
{
    memset(g, 0, sizeof *g);
    LMC_TRY(lmc_mmap_open(&g->map, path));
    return parse_into(g, g->map.data, g->map.size, path);
}

void lmc_gguf_close(lmc_gguf *g)
{
    for (int i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].str);
    }
    for (int i = 0; i < g->n_tensors; i++)
        free(g->t[i].name);
    free(g->kv);
    free(g->t);
    free(g->what);
    lmc_mmap_close(&g->map);
    memset(g, 0, sizeof *g);
}

/* ---------- typed getters ---------- */

static lmc_status get(const lmc_gguf *g, const char *key, int required, const lmc_gguf_kv **kv)
{
    *kv = lmc_gguf_find(g, key);
    if (!*kv && required)
        return lmc_err(LMC_EFORMAT, "%s: missing key '%s'", g->what, key);
    return LMC_OK;
}

static lmc_status wrong_type(const lmc_gguf *g, const lmc_gguf_kv *kv, const char *want)
{
    if (kv->type == LMC_GGUF_ARR)
        return lmc_err(LMC_EFORMAT, "%s: key '%s' is an array of %s, expected %s", g->what, kv->key,
                       lmc_gguf_type_name(kv->arr_type), want);
    return lmc_err(LMC_EFORMAT, "%s: key '%s' has type %s, expected %s", g->what, kv->key,
                   lmc_gguf_type_name(kv->type), want);
}

static int is_int(lmc_gguf_vtype t)
{
    return t <= LMC_GGUF_I32 || t == LMC_GGUF_U64 || t == LMC_GGUF_I64;
}

static int is_signed(lmc_gguf_vtype t)
{
    return t == LMC_GGUF_I8 || t == LMC_GGUF_I16 || t == LMC_GGUF_I32 || t == LMC_GGUF_I64;
}

/* Integer i of type t at p, as a signed value; *big set when a u64 exceeds INT64_MAX. */
static long long int_at(const uint8_t *p, lmc_gguf_vtype t, int *big)
{
    int bytes = (int)vtype_size(t);
    uint64_t v = le(p, bytes);
    *big = 0;
    if (is_signed(t) && bytes < 8 && (v >> (bytes * 8 - 1)) & 1)
        v |= ~0ull << (bytes * 8); /* sign-extend */
    if (!is_signed(t) && v > (uint64_t)INT64_MAX)
        *big = 1;
    return (long long)v;
}

long long lmc_gguf_arr_int(const lmc_gguf_kv *kv, uint64_t i)
{
    int big;
    return int_at(kv->data + i * vtype_size(kv->arr_type), kv->arr_type, &big);
}

lmc_status lmc_gguf_get_int(const lmc_gguf *g, const char *key, int required, long long lo, long long hi,
                            long long *out)
{
    const lmc_gguf_kv *kv;
    LMC_TRY(get(g, key, required, &kv));
    if (!kv)
        return LMC_OK;
    if (!is_int(kv->type))
        return wrong_type(g, kv, "an integer");
    int big;
    long long v = int_at(kv->data, kv->type, &big);
    if (big)
        return lmc_err(LMC_EFORMAT, "%s: key '%s' = %llu is out of range [%lld, %lld]", g->what, key,
                       (unsigned long long)v, lo, hi);
    if (v < lo || v > hi)
        return lmc_err(LMC_EFORMAT, "%s: key '%s' = %lld is out of range [%lld, %lld]", g->what, key, v, lo, hi);
    *out = v;
    return LMC_OK;
}

lmc_status lmc_gguf_get_float(const lmc_gguf *g, const char *key, int required, double *out)
{
    const lmc_gguf_kv *kv;
    LMC_TRY(get(g, key, required, &kv));
    if (!kv)
        return LMC_OK;
    if (kv->type == LMC_GGUF_F32) {
        union { uint32_t u; float f; } v = {(uint32_t)le(kv->data, 4)};
        *out = v.f;
    } else if (kv->type == LMC_GGUF_F64) {
        union { uint64_t u; double f; } v = {le(kv->data, 8)};
        *out = v.f;
    } else {
        return wrong_type(g, kv, "f32 or f64");
    }
    return LMC_OK;
}

/* A scalar of exactly this type (*kv NULL when absent and not required). */
static lmc_status get_typed(const lmc_gguf *g, const char *key, int required, lmc_gguf_vtype type,
                            const lmc_gguf_kv **kv)
{
    LMC_TRY(get(g, key, required, kv));
    return *kv && (*kv)->type != type ? wrong_type(g, *kv, lmc_gguf_type_name(type)) : LMC_OK;
}

lmc_status lmc_gguf_get_bool(const lmc_gguf *g, const char *key, int required, int *out)
{
    const lmc_gguf_kv *kv;
    LMC_TRY(get_typed(g, key, required, LMC_GGUF_BOOL, &kv));
    *out = kv ? kv->data[0] : *out;
    return LMC_OK;
}

lmc_status lmc_gguf_get_str(const lmc_gguf *g, const char *key, int required, lmc_gguf_str *out)
{
    const lmc_gguf_kv *kv;
    LMC_TRY(get_typed(g, key, required, LMC_GGUF_STR, &kv));
    *out = kv ? kv->str[0] : *out;
    return LMC_OK;
}

lmc_status lmc_gguf_get_arr(const lmc_gguf *g, const char *key, int required, lmc_gguf_vtype elem,
                            const lmc_gguf_kv **out)
{
    const lmc_gguf_kv *kv;
    *out = NULL;
    LMC_TRY(get(g, key, required, &kv));
    if (!kv)
        return LMC_OK;
    int ok = kv->type == LMC_GGUF_ARR && (kv->arr_type == elem || (elem == LMC_GGUF_I32 && is_int(kv->arr_type)));
    if (!ok) {
        char want[32];
        snprintf(want, sizeof want, "an array of %s", elem == LMC_GGUF_I32 ? "integers" : lmc_gguf_type_name(elem));
        return wrong_type(g, kv, want);
    }
    *out = kv;
    return LMC_OK;
}
