/* format_lmc.c: lmc's own tokenizer file, lmc-tokenizer.json (documented in
 * docs/tokenizer.md), and lmc_tok_load / lmc_tok_save, which pick the format.
 *
 *   {"format": "lmc-bpe", "version": 1, "pretokenizer": "gpt2",
 *    "vocab_size": N, "byte_ids": [256 ids: the token of byte 0, 1, ...],
 *    "merges": [[left, right, result], ...]   (rank order),
 *    "special_tokens": [{"id": N-1, "content": "<|endoftext|>"}]}
 *
 * Token bytes are never stored: a byte token is its byte, a merge result is
 * its left token's bytes then its right's, a special is its content. So the
 * file cannot disagree with itself, and each id must be defined before use. */
#include "lmc/gguf.h"
#include "tokenizer/tok_internal.h"

#include <math.h>
#include <stdlib.h>

#define LMC_TOK_FILE "lmc-tokenizer.json"

typedef struct {
    const char *what;
    int n;
    uint64_t *start, *len; /* per id, into b; len == UINT64_MAX: undefined */
    lmc_sb b;
} defs;

static lmc_status get_id(const lmc_json *v, const char *what, const char *field, int i, int n, int *out)
{
    if (!v || v->type != LMC_JSON_NUM || v->num != floor(v->num))
        return lmc_err(LMC_EFORMAT, "%s: %s[%d]: expected an integer token id", what, field, i);
    if (v->num < 0 || v->num >= n)
        return lmc_err(LMC_EFORMAT, "%s: %s[%d]: token id %.0f is out of range (vocab_size %d)", what, field, i,
                       v->num, n);
    *out = (int)v->num;
    return LMC_OK;
}

static lmc_status define(defs *d, const char *field, int i, int id, const uint8_t *s, size_t n)
{
    if (d->len[id] != UINT64_MAX)
        return lmc_err(LMC_EFORMAT, "%s: %s[%d]: token id %d is already defined", d->what, field, i, id);
    d->start[id] = d->b.len;
    d->len[id] = n;
    lmc_sb_put(&d->b, (const char *)s, n);
    return d->b.oom ? lmc_err(LMC_ENOMEM, "%s: out of memory", d->what) : LMC_OK;
}

static lmc_status read_bytes(defs *d, const lmc_json *arr)
{
    if (!arr || arr->type != LMC_JSON_ARR || arr->n != 256)
        return lmc_err(LMC_EFORMAT, "%s: byte_ids must be an array of 256 token ids", d->what);
    const lmc_json *v = arr->child;
    for (int b = 0; b < 256; b++, v = v->next) {
        int id = 0;
        uint8_t c = (uint8_t)b;
        LMC_TRY(get_id(v, d->what, "byte_ids", b, d->n, &id));
        LMC_TRY(define(d, "byte_ids", b, id, &c, 1));
    }
    return LMC_OK;
}

static lmc_status read_merge(defs *d, const lmc_json *m, int i, tok_merge *out)
{
    if (m->type != LMC_JSON_ARR || m->n != 3)
        return lmc_err(LMC_EFORMAT, "%s: merges[%d]: expected [left, right, result]", d->what, i);
    int ids[3] = {0, 0, 0};
    const lmc_json *v = m->child;
    for (int k = 0; k < 3; k++, v = v->next)
        LMC_TRY(get_id(v, d->what, "merges", i, d->n, &ids[k]));
    for (int k = 0; k < 2; k++)
        if (d->len[ids[k]] == UINT64_MAX)
            return lmc_err(LMC_EFORMAT, "%s: merges[%d]: token id %d is used before it is defined", d->what, i,
                           ids[k]);
    *out = (tok_merge){ids[0], ids[1], ids[2]};
    uint64_t la = d->len[ids[0]], lb = d->len[ids[1]];
    if (d->len[ids[2]] != UINT64_MAX) {
        /* an earlier token with the same bytes: allowed, must really match */
        const char *r = d->b.s + d->start[ids[2]];
        if (d->len[ids[2]] != la + lb || memcmp(r, d->b.s + d->start[ids[0]], la) ||
            memcmp(r + la, d->b.s + d->start[ids[1]], lb))
            return lmc_err(LMC_EFORMAT, "%s: merges[%d]: token id %d is already defined with other bytes",
                           d->what, i, ids[2]);
        return LMC_OK;
    }
    uint8_t *cat = malloc(la + lb + 1);
    if (!cat)
        return lmc_err(LMC_ENOMEM, "%s: out of memory", d->what);
    memcpy(cat, d->b.s + d->start[ids[0]], la);
    memcpy(cat + la, d->b.s + d->start[ids[1]], lb);
    lmc_status s = define(d, "merges", i, ids[2], cat, la + lb);
    free(cat);
    return s;
}

static lmc_status read_specials(defs *d, const lmc_json *arr, tok_parts *p)
{
    if (!arr)
        return LMC_OK;
    if (arr->type != LMC_JSON_ARR)
        return lmc_err(LMC_EFORMAT, "%s: special_tokens must be an array", d->what);
    p->special_ids = malloc((size_t)(arr->n ? arr->n : 1) * sizeof *p->special_ids);
    if (!p->special_ids)
        return lmc_err(LMC_ENOMEM, "%s: out of memory", d->what);
    int i = 0;
    for (const lmc_json *v = arr->child; v; v = v->next, i++) {
        const lmc_json *c = v->type == LMC_JSON_OBJ ? lmc_json_get(v, "content") : NULL;
        if (!c || c->type != LMC_JSON_STR || c->slen == 0)
            return lmc_err(LMC_EFORMAT, "%s: special_tokens[%d]: expected {\"id\": N, \"content\": \"...\"}",
                           d->what, i);
        int id = 0;
        LMC_TRY(get_id(lmc_json_get(v, "id"), d->what, "special_tokens", i, d->n, &id));
        LMC_TRY(define(d, "special_tokens", i, id, (const uint8_t *)c->str, c->slen));
        p->special_ids[p->n_special++] = id;
    }
    return LMC_OK;
}

static lmc_status check_header(const lmc_json *j, const char *what, int *n)
{
    if (j->type != LMC_JSON_OBJ)
        return lmc_err(LMC_EFORMAT, "%s: expected a JSON object", what);
    const char *format = NULL, *pre = NULL;
    long long version = -1, vs = -1;
    LMC_TRY(lmc_json_get_str(j, "format", what, &format));
    LMC_TRY(lmc_json_get_int(j, "version", what, &version));
    LMC_TRY(lmc_json_get_str(j, "pretokenizer", what, &pre));
    LMC_TRY(lmc_json_get_int(j, "vocab_size", what, &vs));
    if (!format || strcmp(format, "lmc-bpe"))
        return lmc_err(LMC_EFORMAT, "%s: format is '%s', expected 'lmc-bpe'", what, format ? format : "(missing)");
    if (version != 1)
        return lmc_err(LMC_EUNSUPPORTED, "%s: version %lld is not supported (this lmc reads version 1)", what,
                       version);
    if (!pre || strcmp(pre, "gpt2"))
        return lmc_err(LMC_EUNSUPPORTED, "%s: pretokenizer '%s' is not supported (only 'gpt2')", what,
                       pre ? pre : "(missing)");
    if (vs < 256 || vs > (1 << 26))
        return lmc_err(LMC_EFORMAT, "%s: vocab_size %lld is out of range (256..%d)", what, vs, 1 << 26);
    *n = (int)vs;
    return LMC_OK;
}

/* Moves the per-id definitions into tok_parts, in id order. */
static lmc_status pack(defs *d, tok_parts *p)
{
    p->n_vocab = d->n;
    p->blob = malloc(d->b.len + 1);
    p->off = malloc(((size_t)d->n + 1) * sizeof *p->off);
    if (!p->blob || !p->off)
        return lmc_err(LMC_ENOMEM, "%s: out of memory", d->what);
    p->off[0] = 0;
    for (int id = 0; id < d->n; id++) {
        if (d->len[id] == UINT64_MAX)
            return lmc_err(LMC_EFORMAT, "%s: token id %d is defined by none of byte_ids, merges, special_tokens",
                           d->what, id);
        memcpy(p->blob + p->off[id], d->b.s + d->start[id], d->len[id]);
        p->off[id + 1] = p->off[id] + d->len[id];
    }
    return LMC_OK;
}

static lmc_status read_all(const lmc_json *j, defs *d, tok_parts *p)
{
    LMC_TRY(read_bytes(d, lmc_json_get(j, "byte_ids")));
    const lmc_json *ms = lmc_json_get(j, "merges");
    if (!ms || ms->type != LMC_JSON_ARR)
        return lmc_err(LMC_EFORMAT, "%s: merges must be an array of [left, right, result]", d->what);
    p->merges = malloc((size_t)(ms->n ? ms->n : 1) * sizeof *p->merges);
    if (!p->merges)
        return lmc_err(LMC_ENOMEM, "%s: out of memory", d->what);
    int i = 0;
    for (const lmc_json *m = ms->child; m; m = m->next, i++)
        LMC_TRY(read_merge(d, m, i, &p->merges[i]));
    p->n_merges = i;
    LMC_TRY(read_specials(d, lmc_json_get(j, "special_tokens"), p));
    return pack(d, p);
}

lmc_status tok_load_lmc_mem(const char *json, size_t n, const char *what, lmc_tokenizer **out)
{
    *out = NULL;
    lmc_json *j = NULL;
    LMC_TRY(lmc_json_parse(json, n, what, &j));
    defs d = {.what = what};
    tok_parts p = {.what = what, .merges_what = "merges"};
    lmc_sb_init(&d.b);
    lmc_status s = check_header(j, what, &d.n);
    if (s == LMC_OK) {
        d.start = malloc((size_t)d.n * sizeof *d.start);
        d.len = malloc((size_t)d.n * sizeof *d.len);
        if (!d.start || !d.len)
            s = lmc_err(LMC_ENOMEM, "%s: out of memory", what);
        else
            memset(d.len, 0xFF, (size_t)d.n * sizeof *d.len);
    }
    if (s == LMC_OK)
        s = read_all(j, &d, &p);
    if (s == LMC_OK)
        s = tok_build(&p, out);
    else
        tok_parts_free(&p);
    free(d.start);
    free(d.len);
    lmc_sb_free(&d.b);
    lmc_json_free(j);
    return s;
}

lmc_status tok_save_lmc_sb(const lmc_tokenizer *t, lmc_sb *o)
{
    lmc_sb_printf(o, "{\"format\": \"lmc-bpe\", \"version\": 1, \"pretokenizer\": \"gpt2\", \"unicode\": \"%s\",\n",
                  lmc_tok_unicode_version);
    lmc_sb_printf(o, " \"vocab_size\": %d,\n \"byte_ids\": [", t->n_vocab);
    for (int b = 0; b < 256; b++)
        lmc_sb_printf(o, "%s%d", b ? (b % 32 ? ", " : ",\n  ") : "", t->byte_id[b]);
    lmc_sb_puts(o, "],\n \"special_tokens\": [");
    for (int i = 0; i < t->n_special; i++) {
        int id = t->special_ids[i];
        lmc_sb_printf(o, "%s{\"id\": %d, \"content\": ", i ? ", " : "", id);
        lmc_sb_json_str(o, (const char *)t->blob + t->off[id], (size_t)(t->off[id + 1] - t->off[id]));
        lmc_sb_putc(o, '}');
    }
    lmc_sb_puts(o, "],\n \"merges\": [");
    for (int i = 0; i < t->n_merges; i++)
        lmc_sb_printf(o, "%s[%d, %d, %d]", i ? ",\n  " : "\n  ", t->merges[i].left, t->merges[i].right,
                      t->merges[i].result);
    lmc_sb_puts(o, "]}\n");
    return o->oom ? lmc_err(LMC_ENOMEM, "out of memory writing %s", LMC_TOK_FILE) : LMC_OK;
}

/* ---------- choosing the format ---------- */

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static lmc_status load_gpt2(const char *dir, lmc_tokenizer **out)
{
    char *ep = join(dir, "encoder.json"), *bp = join(dir, "vocab.bpe"), *e = NULL, *b = NULL;
    size_t en = 0, bn = 0;
    lmc_status s = ep && bp ? LMC_OK : lmc_err(LMC_ENOMEM, "out of memory");
    if (s == LMC_OK)
        s = lmc_read_file(ep, &e, &en);
    if (s == LMC_OK)
        s = lmc_read_file(bp, &b, &bn);
    if (s == LMC_OK)
        s = tok_load_gpt2_mem(e, en, b, bn, ep, bp, out);
    free(e);
    free(b);
    free(ep);
    free(bp);
    return s;
}

/* A .gguf file's tokenizer (src/model/gguf_vocab.c). Weak: the fuzz
 * targets that build this folder without the GGUF reader still link. */
#pragma weak lmc_gguf_tok_load

static int is_gguf(const char *path)
{
    size_t n = strlen(path);
    return n > 5 && !strcmp(path + n - 5, ".gguf") && !lmc_is_dir(path);
}

lmc_status lmc_tok_load(const char *dir, lmc_tokenizer **out)
{
    *out = NULL;
    if (is_gguf(dir))
        return lmc_gguf_tok_load ? lmc_gguf_tok_load(dir, out)
                                 : lmc_err(LMC_EUNSUPPORTED, "%s: this build of lmc reads no GGUF files", dir);
    if (!lmc_is_dir(dir))
        return lmc_err(LMC_EIO, "%s: not a directory (a tokenizer is a folder holding %s, or encoder.json and "
                       "vocab.bpe, or a .gguf file)", dir, LMC_TOK_FILE);
    char *lp = join(dir, LMC_TOK_FILE), *e = NULL;
    if (!lp)
        return lmc_err(LMC_ENOMEM, "out of memory");
    lmc_status s;
    if (lmc_path_exists(lp)) {
        size_t n = 0;
        s = lmc_read_file(lp, &e, &n);
        if (s == LMC_OK)
            s = tok_load_lmc_mem(e, n, lp, out);
        free(e);
    } else {
        char *ep = join(dir, "encoder.json"), *bp = join(dir, "vocab.bpe");
        int any = ep && bp && (lmc_path_exists(ep) || lmc_path_exists(bp));
        free(ep);
        free(bp);
        s = any ? load_gpt2(dir, out)
                : lmc_err(LMC_EIO, "%s: no tokenizer here (expected %s, or encoder.json and vocab.bpe)", dir,
                          LMC_TOK_FILE);
    }
    free(lp);
    return s;
}

static lmc_status write_sb(const char *dir, const char *name, const lmc_sb *b)
{
    char *path = join(dir, name);
    if (!path)
        return lmc_err(LMC_ENOMEM, "out of memory");
    lmc_status s = lmc_write_file_atomic(path, b->s ? b->s : "", b->len);
    free(path);
    return s;
}

lmc_status lmc_tok_save(const lmc_tokenizer *t, const char *dir)
{
    LMC_TRY(lmc_mkdir_p(dir));
    lmc_sb o, enc, bpe;
    lmc_sb_init(&o);
    lmc_sb_init(&enc);
    lmc_sb_init(&bpe);
    lmc_status s = tok_save_lmc_sb(t, &o);
    if (s == LMC_OK)
        s = write_sb(dir, LMC_TOK_FILE, &o);
    /* GPT-2's form is for interop only; a vocabulary it cannot express
     * (two tokens with the same bytes) just goes without it */
    if (s == LMC_OK && tok_save_gpt2_sb(t, &enc, &bpe) == LMC_OK) {
        s = write_sb(dir, "encoder.json", &enc);
        if (s == LMC_OK)
            s = write_sb(dir, "vocab.bpe", &bpe);
    }
    lmc_sb_free(&o);
    lmc_sb_free(&enc);
    lmc_sb_free(&bpe);
    return s;
}
