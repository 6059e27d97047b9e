/* train_merge.c: the second half of BPE training. Starting from the counted
 * words spelled as bytes, repeatedly join the most frequent adjacent pair
 * (ties: smaller left id, then smaller right id) into a new token until the
 * vocabulary is full or the best pair is rarer than min_frequency.
 *
 * Each pair keeps a list of the words it occurs in, so a merge touches only
 * those words; a max-heap of (count, pair) is updated lazily: an entry whose
 * count is stale is re-pushed with the true count when it surfaces. */
#include "tokenizer/train_internal.h"

#include <stdlib.h>

typedef struct {
    int a, b;
    int64_t count;
    int *occ; /* words the pair occurs in (may hold stale ones) */
    int nocc, capocc;
    int merged; /* already recorded as a merge */
    int stamp;  /* last step that queued it for the heap */
} tpair;

typedef struct {
    int64_t count;
    int pair;
} hent;

typedef struct {
    const lmc_tok_trainer *tr;
    /* words, spelled as token ids; merging shrinks them in place */
    int nw;
    int64_t *wcount;
    uint64_t *woff;
    uint32_t *wlen;
    int *wstamp;
    int *sym;
    /* pairs and (a, b) -> pair index */
    tpair *pairs;
    int np, capp;
    uint64_t *pkey;
    int *pidx;
    uint64_t pmask;
    /* lazy max-heap */
    hent *heap;
    size_t nh, caph;
    /* the vocabulary being built */
    lmc_sb blob;
    uint64_t *off;
    int ntok, captok;
    tok_idmap map;
    tok_merge *merges;
    int nm, capm;
    int *touched;
    int ntouched, captouched;
    int step;
} bpe;

static int grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return 1;
    int nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    void *np = realloc(*p, (size_t)nc * elem);
    if (!np)
        return 0;
    *p = np;
    *cap = nc;
    return 1;
}

#define OOM() lmc_err(LMC_ENOMEM, "out of memory training the tokenizer")

/* ---------- pairs ---------- */

static lmc_status pmap_resize(bpe *B, uint64_t cap)
{
    uint64_t *keys = calloc(cap, sizeof *keys);
    int *idx = malloc(cap * sizeof *idx);
    if (!keys || !idx) {
        free(keys);
        free(idx);
        return OOM();
    }
    for (uint64_t i = 0; B->pkey && i <= B->pmask; i++) {
        if (!B->pkey[i])
            continue;
        uint64_t j = tok_pair_hash(B->pkey[i]) & (cap - 1);
        while (keys[j])
            j = (j + 1) & (cap - 1);
        keys[j] = B->pkey[i];
        idx[j] = B->pidx[i];
    }
    free(B->pkey);
    free(B->pidx);
    B->pkey = keys;
    B->pidx = idx;
    B->pmask = cap - 1;
    return LMC_OK;
}

/* Index of pair (a, b), created with count 0 if new; -1 when out of memory. */
static int pair_get(bpe *B, int a, int b)
{
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    uint64_t i = tok_pair_hash(key) & B->pmask;
    for (; B->pkey[i]; i = (i + 1) & B->pmask)
        if (B->pkey[i] == key)
            return B->pidx[i];
    if (!grow((void **)&B->pairs, &B->capp, B->np + 1, sizeof *B->pairs))
        return -1;
    B->pairs[B->np] = (tpair){.a = a, .b = b, .stamp = -1};
    B->pkey[i] = key;
    B->pidx[i] = B->np;
    if ((uint64_t)(B->np + 1) * 2 > B->pmask + 1 && pmap_resize(B, (B->pmask + 1) * 2) != LMC_OK)
        return -1;
    return B->np++;
}

static int occ_add(tpair *p, int w)
{
    if (p->nocc && p->occ[p->nocc - 1] == w)
        return 1;
    if (!grow((void **)&p->occ, &p->capocc, p->nocc + 1, sizeof *p->occ))
        return 0;
    p->occ[p->nocc++] = w;
    return 1;
}

/* ---------- heap ---------- */

static int hbetter(const bpe *B, hent x, hent y)
{
    if (x.count != y.count)
        return x.count > y.count;
    const tpair *p = &B->pairs[x.pair], *q = &B->pairs[y.pair];
    return p->a != q->a ? p->a < q->a : p->b < q->b;
}

static lmc_status hpush(bpe *B, int pair)
{
    if (B->nh == B->caph) {
        size_t nc = B->caph ? B->caph * 2 : 1024;
        hent *nh = realloc(B->heap, nc * sizeof *nh);
        if (!nh)
            return OOM();
        B->heap = nh;
        B->caph = nc;
    }
    hent x = {B->pairs[pair].count, pair};
    size_t i = B->nh++;
    while (i > 0 && hbetter(B, x, B->heap[(i - 1) / 2])) {
        B->heap[i] = B->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    B->heap[i] = x;
    return LMC_OK;
}

static hent hpop(bpe *B)
{
    hent top = B->heap[0], x = B->heap[--B->nh];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= B->nh)
            break;
        if (c + 1 < B->nh && hbetter(B, B->heap[c + 1], B->heap[c]))
            c++;
        if (!hbetter(B, B->heap[c], x))
            break;
        B->heap[i] = B->heap[c];
        i = c;
    }
    if (B->nh)
        B->heap[i] = x;
    return top;
}

/* ---------- tokens ---------- */

static lmc_status add_token(bpe *B, const uint8_t *s, size_t n, int *id)
{
    if (!grow((void **)&B->off, &B->captok, B->ntok + 2, sizeof *B->off))
        return OOM();
    if (B->ntok == 0)
        B->off[0] = 0;
    lmc_sb_put(&B->blob, (const char *)s, n);
    if (B->blob.oom)
        return OOM();
    B->off[B->ntok + 1] = B->blob.len;
    *id = B->ntok++;
    int old = tok_idmap_add(&B->map, (const uint8_t *)B->blob.s, B->off, *id);
    if (old == -2)
        return OOM();
    if (old >= 0) { /* the bytes already have a token: use it */
        B->ntok--;
        B->blob.len = B->off[B->ntok];
        *id = old;
    }
    return LMC_OK;
}

/* ---------- setup ---------- */

static lmc_status load_words(bpe *B)
{
    const tok_wordmap *m = &B->tr->words;
    size_t nsym = 0;
    int nw = 0;
    for (size_t i = 0; i <= m->mask; i++)
        if (m->slots[i].hash && m->slots[i].len > 1)
            nw++, nsym += m->slots[i].len;
    B->wcount = malloc(((size_t)nw + 1) * sizeof *B->wcount);
    B->woff = malloc(((size_t)nw + 1) * sizeof *B->woff);
    B->wlen = malloc(((size_t)nw + 1) * sizeof *B->wlen);
    B->wstamp = calloc((size_t)nw + 1, sizeof *B->wstamp);
    B->sym = malloc((nsym + 1) * sizeof *B->sym);
    if (!B->wcount || !B->woff || !B->wlen || !B->wstamp || !B->sym)
        return OOM();
    size_t at = 0;
    for (size_t i = 0; i <= m->mask; i++) {
        const tok_word *w = &m->slots[i];
        if (!w->hash || w->len < 2)
            continue; /* one byte: nothing to merge */
        const uint8_t *s = (const uint8_t *)B->tr->keys.s + w->off;
        B->wcount[B->nw] = w->count;
        B->woff[B->nw] = at;
        B->wlen[B->nw] = w->len;
        for (uint32_t k = 0; k < w->len; k++)
            B->sym[at++] = s[k];
        B->nw++;
    }
    return LMC_OK;
}

static lmc_status setup(bpe *B)
{
    LMC_TRY(load_words(B));
    LMC_TRY(tok_idmap_init(&B->map, 1024));
    lmc_sb_init(&B->blob);
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        int id;
        LMC_TRY(add_token(B, &c, 1, &id));
    }
    LMC_TRY(pmap_resize(B, 1 << 12));
    for (int w = 0; w < B->nw; w++) {
        const int *s = B->sym + B->woff[w];
        for (uint32_t i = 0; i + 1 < B->wlen[w]; i++) {
            int p = pair_get(B, s[i], s[i + 1]);
            if (p < 0 || !occ_add(&B->pairs[p], w))
                return OOM();
            B->pairs[p].count += B->wcount[w];
        }
    }
    for (int p = 0; p < B->np; p++)
        if (B->pairs[p].count >= B->tr->min_frequency)
            LMC_TRY(hpush(B, p));
    return LMC_OK;
}

/* ---------- one merge ---------- */

/* Re-spells word w with every (a, b) joined into t, moving its pair counts;
 * pairs that gain t are queued for the heap. */
static lmc_status merge_word(bpe *B, int w, int a, int b, int t)
{
    int *s = B->sym + B->woff[w];
    uint32_t n = B->wlen[w], i, j;
    int64_t c = B->wcount[w];
    for (i = 0; i + 1 < n && !(s[i] == a && s[i + 1] == b); i++)
        ;
    if (i + 1 >= n)
        return LMC_OK; /* stale entry: the pair is no longer here */
    for (i = 0; i + 1 < n; i++)
        B->pairs[pair_get(B, s[i], s[i + 1])].count -= c; /* exists: counted before */
    for (i = 0, j = 0; i < n;) {
        if (i + 1 < n && s[i] == a && s[i + 1] == b)
            s[j++] = t, i += 2;
        else
            s[j++] = s[i++];
    }
    B->wlen[w] = n = j;
    for (i = 0; i + 1 < n; i++) {
        int p = pair_get(B, s[i], s[i + 1]);
        if (p < 0)
            return OOM();
        tpair *q = &B->pairs[p];
        q->count += c;
        if (s[i] != t && s[i + 1] != t)
            continue;
        if (!occ_add(q, w))
            return OOM();
        if (q->stamp != B->step) {
            q->stamp = B->step;
            if (!grow((void **)&B->touched, &B->captouched, B->ntouched + 1, sizeof *B->touched))
                return OOM();
            B->touched[B->ntouched++] = p;
        }
    }
    return LMC_OK;
}

static lmc_status apply(bpe *B, int pi)
{
    int a = B->pairs[pi].a, b = B->pairs[pi].b, t;
    size_t la = B->off[a + 1] - B->off[a], lb = B->off[b + 1] - B->off[b];
    uint8_t *cat = malloc(la + lb);
    if (!cat)
        return OOM();
    memcpy(cat, B->blob.s + B->off[a], la);
    memcpy(cat + la, B->blob.s + B->off[b], lb);
    lmc_status s = add_token(B, cat, la + lb, &t);
    free(cat);
    LMC_TRY(s);
    if (!B->pairs[pi].merged) { /* a pair re-formed after its merge is not recorded twice */
        if (!grow((void **)&B->merges, &B->capm, B->nm + 1, sizeof *B->merges))
            return OOM();
        B->merges[B->nm++] = (tok_merge){a, b, t};
        B->pairs[pi].merged = 1;
    }
    B->step++;
    B->ntouched = 0;
    int *occ = B->pairs[pi].occ, nocc = B->pairs[pi].nocc;
    B->pairs[pi].occ = NULL;
    B->pairs[pi].nocc = B->pairs[pi].capocc = 0;
    for (int k = 0; k < nocc && s == LMC_OK; k++) {
        int w = occ[k];
        if (B->wstamp[w] == B->step)
            continue;
        B->wstamp[w] = B->step;
        s = merge_word(B, w, a, b, t);
    }
    free(occ);
    for (int k = 0; k < B->ntouched && s == LMC_OK; k++)
        s = hpush(B, B->touched[k]);
    if (s == LMC_OK && B->pairs[pi].count != 0)
        s = lmc_err(LMC_EINVAL, "internal error: pair (%d, %d) still counted %lld times after its merge", a, b,
                    (long long)B->pairs[pi].count);
    return s;
}

static void report(const bpe *B, int target, int force, double *last)
{
    const lmc_tok_trainer *tr = B->tr;
    if (!tr->opts.progress || (!force && lmc_now() - *last < 0.2))
        return;
    *last = lmc_now();
    lmc_tok_progress p = {.phase = "merge", .bytes_done = tr->bytes, .merges_done = B->ntok - 256,
                          .merges_total = target - 256, .elapsed = lmc_now() - tr->t0};
    tr->opts.progress(tr->opts.progress_ctx, &p);
}

static lmc_status learn(bpe *B, int target)
{
    double last = 0;
    while (B->ntok < target && B->nh) {
        hent e = hpop(B);
        const tpair *p = &B->pairs[e.pair];
        if (e.count != p->count) {
            if (p->count >= B->tr->min_frequency)
                LMC_TRY(hpush(B, e.pair));
            continue;
        }
        if (p->count < B->tr->min_frequency)
            break;
        LMC_TRY(apply(B, e.pair));
        report(B, target, 0, &last);
    }
    report(B, target, 1, &last);
    return LMC_OK;
}

/* ---------- the result ---------- */

static lmc_status build(bpe *B, lmc_tokenizer **out)
{
    const lmc_tok_train_opts *o = &B->tr->opts;
    int nv = B->ntok + o->n_specials;
    tok_parts p = {.n_vocab = nv, .n_merges = B->nm, .n_special = o->n_specials, .what = "trained tokenizer",
                   .merges_what = "merges"};
    p.off = malloc(((size_t)nv + 1) * sizeof *p.off);
    p.special_ids = malloc(((size_t)o->n_specials + 1) * sizeof *p.special_ids);
    for (int i = 0; i < o->n_specials; i++)
        lmc_sb_puts(&B->blob, o->specials[i]);
    if (!p.off || !p.special_ids || B->blob.oom) {
        free(p.off);
        free(p.special_ids);
        return OOM();
    }
    memcpy(p.off, B->off, ((size_t)B->ntok + 1) * sizeof *p.off);
    for (int i = 0; i < o->n_specials; i++) {
        p.off[B->ntok + i + 1] = p.off[B->ntok + i] + strlen(o->specials[i]);
        p.special_ids[i] = B->ntok + i;
    }
    p.blob = (uint8_t *)B->blob.s;
    p.merges = B->merges;
    lmc_sb_init(&B->blob);
    B->merges = NULL;
    return tok_build(&p, out);
}

static void bpe_free(bpe *B)
{
    free(B->wcount);
    free(B->woff);
    free(B->wlen);
    free(B->wstamp);
    free(B->sym);
    for (int p = 0; p < B->np; p++)
        free(B->pairs[p].occ);
    free(B->pairs);
    free(B->pkey);
    free(B->pidx);
    free(B->heap);
    lmc_sb_free(&B->blob);
    free(B->off);
    tok_idmap_free(&B->map);
    free(B->merges);
    free(B->touched);
}

lmc_status lmc_tok_trainer_finish(lmc_tok_trainer *tr, lmc_tokenizer **out)
{
    *out = NULL;
    bpe B = {.tr = tr};
    lmc_status s = setup(&B);
    if (s == LMC_OK)
        s = learn(&B, tr->opts.vocab_size - tr->opts.n_specials);
    if (s == LMC_OK)
        s = build(&B, out);
    bpe_free(&B);
    return s;
}
