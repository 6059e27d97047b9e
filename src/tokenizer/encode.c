/* encode.c: BPE encoding. Text is split by the pre-tokenizer; each piece is
 * merged from its bytes by rank (lowest first, leftmost on ties, which is
 * GPT-2's rule when, as in every trained vocabulary, a merge's rank is above
 * those of the tokens it joins). A per-encoder cache of recent pieces makes
 * the common case a hash lookup. The tokenizer itself is never written, so
 * any number of encoders may share it across threads. */
#define _GNU_SOURCE /* memmem */
#include "tokenizer/tok_internal.h"

#include <limits.h>
#include <stdlib.h>

#define CACHE_MAX_KEY 64          /* longer pieces are rare: not cached */
#define CACHE_MIN_SLOTS 1024
#define CACHE_MAX_SLOTS (1u << 17) /* then the cache is cleared when half full */
#define SMALL_PIECE 256            /* longer pieces use the O(n log n) merge */

typedef struct {
    uint64_t hash; /* 0 = empty */
    uint32_t key_off, val_off;
    uint16_t key_len, n_val;
} cache_slot;

typedef struct {
    int32_t rank, pos;
} heap_ent;

struct lmc_tok_encoder {
    const lmc_tokenizer *tok;
    cache_slot *slots;
    uint32_t cap, used;
    uint8_t *keys;
    size_t keys_len, keys_cap;
    int32_t *vals;
    size_t vals_len, vals_cap;
    /* scratch for one piece, grown as needed */
    int *sym, *res, *nxt, *prv;
    int32_t *rk;
    uint8_t *dead;
    heap_ent *heap;
    size_t scratch_cap, heap_cap;
};

/* ---------- the piece cache ---------- */

static void cache_clear(lmc_tok_encoder *e)
{
    memset(e->slots, 0, (size_t)e->cap * sizeof *e->slots);
    e->used = 0;
    e->keys_len = 0;
    e->vals_len = 0;
}

static int cache_grow(lmc_tok_encoder *e)
{
    uint32_t ncap = e->cap * 2;
    cache_slot *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return 0;
    for (uint32_t i = 0; i < e->cap; i++) {
        cache_slot *s = &e->slots[i];
        if (!s->hash)
            continue;
        uint32_t h = (uint32_t)s->hash & (ncap - 1);
        while (ns[h].hash)
            h = (h + 1) & (ncap - 1);
        ns[h] = *s;
    }
    free(e->slots);
    e->slots = ns;
    e->cap = ncap;
    return 1;
}

static const cache_slot *cache_find(const lmc_tok_encoder *e, const uint8_t *s, size_t n, uint64_t h)
{
    for (uint32_t i = (uint32_t)h & (e->cap - 1);; i = (i + 1) & (e->cap - 1)) {
        const cache_slot *c = &e->slots[i];
        if (!c->hash)
            return NULL;
        if (c->hash == h && c->key_len == n && !memcmp(e->keys + c->key_off, s, n))
            return c;
    }
}

/* Best effort: a failed insert only costs speed later. */
static void cache_put(lmc_tok_encoder *e, const uint8_t *s, size_t n, uint64_t h, const int *ids, size_t nids)
{
    if (e->used + 1 > e->cap / 2) {
        if (e->cap >= CACHE_MAX_SLOTS || !cache_grow(e))
            cache_clear(e);
    }
    if (!lmc_reserve((void **)&e->keys, &e->keys_cap, e->keys_len + n, 1) ||
        !lmc_reserve((void **)&e->vals, &e->vals_cap, e->vals_len + nids, sizeof *e->vals))
        return;
    uint32_t i = (uint32_t)h & (e->cap - 1);
    while (e->slots[i].hash)
        i = (i + 1) & (e->cap - 1);
    e->slots[i] = (cache_slot){h, (uint32_t)e->keys_len, (uint32_t)e->vals_len, (uint16_t)n, (uint16_t)nids};
    memcpy(e->keys + e->keys_len, s, n);
    for (size_t k = 0; k < nids; k++)
        e->vals[e->vals_len + k] = ids[k];
    e->keys_len += n;
    e->vals_len += nids;
    e->used++;
}

/* ---------- BPE on one piece ---------- */

static int scratch(lmc_tok_encoder *e, size_t n)
{
    if (n <= e->scratch_cap)
        return 1;
    size_t c = e->scratch_cap ? e->scratch_cap : 256;
    while (c < n)
        c *= 2;
    int *a = realloc(e->sym, c * sizeof *a), *b = a ? realloc(e->res, c * sizeof *b) : NULL;
    if (a)
        e->sym = a;
    if (b)
        e->res = b;
    int *d = b ? realloc(e->nxt, c * sizeof *d) : NULL, *f = d ? realloc(e->prv, c * sizeof *f) : NULL;
    if (d)
        e->nxt = d;
    if (f)
        e->prv = f;
    int32_t *r = f ? realloc(e->rk, c * sizeof *r) : NULL;
    if (r)
        e->rk = r;
    uint8_t *x = r ? realloc(e->dead, c) : NULL;
    if (x)
        e->dead = x;
    if (!x)
        return 0;
    e->scratch_cap = c;
    return 1;
}

static inline int32_t rank_of(const lmc_tokenizer *t, int a, int b, int *res)
{
    int r = tok_pair_rank(t, a, b, res);
    return r < 0 ? INT32_MAX : r;
}

/* Short pieces: repeatedly merge the lowest-ranked pair (leftmost on ties). */
static size_t bpe_small(lmc_tok_encoder *e, const uint8_t *s, size_t n, int *out)
{
    const lmc_tokenizer *t = e->tok;
    int *sym = e->sym, *res = e->res;
    int32_t *rk = e->rk;
    size_t m = n;
    for (size_t i = 0; i < n; i++)
        sym[i] = t->byte_id[s[i]];
    for (size_t i = 0; i + 1 < m; i++)
        rk[i] = rank_of(t, sym[i], sym[i + 1], &res[i]);
    while (m > 1) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < m; i++)
            if (rk[i] < rk[best])
                best = i;
        if (rk[best] == INT32_MAX)
            break;
        /* symbols after best+1 and the pairs after best+1 move left by one */
        size_t tail = m - best - 2;
        sym[best] = res[best];
        memmove(sym + best + 1, sym + best + 2, tail * sizeof *sym);
        if (tail > 1) {
            memmove(rk + best + 1, rk + best + 2, (tail - 1) * sizeof *rk);
            memmove(res + best + 1, res + best + 2, (tail - 1) * sizeof *res);
        }
        m--;
        if (best > 0)
            rk[best - 1] = rank_of(t, sym[best - 1], sym[best], &res[best - 1]);
        if (best + 1 < m)
            rk[best] = rank_of(t, sym[best], sym[best + 1], &res[best]);
    }
    memcpy(out, sym, m * sizeof *out);
    return m;
}

static inline int heap_less(heap_ent a, heap_ent b)
{
    return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void heap_push(heap_ent *h, size_t *n, heap_ent x)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(x, h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static heap_ent heap_pop(heap_ent *h, size_t *n)
{
    heap_ent top = h[0], x = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && heap_less(h[c + 1], h[c]))
            c++;
        if (!heap_less(h[c], x))
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n)
        h[i] = x;
    return top;
}

/* Long pieces: the same merge order, with a heap keyed by (rank, position)
 * and a linked list, so adversarial input (a megabyte of one character)
 * costs O(n log n) instead of O(n^2). An entry is stale unless the pair now
 * at its position still has its rank: a rank names exactly one pair. */
static size_t bpe_large(lmc_tok_encoder *e, const uint8_t *s, size_t n, int *out)
{
    const lmc_tokenizer *t = e->tok;
    int *sym = e->sym, *nxt = e->nxt, *prv = e->prv, res = -1;
    if (!lmc_reserve((void **)&e->heap, &e->heap_cap, 3 * n, sizeof *e->heap))
        return (size_t)-1;
    heap_ent *h = e->heap;
    size_t hn = 0;
    for (size_t i = 0; i < n; i++) {
        sym[i] = t->byte_id[s[i]];
        nxt[i] = i + 1 < n ? (int)i + 1 : -1;
        prv[i] = (int)i - 1;
        e->dead[i] = 0;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        int32_t r = rank_of(t, sym[i], sym[i + 1], &res);
        if (r != INT32_MAX)
            heap_push(h, &hn, (heap_ent){r, (int32_t)i});
    }
    while (hn) {
        heap_ent top = heap_pop(h, &hn);
        int i = top.pos, j = nxt[i];
        if (e->dead[i] || j < 0 || rank_of(t, sym[i], sym[j], &res) != top.rank)
            continue;
        sym[i] = res;
        e->dead[j] = 1;
        nxt[i] = nxt[j];
        if (nxt[j] >= 0)
            prv[nxt[j]] = i;
        int32_t r;
        if (prv[i] >= 0 && (r = rank_of(t, sym[prv[i]], sym[i], &res)) != INT32_MAX)
            heap_push(h, &hn, (heap_ent){r, prv[i]});
        if (nxt[i] >= 0 && (r = rank_of(t, sym[i], sym[nxt[i]], &res)) != INT32_MAX)
            heap_push(h, &hn, (heap_ent){r, i});
    }
    size_t m = 0;
    for (int i = 0; i >= 0; i = nxt[i])
        out[m++] = sym[i];
    return m;
}

/* Appends the ids of one piece; out has room for n more ids. */
static lmc_status encode_piece(lmc_tok_encoder *e, const uint8_t *s, size_t n, int *out, size_t *m)
{
    if (n == 1) {
        out[0] = e->tok->byte_id[s[0]];
        *m = 1;
        return LMC_OK;
    }
    uint64_t h = 0;
    if (n <= CACHE_MAX_KEY) {
        h = tok_hash_bytes(s, n);
        const cache_slot *c = cache_find(e, s, n, h);
        if (c) {
            memcpy(out, e->vals + c->val_off, c->n_val * sizeof *out);
            *m = c->n_val;
            return LMC_OK;
        }
    }
    if (!scratch(e, n))
        return lmc_err(LMC_ENOMEM, "out of memory encoding a %zu-byte piece", n);
    *m = n <= SMALL_PIECE ? bpe_small(e, s, n, out) : bpe_large(e, s, n, out);
    if (*m == (size_t)-1)
        return lmc_err(LMC_ENOMEM, "out of memory encoding a %zu-byte piece", n);
    if (h)
        cache_put(e, s, n, h, out, *m);
    return LMC_OK;
}

/* ---------- public entry points ---------- */

lmc_status lmc_tok_encoder_new(const lmc_tokenizer *tok, lmc_tok_encoder **out)
{
    *out = NULL;
    lmc_tok_encoder *e = calloc(1, sizeof *e);
    if (!e)
        return lmc_err(LMC_ENOMEM, "out of memory creating an encoder");
    e->tok = tok;
    e->cap = CACHE_MIN_SLOTS;
    e->slots = calloc(e->cap, sizeof *e->slots);
    if (!e->slots) {
        free(e);
        return lmc_err(LMC_ENOMEM, "out of memory creating an encoder");
    }
    *out = e;
    return LMC_OK;
}

void lmc_tok_encoder_free(lmc_tok_encoder *e)
{
    if (!e)
        return;
    free(e->slots);
    free(e->keys);
    free(e->vals);
    free(e->sym);
    free(e->res);
    free(e->nxt);
    free(e->prv);
    free(e->rk);
    free(e->dead);
    free(e->heap);
    free(e);
}

lmc_status lmc_tok_encoder_encode(lmc_tok_encoder *e, const char *text, size_t n, int **ids, size_t *nids,
                                  size_t *cap)
{
    const uint8_t *s = (const uint8_t *)text;
    size_t p = 0;
    while (p < n) {
        size_t end = lmc_tok_piece_end(text, n, p), len = end - p, m = 0;
        if (!lmc_reserve((void **)ids, cap, *nids + len, sizeof **ids))
            return lmc_err(LMC_ENOMEM, "out of memory: %zu token ids", *nids + len);
        LMC_TRY(encode_piece(e, s + p, len, *ids + *nids, &m));
        *nids += m;
        p = end;
    }
    return LMC_OK;
}

/* Earliest (then longest) occurrence at or after p of one of the allowed
 * specials; *id = -1 when none remains. */
static size_t next_special(const lmc_tokenizer *t, const int *allowed, int na, const char *text, size_t n,
                           size_t p, int *id, size_t *len)
{
    size_t best = n;
    *id = -1;
    *len = 0;
    for (int i = 0; i < na; i++) {
        size_t sl;
        const char *name = lmc_tok_token_bytes(t, allowed[i], &sl);
        const char *hit = sl && p < n ? memmem(text + p, n - p, name, sl) : NULL;
        if (!hit)
            continue;
        size_t at = (size_t)(hit - text);
        if (at < best || (at == best && sl > *len)) {
            best = at;
            *id = allowed[i];
            *len = sl;
        }
    }
    return best;
}

static lmc_status resolve_specials(const lmc_tokenizer *tok, const char *const *names, int n_names, int **allowed,
                                   int *na)
{
    *na = names ? n_names : tok->n_special;
    *allowed = malloc((size_t)(*na ? *na : 1) * sizeof **allowed);
    if (!*allowed)
        return lmc_err(LMC_ENOMEM, "out of memory");
    for (int i = 0; i < *na; i++) {
        (*allowed)[i] = names ? lmc_tok_special_id(tok, names[i]) : tok->special_ids[i];
        if ((*allowed)[i] < 0) {
            lmc_status s = lmc_err(LMC_EINVAL, "special token '%s' is not in the vocabulary", names[i]);
            free(*allowed);
            *allowed = NULL;
            return s;
        }
    }
    return LMC_OK;
}

/* Encodes text, turning occurrences of the allowed specials into their ids. */
static lmc_status encode_with(const lmc_tokenizer *tok, const char *text, size_t n, const int *allowed, int na,
                              int **ids, size_t *nids)
{
    *ids = NULL;
    *nids = 0;
    lmc_tok_encoder *e;
    LMC_TRY(lmc_tok_encoder_new(tok, &e));
    lmc_status s = LMC_OK;
    size_t cap = 0, p = 0;
    while (s == LMC_OK && p < n) {
        int id = -1;
        size_t len = 0, at = na ? next_special(tok, allowed, na, text, n, p, &id, &len) : n;
        s = lmc_tok_encoder_encode(e, text + p, at - p, ids, nids, &cap);
        if (s == LMC_OK && id >= 0) {
            if (!lmc_reserve((void **)ids, &cap, *nids + 1, sizeof **ids))
                s = lmc_err(LMC_ENOMEM, "out of memory");
            else
                (*ids)[(*nids)++] = id;
        }
        p = at + len;
    }
    lmc_tok_encoder_free(e);
    if (s == LMC_OK && !*ids && !(*ids = malloc(sizeof **ids))) /* valid even for empty text */
        s = lmc_err(LMC_ENOMEM, "out of memory");
    if (s != LMC_OK) {
        free(*ids);
        *ids = NULL;
        *nids = 0;
    }
    return s;
}

lmc_status lmc_tok_encode(const lmc_tokenizer *tok, const char *text, size_t n, int **ids, size_t *nids)
{
    return encode_with(tok, text, n, NULL, 0, ids, nids);
}

lmc_status lmc_tok_encode_special(const lmc_tokenizer *tok, const char *text, size_t n, const char *const *names,
                                  int n_names, int **ids, size_t *nids)
{
    *ids = NULL;
    *nids = 0;
    int *allowed = NULL, na = 0;
    LMC_TRY(resolve_specials(tok, names, n_names, &allowed, &na));
    lmc_status s = encode_with(tok, text, n, allowed, na, ids, nids);
    free(allowed);
    return s;
}
