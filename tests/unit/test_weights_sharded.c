/* test_weights_sharded.c: Hugging Face's sharded weight layout: the
 * streaming writer, cutting units into files, the index, loading whole or
 * one range, and bad input. With LMC_SHARDED_OUT=dir it also leaves tiny
 * GPT-2 and Llama saves there (sharded + single.safetensors) for
 * tests/oracle/test_sharded_weights.py. */
#include "lmc/model.h"
#include "lmc/safetensors.h"
#include "test.h"

#include <unistd.h>

typedef struct {
    lmc_model_config cfg;
    lmc_layout l;
    float *p;
} model;

/* GPT-2: tied, learned positions, biases. Llama: GQA, untied, no biases.
 * 3 layers: 5 units, so 2 and 3 files do not divide them. */
static void tiny(int llama, model *m)
{
    CHECK_OK(lmc_config_preset(llama ? "llama-15m" : "d6", &m->cfg));
    lmc_model_config *c = &m->cfg;
    c->n_layer = 3, c->dim = 32, c->n_head = 4, c->n_kv_head = llama ? 2 : 4, c->ffn_dim = llama ? 40 : 128;
    c->vocab = 101, c->max_seq = 24, c->tied = !llama;
    CHECK_OK(lmc_config_finish(c));
    CHECK_OK(lmc_layout_build(c, &m->l));
    m->p = lmc_alloc(m->l.total * sizeof(float), "test params");
    lmc_rng r;
    lmc_rng_seed(&r, 11 + (uint64_t)llama);
    for (int layer = -1; layer < c->n_layer; layer++) /* random where tensors are; padding stays 0 */
        for (int k = 0; k < (layer < 0 ? LMC_T_GLOBAL_COUNT : LMC_T_LAYER_COUNT); k++) {
            const lmc_tensor_slot *s = lmc_layout_slot(&m->l, layer, k);
            size_t rows = layer < 0 && (k == LMC_T_WTE || k == LMC_T_HEAD) ? (size_t)c->vocab : s->rows;
            for (size_t i = 0; s->offset != LMC_ABSENT && i < rows * s->cols; i++)
                m->p[s->offset + i] = lmc_rng_normal(&r);
        }
}

static void drop(model *m)
{
    lmc_free(m->p);
    lmc_layout_free(&m->l);
}

static const char *at(const char *name) { return test_path(name); }

/* Loads path whole and compares with m bit for bit. */
static void check_loads(const char *path, const model *m)
{
    lmc_model_config c;
    lmc_layout l;
    float *p = NULL;
    CHECK_OK(lmc_weights_load(path, &c, &l, &p));
    if (!p)
        return;
    CHECK_MSG(l.total == m->l.total && !memcmp(p, m->p, l.total * sizeof(float)), "%s differs", path);
    CHECK(c.n_layer == m->cfg.n_layer && c.tied == m->cfg.tied && c.n_kv_head == m->cfg.n_kv_head);
    lmc_free(p);
    lmc_layout_free(&l);
}

static size_t unit_floats(const lmc_layout *l, int u, size_t *begin)
{
    size_t end;
    lmc_layout_unit(l, u, begin, &end);
    return end - *begin;
}

/* Units [ub, ue) of m into path, each fed from a copy of just that unit
 * (as a ZeRO-3 rank would hold it). */
static void stream_units(const char *path, const model *m, int ub, int ue)
{
    lmc_weights_writer *w = NULL;
    CHECK_OK(lmc_weights_writer_open(&w, path, &m->cfg, &m->l, ub, ue));
    for (int u = ub; w && u < ue; u++) {
        size_t b, len = unit_floats(&m->l, u, &b);
        float *copy = malloc(len * sizeof(float));
        memcpy(copy, m->p + b, len * sizeof(float));
        CHECK_OK(lmc_weights_writer_unit(w, u, copy));
        free(copy);
    }
    if (w)
        CHECK_OK(lmc_weights_writer_close(w));
}

/* The files of a split, each streamed unit by unit, then the index. */
static void write_by_units(const char *dir, const model *m, int nfiles)
{
    int uf[16];
    int n = lmc_weights_split(&m->l, nfiles, uf);
    for (int k = 0; k < n; k++) {
        char name[64];
        lmc_weights_shard_name(k, n, name, sizeof name);
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        stream_units(path, m, uf[k], uf[k + 1]);
    }
    CHECK_OK(lmc_weights_write_index(dir, &m->cfg, &m->l, n, uf));
}

static int count_shards(const char *dir, int n)
{
    int found = 0;
    for (int k = 0; k < n + 2; k++) {
        char name[64], path[600];
        lmc_weights_shard_name(k, n, name, sizeof name);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        found += lmc_path_exists(path);
    }
    return found;
}

static void test_shard_names_and_split(void)
{
    char name[64];
    lmc_weights_shard_name(0, 3, name, sizeof name);
    CHECK(!strcmp(name, "model-00001-of-00003.safetensors"));
    lmc_weights_shard_name(11, 12, name, sizeof name);
    CHECK(!strcmp(name, "model-00012-of-00012.safetensors"));
    model m;
    tiny(0, &m);
    int U = lmc_layout_num_units(&m.l), uf[16];
    for (int want = -1; want <= U + 3; want++) {
        int n = lmc_weights_split(&m.l, want, uf);
        CHECK(n == (want < 1 ? 1 : want > U ? U : want));
        CHECK(uf[0] == 0 && uf[n] == U);
        for (int k = 0; k < n; k++)
            CHECK(uf[k] < uf[k + 1]);
        for (int k = n; k <= want; k++)
            CHECK(uf[k] == U);
    }
    size_t total = m.l.total * sizeof(float), biggest = 0, b;
    for (int u = 0; u < U; u++)
        if (unit_floats(&m.l, u, &b) * sizeof(float) > biggest)
            biggest = unit_floats(&m.l, u, &b) * sizeof(float);
    CHECK(lmc_weights_files_for(&m.l, 0) == 1);
    CHECK(lmc_weights_files_for(&m.l, total) == 1);
    CHECK(lmc_weights_files_for(&m.l, total - 1) == 2);
    CHECK(lmc_weights_files_for(&m.l, 1) == U); /* every unit over the limit: one file each */
    for (size_t max = biggest; max <= total; max += total / 7) { /* the split for files_for fits the limit */
        int n = lmc_weights_split(&m.l, lmc_weights_files_for(&m.l, max), uf);
        for (int k = 0; k < n; k++) {
            size_t bytes = 0;
            for (int u = uf[k]; u < uf[k + 1]; u++)
                bytes += unit_floats(&m.l, u, &b) * sizeof(float);
            CHECK_MSG(bytes <= max, "file %d of %d holds %zu bytes > %zu", k, n, bytes, max);
        }
    }
    drop(&m);
}

static void test_writer_matches_save(void)
{
    for (int llama = 0; llama < 2; llama++) {
        model m;
        tiny(llama, &m);
        CHECK_OK(lmc_weights_save(at("whole.safetensors"), &m.cfg, &m.l, m.p));
        stream_units(at("streamed.safetensors"), &m, 0, lmc_layout_num_units(&m.l));
        char *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        CHECK_OK(lmc_read_file(at("whole.safetensors"), &a, &na));
        CHECK_OK(lmc_read_file(at("streamed.safetensors"), &b, &nb));
        CHECK(na > 0 && na == nb && !memcmp(a, b, na));
        free(a);
        free(b);
        check_loads(at("streamed.safetensors"), &m);
        drop(&m);
    }
}

/* from's tensors into to, reversed or not, with or without lmc_config. */
static void rewrite(const char *from, const char *to, int reverse, int keep_config)
{
    lmc_st_file f;
    CHECK_OK(lmc_st_open(&f, from));
    lmc_st_entry *e = calloc((size_t)f.n + 1, sizeof *e);
    for (int i = 0; i < f.n; i++) {
        const lmc_st_tensor *t = &f.t[reverse ? f.n - 1 - i : i];
        e[i] = (lmc_st_entry){t->name, "F32", t->ndim, {0}, f.data + t->begin};
        memcpy(e[i].shape, t->shape, sizeof e[i].shape);
    }
    const char *meta[] = {"lmc_config", lmc_st_meta(&f, "lmc_config"), NULL};
    CHECK_OK(lmc_st_write(to, e, f.n, keep_config ? meta : NULL));
    lmc_st_close(&f);
    free(e);
}

/* The reader looks tensors up by name: files whose tensors come in another
 * order (lmc wrote globals first before units; other tools sort by name)
 * load the same. */
static void test_any_tensor_order(void)
{
    model m;
    tiny(0, &m);
    CHECK_OK(lmc_weights_save(at("order.safetensors"), &m.cfg, &m.l, m.p));
    rewrite(at("order.safetensors"), at("reversed.safetensors"), 1, 1);
    check_loads(at("reversed.safetensors"), &m);
    drop(&m);
}

static void test_writer_misuse(void)
{
    model m;
    tiny(0, &m);
    lmc_weights_writer *w = NULL;
    const char *path = at("misuse.safetensors");
    CHECK_ERR(lmc_weights_writer_open(&w, path, &m.cfg, &m.l, 2, 2), LMC_EINVAL, "units [2, 2)");
    CHECK_ERR(lmc_weights_writer_open(&w, path, &m.cfg, &m.l, 0, 9), LMC_EINVAL, "misuse.safetensors");
    CHECK_OK(lmc_weights_writer_open(&w, path, &m.cfg, &m.l, 1, 4));
    size_t b;
    unit_floats(&m.l, 2, &b);
    CHECK_ERR(lmc_weights_writer_unit(w, 2, m.p + b), LMC_EINVAL, "got unit 2, expected 1");
    unit_floats(&m.l, 1, &b);
    CHECK_OK(lmc_weights_writer_unit(w, 1, m.p + b));
    CHECK_ERR(lmc_weights_writer_close(w), LMC_EINVAL, "unit 2 of units [1, 4) not written");
    CHECK(!lmc_path_exists(path)); /* nothing half-written is left, not even the temp file */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    CHECK(!lmc_path_exists(tmp));
    CHECK_OK(lmc_weights_writer_open(&w, path, &m.cfg, &m.l, 0, 1));
    CHECK(lmc_path_exists(tmp));
    lmc_weights_writer_abort(w);
    CHECK(!lmc_path_exists(tmp) && !lmc_path_exists(path));
    drop(&m);
}

static void test_sharded_round_trip(void)
{
    for (int llama = 0; llama < 2; llama++) {
        model m;
        tiny(llama, &m);
        int counts[] = {1, 2, 3, 5, 9};
        for (size_t i = 0; i < sizeof counts / sizeof *counts; i++) {
            char dir[80];
            snprintf(dir, sizeof dir, "rt%d_%d", llama, counts[i]);
            write_by_units(at(dir), &m, counts[i]);
            int n = counts[i] > 5 ? 5 : counts[i];
            CHECK_MSG(count_shards(at(dir), n) == n, "%s: %d shard files", dir, n);
            check_loads(at(dir), &m);
        }
        /* save_sharded for a size limit, loaded through the index's own path */
        size_t limit = m.l.total * sizeof(float) / 3;
        CHECK_OK(lmc_weights_save_sharded(at("limit"), &m.cfg, &m.l, m.p, limit));
        int n = lmc_weights_files_for(&m.l, limit);
        CHECK(n >= 3 && count_shards(at("limit"), n) == n);
        check_loads(at("limit/model.safetensors.index.json"), &m);
        check_loads(at("limit"), &m);
        CHECK_OK(lmc_rm_rf(at("limit")));
        drop(&m);
    }
}

/* A folder holds one model: each save removes what the other kind left. */
static void test_saves_replace_each_other(void)
{
    model m;
    tiny(1, &m);
    size_t small = m.l.total, large = m.l.total * 2; /* a quarter and half of the bytes */
    int ns = lmc_weights_files_for(&m.l, small), nl = lmc_weights_files_for(&m.l, large);
    CHECK(ns > nl && nl > 1);
    CHECK_OK(lmc_weights_save_sharded(at("swap"), &m.cfg, &m.l, m.p, small));
    CHECK(count_shards(at("swap"), ns) == ns);
    CHECK_OK(lmc_weights_save_sharded(at("swap"), &m.cfg, &m.l, m.p, large));
    CHECK(count_shards(at("swap"), ns) == 0 && count_shards(at("swap"), nl) == nl);
    check_loads(at("swap"), &m);
    CHECK_OK(lmc_weights_save(at("swap"), &m.cfg, &m.l, m.p));
    CHECK(count_shards(at("swap"), nl) == 0 && !lmc_path_exists(at("swap/model.safetensors.index.json")));
    check_loads(at("swap"), &m);
    CHECK_OK(lmc_weights_save_sharded(at("swap"), &m.cfg, &m.l, m.p, small));
    CHECK(!lmc_path_exists(at("swap/model.safetensors")));
    check_loads(at("swap"), &m);
    CHECK_OK(lmc_rm_rf(at("swap")));
    drop(&m);
}

static void check_range(const char *path, const model *m, size_t begin, size_t end)
{
    lmc_model_config c;
    lmc_layout l = {0};
    float *dst = malloc((end - begin + 1) * sizeof(float));
    CHECK_OK(lmc_weights_load_range(path, &c, &l, begin, end, dst));
    CHECK_MSG(l.total == m->l.total && !memcmp(dst, m->p + begin, (end - begin) * sizeof(float)),
              "%s: range [%zu, %zu) differs", path, begin, end);
    lmc_layout_free(&l);
    free(dst);
}

static void test_load_range(void)
{
    for (int llama = 0; llama < 2; llama++) {
        model m;
        tiny(llama, &m);
        write_by_units(at("range"), &m, 3);
        CHECK_OK(lmc_weights_save(at("range1.safetensors"), &m.cfg, &m.l, m.p));
        const lmc_tensor_slot *qkv = lmc_layout_slot(&m.l, 1, LMC_T_QKV_W); /* transposed in GPT-2 files */
        size_t u0, u2, e, total = m.l.total;
        lmc_layout_unit(&m.l, 0, &u0, &e);
        lmc_layout_unit(&m.l, 2, &u2, &e);
        size_t r[][2] = {{0, 0}, {7, 7}, {5, 50}, {qkv->offset + 37, qkv->offset + 300},
                         {qkv->offset + 1000, qkv->offset + 1100}, /* Llama: q_proj into k_proj */
                         {u0 + 100, u2 + 33}, {0, total}, {total - 1, total}, {total, total}};
        for (size_t i = 0; i < sizeof r / sizeof *r; i++) {
            check_range(at("range"), &m, r[i][0], r[i][1]);
            check_range(at("range1.safetensors"), &m, r[i][0], r[i][1]);
        }
        lmc_model_config c;
        lmc_layout l;
        float x;
        CHECK_ERR(lmc_weights_load_range(at("range"), &c, &l, 3, total + 1, &x), LMC_ERANGE,
                  "model.safetensors.index.json: elements [3,");
        CHECK_OK(lmc_weights_load_range(at("range"), &c, &l, 0, 0, NULL)); /* the config alone */
        CHECK(c.n_layer == 3 && l.total == total);
        lmc_layout_free(&l);
        CHECK_OK(lmc_rm_rf(at("range")));
        drop(&m);
    }
}

/* Only the shards that hold the range are opened: the others may be gone. */
static void test_range_touches_only_its_files(void)
{
    model m;
    tiny(1, &m);
    write_by_units(at("part"), &m, 5); /* one unit per file */
    CHECK(unlink(at("part/model-00005-of-00005.safetensors")) == 0);
    size_t b, e;
    lmc_layout_unit(&m.l, 1, &b, &e);
    check_range(at("part"), &m, b + 3, e);
    lmc_model_config c;
    lmc_layout l;
    float *p;
    CHECK_ERR(lmc_weights_load(at("part"), &c, &l, &p), LMC_EIO, "model-00005-of-00005.safetensors', which does not");
    CHECK_OK(lmc_rm_rf(at("part")));
    drop(&m);
}

/* ---------- bad input ---------- */

static char *index_text(const char *dir)
{
    char path[600], *t = NULL;
    size_t n;
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    CHECK_OK(lmc_read_file(path, &t, &n));
    return t;
}

/* text with the first `from` replaced by `to` */
static char *replaced(const char *text, const char *from, const char *to)
{
    const char *hit = strstr(text, from);
    CHECK_MSG(hit != NULL, "'%s' not in the index", from);
    if (!hit)
        return lmc_strdup(text);
    size_t n = strlen(text) + strlen(to) + 1, pre = (size_t)(hit - text);
    char *out = malloc(n);
    snprintf(out, n, "%.*s%s%s", (int)pre, text, to, hit + strlen(from));
    return out;
}

static void expect_bad(const char *dir, const char *index, lmc_status code, const char *needle)
{
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    CHECK_OK(lmc_write_file_atomic(path, index, strlen(index)));
    lmc_model_config c;
    lmc_layout l;
    float *p = (float *)1;
    lmc_status s = lmc_weights_load(dir, &c, &l, &p);
    CHECK_MSG(s == code && strstr(lmc_errmsg(), needle) && strstr(lmc_errmsg(), "model.safetensors.index.json") &&
                  p == NULL,
              "index variant wanted %s containing '%s', got %s: %s", lmc_status_name(code), needle,
              lmc_status_name(s), s ? lmc_errmsg() : "");
}

static void test_bad_index(void)
{
    model m;
    tiny(0, &m);
    const char *dir = at("bad");
    write_by_units(dir, &m, 3);
    char *good = index_text(dir), *t;
#define WPE "\"transformer.wpe.weight\": "
#define F1 "\"model-00001-of-00003.safetensors\""
    struct { const char *from, *to; lmc_status code; const char *needle; } cases[] = {
        {"{", "[", LMC_EFORMAT, "malformed JSON"},
        {"\"weight_map\"", "\"weights\"", LMC_EFORMAT, "field 'weight_map' missing"},
        {WPE F1, WPE "\"model-00009-of-00003.safetensors\"", LMC_EIO,
         "weight_map puts tensor 'transformer.wpe.weight' in 'model-00009-of-00003.safetensors', which does not exist"},
        {WPE F1, "\"transformer.wpx\": " F1, LMC_EFORMAT, "tensor 'transformer.wpe.weight' is in no file"},
        {WPE F1, WPE "\"../model-00001-of-00003.safetensors\"", LMC_EFORMAT,
         "'../model-00001-of-00003.safetensors', outside the folder"},
        {WPE F1, WPE "\"/etc/passwd\"", LMC_EFORMAT, "'/etc/passwd', an absolute path"},
        {WPE F1, WPE "\"a/../../x\"", LMC_EFORMAT, "'a/../../x', outside the folder"},
        {WPE F1, WPE "\"model-00002-of-00003.safetensors\"", LMC_EFORMAT,
         "in 'model-00002-of-00003.safetensors', which does not hold it"},
        {WPE F1, WPE "3", LMC_EFORMAT, "weight_map['transformer.wpe.weight'] is not a file"},
        {WPE F1, "\"transformer.extra\": " F1 ", " WPE F1, LMC_EFORMAT,
         "unexpected tensor 'transformer.extra' in weight_map"},
        {WPE F1, "\"transformer.wte.weight\": " F1 ", " WPE F1, LMC_EFORMAT,
         "tensor 'transformer.wte.weight' appears twice"},
        {"\"total_size\": ", "\"total_size\": -", LMC_EFORMAT, "'metadata.total_size' must be a non-negative"},
        {"\"weight_map\": {", "\"weight_map\": {}, \"x\": {", LMC_EFORMAT, "weight_map is empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        t = replaced(good, cases[i].from, cases[i].to);
        expect_bad(dir, t, cases[i].code, cases[i].needle);
        free(t);
    }
    /* a shape mismatch, in a shard of its own */
    lmc_st_entry e = {"transformer.wpe.weight", "F32", 2, {3, 3}, m.p};
    CHECK_OK(lmc_st_write(at("bad/odd.safetensors"), &e, 1, NULL));
    t = replaced(good, WPE F1, WPE "\"odd.safetensors\"");
    lmc_model_config c;
    lmc_layout l;
    float *p;
    CHECK_OK(lmc_write_file_atomic(at("bad/model.safetensors.index.json"), t, strlen(t)));
    CHECK_ERR(lmc_weights_load(dir, &c, &l, &p), LMC_EFORMAT,
              "odd.safetensors: tensor 'transformer.wpe.weight' has shape (3, 3), the model needs (24, 32)");
    free(t);
    /* nothing was lost: the good index loads the same shards again */
    CHECK_OK(lmc_write_file_atomic(at("bad/model.safetensors.index.json"), good, strlen(good)));
    check_loads(dir, &m);
    free(good);
    CHECK_OK(lmc_rm_rf(dir));
    drop(&m);
}

/* Shards without lmc_config metadata (as transformers writes them): the
 * config comes from config.json beside the index, else GPT-2's shapes. */
static void test_config_beside_index(void)
{
    model m;
    tiny(0, &m);
    const char *dir = at("hf");
    write_by_units(dir, &m, 3);
    for (int k = 0; k < 3; k++) {
        char name[64], path[600];
        lmc_weights_shard_name(k, 3, name, sizeof name);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        rewrite(path, path, 0, 0);
    }
    check_loads(dir, &m);
    CHECK(unlink(at("hf/config.json")) == 0);
    lmc_model_config c;
    lmc_layout l;
    float *p = NULL;
    CHECK_OK(lmc_weights_load(dir, &c, &l, &p)); /* 64-dim heads guessed: one head of 32 */
    CHECK(c.n_layer == 3 && c.dim == 32 && c.vocab == 101 && c.max_seq == 24 && c.n_head == 1);
    CHECK(p && !memcmp(p, m.p, m.l.total * sizeof(float)));
    lmc_free(p);
    lmc_layout_free(&l);
    CHECK_OK(lmc_rm_rf(dir));
    drop(&m);
}

/* For tests/oracle/test_sharded_weights.py: each model sharded for a third
 * of its bytes and whole in single.safetensors. */
static void test_write_for_oracle(void)
{
    const char *out = getenv("LMC_SHARDED_OUT");
    for (int llama = 0; llama < 2; llama++) {
        model m;
        tiny(llama, &m);
        char dir[600], single[640];
        snprintf(dir, sizeof dir, "%s/%s", out, llama ? "llama" : "gpt2");
        snprintf(single, sizeof single, "%s/single.safetensors", dir);
        CHECK_OK(lmc_weights_save_sharded(dir, &m.cfg, &m.l, m.p, m.l.total * sizeof(float) / 3));
        CHECK_OK(lmc_weights_save(single, &m.cfg, &m.l, m.p));
        drop(&m);
    }
}

int main(void)
{
    if (!test_tmpdir("sharded"))
        return 1;
    RUN(test_shard_names_and_split);
    RUN(test_writer_matches_save);
    RUN(test_any_tensor_order);
    RUN(test_writer_misuse);
    RUN(test_sharded_round_trip);
    RUN(test_saves_replace_each_other);
    RUN(test_load_range);
    RUN(test_range_touches_only_its_files);
    RUN(test_bad_index);
    RUN(test_config_beside_index);
    if (getenv("LMC_SHARDED_OUT"))
        RUN(test_write_for_oracle);
    CHECK_OK(lmc_rm_rf(test_dir));
    return test_summary();
}
