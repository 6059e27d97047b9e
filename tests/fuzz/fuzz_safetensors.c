/* fuzz_safetensors.c: libFuzzer target for the safetensors reader
 * (src/model/safetensors.c): the input is a whole .safetensors file, opened
 * in place with lmc_st_open_mem (lmc_st_open maps the file and runs the same
 * checks), and every tensor is read. Properties of a file that
 * opens: each tensor's byte range lies inside the data section and matches
 * its shape and dtype, lmc_st_find finds it by name, a float tensor reads
 * whole and by ranges to the same finite values (or fails naming the file and
 * tensor), and metadata lookups return strings. A refusal names the file.
 * Seeds: files written by lmc_st_write (F32, BF16, F16, I32, empty and
 * scalar tensors, metadata). */
#include "fuzz_common.h"
#include "lmc/safetensors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WHAT "fuzz/model.safetensors"

static void seeds(void)
{
    float f32[24];
    uint16_t half[8];
    int32_t i32[3] = {1, -2, 3};
    for (int i = 0; i < 24; i++)
        f32[i] = (float)i * 0.25f - 2;
    for (int i = 0; i < 8; i++)
        half[i] = (uint16_t)(0x3c00 + i * 0x111); /* 1.0 and up, in F16 and as BF16 bits */
    lmc_st_entry e[] = {
        {"wte.weight", "F32", 2, {4, 6}, f32},
        {"h.0.ln_1.bias", "BF16", 1, {8}, half},
        {"h.0.attn.c_proj.weight", "F16", 3, {2, 2, 2}, half},
        {"ids", "I32", 1, {3}, i32},
        {"empty", "F32", 2, {0, 5}, f32},
        {"scalar", "F32", 0, {0}, f32},
    };
    const char *meta[] = {"format", "pt", "lmc_note", "a \"quoted\" \xc3\xa9 value", NULL};
    const char *dir = getenv("LMC_FUZZ_SEEDS");
    char p[4200];
    fuzz_path(p, sizeof p, dir, "seed-all.safetensors");
    if (lmc_st_write(p, e, 6, meta))
        abort();
    fuzz_path(p, sizeof p, dir, "seed-one.safetensors");
    if (lmc_st_write(p, e, 1, NULL))
        abort();
    fuzz_path(p, sizeof p, dir, "seed-half.safetensors");
    if (lmc_st_write(p, e + 1, 2, meta))
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (fuzz_seeding())
        seeds();
    return 0;
}

static int is_float(const lmc_st_tensor *t)
{
    return !strcmp(t->dtype, "F32") || !strcmp(t->dtype, "BF16") || !strcmp(t->dtype, "F16");
}

static size_t dtype_bytes(const char *d)
{
    return strstr(d, "64") ? 8 : strstr(d, "32") ? 4 : strstr(d, "16") ? 2 : 1;
}

static void read_tensor(const lmc_st_file *f, const lmc_st_tensor *t)
{
    size_t n = lmc_st_numel(t);
    FUZZ_ASSERT(t->begin <= t->end && t->end <= f->data_len && t->end - t->begin == n * dtype_bytes(t->dtype));
    FUZZ_ASSERT(lmc_st_find(f, t->name) && !strcmp(lmc_st_find(f, t->name)->name, t->name));
    float *all = malloc((n ? n : 1) * sizeof(float)), part[7];
    FUZZ_ASSERT(all);
    lmc_status s = lmc_st_read_f32(f, t, all);
    FUZZ_ASSERT(s == LMC_OK || s == LMC_EFORMAT);
    if (s != LMC_OK) { /* not a float dtype, or a non-finite value: the message says which tensor */
        FUZZ_ASSERT(strstr(lmc_errmsg(), t->name) && strstr(lmc_errmsg(), WHAT));
    } else {
        FUZZ_ASSERT(is_float(t));
        for (size_t i = 0; i < n; i++)
            FUZZ_ASSERT(isfinite(all[i]));
        /* ranges of up to 7 elements from a few starts read the same bits */
        for (size_t first = 0; first < n; first += n / 3 + 1) {
            size_t k = n - first < 7 ? n - first : 7;
            FUZZ_ASSERT(lmc_st_read_f32_range(f, t, first, k, part) == LMC_OK);
            FUZZ_ASSERT(!memcmp(part, all + first, k * sizeof(float)));
        }
    }
    FUZZ_ASSERT(lmc_st_read_f32_range(f, t, n, 1, part) == LMC_ERANGE);
    free(all);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lmc_st_file f;
    if (lmc_st_open_mem(&f, data, size, WHAT) != LMC_OK) {
        FUZZ_ASSERT(strstr(lmc_errmsg(), WHAT) != NULL);
        return 0;
    }
    FUZZ_ASSERT(f.data_len <= size && f.n >= 0);
    for (int i = 0; i < f.n; i++)
        read_tensor(&f, &f.t[i]);
    if (f.meta)
        for (const lmc_json *m = f.meta->child; m; m = m->next) {
            const char *v = lmc_st_meta(&f, m->key);
            FUZZ_ASSERT(!v || lmc_json_get(f.meta, m->key)->type == LMC_JSON_STR);
        }
    lmc_st_close(&f);
    return 0;
}
