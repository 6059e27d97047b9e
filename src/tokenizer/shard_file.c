/* shard_file.c: llm.c token shard files. A series (train or val) is
 * PREFIX_SPLIT_000000.bin, _000001.bin, ...: each a header of 256
 * little-endian int32 (magic 20240520, version 1 = uint16 / 2 = uint32
 * tokens, token count) and then the tokens. Each file is written atomically;
 * the count is filled into the header when the shard is complete. */
#define _GNU_SOURCE
#include "tokenizer/tok_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

static char *shard_path(const char *prefix, const char *split, int index)
{
    char *p = NULL;
    return asprintf(&p, "%s_%s_%06d.bin", prefix, split, index) < 0 ? NULL : p;
}

static lmc_status write_header(tok_series *w, long long count)
{
    uint8_t h[LMC_SHARD_HEADER_INTS * 4] = {0};
    put_le32(h, LMC_SHARD_MAGIC);
    put_le32(h + 4, w->token_bytes == 2 ? 1 : 2);
    put_le32(h + 8, (uint32_t)count);
    return lmc_afile_write(&w->af, h, sizeof h);
}

static lmc_status series_open(tok_series *w)
{
    char *path = shard_path(w->prefix, w->split, w->index);
    if (!path)
        return lmc_err(LMC_ENOMEM, "out of memory");
    lmc_status s = lmc_afile_open(&w->af, path);
    free(path);
    LMC_TRY(s);
    w->is_open = 1;
    w->in_shard = 0;
    return write_header(w, 0); /* the count is filled in when the shard closes */
}

lmc_status tok_series_close(tok_series *w)
{
    if (!w->is_open)
        return LMC_OK;
    w->is_open = 0;
    lmc_status s = LMC_OK;
    if (fflush(w->af.f) != 0 || fseek(w->af.f, 0, SEEK_SET) != 0)
        s = lmc_err(LMC_EIO, "%s: cannot rewrite the header: %s", w->af.tmp, strerror(errno));
    if (s == LMC_OK)
        s = write_header(w, w->in_shard);
    if (s != LMC_OK) {
        lmc_afile_abort(&w->af);
        return s;
    }
    w->index++;
    return lmc_afile_commit(&w->af);
}

lmc_status tok_series_write(tok_series *w, const int *ids, size_t n)
{
    while (n) {
        if (!w->is_open)
            LMC_TRY(series_open(w));
        size_t take = (size_t)(w->per_shard - w->in_shard);
        take = take < n ? take : n;
        size_t bytes = take * (size_t)w->token_bytes;
        if (bytes > w->bufcap) {
            uint8_t *nb = realloc(w->buf, bytes);
            if (!nb)
                return lmc_err(LMC_ENOMEM, "out of memory writing shards");
            w->buf = nb;
            w->bufcap = bytes;
        }
        for (size_t i = 0; i < take; i++) {
            uint32_t v = (uint32_t)ids[i];
            if (w->token_bytes == 2)
                w->buf[2 * i] = (uint8_t)v, w->buf[2 * i + 1] = (uint8_t)(v >> 8);
            else
                put_le32(w->buf + 4 * i, v);
        }
        LMC_TRY(lmc_afile_write(&w->af, w->buf, bytes));
        w->in_shard += (long long)take;
        w->total += (double)take;
        ids += take;
        n -= take;
        if (w->in_shard == w->per_shard)
            LMC_TRY(tok_series_close(w));
    }
    return LMC_OK;
}

/* Shards left over from an earlier, longer run would be mistaken for ours. */
void tok_series_remove_stale(const tok_series *w)
{
    for (int i = w->index;; i++) {
        char *p = shard_path(w->prefix, w->split, i);
        int gone = !p || unlink(p) != 0;
        free(p);
        if (gone)
            break;
    }
}

void tok_series_free(tok_series *w)
{
    if (w->is_open) /* on failure: no half-written shard survives */
        lmc_afile_abort(&w->af);
    w->is_open = 0;
    free(w->buf);
    w->buf = NULL;
}

/* ---------- checking a shard ---------- */

lmc_status lmc_tok_shard_check(const char *path, long long *tokens, int *token_bytes)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return lmc_err(LMC_EIO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t h[12];
    struct stat st;
    ssize_t got = read(fd, h, sizeof h);
    int ok = fstat(fd, &st) == 0;
    close(fd);
    if (!ok || got != (ssize_t)sizeof h || st.st_size < LMC_SHARD_HEADER_INTS * 4)
        return lmc_err(LMC_EFORMAT, "%s: too short for a shard header (%lld bytes)", path, (long long)st.st_size);
    int32_t v[3];
    for (int i = 0; i < 3; i++)
        v[i] = (int32_t)((uint32_t)h[4 * i] | (uint32_t)h[4 * i + 1] << 8 | (uint32_t)h[4 * i + 2] << 16 |
                         (uint32_t)h[4 * i + 3] << 24);
    if (v[0] != LMC_SHARD_MAGIC)
        return lmc_err(LMC_EFORMAT, "%s: header[0] (magic) is %d, expected %d", path, v[0], LMC_SHARD_MAGIC);
    if (v[1] != 1 && v[1] != 2)
        return lmc_err(LMC_EFORMAT, "%s: header[1] (version) is %d, expected 1 (uint16) or 2 (uint32)", path, v[1]);
    int tb = v[1] == 1 ? 2 : 4;
    long long want = LMC_SHARD_HEADER_INTS * 4 + (long long)v[2] * tb;
    if (v[2] < 0 || want != (long long)st.st_size)
        return lmc_err(LMC_EFORMAT, "%s: header[2] (token count) is %d, but the file holds %lld bytes of tokens",
                       path, v[2], (long long)st.st_size - LMC_SHARD_HEADER_INTS * 4);
    *tokens = v[2];
    *token_bytes = tb;
    return LMC_OK;
}
