/* fuzz_gguf.c: libFuzzer target for the GGUF reader (src/model/gguf_read.c)
 * and what reads a parsed file: the model (gguf_model.c) and the tokenizer
 * (gguf_vocab.c, src/tokenizer/format_gguf.c). The input is a whole .gguf
 * file, parsed in place. Properties of a file that parses: every tensor's
 * data lies inside the input and has the size of its shape and type, every
 * key and tensor is found by name, each typed getter either returns the
 * value or fails naming the key; a model that loads has finite parameters,
 * and one that does not, like a tokenizer that does not, fails with a
 * message naming the file; a model that loads reads the same as a part
 * (what a --tp or --ep rank reads at start-up, lmc_gguf_load_part). A refusal to parse names the file too.
 * Seeds: tiny GPT-2, Llama and Mixtral files (fuzz_gguf_seeds.c). */
#include "fuzz_common.h"
#include "lmc/gguf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WHAT "fuzz.gguf"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (fuzz_seeding())
        fuzz_gguf_seeds();
    return 0;
}

static void check_kv(const lmc_gguf *g, const lmc_gguf_kv *kv)
{
    FUZZ_ASSERT(lmc_gguf_find(g, kv->key) == kv);
    long long i;
    double f;
    int b;
    lmc_gguf_str s;
    const lmc_gguf_kv *a;
    lmc_status st[] = {
        lmc_gguf_get_int(g, kv->key, 1, -5, 1LL << 40, &i), lmc_gguf_get_float(g, kv->key, 1, &f),
        lmc_gguf_get_bool(g, kv->key, 1, &b), lmc_gguf_get_str(g, kv->key, 1, &s),
        lmc_gguf_get_arr(g, kv->key, 1, LMC_GGUF_STR, &a), lmc_gguf_get_arr(g, kv->key, 1, LMC_GGUF_I32, &a),
    };
    for (size_t k = 0; k < sizeof st / sizeof *st; k++)
        FUZZ_ASSERT(st[k] == LMC_OK || (st[k] == LMC_EFORMAT && strstr(lmc_errmsg(), kv->key)));
    if (st[3] == LMC_OK)
        FUZZ_ASSERT(kv->type == LMC_GGUF_STR && s.s == kv->str[0].s);
    if (st[5] == LMC_OK && a->n)
        (void)lmc_gguf_arr_int(a, a->n - 1);
}

/* A model that loads, part-loaded as a --tp 2 rank 1 (and, a mixture of
 * experts, an --ep 2 rank 1) reads it: the part's runs hold the whole
 * load's bits, what no run lists stays 0, and the config is the same. */
static void check_part(const lmc_gguf *g, const lmc_model_config *c, const float *whole)
{
    lmc_layout t[2];
    int ok[2] = {lmc_layout_build_tp(c, 2, 1, &t[0]) == LMC_OK,
                 c->n_expert > 0 && lmc_layout_build_ep(c, 2, 1, &t[1]) == LMC_OK};
    for (int k = 0; k < 2; k++) {
        lmc_part_map m;
        if (!ok[k])
            continue;
        FUZZ_ASSERT(lmc_part_map_build(c, &t[k], k == 0, NULL, 0, &m) == LMC_OK);
        float *ref = calloc(m.floats + 1, sizeof(float)), *got = malloc((m.floats + 1) * sizeof(float));
        FUZZ_ASSERT(ref && got);
        lmc_part_map_gather(&m, whole, ref);
        lmc_model_config c2;
        lmc_layout l2;
        FUZZ_ASSERT(lmc_gguf_model_part_from(g, &c2, &l2, &m, got) == LMC_OK);
        FUZZ_ASSERT(memcmp(ref, got, m.floats * sizeof(float)) == 0 && !memcmp(&c2, c, sizeof c2));
        lmc_layout_free(&l2);
        free(ref);
        free(got);
        lmc_part_map_free(&m);
        lmc_layout_free(&t[k]);
    }
}

static void check_model(const lmc_gguf *g)
{
    lmc_model_config c;
    lmc_layout l;
    float *p = NULL;
    if (lmc_gguf_model_from(g, &c, &l, &p) != LMC_OK) {
        FUZZ_ASSERT(strstr(lmc_errmsg(), WHAT) != NULL && p == NULL);
        return;
    }
    for (size_t i = 0; i < l.total; i++)
        FUZZ_ASSERT(isfinite(p[i]));
    check_part(g, &c, p);
    lmc_free(p);
    lmc_layout_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lmc_gguf g;
    if (lmc_gguf_parse(&g, data, size, WHAT) != LMC_OK) {
        FUZZ_ASSERT(strstr(lmc_errmsg(), WHAT) != NULL);
        return 0;
    }
    FUZZ_ASSERT(g.data_offset % g.alignment == 0);
    for (int i = 0; i < g.n_tensors; i++) {
        const lmc_gguf_tensor *t = &g.t[i];
        uint64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        FUZZ_ASSERT(t->data >= data && t->data + t->bytes <= data + size);
        FUZZ_ASSERT(t->bytes == lmc_ggml_bytes((lmc_ggml_type)t->type, n));
        FUZZ_ASSERT(lmc_gguf_tensor_find(&g, t->name) == t);
    }
    for (int i = 0; i < g.n_kv; i++)
        check_kv(&g, &g.kv[i]);
    check_model(&g);
    lmc_tokenizer *tok = NULL;
    if (lmc_gguf_tok_from(&g, &tok) == LMC_OK)
        lmc_tok_free(tok);
    else
        FUZZ_ASSERT(strstr(lmc_errmsg(), WHAT) != NULL);
    lmc_gguf_close(&g);
    return 0;
}
