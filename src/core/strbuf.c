/* strbuf.c: growable string builder with JSON string/number writers. */
#include "lmc/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void lmc_sb_init(lmc_sb *b) { memset(b, 0, sizeof *b); }

void lmc_sb_free(lmc_sb *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

static int reserve(lmc_sb *b, size_t extra)
{
    if (b->oom)
        return 0;
    if (b->len + extra + 1 <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->oom = 1;
        return 0;
    }
    b->s = s;
    b->cap = cap;
    return 1;
}

void lmc_sb_put(lmc_sb *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

void lmc_sb_putc(lmc_sb *b, char c) { lmc_sb_put(b, &c, 1); }
void lmc_sb_puts(lmc_sb *b, const char *s) { lmc_sb_put(b, s, strlen(s)); }

void lmc_sb_vprintf(lmc_sb *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || !reserve(b, (size_t)n))
        return;
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void lmc_sb_printf(lmc_sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lmc_sb_vprintf(b, fmt, ap);
    va_end(ap);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static int utf8_valid_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    int len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0)
        len = 2, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
        len = 3, min = 0x800;
    else if ((c & 0xF8) == 0xF0)
        len = 4, min = 0x10000;
    else
        return 0;
    if ((size_t)len > n)
        return 0;
    unsigned cp = c & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

void lmc_sb_json_str(lmc_sb *b, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    lmc_sb_putc(b, '"');
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c == '"' || c == '\\') {
            lmc_sb_putc(b, '\\');
            lmc_sb_putc(b, (char)c);
            i++;
        } else if (c < 0x20) {
            switch (c) {
            case '\n': lmc_sb_puts(b, "\\n"); break;
            case '\r': lmc_sb_puts(b, "\\r"); break;
            case '\t': lmc_sb_puts(b, "\\t"); break;
            default: lmc_sb_printf(b, "\\u%04x", c);
            }
            i++;
        } else {
            int len = utf8_valid_len(s + i, n - i);
            if (len == 0) {
                lmc_sb_puts(b, "\xEF\xBF\xBD");
                i++;
            } else {
                lmc_sb_put(b, (const char *)s + i, (size_t)len);
                i += (size_t)len;
            }
        }
    }
    lmc_sb_putc(b, '"');
}

void lmc_sb_json_num(lmc_sb *b, double v)
{
    if (!isfinite(v)) {
        lmc_sb_puts(b, "null");
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) {
        lmc_sb_printf(b, "%.0f", v);
        return;
    }
    char buf[64];
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    lmc_sb_puts(b, buf);
}
