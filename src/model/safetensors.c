/* safetensors.c: a validating safetensors reader (mmap) and atomic writer. */
#include "lmc/safetensors.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ST_MAX_HEADER (100u << 20)

static int dtype_size(const char *d)
{
    if (!strcmp(d, "F32") || !strcmp(d, "I32") || !strcmp(d, "U32"))
        return 4;
    if (!strcmp(d, "BF16") || !strcmp(d, "F16") || !strcmp(d, "I16") || !strcmp(d, "U16"))
        return 2;
    if (!strcmp(d, "F64") || !strcmp(d, "I64") || !strcmp(d, "U64"))
        return 8;
    if (!strcmp(d, "I8") || !strcmp(d, "U8") || !strcmp(d, "BOOL"))
        return 1;
    return 0;
}

size_t lmc_st_numel(const lmc_st_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t)t->shape[i];
    return n;
}

static lmc_status parse_tensor(lmc_st_file *f, const lmc_json *e, lmc_st_tensor *t)
{
    const char *p = f->path, *name = e->key;
    if (e->type != LMC_JSON_OBJ)
        return lmc_err(LMC_EFORMAT, "%s: tensor '%s': header entry is not an object", p, name);
    lmc_json *dt = lmc_json_get(e, "dtype"), *sh = lmc_json_get(e, "shape"), *off = lmc_json_get(e, "data_offsets");
    if (!dt || dt->type != LMC_JSON_STR || dt->slen >= sizeof t->dtype || !dtype_size(dt->str))
        return lmc_err(LMC_EFORMAT, "%s: tensor '%s': field 'dtype' missing or unknown", p, name);
    if (!sh || sh->type != LMC_JSON_ARR || sh->n > LMC_ST_MAX_DIMS)
        return lmc_err(LMC_EFORMAT, "%s: tensor '%s': field 'shape' missing or has more than %d dims", p, name,
                       LMC_ST_MAX_DIMS);
    if (!off || off->type != LMC_JSON_ARR || off->n != 2)
        return lmc_err(LMC_EFORMAT, "%s: tensor '%s': field 'data_offsets' must be [begin, end]", p, name);
    strcpy(t->dtype, dt->str);
    t->ndim = sh->n;
    double numel = 1;
    for (int i = 0; i < sh->n; i++) {
        lmc_json *d = lmc_json_at(sh, i);
        if (d->type != LMC_JSON_NUM || d->num < 0 || d->num != floor(d->num) || d->num > 1e15)
            return lmc_err(LMC_EFORMAT, "%s: tensor '%s': shape[%d] is not a valid size", p, name, i);
        t->shape[i] = (int64_t)d->num;
        numel *= d->num;
    }
    lmc_json *b = lmc_json_at(off, 0), *en = lmc_json_at(off, 1);
    if (b->type != LMC_JSON_NUM || en->type != LMC_JSON_NUM || b->num < 0 || en->num < b->num ||
        en->num > (double)f->data_len || b->num != floor(b->num) || en->num != floor(en->num))
        return lmc_err(LMC_EFORMAT, "%s: tensor '%s': data_offsets [%.0f, %.0f] outside the %zu data bytes", p,
                       name, b->num, en->num, f->data_len);
    t->begin = (size_t)b->num;
    t->end = (size_t)en->num;
    if ((double)(t->end - t->begin) != numel * dtype_size(t->dtype))
        return lmc_err(LMC_EFORMAT, "%s: tensor '%s': %zu data bytes do not match shape and dtype %s", p, name,
                       t->end - t->begin, t->dtype);
    t->name = lmc_strdup(name); /* last: a tensor that fails owns nothing */
    return t->name ? LMC_OK : LMC_ENOMEM;
}

static lmc_status parse_header(lmc_st_file *f, const char *text, size_t len)
{
    LMC_TRY(lmc_json_parse(text, len, f->path, &f->header));
    if (f->header->type != LMC_JSON_OBJ)
        return lmc_err(LMC_EFORMAT, "%s: header is not a JSON object", f->path);
    f->t = calloc((size_t)f->header->n + 1, sizeof *f->t);
    if (!f->t)
        return lmc_err(LMC_ENOMEM, "%s: out of memory", f->path);
    for (lmc_json *e = f->header->child; e; e = e->next) {
        if (!strcmp(e->key, "__metadata__")) {
            if (e->type != LMC_JSON_OBJ)
                return lmc_err(LMC_EFORMAT, "%s: __metadata__ is not an object", f->path);
            f->meta = e;
            continue;
        }
        LMC_TRY(parse_tensor(f, e, &f->t[f->n]));
        f->n++;
    }
    return LMC_OK;
}

/* The 8-byte header length, the JSON header and the data section of the
 * file's bytes (f->path names them in messages). */
static lmc_status st_parse(lmc_st_file *f, const uint8_t *bytes, size_t size)
{
    if (size < 8)
        return lmc_err(LMC_EFORMAT, "%s: truncated: %zu bytes, no safetensors header", f->path, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | bytes[i];
    if (hlen > ST_MAX_HEADER || hlen > size - 8)
        return lmc_err(LMC_EFORMAT, "%s: header length %llu exceeds the file size %zu (truncated or not safetensors)",
                       f->path, (unsigned long long)hlen, size);
    f->data = bytes + 8 + hlen;
    f->data_len = size - 8 - hlen;
    return parse_header(f, (const char *)bytes + 8, (size_t)hlen);
}

lmc_status lmc_st_open(lmc_st_file *f, const char *path)
{
    memset(f, 0, sizeof *f);
    f->path = lmc_strdup(path);
    lmc_status s = f->path ? lmc_mmap_open(&f->map, path) : LMC_ENOMEM;
    if (s == LMC_OK)
        s = st_parse(f, f->map.data, f->map.size);
    if (s != LMC_OK)
        lmc_st_close(f);
    return s;
}

lmc_status lmc_st_open_mem(lmc_st_file *f, const void *bytes, size_t size, const char *what)
{
    memset(f, 0, sizeof *f);
    f->path = lmc_strdup(what);
    lmc_status s = f->path ? st_parse(f, bytes, size) : LMC_ENOMEM;
    if (s != LMC_OK)
        lmc_st_close(f);
    return s;
}

void lmc_st_close(lmc_st_file *f)
{
    for (int i = 0; i < f->n; i++)
        free(f->t[i].name);
    free(f->t);
    lmc_json_free(f->header);
    lmc_mmap_close(&f->map);
    free(f->path);
    memset(f, 0, sizeof *f);
}

const lmc_st_tensor *lmc_st_find(const lmc_st_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name))
            return &f->t[i];
    return NULL;
}

const char *lmc_st_meta(const lmc_st_file *f, const char *key)
{
    lmc_json *v = lmc_json_get(f->meta, key);
    return v && v->type == LMC_JSON_STR ? v->str : NULL;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    union { uint32_t u; float f; } v;
    if (exp == 0) {
        float m = ldexpf((float)man, -24);
        return sign ? -m : m;
    }
    v.u = sign | (exp == 31 ? 0x7f800000u | (man << 13) : ((exp + 112) << 23) | (man << 13));
    return v.f;
}

lmc_status lmc_st_read_f32_range(const lmc_st_file *f, const lmc_st_tensor *t, size_t first, size_t count,
                                 float *dst)
{
    size_t n = lmc_st_numel(t);
    if (first > n || count > n - first)
        return lmc_err(LMC_ERANGE, "%s: tensor '%s': elements [%zu, %zu) outside its %zu", f->path, t->name, first,
                       first + count, n);
    int bf = t->dtype[0] == 'B';
    if (!strcmp(t->dtype, "F32")) {
        memcpy(dst, f->data + t->begin + 4 * first, count * 4);
    } else if (!strcmp(t->dtype, "BF16") || !strcmp(t->dtype, "F16")) {
        const uint8_t *src = f->data + t->begin + 2 * first;
        for (size_t i = 0; i < count; i++) {
            uint16_t h = (uint16_t)(src[2 * i] | (src[2 * i + 1] << 8));
            union { uint32_t u; float f; } v = {(uint32_t)h << 16};
            dst[i] = bf ? v.f : half_to_float(h);
        }
    } else {
        return lmc_err(LMC_EFORMAT, "%s: tensor '%s' has dtype %s, expected F32, BF16 or F16", f->path, t->name,
                       t->dtype);
    }
    for (size_t i = 0; i < count; i++)
        if (!isfinite(dst[i]))
            return lmc_err(LMC_EFORMAT, "%s: tensor '%s' holds a non-finite value at element %zu", f->path,
                           t->name, first + i);
    return LMC_OK;
}

void lmc_st_release(const lmc_st_file *f, const lmc_st_tensor *t)
{
    long page = sysconf(_SC_PAGESIZE);
    if (!f->map.data || page <= 0 || t->end <= t->begin) /* bytes in memory (lmc_st_open_mem): nothing mapped */
        return;
    uintptr_t b = (uintptr_t)(f->data + t->begin) & ~(uintptr_t)(page - 1), e = (uintptr_t)(f->data + t->end);
    (void)madvise((void *)b, e - b, MADV_DONTNEED); /* a read-only file mapping: later reads fault the pages back */
}

lmc_status lmc_st_read_f32(const lmc_st_file *f, const lmc_st_tensor *t, float *dst)
{
    return lmc_st_read_f32_range(f, t, 0, lmc_st_numel(t), dst);
}

size_t lmc_st_entry_bytes(const lmc_st_entry *e)
{
    size_t numel = 1;
    for (int d = 0; d < e->ndim; d++)
        numel *= (size_t)e->shape[d];
    return numel * (size_t)dtype_size(e->dtype);
}

/* Returns the data section's size. */
static size_t header_json(lmc_sb *h, const lmc_st_entry *e, int n, const char *const *meta)
{
    lmc_sb_putc(h, '{');
    if (meta && meta[0]) {
        lmc_sb_puts(h, "\"__metadata__\":{");
        for (int i = 0; meta[i]; i += 2) {
            if (i)
                lmc_sb_putc(h, ',');
            lmc_sb_json_str(h, meta[i], strlen(meta[i]));
            lmc_sb_putc(h, ':');
            lmc_sb_json_str(h, meta[i + 1], strlen(meta[i + 1]));
        }
        lmc_sb_puts(h, "},");
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t size = lmc_st_entry_bytes(&e[i]);
        lmc_sb_json_str(h, e[i].name, strlen(e[i].name));
        lmc_sb_printf(h, ":{\"dtype\":\"%s\",\"shape\":[", e[i].dtype);
        for (int d = 0; d < e[i].ndim; d++)
            lmc_sb_printf(h, "%s%lld", d ? "," : "", (long long)e[i].shape[d]);
        lmc_sb_printf(h, "],\"data_offsets\":[%zu,%zu]}%s", off, off + size, i + 1 < n ? "," : "");
        off += size;
    }
    if (h->len && h->s[h->len - 1] == ',')
        h->s[--h->len] = 0;
    lmc_sb_putc(h, '}');
    while ((h->len + 8) % 8) /* pad so the data section is 8-byte aligned */
        lmc_sb_putc(h, ' ');
    return off;
}

lmc_status lmc_st_header(const lmc_st_entry *e, int n, const char *const *meta, lmc_sb *out, size_t *data_len)
{
    lmc_sb h;
    lmc_sb_init(&h);
    *data_len = header_json(&h, e, n, meta);
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
    lmc_sb_put(out, (const char *)len8, 8);
    lmc_sb_put(out, h.s, h.len);
    int oom = h.oom || out->oom;
    lmc_sb_free(&h);
    return oom ? lmc_err(LMC_ENOMEM, "out of memory") : LMC_OK;
}

lmc_status lmc_st_write(const char *path, const lmc_st_entry *e, int n, const char *const *meta)
{
    lmc_sb h;
    lmc_sb_init(&h);
    size_t data_len;
    lmc_status s = lmc_st_header(e, n, meta, &h, &data_len);
    lmc_afile af;
    if (s == LMC_OK)
        s = lmc_afile_open(&af, path);
    if (s == LMC_OK) {
        s = lmc_afile_write(&af, h.s, h.len);
        for (int i = 0; i < n && s == LMC_OK; i++)
            s = lmc_afile_write(&af, e[i].data, lmc_st_entry_bytes(&e[i]));
        s = s == LMC_OK ? lmc_afile_commit(&af) : (lmc_afile_abort(&af), s);
    }
    lmc_sb_free(&h);
    return s;
}
