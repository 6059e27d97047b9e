/* tok_internal.h: what the tokenizer's source files share: the tokenizer
 * struct, the Unicode class lookup and UTF-8 decoding, the merge table and
 * the constructor every loader and the trainer go through. */
#ifndef LMC_TOK_INTERNAL_H
#define LMC_TOK_INTERNAL_H

#include "lmc/tokenizer.h"

#include <stdint.h>
#include <string.h>

/* ---------- Unicode classes (unicode_tables.c, generated) ---------- */

enum { UC_OTHER = 0, UC_LETTER = 1, UC_NUMBER = 2, UC_SPACE = 3 };

extern const char lmc_tok_unicode_version[];
extern const uint8_t lmc_tok_uc_stage1[0x1100];
extern const uint8_t lmc_tok_uc_stage2[][64];
extern const uint8_t lmc_tok_ascii_class[128];

static inline int uc_class(uint32_t cp)
{
    if (cp < 128)
        return lmc_tok_ascii_class[cp];
    if (cp > 0x10FFFF)
        return UC_OTHER;
    const uint8_t *blk = lmc_tok_uc_stage2[lmc_tok_uc_stage1[cp >> 8]];
    return (blk[(cp & 255) >> 2] >> ((cp & 3) * 2)) & 3;
}

/* Decodes the character at s[0] (n >= 1 bytes available) and returns its
 * length. Only shortest-form UTF-8 of scalar values is valid; anything else
 * is a 1-byte "invalid" character with *cp = UC_INVALID (class other). */
#define UC_INVALID 0xFFFFFFFFu
static inline int utf8_next(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    *cp = UC_INVALID;
    if (c < 0xC2 || c > 0xF4)
        return 1;
    if (c < 0xE0) {
        if (n < 2 || (s[1] & 0xC0) != 0x80)
            return 1;
        *cp = ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 1;
        if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F))
            return 1; /* overlong, or a surrogate */
        *cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
        return 1;
    if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F))
        return 1; /* overlong, or past U+10FFFF */
    *cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) |
          (s[3] & 0x3F);
    return 4;
}

/* ---------- the tokenizer ---------- */

typedef struct {
    int left, right, result;
} tok_merge;

/* Open-addressing map (left, right) -> (rank, result): the BPE hot path. */
typedef struct {
    uint64_t key; /* (left << 32 | right) + 1; 0 = empty */
    int32_t rank, result;
} tok_pair_slot;

struct lmc_tokenizer {
    int n_vocab;
    uint8_t *blob;   /* token bytes, back to back */
    uint64_t *off;   /* token i is blob[off[i] .. off[i+1]) */
    int byte_id[256];
    int n_merges;
    tok_merge *merges;
    tok_pair_slot *pairs;
    uint64_t pair_mask;
    int n_special;
    int *special_ids;       /* in the order given */
    uint8_t *is_special;    /* per id */
};

static inline uint64_t tok_pair_hash(uint64_t key)
{
    key ^= key >> 31;
    key *= 0x9E3779B97F4A7C15ull;
    return key ^ (key >> 29);
}

/* Rank of merging (left, right), or -1; *result gets the merged token. */
static inline int tok_pair_rank(const lmc_tokenizer *t, int left, int right, int *result)
{
    uint64_t key = (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
    for (uint64_t i = tok_pair_hash(key) & t->pair_mask;; i = (i + 1) & t->pair_mask) {
        const tok_pair_slot *s = &t->pairs[i];
        if (s->key == key) {
            *result = s->result;
            return s->rank;
        }
        if (s->key == 0)
            return -1;
    }
}

/* A 64-bit hash of a byte string, never 0 (0 marks empty slots). */
static inline uint64_t tok_hash_bytes(const uint8_t *s, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    return h | 1;
}

/* Token bytes -> id, for tokens stored as blob[off[id] .. off[id+1]). The
 * blob may move between calls (the trainer grows it); it is passed in. */
typedef struct {
    uint64_t *hash; /* 0 = empty */
    int32_t *id;
    uint64_t mask;
    size_t used;
} tok_idmap;

lmc_status tok_idmap_init(tok_idmap *m, size_t expect);
void tok_idmap_free(tok_idmap *m);
int tok_idmap_find(const tok_idmap *m, const uint8_t *blob, const uint64_t *off, const uint8_t *s, size_t n);
/* Adds id; returns the id already there with the same bytes (not adding
 * it), -1 when added, -2 when out of memory. */
int tok_idmap_add(tok_idmap *m, const uint8_t *blob, const uint64_t *off, int id);

/* What a loader hands to tok_build: every token's bytes, the merges in rank
 * order, and which ids are special. tok_build checks all of it (naming
 * `what` in messages) and takes ownership of blob/off/merges/special_ids
 * whether it succeeds or not. */
typedef struct {
    int n_vocab;
    uint8_t *blob;
    uint64_t *off;
    int n_merges;
    tok_merge *merges;
    int n_special;
    int *special_ids;
    const char *what;        /* file name for messages */
    const char *merges_file; /* file the merges came from, if not `what` */
    const char *merges_what; /* "line" (with merge_lines) or "merges" */
    const int *merge_lines;  /* optional: line number of each merge, for messages */
} tok_parts;

lmc_status tok_build(tok_parts *p, lmc_tokenizer **out);
/* Frees what a loader gathered when it fails before tok_build. */
void tok_parts_free(tok_parts *p);

/* Printable form of token bytes for error messages (escapes non-printables). */
void tok_describe(lmc_sb *b, const uint8_t *s, size_t n);

/* ---------- GPT-2's byte <-> unicode alphabet (format_gpt2.c) ---------- */

/* Code point GPT-2 uses to spell byte b in encoder.json / vocab.bpe. */
uint32_t tok_gpt2_byte_char(int b);
/* Appends bytes s[0..n) spelled in that alphabet (UTF-8). */
void tok_gpt2_spell(lmc_sb *b, const uint8_t *s, size_t n);

/* ---------- loaders from memory (also the fuzz target's entry points) ---------- */

lmc_status tok_load_gpt2_mem(const char *enc_json, size_t enc_n, const char *bpe, size_t bpe_n,
                             const char *enc_what, const char *bpe_what, lmc_tokenizer **out);
lmc_status tok_load_lmc_mem(const char *json, size_t n, const char *what, lmc_tokenizer **out);
lmc_status tok_save_lmc_sb(const lmc_tokenizer *t, lmc_sb *out);
lmc_status tok_save_gpt2_sb(const lmc_tokenizer *t, lmc_sb *enc, lmc_sb *bpe);

/* ---------- streaming reader (input.c) ---------- */

/* Reads one file (or stdin for "-") in blocks that end at safe cut points
 * (lmc_tok_find_cut), so each block pre-tokenizes as it would in place. */
typedef struct {
    int fd;
    const char *path;
    uint8_t *buf;
    size_t len, cap;
    size_t taken; /* bytes of buf handed out by the last tok_stream_next */
    int eof;
    size_t max_block;
} tok_stream;

lmc_status tok_stream_open(tok_stream *s, const char *path, size_t max_block);
/* Next block (valid until the next call): at most about 2*target bytes unless
 * no cut exists, in which case the block grows up to max_block. *n == 0 at EOF. */
lmc_status tok_stream_next(tok_stream *s, size_t target, const uint8_t **data, size_t *n);
void tok_stream_close(tok_stream *s);

/* ---------- shard files (shard_file.c) ---------- */

typedef struct {
    const char *prefix, *split; /* PREFIX_SPLIT_000000.bin */
    int token_bytes;            /* 2 or 4 */
    long long per_shard, in_shard;
    int index, is_open;         /* index: shards completed */
    double total;               /* tokens written */
    lmc_afile af;
    uint8_t *buf;
    size_t bufcap;
} tok_series;

/* Appends tokens, opening and closing shards as they fill. */
lmc_status tok_series_write(tok_series *w, const int *ids, size_t n);
/* Completes the open shard, if any. */
lmc_status tok_series_close(tok_series *w);
/* Removes PREFIX_SPLIT_N.bin from N = index on: leftovers of a longer run. */
void tok_series_remove_stale(const tok_series *w);
/* Aborts an open shard (its temporary file goes) and frees the buffer. */
void tok_series_free(tok_series *w);

#endif
