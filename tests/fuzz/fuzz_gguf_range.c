/* fuzz_gguf_range.c: libFuzzer target for a rank's range of a GGUF model
 * read from the file (lmc_gguf_load_range, src/model/gguf_model.c, reached
 * as a distributed run reaches it: lmc_weights_load_range on a .gguf path).
 * The input is a whole .gguf file, written to a scratch file. The ranges
 * are cut from the input's hash: 1 to 4 pieces covering [0, total).
 * Properties:
 *  - a file whose whole model loads in memory (lmc_gguf_model_from) loads
 *    by ranges to the same config and the very same bits, and one whose
 *    whole model does not load fails for the range [0, total) too;
 *  - a range that loads fills every element of [begin, end) with a finite
 *    value (each starts as a marker NaN) and nothing past end;
 *  - [total, total + 1) and a reversed range are LMC_ERANGE;
 *  - every refusal names the file.
 * Seeds: tiny GPT-2, Llama and Mixtral files (fuzz_gguf_seeds.c). */
#include "fuzz_common.h"
#include "lmc/gguf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static char path[300];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_path(path, sizeof path, fuzz_tmpdir("gguf_range"), "m.gguf");
    if (fuzz_seeding())
        fuzz_gguf_seeds();
    return 0;
}

static int same_config(const lmc_model_config *a, const lmc_model_config *b)
{
    return !strcmp(a->family, b->family) && a->n_layer == b->n_layer && a->n_head == b->n_head &&
           a->n_kv_head == b->n_kv_head && a->dim == b->dim && a->ffn_dim == b->ffn_dim && a->vocab == b->vocab &&
           a->vocab_padded == b->vocab_padded && a->max_seq == b->max_seq && a->tied == b->tied &&
           a->bias == b->bias && a->n_expert == b->n_expert && a->top_k == b->top_k;
}

static int names_file(void) { return strstr(lmc_errmsg(), path) != NULL; }

/* Loads [b, e) into a buffer of marker NaNs with one guard after it;
 * whole: the model loaded in memory (NULL when it did not load). */
static lmc_status load_piece(size_t b, size_t e, const lmc_model_config *wc, const float *whole)
{
    static const uint32_t MARK = 0x7fc0dead;
    float *dst = malloc((e - b + 1) * sizeof(float));
    FUZZ_ASSERT(dst != NULL);
    for (size_t i = 0; i <= e - b; i++)
        memcpy(&dst[i], &MARK, 4);
    lmc_model_config c;
    lmc_layout l;
    lmc_status st = lmc_weights_load_range(path, &c, &l, b, e, dst);
    FUZZ_ASSERT(st == LMC_OK || names_file());
    FUZZ_ASSERT(!memcmp(&dst[e - b], &MARK, 4));
    if (st == LMC_OK) {
        for (size_t i = 0; i < e - b; i++)
            FUZZ_ASSERT(isfinite(dst[i]));
        if (whole)
            FUZZ_ASSERT(same_config(&c, wc) && !memcmp(dst, whole + b, (e - b) * sizeof(float)));
        lmc_layout_free(&l);
    }
    free(dst);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_put_file(path, data, size);
    lmc_model_config c, wc;
    lmc_layout l, wl;
    lmc_status st = lmc_weights_load_range(path, &c, &l, 0, 0, NULL); /* the config and layout */
    if (st != LMC_OK) {
        FUZZ_ASSERT(names_file());
        return 0;
    }
    size_t total = l.total;
    lmc_layout_free(&l);
    float *whole = NULL;
    lmc_gguf g;
    FUZZ_ASSERT(lmc_gguf_parse(&g, data, size, path) == LMC_OK); /* the file's bytes parsed */
    if (lmc_gguf_model_from(&g, &wc, &wl, &whole) == LMC_OK) {
        FUZZ_ASSERT(same_config(&c, &wc) && wl.total == total);
        lmc_layout_free(&wl);
    }
    lmc_gguf_close(&g);
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < size; i++)
        h = lmc_hash64(h ^ data[i]);
    int pieces = 1 + (int)(h % 4);
    size_t cut[5] = {0, total, total, total, total};
    for (int k = 1; k < pieces; k++)
        cut[k] = (h = lmc_hash64(h)) % (total + 1);
    for (int k = 1; k < pieces; k++) /* sort the inner cuts */
        for (int m = k + 1; m < pieces; m++)
            if (cut[m] < cut[k]) {
                size_t t = cut[k];
                cut[k] = cut[m], cut[m] = t;
            }
    cut[pieces] = total;
    int all_ok = 1;
    for (int k = 0; k < pieces; k++)
        all_ok &= load_piece(cut[k], cut[k + 1], &c, whole) == LMC_OK;
    if (pieces == 1) /* one piece is [0, total): it loads exactly when the whole model does */
        FUZZ_ASSERT(all_ok == (whole != NULL));
    if (whole)
        FUZZ_ASSERT(all_ok);
    float one;
    FUZZ_ASSERT(lmc_weights_load_range(path, &c, &l, total, total + 1, &one) == LMC_ERANGE && names_file());
    if (total > 0)
        FUZZ_ASSERT(lmc_weights_load_range(path, &c, &l, 1, 0, &one) == LMC_ERANGE && names_file());
    lmc_free(whole);
    return 0;
}
