/* fuzz_weights_index.c: libFuzzer target for the sharded weights reader
 * (`make fuzz-weights`). A tiny GPT-2 is saved sharded at start; the
 * first byte picks what the rest is fed to:
 *   0  model.safetensors.index.json text, parsed from memory: a parse that
 *      succeeds must give sorted unique names, file numbers in range and no
 *      file name that leaves the folder;
 *   1  that index, as the folder's index file, then a whole load and a
 *      range load;
 *   2  the first shard's bytes under the good index, then the same loads.
 * A load that succeeds must give finite parameters. Any violation aborts,
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

static const char *root; /* this process's folder */
static char good_index_path[300], shard1_path[300];
static char *good_index, *good_shard;
static size_t good_index_len, good_shard_len;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    lmc_model_config c;
    lmc_layout l;
    root = fuzz_tmpdir("weights");
    if (lmc_config_preset("d6", &c))
        abort();
    c.n_layer = 1, c.dim = 8, c.n_head = c.n_kv_head = 2, c.ffn_dim = 32, c.vocab = 10, c.max_seq = 4;
    if (lmc_config_finish(&c) || lmc_layout_build(&c, &l))
        abort();
    float *p = lmc_alloc(l.total * sizeof(float), "params");
    lmc_weights_init(&c, &l, p, 1);
    size_t limit = l.total * sizeof(float) / 2;
    if (lmc_weights_save_sharded(root, &c, &l, p, limit)) {
        fprintf(stderr, "fuzz setup failed: %s\n", lmc_errmsg());
        abort();
    }
    char name[64];
    lmc_weights_shard_name(0, lmc_weights_files_for(&l, limit), name, sizeof name);
    lmc_free(p);
    lmc_layout_free(&l);
    snprintf(good_index_path, sizeof good_index_path, "%s/model.safetensors.index.json", root);
    snprintf(shard1_path, sizeof shard1_path, "%s/%s", root, name);
    if (lmc_read_file(good_index_path, &good_index, &good_index_len) ||
        lmc_read_file(shard1_path, &good_shard, &good_shard_len))
        abort();
    fuzz_seed("seed-index-parse", 0, good_index, good_index_len);
    fuzz_seed("seed-index-load", 1, good_index, good_index_len);
    fuzz_seed("seed-shard", 2, good_shard, good_shard_len);
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

static void load_both(void)
{
    lmc_model_config c;
    lmc_layout l;
    float *p = NULL;
    if (lmc_weights_load(root, &c, &l, &p) == LMC_OK) {
        for (size_t i = 0; i < l.total; i++)
            if (!isfinite(p[i]))
                abort();
        lmc_free(p);
        lmc_layout_free(&l);
    }
    float part[40];
    if (lmc_weights_load_range(root, &c, &l, 70, 110, part) == LMC_OK)
        lmc_layout_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0: {
        lmc_windex ix;
        if (lmc_windex_parse(s, n, "index.json", &ix) == LMC_OK) {
            check_parsed(&ix);
            lmc_windex_free(&ix);
        }
        break;
    }
    case 1:
        fuzz_put_file(good_index_path, s, n);
        load_both();
        fuzz_put_file(good_index_path, good_index, good_index_len);
        break;
    case 2:
        fuzz_put_file(shard1_path, s, n);
        load_both();
        fuzz_put_file(shard1_path, good_shard, good_shard_len);
        break;
    }
    return 0;
}
