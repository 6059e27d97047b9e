/* fuzz_weights_index.c: libFuzzer target for the sharded weights reader
 * (`make fuzz-weights`). A tiny GPT-2 is saved sharded at start; the
 * first byte picks what the rest is fed to:
 *   0  model.safetensors.index.json text, parsed from memory: a parse that
 *      succeeds must give sorted unique names, file numbers in range and no
 *      file name that leaves the folder;
 *   1  that index, as the folder's index file, then a whole load and a
 *      range load;
 *   2  the first shard's bytes under the good index, then the same loads;
 *   3, 4  the same as 1 and 2 for a tiny mixture of experts saved with its
 *      balancing bias (e_score_correction_bias, one per layer), whose loads
 *      also read the bias (lmc_weights_load_moe_bias).
 * Each load is also a part load (lmc_weights_load_part, what a --tp, --pp
 * or --ep rank reads at start-up): tensor-parallel rank 1 of 2 for the
 * GPT-2, expert-parallel rank 1 of 2 for the mixture of experts.
 * A load that succeeds must give finite parameters (and bias). Any violation aborts,
 * which libFuzzer reports with the input. With LMC_FUZZ_SEEDS=dir the good
 * index and shard are written there first as seeds (mode byte prepended). */
#include "fuzz_common.h"
#include "lmc/model.h"
#include "model/weights_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* a saved sharded model: its folder, index and first shard (the good bytes) */
typedef struct {
    char dir[300], index_path[300], shard1_path[300];
    char *index, *shard;
    size_t index_len, shard_len;
    lmc_part_map part; /* a rank's part of it, and room for it */
    float *part_buf;
} saved;

static const char *root; /* this process's folder */
static saved gpt, moe;

/* The part map of one rank's layout t (tensor rank r) and its buffer. */
static void make_part(saved *m, const lmc_model_config *c, lmc_layout *t, int r)
{
    if (lmc_part_map_build(c, t, r, NULL, 0, &m->part))
        abort();
    m->part_buf = lmc_alloc((m->part.floats ? m->part.floats : 1) * sizeof(float), "part");
    lmc_layout_free(t);
}

static void save(saved *m, const char *dir, const lmc_model_config *c, const float *bias)
{
    lmc_layout l;
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    if (lmc_layout_build(c, &l))
        abort();
    float *p = lmc_alloc(l.total * sizeof(float), "params");
    lmc_weights_init(c, &l, p, 1);
    size_t limit = l.total * sizeof(float) / 2;
    if (lmc_weights_save_sharded_moe(dir, c, &l, p, limit, bias)) {
        fprintf(stderr, "fuzz setup failed: %s\n", lmc_errmsg());
        abort();
    }
    char name[64];
    lmc_weights_shard_name(0, lmc_weights_files_for(&l, limit), name, sizeof name);
    lmc_free(p);
    lmc_layout_free(&l);
    snprintf(m->index_path, sizeof m->index_path, "%s/model.safetensors.index.json", dir);
    snprintf(m->shard1_path, sizeof m->shard1_path, "%s/%s", dir, name);
    if (lmc_read_file(m->index_path, &m->index, &m->index_len) ||
        lmc_read_file(m->shard1_path, &m->shard, &m->shard_len))
        abort();
}

/* 2 layers of 2 experts, top 1, balancing by its bias */
static void save_moe(void)
{
    lmc_model_config c;
    char dir[300];
    float bias[4] = {0.25f, -0.25f, -0.5f, 0.5f};
    if (lmc_config_preset("llama-15m", &c))
        abort();
    c.n_layer = 2, c.dim = 8, c.n_head = c.n_kv_head = 2, c.ffn_dim = 8, c.vocab = 10, c.max_seq = 4;
    c.n_expert = 2, c.top_k = 1, c.moe_ffn = 8, c.bias_step = 0.01f;
    snprintf(dir, sizeof dir, "%s/moe", root);
    if (lmc_config_finish(&c) || lmc_mkdir_p(dir))
        abort();
    save(&moe, dir, &c, bias);
    lmc_layout t;
    if (lmc_layout_build_ep(&c, 2, 1, &t))
        abort();
    make_part(&moe, &c, &t, 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    lmc_model_config c;
    root = fuzz_tmpdir("weights");
    if (lmc_config_preset("d6", &c))
        abort();
    c.n_layer = 1, c.dim = 8, c.n_head = c.n_kv_head = 2, c.ffn_dim = 32, c.vocab = 10, c.max_seq = 4;
    if (lmc_config_finish(&c))
        abort();
    save(&gpt, root, &c, NULL);
    lmc_layout t;
    if (lmc_layout_build_tp(&c, 2, 1, &t))
        abort();
    make_part(&gpt, &c, &t, 1);
    save_moe();
    fuzz_seed("seed-index-parse", 0, gpt.index, gpt.index_len);
    fuzz_seed("seed-index-load", 1, gpt.index, gpt.index_len);
    fuzz_seed("seed-shard", 2, gpt.shard, gpt.shard_len);
    fuzz_seed("seed-moe-index-load", 3, moe.index, moe.index_len);
    fuzz_seed("seed-moe-shard", 4, moe.shard, moe.shard_len);
    return 0;
}

static void check_parsed(const lmc_windex *ix)
{
    for (int i = 0; i < ix->n; i++) {
        const char *f = ix->files[ix->map[i].file];
        if (ix->map[i].file < 0 || ix->map[i].file >= ix->nfiles || (i && strcmp(ix->map[i - 1].name, ix->map[i].name) >= 0))
            abort();
        if (!*f || f[0] == '/' || !strcmp(f, "..") || !strncmp(f, "../", 3) || strstr(f, "/../") ||
            (strlen(f) >= 3 && !strcmp(f + strlen(f) - 3, "/..")))
            abort();
        if (lmc_windex_find(ix, ix->map[i].name) != &ix->map[i])
            abort();
    }
}

/* a whole load (and the balancing bias after it), then a range load and
 * a part load */
static void load_both(const saved *m)
{
    const char *dir = m->dir;
    lmc_model_config c;
    lmc_layout l;
    float *p = NULL, bias[64];
    int found;
    if (lmc_weights_load(dir, &c, &l, &p) == LMC_OK) {
        for (size_t i = 0; i < l.total; i++)
            if (!isfinite(p[i]))
                abort();
        size_t nb = (size_t)c.n_layer * (c.n_expert > 0 ? c.n_expert : 0);
        if (nb <= 64 && lmc_weights_load_moe_bias(dir, &c, bias, &found) == LMC_OK)
            for (size_t i = 0; i < nb; i++)
                if (!isfinite(bias[i]))
                    abort();
        lmc_free(p);
        lmc_layout_free(&l);
    }
    float part[40];
    if (lmc_weights_load_range(dir, &c, &l, 70, 110, part) == LMC_OK)
        lmc_layout_free(&l);
    if (lmc_weights_load_part(dir, &c, &l, &m->part, m->part_buf) == LMC_OK) {
        for (size_t i = 0; i < m->part.floats; i++)
            if (!isfinite(m->part_buf[i]))
                abort();
        lmc_layout_free(&l);
    }
}

/* bytes in place of one of m's files, the loads, the good bytes back */
static void try_file(const saved *m, int shard, const char *s, size_t n)
{
    fuzz_put_file(shard ? m->shard1_path : m->index_path, s, n);
    load_both(m);
    if (shard)
        fuzz_put_file(m->shard1_path, m->shard, m->shard_len);
    else
        fuzz_put_file(m->index_path, m->index, m->index_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 5) {
    case 0: {
        lmc_windex ix;
        if (lmc_windex_parse(s, n, "index.json", &ix) == LMC_OK) {
            check_parsed(&ix);
            lmc_windex_free(&ix);
        }
        break;
    }
    case 1: try_file(&gpt, 0, s, n); break;
    case 2: try_file(&gpt, 1, s, n); break;
    case 3: try_file(&moe, 0, s, n); break;
    case 4: try_file(&moe, 1, s, n); break;
    }
    return 0;
}
