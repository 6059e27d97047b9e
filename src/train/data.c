/* data.c: llm.c token shards as one stream, and the shuffled visiting order. */
#include "lmc/data.h"

#include <stdlib.h>
#include <string.h>

static int32_t le32(const uint8_t *p) { return (int32_t)((uint32_t)p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24); }

static lmc_status check_header(lmc_tokens *ds, int i)
{
    const char *path = ds->paths[i];
    const lmc_mmap *m = &ds->maps[i];
    if (m->size < LMC_SHARD_HEADER_INTS * 4)
        return lmc_err(LMC_EFORMAT, "%s: truncated: %zu bytes is shorter than the 1024-byte shard header", path,
                       m->size);
    int32_t magic = le32(m->data), version = le32(m->data + 4), count = le32(m->data + 8);
    if (magic != LMC_SHARD_MAGIC)
        return lmc_err(LMC_EFORMAT, "%s: header magic is %d, expected %d (llm.c token shard)", path, magic,
                       LMC_SHARD_MAGIC);
    if (version != 1 && version != 2)
        return lmc_err(LMC_EFORMAT, "%s: header version is %d, expected 1 (uint16 tokens) or 2 (uint32 tokens)",
                       path, version);
    if (count < 0)
        return lmc_err(LMC_EFORMAT, "%s: header token count %d is negative", path, count);
    ds->width[i] = version == 1 ? 2 : 4;
    size_t want = LMC_SHARD_HEADER_INTS * 4 + (size_t)count * (size_t)ds->width[i];
    if (m->size != want)
        return lmc_err(LMC_EFORMAT, "%s: header says %d tokens (%zu bytes) but the file has %zu bytes (%s)", path,
                       count, want, m->size, m->size < want ? "truncated" : "trailing bytes");
    ds->count[i] = (size_t)count;
    return LMC_OK;
}

/* Maps each shard (unless its bytes were given), checks its header and
 * indexes the stream; on failure closes everything. */
static lmc_status open_shards(lmc_tokens *ds)
{
    int n = ds->nshards;
    ds->width = calloc((size_t)n, sizeof *ds->width);
    ds->count = calloc((size_t)n, sizeof *ds->count);
    ds->start = calloc((size_t)n, sizeof *ds->start);
    lmc_status s = ds->maps && ds->width && ds->count && ds->start ? LMC_OK : lmc_err(LMC_ENOMEM, "out of memory");
    for (int i = 0; i < n && s == LMC_OK; i++) {
        if (!ds->borrowed)
            s = lmc_mmap_open(&ds->maps[i], ds->paths[i]);
        if (s == LMC_OK)
            s = check_header(ds, i);
        ds->start[i] = ds->total;
        ds->total += ds->count[i];
    }
    if (s != LMC_OK)
        lmc_tokens_close(ds);
    return s;
}

lmc_status lmc_tokens_open(lmc_tokens *ds, const char *glob)
{
    memset(ds, 0, sizeof *ds);
    LMC_TRY(lmc_glob(glob, &ds->paths, &ds->nshards));
    ds->maps = calloc((size_t)ds->nshards, sizeof *ds->maps);
    return open_shards(ds);
}

lmc_status lmc_tokens_open_mem(lmc_tokens *ds, int n, const lmc_mmap *shards, const char *const *names)
{
    memset(ds, 0, sizeof *ds);
    if (n < 1)
        return lmc_err(LMC_EINVAL, "no token shards given");
    ds->borrowed = 1;
    ds->paths = calloc((size_t)n, sizeof *ds->paths);
    ds->maps = calloc((size_t)n, sizeof *ds->maps);
    ds->nshards = ds->paths ? n : 0;
    int ok = ds->paths && ds->maps;
    for (int i = 0; ok && i < n; i++) {
        ds->maps[i] = shards[i];
        ok = (ds->paths[i] = lmc_strdup(names[i])) != NULL;
    }
    if (!ok) {
        lmc_tokens_close(ds);
        return lmc_err(LMC_ENOMEM, "out of memory");
    }
    return open_shards(ds);
}

void lmc_tokens_close(lmc_tokens *ds)
{
    for (int i = 0; ds->maps && !ds->borrowed && i < ds->nshards; i++)
        lmc_mmap_close(&ds->maps[i]);
    lmc_glob_free(ds->paths, ds->nshards);
    free(ds->maps);
    free(ds->width);
    free(ds->count);
    free(ds->start);
    memset(ds, 0, sizeof *ds);
}

static int shard_of(const lmc_tokens *ds, size_t tok)
{
    int lo = 0, hi = ds->nshards - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (ds->start[mid] <= tok)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

void lmc_tokens_read(const lmc_tokens *ds, size_t first, size_t n, int *out)
{
    int sh = shard_of(ds, first);
    for (size_t i = 0; i < n;) {
        while (first + i >= ds->start[sh] + ds->count[sh])
            sh++;
        size_t local = first + i - ds->start[sh], avail = ds->count[sh] - local, take = n - i < avail ? n - i : avail;
        const uint8_t *p = ds->maps[sh].data + LMC_SHARD_HEADER_INTS * 4 + local * (size_t)ds->width[sh];
        if (ds->width[sh] == 2)
            for (size_t k = 0; k < take; k++)
                out[i + k] = p[2 * k] | p[2 * k + 1] << 8;
        else
            for (size_t k = 0; k < take; k++)
                out[i + k] = le32(p + 4 * k);
        i += take;
    }
}

size_t lmc_tokens_num_seqs(const lmc_tokens *ds, int T) { return ds->total > 0 ? (ds->total - 1) / (size_t)T : 0; }

/* A bijection on [0, n): a 4-round Feistel network on the smallest even
 * power of two >= n, cycle-walking until the value lands inside [0, n). */
size_t lmc_seq_order(size_t g, size_t nseq, uint64_t seed, int shuffle)
{
    if (nseq == 0)
        return 0;
    size_t i = g % nseq;
    if (!shuffle || nseq == 1)
        return i;
    uint64_t epoch = g / nseq, key = lmc_hash64(seed ^ lmc_hash64(epoch + 0x51ed));
    int bits = 2;
    while (((uint64_t)1 << bits) < nseq)
        bits += 2;
    int half = bits / 2;
    uint64_t mask = ((uint64_t)1 << half) - 1, x = i;
    do {
        uint64_t l = x >> half, r = x & mask;
        for (int round = 0; round < 4; round++) {
            uint64_t f = lmc_hash64(r ^ key ^ ((uint64_t)round << 56)) & mask;
            uint64_t nl = r;
            r = l ^ f;
            l = nl;
        }
        x = (l << half) | r;
    } while (x >= nseq);
    return (size_t)x;
}

lmc_status lmc_tokens_batch(const lmc_tokens *ds, size_t g0, int B, int T, uint64_t seed, int shuffle, int vocab,
                            int *inputs, int *targets)
{
    size_t nseq = lmc_tokens_num_seqs(ds, T);
    if (nseq == 0)
        return lmc_err(LMC_ERANGE, "%s: %zu tokens is too few for one sequence of %d tokens (+1 target)",
                       ds->paths[0], ds->total, T);
    for (int b = 0; b < B; b++) {
        size_t s = lmc_seq_order(g0 + (size_t)b, nseq, seed, shuffle), first = s * (size_t)T;
        int *row = inputs + (size_t)b * T;
        lmc_tokens_read(ds, first, (size_t)T, row);
        if (targets) {
            memcpy(targets + (size_t)b * T, row + 1, (size_t)(T - 1) * sizeof(int));
            lmc_tokens_read(ds, first + (size_t)T, 1, targets + (size_t)b * T + T - 1);
        }
        for (int t = 0; t <= T; t++) {
            int id = t < T ? row[t] : targets ? targets[(size_t)b * T + T - 1] : 0;
            if (id < 0 || id >= vocab) {
                size_t pos = first + (size_t)t;
                int sh = shard_of(ds, pos);
                return lmc_err(LMC_ERANGE, "%s: token %zu has id %d, outside the model's vocabulary [0, %d)",
                               ds->paths[sh], pos - ds->start[sh], id, vocab);
            }
        }
    }
    return LMC_OK;
}

lmc_status lmc_shard_write(const char *path, const int *tokens, size_t n)
{
    if (n > 0x7fffffff)
        return lmc_err(LMC_ERANGE, "%s: %zu tokens exceed the shard format's int32 count", path, n);
    int wide = 0;
    for (size_t i = 0; i < n; i++) {
        if (tokens[i] < 0)
            return lmc_err(LMC_ERANGE, "%s: token %zu has negative id %d", path, i, tokens[i]);
        if (tokens[i] > 65535)
            wide = 1;
    }
    int32_t header[LMC_SHARD_HEADER_INTS] = {LMC_SHARD_MAGIC, wide ? 2 : 1, (int32_t)n};
    lmc_afile af;
    LMC_TRY(lmc_afile_open(&af, path));
    lmc_status s = lmc_afile_write(&af, header, sizeof header);
    uint8_t buf[8192];
    size_t w = wide ? 4 : 2, per = sizeof buf / w;
    for (size_t i = 0; i < n && s == LMC_OK; i += per) {
        size_t k = n - i < per ? n - i : per;
        for (size_t j = 0; j < k; j++)
            for (size_t b = 0; b < w; b++)
                buf[j * w + b] = (uint8_t)((uint32_t)tokens[i + j] >> (8 * b));
        s = lmc_afile_write(&af, buf, k * w);
    }
    if (s != LMC_OK) {
        lmc_afile_abort(&af);
        return s;
    }
    return lmc_afile_commit(&af);
}
