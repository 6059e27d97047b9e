/* train_files.c: lmc tokenizer train: count the words of the input files,
 * then learn the merges. */
#include "lmc/tokenizer.h"

lmc_status lmc_tok_train_files(const lmc_tok_train_opts *opts, char *const *paths, int n, double total_bytes,
                               lmc_tokenizer **out, lmc_tok_train_stats *st)
{
    lmc_tok_trainer *tr = NULL;
    double t0 = lmc_now();
    *out = NULL;
    lmc_status s = lmc_tok_trainer_new(opts, &tr);
    if (s == LMC_OK)
        s = lmc_tok_trainer_feed_files(tr, paths, n, total_bytes);
    double t1 = lmc_now();
    if (st) {
        st->words = tr ? lmc_tok_trainer_words(tr) : 0;
        st->count_seconds = t1 - t0;
    }
    if (s == LMC_OK)
        s = lmc_tok_trainer_finish(tr, out);
    if (st)
        st->merge_seconds = lmc_now() - t1;
    lmc_tok_trainer_free(tr);
    return s;
}
