/* text.c: generated tokens to text a client can be handed piece by piece:
 * stop strings are matched across token boundaries (and never shown), and
 * pieces end on whole UTF-8 characters. */
#include "lmc/infer.h"

#include <stdlib.h>
#include <string.h>

lmc_status lmc_text_init(lmc_textstream *t, const char *const *stops, int n_stops)
{
    memset(t, 0, sizeof *t);
    lmc_sb_init(&t->text);
    if (n_stops <= 0)
        return LMC_OK;
    t->stop = calloc((size_t)n_stops, sizeof *t->stop);
    t->stop_len = calloc((size_t)n_stops, sizeof *t->stop_len);
    if (!t->stop || !t->stop_len)
        return lmc_err(LMC_ENOMEM, "out of memory");
    for (int i = 0; i < n_stops; i++) {
        size_t len = strlen(stops[i]);
        if (!len)
            continue; /* an empty stop string would match everywhere: ignored */
        t->stop[t->n_stop] = lmc_strdup(stops[i]);
        if (!t->stop[t->n_stop])
            return lmc_err(LMC_ENOMEM, "out of memory");
        t->stop_len[t->n_stop++] = len;
    }
    return LMC_OK;
}

void lmc_text_free(lmc_textstream *t)
{
    for (int i = 0; i < t->n_stop; i++)
        free(t->stop[i]);
    free(t->stop), free(t->stop_len);
    lmc_sb_free(&t->text);
    memset(t, 0, sizeof *t);
}

/* first occurrence of needle in hay[from..len) */
static long find(const char *hay, size_t len, size_t from, const char *needle, size_t nlen)
{
    for (size_t i = from; i + nlen <= len; i++)
        if (hay[i] == needle[0] && !memcmp(hay + i, needle, nlen))
            return (long)i;
    return -1;
}

int lmc_text_push(lmc_textstream *t, const char *bytes, size_t n)
{
    if (t->stopped)
        return 1;
    size_t old = t->text.len;
    lmc_sb_put(&t->text, bytes, n);
    long best = -1;
    for (int i = 0; i < t->n_stop; i++) {
        /* a new match must end in the new bytes */
        size_t from = old + 1 > t->stop_len[i] ? old + 1 - t->stop_len[i] : 0;
        if (from < t->emitted)
            from = t->emitted;
        long at = find(t->text.s, t->text.len, from, t->stop[i], t->stop_len[i]);
        if (at >= 0 && (best < 0 || at < best))
            best = at;
    }
    if (best >= 0) {
        t->text.len = (size_t)best;
        t->stopped = 1;
    }
    return t->stopped;
}

/* Bytes at the end of s[0..len) that start a UTF-8 character not yet
 * complete (0..3); invalid bytes are not held back, they will never
 * complete. */
static size_t utf8_incomplete_tail(const unsigned char *s, size_t len)
{
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        unsigned char c = s[len - back];
        if ((c & 0xC0) == 0x80)
            continue; /* continuation byte: look further back for the lead */
        size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
        return need > back ? back : 0;
    }
    return 0;
}

size_t lmc_text_take(lmc_textstream *t, int final, const char **p)
{
    size_t end = t->text.len;
    if (!final && !t->stopped) {
        /* hold back a tail that could still grow into a stop string */
        size_t hold = 0;
        for (int i = 0; i < t->n_stop; i++) {
            size_t max = t->stop_len[i] - 1;
            for (size_t k = max < end - t->emitted ? max : end - t->emitted; k > hold; k--)
                if (!memcmp(t->text.s + end - k, t->stop[i], k)) {
                    hold = k;
                    break;
                }
        }
        end -= hold;
        end -= utf8_incomplete_tail((const unsigned char *)t->text.s + t->emitted, end - t->emitted);
    }
    *p = t->text.s ? t->text.s + t->emitted : "";
    size_t n = end > t->emitted ? end - t->emitted : 0;
    t->emitted += n;
    return n;
}
