/* test_tokenizer_files.c: the tokenizer's files: saving and loading both
 * formats, every kind of malformed encoder.json / vocab.bpe /
 * lmc-tokenizer.json (the error must name file, field and value), streaming
 * input in cut-safe blocks, and llm.c token shards (layout, documents,
 * separators, val split, thread-count independence, size limits). */
#include "lmc/tokenizer.h"
#include "test.h"
#include "tokenizer/tok_internal.h"

#include <unistd.h>

static char tmpdir[256];

static char *path_of(const char *name)
{
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static void write_text(const char *path, const char *s)
{
    CHECK_OK(lmc_write_file_atomic(path, s, strlen(s)));
}

static char *corpus(uint64_t seed, size_t n)
{
    static const char *w[] = {"the", " cat", " sat", " on", " mat", "'s", ".", "\n", "\n\n", " é", " 中文", "  ",
                              " 42", " tokens", " héllo", "\t", " a", " b"};
    lmc_rng r;
    lmc_rng_seed(&r, seed);
    lmc_sb b;
    lmc_sb_init(&b);
    while (b.len < n)
        lmc_sb_puts(&b, w[lmc_rng_u64(&r) % (sizeof w / sizeof *w)]);
    return b.s;
}

static lmc_tokenizer *train(int vocab)
{
    const char *eot[] = {"<|endoftext|>"};
    char *text = corpus(1, 100000);
    lmc_tok_train_opts o = {.vocab_size = vocab, .specials = eot, .n_specials = 1};
    lmc_tok_trainer *tr = NULL;
    lmc_tokenizer *t = NULL;
    CHECK_OK(lmc_tok_trainer_new(&o, &tr));
    CHECK_OK(lmc_tok_trainer_feed(tr, text, strlen(text)));
    CHECK_OK(lmc_tok_trainer_finish(tr, &t));
    lmc_tok_trainer_free(tr);
    free(text);
    return t;
}

static int same_encoding(const lmc_tokenizer *a, const lmc_tokenizer *b, const char *text)
{
    int *x, *y;
    size_t nx, ny;
    if (lmc_tok_encode(a, text, strlen(text), &x, &nx) || lmc_tok_encode(b, text, strlen(text), &y, &ny))
        return 0;
    int same = nx == ny && !memcmp(x, y, nx * sizeof *x);
    free(x);
    free(y);
    return same;
}

/* ---------- formats ---------- */

static void test_save_load(void)
{
    lmc_tokenizer *t = train(400), *l = NULL, *g = NULL;
    if (!t)
        return;
    char *dir = path_of("saved");
    CHECK_OK(lmc_tok_save(t, dir));
    CHECK_OK(lmc_tok_load(dir, &l));
    char *text = corpus(2, 20000);
    if (l) {
        CHECK(lmc_tok_vocab_size(l) == lmc_tok_vocab_size(t) && lmc_tok_n_merges(l) == lmc_tok_n_merges(t));
        CHECK(lmc_tok_special_id(l, "<|endoftext|>") == lmc_tok_vocab_size(t) - 1);
        CHECK(same_encoding(t, l, text));
    }
    /* the GPT-2 form alone must load to the same tokenizer */
    unlink(path_of("saved/lmc-tokenizer.json"));
    CHECK_OK(lmc_tok_load(dir, &g));
    if (g) {
        CHECK(lmc_tok_vocab_size(g) == lmc_tok_vocab_size(t));
        CHECK(lmc_tok_special_id(g, "<|endoftext|>") == lmc_tok_vocab_size(t) - 1);
        CHECK(same_encoding(t, g, text));
    }
    free(text);
    lmc_tok_free(t);
    lmc_tok_free(l);
    lmc_tok_free(g);
}

/* A minimal valid GPT-2 pair: the 256 byte tokens, "Ġt" and "Ġth", and <|endoftext|>. */
static void gpt2_files(lmc_sb *enc, lmc_sb *bpe, int extra)
{
    lmc_sb_putc(enc, '{');
    for (int b = 0; b < 256; b++) {
        uint32_t cp = tok_gpt2_byte_char(b);
        char u[8];
        int n = cp < 0x80 ? snprintf(u, sizeof u, "%c", (char)cp)
                          : snprintf(u, sizeof u, "%c%c", (char)(0xC0 | (cp >> 6)), (char)(0x80 | (cp & 0x3F)));
        lmc_sb_json_str(enc, u, (size_t)n);
        lmc_sb_printf(enc, ": %d, ", b);
    }
    lmc_sb_puts(enc, "\"\xc4\xa0t\": 256, \"\xc4\xa0th\": 257, \"<|endoftext|>\": 258");
    for (int i = 0; i < extra; i++)
        lmc_sb_printf(enc, ", \"<|x%d|>\": %d", i, 259 + i);
    lmc_sb_puts(enc, "}");
    lmc_sb_puts(bpe, "#version: 0.2\n\xc4\xa0 t\n\xc4\xa0t h\n");
}

static lmc_status load_gpt2_with(const char *enc_from, const char *enc_to, const char *bpe_from, const char *bpe_to)
{
    lmc_sb enc, bpe;
    lmc_sb_init(&enc);
    lmc_sb_init(&bpe);
    gpt2_files(&enc, &bpe, 0);
    lmc_sb e2, b2;
    lmc_sb_init(&e2);
    lmc_sb_init(&b2);
    /* replace the first occurrence of *_from with *_to */
    const char *src[2] = {enc.s, bpe.s}, *from[2] = {enc_from, bpe_from}, *to[2] = {enc_to, bpe_to};
    lmc_sb *dst[2] = {&e2, &b2};
    for (int k = 0; k < 2; k++) {
        const char *hit = from[k] ? strstr(src[k], from[k]) : NULL;
        if (!hit) {
            lmc_sb_puts(dst[k], src[k]);
            continue;
        }
        lmc_sb_put(dst[k], src[k], (size_t)(hit - src[k]));
        lmc_sb_puts(dst[k], to[k]);
        lmc_sb_puts(dst[k], hit + strlen(from[k]));
    }
    write_text(path_of("g2/encoder.json"), e2.s);
    write_text(path_of("g2/vocab.bpe"), b2.s);
    lmc_tokenizer *t = NULL;
    lmc_status s = lmc_tok_load(path_of("g2"), &t);
    lmc_tok_free(t);
    lmc_sb_free(&enc);
    lmc_sb_free(&bpe);
    lmc_sb_free(&e2);
    lmc_sb_free(&b2);
    return s;
}

static void test_gpt2_errors(void)
{
    CHECK_OK(lmc_mkdir_p(path_of("g2")));
    CHECK_OK(load_gpt2_with(NULL, NULL, NULL, NULL));
    CHECK_ERR(load_gpt2_with("{", "[", NULL, NULL), LMC_EFORMAT, "encoder.json: malformed JSON");
    CHECK_ERR(load_gpt2_with(": 258", ": 9999", NULL, NULL), LMC_EFORMAT,
              "encoder.json: token '<|endoftext|>': id 9999 is out of range");
    CHECK_ERR(load_gpt2_with(": 258", ": 257", NULL, NULL), LMC_EFORMAT, "both have id 257");
    CHECK_ERR(load_gpt2_with(": 258", ": 1.5", NULL, NULL), LMC_EFORMAT,
              "token '<|endoftext|>': id must be an integer");
    CHECK_ERR(load_gpt2_with("\"<|endoftext|>\"", "\"\xe4\xb8\xad\"", NULL, NULL), LMC_EFORMAT,
              "character U+4E2D is not in GPT-2's byte alphabet");
    CHECK_ERR(load_gpt2_with("\"A\": 65", "\"\xc4\xa0\xc4\xa0\": 65", NULL, NULL), LMC_EFORMAT,
              "no token for byte 0x41");
    CHECK_ERR(load_gpt2_with(NULL, NULL, "\xc4\xa0t h", "\xc4\xa0t q"), LMC_EFORMAT,
              "vocab.bpe: line 3: merged token '\xc4\xa0tq' is not in");
    CHECK_ERR(load_gpt2_with(NULL, NULL, "\xc4\xa0t h", "\xc4\xa0t \xe4\xb8\xad"), LMC_EFORMAT,
              "vocab.bpe: line 3: right token '\xe4\xb8\xad': character U+4E2D");
    CHECK_ERR(load_gpt2_with(NULL, NULL, "\xc4\xa0t h", "\xc4\xa0x h"), LMC_EFORMAT,
              "vocab.bpe: line 3: left token '\xc4\xa0x' is not in");
    CHECK_ERR(load_gpt2_with(NULL, NULL, "\xc4\xa0t h", "\xc4\xa0th"), LMC_EFORMAT,
              "line 3: expected two tokens separated by one space");
    CHECK_ERR(load_gpt2_with(NULL, NULL, "\xc4\xa0t h", "\xc4\xa0 t"), LMC_EFORMAT,
              "vocab.bpe: line 3: duplicate merge of tokens");
    unlink(path_of("g2/vocab.bpe"));
    lmc_tokenizer *t = NULL;
    CHECK_ERR(lmc_tok_load(path_of("g2"), &t), LMC_EIO, "vocab.bpe: cannot open");
    CHECK_ERR(lmc_tok_load(path_of("nothing-here"), &t), LMC_EIO, "not a directory");
    CHECK_OK(lmc_mkdir_p(path_of("empty")));
    CHECK_ERR(lmc_tok_load(path_of("empty"), &t), LMC_EIO, "no tokenizer here");
}

static lmc_status load_lmc_text(const char *json)
{
    lmc_tokenizer *t = NULL;
    lmc_status s = tok_load_lmc_mem(json, strlen(json), "t.json", &t);
    lmc_tok_free(t);
    return s;
}

/* A valid lmc-tokenizer.json with `tail` after the byte ids. */
static char *lmc_file_text(int vocab, const char *tail)
{
    lmc_sb b;
    lmc_sb_init(&b);
    lmc_sb_printf(&b, "{\"format\": \"lmc-bpe\", \"version\": 1, \"pretokenizer\": \"gpt2\", \"vocab_size\": %d, "
                      "\"byte_ids\": [", vocab);
    for (int i = 0; i < 256; i++)
        lmc_sb_printf(&b, "%s%d", i ? "," : "", i);
    lmc_sb_printf(&b, "], %s}", tail);
    return b.s;
}

static void test_lmc_errors(void)
{
    struct {
        int vocab;
        const char *tail, *want;
        lmc_status code;
    } cases[] = {
        {258, "\"merges\": [[97, 98, 256]], \"special_tokens\": [{\"id\": 257, \"content\": \"<s>\"}]", NULL, LMC_OK},
        {257, "\"merges\": [[97, 98, 256], [256, 99, 256]]", "merges[1]: token id 256 is already defined with other",
         LMC_EFORMAT},
        {258, "\"merges\": [[97, 257, 256]]", "merges[0]: token id 257 is used before it is defined", LMC_EFORMAT},
        {257, "\"merges\": [[97, 98, 300]]", "merges[0]: token id 300 is out of range (vocab_size 257)", LMC_EFORMAT},
        {257, "\"merges\": [[97, 98]]", "merges[0]: expected [left, right, result]", LMC_EFORMAT},
        {258, "\"merges\": [[97, 98, 256]]", "token id 257 is defined by none", LMC_EFORMAT},
        {257, "\"merges\": [[97, 98, 256], [97, 98, 256]]", "merges[1]: duplicate merge of tokens 97 and 98",
         LMC_EFORMAT},
        {257, "\"merges\": [], \"special_tokens\": [{\"id\": 256, \"content\": \"\"}]", "special_tokens[0]: expected",
         LMC_EFORMAT},
        {257, "\"merges\": [], \"special_tokens\": [{\"id\": 97, \"content\": \"x\"}]",
         "special_tokens[0]: token id 97 is already defined", LMC_EFORMAT},
        {100, "\"merges\": []", "vocab_size 100 is out of range", LMC_EFORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *j = lmc_file_text(cases[i].vocab, cases[i].tail);
        if (cases[i].code == LMC_OK)
            CHECK_OK(load_lmc_text(j));
        else
            CHECK_ERR(load_lmc_text(j), cases[i].code, cases[i].want);
        free(j);
    }
    CHECK_ERR(load_lmc_text("{\"format\": \"hf\"}"), LMC_EFORMAT, "t.json: format is 'hf', expected 'lmc-bpe'");
    CHECK_ERR(load_lmc_text("{\"format\": \"lmc-bpe\", \"version\": 2}"), LMC_EUNSUPPORTED, "t.json: version 2");
    CHECK_ERR(load_lmc_text("{\"format\": \"lmc-bpe\", \"version\": 1, \"pretokenizer\": \"llama\"}"),
              LMC_EUNSUPPORTED, "pretokenizer 'llama' is not supported");
    char *j = lmc_file_text(257, "\"merges\": []");
    char *dup = strstr(j, ",1,2,");
    if (dup)
        dup[1] = '2'; /* byte 1 and byte 2 both claim id 2 */
    CHECK_ERR(load_lmc_text(j), LMC_EFORMAT, "byte_ids[2]: token id 2 is already defined");
    free(j);
}

/* ---------- streaming ---------- */

static void test_stream_blocks(void)
{
    char *text = corpus(3, 300000);
    size_t n = strlen(text);
    write_text(path_of("stream.txt"), text);
    tok_stream st;
    CHECK_OK(tok_stream_open(&st, path_of("stream.txt"), 1 << 20));
    lmc_sb all;
    lmc_sb_init(&all);
    int blocks = 0;
    for (;;) {
        const uint8_t *d;
        size_t len;
        CHECK_OK(tok_stream_next(&st, 1000, &d, &len));
        if (!len)
            break;
        blocks++;
        size_t at = all.len;
        lmc_sb_put(&all, (const char *)d, len);
        if (at + len < n) /* every cut must be one find_cut accepts in the whole text */
            CHECK_MSG(lmc_tok_find_cut(text, n, at + len, at + len) == at + len, "unsafe cut at %zu", at + len);
    }
    tok_stream_close(&st);
    CHECK(all.len == n && !memcmp(all.s, text, n));
    CHECK_MSG(blocks > 100, "%d blocks", blocks);
    lmc_sb_free(&all);
    free(text);
    CHECK_ERR(tok_stream_open(&st, path_of("missing.txt"), 1 << 20), LMC_EIO, "missing.txt: cannot open");
}

static void test_list_inputs(void)
{
    CHECK_OK(lmc_mkdir_p(path_of("in/sub")));
    write_text(path_of("in/b.txt"), "bb");
    write_text(path_of("in/a.txt"), "a");
    write_text(path_of("in/sub/c.txt"), "ccc");
    write_text(path_of("in/.hidden"), "x");
    const char *specs[] = {path_of("in")};
    char **paths;
    int n;
    double total;
    CHECK_OK(lmc_tok_list_inputs(specs, 1, &paths, &n, &total));
    CHECK(n == 3 && total == 6);
    if (n == 3) {
        CHECK(strstr(paths[0], "in/a.txt") && strstr(paths[1], "in/b.txt") && strstr(paths[2], "in/sub/c.txt"));
        lmc_tok_free_inputs(paths, n);
    }
    const char *missing[] = {path_of("in/none*.txt")};
    CHECK_ERR(lmc_tok_list_inputs(missing, 1, &paths, &n, &total), LMC_EIO, "none*.txt: no such file");
    const char *twice[] = {"-", "-"};
    CHECK_ERR(lmc_tok_list_inputs(twice, 2, &paths, &n, &total), LMC_EINVAL, "more than once");
    CHECK_OK(lmc_mkdir_p(path_of("in/emptydir")));
    const char *empty[] = {path_of("in/emptydir")};
    CHECK_ERR(lmc_tok_list_inputs(empty, 1, &paths, &n, &total), LMC_EIO, "directory holds no files");
}

/* ---------- shards ---------- */

static int *read_tokens(const char *path, long long *n, int *tb)
{
    char *data;
    size_t len;
    *n = 0;
    if (lmc_tok_shard_check(path, n, tb) != LMC_OK || lmc_read_file(path, &data, &len) != LMC_OK)
        return NULL;
    int *ids = malloc((size_t)(*n + 1) * sizeof *ids);
    const uint8_t *p = (const uint8_t *)data + 1024;
    for (long long i = 0; i < *n; i++)
        ids[i] = *tb == 2 ? p[2 * i] | p[2 * i + 1] << 8
                          : (int)(p[4 * i] | p[4 * i + 1] << 8 | p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24);
    free(data);
    return ids;
}

/* A path that stays valid for the whole run (path_of's buffers are reused). */
static const char *stable_path(const char *name)
{
    static char saved[32][512];
    static int n;
    for (int i = 0; i < n; i++)
        if (strstr(saved[i], name) && !strcmp(saved[i] + strlen(tmpdir) + 1, name))
            return saved[i];
    snprintf(saved[n % 32], sizeof saved[0], "%s/%s", tmpdir, name);
    return saved[n++ % 32];
}

static lmc_tok_shard_opts shard_opts(char **paths, int n, const char *prefix, int sep)
{
    return (lmc_tok_shard_opts){.paths = paths, .n_paths = n, .out_prefix = stable_path(prefix),
                                .shard_tokens = 1 << 30, .separator_id = sep, .threads = 1};
}

static void test_shards(void)
{
    lmc_tokenizer *t = train(400);
    if (!t)
        return;
    int eot = lmc_tok_special_id(t, "<|endoftext|>");
    char *docs[3] = {corpus(4, 30000), corpus(5, 100), corpus(6, 20000)};
    char *paths[3] = {lmc_strdup(path_of("d0.txt")), lmc_strdup(path_of("d1.txt")), lmc_strdup(path_of("d2.txt"))};
    lmc_sb want;
    lmc_sb_init(&want);
    for (int i = 0; i < 3; i++) {
        write_text(paths[i], docs[i]);
        lmc_sb_put(&want, (const char *)&eot, sizeof eot);
        int *ids;
        size_t n;
        CHECK_OK(lmc_tok_encode(t, docs[i], strlen(docs[i]), &ids, &n));
        lmc_sb_put(&want, (const char *)ids, n * sizeof *ids);
        free(ids);
    }
    lmc_tok_shard_stats st;
    lmc_tok_shard_opts o = shard_opts(paths, 3, "s1", eot);
    CHECK_OK(lmc_tok_shard(t, &o, &st));
    CHECK(st.docs == 3 && st.train_shards == 1 && st.val_shards == 0 && st.token_bytes == 2);
    long long n;
    int tb;
    int *got = read_tokens(path_of("s1_train_000000.bin"), &n, &tb);
    CHECK(got && tb == 2 && (size_t)n * sizeof(int) == want.len && !memcmp(got, want.s, want.len));
    free(got);
    /* 2 threads, tiny blocks, 4-byte tokens, 1000-token shards: the same tokens */
    o = shard_opts(paths, 3, "s2", eot);
    o.threads = 2, o.block_bytes = 300, o.token_bytes = 4, o.shard_tokens = 1000;
    CHECK_OK(lmc_tok_shard(t, &o, &st));
    lmc_sb all;
    lmc_sb_init(&all);
    for (int i = 0; i < st.train_shards; i++) {
        char name[64];
        snprintf(name, sizeof name, "s2_train_%06d.bin", i);
        got = read_tokens(path_of(name), &n, &tb);
        CHECK(got && tb == 4 && (n == 1000 || i == st.train_shards - 1));
        if (got)
            lmc_sb_put(&all, (const char *)got, (size_t)n * sizeof *got);
        free(got);
    }
    CHECK(all.len == want.len && !memcmp(all.s, want.s, want.len));
    lmc_sb_free(&all);
    /* a rerun with fewer shards removes the old extra ones */
    o.shard_tokens = 1 << 30;
    CHECK_OK(lmc_tok_shard(t, &o, &st));
    CHECK(!lmc_path_exists(path_of("s2_train_000001.bin")));
    /* val takes about its share, spread out */
    o = shard_opts(paths, 3, "s3", eot);
    o.val_fraction = 0.25, o.block_bytes = 1000;
    CHECK_OK(lmc_tok_shard(t, &o, &st));
    double share = st.val_tokens / (st.train_tokens + st.val_tokens);
    CHECK_MSG(share > 0.2 && share < 0.3, "val share %.3f", share);
    CHECK(st.train_tokens + st.val_tokens == (double)(want.len / sizeof(int)));
    /* limits */
    o = shard_opts(paths, 3, "s4", lmc_tok_vocab_size(t));
    CHECK_ERR(lmc_tok_shard(t, &o, &st), LMC_ERANGE, "separator token id");
    o = shard_opts(paths, 3, "s4", eot);
    o.shard_tokens = 0;
    CHECK_ERR(lmc_tok_shard(t, &o, &st), LMC_EINVAL, "shard size 0 tokens is out of range");
    lmc_sb_free(&want);
    for (int i = 0; i < 3; i++) {
        free(docs[i]);
        free(paths[i]);
    }
    lmc_tok_free(t);
}

/* A vocabulary past 65535 ids cannot go in uint16 shards. */
static void test_shard_too_big_vocab(void)
{
    lmc_sb enc, bpe;
    lmc_sb_init(&enc);
    lmc_sb_init(&bpe);
    gpt2_files(&enc, &bpe, 70000 - 259);
    CHECK_OK(lmc_mkdir_p(path_of("big")));
    write_text(path_of("big/encoder.json"), enc.s);
    write_text(path_of("big/vocab.bpe"), bpe.s);
    lmc_tokenizer *t = NULL;
    CHECK_OK(lmc_tok_load(path_of("big"), &t));
    if (t) {
        CHECK(lmc_tok_vocab_size(t) == 70000 && lmc_tok_n_special(t) == 70000 - 258);
        write_text(path_of("big.txt"), "the thin thing");
        char *paths[] = {(char *)stable_path("big.txt")};
        lmc_tok_shard_opts o = shard_opts(paths, 1, "bigs", lmc_tok_special_id(t, "<|x69000|>"));
        o.token_bytes = 2;
        lmc_tok_shard_stats st;
        CHECK_ERR(lmc_tok_shard(t, &o, &st), LMC_ERANGE, "a vocabulary of 70000 tokens does not fit uint16");
        o.token_bytes = 0; /* auto: uint32 */
        CHECK_OK(lmc_tok_shard(t, &o, &st));
        long long n;
        int tb;
        int *got = read_tokens(path_of("bigs_train_000000.bin"), &n, &tb);
        CHECK(got && tb == 4 && n >= 2 && got[0] == 69000 + 259);
        free(got);
    }
    lmc_tok_free(t);
    lmc_sb_free(&enc);
    lmc_sb_free(&bpe);
}

static void test_shard_check_errors(void)
{
    long long n;
    int tb;
    char hdr[1024 + 6] = {0};
    int32_t v[3] = {20240520, 1, 3};
    memcpy(hdr, v, sizeof v);
    CHECK_OK(lmc_write_file_atomic(path_of("ok.bin"), hdr, sizeof hdr));
    CHECK_OK(lmc_tok_shard_check(path_of("ok.bin"), &n, &tb));
    CHECK(n == 3 && tb == 2);
    CHECK_OK(lmc_write_file_atomic(path_of("short.bin"), hdr, sizeof hdr - 1));
    CHECK_ERR(lmc_tok_shard_check(path_of("short.bin"), &n, &tb), LMC_EFORMAT, "header[2] (token count) is 3");
    v[0] = 42;
    memcpy(hdr, v, sizeof v);
    CHECK_OK(lmc_write_file_atomic(path_of("magic.bin"), hdr, sizeof hdr));
    CHECK_ERR(lmc_tok_shard_check(path_of("magic.bin"), &n, &tb), LMC_EFORMAT, "header[0] (magic) is 42");
    v[0] = 20240520, v[1] = 7;
    memcpy(hdr, v, sizeof v);
    CHECK_OK(lmc_write_file_atomic(path_of("ver.bin"), hdr, sizeof hdr));
    CHECK_ERR(lmc_tok_shard_check(path_of("ver.bin"), &n, &tb), LMC_EFORMAT, "header[1] (version) is 7");
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/lmc-tokfiles-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_save_load);
    RUN(test_gpt2_errors);
    RUN(test_lmc_errors);
    RUN(test_stream_blocks);
    RUN(test_list_inputs);
    RUN(test_shards);
    RUN(test_shard_too_big_vocab);
    RUN(test_shard_check_errors);
    lmc_rm_rf(tmpdir);
    return test_summary();
}
