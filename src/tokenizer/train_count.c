/* train_count.c: the first half of BPE training: pre-tokenize the corpus and
 * count each distinct piece ("word"). Memory grows with distinct words, not
 * with corpus size; past max_words the rarest words are pruned, so even an
 * endless stream of new words stays bounded. */
#include "tokenizer/train_internal.h"

#include <stdlib.h>

#define DEFAULT_MAX_WORDS ((size_t)4 << 20)

static lmc_status table_alloc(tok_wordmap *m, size_t cap)
{
    m->slots = calloc(cap, sizeof *m->slots);
    if (!m->slots)
        return lmc_err(LMC_ENOMEM, "out of memory counting words (%zu slots)", cap);
    m->mask = cap - 1;
    m->used = 0;
    return LMC_OK;
}

static void table_insert(tok_wordmap *m, tok_word w)
{
    size_t i = w.hash & m->mask;
    while (m->slots[i].hash)
        i = (i + 1) & m->mask;
    m->slots[i] = w;
    m->used++;
}

static lmc_status table_grow(tok_wordmap *m)
{
    tok_wordmap g = {0};
    LMC_TRY(table_alloc(&g, (m->mask + 1) * 2));
    for (size_t i = 0; i <= m->mask; i++)
        if (m->slots[i].hash)
            table_insert(&g, m->slots[i]);
    free(m->slots);
    m->slots = g.slots;
    m->mask = g.mask;
    return LMC_OK;
}

/* Drops words seen at most `floor` times, raising floor until at most half
 * of max_words remain, and compacts the key bytes. Deterministic: it depends
 * only on the counts so far. */
static lmc_status prune(lmc_tok_trainer *tr)
{
    tok_wordmap *m = &tr->words;
    while (m->used > tr->max_words / 2) {
        tr->prune_floor++;
        tok_wordmap g = {0};
        LMC_TRY(table_alloc(&g, m->mask + 1));
        lmc_sb keys;
        lmc_sb_init(&keys);
        for (size_t i = 0; i <= m->mask; i++) {
            tok_word w = m->slots[i];
            if (!w.hash || w.count <= tr->prune_floor)
                continue;
            size_t off = keys.len;
            lmc_sb_put(&keys, tr->keys.s + w.off, w.len);
            w.off = off;
            table_insert(&g, w);
        }
        if (keys.oom) {
            lmc_sb_free(&keys);
            free(g.slots);
            return lmc_err(LMC_ENOMEM, "out of memory pruning words");
        }
        free(m->slots);
        *m = g;
        lmc_sb_free(&tr->keys);
        tr->keys = keys;
    }
    return LMC_OK;
}

static lmc_status count_piece(lmc_tok_trainer *tr, const uint8_t *s, size_t n)
{
    tok_wordmap *m = &tr->words;
    uint64_t h = tok_hash_bytes(s, n);
    size_t i = h & m->mask;
    for (; m->slots[i].hash; i = (i + 1) & m->mask) {
        tok_word *w = &m->slots[i];
        if (w->hash == h && w->len == n && !memcmp(tr->keys.s + w->off, s, n)) {
            w->count++;
            return LMC_OK;
        }
    }
    tok_word w = {h, tr->keys.len, (uint32_t)n, 1};
    lmc_sb_put(&tr->keys, (const char *)s, n);
    if (tr->keys.oom)
        return lmc_err(LMC_ENOMEM, "out of memory counting words");
    m->slots[i] = w;
    m->used++;
    if (m->used * 2 > m->mask + 1)
        LMC_TRY(table_grow(m));
    if (m->used > tr->max_words)
        LMC_TRY(prune(tr));
    return LMC_OK;
}

static lmc_status check_specials(const lmc_tok_train_opts *o)
{
    for (int i = 0; i < o->n_specials; i++) {
        const char *sp = o->specials[i];
        size_t n = strlen(sp);
        if (n == 0)
            return lmc_err(LMC_EINVAL, "special token %d is empty", i + 1);
        for (size_t k = 0; k < n;) {
            uint32_t cp;
            k += (size_t)utf8_next((const uint8_t *)sp + k, n - k, &cp);
            if (cp == UC_INVALID)
                return lmc_err(LMC_EINVAL, "special token '%s' is not valid UTF-8", sp);
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(sp, o->specials[j]))
                return lmc_err(LMC_EINVAL, "special token '%s' is given twice", sp);
    }
    return LMC_OK;
}

lmc_status lmc_tok_trainer_new(const lmc_tok_train_opts *opts, lmc_tok_trainer **out)
{
    *out = NULL;
    int min_vocab = 256 + opts->n_specials;
    if (opts->vocab_size < min_vocab || opts->vocab_size > (1 << 24))
        return lmc_err(LMC_EINVAL, "vocabulary size %d is out of range (%d..%d: 256 bytes + %d specials at least)",
                       opts->vocab_size, min_vocab, 1 << 24, opts->n_specials);
    LMC_TRY(check_specials(opts));
    lmc_tok_trainer *tr = calloc(1, sizeof *tr);
    if (!tr)
        return lmc_err(LMC_ENOMEM, "out of memory");
    tr->opts = *opts;
    tr->min_frequency = opts->min_frequency > 0 ? opts->min_frequency : 1;
    tr->max_piece = opts->max_piece_bytes > 0 ? (size_t)opts->max_piece_bytes : 256;
    tr->max_words = opts->max_words >= 1024 ? opts->max_words : DEFAULT_MAX_WORDS;
    tr->t0 = lmc_now();
    lmc_sb_init(&tr->keys);
    lmc_status s = table_alloc(&tr->words, 1 << 12);
    if (s != LMC_OK) {
        free(tr);
        return s;
    }
    *out = tr;
    return LMC_OK;
}

void lmc_tok_trainer_free(lmc_tok_trainer *tr)
{
    if (!tr)
        return;
    free(tr->words.slots);
    lmc_sb_free(&tr->keys);
    free(tr);
}

size_t lmc_tok_trainer_words(const lmc_tok_trainer *tr)
{
    return tr->words.used;
}

lmc_status lmc_tok_trainer_feed(lmc_tok_trainer *tr, const char *text, size_t n)
{
    for (size_t p = 0; p < n;) {
        size_t e = lmc_tok_piece_end(text, n, p);
        if (e - p <= tr->max_piece)
            LMC_TRY(count_piece(tr, (const uint8_t *)text + p, e - p));
        p = e;
    }
    tr->bytes += (double)n;
    return LMC_OK;
}

static void report(lmc_tok_trainer *tr, double total, double docs)
{
    if (!tr->opts.progress)
        return;
    lmc_tok_progress p = {.phase = "count", .bytes_done = tr->bytes, .bytes_total = total, .docs = docs,
                          .elapsed = lmc_now() - tr->t0};
    tr->opts.progress(tr->opts.progress_ctx, &p);
}

lmc_status lmc_tok_trainer_feed_files(lmc_tok_trainer *tr, char *const *paths, int n, double total_bytes)
{
    double last = 0;
    for (int i = 0; i < n; i++) {
        tok_stream st;
        LMC_TRY(tok_stream_open(&st, paths[i], (size_t)64 << 20));
        lmc_status s = LMC_OK;
        for (;;) {
            const uint8_t *data;
            size_t len;
            if ((s = tok_stream_next(&st, (size_t)1 << 20, &data, &len)) != LMC_OK || len == 0)
                break;
            if ((s = lmc_tok_trainer_feed(tr, (const char *)data, len)) != LMC_OK)
                break;
            if (lmc_now() - last > 0.2) {
                last = lmc_now();
                report(tr, total_bytes, i);
            }
        }
        tok_stream_close(&st);
        if (s != LMC_OK)
            return s;
    }
    report(tr, total_bytes, n);
    return LMC_OK;
}
