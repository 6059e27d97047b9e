/* runs.c: published training runs (share/runs.json, built in; or a file
 * in the same format): parsing and each run's published throughput as MFU
 * in lmc's model FLOPs (the cost model's side is in expect.c). */
#include "lmc/plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const run_fields[] = {
    "name", "chip", "chips", "model", "seq", "global_batch", "tokens", "layout", "mfu", "tflops_per_chip",
    "counts_recompute", "tokens_per_s_per_chip", "gpu_hours", "wall_hours", "interruptions", "interruption_days",
    "effective_time", "network_gbs", "sources", "notes", NULL};
/* Fields that are figures: each needs its source. */
static const char *const figures[] = {
    "chips", "model", "seq", "global_batch", "tokens", "layout", "mfu", "tflops_per_chip", "counts_recompute",
    "tokens_per_s_per_chip", "gpu_hours", "wall_hours", "interruptions", "interruption_days", "effective_time",
    "network_gbs", NULL};
static const char *const layout_fields[] = {"tp", "pp", "dp", "vpp", "micro_batch", "zero", "recompute", NULL};

static int in(const char *const *list, const char *k)
{
    for (int i = 0; list[i]; i++)
        if (!strcmp(list[i], k))
            return 1;
    return 0;
}

static lmc_status check_keys(const lmc_json *o, const char *const *list, const char *what)
{
    for (const lmc_json *m = o->child; m; m = m->next)
        if (!in(list, m->key))
            return lmc_err(LMC_EFORMAT, "%s: unknown field '%s'", what, m->key);
    return LMC_OK;
}

/* Every figure present names its source: a non-empty string in "sources". */
static lmc_status check_sources(const lmc_json *o, const char *what)
{
    const lmc_json *src = lmc_json_get(o, "sources");
    if (!src || src->type != LMC_JSON_OBJ)
        return lmc_err(LMC_EFORMAT, "%s: missing field 'sources' (an object naming each figure's source)", what);
    for (const lmc_json *m = o->child; m; m = m->next) {
        if (!in(figures, m->key))
            continue;
        const lmc_json *s = lmc_json_get(src, m->key);
        if (!s || s->type != LMC_JSON_STR || !s->str[0])
            return lmc_err(LMC_EFORMAT, "%s: field '%s' has no source (sources.%s: paper and table or section)", what,
                           m->key, m->key);
    }
    return LMC_OK;
}

/* A positive number field; absent leaves *out alone. */
static lmc_status pos(const lmc_json *o, const char *k, const char *what, double hi, double *out)
{
    const lmc_json *v = lmc_json_get(o, k);
    if (!v)
        return LMC_OK;
    if (v->type != LMC_JSON_NUM || !(v->num > 0 && v->num <= hi))
        return lmc_err(LMC_ERANGE, "%s: field '%s' must be a number in (0, %g]", what, k, hi);
    *out = v->num;
    return LMC_OK;
}

static lmc_status parse_layout(const lmc_json *o, const char *what, lmc_plan_fix *fx)
{
    *fx = (lmc_plan_fix){.zero = -1, .recompute = -1}; /* lmc_plan_fix_none's, without search.c */
    const lmc_json *l = lmc_json_get(o, "layout");
    if (!l)
        return LMC_OK;
    if (l->type != LMC_JSON_OBJ)
        return lmc_err(LMC_EFORMAT, "%s: field 'layout' must be an object {\"tp\": 8, ...}", what);
    LMC_TRY(check_keys(l, layout_fields, what));
    int *dst[] = {&fx->tp, &fx->pp, &fx->dp, &fx->vpp, &fx->micro_batch};
    for (int i = 0; i < 5; i++) {
        double v = 0;
        LMC_TRY(pos(l, layout_fields[i], what, 1 << 30, &v));
        *dst[i] = v > 0 ? (int)v : *dst[i];
    }
    double z = fx->zero;
    LMC_TRY(lmc_json_get_num(l, "zero", what, &z));
    if (z != fx->zero && !(z == 0 || z == 1 || z == 2 || z == 3))
        return lmc_err(LMC_ERANGE, "%s: layout.zero = %g must be 0, 1, 2 or 3", what, z);
    fx->zero = (int)z;
    const char *rc = NULL;
    LMC_TRY(lmc_json_get_str(l, "recompute", what, &rc));
    static const char *const rc_names[] = {"none", "selective", "full"}; /* lmc_recompute's order */
    for (int r = 0; rc && r <= 2; r++)
        if (!strcmp(rc, rc_names[r]))
            fx->recompute = r, rc = NULL;
    if (rc)
        return lmc_err(LMC_EINVAL, "%s: layout.recompute = '%s' is not none, selective or full", what, rc);
    return LMC_OK;
}

static lmc_status parse_model(const lmc_json *o, const char *what, lmc_plan_run *r)
{
    const lmc_json *m = lmc_json_get(o, "model");
    if (!m)
        return lmc_err(LMC_EFORMAT, "%s: missing field 'model'", what);
    if (m->type == LMC_JSON_STR) { /* a preset or planner shape, never a path */
        snprintf(r->model_name, sizeof r->model_name, "%s", m->str);
        if (strchr(m->str, '/') || strstr(m->str, ".json") || lmc_plan_model_load(m->str, &r->model) != LMC_OK)
            return lmc_err(LMC_EINVAL, "%s: model = '%.60s' is not a preset or planner shape (give a Hugging Face "
                           "config object instead)", what, m->str);
        return LMC_OK;
    }
    if (m->type != LMC_JSON_OBJ)
        return lmc_err(LMC_EFORMAT, "%s: field 'model' must be a model name or a Hugging Face config object", what);
    char w[256];
    snprintf(w, sizeof w, "%s.model", what);
    return lmc_config_from_hf_json(m, w, &r->model);
}

/* The published throughput as MFU with F = 6N + 12 L h s over the chip's
 * bf16 peak, from the strongest figure given. */
static lmc_status published_mfu(const lmc_json *o, const char *what, const lmc_plan_chip *chip, lmc_plan_run *r)
{
    double mfu = 0, tf = 0, tps = 0, gh = 0, wall = 0, peak = chip->bf16_tflops * 1e12;
    double F = lmc_config_train_flops_per_token(&r->model, r->seq);
    int rc = 0;
    LMC_TRY(pos(o, "mfu", what, 1, &mfu));
    LMC_TRY(pos(o, "tflops_per_chip", what, 1e5, &tf));
    LMC_TRY(pos(o, "tokens_per_s_per_chip", what, 1e12, &tps));
    LMC_TRY(pos(o, "gpu_hours", what, 1e12, &gh));
    LMC_TRY(pos(o, "wall_hours", what, 1e7, &wall));
    LMC_TRY(lmc_json_get_bool(o, "counts_recompute", what, &rc));
    if ((gh > 0 || wall > 0) && r->tokens <= 0)
        return lmc_err(LMC_EFORMAT, "%s: gpu_hours and wall_hours need 'tokens'", what);
    if (mfu > 0)
        r->pub_mfu = mfu, r->basis = "mfu";
    else if (tf > 0)
        r->pub_mfu = tf * 1e12 / peak * (rc ? 0.75 : 1), r->basis = rc ? "tflops_per_chip x 3/4" : "tflops_per_chip";
    else if (tps > 0)
        r->pub_mfu = tps * F / peak, r->basis = "tokens_per_s_per_chip";
    else if (gh > 0)
        r->pub_mfu = r->tokens * F / (gh * 3600 * peak), r->basis = "gpu_hours", r->end_to_end = 1;
    else if (wall > 0)
        r->pub_mfu = r->tokens * F / (wall * 3600 * r->chips * peak), r->basis = "wall_hours", r->end_to_end = 1;
    else
        return lmc_err(LMC_EFORMAT, "%s: no throughput (mfu, tflops_per_chip, tokens_per_s_per_chip, gpu_hours or "
                       "wall_hours)", what);
    if (!(r->pub_mfu > 0 && r->pub_mfu < 1))
        return lmc_err(LMC_ERANGE, "%s: the published throughput is %.3g of the chip's peak, outside (0, 1)", what,
                       r->pub_mfu);
    return LMC_OK;
}

static lmc_status parse_run(const lmc_plan_catalog *cat, const lmc_json *o, const char *what, lmc_plan_run *r)
{
    memset(r, 0, sizeof *r);
    if (o->type != LMC_JSON_OBJ)
        return lmc_err(LMC_EFORMAT, "%s must be an object", what);
    const char *name = NULL, *chip = NULL;
    LMC_TRY(lmc_json_get_str(o, "name", what, &name));
    if (!name || !name[0])
        return lmc_err(LMC_EFORMAT, "%s: missing field 'name'", what);
    char w[200];
    snprintf(w, sizeof w, "%s (\"%.60s\")", what, name);
    snprintf(r->name, sizeof r->name, "%s", name);
    LMC_TRY(check_keys(o, run_fields, w));
    LMC_TRY(check_sources(o, w));
    LMC_TRY(lmc_json_get_str(o, "chip", w, &chip));
    const lmc_plan_chip *c = NULL;
    char wc[232];
    snprintf(wc, sizeof wc, "%s.chip", w);
    LMC_TRY(lmc_plan_catalog_get(cat, chip ? chip : "", wc, &c));
    snprintf(r->chip, sizeof r->chip, "%s", c->name);
    double chips = 0, seq = 0, gb = 0;
    LMC_TRY(pos(o, "chips", w, 1e8, &chips));
    LMC_TRY(pos(o, "seq", w, 1 << 24, &seq));
    LMC_TRY(pos(o, "global_batch", w, 1e12, &gb));
    LMC_TRY(pos(o, "tokens", w, 1e18, &r->tokens));
    if (chips < 1 || seq < 1)
        return lmc_err(LMC_EFORMAT, "%s: fields 'chips' and 'seq' are required", w);
    r->chips = (long long)chips, r->seq = (int)seq, r->global_batch = (long long)gb;
    LMC_TRY(parse_model(o, w, r));
    LMC_TRY(parse_layout(o, w, &r->fix));
    LMC_TRY(pos(o, "interruptions", w, 1e9, &r->interruptions));
    LMC_TRY(pos(o, "interruption_days", w, 1e5, &r->interruption_days));
    LMC_TRY(pos(o, "effective_time", w, 1, &r->effective_time));
    LMC_TRY(pos(o, "network_gbs", w, 1e6, &r->network_gbs));
    if ((r->interruptions > 0) != (r->interruption_days > 0))
        return lmc_err(LMC_EFORMAT, "%s: 'interruptions' and 'interruption_days' go together", w);
    return published_mfu(o, w, c, r);
}

lmc_status lmc_plan_runs_parse(const lmc_plan_catalog *cat, const char *text, size_t n, const char *what,
                               lmc_plan_runs *rs)
{
    memset(rs, 0, sizeof *rs);
    lmc_json *j = NULL;
    LMC_TRY(lmc_json_parse(text, n, what, &j));
    const lmc_json *arr = j->type == LMC_JSON_OBJ ? lmc_json_get(j, "runs") : NULL;
    lmc_status s = LMC_OK;
    if (!arr || arr->type != LMC_JSON_ARR || arr->n < 1 || arr->n > LMC_PLAN_MAX_RUNS)
        s = lmc_err(LMC_EFORMAT, "%s: expected {\"runs\": [...]} with 1 to %d runs", what, LMC_PLAN_MAX_RUNS);
    if (!s && !(rs->runs = calloc((size_t)arr->n, sizeof *rs->runs)))
        s = lmc_err(LMC_ENOMEM, "%s: out of memory", what);
    for (const lmc_json *e = s ? NULL : arr->child; e && !s; e = e->next) {
        char w[160];
        snprintf(w, sizeof w, "%s: runs[%d]", what, rs->n);
        s = parse_run(cat, e, w, &rs->runs[rs->n]);
        rs->n += !s;
    }
    lmc_json_free(j);
    if (s)
        lmc_plan_runs_free(rs);
    return s;
}

lmc_status lmc_plan_runs_load(const lmc_plan_catalog *cat, const char *path, lmc_plan_runs *rs)
{
    size_t n = 0;
    if (!path) {
        const char *text = lmc_plan_embedded("share/runs.json", &n);
        if (!text)
            return lmc_err(LMC_EINVAL, "share/runs.json is not built in (rebuild lmc)");
        return lmc_plan_runs_parse(cat, text, n, "share/runs.json", rs);
    }
    char *text = NULL;
    LMC_TRY(lmc_read_file(path, &text, &n));
    lmc_status s = lmc_plan_runs_parse(cat, text, n, path, rs);
    free(text);
    return s;
}

void lmc_plan_runs_free(lmc_plan_runs *rs)
{
    free(rs->runs);
    memset(rs, 0, sizeof *rs);
}

const char *lmc_plan_chip_class(const char *chip_name)
{
    char k[128];
    lmc_plan_chip_key(chip_name, k, sizeof k);
    if (!strncmp(k, "a100", 4))
        return "A100";
    if (!strncmp(k, "h100", 4) || !strncmp(k, "h800", 4) || !strncmp(k, "h200", 4) || !strncmp(k, "h20", 3))
        return "H100";
    if (!strncmp(k, "910", 3))
        return "Ascend";
    return "";
}
