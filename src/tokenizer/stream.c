/* stream.c: lmc encode (text -> token ids) and lmc decode (ids -> text)
 * over files of any size: encode cuts its input only where pre-tokenization
 * is unaffected; decode reads ids separated by whitespace. */
#include "lmc/tokenizer.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK (1 << 20)

typedef struct {
    FILE *f;
    char buf[1 << 16];
    size_t len;
} outbuf;

static void out_put(outbuf *o, const char *s, size_t n)
{
    if (o->len + n > sizeof o->buf) {
        fwrite(o->buf, 1, o->len, o->f);
        o->len = 0;
    }
    if (n > sizeof o->buf) {
        fwrite(s, 1, n, o->f);
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static lmc_status out_flush(outbuf *o)
{
    fwrite(o->buf, 1, o->len, o->f);
    o->len = 0;
    if (fflush(o->f) != 0 || ferror(o->f))
        return lmc_err(LMC_EIO, "<stdout>: write failed: %s", strerror(errno));
    return LMC_OK;
}

/* Reads up to want more bytes into *buf (grown as needed); *eof at the end. */
static lmc_status read_more(FILE *in, const char *name, char **buf, size_t *len, size_t *cap, size_t want, int *eof)
{
    if (*len + want > *cap) {
        size_t nc = *len + want;
        char *nb = realloc(*buf, nc);
        if (!nb)
            return lmc_err(LMC_ENOMEM, "out of memory reading %s", name);
        *buf = nb;
        *cap = nc;
    }
    size_t r = fread(*buf + *len, 1, want, in);
    *len += r;
    if (r < want) {
        if (ferror(in))
            return lmc_err(LMC_EIO, "%s: read error: %s", name, strerror(errno));
        *eof = 1;
    }
    return LMC_OK;
}

static void put_ids(outbuf *o, const int *ids, size_t n, size_t *count)
{
    char num[16];
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(num, sizeof num, "%s%d", *count ? " " : "", ids[i]);
        out_put(o, num, (size_t)len);
        (*count)++;
    }
}

/* Without --special the input streams through in cut-safe blocks; with it
 * the whole input is read first, since a cut could split a special's name. */
static lmc_status encode_stream(const lmc_tokenizer *tok, FILE *in, const char *name, int special, outbuf *o)
{
    lmc_tok_encoder *enc;
    LMC_TRY(lmc_tok_encoder_new(tok, &enc));
    char *buf = NULL;
    size_t len = 0, cap = 0, count = 0, idcap = 0, nids = 0;
    int *ids = NULL, eof = 0;
    lmc_status s = LMC_OK;
    while (s == LMC_OK && (len || !eof)) {
        if (!eof)
            s = read_more(in, name, &buf, &len, &cap, CHUNK, &eof);
        if (s != LMC_OK || (!eof && (special || len < 2 * CHUNK)))
            continue;
        size_t cut = eof ? len : lmc_tok_find_cut(buf, len, len / 2, len - 4);
        if (!cut && len < ((size_t)64 << 20))
            continue; /* no safe cut yet: read more */
        if (!cut)
            cut = len - 4; /* a 64 MB piece: cut anyway */
        nids = 0;
        if (special) {
            free(ids);
            ids = NULL;
            s = lmc_tok_encode_special(tok, buf, cut, NULL, 0, &ids, &nids);
        } else {
            s = lmc_tok_encoder_encode(enc, buf, cut, &ids, &nids, &idcap);
        }
        if (s == LMC_OK)
            put_ids(o, ids, nids, &count);
        memmove(buf, buf + cut, len - cut);
        len -= cut;
    }
    out_put(o, "\n", 1);
    free(ids);
    free(buf);
    lmc_tok_encoder_free(enc);
    return s;
}

static lmc_status decode_word(const lmc_tokenizer *tok, const char *name, const char *w, size_t n, size_t index,
                              outbuf *o)
{
    char tmp[32];
    if (n >= sizeof tmp)
        return lmc_err(LMC_EFORMAT, "%s: token %zu ('%.24s...') is not a token id", name, index, w);
    memcpy(tmp, w, n);
    tmp[n] = 0;
    if (strlen(tmp) != n) /* "1<NUL>x" read as 1 before */
        return lmc_err(LMC_EFORMAT, "%s: token %zu holds a NUL byte: not a token id", name, index);
    long long id;
    if (lmc_parse_int(tmp, "token", LLONG_MIN, LLONG_MAX, &id) != LMC_OK)
        return lmc_err(LMC_EFORMAT, "%s: token %zu ('%s') is not an integer", name, index, tmp);
    size_t len;
    const char *b = id >= INT32_MIN && id <= INT32_MAX ? lmc_tok_token_bytes(tok, (int)id, &len) : NULL;
    if (!b)
        return lmc_err(LMC_ERANGE, "%s: token %zu: id %lld is out of range (vocab size %d)", name, index, id,
                       lmc_tok_vocab_size(tok));
    out_put(o, b, len);
    return LMC_OK;
}

static lmc_status decode_stream(const lmc_tokenizer *tok, FILE *in, const char *name, outbuf *o)
{
    char word[40];
    size_t wl = 0, index = 0;
    int c;
    while ((c = getc_unlocked(in)) != EOF) {
        if (!isspace(c)) {
            if (wl < sizeof word)
                word[wl] = (char)c;
            wl++;
            continue;
        }
        if (wl)
            LMC_TRY(decode_word(tok, name, word, wl < sizeof word ? wl : sizeof word - 1, ++index, o));
        wl = 0;
    }
    if (ferror(in))
        return lmc_err(LMC_EIO, "%s: read error: %s", name, strerror(errno));
    if (wl)
        LMC_TRY(decode_word(tok, name, word, wl < sizeof word ? wl : sizeof word - 1, ++index, o));
    return LMC_OK;
}

lmc_status lmc_tok_encode_file(const lmc_tokenizer *tok, FILE *in, const char *name, int special, FILE *out)
{
    outbuf *o = malloc(sizeof *o);
    if (!o)
        return lmc_err(LMC_ENOMEM, "out of memory");
    o->f = out, o->len = 0;
    lmc_status s = encode_stream(tok, in, name, special, o);
    lmc_status s2 = out_flush(o);
    free(o);
    return s != LMC_OK ? s : s2;
}

lmc_status lmc_tok_decode_file(const lmc_tokenizer *tok, FILE *in, const char *name, FILE *out)
{
    outbuf *o = malloc(sizeof *o);
    if (!o)
        return lmc_err(LMC_ENOMEM, "out of memory");
    o->f = out, o->len = 0;
    lmc_status s = decode_stream(tok, in, name, o);
    lmc_status s2 = out_flush(o);
    free(o);
    return s != LMC_OK ? s : s2;
}
