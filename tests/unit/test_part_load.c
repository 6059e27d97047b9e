/* test_part_load.c: a rank reading only its part of the model. For
 * tensor-parallel slices (GPT-2's transposed Conv1D weights, Llama's
 * grouped and replicated kv heads, vocabulary rows), pipeline stages
 * (interleaved chunks), experts (--ep) and ZeRO-3 shards of those, reading
 * the part's runs from a single file, a sharded folder and a checkpoint
 * (AdamW's m and v too, from one file or per-rank shards) gives the same
 * bits as reading the whole model and cutting the part from it
 * (lmc_layout_tp_part, the cut every tp/pp/ep rank made before); the fresh
 * init's part equals the whole init's, cut. */
#include "lmc/model.h"
#include "lmc/safetensors.h"
#include "test.h"
#include "dist/comm.h"
#include "train/checkpoint.h"

typedef struct {
    lmc_model_config cfg;
    lmc_layout l;
    float *p, *m, *v;
} model;

static float *random_buffer(const model *x, uint64_t seed)
{
    const lmc_model_config *c = &x->cfg;
    float *p = lmc_alloc(x->l.total * sizeof(float), "test params");
    lmc_rng r;
    lmc_rng_seed(&r, seed);
    for (int layer = -1; layer < c->n_layer; layer++) /* random where tensors are; padding stays 0 */
        for (int k = 0; k < (layer < 0 ? LMC_T_GLOBAL_COUNT : LMC_T_LAYER_COUNT); k++) {
            const lmc_tensor_slot *s = lmc_layout_slot(&x->l, layer, k);
            size_t rows = layer < 0 && (k == LMC_T_WTE || k == LMC_T_HEAD) ? (size_t)c->vocab : s->rows;
            if (s->offset == LMC_ABSENT || (layer < 0 && k == LMC_T_HEAD && c->tied))
                continue;
            for (size_t i = 0; i < rows * s->cols; i++)
                p[s->offset + i] = lmc_rng_normal(&r);
        }
    return p;
}

/* 0: GPT-2 (tied, biases, transposed Conv1D), 1: Llama (4 heads, 2 kv
 * heads), 2: a mixture of experts (8 experts, a shared one). 4 layers. */
static void tiny(int kind, model *x)
{
    static const char *moe = "{\"model_type\": \"mixtral\", \"num_hidden_layers\": 4, \"num_attention_heads\": 4, "
                             "\"num_key_value_heads\": 2, \"hidden_size\": 32, \"intermediate_size\": 24, "
                             "\"max_position_embeddings\": 32, \"vocab_size\": 64, \"num_local_experts\": 8, "
                             "\"num_experts_per_tok\": 2, \"n_shared_experts\": 1}";
    lmc_model_config *c = &x->cfg;
    if (kind == 2) {
        CHECK_OK(lmc_config_from_hf_text(moe, strlen(moe), "moe", c));
    } else {
        CHECK_OK(lmc_config_preset(kind ? "llama-15m" : "d6", c));
        c->n_layer = 4, c->dim = 32, c->n_head = 4, c->n_kv_head = kind ? 2 : 4, c->ffn_dim = kind ? 40 : 128;
        c->vocab = 100, c->max_seq = 24, c->tied = !kind;
        CHECK_OK(lmc_config_finish(c));
    }
    CHECK_OK(lmc_layout_build(c, &x->l));
    x->p = random_buffer(x, 11 + (uint64_t)kind);
    x->m = random_buffer(x, 21 + (uint64_t)kind);
    x->v = random_buffer(x, 31 + (uint64_t)kind);
}

static void drop(model *x)
{
    lmc_free(x->p), lmc_free(x->m), lmc_free(x->v);
    lmc_layout_free(&x->l);
}

/* The part's elements inside windows cut from whole (lmc_layout_tp_part,
 * then each window's floats to its place): what a rank held before. */
static float *cut(const model *x, const float *whole, const lmc_layout *t, int r, const lmc_part_map *m,
                  const lmc_part_window *w, int nw)
{
    float *part, *dst = lmc_alloc((m->floats ? m->floats : 1) * sizeof(float), "expected");
    CHECK_OK(lmc_layout_tp_part(&x->cfg, t, r, whole, &part));
    if (!w)
        memcpy(dst, part, t->total * sizeof(float));
    for (int i = 0; w && i < nw; i++)
        memcpy(dst + w[i].at, part + w[i].begin, (w[i].end - w[i].begin) * sizeof(float));
    lmc_free(part);
    return dst;
}

/* ZeRO-3's windows: the part cut into three pieces, this rank's shard of
 * each (the middle third), packed. */
static int shard_windows(const lmc_layout *t, lmc_part_window *w)
{
    size_t at = 0, cuts[4] = {0, t->total / 3, 2 * t->total / 3, t->total};
    for (int i = 0; i < 3; i++) {
        size_t n = cuts[i + 1] - cuts[i], b = cuts[i] + n / 3, e = cuts[i] + 2 * n / 3;
        w[i] = (lmc_part_window){b, e, at};
        at += e - b;
    }
    return 3;
}

static void same(const float *got, const float *want, size_t n, const char *what, const char *where)
{
    CHECK_MSG(!memcmp(got, want, n * sizeof(float)), "%s: %s differs from the whole model's cut", what, where);
}

/* Every source of rank r's part (layout t; shards: under ZeRO-3) against
 * the whole model's cut. */
static void check_part(const model *x, const lmc_layout *t, int r, int shards, const char *what)
{
    lmc_part_window w[3];
    int nw = shards ? shard_windows(t, w) : 0;
    lmc_part_map m;
    CHECK_OK(lmc_part_map_build(&x->cfg, t, r, shards ? w : NULL, nw, &m));
    size_t n = m.floats;
    float *got = lmc_alloc((n ? n : 1) * sizeof(float), "got"), *gv = lmc_alloc((n ? n : 1) * sizeof(float), "v");
    float *want = cut(x, x->p, t, r, &m, shards ? w : NULL, nw);
    const char *files[] = {test_path("model.safetensors"), test_path("sharded"), test_path("ckpt/step_00000007"),
                           test_path("ckpt4/step_00000007")};
    for (int f = 0; f < 4; f++) {
        lmc_model_config c;
        lmc_layout l;
        lmc_ckpt_state st;
        memset(got, 0xff, n * sizeof(float)); /* padding must come back zero */
        CHECK_OK(f < 2 ? lmc_weights_load_part(files[f], &c, &l, &m, got)
                       : lmc_ckpt_load_part(files[f], &st, &c, &l, &m, got));
        same(got, want, n, what, files[f]);
        lmc_layout_free(&l);
    }
    for (int f = 2; f < 4; f++) { /* AdamW's m and v: one whole file, or 4 ranks' shards */
        float *wm = cut(x, x->m, t, r, &m, shards ? w : NULL, nw), *wv = cut(x, x->v, t, r, &m, shards ? w : NULL, nw);
        lmc_layout g;
        CHECK_OK(lmc_layout_build(&x->cfg, &g));
        CHECK_OK(lmc_ckpt_load_optim_part(files[f], g.total, &m, got, gv));
        same(got, wm, n, what, "AdamW m");
        same(gv, wv, n, what, "AdamW v");
        lmc_layout_free(&g);
        lmc_free(wm), lmc_free(wv);
    }
    lmc_layout g; /* the init: the part's random streams against the whole's, cut */
    CHECK_OK(lmc_layout_build(&x->cfg, &g));
    float *init = lmc_alloc(g.total * sizeof(float), "init");
    lmc_weights_init(&x->cfg, &g, init, 1234);
    lmc_free(want);
    want = cut(x, init, t, r, &m, shards ? w : NULL, nw);
    lmc_weights_init_part(&x->cfg, &g, &m, got, 1234);
    same(got, want, n, what, "the init");
    lmc_free(init), lmc_free(want), lmc_free(got), lmc_free(gv);
    lmc_layout_free(&g);
    lmc_part_map_free(&m);
}

/* The model as a single file, a sharded folder, a checkpoint with the whole
 * AdamW state and one with 4 ranks' shards of it. */
static void save_all(const model *x)
{
    lmc_ckpt_state st = {.step = 7, .seq = 16, .world = 4, .adam_t = 7};
    CHECK_OK(lmc_weights_save(test_path("model.safetensors"), &x->cfg, &x->l, x->p));
    CHECK_OK(lmc_weights_save_sharded(test_path("sharded"), &x->cfg, &x->l, x->p, x->l.total));
    CHECK_OK(lmc_ckpt_save(test_path("ckpt"), &st, &x->cfg, &x->l, x->p, x->m, x->v, 0, NULL, 0));
    char tmp[512];
    CHECK_OK(lmc_ckpt_start(test_path("ckpt4"), 7, tmp, sizeof tmp));
    char file[600];
    snprintf(file, sizeof file, "%s/model.safetensors", tmp);
    CHECK_OK(lmc_weights_save(file, &x->cfg, &x->l, x->p));
    for (int k = 0; k < 4; k++) {
        size_t b, cnt;
        lmc_comm_shard(x->l.total, 4, k, &b, &cnt);
        CHECK_OK(lmc_ckpt_write_optim_shard(tmp, k, 4, x->l.total, b, b + cnt, x->m + b, x->v + b));
    }
    CHECK_OK(lmc_ckpt_commit(test_path("ckpt4"), tmp, &st, 0, NULL, 0));
}

static void test_tensor_parallel(void)
{
    for (int kind = 0; kind < 2; kind++) {
        model x;
        tiny(kind, &x);
        save_all(&x);
        for (int tp = 2; tp <= 4; tp += 2) /* Llama at tp 4: each of the 2 kv heads on 2 ranks */
            for (int r = 0; r < tp; r++)
                for (int shards = 0; shards < 2; shards++) {
                    lmc_layout t;
                    char what[96];
                    snprintf(what, sizeof what, "%s tp %d rank %d%s", kind ? "llama" : "gpt2", tp, r,
                             shards ? " ZeRO-3" : "");
                    CHECK_OK(lmc_layout_build_tp(&x.cfg, tp, x.cfg.vocab_padded % tp == 0, &t));
                    check_part(&x, &t, r, shards, what);
                    lmc_layout_free(&t);
                }
        drop(&x);
    }
}

static void test_pipeline_stages(void)
{
    for (int kind = 0; kind < 2; kind++) {
        model x;
        tiny(kind, &x);
        save_all(&x);
        int first[] = {0, 1}, interleaved[] = {1, 2, 3, 4}, last[] = {2, 4};
        const int *bounds[] = {first, interleaved, last};
        int chunks[] = {1, 2, 1};
        for (int i = 0; i < 3; i++)
            for (int tp = 1; tp <= 2; tp++) /* tp 2 x pp: each stage's slices */
                for (int r = 0; r < tp; r++) {
                    lmc_layout t;
                    char what[96];
                    snprintf(what, sizeof what, "%s stage %d tp %d rank %d", kind ? "llama" : "gpt2", i, tp, r);
                    CHECK_OK(lmc_layout_build_chunks(&x.cfg, tp, tp > 1, chunks[i], bounds[i], &t));
                    check_part(&x, &t, r, i == 1, what);
                    lmc_layout_free(&t);
                }
        drop(&x);
    }
}

static void test_experts(void)
{
    model x;
    tiny(2, &x);
    save_all(&x);
    for (int ep = 2; ep <= 8; ep *= 2)
        for (int r = 0; r < ep; r++)
            for (int shards = 0; shards < 2; shards++) {
                lmc_layout t;
                char what[96];
                snprintf(what, sizeof what, "moe ep %d rank %d%s", ep, r, shards ? " ZeRO-3" : "");
                CHECK_OK(lmc_layout_build_ep(&x.cfg, ep, r, &t));
                check_part(&x, &t, 0, shards, what);
                lmc_layout_free(&t);
            }
    drop(&x);
}

/* An expert-parallel rank's part is small: its runs hold the rest of the
 * model and 1/ep of the experts, nothing more. */
static void test_runs_hold_only_the_part(void)
{
    model x;
    tiny(2, &x);
    lmc_layout t;
    lmc_part_map m;
    CHECK_OK(lmc_layout_build_ep(&x.cfg, 4, 1, &t));
    CHECK_OK(lmc_part_map_build(&x.cfg, &t, 0, NULL, 0, &m));
    size_t experts = 0, all = 0;
    for (int l = 0; l < x.cfg.n_layer; l++)
        for (int k = LMC_T_EXP_FC_W; k <= LMC_T_EXP_PROJ_W; k++)
            experts += lmc_layout_slot(&x.l, l, k)->rows * lmc_layout_slot(&x.l, l, k)->cols;
    for (int layer = -1; layer < x.cfg.n_layer; layer++)
        for (int k = 0; k < (layer < 0 ? LMC_T_GLOBAL_COUNT : LMC_T_LAYER_COUNT); k++) {
            const lmc_tensor_slot *s = lmc_layout_slot(&x.l, layer, k);
            if (s->offset != LMC_ABSENT && !(layer < 0 && k == LMC_T_HEAD && x.cfg.tied))
                all += s->rows * s->cols;
        }
    CHECK_MSG(lmc_part_map_count(&m) == all - experts + experts / 4, "ep 4 rank 1 reads %zu floats, not %zu - %zu "
              "+ %zu / 4", lmc_part_map_count(&m), all, experts, experts);
    lmc_part_map_free(&m);
    lmc_layout_free(&t);
    drop(&x);
}

/* A missing file, a file that is not this model, and a missing shard of
 * the optimizer state fail naming the file. */
static void test_bad_input(void)
{
    model x;
    tiny(1, &x);
    save_all(&x);
    lmc_layout t, l;
    lmc_part_map m;
    lmc_model_config c;
    CHECK_OK(lmc_layout_build_tp(&x.cfg, 2, 1, &t));
    CHECK_OK(lmc_part_map_build(&x.cfg, &t, 1, NULL, 0, &m));
    float *dst = lmc_alloc(m.floats * sizeof(float), "dst"), *v = lmc_alloc(m.floats * sizeof(float), "v");
    CHECK_ERR(lmc_weights_load_part(test_path("nothing.safetensors"), &c, &l, &m, dst), LMC_EIO, "nothing");
    char file[600];
    snprintf(file, sizeof file, "%s/optim-00002-of-00004.safetensors", test_path("ckpt4/step_00000007"));
    CHECK(remove(file) == 0);
    CHECK_ERR(lmc_ckpt_load_optim_part(test_path("ckpt4/step_00000007"), x.l.total, &m, dst, v), LMC_EIO,
              "optim-00002-of-00004.safetensors");
    lmc_st_entry e = {.name = "model.embed_tokens.weight", .dtype = "F32", .ndim = 2, .shape = {3, 32}, .data = x.p};
    CHECK_OK(lmc_st_write(test_path("bad.safetensors"), &e, 1, NULL));
    CHECK_ERR(lmc_weights_load_part(test_path("bad.safetensors"), &c, &l, &m, dst), LMC_EFORMAT, "bad.safetensors");
    lmc_free(dst), lmc_free(v);
    lmc_part_map_free(&m);
    lmc_layout_free(&t);
    drop(&x);
}

int main(void)
{
    if (!test_tmpdir("part_load"))
        return 1;
    RUN(test_tensor_parallel);
    RUN(test_pipeline_stages);
    RUN(test_experts);
    RUN(test_runs_hold_only_the_part);
    RUN(test_bad_input);
    return test_summary();
}
