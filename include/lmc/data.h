/* data.h: token shards in llm.c's format, read as one token stream, and the
 * deterministic order in which training visits its sequences. */
#ifndef LMC_DATA_H
#define LMC_DATA_H

#include "lmc/core.h"

#define LMC_SHARD_MAGIC 20240520
#define LMC_SHARD_HEADER_INTS 256

typedef struct {
    int nshards;
    char **paths;
    lmc_mmap *maps;
    int *width;      /* bytes per token: 2 (version 1) or 4 (version 2) */
    size_t *count;   /* tokens per shard */
    size_t *start;   /* first global token index of each shard */
    size_t total;    /* tokens over all shards */
    int borrowed;    /* maps are the caller's bytes (lmc_tokens_open_mem): close leaves them */
} lmc_tokens;

/* Opens every shard matching the glob (comma-separated globs allowed) and
 * validates each header: magic, version, token count against file size. */
lmc_status lmc_tokens_open(lmc_tokens *ds, const char *glob);
/* The same checks on n shards' bytes in memory, which the caller keeps
 * until close; names[i] names shard i in messages. */
lmc_status lmc_tokens_open_mem(lmc_tokens *ds, int n, const lmc_mmap *shards, const char *const *names);
void lmc_tokens_close(lmc_tokens *ds);
/* Copies tokens [first, first + n) of the stream into out. */
void lmc_tokens_read(const lmc_tokens *ds, size_t first, size_t n, int *out);
/* Number of T-token training sequences (each needs T + 1 tokens). */
size_t lmc_tokens_num_seqs(const lmc_tokens *ds, int T);

/* Sequence visited at position g of training: epoch g / nseq visits a
 * permutation of the nseq sequences keyed by (seed, epoch), or the
 * identity when shuffle is off. */
size_t lmc_seq_order(size_t g, size_t nseq, uint64_t seed, int shuffle);

/* Fills inputs/targets (B,T) with sequences g0 .. g0+B-1 of the order:
 * row b is sequence s = order(g0 + b): tokens [s*T, s*T + T), targets
 * shifted by one. Token ids are checked against vocab (error names the
 * shard and position). */
lmc_status lmc_tokens_batch(const lmc_tokens *ds, size_t g0, int B, int T, uint64_t seed, int shuffle, int vocab,
                            int *inputs, int *targets);

/* Writes a shard (version 1 if every id < 65536, else 2) atomically. */
lmc_status lmc_shard_write(const char *path, const int *tokens, size_t n);

#endif
