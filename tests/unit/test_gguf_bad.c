/* test_gguf_bad.c: bad GGUF input gets an error naming the key or tensor,
 * never a crash (this runs under ASan + UBSan in scripts/test.sh): every
 * prefix of a small file; each header field, count, string and array
 * length, value type, tensor shape, type and offset made wrong; then a
 * good export with model-level faults: unknown architecture, missing,
 * extra and misshapen tensors, a NaN, other tokenizer kinds. */
#define _GNU_SOURCE /* memmem */
#include "lmc/gguf.h"
#include "test.h"

#include <unistd.h>

/* ---------- a small file built by hand, remembering where fields are ---------- */

typedef struct {
    lmc_sb b;
    size_t version, n_tensors, n_kv, key0_len, key0_type, arr_type, arr_n, bool_val, align_type, align_val,
        strs_n, t0_ndim, t0_ne0, t0_ne1, t0_type, t0_offset, t1_offset;
} crafted;

static void u32(lmc_sb *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        lmc_sb_putc(b, (char)(v >> (8 * i)));
}

static void u64(lmc_sb *b, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        lmc_sb_putc(b, (char)(v >> (8 * i)));
}

static void str(lmc_sb *b, const char *s)
{
    u64(b, strlen(s));
    lmc_sb_puts(b, s);
}

/* 6 keys (string, u32 array, bool, alignment, string array, and a second
 * copy of key 0 when dup), 2 tensors: "a" f32 [8] and "b" q8_0 [32, 2]. */
static void craft(crafted *c, int dup)
{
    lmc_sb *b = &c->b;
    lmc_sb_init(b);
    lmc_sb_put(b, "GGUF", 4);
    c->version = b->len;
    u32(b, 3);
    c->n_tensors = b->len;
    u64(b, 2);
    c->n_kv = b->len;
    u64(b, dup ? 6 : 5);
    c->key0_len = b->len;
    str(b, "general.architecture");
    c->key0_type = b->len;
    u32(b, LMC_GGUF_STR);
    str(b, "gpt2");
    str(b, "test.arr");
    u32(b, LMC_GGUF_ARR);
    c->arr_type = b->len;
    u32(b, LMC_GGUF_U32);
    c->arr_n = b->len;
    u64(b, 3);
    u32(b, 1), u32(b, 2), u32(b, 3);
    str(b, "test.flag");
    u32(b, LMC_GGUF_BOOL);
    c->bool_val = b->len;
    lmc_sb_putc(b, 1);
    str(b, "general.alignment");
    c->align_type = b->len;
    u32(b, LMC_GGUF_U32);
    c->align_val = b->len;
    u32(b, 32);
    str(b, "test.strs");
    u32(b, LMC_GGUF_ARR);
    u32(b, LMC_GGUF_STR);
    c->strs_n = b->len;
    u64(b, 2);
    str(b, "a"), str(b, "bc");
    if (dup) {
        str(b, "general.architecture");
        u32(b, LMC_GGUF_STR);
        str(b, "llama");
    }
    str(b, "a");
    c->t0_ndim = b->len;
    u32(b, 1);
    c->t0_ne0 = b->len;
    u64(b, 8);
    c->t0_type = b->len;
    u32(b, LMC_GGML_F32);
    c->t0_offset = b->len;
    u64(b, 0);
    str(b, "b");
    u32(b, 2);
    c->t0_ne1 = b->len; /* "b"'s ne[0] */
    u64(b, 32), u64(b, 2);
    u32(b, LMC_GGML_Q8_0);
    c->t1_offset = b->len;
    u64(b, 32);
    while (b->len % 32)
        lmc_sb_putc(b, 0);
    for (int i = 0; i < 32 + 68 + 28; i++) /* "a" (32 bytes), "b" (68), padding */
        lmc_sb_putc(b, i < 32 ? 0 : (char)i);
}

static void patch(crafted *c, size_t at, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        c->b.s[at + (size_t)i] = (char)(v >> (8 * i));
}

/* Parses the crafted file with one field set to v (bytes 0: as built). */
static lmc_status parse_patched(size_t at, uint64_t v, int bytes, int dup)
{
    crafted c;
    craft(&c, dup);
    if (bytes)
        patch(&c, at, v, bytes);
    lmc_gguf g;
    lmc_status s = lmc_gguf_parse(&g, (const uint8_t *)c.b.s, c.b.len, "t.gguf");
    if (s == LMC_OK)
        lmc_gguf_close(&g);
    lmc_sb_free(&c.b);
    return s;
}

#define FIELD(name) (craft(&c, 0), lmc_sb_free(&c.b), c.name)

static void test_crafted(void)
{
    crafted c;
    craft(&c, 0);
    lmc_gguf g;
    CHECK_OK(lmc_gguf_parse(&g, (const uint8_t *)c.b.s, c.b.len, "t.gguf"));
    CHECK(g.n_kv == 5 && g.n_tensors == 2 && g.data_offset % 32 == 0);
    const lmc_gguf_kv *arr = NULL;
    CHECK_OK(lmc_gguf_get_arr(&g, "test.arr", 1, LMC_GGUF_I32, &arr));
    CHECK(arr && lmc_gguf_arr_int(arr, 2) == 3);
    const lmc_gguf_tensor *t = lmc_gguf_tensor_find(&g, "b");
    CHECK(t && t->bytes == 68 && t->data[2] == 34);
    long long v;
    CHECK_ERR(lmc_gguf_get_int(&g, "test.flag", 1, 0, 1, &v), LMC_EFORMAT, "key 'test.flag' has type bool");
    CHECK_ERR(lmc_gguf_get_int(&g, "nope", 1, 0, 1, &v), LMC_EFORMAT, "missing key 'nope'");
    CHECK_ERR(lmc_gguf_get_str(&g, "test.arr", 1, &(lmc_gguf_str){0}), LMC_EFORMAT, "is an array of u32");
    lmc_gguf_close(&g);

    /* every prefix: an error, never a read past the end */
    int ok = 1;
    for (size_t n = 0; n < c.b.len - 28; n++) { /* the last tensor's padding may go */
        lmc_status s = lmc_gguf_parse(&g, (const uint8_t *)c.b.s, n, "t.gguf");
        ok &= s != LMC_OK;
        if (s == LMC_OK)
            lmc_gguf_close(&g);
    }
    CHECK_MSG(ok, "a truncated file parsed");
    CHECK_ERR(lmc_gguf_parse(&g, (const uint8_t *)c.b.s, c.t0_ne0 + 4, "t.gguf"), LMC_EFORMAT,
              "t.gguf: truncated: the info of tensor 'a' needs 8 bytes at offset");
    CHECK_ERR(lmc_gguf_parse(&g, (const uint8_t *)c.b.s, c.key0_len + 20, "t.gguf"), LMC_EFORMAT,
              "header claims 5 keys, more than the");
    lmc_sb_free(&c.b);

    struct {
        size_t at;
        uint64_t v;
        int bytes;
        lmc_status code;
        const char *needle;
    } cases[] = {
        {0, 0x58554747, 4, LMC_EFORMAT, "not a GGUF file (magic bytes 47 47 55 58"},
        {FIELD(version), 1, 4, LMC_EUNSUPPORTED, "GGUF version 1; lmc reads versions 2 and 3"},
        {FIELD(version), 4, 4, LMC_EUNSUPPORTED, "GGUF version 4"},
        {FIELD(version), 0x03000000, 4, LMC_EUNSUPPORTED, "big-endian"},
        {FIELD(n_kv), 1ull << 60, 8, LMC_EFORMAT, "header claims 1152921504606846976 keys"},
        {FIELD(n_tensors), ~0ull, 8, LMC_EFORMAT, "header claims 18446744073709551615 tensors"},
        {FIELD(n_kv), 9, 8, LMC_EFORMAT, "t.gguf: key "}, /* the tensor infos read as keys */
        {FIELD(key0_len), 1ull << 62, 8, LMC_EFORMAT, "a string of 4611686018427387904 bytes at offset 24 runs past"},
        {FIELD(key0_len), 0, 8, LMC_EFORMAT, "key 0 is empty"},
        {FIELD(key0_type), 13, 4, LMC_EFORMAT, "key 'general.architecture': unknown value type 13"},
        {FIELD(arr_type), LMC_GGUF_ARR, 4, LMC_EFORMAT, "key 'test.arr': arrays of arrays are not supported"},
        {FIELD(arr_type), 77, 4, LMC_EFORMAT, "unknown array element type 77"},
        {FIELD(arr_n), 1ull << 61, 8, LMC_EFORMAT, "key 'test.arr': 2305843009213693952 values of type u32"},
        {FIELD(strs_n), ~0ull >> 1, 8, LMC_EFORMAT, "key 'test.strs': 9223372036854775807 strings cannot fit"},
        {FIELD(bool_val), 2, 1, LMC_EFORMAT, "key 'test.flag': bool value 2"},
        {FIELD(align_type), LMC_GGUF_I32, 4, LMC_EFORMAT, "key 'general.alignment' has type i32, expected u32"},
        {FIELD(align_val), 24, 4, LMC_EFORMAT, "key 'general.alignment' = 24 is not a power of two"},
        {FIELD(align_val), 0, 4, LMC_EFORMAT, "'general.alignment' = 0 is not a power of two"},
        {FIELD(t0_ndim), 0, 4, LMC_EFORMAT, "tensor 'a' has 0 dimensions"},
        {FIELD(t0_ndim), 5, 4, LMC_EFORMAT, "tensor 'a' has 5 dimensions"},
        {FIELD(t0_ne0), 1ull << 63, 8, LMC_EFORMAT, "tensor 'a': dimension 0 (9223372036854775808)"},
        {FIELD(t0_ne1), 1ull << 62, 8, LMC_EFORMAT, "tensor 'b': dimension 1 (2) makes the element count overflow"},
        {FIELD(t0_ne0), 1ull << 40, 8, LMC_EFORMAT, "tensor 'a': its 4398046511104 bytes at data offset 0 lie outside"},
        {FIELD(t0_ne1), 33, 8, LMC_EFORMAT, "tensor 'b': rows of 33 values are not whole Q8_0 blocks of 32"},
        {FIELD(t0_type), 12, 4, LMC_EUNSUPPORTED, "tensor 'a' has type Q4_K (12); lmc reads F32, F16, BF16 and Q8_0"},
        {FIELD(t0_type), 1000, 4, LMC_EUNSUPPORTED, "tensor 'a' has type unknown (1000)"},
        {FIELD(t0_offset), 4, 8, LMC_EFORMAT, "tensor 'a': data offset 4 is not a multiple of the alignment 32"},
        {FIELD(t1_offset), 1ull << 63, 8, LMC_EFORMAT, "tensor 'b': its 68 bytes at data offset 9223372036854775808"},
        {FIELD(t1_offset), 64, 8, LMC_EFORMAT, "tensor 'b': its 68 bytes at data offset 64 lie outside the file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        lmc_status s = parse_patched(cases[i].at, cases[i].v, cases[i].bytes, 0);
        CHECK_MSG(s == cases[i].code && strstr(lmc_errmsg(), cases[i].needle), "case %zu: %s (%s), wanted '%s'", i,
                  lmc_status_name(s), s ? lmc_errmsg() : "", cases[i].needle);
    }
    CHECK_ERR(parse_patched(0, 0, 0, 1), LMC_EFORMAT, "t.gguf: key 'general.architecture' appears twice");
}

/* ---------- model-level faults on a good export ---------- */

static const char *at(const char *name) { return test_path(name); }

static void export_tiny(int llama, const char *path)
{
    lmc_model_config c;
    lmc_layout l;
    CHECK_OK(lmc_config_preset(llama ? "llama-15m" : "d6", &c));
    c.n_layer = 1, c.dim = 32, c.n_head = 2, c.n_kv_head = llama ? 1 : 2, c.ffn_dim = 64, c.vocab = 260, c.max_seq = 16;
    c.tied = !llama;
    CHECK_OK(lmc_config_finish(&c));
    CHECK_OK(lmc_layout_build(&c, &l));
    float *p = lmc_alloc(l.total * sizeof(float), "p");
    lmc_weights_init(&c, &l, p, 3);
    static const char *sp[] = {"<|endoftext|>"};
    lmc_tok_train_opts o = {.vocab_size = 258, .specials = sp, .n_specials = 1};
    lmc_tok_trainer *tr;
    lmc_tokenizer *t = NULL;
    CHECK_OK(lmc_tok_trainer_new(&o, &tr));
    CHECK_OK(lmc_tok_trainer_feed(tr, "aaab aab ab", 11));
    CHECK_OK(lmc_tok_trainer_finish(tr, &t));
    lmc_tok_trainer_free(tr);
    CHECK_OK(lmc_gguf_export(path, "t", &c, &l, p, t, LMC_GGUF_FTYPE_F32));
    lmc_tok_free(t);
    lmc_free(p);
    lmc_layout_free(&l);
}

/* A copy of src with the first (last) occurrence of `from` replaced by `to` (same length). */
static void mutate_at(const char *src, const char *dst, const char *from, const char *to, int last)
{
    char *d = NULL;
    size_t n = 0;
    CHECK_OK(lmc_read_file(src, &d, &n));
    char *hit = d ? memmem(d, n, from, strlen(from)) : NULL;
    for (char *h = hit; last && h; h = memmem(h + 1, n - (size_t)(h + 1 - d), from, strlen(from)))
        hit = h;
    CHECK_MSG(hit != NULL, "'%s' not in %s", from, src);
    if (hit)
        memcpy(hit, to, strlen(to));
    CHECK_OK(lmc_write_file_atomic(dst, d, n));
    free(d);
}

static void mutate(const char *src, const char *dst, const char *from, const char *to)
{
    mutate_at(src, dst, from, to, 0);
}

/* Loads the weights (tok 0) or the tokenizer (tok 1) and frees them. */
static lmc_status load_what(const char *path, int tok)
{
    lmc_model_config c;
    lmc_layout l;
    float *p = NULL;
    lmc_tokenizer *t = NULL;
    lmc_status s = tok ? lmc_tok_load(path, &t) : lmc_weights_load(path, &c, &l, &p);
    if (s == LMC_OK && !tok)
        lmc_layout_free(&l);
    lmc_free(p);
    lmc_tok_free(t);
    return s;
}

static lmc_status load(const char *path) { return load_what(path, 0); }

static void test_models(void)
{
    const char *g = at("g.gguf"), *ll = at("l.gguf"), *m = at("m.gguf");
    export_tiny(0, g);
    export_tiny(1, ll);
    CHECK_OK(load(g));
    CHECK_OK(load_what(g, 1));
    CHECK_OK(load(ll));
    struct {
        const char *src, *from, *to;
        int tok;
        lmc_status code;
        const char *needle;
    } cases[] = {
        {g, "gpt2", "bert", 0, LMC_EUNSUPPORTED, "m.gguf: key 'general.architecture' is 'bert'; lmc reads 'gpt2' and 'llama'"},
        {g, "gpt2.block_count", "gpt2.block_cnt__", 0, LMC_EFORMAT, "m.gguf: missing key 'gpt2.block_count'"},
        {g, "output_norm.bias", "output_norm.biaz", 0, LMC_EFORMAT, "m.gguf: missing tensor 'output_norm.bias'"},
        {ll, "blk.0.attn_v.weight", "blk.0.attn_v.weigh_", 0, LMC_EFORMAT, "m.gguf: missing tensor 'blk.0.attn_v.weight'"},
        {ll, "blk.0.ffn_up.weight", "blk.0.ffn_up.weighX", 0, LMC_EFORMAT, "missing tensor 'blk.0.ffn_up.weight'"},
        {g, "gpt2.attention.head_count", "gpt2.attention.head_cXunt", 0, LMC_EFORMAT,
         "missing key 'gpt2.attention.head_count'"}, /* head_count_kv alone does not do */
        {g, "gpt-2", "gpt-9", 1, LMC_EUNSUPPORTED, "m.gguf: key 'tokenizer.ggml.pre' is 'gpt-9'"},
        {ll, "gpt2", "bert", 1, LMC_EUNSUPPORTED, "m.gguf: key 'tokenizer.ggml.model' is 'bert'"},
        {g, "tokenizer.ggml.merges", "tokenizer.ggml.merged", 1, LMC_EFORMAT, "missing key 'tokenizer.ggml.merges'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mutate(cases[i].src, m, cases[i].from, cases[i].to);
        lmc_status s = load_what(m, cases[i].tok);
        CHECK_MSG(s == cases[i].code && strstr(lmc_errmsg(), cases[i].needle), "case %zu: %s (%s), wanted '%s'", i,
                  lmc_status_name(s), s ? lmc_errmsg() : "", cases[i].needle);
    }

    /* an extra tensor; a shape the config does not match; a NaN */
    lmc_gguf gg;
    CHECK_OK(lmc_gguf_open(&gg, ll));
    const lmc_gguf_tensor *v = lmc_gguf_tensor_find(&gg, "blk.0.attn_v.weight");
    size_t v_data = v ? (size_t)(v->data - gg.map.data) : 0;
    lmc_gguf_close(&gg);
    char *d = NULL;
    size_t n = 0;
    CHECK_OK(lmc_read_file(ll, &d, &n));
    if (d && v_data) {
        uint32_t nan = 0x7fc00000;
        memcpy(d + v_data + 40, &nan, 4);
        CHECK_OK(lmc_write_file_atomic(m, d, n));
        CHECK_ERR(load(m), LMC_EFORMAT, "m.gguf: tensor 'blk.0.attn_v.weight' holds a non-finite value in row 0");
        char *ne = memmem(d, n, "blk.0.attn_v.weight", 19);
        if (ne) {
            uint64_t rows = 8; /* 16 rows in the file: only half as many */
            memcpy(ne + 19 + 4 + 8, &rows, 8);
            CHECK_OK(lmc_write_file_atomic(m, d, n));
            CHECK_ERR(load(m), LMC_EFORMAT, "tensor 'blk.0.attn_v.weight' has ne = [32, 8, 1, 1], the model needs [32, 16, 1, 1]");
        }
    }
    free(d);
}

static void test_extra_tensor(void)
{
    /* an untied Llama whose output.weight is renamed reads as tied, with
     * one tensor too many */
    const char *ll = at("l2.gguf"), *m = at("m2.gguf");
    export_tiny(1, ll);
    mutate_at(ll, m, "output.weight", "outpXt.weight", 1); /* not blk.0.attn_output.weight */
    CHECK_ERR(load(m), LMC_EFORMAT, "m2.gguf: unexpected tensor 'outpXt.weight' (not part of a llama model");
}

int main(void)
{
    if (!test_tmpdir("ggufbad"))
        return 1;
    RUN(test_crafted);
    RUN(test_models);
    RUN(test_extra_tensor);
    lmc_rm_rf(test_dir);
    return test_summary();
}
