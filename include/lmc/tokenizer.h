/* tokenizer.h: byte-level BPE with GPT-2's pre-tokenizer: load (GPT-2's
 * encoder.json + vocab.bpe, or lmc's own lmc-tokenizer.json), encode, decode,
 * train, and turn text files into llm.c token shards.
 *
 * A tokenizer is immutable once built, so any number of threads may encode
 * and decode with it at once. Encoding keeps a cache of recently seen words;
 * lmc_tok_encode makes a fresh one per call, and an lmc_tok_encoder (one per
 * thread) keeps a warm one across calls. See docs/tokenizer.md. */
#ifndef LMC_TOKENIZER_H
#define LMC_TOKENIZER_H

#include <stdio.h>

#include "lmc/core.h"

typedef struct lmc_tokenizer lmc_tokenizer;

/* ---------- loading, saving, inspecting ---------- */

/* dir holds lmc-tokenizer.json (preferred when present) or GPT-2's
 * encoder.json + vocab.bpe. Every field is checked; errors name the file,
 * the field or line, and the value. */
lmc_status lmc_tok_load(const char *dir, lmc_tokenizer **out);
/* Writes dir/lmc-tokenizer.json and, for interop, dir/encoder.json and
 * dir/vocab.bpe (each atomically); creates dir. */
lmc_status lmc_tok_save(const lmc_tokenizer *tok, const char *dir);
void lmc_tok_free(lmc_tokenizer *tok);

int lmc_tok_vocab_size(const lmc_tokenizer *tok);
int lmc_tok_n_merges(const lmc_tokenizer *tok);
/* Id of a special token by name ("<|endoftext|>"), -1 if absent. */
int lmc_tok_special_id(const lmc_tokenizer *tok, const char *name);
int lmc_tok_n_special(const lmc_tokenizer *tok);
int lmc_tok_special_at(const lmc_tokenizer *tok, int i); /* id of the i-th special */
int lmc_tok_is_special(const lmc_tokenizer *tok, int id);
/* The raw bytes of a token (not NUL-terminated), NULL when id is out of
 * range. For streaming output: a token may end inside a UTF-8 character. */
const char *lmc_tok_token_bytes(const lmc_tokenizer *tok, int id, size_t *len);

/* ---------- encoding and decoding ---------- */

/* Encodes n bytes (any bytes: invalid UTF-8 is kept byte for byte). Special
 * token names in the text are encoded as ordinary text, as GPT-2's encoder
 * does. *ids is malloc'd; the caller frees it with free(). */
lmc_status lmc_tok_encode(const lmc_tokenizer *tok, const char *text, size_t n, int **ids, size_t *nids);
/* Like lmc_tok_encode, but occurrences of the listed special tokens (all of
 * them when names is NULL) become their ids: for chat templates. */
lmc_status lmc_tok_encode_special(const lmc_tokenizer *tok, const char *text, size_t n,
                                  const char *const *names, int n_names, int **ids, size_t *nids);
/* Appends the bytes of ids[0..n) to out; an id out of range is an error
 * naming its position and value (out then holds the bytes before it). */
lmc_status lmc_tok_decode(const lmc_tokenizer *tok, const int *ids, size_t n, lmc_sb *out);

/* A reusable encoder for one thread: its word cache stays warm between
 * calls. Not itself thread-safe; make one per thread. */
typedef struct lmc_tok_encoder lmc_tok_encoder;
lmc_status lmc_tok_encoder_new(const lmc_tokenizer *tok, lmc_tok_encoder **out);
void lmc_tok_encoder_free(lmc_tok_encoder *enc);
/* Appends the ids of text to *ids (length *nids, capacity *cap; all three
 * may start as NULL/0/0 and grow with realloc). */
lmc_status lmc_tok_encoder_encode(lmc_tok_encoder *enc, const char *text, size_t n, int **ids, size_t *nids,
                                  size_t *cap);

/* ---------- pre-tokenization (GPT-2's pattern) ---------- */

/* End of the pre-tokenized piece that starts at p (p < n), exactly as GPT-2's
 * regex 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * would split; a byte that is not part of valid UTF-8 counts as one
 * character that is neither letter, number nor space. */
size_t lmc_tok_piece_end(const char *text, size_t n, size_t p);
/* A position k in [from, to] where text may be cut into two parts that
 * pre-tokenize exactly as the whole does, or 0 when there is none. */
size_t lmc_tok_find_cut(const char *text, size_t n, size_t from, size_t to);

/* ---------- progress reports (the library never prints) ---------- */

typedef struct {
    const char *phase;   /* "count", "merge", "tokenize" */
    double bytes_done;   /* input bytes consumed */
    double bytes_total;  /* 0 when unknown (stdin) */
    double tokens;       /* tokens written (tokenize) */
    double docs;         /* documents seen */
    int merges_done;     /* merge phase */
    int merges_total;
    double elapsed;      /* seconds since start */
} lmc_tok_progress;
typedef void (*lmc_tok_progress_fn)(void *ctx, const lmc_tok_progress *p);

/* ---------- inputs: files, directories, stdin ---------- */

/* Expands input specs into a sorted file list: each spec is a comma list of
 * globs; a directory stands for every regular file below it (recursively,
 * sorted, dot-files skipped); "-" is stdin. *total is the byte count of all
 * files (0 if stdin is among them, since its size is unknown). */
lmc_status lmc_tok_list_inputs(const char *const *specs, int n, char ***paths, int *npaths, double *total);
void lmc_tok_free_inputs(char **paths, int n);

/* ---------- training ---------- */

typedef struct {
    int vocab_size;                /* total: 256 bytes + merges + specials */
    const char *const *specials;   /* appended after the merges, in order */
    int n_specials;
    long long min_frequency;       /* stop when the best pair is rarer (default 1) */
    int max_piece_bytes;           /* longer pieces are not learned from (default 256) */
    size_t max_words;              /* distinct-word cap; rare words are pruned past it (default 4M) */
    lmc_tok_progress_fn progress;
    void *progress_ctx;
} lmc_tok_train_opts;

typedef struct lmc_tok_trainer lmc_tok_trainer;
lmc_status lmc_tok_trainer_new(const lmc_tok_train_opts *opts, lmc_tok_trainer **out);
/* Counts the words of a whole document (pieces do not span calls). */
lmc_status lmc_tok_trainer_feed(lmc_tok_trainer *tr, const char *text, size_t n);
/* Reads files (streaming, bounded memory) and feeds them; each file is a document. */
lmc_status lmc_tok_trainer_feed_files(lmc_tok_trainer *tr, char *const *paths, int n, double total_bytes);
/* Learns the merges and builds the tokenizer. Deterministic: the same words
 * give the same merges (ties go to the smaller token ids). */
lmc_status lmc_tok_trainer_finish(lmc_tok_trainer *tr, lmc_tokenizer **out);
void lmc_tok_trainer_free(lmc_tok_trainer *tr);
/* Number of distinct words counted so far. */
size_t lmc_tok_trainer_words(const lmc_tok_trainer *tr);

/* lmc tokenizer train: a trainer fed the n files (lmc_tok_list_inputs; total
 * bytes for progress) and finished. st (may be NULL) receives the distinct
 * words and the seconds counting and merging. */
typedef struct {
    size_t words;
    double count_seconds, merge_seconds;
} lmc_tok_train_stats;
lmc_status lmc_tok_train_files(const lmc_tok_train_opts *opts, char *const *paths, int n, double total_bytes,
                               lmc_tokenizer **out, lmc_tok_train_stats *st);

/* ---------- token shards (llm.c's format) ---------- */

#define LMC_SHARD_MAGIC 20240520
#define LMC_SHARD_HEADER_INTS 256

typedef enum { LMC_DOCS_FILE, LMC_DOCS_BLANK } lmc_tok_docs;

typedef struct {
    char *const *paths;        /* from lmc_tok_list_inputs */
    int n_paths;
    double total_bytes;        /* 0 if unknown */
    const char *out_prefix;    /* PREFIX -> PREFIX_train_000000.bin, PREFIX_val_000000.bin */
    double val_fraction;       /* share of the input bytes that goes to val, spread evenly */
    long long shard_tokens;    /* tokens per shard (last one may be shorter) */
    int separator_id;          /* written before every document; -1 for none */
    int token_bytes;           /* 2 or 4; 0 picks 2 when the vocabulary fits */
    lmc_tok_docs docs;         /* what a document is */
    int threads;               /* encoder threads; 0 = all cores */
    size_t block_bytes;        /* work unit; 0 picks from the input size */
    lmc_tok_progress_fn progress;
    void *progress_ctx;
} lmc_tok_shard_opts;

typedef struct {
    double docs, bytes, blocks;
    double train_tokens, val_tokens;
    int train_shards, val_shards;
    int token_bytes;
    double seconds;
} lmc_tok_shard_stats;

lmc_status lmc_tok_shard(const lmc_tokenizer *tok, const lmc_tok_shard_opts *opts, lmc_tok_shard_stats *stats);

/* Reads a shard's header and checks it against the file size; *tokens and
 * *token_bytes describe the payload that starts at byte 1024. */
lmc_status lmc_tok_shard_check(const char *path, long long *tokens, int *token_bytes);

/* ---------- files of any size (lmc encode, lmc decode) ---------- */

/* Text from in (named name in messages) -> its ids separated by spaces,
 * then a newline, to out; streamed in blocks cut where pre-tokenization is
 * unaffected. special: special token names become their ids (the whole
 * input is read first: a cut could split a name). */
lmc_status lmc_tok_encode_file(const lmc_tokenizer *tok, FILE *in, const char *name, int special, FILE *out);
/* Ids separated by whitespace from in (named name in messages) -> their
 * bytes to out; a word that is not an id in the vocabulary fails naming
 * its position. */
lmc_status lmc_tok_decode_file(const lmc_tokenizer *tok, FILE *in, const char *name, FILE *out);

#endif
