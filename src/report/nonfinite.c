/* nonfinite.c: logs written by Python (json.dumps) hold bare NaN, Infinity
 * and -Infinity, which are not JSON. Rather than refuse the line, quote
 * those words (outside strings) and parse again: read.c then takes the
 * strings "NaN", "Infinity" as non-finite values, as it takes lmc's null. */
#include "report/report.h"

#include <stdlib.h>
#include <string.h>

static const char *const words[] = {"-Infinity", "Infinity", "NaN"};

static size_t bare_word(const char *s, size_t left)
{
    for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
        size_t n = strlen(words[i]);
        if (left >= n && !memcmp(s, words[i], n))
            return n;
    }
    return 0;
}

/* s with each bare word quoted; NULL when there is none (or no memory). */
static char *quote_words(const char *s, size_t n, size_t *out_n)
{
    lmc_sb b;
    lmc_sb_init(&b);
    int in_str = 0, quoted = 0;
    for (size_t i = 0; i < n; i++) {
        size_t w = in_str ? 0 : bare_word(s + i, n - i);
        if (w) {
            lmc_sb_putc(&b, '"');
            lmc_sb_put(&b, s + i, w);
            lmc_sb_putc(&b, '"');
            i += w - 1;
            quoted = 1;
            continue;
        }
        if (in_str && s[i] == '\\' && i + 1 < n)
            lmc_sb_putc(&b, s[i++]);
        else if (s[i] == '"')
            in_str = !in_str;
        lmc_sb_putc(&b, s[i]);
    }
    if (!quoted || b.oom) {
        lmc_sb_free(&b);
        return NULL;
    }
    *out_n = b.len;
    return b.s;
}

lmc_status lmc_rep_parse_json(const char *s, size_t n, const char *what, lmc_json **out)
{
    lmc_status st = lmc_json_parse(s, n, what, out);
    if (st != LMC_EFORMAT)
        return st;
    size_t qn;
    char *q = quote_words(s, n, &qn);
    if (!q)
        return st;
    char first[1024]; /* the message about the line as written */
    snprintf(first, sizeof first, "%s", lmc_errmsg());
    st = lmc_json_parse(q, qn, what, out);
    free(q);
    if (st == LMC_EFORMAT)
        lmc_err(st, "%s", first);
    return st;
}
