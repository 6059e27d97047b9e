/* train_internal.h: the trainer's state, shared by train_count.c (counting
 * words) and train_merge.c (learning merges from the counts). */
#ifndef LMC_TRAIN_INTERNAL_H
#define LMC_TRAIN_INTERNAL_H

#include "tokenizer/tok_internal.h"

/* One distinct pre-tokenized piece and how often it was seen. */
typedef struct {
    uint64_t hash; /* 0 = empty slot */
    uint64_t off;  /* into the trainer's key bytes */
    uint32_t len;
    int64_t count;
} tok_word;

typedef struct {
    tok_word *slots;
    size_t mask, used;
} tok_wordmap;

struct lmc_tok_trainer {
    lmc_tok_train_opts opts;
    long long min_frequency;
    size_t max_piece, max_words;
    int64_t prune_floor; /* words seen this often or less were dropped */
    tok_wordmap words;
    lmc_sb keys;
    double bytes, t0;
};

#endif
