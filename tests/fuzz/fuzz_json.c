/* fuzz_json.c: libFuzzer target for the JSON parser (src/core/json.c).
 * Two properties on any bytes:
 *  - the parser accepts exactly what an independent recognizer of RFC 8259
 *    accepts, within lmc's documented limits (nesting depth 256, numbers of
 *    at most 63 characters that fit a double; strings are bytes, not
 *    checked as UTF-8);
 *  - a tree that parses, written back out, parses to the same tree.
 * A refusal must be LMC_EFORMAT with a message naming the source. Seeds:
 * config.json files and a safetensors header from lmc's writers, JSON
 * strings and numbers from its string builder, and past findings. */
#include "fuzz_common.h"
#include "lmc/model.h"
#include "lmc/safetensors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 256 /* json.c's JSON_MAX_DEPTH */

/* ---------- the independent recognizer ---------- */

typedef struct {
    const uint8_t *p, *end;
} reader;

static void ws(reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int is_digit(const reader *r) { return r->p < r->end && *r->p >= '0' && *r->p <= '9'; }

static int digits(reader *r)
{
    if (!is_digit(r))
        return 0;
    while (is_digit(r))
        r->p++;
    return 1;
}

static int is_hex(uint8_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

static int string(reader *r)
{
    r->p++;
    while (r->p < r->end) {
        uint8_t c = *r->p++;
        if (c == '"')
            return 1;
        if (c < 0x20)
            return 0;
        if (c != '\\')
            continue;
        if (r->p >= r->end)
            return 0;
        c = *r->p++;
        if (c == 'u') {
            for (int i = 0; i < 4; i++, r->p++)
                if (r->p >= r->end || !is_hex(*r->p))
                    return 0;
        } else if (!c || !strchr("\"\\/bfnrt", c)) {
            return 0;
        }
    }
    return 0;
}

static int number(reader *r)
{
    const uint8_t *s = r->p;
    if (*r->p == '-')
        r->p++;
    if (!is_digit(r))
        return 0;
    if (*r->p == '0')
        r->p++;
    else
        digits(r);
    if (r->p < r->end && *r->p == '.' && (r->p++, !digits(r)))
        return 0;
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
            r->p++;
        if (!digits(r))
            return 0;
    }
    char buf[64];
    size_t n = (size_t)(r->p - s);
    if (n >= sizeof buf)
        return 0;
    memcpy(buf, s, n);
    buf[n] = 0;
    return !isinf(strtod(buf, NULL));
}

static int word(reader *r, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n))
        return 0;
    r->p += n;
    return 1;
}

static int value(reader *r, int depth);

static int container(reader *r, int depth, uint8_t close)
{
    r->p++;
    ws(r);
    if (r->p < r->end && *r->p == close)
        return r->p++, 1;
    for (;;) {
        ws(r);
        if (close == '}') {
            if (r->p >= r->end || *r->p != '"' || !string(r))
                return 0;
            ws(r);
            if (r->p >= r->end || *r->p++ != ':')
                return 0;
        }
        if (!value(r, depth + 1))
            return 0;
        ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        return r->p < r->end && *r->p++ == close;
    }
}

static int value(reader *r, int depth)
{
    if (depth > MAX_DEPTH)
        return 0;
    ws(r);
    if (r->p >= r->end)
        return 0;
    switch (*r->p) {
    case '{': return container(r, depth, '}');
    case '[': return container(r, depth, ']');
    case '"': return string(r);
    case 't': return word(r, "true");
    case 'f': return word(r, "false");
    case 'n': return word(r, "null");
    default: return (*r->p == '-' || is_digit(r)) && number(r);
    }
}

static int valid_json(const uint8_t *data, size_t size)
{
    reader r = {data, data + size};
    if (!value(&r, 0))
        return 0;
    ws(&r);
    return r.p == r.end;
}

/* ---------- writing a tree back, byte for byte ---------- */

static void put_str(lmc_sb *o, const char *s, size_t n)
{
    lmc_sb_putc(o, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            lmc_sb_putc(o, '\\'), lmc_sb_putc(o, (char)c);
        else if (c < 0x20)
            lmc_sb_printf(o, "\\u%04x", c);
        else
            lmc_sb_putc(o, (char)c); /* other bytes as they are: the parser does not decode UTF-8 */
    }
    lmc_sb_putc(o, '"');
}

static void put_json(lmc_sb *o, const lmc_json *j)
{
    switch (j->type) {
    case LMC_JSON_NULL: lmc_sb_puts(o, "null"); break;
    case LMC_JSON_BOOL: lmc_sb_puts(o, j->num ? "true" : "false"); break;
    case LMC_JSON_NUM: lmc_sb_printf(o, "%.17g", j->num); break;
    case LMC_JSON_STR: put_str(o, j->str, j->slen); break;
    case LMC_JSON_ARR:
    case LMC_JSON_OBJ:
        lmc_sb_putc(o, j->type == LMC_JSON_ARR ? '[' : '{');
        for (const lmc_json *c = j->child; c; c = c->next) {
            if (c != j->child)
                lmc_sb_putc(o, ',');
            if (j->type == LMC_JSON_OBJ)
                put_str(o, c->key, strlen(c->key)), lmc_sb_putc(o, ':');
            put_json(o, c);
        }
        lmc_sb_putc(o, j->type == LMC_JSON_ARR ? ']' : '}');
        break;
    }
}

static int same_tree(const lmc_json *a, const lmc_json *b)
{
    if (a->type != b->type || a->n != b->n || (a->key == NULL) != (b->key == NULL) || (a->key && strcmp(a->key, b->key)))
        return 0;
    if (a->type == LMC_JSON_NUM || a->type == LMC_JSON_BOOL)
        return a->num == b->num && signbit(a->num) == signbit(b->num);
    if (a->type == LMC_JSON_STR)
        return a->slen == b->slen && !memcmp(a->str, b->str, a->slen) && a->str[a->slen] == 0;
    int n = 0;
    const lmc_json *x = a->child, *y = b->child;
    for (; x && y; x = x->next, y = y->next, n++)
        if (!same_tree(x, y))
            return 0;
    return !x && !y && n == a->n;
}

/* The getters agree with the tree: the last member of a name wins. */
static void check_getters(const lmc_json *obj)
{
    if (obj->type != LMC_JSON_OBJ)
        return;
    for (const lmc_json *c = obj->child; c; c = c->next) {
        const lmc_json *g = lmc_json_get(obj, c->key);
        FUZZ_ASSERT(g && !strcmp(g->key, c->key));
        long long v = 0;
        lmc_status s = lmc_json_get_int(obj, c->key, "fuzz.json", &v);
        int integral = g->type == LMC_JSON_NUM && g->num == floor(g->num) && fabs(g->num) <= 9e15;
        FUZZ_ASSERT((s == LMC_OK) == integral && (!integral || v == (long long)g->num));
    }
}

/* ---------- seeds: what lmc itself writes ---------- */

static void seed_config(const char *preset)
{
    lmc_model_config c;
    if (lmc_config_preset(preset, &c))
        abort();
    lmc_sb o;
    lmc_sb_init(&o);
    lmc_config_to_hf_json(&c, &o);
    char name[64];
    snprintf(name, sizeof name, "seed-config-%s", preset);
    fuzz_seed(name, -1, o.s, o.len);
    lmc_sb_free(&o);
}

static void seed_safetensors_header(void)
{
    float w[6] = {0};
    lmc_st_entry e[2] = {{"h.0.attn.c_attn.weight", "F32", 2, {2, 3}, w}, {"wte", "BF16", 1, {6}, w}};
    const char *meta[] = {"format", "pt", "lmc", "q\"uote\\d \x01 \xc3\xa9", NULL};
    lmc_sb o;
    size_t data_len;
    lmc_sb_init(&o);
    if (lmc_st_header(e, 2, meta, &o, &data_len))
        abort();
    fuzz_seed("seed-safetensors-header", -1, o.s + 8, o.len - 8);
    lmc_sb_free(&o);
}

static void seed_values(void)
{
    static const char text[] = "tab\t nl\n quote\" back\\ slash/ nul\0 \x7f \xc3\xa9 \xe4\xb8\xad \xf0\x9f\x8e\x89 \xff";
    static const double nums[] = {0, -0.0, 0.1, -2.5e-8, 1e300, 4.9e-324, 123456789012345, 1.0f / 3, 65536};
    lmc_sb o;
    lmc_sb_init(&o);
    lmc_sb_puts(&o, "{\"s\": ");
    lmc_sb_json_str(&o, text, sizeof text - 1);
    lmc_sb_puts(&o, ", \"n\": [");
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) {
        lmc_sb_puts(&o, i ? ", " : "");
        lmc_sb_json_num(&o, nums[i]);
    }
    lmc_sb_puts(&o, "], \"t\": true, \"f\": false, \"z\": null, \"a\": [[], {}, [{\"k\": [1]}]], \"s\": \"dup\"}");
    fuzz_seed("seed-values", -1, o.s, o.len);
    lmc_sb_free(&o);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (fuzz_seeding()) {
        seed_config("d12");
        seed_config("llama-1b");
        seed_safetensors_header();
        seed_values();
        /* past findings, replayed by every smoke run (tests/unit/test_parsers.c) */
        fuzz_seed("regress-backslash-at-end", -1, "\"abc\\", 5);
        fuzz_seed("regress-number-overflow", -1, "[1e999]", 7);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lmc_json *j = NULL;
    lmc_status s = lmc_json_parse((const char *)data, size, "fuzz.json", &j);
    FUZZ_ASSERT((s == LMC_OK) == valid_json(data, size));
    if (s != LMC_OK) {
        FUZZ_ASSERT(s == LMC_EFORMAT && j == NULL && !strncmp(lmc_errmsg(), "fuzz.json: malformed JSON", 25));
        return 0;
    }
    check_getters(j);
    lmc_sb o;
    lmc_sb_init(&o);
    put_json(&o, j);
    lmc_json *back = NULL;
    FUZZ_ASSERT(!o.oom && lmc_json_parse(o.s, o.len, "written back", &back) == LMC_OK);
    FUZZ_ASSERT(same_tree(j, back));
    lmc_json_free(back);
    lmc_sb_free(&o);
    lmc_json_free(j);
    return 0;
}
