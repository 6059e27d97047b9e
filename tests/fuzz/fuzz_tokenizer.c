/* fuzz_tokenizer.c: libFuzzer target for the tokenizer. The first byte picks
 * what the rest is fed to:
 *   0-1  text: decode(encode(x)) == x, and blocks cut at every safe cut
 *        find_cut reports pre-tokenize exactly as the whole (linear time);
 *   2-3  text with special tokens: decode(encode(x)) == x;
 *   4    lmc-tokenizer.json from memory;
 *   5    encoder.json + vocab.bpe from memory, split at the first NUL byte;
 *   6    token ids as lmc decode reads them (lmc_tok_decode_file).
 * A tokenizer file that loads must round-trip text, and save (in its own
 * format) and reload to a tokenizer that encodes alike. Any violation
 * aborts, which libFuzzer reports with the input. Seeds: the target's
 * trained tokenizer saved by lmc's writers in both formats, and texts. */
#include "fuzz_common.h"
#include "lmc/tokenizer.h"
#include "tokenizer/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lmc_tokenizer *tok;

static const char *CORPUS = "The quick brown fox jumps over the lazy dog. It's 12:30, isn't it? "
                            "naïve café 中文字符 🎉 emoji\n\n  indented\tcode(x) { return y; }\n"
                            "<|endoftext|> don't we'll they've 3.14159 1,000,000 ÆØÅ ελληνικά русский\n";

static void seeds(void)
{
    lmc_sb a, b;
    lmc_sb_init(&a);
    lmc_sb_init(&b);
    if (tok_save_lmc_sb(tok, &a))
        abort();
    fuzz_seed("seed-lmc-tokenizer-json", 4, a.s, a.len);
    a.len = 0;
    if (tok_save_gpt2_sb(tok, &a, &b))
        abort();
    fuzz_seed2("seed-gpt2-files", 5, a.s, a.len, 0, b.s, b.len);
    fuzz_seed("seed-text", 0, CORPUS, strlen(CORPUS));
    fuzz_seed("seed-text-special", 2, CORPUS, strlen(CORPUS));
    fuzz_seed("seed-ids", 6, "1 2 3\n 40\t5 ", 13);
    lmc_sb_free(&a);
    lmc_sb_free(&b);
}

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
    if (fuzz_seeding())
        seeds();
    return 0;
}

static void encode(const lmc_tokenizer *t, const char *s, size_t n, int special, int **ids, size_t *k)
{
    lmc_status st = special ? lmc_tok_encode_special(t, s, n, NULL, 0, ids, k) : lmc_tok_encode(t, s, n, ids, k);
    FUZZ_ASSERT(st == LMC_OK);
}

static void round_trip(const lmc_tokenizer *t, const char *s, size_t n, int special)
{
    int *ids = NULL;
    size_t k = 0;
    encode(t, s, n, special, &ids, &k);
    lmc_sb out;
    lmc_sb_init(&out);
    FUZZ_ASSERT(lmc_tok_decode(t, ids, k, &out) == LMC_OK && out.len == n && (!n || !memcmp(out.s, s, n)));
    lmc_sb_free(&out);
    free(ids);
}

/* Blocks cut at every safe cut, each pre-tokenized on its own (as the
 * streaming reader does), give the pieces of the whole text. find_cut scans
 * on from the last cut and each piece is found once in the whole and once
 * in its block, so the check is linear in n. */
static void check_cuts(const char *s, size_t n)
{
    size_t a = 0;
    while (a < n) {
        size_t b = lmc_tok_find_cut(s, n, a + 1, n - 1);
        FUZZ_ASSERT(b == 0 || (b > a && b < n));
        if (b == 0)
            b = n;
        for (size_t q = a; q < b;) {
            size_t whole = lmc_tok_piece_end(s, n, q), block = a + lmc_tok_piece_end(s + a, b - a, q - a);
            FUZZ_ASSERT(whole == block && whole > q); /* no piece of the whole crosses the cut at b */
            q = whole;
        }
        a = b;
    }
}

/* Encodes a fixed text and the input's first bytes alike. */
static void same_encoding(const lmc_tokenizer *t, const lmc_tokenizer *u, const char *s, size_t n)
{
    const char *texts[2] = {"hello world, it's <|endoftext|> 12", s};
    size_t lens[2] = {strlen(texts[0]), n < 64 ? n : 64};
    for (int i = 0; i < 2; i++) {
        int *x = NULL, *y = NULL;
        size_t kx = 0, ky = 0;
        encode(t, texts[i], lens[i], 0, &x, &kx);
        encode(u, texts[i], lens[i], 0, &y, &ky);
        FUZZ_ASSERT(kx == ky && (!kx || !memcmp(x, y, kx * sizeof *x)));
        free(x);
        free(y);
    }
}

/* A loaded tokenizer saves in the format it came from and loads back. */
static void check_loaded(lmc_tokenizer *t, int gpt2, const char *s, size_t n)
{
    round_trip(t, "hello world", 11, 0);
    lmc_sb a, b;
    lmc_sb_init(&a);
    lmc_sb_init(&b);
    lmc_tokenizer *u = NULL;
    if (!gpt2) {
        FUZZ_ASSERT(tok_save_lmc_sb(t, &a) == LMC_OK);
        FUZZ_ASSERT(tok_load_lmc_mem(a.s, a.len, "saved lmc-tokenizer.json", &u) == LMC_OK);
    } else {
        FUZZ_ASSERT(tok_save_gpt2_sb(t, &a, &b) == LMC_OK);
        FUZZ_ASSERT(tok_load_gpt2_mem(a.s, a.len, b.s, b.len, "saved encoder.json", "saved vocab.bpe", &u) == LMC_OK);
    }
    FUZZ_ASSERT(lmc_tok_vocab_size(u) == lmc_tok_vocab_size(t));
    same_encoding(t, u, s, n);
    lmc_tok_free(u);
    lmc_sb_free(&a);
    lmc_sb_free(&b);
}

static void fuzz_gpt2(const char *s, size_t n)
{
    const char *nul = memchr(s, 0, n);
    size_t en = nul ? (size_t)(nul - s) : n;
    const char *bpe = nul ? nul + 1 : "";
    size_t bn = nul ? n - en - 1 : 0;
    lmc_tokenizer *t = NULL;
    if (tok_load_gpt2_mem(s, en, bpe, bn, "encoder.json", "vocab.bpe", &t) == LMC_OK) {
        check_loaded(t, 1, s, n);
        lmc_tok_free(t);
    }
}

/* Ids separated by whitespace: when lmc_tok_decode_file accepts them, every
 * word is a whole number in the vocabulary and the bytes written are those
 * ids' bytes in order. */
static void fuzz_decode_ids(const char *s, size_t n)
{
    if (!n)
        return;
    char *got = NULL, *words = malloc(n + 1);
    size_t got_n = 0;
    FILE *in = fmemopen((void *)s, n, "r"), *out = open_memstream(&got, &got_n);
    FUZZ_ASSERT(in && out && words);
    lmc_status st = lmc_tok_decode_file(tok, in, "<fuzz>", out);
    fclose(in);
    fclose(out);
    if (st == LMC_OK) {
        lmc_sb want;
        lmc_sb_init(&want);
        memcpy(words, s, n);
        words[n] = 0;
        FUZZ_ASSERT(strlen(words) == n); /* a NUL byte is no id */
        for (char *w = strtok(words, " \t\n\v\f\r"); w; w = strtok(NULL, " \t\n\v\f\r")) {
            char *end;
            long long id = strtoll(w, &end, 10);
            FUZZ_ASSERT(*end == 0 && id >= 0 && id < lmc_tok_vocab_size(tok));
            size_t len;
            const char *b = lmc_tok_token_bytes(tok, (int)id, &len);
            lmc_sb_put(&want, b, len);
        }
        FUZZ_ASSERT(want.len == got_n && (!got_n || !memcmp(want.s, got, got_n)));
        lmc_sb_free(&want);
    }
    free(got);
    free(words);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 7) {
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
            check_loaded(t, 0, s, n);
            lmc_tok_free(t);
        }
        break;
    }
    case 5:
        fuzz_gpt2(s, n);
        break;
    case 6:
        fuzz_decode_ids(s, n);
        break;
    }
    return 0;
}
