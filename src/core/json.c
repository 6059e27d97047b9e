/* json.c: a small strict JSON parser (RFC 8259) producing a tree. */
#include "lmc/core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 256

typedef struct {
    const char *p, *end, *start;
    const char *what;
    lmc_status st;
} parser;

static lmc_status fail(parser *ps, const char *msg)
{
    if (ps->st == LMC_OK) {
        /* report line and column so a user can find the spot */
        int line = 1, col = 1;
        for (const char *c = ps->start; c < ps->p && c < ps->end; c++) {
            if (*c == '\n')
                line++, col = 1;
            else
                col++;
        }
        ps->st = lmc_err(LMC_EFORMAT, "%s: malformed JSON at line %d column %d: %s", ps->what, line, col, msg);
    }
    return ps->st;
}

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static lmc_json *new_node(parser *ps, lmc_json_type t)
{
    lmc_json *j = calloc(1, sizeof *j);
    if (!j) {
        if (ps->st == LMC_OK)
            ps->st = lmc_err(LMC_ENOMEM, "%s: out of memory parsing JSON", ps->what);
        return NULL;
    }
    j->type = t;
    return j;
}

static int hex4(parser *ps, unsigned *out)
{
    if (ps->end - ps->p < 4)
        return 0;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = ps->p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return 0;
    }
    ps->p += 4;
    *out = v;
    return 1;
}

static void put_utf8(lmc_sb *b, unsigned cp)
{
    char u[4];
    int n;
    if (cp < 0x80)
        u[0] = (char)cp, n = 1;
    else if (cp < 0x800)
        u[0] = (char)(0xC0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    else if (cp < 0x10000)
        u[0] = (char)(0xE0 | (cp >> 12)), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F)),
        u[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    else
        u[0] = (char)(0xF0 | (cp >> 18)), u[1] = (char)(0x80 | ((cp >> 12) & 0x3F)),
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    lmc_sb_put(b, u, (size_t)n);
}

/* Parses a string literal (p at the opening quote) into a fresh buffer. */
static int parse_string(parser *ps, char **out, size_t *outlen)
{
    lmc_sb b;
    lmc_sb_init(&b);
    lmc_sb_put(&b, "", 0);
    ps->p++;
    for (;;) {
        if (ps->p >= ps->end) {
            lmc_sb_free(&b);
            return fail(ps, "unterminated string"), 0;
        }
        unsigned char c = (unsigned char)*ps->p;
        if (c == '"') {
            ps->p++;
            break;
        }
        if (c < 0x20) {
            lmc_sb_free(&b);
            return fail(ps, "control character in string"), 0;
        }
        if (c != '\\') {
            const char *run = ps->p;
            while (ps->p < ps->end && *ps->p != '"' && *ps->p != '\\' && (unsigned char)*ps->p >= 0x20)
                ps->p++;
            lmc_sb_put(&b, run, (size_t)(ps->p - run));
            continue;
        }
        ps->p++;
        if (ps->p >= ps->end) { /* input ends inside an escape: no closing quote either */
            lmc_sb_free(&b);
            return fail(ps, "unterminated string"), 0;
        }
        char e = *ps->p++;
        switch (e) {
        case '"': lmc_sb_putc(&b, '"'); break;
        case '\\': lmc_sb_putc(&b, '\\'); break;
        case '/': lmc_sb_putc(&b, '/'); break;
        case 'b': lmc_sb_putc(&b, '\b'); break;
        case 'f': lmc_sb_putc(&b, '\f'); break;
        case 'n': lmc_sb_putc(&b, '\n'); break;
        case 'r': lmc_sb_putc(&b, '\r'); break;
        case 't': lmc_sb_putc(&b, '\t'); break;
        case 'u': {
            unsigned cp, lo;
            if (!hex4(ps, &cp)) {
                lmc_sb_free(&b);
                return fail(ps, "bad \\u escape"), 0;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u') {
                    const char *save = ps->p;
                    ps->p += 2;
                    if (hex4(ps, &lo) && lo >= 0xDC00 && lo <= 0xDFFF)
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    else
                        ps->p = save, cp = 0xFFFD;
                } else {
                    cp = 0xFFFD;
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            put_utf8(&b, cp);
            break;
        }
        default:
            lmc_sb_free(&b);
            return fail(ps, "bad escape in string"), 0;
        }
    }
    if (b.oom) {
        lmc_sb_free(&b);
        return fail(ps, "out of memory"), 0;
    }
    *out = b.s;
    *outlen = b.len;
    return 1;
}

static lmc_json *parse_value(parser *ps, int depth);

static lmc_json *parse_number(parser *ps)
{
    const char *s = ps->p;
    if (ps->p < ps->end && *ps->p == '-')
        ps->p++;
    if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9'))
        return fail(ps, "bad number"), NULL;
    if (*ps->p == '0')
        ps->p++;
    else
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    if (ps->p < ps->end && *ps->p == '.') {
        ps->p++;
        if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9'))
            return fail(ps, "bad number"), NULL;
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
            ps->p++;
        if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9'))
            return fail(ps, "bad number"), NULL;
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    }
    char buf[64];
    size_t n = (size_t)(ps->p - s);
    if (n >= sizeof buf)
        return fail(ps, "number too long"), NULL;
    memcpy(buf, s, n);
    buf[n] = 0;
    double v = strtod(buf, NULL);
    if (isinf(v)) { /* refused rather than read as inf, which no JSON writer can give back */
        char msg[128];
        snprintf(msg, sizeof msg, "number %s is out of range (beyond +-1.8e308)", buf);
        ps->p = s;
        return fail(ps, msg), NULL;
    }
    lmc_json *j = new_node(ps, LMC_JSON_NUM);
    if (j)
        j->num = v;
    return j;
}

static int literal(parser *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, word, n) == 0) {
        ps->p += n;
        return 1;
    }
    return 0;
}

static lmc_json *parse_container(parser *ps, int depth, int is_obj)
{
    lmc_json *j = new_node(ps, is_obj ? LMC_JSON_OBJ : LMC_JSON_ARR), *last = NULL;
    if (!j)
        return NULL;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == (is_obj ? '}' : ']')) {
        ps->p++;
        return j;
    }
    for (;;) {
        char *key = NULL;
        size_t klen;
        skip_ws(ps);
        if (is_obj) {
            if (ps->p >= ps->end || *ps->p != '"') {
                fail(ps, "expected a member name");
                goto bad;
            }
            if (!parse_string(ps, &key, &klen))
                goto bad;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                free(key);
                fail(ps, "expected ':'");
                goto bad;
            }
            ps->p++;
        }
        lmc_json *v = parse_value(ps, depth + 1);
        if (!v) {
            free(key);
            goto bad;
        }
        v->key = key;
        if (last)
            last->next = v;
        else
            j->child = v;
        last = v;
        j->n++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == (is_obj ? '}' : ']')) {
            ps->p++;
            return j;
        }
        fail(ps, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
        goto bad;
    }
bad:
    lmc_json_free(j);
    return NULL;
}

static lmc_json *parse_value(parser *ps, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return fail(ps, "nested too deeply"), NULL;
    skip_ws(ps);
    if (ps->p >= ps->end)
        return fail(ps, "unexpected end of input"), NULL;
    char c = *ps->p;
    if (c == '{' || c == '[')
        return parse_container(ps, depth, c == '{');
    if (c == '"') {
        lmc_json *j = new_node(ps, LMC_JSON_STR);
        if (j && !parse_string(ps, &j->str, &j->slen)) {
            free(j);
            return NULL;
        }
        return j;
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return parse_number(ps);
    if (literal(ps, "true") || literal(ps, "false")) {
        lmc_json *j = new_node(ps, LMC_JSON_BOOL);
        if (j)
            j->num = ps->p[-1] == 'e' && ps->p[-2] == 'u';
        return j;
    }
    if (literal(ps, "null"))
        return new_node(ps, LMC_JSON_NULL);
    return fail(ps, "unexpected character"), NULL;
}

lmc_status lmc_json_parse(const char *text, size_t n, const char *what, lmc_json **out)
{
    parser ps = {text, text + n, text, what ? what : "JSON", LMC_OK};
    *out = NULL;
    lmc_json *j = parse_value(&ps, 0);
    if (!j)
        return ps.st ? ps.st : fail(&ps, "parse error");
    skip_ws(&ps);
    if (ps.p != ps.end) {
        lmc_json_free(j);
        return fail(&ps, "trailing characters after the value");
    }
    *out = j;
    return LMC_OK;
}

void lmc_json_free(lmc_json *j)
{
    while (j) {
        lmc_json *next = j->next;
        lmc_json_free(j->child);
        free(j->str);
        free(j->key);
        free(j);
        j = next;
    }
}

lmc_json *lmc_json_get(const lmc_json *obj, const char *key)
{
    if (!obj || obj->type != LMC_JSON_OBJ)
        return NULL;
    lmc_json *found = NULL;
    for (lmc_json *c = obj->child; c; c = c->next)
        if (!strcmp(c->key, key))
            found = c; /* last duplicate wins, as in most parsers */
    return found;
}

lmc_json *lmc_json_at(const lmc_json *arr, int i)
{
    if (!arr || arr->type != LMC_JSON_ARR || i < 0)
        return NULL;
    lmc_json *c = arr->child;
    while (c && i-- > 0)
        c = c->next;
    return c;
}

static lmc_status wrong_type(const char *what, const char *key, const char *want)
{
    return lmc_err(LMC_EFORMAT, "%s: field '%s' must be %s", what, key, want);
}

lmc_status lmc_json_get_num(const lmc_json *obj, const char *key, const char *what, double *out)
{
    lmc_json *v = lmc_json_get(obj, key);
    if (!v)
        return LMC_OK;
    if (v->type != LMC_JSON_NUM)
        return wrong_type(what, key, "a number");
    *out = v->num;
    return LMC_OK;
}

lmc_status lmc_json_get_int(const lmc_json *obj, const char *key, const char *what, long long *out)
{
    lmc_json *v = lmc_json_get(obj, key);
    if (!v)
        return LMC_OK;
    if (v->type != LMC_JSON_NUM || v->num != floor(v->num) || fabs(v->num) > 9.0e15)
        return wrong_type(what, key, "an integer");
    *out = (long long)v->num;
    return LMC_OK;
}

lmc_status lmc_json_get_bool(const lmc_json *obj, const char *key, const char *what, int *out)
{
    lmc_json *v = lmc_json_get(obj, key);
    if (!v)
        return LMC_OK;
    if (v->type != LMC_JSON_BOOL)
        return wrong_type(what, key, "true or false");
    *out = (int)v->num;
    return LMC_OK;
}

lmc_status lmc_json_get_str(const lmc_json *obj, const char *key, const char *what, const char **out)
{
    lmc_json *v = lmc_json_get(obj, key);
    if (!v)
        return LMC_OK;
    if (v->type != LMC_JSON_STR)
        return wrong_type(what, key, "a string");
    *out = v->str;
    return LMC_OK;
}
