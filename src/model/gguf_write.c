/* gguf_write.c: a GGUF v3 file written in one pass to a temp file, then
 * renamed into place: metadata and tensor infos are gathered first (each
 * tensor's offset follows from the sizes before it), then the data of
 * each tensor in order, each padded to the alignment (32) as ggml's own
 * writer does. */
#include "lmc/gguf.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;
    int ndim;
    uint64_t ne[LMC_GGUF_MAX_DIMS];
    lmc_ggml_type type;
    uint64_t offset, bytes;
} wtensor;

struct lmc_gguf_writer {
    char *path;
    lmc_sb kv; /* the encoded key-value pairs */
    uint64_t n_kv;
    wtensor *t;
    int n_t, cap_t, next;
    uint64_t data_size;
    lmc_afile af;
    int begun;
};

static void put_le(lmc_sb *b, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        lmc_sb_putc(b, (char)(v >> (8 * i)));
}

static void put_string(lmc_sb *b, const char *s, size_t n)
{
    put_le(b, n, 8);
    lmc_sb_put(b, s, n);
}

static void put_key(lmc_gguf_writer *w, const char *key, lmc_gguf_vtype type)
{
    put_string(&w->kv, key, strlen(key));
    put_le(&w->kv, type, 4);
    w->n_kv++;
}

lmc_status lmc_gguf_writer_new(lmc_gguf_writer **out, const char *path)
{
    lmc_gguf_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->path = lmc_strdup(path))) {
        free(w);
        return lmc_err(LMC_ENOMEM, "%s: out of memory", path);
    }
    lmc_sb_init(&w->kv);
    *out = w;
    return LMC_OK;
}

void lmc_gguf_put_str(lmc_gguf_writer *w, const char *key, const char *s)
{
    put_key(w, key, LMC_GGUF_STR);
    put_string(&w->kv, s, strlen(s));
}

void lmc_gguf_put_u32(lmc_gguf_writer *w, const char *key, uint32_t v)
{
    put_key(w, key, LMC_GGUF_U32);
    put_le(&w->kv, v, 4);
}

void lmc_gguf_put_f32(lmc_gguf_writer *w, const char *key, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    put_key(w, key, LMC_GGUF_F32);
    put_le(&w->kv, u, 4);
}

void lmc_gguf_put_bool(lmc_gguf_writer *w, const char *key, int v)
{
    put_key(w, key, LMC_GGUF_BOOL);
    put_le(&w->kv, v != 0, 1);
}

static void arr_header(lmc_gguf_writer *w, const char *key, lmc_gguf_vtype elem, size_t n)
{
    put_key(w, key, LMC_GGUF_ARR);
    put_le(&w->kv, elem, 4);
    put_le(&w->kv, n, 8);
}

void lmc_gguf_put_str_arr(lmc_gguf_writer *w, const char *key, const lmc_gguf_str *v, size_t n)
{
    arr_header(w, key, LMC_GGUF_STR, n);
    for (size_t i = 0; i < n; i++)
        put_string(&w->kv, v[i].s, v[i].n);
}

void lmc_gguf_put_i32_arr(lmc_gguf_writer *w, const char *key, const int32_t *v, size_t n)
{
    arr_header(w, key, LMC_GGUF_I32, n);
    for (size_t i = 0; i < n; i++)
        put_le(&w->kv, (uint32_t)v[i], 4);
}

static uint64_t padded(uint64_t n) { return (n + LMC_GGUF_ALIGNMENT - 1) / LMC_GGUF_ALIGNMENT * LMC_GGUF_ALIGNMENT; }

lmc_status lmc_gguf_add_tensor(lmc_gguf_writer *w, const char *name, int ndim, const uint64_t *ne,
                               lmc_ggml_type type)
{
    if (ndim < 1 || ndim > LMC_GGUF_MAX_DIMS || w->begun)
        return lmc_err(LMC_EINVAL, "%s: tensor '%s': %d dimensions, or added after the data began", w->path, name,
                       ndim);
    uint64_t numel = 1;
    for (int d = 0; d < ndim; d++)
        numel *= ne[d];
    if (type == LMC_GGML_Q8_0 && ne[0] % LMC_Q8_0_BLOCK)
        return lmc_err(LMC_EINVAL, "%s: tensor '%s': rows of %llu are not whole q8_0 blocks", w->path, name,
                       (unsigned long long)ne[0]);
    if (w->n_t == w->cap_t) {
        int cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *t = realloc(w->t, (size_t)cap * sizeof *t);
        if (!t)
            return lmc_err(LMC_ENOMEM, "%s: out of memory", w->path);
        w->t = t, w->cap_t = cap;
    }
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = lmc_strdup(name)))
        return LMC_ENOMEM;
    w->n_t++;
    t->ndim = ndim;
    memcpy(t->ne, ne, (size_t)ndim * sizeof *ne);
    t->type = type;
    t->offset = w->data_size;
    t->bytes = lmc_ggml_bytes(type, numel);
    w->data_size += padded(t->bytes);
    return LMC_OK;
}

static lmc_status write_sb(lmc_gguf_writer *w, lmc_sb *b)
{
    if (b->oom)
        return lmc_err(LMC_ENOMEM, "%s: out of memory", w->path);
    return lmc_afile_write(&w->af, b->s ? b->s : "", b->len);
}

static lmc_status write_zeros(lmc_gguf_writer *w, size_t n)
{
    static const char zeros[LMC_GGUF_ALIGNMENT];
    return n ? lmc_afile_write(&w->af, zeros, n) : LMC_OK;
}

lmc_status lmc_gguf_writer_begin(lmc_gguf_writer *w)
{
    lmc_sb h;
    lmc_sb_init(&h);
    put_le(&h, LMC_GGUF_MAGIC, 4);
    put_le(&h, LMC_GGUF_VERSION, 4);
    put_le(&h, (uint64_t)w->n_t, 8);
    put_le(&h, w->n_kv, 8);
    lmc_sb_put(&h, w->kv.s ? w->kv.s : "", w->kv.len);
    for (int i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        put_string(&h, t->name, strlen(t->name));
        put_le(&h, (uint64_t)t->ndim, 4);
        for (int d = 0; d < t->ndim; d++)
            put_le(&h, t->ne[d], 8);
        put_le(&h, t->type, 4);
        put_le(&h, t->offset, 8);
    }
    size_t pad = (size_t)(padded(h.len) - h.len);
    lmc_status s = w->kv.oom ? lmc_err(LMC_ENOMEM, "%s: out of memory", w->path) : lmc_afile_open(&w->af, w->path);
    if (s == LMC_OK) {
        w->begun = 1;
        s = write_sb(w, &h);
    }
    if (s == LMC_OK)
        s = write_zeros(w, pad);
    lmc_sb_free(&h);
    return s;
}

lmc_status lmc_gguf_write_tensor(lmc_gguf_writer *w, const void *data, size_t bytes)
{
    if (!w->begun || w->next >= w->n_t || bytes != w->t[w->next].bytes)
        return lmc_err(LMC_EINVAL, "%s: tensor data of %zu bytes does not match the next tensor", w->path, bytes);
    LMC_TRY(lmc_afile_write(&w->af, data, bytes));
    LMC_TRY(write_zeros(w, (size_t)(padded(bytes) - bytes)));
    w->next++;
    return LMC_OK;
}

static void writer_free(lmc_gguf_writer *w)
{
    for (int i = 0; i < w->n_t; i++)
        free(w->t[i].name);
    free(w->t);
    lmc_sb_free(&w->kv);
    free(w->path);
    free(w);
}

void lmc_gguf_writer_abort(lmc_gguf_writer *w)
{
    if (!w)
        return;
    if (w->begun)
        lmc_afile_abort(&w->af);
    writer_free(w);
}

lmc_status lmc_gguf_writer_commit(lmc_gguf_writer *w)
{
    if (!w->begun || w->next != w->n_t) {
        lmc_status s = lmc_err(LMC_EINVAL, "%s: %d of %d tensors written", w->path, w->next, w->n_t);
        lmc_gguf_writer_abort(w);
        return s;
    }
    lmc_status s = lmc_afile_commit(&w->af);
    writer_free(w);
    return s;
}
