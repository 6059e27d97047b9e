/* fuzz_checkpoint.c: libFuzzer target for what resuming a training
 * checkpoint reads (src/train/checkpoint.c): state.json, OUT/latest and
 * AdamW's optimizer files (optim.safetensors, or one
 * optim-0000k-of-0000n.safetensors per rank that wrote it). The weights go
 * through the sharded-weights reader, which fuzz_weights_index covers. The
 * first byte picks what the rest is:
 *   0  state.json text, parsed in memory (lmc_ckpt_state_parse, and its
 *      moe_bias by lmc_ckpt_moe_bias_parse);
 *   1  OUT/latest, resolved by lmc_ckpt_resolve;
 *   2  3 bytes (the model's float count, the range to read) then
 *      optim.safetensors, read by lmc_ckpt_load_optim;
 *   3  the same 3 bytes, 2 bytes (little-endian) of the first file's length,
 *      then optim-00001-of-00002 and optim-00002-of-00002.
 * Properties:
 *  - a state.json that loads holds the JSON's very integers (nothing
 *    narrowed) and seed (decimal digits that fit 64 bits), and written
 *    back by lmc_ckpt_state_json loads to the same state;
 *  - a latest that resolves names a step folder inside OUT;
 *  - optimizer files that load fill every element of the range read (each
 *    starts as a marker NaN that the files' bytes do not hold); a refusal
 *    names the folder or the file;
 *  - a part map of two runs inside that range with one element left out
 *    between them (what a --tp/--pp/--ep rank reads, lmc_ckpt_load_optim_part)
 *    loads too and holds the range's very bits at its runs, 0 in the gap.
 * Seeds: state.json by lmc_ckpt_state_json, latest as lmc_ckpt_commit
 * writes it, optimizer files by lmc_ckpt_write_optim_shard for 1 and 2
 * ranks, and past findings. */
#define _GNU_SOURCE /* memmem */
#include "fuzz_common.h"
#include "train/checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KNOBS 3
#define MAX_TOTAL 48
#define MARK 0x7fc0deadu /* a NaN no writer produces */

static const char *dir;
static char optim_path[300], shard_path[2][300], latest_path[300];

/* The model's float count and the range [begin, end) read, from 3 bytes. */
static void range_of(const uint8_t *k, size_t *total, size_t *begin, size_t *end)
{
    *total = 1 + k[0] % MAX_TOTAL;
    *begin = k[1] % (*total + 1);
    *end = *begin + k[2] % (*total - *begin + 1);
}

static void seed_state(const char *name, const lmc_ckpt_state *st)
{
    lmc_sb o;
    lmc_sb_init(&o);
    lmc_ckpt_state_json(st, &o);
    fuzz_seed(name, 0, o.s, o.len);
    lmc_sb_free(&o);
}

/* Optimizer file k of n holding [b, e) of total floats, as bytes. */
static void optim_bytes(int k, int n, size_t total, size_t b, size_t e, lmc_sb *out)
{
    float m[MAX_TOTAL], v[MAX_TOTAL];
    for (size_t i = 0; i < total; i++)
        m[i] = 0.01f * (float)i - 0.1f, v[i] = 1e-4f * (float)(i * i);
    char path[4200], *bytes;
    size_t len;
    snprintf(path, sizeof path, "%s/optim-%05d-of-%05d.safetensors", dir, k + 1, n);
    if (lmc_ckpt_write_optim_shard(dir, k, n, total, b, e, m + b, v + b) || lmc_read_file(path, &bytes, &len))
        abort();
    lmc_sb_put(out, bytes, len);
    free(bytes);
    unlink(path);
}

static void seeds(void)
{
    lmc_ckpt_state st = {.step = 120, .consumed = 960, .seed = 1337, .shuffle = 1, .seq = 64, .world = 2,
                         .adam_t = 120, .loss = 3.25f};
    seed_state("seed-state", &st);
    st = (lmc_ckpt_state){.step = 0, .consumed = 0, .seed = 18446744073709551615ull, .seq = 1, .world = 1,
                          .loss = 0};
    seed_state("seed-state-edges", &st);
    static const float bias[8] = {-0.03f, 0.01f, 0.02f, 0, 1e-7f, -1.5f, 0.25f, 1.25f};
    st.moe_bias = bias, st.moe_bias_n = 8;
    seed_state("seed-state-moe-bias", &st);
    fuzz_seed("seed-latest", 1, "step_00000120\n", 14);
    static const uint8_t whole[KNOBS] = {19, 0, 20}, part[KNOBS] = {19, 5, 10}; /* 20 floats: all, [5, 15) */
    lmc_sb f, two;
    lmc_sb_init(&f);
    lmc_sb_init(&two);
    optim_bytes(0, 1, 20, 0, 20, &f);
    fuzz_seed2("seed-optim-whole", 2, whole, KNOBS, -1, f.s, f.len);
    fuzz_seed2("seed-optim-part", 2, part, KNOBS, -1, f.s, f.len);
    f.len = 0;
    optim_bytes(0, 2, 20, 0, 10, &f);
    lmc_sb_put(&two, (const char *)part, KNOBS);
    lmc_sb_putc(&two, (char)(f.len & 255));
    lmc_sb_putc(&two, (char)(f.len >> 8));
    lmc_sb_put(&two, f.s, f.len);
    f.len = 0;
    optim_bytes(1, 2, 20, 10, 20, &f);
    fuzz_seed2("seed-optim-two-ranks", 3, two.s, two.len, -1, f.s, f.len);
    lmc_sb_free(&f);
    lmc_sb_free(&two);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    dir = fuzz_tmpdir("ckpt");
    fuzz_path(optim_path, sizeof optim_path, dir, "optim.safetensors");
    fuzz_path(shard_path[0], sizeof shard_path[0], dir, "optim-00001-of-00002.safetensors");
    fuzz_path(shard_path[1], sizeof shard_path[1], dir, "optim-00002-of-00002.safetensors");
    fuzz_path(latest_path, sizeof latest_path, dir, "latest");
    if (fuzz_seeding())
        seeds();
    return 0;
}

static long long json_int(const lmc_json *j, const char *key, long long absent)
{
    const lmc_json *v = lmc_json_get(j, key);
    return v ? (long long)v->num : absent;
}

/* The seed is a string of decimal digits (JSON numbers are doubles) that
 * fits 64 bits. */
static int seed_is(const lmc_json *j, uint64_t seed)
{
    const lmc_json *v = lmc_json_get(j, "seed");
    uint64_t x = 0;
    if (!v || v->type != LMC_JSON_STR || v->slen == 0)
        return 0;
    for (size_t i = 0; i < v->slen; i++) {
        unsigned d = (unsigned char)v->str[i] - '0';
        if (d > 9 || x > (UINT64_MAX - d) / 10)
            return 0;
        x = x * 10 + d;
    }
    return x == seed;
}

static void same_state(const lmc_ckpt_state *a, const lmc_ckpt_state *b)
{
    FUZZ_ASSERT(a->step == b->step && a->consumed == b->consumed && a->seed == b->seed);
    FUZZ_ASSERT(a->shuffle == b->shuffle && a->seq == b->seq && a->world == b->world && a->adam_t == b->adam_t);
    FUZZ_ASSERT(!memcmp(&a->loss, &b->loss, sizeof a->loss));
}

static void check_state(const char *text, size_t n)
{
    lmc_ckpt_state st, back;
    if (lmc_ckpt_state_parse(text, n, "fuzz/state.json", &st) != LMC_OK) {
        FUZZ_ASSERT(strstr(lmc_errmsg(), "fuzz/state.json") != NULL);
        return;
    }
    lmc_json *j = NULL;
    FUZZ_ASSERT(lmc_json_parse(text, n, "state.json", &j) == LMC_OK);
    FUZZ_ASSERT(st.step == json_int(j, "step", -1) && (long long)st.consumed == json_int(j, "consumed_sequences", -1));
    FUZZ_ASSERT(st.seq == json_int(j, "seq", 0) && st.world == json_int(j, "world_size", 1));
    FUZZ_ASSERT(st.adam_t == json_int(j, "adam_t", -1) && isfinite(st.loss) && seed_is(j, st.seed));
    lmc_json_free(j);
    lmc_sb o;
    lmc_sb_init(&o);
    lmc_ckpt_state_json(&st, &o);
    FUZZ_ASSERT(!o.oom && lmc_ckpt_state_parse(o.s, o.len, "saved state.json", &back) == LMC_OK);
    same_state(&st, &back);
    lmc_sb_free(&o);
}

/* state.json's moe_bias (lmc_ckpt_moe_bias_parse) for 2 layers x 4 experts: a
 * refusal names the file; accepted values are finite floats, and written
 * back with the state they load again the same. */
static void check_moe_bias(const char *text, size_t n)
{
    enum { NB = 8 };
    float bias[NB] = {0}, back[NB] = {0};
    if (lmc_ckpt_moe_bias_parse(text, n, "fuzz/state.json", bias, NB) != LMC_OK) {
        FUZZ_ASSERT(strstr(lmc_errmsg(), "fuzz/state.json") != NULL);
        return;
    }
    for (int i = 0; i < NB; i++)
        FUZZ_ASSERT(isfinite(bias[i]));
    lmc_ckpt_state st = {.step = 1, .seq = 1, .seed = 1, .moe_bias = bias, .moe_bias_n = NB};
    lmc_sb o;
    lmc_sb_init(&o);
    lmc_ckpt_state_json(&st, &o);
    FUZZ_ASSERT(!o.oom && lmc_ckpt_moe_bias_parse(o.s, o.len, "saved state.json", back, NB) == LMC_OK);
    FUZZ_ASSERT(!memcmp(bias, back, sizeof bias));
    lmc_sb_free(&o);
}

static void check_latest(const char *text, size_t n)
{
    char path[4200];
    fuzz_put_file(latest_path, text, n);
    if (lmc_ckpt_resolve(dir, path, sizeof path) != LMC_OK) {
        FUZZ_ASSERT(strstr(lmc_errmsg(), dir) != NULL);
        return;
    }
    size_t d = strlen(dir);
    FUZZ_ASSERT(!strncmp(path, dir, d) && !strncmp(path + d, "/step_", 6) && !strchr(path + d + 1, '/'));
}

/* [begin, end) as a part map of two runs with element mid left out, read
 * after the range itself loaded (m, v): the same bits at the runs. */
static void check_optim_part(size_t total, size_t begin, size_t end, const float *m, const float *v)
{
    if (end - begin < 3)
        return;
    size_t mid = begin + (end - begin) / 2;
    lmc_part_run runs[2] = {{begin, 0, mid - begin}, {mid + 1, mid + 1 - begin, end - mid - 1}};
    lmc_part_map map = {.r = runs, .n = 2, .cap = 2, .floats = end - begin};
    float pm[MAX_TOTAL], pv[MAX_TOTAL];
    FUZZ_ASSERT(lmc_ckpt_load_optim_part(dir, total, &map, pm, pv) == LMC_OK);
    for (size_t i = 0; i < end - begin; i++)
        if (i == mid - begin)
            FUZZ_ASSERT(pm[i] == 0 && pv[i] == 0);
        else
            FUZZ_ASSERT(!memcmp(&pm[i], &m[i], 4) && !memcmp(&pv[i], &v[i], 4));
}

/* Reads the range the knobs pick from the files written; on success no
 * element may still hold the marker (unless the files' bytes hold it). */
static void check_optim(const uint8_t *knobs, const uint8_t *bytes, size_t n)
{
    size_t total, begin, end;
    range_of(knobs, &total, &begin, &end);
    float m[MAX_TOTAL], v[MAX_TOTAL];
    uint32_t mark = MARK;
    for (size_t i = 0; i < MAX_TOTAL; i++)
        memcpy(&m[i], &mark, 4), memcpy(&v[i], &mark, 4);
    if (lmc_ckpt_load_optim(dir, total, begin, end, m, v) != LMC_OK) {
        FUZZ_ASSERT(strstr(lmc_errmsg(), dir) != NULL);
        return;
    }
    check_optim_part(total, begin, end, m, v);
    if (memmem(bytes, n, &mark, 4))
        return;
    for (size_t i = 0; i < end - begin; i++)
        FUZZ_ASSERT(memcmp(&m[i], &mark, 4) && memcmp(&v[i], &mark, 4));
    for (size_t i = end - begin; i < MAX_TOTAL; i++) /* nothing written past the range */
        FUZZ_ASSERT(!memcmp(&m[i], &mark, 4) && !memcmp(&v[i], &mark, 4));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t *s = data + 1;
    size_t n = size - 1;
    switch (data[0] % 4) {
    case 0: check_state((const char *)s, n), check_moe_bias((const char *)s, n); break;
    case 1: check_latest((const char *)s, n); break;
    case 2:
        if (n < KNOBS)
            return 0;
        fuzz_put_file(optim_path, s + KNOBS, n - KNOBS);
        check_optim(s, s + KNOBS, n - KNOBS);
        break;
    case 3: {
        if (n < KNOBS + 2)
            return 0;
        size_t first = (size_t)(s[KNOBS] | s[KNOBS + 1] << 8), rest = n - KNOBS - 2;
        first = first < rest ? first : rest;
        unlink(optim_path);
        fuzz_put_file(shard_path[0], s + KNOBS + 2, first);
        fuzz_put_file(shard_path[1], s + KNOBS + 2 + first, rest - first);
        check_optim(s, s + KNOBS + 2, rest);
        break;
    }
    }
    return 0;
}
