/* test_gguf.c: GGUF both ways. fp16/bf16/q8_0 conversions against their
 * definitions; export then import bit-exact in f32 (GPT-2 tied, Llama GQA
 * untied, whole and by ranges, the tokenizer file for file); f16, bf16 and
 * q8_0 within their rounding, with q8_0's f16 fallback; the file's layout
 * (version, alignment, offsets, keys and their types); llama.cpp's q/k
 * row permutation checked row by row; and bad input: every prefix of a
 * small file, and each header field, count, size, type and offset made
 * wrong, then model-level faults (architecture, missing, extra, misshapen
 * tensors, NaN, tokenizer kinds), each with its message. */
#include "lmc/gguf.h"
#include "model/gguf_internal.h"
#include "test.h"

#include <unistd.h>

/* ---------- conversions ---------- */

static void test_fp16(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = lmc_fp16_to_fp32((uint16_t)h);
        if (isnan(f))
            continue;
        bad += lmc_fp32_to_fp16(f) != h;
    }
    CHECK_MSG(bad == 0, "%d halves do not round-trip", bad);
    CHECK(lmc_fp32_to_fp16(65504.0f) == 0x7bff);
    CHECK(lmc_fp32_to_fp16(65519.0f) == 0x7bff); /* below the halfway point */
    CHECK(lmc_fp32_to_fp16(65520.0f) == 0x7c00); /* halfway, ties to even: infinity */
    CHECK(lmc_fp32_to_fp16(1.0f + 1.0f / 2048) == 0x3c00); /* tie to even (down) */
    CHECK(lmc_fp32_to_fp16(1.0f + 3.0f / 2048) == 0x3c02); /* tie to even (up) */
    CHECK(lmc_fp32_to_fp16(ldexpf(1.0f, -25)) == 0);       /* half the smallest subnormal: even */
    CHECK(lmc_fp32_to_fp16(ldexpf(3.0f, -25)) == 2);
    CHECK(lmc_fp32_to_fp16(-ldexpf(1023.75f, -24)) == 0x8400); /* rounds up into the normals */
    CHECK(isnan(lmc_fp16_to_fp32(lmc_fp32_to_fp16(NAN))));
    CHECK(lmc_fp32_to_bf16(1.0f) == 0x3f80);
    CHECK(lmc_fp32_to_bf16(1.0f + 1.0f / 256) == 0x3f80); /* tie to even */
    CHECK(lmc_fp32_to_bf16(1.0f + 3.0f / 256) == 0x3f82);
    CHECK((lmc_fp32_to_bf16(NAN) & 0x7fc0) == 0x7fc0);
}

static void test_q8_0(void)
{
    float x[64], y[64];
    uint8_t q[2 * LMC_Q8_0_BYTES];
    for (int i = 0; i < 64; i++)
        x[i] = i < 32 ? sinf((float)i) * 3.0f : 0.0f; /* second block all zero */
    x[5] = -3.5f;
    lmc_ggml_encode(LMC_GGML_Q8_0, x, 64, q);
    CHECK(lmc_ggml_bytes(LMC_GGML_Q8_0, 64) == 68);
    float d = lmc_fp16_to_fp32((uint16_t)(q[0] | q[1] << 8));
    CHECK(d == lmc_fp16_to_fp32(lmc_fp32_to_fp16(3.5f / 127)));
    CHECK((int8_t)q[2 + 5] == -127);
    lmc_ggml_decode(LMC_GGML_Q8_0, q, 0, 64, y);
    int ok = 1;
    for (int i = 0; i < 32; i++)
        ok &= fabsf(y[i] - x[i]) <= 0.51f * 3.5f / 127 + 1e-3f && y[i] == d * (float)(int8_t)q[2 + i];
    for (int i = 32; i < 64; i++)
        ok &= y[i] == 0.0f;
    CHECK(ok);
    lmc_ggml_decode(LMC_GGML_Q8_0, q, 32, 32, y); /* the second block alone */
    CHECK(y[0] == 0.0f && y[31] == 0.0f);
}

/* ---------- models ---------- */

typedef struct {
    lmc_model_config cfg;
    lmc_layout l;
    float *p;
} model;

enum { GPT2, LLAMA, MIXTRAL }; /* tiny()'s models: the third is a Llama whose layers have 4 experts, top 2 */

static void tiny(int llama, int vocab, model *m)
{
    CHECK_OK(lmc_config_preset(llama ? "llama-15m" : "d6", &m->cfg));
    lmc_model_config *c = &m->cfg;
    c->n_layer = 2, c->dim = 64, c->n_head = 4, c->n_kv_head = llama ? 2 : 4, c->ffn_dim = llama ? 40 : 256;
    c->vocab = vocab, c->max_seq = 24, c->tied = !llama;
    c->norm_eps = llama ? 1e-6f : 1e-5f, c->rope_theta = 5000.5f;
    if (llama == MIXTRAL)
        c->n_expert = 4, c->top_k = 2, c->moe_ffn = c->ffn_dim, c->router = LMC_ROUTER_SOFTMAX, c->aux_coef = 0;
    CHECK_OK(lmc_config_finish(c));
    CHECK_OK(lmc_layout_build(c, &m->l));
    m->p = lmc_alloc(m->l.total * sizeof(float), "test params");
    lmc_weights_init(c, &m->l, m->p, 7 + (uint64_t)llama);
    for (size_t i = 0; i < m->l.total; i++) /* norms and biases away from 1 and 0 too */
        m->p[i] += 0.01f * sinf((float)i);
    for (int layer = -1; layer < c->n_layer; layer++) /* padding stays zero */
        for (int k = 0; k < (layer < 0 ? LMC_T_GLOBAL_COUNT : LMC_T_LAYER_COUNT); k++) {
            const lmc_tensor_slot *s = lmc_layout_slot(&m->l, layer, k);
            if (s->offset == LMC_ABSENT)
                continue;
            size_t used = (layer < 0 && (k == LMC_T_WTE || k == LMC_T_HEAD) ? (size_t)c->vocab : s->rows) * s->cols;
            size_t end = (s->rows * s->cols + 15) / 16 * 16;
            memset(m->p + s->offset + used, 0, (end - used) * sizeof(float));
        }
}

static void drop(model *m)
{
    lmc_free(m->p);
    lmc_layout_free(&m->l);
}

static lmc_tokenizer *tokenizer(void)
{
    static const char *specials[] = {"<|endoftext|>", "<|pad|>"};
    lmc_tok_train_opts o = {.vocab_size = 300, .specials = specials, .n_specials = 2};
    lmc_tok_trainer *tr;
    lmc_tokenizer *t = NULL;
    CHECK_OK(lmc_tok_trainer_new(&o, &tr));
    const char *text = "The cat sat on the mat. The dog sat on the log. Hello world, it's 12:30! "
                       "caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 #include <stdio.h> ## ###  \n\n\tx";
    for (int i = 0; i < 20; i++)
        CHECK_OK(lmc_tok_trainer_feed(tr, text, strlen(text)));
    CHECK_OK(lmc_tok_trainer_finish(tr, &t));
    lmc_tok_trainer_free(tr);
    return t;
}

static const char *at(const char *name) { return test_path(name); }

static int same_config(const lmc_model_config *a, const lmc_model_config *b)
{
    return !strcmp(a->family, b->family) && a->n_layer == b->n_layer && a->n_head == b->n_head &&
           a->n_kv_head == b->n_kv_head && a->dim == b->dim && a->ffn_dim == b->ffn_dim && a->vocab == b->vocab &&
           a->max_seq == b->max_seq && a->norm == b->norm && a->pos == b->pos && a->mlp == b->mlp &&
           a->bias == b->bias && a->tied == b->tied && a->norm_eps == b->norm_eps &&
           (a->pos != LMC_POS_ROPE || a->rope_theta == b->rope_theta) && a->n_expert == b->n_expert &&
           a->top_k == b->top_k && a->moe_ffn == b->moe_ffn && a->n_shared == b->n_shared &&
           a->first_dense == b->first_dense && a->router == b->router && a->aux_coef == b->aux_coef;
}

static char *slurp(const char *path, size_t *n)
{
    char *d = NULL;
    *n = 0;
    CHECK_OK(lmc_read_file(path, &d, n));
    return d;
}

/* The tokenizer read back from the file saves to the same bytes. */
static void check_tokenizer(const char *gguf, const lmc_tokenizer *want)
{
    lmc_tokenizer *got = NULL;
    CHECK_OK(lmc_tok_load(gguf, &got));
    if (!got)
        return;
    CHECK_OK(lmc_tok_save(want, at("tok_a")));
    CHECK_OK(lmc_tok_save(got, at("tok_b")));
    size_t na, nb;
    char *a = slurp(at("tok_a/lmc-tokenizer.json"), &na), *b = slurp(at("tok_b/lmc-tokenizer.json"), &nb);
    CHECK(a && b && na == nb && !memcmp(a, b, na));
    free(a), free(b);
    lmc_tok_free(got);
}

static void check_file_layout(const char *path, const model *m, int ftype)
{
    lmc_gguf g;
    CHECK_OK(lmc_gguf_open(&g, path));
    CHECK(g.version == 3 && g.alignment == 32 && g.data_offset % 32 == 0);
    uint64_t end = 0;
    for (int i = 0; i < g.n_tensors; i++) {
        CHECK(g.t[i].offset % 32 == 0);
        uint64_t e = g.t[i].offset + (g.t[i].bytes + 31) / 32 * 32;
        end = e > end ? e : end;
    }
    CHECK(g.data_offset + end == g.map.size); /* every tensor padded, the last one too */
    const char *arch = strcmp(m->cfg.family, "gpt2") ? "llama" : "gpt2";
    lmc_gguf_str s = {0};
    long long v = -1;
    CHECK_OK(lmc_gguf_get_str(&g, "general.architecture", 1, &s));
    CHECK(s.n == strlen(arch) && !memcmp(s.s, arch, s.n));
    CHECK_OK(lmc_gguf_get_int(&g, "general.file_type", 1, 0, 100, &v));
    CHECK(v == ftype);
    char k[96];
    snprintf(k, sizeof k, "%s.context_length", arch);
    CHECK(lmc_gguf_find(&g, k) && lmc_gguf_find(&g, k)->type == LMC_GGUF_U32);
    snprintf(k, sizeof k, "%s.block_count", arch);
    CHECK_OK(lmc_gguf_get_int(&g, k, 1, 0, 100, &v));
    CHECK(v == m->cfg.n_layer);
    const lmc_gguf_kv *tok = lmc_gguf_find(&g, "tokenizer.ggml.tokens"), *ty = lmc_gguf_find(&g, "tokenizer.ggml.token_type");
    CHECK(tok && tok->type == LMC_GGUF_ARR && tok->arr_type == LMC_GGUF_STR && tok->n == (uint64_t)m->cfg.vocab);
    CHECK(ty && ty->arr_type == LMC_GGUF_I32 && ty->n == tok->n);
    CHECK(lmc_gguf_find(&g, "tokenizer.ggml.add_bos_token")->type == LMC_GGUF_BOOL);
    CHECK(lmc_gguf_tensor_find(&g, "output.weight") == NULL || !m->cfg.tied);
    lmc_gguf_close(&g);
}

/* A tiny model and a tokenizer exported as path, the file's layout
 * checked, and read back: the parameters loaded (NULL on failure). */
static float *export_load(int llama, int vocab, int ftype, const char *path, model *m, lmc_tokenizer **t,
                          lmc_model_config *c)
{
    tiny(llama, vocab, m);
    *t = tokenizer();
    CHECK_OK(lmc_gguf_export(path, "tiny", &m->cfg, &m->l, m->p, *t, ftype));
    check_file_layout(path, m, ftype);
    lmc_layout l;
    float *p = NULL;
    CHECK_OK(lmc_weights_load(path, c, &l, &p));
    if (p) {
        CHECK(l.total == m->l.total && same_config(c, &m->cfg));
        lmc_layout_free(&l);
    }
    return p;
}

static void roundtrip_f32(int llama, int vocab)
{
    model m;
    lmc_tokenizer *t;
    lmc_model_config c;
    lmc_layout l;
    const char *path = at(llama == MIXTRAL ? "mixtral.gguf" : llama ? "llama.gguf" : "gpt2.gguf");
    float *p = export_load(llama, vocab, LMC_GGUF_FTYPE_F32, path, &m, &t, &c);
    CHECK(p && !memcmp(p, m.p, m.l.total * sizeof(float)));
    lmc_free(p);
    size_t cuts[][2] = {{0, 0}, {3, 9000}, {m.l.total / 3, m.l.total / 2}, {m.l.total - 5, m.l.total}};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        size_t a = cuts[i][0], b = cuts[i][1];
        float *r = lmc_alloc((b - a + 1) * sizeof(float), "range");
        CHECK_OK(lmc_weights_load_range(path, &c, &l, a, b, r));
        CHECK_MSG(!memcmp(r, m.p + a, (b - a) * sizeof(float)), "range [%zu, %zu)", a, b);
        lmc_layout_free(&l);
        lmc_free(r);
    }
    check_tokenizer(path, t);
    lmc_tok_free(t);
    drop(&m);
}

static void test_roundtrip(void)
{
    roundtrip_f32(0, 300); /* the tokenizer's size */
    roundtrip_f32(1, 333); /* padded with [PAD] tokens */
    roundtrip_f32(MIXTRAL, 300);
}

/* A mixture of experts in llama.cpp's Mixtral layout: expert_count,
 * expert_used_count and feed_forward_length (each expert's width); the
 * router ffn_gate_inp (f32 whatever the type, as llama.cpp's converter
 * keeps it); every expert's gate, up and down rows in the stacked 3-D
 * tensors ffn_{gate,up}_exps ne = [C, F, E] and ffn_down_exps [F, C, E]. */
static void check_experts(int ftype)
{
    model m;
    tiny(MIXTRAL, 300, &m);
    lmc_tokenizer *t = tokenizer();
    const char *path = at("experts.gguf");
    CHECK_OK(lmc_gguf_export(path, "moe", &m.cfg, &m.l, m.p, t, ftype));
    lmc_gguf g;
    CHECK_OK(lmc_gguf_open(&g, path));
    long long v[3] = {0};
    CHECK_OK(lmc_gguf_get_int(&g, "llama.expert_count", 1, 0, 100, &v[0]));
    CHECK_OK(lmc_gguf_get_int(&g, "llama.expert_used_count", 1, 0, 100, &v[1]));
    CHECK_OK(lmc_gguf_get_int(&g, "llama.feed_forward_length", 1, 0, 100, &v[2]));
    CHECK(v[0] == 4 && v[1] == 2 && v[2] == 40);
    size_t C = 64, F = 40, E = 4, bad = 0;
    const lmc_gguf_tensor *inp = lmc_gguf_tensor_find(&g, "blk.1.ffn_gate_inp.weight");
    CHECK(inp && inp->type == LMC_GGML_F32 && inp->ne[0] == C && inp->ne[1] == E && inp->ne[2] == 1);
    CHECK(inp && !memcmp(inp->data, m.p + lmc_layout_slot(&m.l, 1, LMC_T_ROUTER_W)->offset, C * E * sizeof(float)));
    const char *names[] = {"blk.1.ffn_gate_exps.weight", "blk.1.ffn_up_exps.weight", "blk.1.ffn_down_exps.weight"};
    size_t fc = lmc_layout_slot(&m.l, 1, LMC_T_EXP_FC_W)->offset, pj = lmc_layout_slot(&m.l, 1, LMC_T_EXP_PROJ_W)->offset;
    for (int w = 0; w < 3; w++) {
        const lmc_gguf_tensor *x = lmc_gguf_tensor_find(&g, names[w]);
        size_t cols = w < 2 ? C : F, rows = w < 2 ? F : C;
        CHECK_MSG(x && x->ndim == 3 && x->ne[0] == cols && x->ne[1] == rows && x->ne[2] == E, "%s", names[w]);
        for (size_t e = 0; x && e < E; e++)
            for (size_t r = 0; r < rows; r++) {
                float got[64], want[64];
                const float *src = m.p + (w < 2 ? fc + ((2 * e + (size_t)w) * F + r) * C : pj + (e * C + r) * F);
                lmc_ggml_decode((lmc_ggml_type)x->type, x->data, (e * rows + r) * cols, cols, got);
                uint8_t enc[256];
                lmc_ggml_encode((lmc_ggml_type)x->type, src, cols, enc); /* the value the type holds */
                lmc_ggml_decode((lmc_ggml_type)x->type, enc, 0, cols, want);
                bad += memcmp(got, want, cols * sizeof(float)) != 0;
            }
    }
    CHECK_MSG(bad == 0, "%s: %zu expert rows out of place", lmc_gguf_ftype_name(ftype), bad);
    lmc_gguf_close(&g);
    lmc_tok_free(t);
    drop(&m);
}

/* What llama.cpp's llama architecture cannot express is refused, naming it. */
static void test_experts(void)
{
    check_experts(LMC_GGUF_FTYPE_F32);
    check_experts(LMC_GGUF_FTYPE_Q8_0); /* gate/up rows of 64: q8_0; down rows of 40: f16 */
    model m;
    tiny(MIXTRAL, 300, &m);
    lmc_tokenizer *t = tokenizer();
    const char *why[] = {"sigmoid", "n_shared_experts", "first_k_dense_replace"};
    for (int i = 0; i < 3; i++) {
        lmc_model_config c = m.cfg;
        lmc_layout l;
        c.router = i == 0 ? LMC_ROUTER_SIGMOID : LMC_ROUTER_SOFTMAX, c.n_shared = i == 1, c.first_dense = i == 2;
        CHECK_OK(lmc_layout_build(&c, &l));
        float *p = lmc_alloc(l.total * sizeof(float), "p");
        lmc_weights_init(&c, &l, p, 1);
        CHECK_ERR(lmc_gguf_export(at("refused.gguf"), "x", &c, &l, p, t, LMC_GGUF_FTYPE_F32), LMC_EUNSUPPORTED, why[i]);
        lmc_free(p);
        lmc_layout_free(&l);
    }
    lmc_tok_free(t);
    drop(&m);
}

/* llama.cpp keeps a head's rows as (i, j) pairs: file row 2i + j is HF row j * hs/2 + i. */
static void test_permutation(void)
{
    model m;
    tiny(1, 300, &m);
    lmc_tokenizer *t = tokenizer();
    const char *path = at("perm.gguf");
    CHECK_OK(lmc_gguf_export(path, "perm", &m.cfg, &m.l, m.p, t, LMC_GGUF_FTYPE_F32));
    lmc_gguf g;
    CHECK_OK(lmc_gguf_open(&g, path));
    const lmc_gguf_tensor *q = lmc_gguf_tensor_find(&g, "blk.1.attn_q.weight"), *k = lmc_gguf_tensor_find(&g, "blk.1.attn_k.weight");
    CHECK(q && k && q->ne[0] == 64 && q->ne[1] == 64 && k->ne[1] == 32);
    const lmc_tensor_slot *qkv = lmc_layout_slot(&m.l, 1, LMC_T_QKV_W);
    size_t hs = 16, C = 64, bad = 0;
    for (int which = 0; which < 2 && q && k; which++) {
        const lmc_gguf_tensor *tt = which ? k : q;
        size_t heads = which ? 2 : 4, base = qkv->offset + (which ? 64 * C : 0);
        for (size_t h = 0; h < heads; h++)
            for (size_t i = 0; i < hs / 2; i++)
                for (size_t j = 0; j < 2; j++) {
                    float row[64];
                    lmc_ggml_decode(LMC_GGML_F32, tt->data, (h * hs + 2 * i + j) * C, C, row);
                    bad += memcmp(row, m.p + base + (h * hs + j * hs / 2 + i) * C, sizeof row) != 0;
                }
    }
    CHECK_MSG(bad == 0, "%zu rows out of place", bad);
    const lmc_gguf_tensor *v = lmc_gguf_tensor_find(&g, "blk.1.attn_v.weight");
    CHECK(v && !memcmp(v->data, m.p + qkv->offset + 96 * C, 32 * C * sizeof(float))); /* v is not permuted */
    lmc_gguf_close(&g);
    lmc_tok_free(t);
    drop(&m);
}

static float bf16_back(float x)
{
    uint32_t u = (uint32_t)lmc_fp32_to_bf16(x) << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Each loaded value is its original stored in the tensor's type, read back. */
static void check_types(int llama, int ftype)
{
    model m;
    lmc_tokenizer *t;
    lmc_model_config c;
    const char *path = at("typed.gguf");
    float *p = export_load(llama, 300, ftype, path, &m, &t, &c);
    lmc_gguf g;
    CHECK_OK(lmc_gguf_open(&g, path));
    int n_q8 = 0, n_f16 = 0, bad = 0;
    for (int u = 0; p && u < lmc_layout_num_units(&m.l); u++) {
        lmc_gguf_piece pc[LMC_GGUF_UNIT_MAX_PIECES];
        int n = lmc_gguf_unit_pieces(&m.cfg, &m.l, u, pc);
        for (int i = 0; i < n; i++) {
            const lmc_gguf_tensor *tt = lmc_gguf_tensor_find(&g, pc[i].name);
            size_t len = pc[i].ndim == 2 ? pc[i].cols : pc[i].rows, numel = pc[i].rows * pc[i].cols;
            int want_f32 = pc[i].ndim == 1 || !strcmp(pc[i].name, "position_embd.weight");
            lmc_ggml_type want = want_f32 ? LMC_GGML_F32 : ftype == LMC_GGUF_FTYPE_BF16 ? LMC_GGML_BF16
                                 : ftype == LMC_GGUF_FTYPE_F16 || len % 32 ? LMC_GGML_F16 : LMC_GGML_Q8_0;
            CHECK_MSG(tt && tt->type == want, "%s: type %u, wanted %d", pc[i].name, tt ? tt->type : 99, want);
            n_q8 += want == LMC_GGML_Q8_0;
            n_f16 += want == LMC_GGML_F16;
            for (size_t e = 0; e < numel; e += len) { /* a row at a time; q8_0 blocks lie within rows */
                float blk[64], ref[64];
                for (size_t b = 0; b < len; b += 32) {
                    size_t w = len - b < 32 ? len - b : 32;
                    const float *x = m.p + pc[i].at + e + b, *y = p + pc[i].at + e + b;
                    if (want == LMC_GGML_Q8_0) {
                        uint8_t qb[LMC_Q8_0_BYTES];
                        lmc_ggml_encode(LMC_GGML_Q8_0, x, 32, qb);
                        lmc_ggml_decode(LMC_GGML_Q8_0, qb, 0, 32, ref);
                        float amax = 0;
                        for (int j = 0; j < 32; j++)
                            amax = fmaxf(amax, fabsf(x[j]));
                        for (int j = 0; j < 32; j++)
                            bad += y[j] != ref[j] || fabsf(y[j] - x[j]) > 0.51f * amax / 127 + amax * 1e-3f;
                        continue;
                    }
                    for (size_t j = 0; j < w; j++)
                        blk[j] = want == LMC_GGML_F32   ? x[j]
                                 : want == LMC_GGML_F16 ? lmc_fp16_to_fp32(lmc_fp32_to_fp16(x[j]))
                                                        : bf16_back(x[j]);
                    bad += memcmp(blk, y, w * sizeof(float)) != 0;
                }
            }
        }
    }
    CHECK_MSG(bad == 0, "%d rows or blocks differ", bad);
    CHECK(ftype != LMC_GGUF_FTYPE_Q8_0 || (n_q8 > 0 && (!llama || n_f16 > 0))); /* Llama's ffn 40: f16 fallback */
    lmc_gguf_close(&g);
    lmc_free(p);
    lmc_tok_free(t);
    drop(&m);
}

static void test_types(void)
{
    for (int llama = 0; llama < 2; llama++) {
        check_types(llama, LMC_GGUF_FTYPE_F16);
        check_types(llama, LMC_GGUF_FTYPE_BF16);
        check_types(llama, LMC_GGUF_FTYPE_Q8_0);
    }
}

int main(void)
{
    if (!test_tmpdir("gguf"))
        return 1;
    RUN(test_fp16);
    RUN(test_q8_0);
    RUN(test_roundtrip);
    RUN(test_permutation);
    RUN(test_types);
    RUN(test_experts);
    lmc_rm_rf(test_dir);
    return test_summary();
}
