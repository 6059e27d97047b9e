/* fuzz_tokenizer.c: libFuzzer target for the tokenizer (`make fuzz`).
 * The first byte picks what the rest is fed to:
 *   0-3  text: decode(encode(x)) == x, with and without special tokens, and
 *        every safe cut find_cut reports keeps the pre-tokenization intact;
 *   4    lmc-tokenizer.json from memory (then a round trip if it loads);
 *   5    encoder.json + vocab.bpe from memory, split at the first NUL byte.
 * Any mismatch aborts, which libFuzzer reports with the input. */
#include "lmc/tokenizer.h"
#include "tokenizer/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>

static lmc_tokenizer *tok;

static const char *CORPUS = "The quick brown fox jumps over the lazy dog. It's 12:30, isn't it? "
                            "naïve café 中文字符 🎉 emoji\n\n  indented\tcode(x) { return y; }\n"
                            "<|endoftext|> don't we'll they've 3.14159 1,000,000 ÆØÅ ελληνικά русский\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *specials[] = {"<|endoftext|>", "<|im_start|>"};
    lmc_tok_train_opts o = {.vocab_size = 400, .specials = specials, .n_specials = 2, .min_frequency = 1};
    lmc_tok_trainer *tr = NULL;
    lmc_sb text;
    lmc_sb_init(&text);
    for (int i = 0; i < 50; i++)
        lmc_sb_puts(&text, CORPUS);
    if (lmc_tok_trainer_new(&o, &tr) || lmc_tok_trainer_feed(tr, text.s, text.len) ||
        lmc_tok_trainer_finish(tr, &tok)) {
        fprintf(stderr, "fuzz setup failed: %s\n", lmc_errmsg());
        abort();
    }
    lmc_tok_trainer_free(tr);
    lmc_sb_free(&text);
    return 0;
}

static void round_trip(const lmc_tokenizer *t, const char *s, size_t n, int special)
{
    int *ids = NULL;
    size_t k = 0;
    lmc_status st = special ? lmc_tok_encode_special(t, s, n, NULL, 0, &ids, &k) : lmc_tok_encode(t, s, n, &ids, &k);
    if (st != LMC_OK)
        abort();
    lmc_sb out;
    lmc_sb_init(&out);
    if (lmc_tok_decode(t, ids, k, &out) != LMC_OK || out.len != n || (n && memcmp(out.s, s, n)))
        abort();
    lmc_sb_free(&out);
    free(ids);
}

/* Pieces of s[0..n) equal those of s[0..k) followed by those of s[k..n). */
static void check_cuts(const char *s, size_t n)
{
    for (size_t k = 1; k < n; k++) {
        if (lmc_tok_find_cut(s, n, k, k) != k)
            continue;
        size_t p = 0;
        while (p < k)
            p = lmc_tok_piece_end(s, n, p);
        if (p != k) /* a piece of the whole crosses the cut */
            abort();
        size_t q = 0;
        while (q < k) {
            size_t a = lmc_tok_piece_end(s, n, q), b = lmc_tok_piece_end(s, k, q);
            if (a != b)
                abort();
            q = a;
        }
    }
}

static void fuzz_gpt2(const char *s, size_t n)
{
    const char *nul = memchr(s, 0, n);
    size_t en = nul ? (size_t)(nul - s) : n;
    const char *bpe = nul ? nul + 1 : "";
    size_t bn = nul ? n - en - 1 : 0;
    lmc_tokenizer *t = NULL;
    if (tok_load_gpt2_mem(s, en, bpe, bn, "encoder.json", "vocab.bpe", &t) == LMC_OK) {
        round_trip(t, "hello world", 11, 0);
        lmc_tok_free(t);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 6) {
    case 0:
    case 1:
        round_trip(tok, s, n, 0);
        check_cuts(s, n);
        break;
    case 2:
    case 3:
        round_trip(tok, s, n, 1);
        break;
    case 4: {
        lmc_tokenizer *t = NULL;
        if (tok_load_lmc_mem(s, n, "lmc-tokenizer.json", &t) == LMC_OK) {
            round_trip(t, "hello world", 11, 0);
            lmc_tok_free(t);
        }
        break;
    }
    case 5:
        fuzz_gpt2(s, n);
        break;
    }
    return 0;
}
