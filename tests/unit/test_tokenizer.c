/* test_tokenizer.c: the tokenizer's core: Unicode classes, UTF-8 decoding,
 * GPT-2 pre-tokenization (hand-checked cases and the safe-cut property),
 * training, BPE merging against a plain GPT-2 reference, round trips over
 * random bytes, special tokens, decode errors and concurrent encoding.
 * (Exactness against GPT-2's real vocabulary is tests/node/test_tokenizer_gpt2.mjs.) */
#include "lmc/tokenizer.h"
#include "test.h"
#include "tokenizer/tok_internal.h"

#include <pthread.h>

static int quick(void)
{
    return getenv("LMC_TEST_QUICK") != NULL;
}

/* ---------- a small corpus and tokenizer shared by the tests ---------- */

static const char *WORDS[] = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "it's", "we're",
                              "naïve", "café", "中文", "字", "🎉", "1234", "3.14", "don't", "Hello", "WORLD",
                              "\t", "  ", "\n", "\n\n", "!!", "(x)", "a_b", "e\xcc\x81", "\xc2\xa0", "ok"};

/* Fixed words, and made-up ones from syllables (Zipf-ish: short ones often). */
static char *corpus(uint64_t seed, size_t n)
{
    static const char *syl[] = {"ka", "to", "ri", "sen", "mo", "la", "qu", "ix", "é", "中", "th", "er", "an", "o"};
    lmc_rng r;
    lmc_rng_seed(&r, seed);
    lmc_sb b;
    lmc_sb_init(&b);
    while (b.len < n) {
        if (lmc_rng_u64(&r) % 2) {
            lmc_sb_puts(&b, WORDS[lmc_rng_u64(&r) % (sizeof WORDS / sizeof *WORDS)]);
        } else {
            int k = 1 + (int)(lmc_rng_u64(&r) % 3) * (int)(lmc_rng_u64(&r) % 3);
            for (int i = 0; i < k; i++)
                lmc_sb_puts(&b, syl[lmc_rng_u64(&r) % (sizeof syl / sizeof *syl)]);
        }
        lmc_sb_puts(&b, lmc_rng_u64(&r) % 4 ? " " : (lmc_rng_u64(&r) % 2 ? ". " : "\n"));
    }
    return b.s;
}

static lmc_tokenizer *small_tok;

static lmc_tokenizer *train_on(const char *text, int vocab, const char *const *specials, int nspec)
{
    lmc_tok_train_opts o = {.vocab_size = vocab, .specials = specials, .n_specials = nspec};
    lmc_tok_trainer *tr = NULL;
    lmc_tokenizer *t = NULL;
    CHECK_OK(lmc_tok_trainer_new(&o, &tr));
    CHECK_OK(lmc_tok_trainer_feed(tr, text, strlen(text)));
    CHECK_OK(lmc_tok_trainer_finish(tr, &t));
    lmc_tok_trainer_free(tr);
    return t;
}

/* ---------- Unicode and UTF-8 ---------- */

static void test_unicode_classes(void)
{
    struct {
        uint32_t cp;
        int cls;
    } cases[] = {
        {'a', UC_LETTER},    {'Z', UC_LETTER},    {'7', UC_NUMBER},    {' ', UC_SPACE},     {'\t', UC_SPACE},
        {'\v', UC_SPACE},    {'\'', UC_OTHER},    {'_', UC_OTHER},     {0x1C, UC_OTHER},    {0xE9, UC_LETTER},
        {0xB2, UC_NUMBER},   {0xBD, UC_NUMBER},   {0xA0, UC_SPACE},    {0x85, UC_OTHER},    {0x0301, UC_OTHER},
        {0x0663, UC_NUMBER}, {0x3000, UC_SPACE},  {0x2028, UC_SPACE},  {0xFEFF, UC_SPACE},  {0x180E, UC_OTHER},
        {0x200B, UC_OTHER},  {0x4E2D, UC_LETTER}, {0xAC00, UC_LETTER}, {0xFF10, UC_NUMBER}, {0x1F389, UC_OTHER},
        {0x10FFFF, UC_OTHER}, {0x2160, UC_NUMBER}, {0x1D400, UC_LETTER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        CHECK_MSG(uc_class(cases[i].cp) == cases[i].cls, "U+%04X: class %d, want %d", cases[i].cp,
                  uc_class(cases[i].cp), cases[i].cls);
}

static void test_utf8_decode(void)
{
    struct {
        const char *s;
        int len;
        uint32_t cp;
    } cases[] = {
        {"A", 1, 'A'},
        {"\xc3\xa9", 2, 0xE9},
        {"\xe4\xb8\xad", 3, 0x4E2D},
        {"\xf0\x9f\x8e\x89", 4, 0x1F389},
        {"\xc0\xaf", 1, UC_INVALID},         /* overlong */
        {"\xe0\x80\xaf", 1, UC_INVALID},     /* overlong */
        {"\xed\xa0\x80", 1, UC_INVALID},     /* surrogate */
        {"\xf4\x90\x80\x80", 1, UC_INVALID}, /* past U+10FFFF */
        {"\x80", 1, UC_INVALID},
        {"\xe4\xb8", 1, UC_INVALID}, /* truncated */
        {"\xff", 1, UC_INVALID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint32_t cp;
        int len = utf8_next((const uint8_t *)cases[i].s, strlen(cases[i].s), &cp);
        CHECK_MSG(len == cases[i].len && cp == cases[i].cp, "case %zu: len %d cp %X", i, len, cp);
    }
}

/* ---------- pre-tokenization ---------- */

/* Pieces of s joined by '|'. */
static void pieces(const char *s, size_t n, lmc_sb *out)
{
    for (size_t p = 0; p < n;) {
        size_t e = lmc_tok_piece_end(s, n, p);
        if (p)
            lmc_sb_putc(out, '|');
        lmc_sb_put(out, s + p, e - p);
        p = e;
    }
    lmc_sb_putc(out, 0);
}

static void test_pretok_cases(void)
{
    struct {
        const char *in, *want;
    } cases[] = {
        {"Hello world", "Hello| world"},
        {"it's we're I'LL", "it|'s| we|'re| I|'|LL"},
        {"don't", "don|'t"},
        {"'s'", "'s|'"},
        {"a  b", "a| | b"},
        {"x\n\ny", "x|\n|\n|y"},
        {"x \n y", "x| \n| y"},
        {"end  ", "end|  "},
        {" 123abc", " 123|abc"},
        {"!!!? !!", "!!!?| !!"},
        {"a\xff" "b", "a|\xff|b"},
        {" \xff\xfe!", " \xff\xfe!"},
        {"中文 字", "中文| 字"},
        {"e\xcc\x81t\xc3\xa9", "e|\xcc\x81|t\xc3\xa9"},
        {"\xc2\xa0\xc2\xa0x", "\xc2\xa0|\xc2\xa0|x"},
        {"a\xe3\x80\x80\xe3\x80\x80" "b", "a|\xe3\x80\x80|\xe3\x80\x80|b"},
        {"   ", "   "},
        {"\t\tif", "\t|\t|if"},
        {"x'", "x|'"},
        {"'ll've", "'ll|'ve"},
        {"½²", "½²"},
        {"🎉🎉 ok", "🎉🎉| ok"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        lmc_sb b;
        lmc_sb_init(&b);
        pieces(cases[i].in, strlen(cases[i].in), &b);
        CHECK_MSG(!strcmp(b.s, cases[i].want), "'%s' -> '%s', want '%s'", cases[i].in, b.s, cases[i].want);
        lmc_sb_free(&b);
    }
}

/* Random text from fragments that stress every rule. */
static size_t tricky_text(lmc_rng *r, char *buf, size_t cap)
{
    static const char *frag[] = {"a", "Z", "1", " ", "  ", "\n", "\t", "'", "'s", "'ll", "s", "re", "!", "?",
                                 "é", "中", "\xe3\x80\x80", "\xc2\xa0", "\xff", "\x80", "\xe4\xb8", "🎉", "\xcc\x81",
                                 "²", " a", "\r\n", "ab", "12"};
    size_t n = 0, want = lmc_rng_u64(r) % 60;
    while (n < want) {
        const char *f = frag[lmc_rng_u64(r) % (sizeof frag / sizeof *frag)];
        size_t l = strlen(f);
        if (n + l >= cap)
            break;
        memcpy(buf + n, f, l);
        n += l;
    }
    return n;
}

/* Every position find_cut accepts splits the text into two parts whose
 * pieces, joined, are exactly the pieces of the whole. */
static void test_safe_cut_property(void)
{
    lmc_rng r;
    lmc_rng_seed(&r, 7);
    int cuts = 0, iters = quick() ? 2000 : 20000;
    for (int it = 0; it < iters; it++) {
        char buf[256];
        size_t n = tricky_text(&r, buf, sizeof buf);
        lmc_sb whole;
        lmc_sb_init(&whole);
        pieces(buf, n, &whole);
        for (size_t k = 1; k < n; k++) {
            if (lmc_tok_find_cut(buf, n, k, k) != k)
                continue;
            cuts++;
            lmc_sb a, b;
            lmc_sb_init(&a);
            lmc_sb_init(&b);
            pieces(buf, k, &a);
            pieces(buf + k, n - k, &b);
            a.len--; /* drop the NUL */
            lmc_sb_putc(&a, '|');
            lmc_sb_puts(&a, b.s);
            lmc_sb_putc(&a, 0);
            CHECK_MSG(a.len == whole.len && !memcmp(a.s, whole.s, a.len), "cut at %zu of '%.*s' changes pieces", k,
                      (int)n, buf);
            lmc_sb_free(&a);
            lmc_sb_free(&b);
        }
        lmc_sb_free(&whole);
    }
    CHECK_MSG(cuts > iters, "only %d cuts found: the property is barely tested", cuts);
}

/* ---------- training and BPE ---------- */

static void test_train_basics(void)
{
    CHECK(small_tok != NULL);
    if (!small_tok)
        return;
    CHECK(lmc_tok_vocab_size(small_tok) == 600);
    CHECK(lmc_tok_n_special(small_tok) == 1);
    CHECK(lmc_tok_special_id(small_tok, "<|endoftext|>") == 599);
    CHECK(lmc_tok_special_id(small_tok, "<|nope|>") == -1);
    /* frequent words become single tokens */
    int *ids;
    size_t n;
    CHECK_OK(lmc_tok_encode(small_tok, " quick", 6, &ids, &n));
    CHECK_MSG(n == 1, "' quick' is %zu tokens", n);
    free(ids);
    /* bad options */
    lmc_tok_trainer *tr = NULL;
    lmc_tok_train_opts o = {.vocab_size = 100};
    CHECK_ERR(lmc_tok_trainer_new(&o, &tr), LMC_EINVAL, "vocabulary size 100 is out of range");
    const char *dup[] = {"<a>", "<a>"};
    o = (lmc_tok_train_opts){.vocab_size = 300, .specials = dup, .n_specials = 2};
    CHECK_ERR(lmc_tok_trainer_new(&o, &tr), LMC_EINVAL, "'<a>' is given twice");
}

static void test_train_deterministic(void)
{
    char *text = corpus(11, quick() ? 20000 : 100000);
    lmc_tokenizer *a = train_on(text, 500, NULL, 0), *b = train_on(text, 500, NULL, 0);
    lmc_sb sa, sb;
    lmc_sb_init(&sa);
    lmc_sb_init(&sb);
    CHECK_OK(tok_save_lmc_sb(a, &sa));
    CHECK_OK(tok_save_lmc_sb(b, &sb));
    CHECK(sa.len == sb.len && !memcmp(sa.s, sb.s, sa.len));
    lmc_sb_free(&sa);
    lmc_sb_free(&sb);
    lmc_tok_free(a);
    lmc_tok_free(b);
    free(text);
}

/* GPT-2's own bpe(): merge every occurrence of the lowest-ranked pair, left
 * to right, until no pair has a rank. Plain and slow, for reference. */
static size_t gpt2_bpe(const lmc_tokenizer *t, const uint8_t *s, size_t n, int *out)
{
    size_t m = n;
    for (size_t i = 0; i < n; i++)
        out[i] = t->byte_id[s[i]];
    for (;;) {
        int best = -1, res = -1, r, rr;
        for (size_t i = 0; i + 1 < m; i++)
            if ((r = tok_pair_rank(t, out[i], out[i + 1], &rr)) >= 0 && (best < 0 || r < best))
                best = r, res = rr;
        if (best < 0)
            break;
        int a = t->merges[best].left, b = t->merges[best].right;
        size_t j = 0;
        for (size_t i = 0; i < m;) {
            if (i + 1 < m && out[i] == a && out[i + 1] == b)
                out[j++] = res, i += 2;
            else
                out[j++] = out[i++];
        }
        m = j;
    }
    return m;
}

/* Short pieces take one merge loop and long ones (> 256 bytes) a heap; both
 * must give GPT-2's answer. */
static void test_bpe_matches_gpt2(void)
{
    if (!small_tok)
        return;
    lmc_rng r;
    lmc_rng_seed(&r, 3);
    static const char *alpha[] = {"a", "b", "e", "th", "the", "o", "x", " "};
    for (int it = 0; it < (quick() ? 100 : 400); it++) {
        /* one piece: letters only (plus a leading space), up to 2000 bytes */
        lmc_sb b;
        lmc_sb_init(&b);
        size_t want = it % 4 == 0 ? 300 + lmc_rng_u64(&r) % 1700 : 2 + lmc_rng_u64(&r) % 60;
        lmc_sb_putc(&b, ' ');
        while (b.len < want) {
            const char *f = alpha[lmc_rng_u64(&r) % 7];
            lmc_sb_puts(&b, it % 3 == 0 ? "e" : f);
        }
        int *ids, *ref = malloc(b.len * sizeof *ref);
        size_t n, m = gpt2_bpe(small_tok, (const uint8_t *)b.s, b.len, ref);
        CHECK_OK(lmc_tok_encode(small_tok, b.s, b.len, &ids, &n));
        int same = n == m && !memcmp(ids, ref, n * sizeof *ids);
        CHECK_MSG(same, "piece of %zu bytes: %zu tokens vs GPT-2's %zu", b.len, n, m);
        free(ids);
        free(ref);
        lmc_sb_free(&b);
    }
}

static void check_round_trip(const lmc_tokenizer *t, const char *s, size_t n)
{
    int *ids;
    size_t k;
    CHECK_OK(lmc_tok_encode(t, s, n, &ids, &k));
    lmc_sb out;
    lmc_sb_init(&out);
    CHECK_OK(lmc_tok_decode(t, ids, k, &out));
    CHECK_MSG(out.len == n && (n == 0 || !memcmp(out.s, s, n)), "round trip of %zu bytes gave %zu", n, out.len);
    for (size_t i = 0; i < k; i++)
        CHECK(ids[i] >= 0 && ids[i] < lmc_tok_vocab_size(t) && !lmc_tok_is_special(t, ids[i]));
    lmc_sb_free(&out);
    free(ids);
}

/* decode(encode(x)) == x for any bytes: uniform random bytes, and random
 * mixes of text and junk. */
static void test_round_trip_random(void)
{
    if (!small_tok)
        return;
    lmc_rng r;
    lmc_rng_seed(&r, 5);
    char buf[4096];
    for (int it = 0; it < (quick() ? 300 : 3000); it++) {
        size_t n = lmc_rng_u64(&r) % (it % 10 ? 200 : sizeof buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = it % 2 ? (char)lmc_rng_u64(&r) : "ab cd\n'é\xff"[lmc_rng_u64(&r) % 10];
        check_round_trip(small_tok, buf, n);
    }
    check_round_trip(small_tok, "", 0);
    char *text = corpus(2, 50000);
    check_round_trip(small_tok, text, strlen(text));
    free(text);
}

static void test_special_tokens(void)
{
    if (!small_tok)
        return;
    const char *s = "a<|endoftext|>b<|endoftext|";
    int *ids;
    size_t n;
    CHECK_OK(lmc_tok_encode(small_tok, s, strlen(s), &ids, &n));
    for (size_t i = 0; i < n; i++)
        CHECK(ids[i] != 599); /* plain text by default, like GPT-2's encoder */
    free(ids);
    CHECK_OK(lmc_tok_encode_special(small_tok, s, strlen(s), NULL, 0, &ids, &n));
    int found = 0;
    for (size_t i = 0; i < n; i++)
        found += ids[i] == 599;
    CHECK(found == 1);
    lmc_sb out;
    lmc_sb_init(&out);
    CHECK_OK(lmc_tok_decode(small_tok, ids, n, &out));
    CHECK(out.len == strlen(s) && !memcmp(out.s, s, out.len));
    lmc_sb_free(&out);
    free(ids);
    const char *names[] = {"<|nope|>"};
    CHECK_ERR(lmc_tok_encode_special(small_tok, s, strlen(s), names, 1, &ids, &n), LMC_EINVAL,
              "'<|nope|>' is not in the vocabulary");
    size_t len;
    CHECK(lmc_tok_token_bytes(small_tok, 599, &len) && len == 13);
    CHECK(lmc_tok_token_bytes(small_tok, 600, &len) == NULL && lmc_tok_token_bytes(small_tok, -1, &len) == NULL);
}

static void test_decode_errors(void)
{
    if (!small_tok)
        return;
    int ids[] = {65, 66, 99999, 67};
    lmc_sb out;
    lmc_sb_init(&out);
    CHECK_ERR(lmc_tok_decode(small_tok, ids, 4, &out), LMC_ERANGE, "token id 99999 at position 2 is out of range");
    CHECK(out.len == 2 && !memcmp(out.s, "AB", 2));
    lmc_sb_free(&out);
}

/* ---------- threads ---------- */

typedef struct {
    const char *text;
    size_t n;
    int *ids;
    size_t nids;
} job;

static void *encode_job(void *arg)
{
    job *j = arg;
    lmc_tok_encode(small_tok, j->text, j->n, &j->ids, &j->nids);
    return NULL;
}

/* Concurrent encodes share the tokenizer and must not disturb each other. */
static void test_concurrent_encode(void)
{
    if (!small_tok)
        return;
    char *text = corpus(9, quick() ? 50000 : 400000);
    int *want;
    size_t nwant;
    CHECK_OK(lmc_tok_encode(small_tok, text, strlen(text), &want, &nwant));
    pthread_t th[4];
    job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (job){text, strlen(text), NULL, 0};
        pthread_create(&th[i], NULL, encode_job, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(jobs[i].nids == nwant && !memcmp(jobs[i].ids, want, nwant * sizeof *want));
        free(jobs[i].ids);
    }
    /* a reused encoder (warm cache) gives the same ids */
    lmc_tok_encoder *e;
    CHECK_OK(lmc_tok_encoder_new(small_tok, &e));
    for (int rep = 0; rep < 2; rep++) {
        int *ids = NULL;
        size_t n = 0, cap = 0;
        CHECK_OK(lmc_tok_encoder_encode(e, text, strlen(text), &ids, &n, &cap));
        CHECK(n == nwant && !memcmp(ids, want, n * sizeof *ids));
        free(ids);
    }
    lmc_tok_encoder_free(e);
    free(want);
    free(text);
}

int main(void)
{
    const char *eot[] = {"<|endoftext|>"};
    char *text = corpus(1, quick() ? 30000 : 200000);
    small_tok = train_on(text, 600, eot, 1);
    free(text);
    RUN(test_unicode_classes);
    RUN(test_utf8_decode);
    RUN(test_pretok_cases);
    RUN(test_safe_cut_property);
    RUN(test_train_basics);
    RUN(test_train_deterministic);
    RUN(test_bpe_matches_gpt2);
    RUN(test_round_trip_random);
    RUN(test_special_tokens);
    RUN(test_decode_errors);
    RUN(test_concurrent_encode);
    lmc_tok_free(small_tok);
    return test_summary();
}
