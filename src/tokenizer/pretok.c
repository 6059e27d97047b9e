/* pretok.c: GPT-2's pre-tokenizer as a hand-written state machine, and the
 * "safe cut" test that lets long texts be split into blocks (for threads and
 * streaming) without changing a single piece.
 *
 * The pattern, tried in order at each position (JS RegExp, u flag):
 *   's|'t|'re|'ve|'m|'ll|'d | ?\p{L}+ | ?\p{N}+ | ?[^\s\p{L}\p{N}]+ | \s+(?!\S) | \s+
 * Every alternative is greedy and none needs backtracking except \s+(?!\S),
 * which gives back the last whitespace character when a non-space follows. */
#include "tokenizer/tok_internal.h"

/* Class and length of the character at p. */
static inline int char_at(const uint8_t *s, size_t n, size_t p, int *len)
{
    uint8_t c = s[p];
    if (c < 0x80) {
        *len = 1;
        return lmc_tok_ascii_class[c];
    }
    uint32_t cp;
    *len = utf8_next(s + p, n - p, &cp);
    return cp == UC_INVALID ? UC_OTHER : uc_class(cp);
}

/* End of the run of characters of class cls starting at p. */
static size_t run_end(const uint8_t *s, size_t n, size_t p, int cls)
{
    while (p < n) {
        uint8_t c = s[p];
        if (c < 0x80) {
            if (lmc_tok_ascii_class[c] != cls)
                break;
            p++;
            continue;
        }
        int len;
        if (char_at(s, n, p, &len) != cls)
            break;
        p += (size_t)len;
    }
    return p;
}

/* 's 't 're 've 'm 'll 'd: length of the contraction at p, or 0. */
static size_t contraction(const uint8_t *s, size_t n, size_t p)
{
    if (p + 1 >= n)
        return 0;
    uint8_t a = s[p + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if (p + 2 >= n)
        return 0;
    uint8_t b = s[p + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        return 3;
    return 0;
}

size_t lmc_tok_piece_end(const char *text, size_t n, size_t p)
{
    const uint8_t *s = (const uint8_t *)text;
    if (s[p] == '\'') {
        size_t c = contraction(s, n, p);
        if (c)
            return p + c;
    }
    int len, cls = char_at(s, n, p, &len);
    if (cls != UC_SPACE)
        return run_end(s, n, p + (size_t)len, cls);
    if (s[p] == ' ' && p + 1 < n) {
        /* " ?X+": a single space joins the run that follows it */
        int len2, cls2 = char_at(s, n, p + 1, &len2);
        if (cls2 != UC_SPACE)
            return run_end(s, n, p + 1 + (size_t)len2, cls2);
    }
    /* whitespace run; \s+(?!\S) leaves its last character to the next piece */
    size_t q = p + (size_t)len, last = p;
    while (q < n) {
        int l2;
        if (char_at(s, n, q, &l2) != UC_SPACE)
            break;
        last = q;
        q += (size_t)l2;
    }
    if (q < n && last > p)
        return last;
    return q;
}

/* Class of the character that ends just before k (k > 0), and its length.
 * A character spans back from k only if its lead byte decodes to exactly
 * that length; otherwise s[k-1] is a character of its own. */
static int class_before(const uint8_t *s, size_t k, uint32_t *cpout, size_t *lenout)
{
    for (size_t back = 2; back <= 4 && back <= k; back++) {
        uint8_t c = s[k - back];
        if ((c & 0xC0) == 0x80)
            continue;
        uint32_t cp;
        if (utf8_next(s + k - back, back, &cp) == (int)back) {
            *cpout = cp;
            *lenout = back;
            return uc_class(cp);
        }
        break;
    }
    uint8_t c = s[k - 1];
    *cpout = c < 0x80 ? c : UC_INVALID;
    *lenout = 1;
    return c < 0x80 ? lmc_tok_ascii_class[c] : UC_OTHER;
}

/* Is k a boundary that every context agrees on? Two cases:
 *  (a) non-space characters of different classes meet at k and the left one
 *      is not an apostrophe (which could start a contraction): every
 *      alternative's run stops at k, and nothing after k looks back;
 *  (b) a single whitespace character other than ' ' sits just before k,
 *      between non-space characters: it is a piece of its own either way.
 * k must also start a character, so the right part decodes the same. */
static int safe_cut(const uint8_t *s, size_t n, size_t k)
{
    if (k == 0 || k >= n || (s[k] & 0xC0) == 0x80)
        return 0;
    int len, right = char_at(s, n, k, &len);
    if (right == UC_SPACE)
        return 0;
    uint32_t cp;
    size_t wlen;
    int left = class_before(s, k, &cp, &wlen);
    if (left != UC_SPACE)
        return left != right && cp != '\'';
    if (cp == ' ' || wlen >= k)
        return 0;
    size_t plen;
    return class_before(s, k - wlen, &cp, &plen) != UC_SPACE;
}

size_t lmc_tok_find_cut(const char *text, size_t n, size_t from, size_t to)
{
    const uint8_t *s = (const uint8_t *)text;
    if (from == 0)
        from = 1;
    if (to >= n)
        to = n - 1;
    for (size_t k = from; k <= to && k < n; k++)
        if (safe_cut(s, n, k))
            return k;
    return 0;
}
