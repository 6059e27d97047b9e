/* vocab.c: the tokenizer object: building it from checked parts (every
 * loader and the trainer go through tok_build), lookups, decoding, freeing. */
#include "tokenizer/tok_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define TOK_MAX_VOCAB (1 << 26) /* far past any real vocabulary; stops absurd sizes */

void tok_describe(lmc_sb *b, const uint8_t *s, size_t n)
{
    size_t shown = n > 48 ? 48 : n;
    lmc_sb_putc(b, '\'');
    for (size_t i = 0; i < shown; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7F && s[i] != '\'' && s[i] != '\\')
            lmc_sb_putc(b, (char)s[i]);
        else
            lmc_sb_printf(b, "\\x%02x", s[i]);
    }
    lmc_sb_putc(b, '\'');
    if (shown < n)
        lmc_sb_printf(b, "... (%zu bytes)", n);
}

/* ---------- token bytes -> id ---------- */

lmc_status tok_idmap_init(tok_idmap *m, size_t expect)
{
    uint64_t cap = 64;
    while (cap < expect * 2)
        cap *= 2;
    m->hash = calloc(cap, sizeof *m->hash);
    m->id = malloc(cap * sizeof *m->id);
    m->mask = cap - 1;
    m->used = 0;
    if (!m->hash || !m->id) {
        tok_idmap_free(m);
        return lmc_err(LMC_ENOMEM, "out of memory");
    }
    return LMC_OK;
}

void tok_idmap_free(tok_idmap *m)
{
    free(m->hash);
    free(m->id);
    m->hash = NULL;
    m->id = NULL;
}

static int idmap_slot(const tok_idmap *m, const uint8_t *blob, const uint64_t *off, const uint8_t *s, size_t n,
                      uint64_t h, uint64_t *slot)
{
    for (uint64_t i = h & m->mask;; i = (i + 1) & m->mask) {
        if (!m->hash[i]) {
            *slot = i;
            return -1;
        }
        int id = m->id[i];
        if (m->hash[i] == h && off[id + 1] - off[id] == n && !memcmp(blob + off[id], s, n))
            return id;
    }
}

int tok_idmap_find(const tok_idmap *m, const uint8_t *blob, const uint64_t *off, const uint8_t *s, size_t n)
{
    uint64_t slot = 0;
    return idmap_slot(m, blob, off, s, n, tok_hash_bytes(s, n), &slot);
}

static int idmap_grow(tok_idmap *m)
{
    tok_idmap g;
    if (tok_idmap_init(&g, (size_t)(m->mask + 1)) != LMC_OK)
        return 0;
    for (uint64_t i = 0; i <= m->mask; i++) {
        if (!m->hash[i])
            continue;
        uint64_t j = m->hash[i] & g.mask;
        while (g.hash[j])
            j = (j + 1) & g.mask;
        g.hash[j] = m->hash[i];
        g.id[j] = m->id[i];
    }
    g.used = m->used;
    tok_idmap_free(m);
    *m = g;
    return 1;
}

int tok_idmap_add(tok_idmap *m, const uint8_t *blob, const uint64_t *off, int id)
{
    if ((m->used + 1) * 2 > m->mask + 1 && !idmap_grow(m))
        return -2;
    const uint8_t *s = blob + off[id];
    size_t n = (size_t)(off[id + 1] - off[id]);
    uint64_t h = tok_hash_bytes(s, n), slot = 0;
    int old = idmap_slot(m, blob, off, s, n, h, &slot);
    if (old >= 0)
        return old;
    m->hash[slot] = h;
    m->id[slot] = id;
    m->used++;
    return -1;
}

/* ---------- building ---------- */

void tok_parts_free(tok_parts *p)
{
    free(p->blob);
    free(p->off);
    free(p->merges);
    free(p->special_ids);
    p->blob = NULL;
    p->off = NULL;
    p->merges = NULL;
    p->special_ids = NULL;
}

void lmc_tok_free(lmc_tokenizer *t)
{
    if (!t)
        return;
    free(t->blob);
    free(t->off);
    free(t->merges);
    free(t->pairs);
    free(t->special_ids);
    free(t->is_special);
    free(t);
}

static const uint8_t *tok_bytes(const lmc_tokenizer *t, int id, size_t *len)
{
    *len = (size_t)(t->off[id + 1] - t->off[id]);
    return t->blob + t->off[id];
}

/* Message for merge i: "vocab.bpe line 7" or "merges[6]". */
static void merge_where(lmc_sb *b, const tok_parts *p, int i)
{
    if (p->merge_lines)
        lmc_sb_printf(b, "%s %d", p->merges_what, p->merge_lines[i]);
    else
        lmc_sb_printf(b, "%s[%d]", p->merges_what, i);
}

static lmc_status check_specials(lmc_tokenizer *t, const tok_parts *p)
{
    t->is_special = calloc((size_t)t->n_vocab, 1);
    if (!t->is_special)
        return lmc_err(LMC_ENOMEM, "%s: out of memory", p->what);
    for (int i = 0; i < t->n_special; i++) {
        int id = t->special_ids[i];
        if (id < 0 || id >= t->n_vocab)
            return lmc_err(LMC_EFORMAT, "%s: special token id %d is out of range (vocab size %d)", p->what, id,
                           t->n_vocab);
        if (t->is_special[id])
            return lmc_err(LMC_EFORMAT, "%s: special token id %d is listed twice", p->what, id);
        if (t->off[id + 1] == t->off[id])
            return lmc_err(LMC_EFORMAT, "%s: special token id %d has an empty name", p->what, id);
        t->is_special[id] = 1;
    }
    return LMC_OK;
}

static lmc_status check_bytes(lmc_tokenizer *t, const tok_parts *p)
{
    for (int b = 0; b < 256; b++)
        t->byte_id[b] = -1;
    for (int id = 0; id < t->n_vocab; id++) {
        size_t len;
        const uint8_t *s = tok_bytes(t, id, &len);
        if (len != 1 || t->is_special[id])
            continue;
        if (t->byte_id[s[0]] >= 0)
            return lmc_err(LMC_EFORMAT, "%s: byte 0x%02x has two tokens (ids %d and %d)", p->what, s[0],
                           t->byte_id[s[0]], id);
        t->byte_id[s[0]] = id;
    }
    for (int b = 0; b < 256; b++)
        if (t->byte_id[b] < 0)
            return lmc_err(LMC_EFORMAT, "%s: no token for byte 0x%02x (a byte-level BPE needs all 256)", p->what,
                           b);
    return LMC_OK;
}

static lmc_status merge_error(const tok_parts *p, int i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static lmc_status merge_error(const tok_parts *p, int i, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lmc_sb w;
    lmc_sb_init(&w);
    merge_where(&w, p, i);
    lmc_status s = lmc_err(LMC_EFORMAT, "%s: %s: %s", p->merges_file ? p->merges_file : p->what, w.s ? w.s : "?",
                           msg);
    lmc_sb_free(&w);
    return s;
}

static lmc_status check_merge(const lmc_tokenizer *t, const tok_parts *p, int i)
{
    const tok_merge *m = &t->merges[i];
    int ids[3] = {m->left, m->right, m->result};
    for (int k = 0; k < 3; k++) {
        if (ids[k] < 0 || ids[k] >= t->n_vocab)
            return merge_error(p, i, "token id %d is out of range (vocab size %d)", ids[k], t->n_vocab);
        if (t->is_special[ids[k]])
            return merge_error(p, i, "token id %d is a special token", ids[k]);
    }
    size_t la, lb, lr;
    const uint8_t *a = tok_bytes(t, m->left, &la), *b = tok_bytes(t, m->right, &lb);
    const uint8_t *r = tok_bytes(t, m->result, &lr);
    if (lr != la + lb || memcmp(r, a, la) || memcmp(r + la, b, lb))
        return merge_error(p, i, "merged token %d is not token %d followed by token %d", m->result, m->left,
                           m->right);
    return LMC_OK;
}

static lmc_status build_pairs(lmc_tokenizer *t, const tok_parts *p)
{
    uint64_t cap = 16;
    while (cap < (uint64_t)t->n_merges * 2)
        cap *= 2;
    t->pairs = calloc(cap, sizeof *t->pairs);
    if (!t->pairs)
        return lmc_err(LMC_ENOMEM, "%s: out of memory", p->what);
    t->pair_mask = cap - 1;
    for (int i = 0; i < t->n_merges; i++) {
        LMC_TRY(check_merge(t, p, i));
        const tok_merge *m = &t->merges[i];
        uint64_t key = (((uint64_t)(uint32_t)m->left << 32) | (uint32_t)m->right) + 1;
        uint64_t h = tok_pair_hash(key) & t->pair_mask;
        while (t->pairs[h].key && t->pairs[h].key != key)
            h = (h + 1) & t->pair_mask;
        if (t->pairs[h].key == key) {
            lmc_sb d;
            lmc_sb_init(&d);
            merge_where(&d, p, t->pairs[h].rank);
            lmc_status s = merge_error(p, i, "duplicate merge of tokens %d and %d (first at %s)", m->left,
                                       m->right, d.s ? d.s : "?");
            lmc_sb_free(&d);
            return s;
        }
        t->pairs[h] = (tok_pair_slot){key, i, m->result};
    }
    return LMC_OK;
}

lmc_status tok_build(tok_parts *p, lmc_tokenizer **out)
{
    *out = NULL;
    if (p->n_vocab < 256 || p->n_vocab > TOK_MAX_VOCAB) {
        tok_parts_free(p);
        return lmc_err(LMC_EFORMAT, "%s: vocabulary size %d is out of range (256..%d)", p->what, p->n_vocab,
                       TOK_MAX_VOCAB);
    }
    lmc_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        tok_parts_free(p);
        return lmc_err(LMC_ENOMEM, "%s: out of memory", p->what);
    }
    t->n_vocab = p->n_vocab;
    t->blob = p->blob;
    t->off = p->off;
    t->n_merges = p->n_merges;
    t->merges = p->merges;
    t->n_special = p->n_special;
    t->special_ids = p->special_ids;
    p->blob = NULL, p->off = NULL, p->merges = NULL, p->special_ids = NULL;
    lmc_status s = check_specials(t, p);
    if (s == LMC_OK)
        s = check_bytes(t, p);
    if (s == LMC_OK)
        s = build_pairs(t, p);
    if (s != LMC_OK) {
        lmc_tok_free(t);
        return s;
    }
    *out = t;
    return LMC_OK;
}

int lmc_tok_vocab_size(const lmc_tokenizer *t)
{
    return t->n_vocab;
}

int lmc_tok_n_merges(const lmc_tokenizer *t)
{
    return t->n_merges;
}

int lmc_tok_n_special(const lmc_tokenizer *t)
{
    return t->n_special;
}

int lmc_tok_special_at(const lmc_tokenizer *t, int i)
{
    return i >= 0 && i < t->n_special ? t->special_ids[i] : -1;
}

int lmc_tok_is_special(const lmc_tokenizer *t, int id)
{
    return id >= 0 && id < t->n_vocab && t->is_special[id];
}

int lmc_tok_special_id(const lmc_tokenizer *t, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < t->n_special; i++) {
        size_t len;
        const uint8_t *s = tok_bytes(t, t->special_ids[i], &len);
        if (len == n && !memcmp(s, name, n))
            return t->special_ids[i];
    }
    return -1;
}

const char *lmc_tok_token_bytes(const lmc_tokenizer *t, int id, size_t *len)
{
    if (id < 0 || id >= t->n_vocab) {
        *len = 0;
        return NULL;
    }
    return (const char *)tok_bytes(t, id, len);
}

lmc_status lmc_tok_decode(const lmc_tokenizer *t, const int *ids, size_t n, lmc_sb *out)
{
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return lmc_err(LMC_ERANGE, "token id %d at position %zu is out of range (vocab size %d)", ids[i], i,
                           t->n_vocab);
        size_t len;
        const uint8_t *s = tok_bytes(t, ids[i], &len);
        lmc_sb_put(out, (const char *)s, len);
    }
    if (out->oom)
        return lmc_err(LMC_ENOMEM, "out of memory decoding %zu tokens", n);
    return LMC_OK;
}
