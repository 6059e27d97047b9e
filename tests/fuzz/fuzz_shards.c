/* fuzz_shards.c: libFuzzer target for the token shard reader
 * (src/train/data.c, llm.c's format). The first byte picks one or two
 * shards; with two, the next two bytes (little-endian) give the first
 * shard's length and the rest is the second. Each shard is copied to a
 * buffer of its own size (so AddressSanitizer sees a read past its end) and
 * opened in place with lmc_tokens_open_mem, which lmc_tokens_open runs on
 * the files a glob maps. Properties of shards that open: the token
 * count is what the headers say, every token read back (in pieces of several
 * sizes, across the shard boundary) equals the file's bytes decoded here
 * independently, and batches either fill with in-vocabulary ids or fail
 * naming the shard and position. A refusal names the shard.
 * Seeds: shards written by lmc_shard_write (uint16 and uint32 tokens). */
#include "fuzz_common.h"
#include "lmc/data.h"

#include <stdlib.h>
#include <string.h>

static const char *const names[2] = {"fuzz/train_000.bin", "fuzz/train_001.bin"};

static void seeds(void)
{
    int small[40], wide[9];
    for (int i = 0; i < 40; i++)
        small[i] = (i * 7919) % 50257;
    for (int i = 0; i < 9; i++)
        wide[i] = 65530 + i * 1000;
    struct { const int *t; size_t n; } sh[] = {{small, 40}, {wide, 9}, {small, 0}};
    char *bytes[3];
    size_t len[3];
    for (int i = 0; i < 3; i++) {
        char p[320];
        fuzz_path(p, sizeof p, fuzz_tmpdir("shards"), "seed.bin");
        if (lmc_shard_write(p, sh[i].t, sh[i].n) || lmc_read_file(p, &bytes[i], &len[i]))
            abort();
    }
    fuzz_seed("seed-one-u16", 0, bytes[0], len[0]);
    fuzz_seed("seed-one-u32", 0, bytes[1], len[1]);
    uint8_t l0[2] = {(uint8_t)len[0], (uint8_t)(len[0] >> 8)};
    lmc_sb two;
    lmc_sb_init(&two);
    lmc_sb_putc(&two, 1);
    lmc_sb_put(&two, (const char *)l0, 2);
    lmc_sb_put(&two, bytes[0], len[0]);
    fuzz_seed2("seed-two-u16-u32", -1, two.s, two.len, -1, bytes[1], len[1]);
    fuzz_seed2("seed-two-u16-empty", -1, two.s, two.len, -1, bytes[2], len[2]);
    lmc_sb_free(&two);
    for (int i = 0; i < 3; i++)
        free(bytes[i]);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (fuzz_seeding())
        seeds();
    return 0;
}

static uint32_t le(const uint8_t *p, int w)
{
    return w == 2 ? (uint32_t)(p[0] | p[1] << 8) : (uint32_t)p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Token i of the stream, decoded from the shards' bytes. */
static int token_at(const uint8_t *const *s, const size_t *count, size_t i)
{
    int k = i >= count[0];
    size_t local = k ? i - count[0] : i;
    int w = le(s[k] + 4, 4) == 1 ? 2 : 4;
    return (int)le(s[k] + 4 * LMC_SHARD_HEADER_INTS + local * (size_t)w, w);
}

static void check_stream(const lmc_tokens *ds, const uint8_t *const *s, int nshards, uint8_t knob)
{
    size_t count[2] = {0, 0};
    for (int k = 0; k < nshards; k++) {
        count[k] = le(s[k] + 8, 4);
        FUZZ_ASSERT(ds->count[k] == count[k]);
    }
    FUZZ_ASSERT(ds->nshards == nshards && ds->total == count[0] + count[1]);
    int buf[64];
    size_t piece = 1 + knob % 64;
    for (size_t first = 0; first < ds->total; first += piece) {
        size_t n = ds->total - first < piece ? ds->total - first : piece;
        lmc_tokens_read(ds, first, n, buf);
        for (size_t i = 0; i < n; i++)
            FUZZ_ASSERT(buf[i] == token_at(s, count, first + i));
    }
    int T = 1 + knob % 7, B = 2, vocab = 1 + (knob >> 3) * 2000;
    int in[2 * 8], tg[2 * 8];
    if (lmc_tokens_num_seqs(ds, T) == 0)
        return;
    lmc_status st = lmc_tokens_batch(ds, knob, B, T, knob, knob & 1, vocab, in, tg);
    if (st != LMC_OK) {
        FUZZ_ASSERT(st == LMC_ERANGE && strstr(lmc_errmsg(), "outside the model's vocabulary"));
        return;
    }
    for (int i = 0; i < B * T; i++)
        FUZZ_ASSERT(in[i] >= 0 && in[i] < vocab && tg[i] >= 0 && tg[i] < vocab);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int two = data[0] & 1;
    uint8_t knob = data[0] >> 1;
    const uint8_t *s[2] = {data + 1, NULL};
    size_t n[2] = {size - 1, 0};
    if (two) {
        if (size < 3)
            return 0;
        n[0] = (size_t)(data[1] | data[2] << 8);
        s[0] = data + 3;
        if (n[0] > size - 3)
            n[0] = size - 3;
        s[1] = s[0] + n[0];
        n[1] = size - 3 - n[0];
    }
    lmc_mmap m[2] = {{0}};
    for (int k = 0; k <= two; k++) {
        uint8_t *copy = malloc(n[k] ? n[k] : 1);
        FUZZ_ASSERT(copy);
        memcpy(copy, s[k], n[k]);
        m[k].data = copy, m[k].size = n[k];
    }
    lmc_tokens ds;
    if (lmc_tokens_open_mem(&ds, two + 1, m, names) == LMC_OK) {
        check_stream(&ds, s, two + 1, knob);
        lmc_tokens_close(&ds);
    } else {
        FUZZ_ASSERT(strstr(lmc_errmsg(), "fuzz/train_00") != NULL);
    }
    free((void *)m[0].data);
    free((void *)m[1].data);
    return 0;
}
