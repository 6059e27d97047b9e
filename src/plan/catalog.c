/* catalog.c: the chip catalogue. share/chips.json is compiled into the
 * binary (Makefile, planner section) so `lmc plan` works from any
 * directory; --chips FILE adds or replaces chips in the same format. */
#include "internal.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Generated from share/ by the Makefile: {path, data, len}, NULL-terminated. */
struct lmc_plan_embed_file {
    const char *path;
    const char *data;
    size_t len;
};
extern const struct lmc_plan_embed_file lmc_plan_embed_files[];

const char *lmc_plan_embedded(const char *path, size_t *len)
{
    for (const struct lmc_plan_embed_file *f = lmc_plan_embed_files; f->path; f++)
        if (!strcmp(f->path, path)) {
            if (len)
                *len = f->len;
            return f->data;
        }
    return NULL;
}

int lmc_plan_embedded_model(int i, char *name, size_t n)
{
    static const char dir[] = "share/models/";
    for (const struct lmc_plan_embed_file *f = lmc_plan_embed_files; f->path; f++) {
        if (strncmp(f->path, dir, sizeof dir - 1) || i-- > 0)
            continue;
        const char *base = f->path + sizeof dir - 1;
        size_t len = strlen(base);
        if (len > 5 && !strcmp(base + len - 5, ".json"))
            len -= 5;
        snprintf(name, n, "%.*s", (int)len, base);
        return 1;
    }
    return 0;
}

/* ---------- names ---------- */

void lmc_plan_chip_key(const char *name, char *key, size_t n)
{
    /* vendor and family words carry no identity: "NVIDIA H100" == "h100" */
    static const char *const prefixes[] = {"nvidia", "amd", "huawei", "ascend", "instinct", "intel", NULL};
    char tmp[128];
    size_t k = 0;
    for (const char *p = name; *p && k + 1 < sizeof tmp; p++)
        if (isalnum((unsigned char)*p))
            tmp[k++] = (char)tolower((unsigned char)*p);
    tmp[k] = 0;
    const char *s = tmp;
    for (int again = 1; again;) {
        again = 0;
        for (int i = 0; prefixes[i]; i++) {
            size_t pl = strlen(prefixes[i]);
            if (!strncmp(s, prefixes[i], pl) && s[pl]) {
                s += pl;
                again = 1;
            }
        }
    }
    snprintf(key, n, "%s", s);
}

static int chip_matches(const lmc_plan_chip *c, const char *key)
{
    char k[128];
    lmc_plan_chip_key(c->name, k, sizeof k);
    if (!strcmp(k, key))
        return 1;
    for (int i = 0; i < c->n_aliases; i++) {
        lmc_plan_chip_key(c->aliases[i], k, sizeof k);
        if (!strcmp(k, key))
            return 1;
    }
    return 0;
}

const lmc_plan_chip *lmc_plan_catalog_find(const lmc_plan_catalog *cat, const char *name)
{
    char key[128];
    lmc_plan_chip_key(name, key, sizeof key);
    if (!key[0])
        return NULL;
    for (int i = 0; i < cat->n; i++)
        if (chip_matches(&cat->chips[i], key))
            return &cat->chips[i];
    return NULL;
}

lmc_status lmc_plan_catalog_get(const lmc_plan_catalog *cat, const char *name, const char *what,
                                const lmc_plan_chip **out)
{
    *out = lmc_plan_catalog_find(cat, name);
    if (*out)
        return LMC_OK;
    lmc_sb b;
    lmc_sb_init(&b);
    for (int i = 0; i < cat->n; i++)
        lmc_sb_printf(&b, "%s%s", i ? ", " : "", cat->chips[i].name);
    lmc_status s = lmc_err(LMC_EINVAL, "%s: unknown chip '%s' (known: %s; add your own with --chips FILE)", what,
                           name, b.s ? b.s : "none");
    lmc_sb_free(&b);
    return s;
}

/* ---------- parsing ---------- */

static const char *const chip_fields[] = {
    "name", "vendor", "aliases", "bf16_tflops", "fp32_tflops", "tf32_tflops", "fp8_tflops", "memory_gb",
    "memory_bw_gbs", "intra_node_gbs",
    "network_gbs", "chips_per_node", "matmul_efficiency", "attention_efficiency", "fp32_matmul_efficiency",
    "fp32_attention_efficiency", "latency_us", "intra_latency_us", "kernel_us", "gemm_half_rows", "transcendental_gops", "measure", "sources", "notes", NULL,
};

static int known(const char *const *list, const char *key)
{
    for (int i = 0; list[i]; i++)
        if (!strcmp(list[i], key))
            return 1;
    return 0;
}

typedef struct {
    const lmc_json *o;
    const char *what; /* "chips.json: chips[3] (H100)" */
} chip_ctx;

/* A number field in [lo, hi]; absent keeps *out (required: error). */
static lmc_status num(const chip_ctx *x, const char *key, int required, double lo, double hi, double *out)
{
    lmc_json *v = lmc_json_get(x->o, key);
    if (!v) {
        if (required)
            return lmc_err(LMC_EFORMAT, "%s: missing field '%s'", x->what, key);
        return LMC_OK;
    }
    if (v->type != LMC_JSON_NUM)
        return lmc_err(LMC_EFORMAT, "%s: field '%s' must be a number", x->what, key);
    if (!(v->num >= lo && v->num <= hi) || (lo == 0 && v->num == 0))
        return lmc_err(LMC_ERANGE, "%s: field '%s' = %g must be in %s%g, %g]", x->what, key, v->num,
                       lo == 0 ? "(" : "[", lo, hi);
    *out = v->num;
    return LMC_OK;
}

static lmc_status str_field(const chip_ctx *x, const char *key, char *dst, size_t n)
{
    const char *s = NULL;
    LMC_TRY(lmc_json_get_str(x->o, key, x->what, &s));
    if (!s)
        return LMC_OK;
    if (strlen(s) >= n)
        return lmc_err(LMC_EFORMAT, "%s: field '%s' = '%.40s...' is longer than %zu characters", x->what, key, s,
                       n - 1);
    snprintf(dst, n, "%s", s);
    return LMC_OK;
}

static lmc_status parse_aliases(const chip_ctx *x, lmc_plan_chip *c)
{
    lmc_json *a = lmc_json_get(x->o, "aliases");
    if (!a)
        return LMC_OK;
    if (a->type != LMC_JSON_ARR)
        return lmc_err(LMC_EFORMAT, "%s: field 'aliases' must be an array of strings", x->what);
    if (a->n > LMC_PLAN_MAX_ALIASES)
        return lmc_err(LMC_EFORMAT, "%s: %d aliases, at most %d", x->what, a->n, LMC_PLAN_MAX_ALIASES);
    for (lmc_json *e = a->child; e; e = e->next) {
        if (e->type != LMC_JSON_STR || !e->str[0] || strlen(e->str) >= LMC_PLAN_NAME)
            return lmc_err(LMC_EFORMAT, "%s: aliases[%d] must be a non-empty string shorter than %d", x->what,
                           c->n_aliases, LMC_PLAN_NAME);
        snprintf(c->aliases[c->n_aliases++], LMC_PLAN_NAME, "%s", e->str);
    }
    return LMC_OK;
}

static lmc_status parse_chip_fields(const chip_ctx *x, lmc_plan_chip *c)
{
    for (lmc_json *m = x->o->child; m; m = m->next)
        if (!known(chip_fields, m->key))
            return lmc_err(LMC_EFORMAT, "%s: unknown field '%s' (see docs/planner.md for the chip format)", x->what,
                           m->key);
    LMC_TRY(str_field(x, "vendor", c->vendor, sizeof c->vendor));
    LMC_TRY(parse_aliases(x, c));
    LMC_TRY(num(x, "bf16_tflops", 1, 0, 1e6, &c->bf16_tflops));
    c->fp32_tflops = c->bf16_tflops / 2; /* a file without it: half the bf16 rate (a guess: give the figure) */
    LMC_TRY(num(x, "fp32_tflops", 0, 0, 1e6, &c->fp32_tflops));
    LMC_TRY(num(x, "tf32_tflops", 0, 0, 1e6, &c->tf32_tflops)); /* absent: 0, no TF32 mode */
    LMC_TRY(num(x, "fp8_tflops", 0, 0, 1e6, &c->fp8_tflops));
    LMC_TRY(num(x, "memory_gb", 1, 0, 1e6, &c->memory_gb));
    LMC_TRY(num(x, "memory_bw_gbs", 1, 0, 1e7, &c->memory_bw_gbs));
    LMC_TRY(num(x, "intra_node_gbs", 1, 0, 1e7, &c->intra_node_gbs));
    LMC_TRY(num(x, "network_gbs", 1, 0, 1e7, &c->network_gbs));
    double cpn = 0;
    LMC_TRY(num(x, "chips_per_node", 1, 1, 65536, &cpn));
    if (cpn != floor(cpn))
        return lmc_err(LMC_EFORMAT, "%s: field 'chips_per_node' = %g must be a whole number", x->what, cpn);
    c->chips_per_node = (int)cpn;
    c->matmul_eff = 0.7;
    LMC_TRY(num(x, "matmul_efficiency", 0, 0, 1, &c->matmul_eff));
    c->attn_eff = 0.6 * c->matmul_eff;
    LMC_TRY(num(x, "attention_efficiency", 0, 0, 1, &c->attn_eff));
    c->matmul_eff_fp32 = c->matmul_eff;
    LMC_TRY(num(x, "fp32_matmul_efficiency", 0, 0, 1, &c->matmul_eff_fp32));
    c->attn_eff_fp32 = c->attn_eff;
    LMC_TRY(num(x, "fp32_attention_efficiency", 0, 0, 1, &c->attn_eff_fp32));
    c->latency_us = 10;
    LMC_TRY(num(x, "latency_us", 0, 0, 1e6, &c->latency_us));
    c->intra_latency_us = LMC_PLAN_INTRA_LAT_US;
    LMC_TRY(num(x, "intra_latency_us", 0, 0, 1e6, &c->intra_latency_us));
    c->kernel_us = 4;
    LMC_TRY(num(x, "kernel_us", 0, 0, 1e6, &c->kernel_us));
    c->gemm_m0 = 64;
    LMC_TRY(num(x, "gemm_half_rows", 0, 0, 1e6, &c->gemm_m0));
    LMC_TRY(num(x, "transcendental_gops", 0, 0, 1e9, &c->sfu_gops));
    LMC_TRY(lmc_json_get_bool(x->o, "measure", x->what, &c->measure));
    lmc_json *src = lmc_json_get(x->o, "sources");
    if (src && src->type != LMC_JSON_OBJ)
        return lmc_err(LMC_EFORMAT, "%s: field 'sources' must be an object (field -> citation)", x->what);
    const char *notes = NULL;
    return lmc_json_get_str(x->o, "notes", x->what, &notes);
}

static lmc_status parse_chip(const lmc_json *o, const char *what, int idx, lmc_plan_chip *c)
{
    char ctx[256];
    memset(c, 0, sizeof *c);
    if (o->type != LMC_JSON_OBJ)
        return lmc_err(LMC_EFORMAT, "%s: chips[%d] must be an object", what, idx);
    const char *name = NULL;
    snprintf(ctx, sizeof ctx, "%s: chips[%d]", what, idx);
    LMC_TRY(lmc_json_get_str(o, "name", ctx, &name));
    if (!name || !name[0])
        return lmc_err(LMC_EFORMAT, "%s: chips[%d]: missing field 'name'", what, idx);
    if (strlen(name) >= LMC_PLAN_NAME)
        return lmc_err(LMC_EFORMAT, "%s: chips[%d]: name '%.40s...' is too long", what, idx, name);
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(ctx, sizeof ctx, "%s: chips[%d] (%s)", what, idx, name);
    chip_ctx x = {o, ctx};
    return parse_chip_fields(&x, c);
}

static lmc_status put_chip(lmc_plan_catalog *cat, const lmc_plan_chip *c)
{
    char key[128];
    lmc_plan_chip_key(c->name, key, sizeof key);
    for (int i = 0; i < cat->n; i++)
        if (chip_matches(&cat->chips[i], key)) {
            cat->chips[i] = *c; /* a user's chip of the same name replaces ours */
            return LMC_OK;
        }
    if (cat->n == cat->cap) {
        int cap = cat->cap ? cat->cap * 2 : 16;
        lmc_plan_chip *nc = realloc(cat->chips, (size_t)cap * sizeof *nc);
        if (!nc)
            return lmc_err(LMC_ENOMEM, "chip catalogue: out of memory");
        cat->chips = nc;
        cat->cap = cap;
    }
    cat->chips[cat->n++] = *c;
    return LMC_OK;
}

static lmc_status add_tree(lmc_plan_catalog *cat, const lmc_json *j, const char *what)
{
    if (j->type != LMC_JSON_OBJ)
        return lmc_err(LMC_EFORMAT, "%s: expected an object {\"chips\": [...]}", what);
    for (lmc_json *m = j->child; m; m = m->next)
        if (strcmp(m->key, "chips") && strcmp(m->key, "format") && strcmp(m->key, "about"))
            return lmc_err(LMC_EFORMAT, "%s: unknown top-level field '%s' (chips, format, about)", what, m->key);
    const char *fmt = NULL;
    LMC_TRY(lmc_json_get_str(j, "format", what, &fmt));
    if (fmt && strcmp(fmt, "lmc-chips-1"))
        return lmc_err(LMC_EFORMAT, "%s: format '%s' is not lmc-chips-1", what, fmt);
    lmc_json *arr = lmc_json_get(j, "chips");
    if (!arr || arr->type != LMC_JSON_ARR)
        return lmc_err(LMC_EFORMAT, "%s: missing array 'chips'", what);
    int i = 0;
    for (lmc_json *e = arr->child; e; e = e->next, i++) {
        lmc_plan_chip c;
        LMC_TRY(parse_chip(e, what, i, &c));
        LMC_TRY(put_chip(cat, &c));
    }
    return LMC_OK;
}

lmc_status lmc_plan_catalog_add_json(lmc_plan_catalog *cat, const char *text, size_t n, const char *what)
{
    lmc_json *j = NULL;
    LMC_TRY(lmc_json_parse(text, n, what, &j));
    lmc_status s = add_tree(cat, j, what);
    lmc_json_free(j);
    return s;
}

lmc_status lmc_plan_catalog_add_file(lmc_plan_catalog *cat, const char *path)
{
    char *text = NULL;
    size_t n = 0;
    LMC_TRY(lmc_read_file(path, &text, &n));
    lmc_status s = lmc_plan_catalog_add_json(cat, text, n, path);
    free(text);
    return s;
}

lmc_status lmc_plan_catalog_load_default(lmc_plan_catalog *cat)
{
    memset(cat, 0, sizeof *cat);
    size_t n = 0;
    const char *text = lmc_plan_embedded("share/chips.json", &n);
    if (!text)
        return lmc_err(LMC_EIO, "share/chips.json was not embedded at build time");
    return lmc_plan_catalog_add_json(cat, text, n, "share/chips.json");
}

void lmc_plan_catalog_free(lmc_plan_catalog *cat)
{
    free(cat->chips);
    memset(cat, 0, sizeof *cat);
}
