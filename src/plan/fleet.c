/* fleet.c: fleets of chips (FLEET.json or "8xH100"), calendar dates, and
 * the model shapes the planner knows beyond the training presets. */
#include "lmc/plan.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------- dates ---------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil): exact, no time zones, no libc locale. */
static int days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int z, int *y, int *m, int *d)
{
    z += 719468;
    int era = (z >= 0 ? z : z - 146096) / 146097;
    int doe = z - era * 146097;
    int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp + (mp < 10 ? 3 : -9);
    *y = yoe + era * 400 + (*m <= 2);
}

lmc_status lmc_plan_parse_date(const char *s, const char *what, int *day)
{
    int y, m, d, n = 0;
    if (!s || strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10 || s[4] != '-' ||
        s[7] != '-')
        return lmc_err(LMC_EINVAL, "%s: '%s' is not a date (use YYYY-MM-DD)", what, s ? s : "(missing)");
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return lmc_err(LMC_EINVAL, "%s: '%s' is not a valid date", what, s);
    int z = days_from_civil(y, m, d);
    int yy, mm, dd;
    civil_from_days(z, &yy, &mm, &dd);
    if (mm != m || dd != d) /* 29 February of a common year */
        return lmc_err(LMC_EINVAL, "%s: '%s' is not a valid date", what, s);
    *day = z;
    return LMC_OK;
}

void lmc_plan_format_date(double day, char out[16])
{
    int y, m, d;
    civil_from_days((int)floor(day), &y, &m, &d);
    snprintf(out, 16, "%04u-%02u-%02u", (unsigned)y % 10000u, (unsigned)m % 100u, (unsigned)d % 100u);
}

int lmc_plan_today(void) { return (int)(time(NULL) / 86400); }

/* ---------- model shapes ---------- */

lmc_status lmc_plan_model_load(const char *name, lmc_model_config *c)
{
    for (const char *const *p = lmc_config_preset_names(); *p; p++)
        if (!strcmp(*p, name))
            return lmc_config_preset(name, c);
    char path[256];
    snprintf(path, sizeof path, "share/models/%s.json", name);
    size_t n = 0;
    const char *text = strchr(name, '/') ? NULL : lmc_plan_embedded(path, &n);
    if (text)
        return lmc_config_from_hf_text(text, n, path, c);
    if (strchr(name, '/') || strstr(name, ".json") || lmc_path_exists(name))
        return lmc_config_load(name, c);
    lmc_sb b;
    lmc_sb_init(&b);
    for (const char *const *p = lmc_config_preset_names(); *p; p++)
        lmc_sb_printf(&b, "%s, ", *p);
    char m[64];
    for (int i = 0; lmc_plan_embedded_model(i, m, sizeof m); i++)
        lmc_sb_printf(&b, "%s, ", m);
    lmc_status s = lmc_err(LMC_EINVAL, "--model: unknown model '%s' (known: %sor a config.json path)", name,
                           b.s ? b.s : "");
    lmc_sb_free(&b);
    return s;
}

/* ---------- fleets ---------- */

static lmc_status push_pool(lmc_plan_fleet *f, const lmc_plan_pool *p, const char *what)
{
    if (f->n >= LMC_PLAN_MAX_POOLS)
        return lmc_err(LMC_ERANGE, "%s: more than %d pools", what, LMC_PLAN_MAX_POOLS);
    lmc_plan_pool *np = realloc(f->pools, (size_t)(f->n + 1) * sizeof *np);
    if (!np)
        return lmc_err(LMC_ENOMEM, "fleet: out of memory");
    f->pools = np;
    f->pools[f->n++] = *p;
    return LMC_OK;
}

static lmc_status make_pool(const lmc_plan_catalog *cat, const char *chip, double count, const char *what_chip,
                            const char *what, lmc_plan_pool *p)
{
    memset(p, 0, sizeof *p);
    const lmc_plan_chip *c = NULL;
    LMC_TRY(lmc_plan_catalog_get(cat, chip, what_chip, &c));
    if (!(count >= 1 && count <= 1e8) || count != floor(count))
        return lmc_err(LMC_ERANGE, "%s: count = %g must be a whole number in [1, 100000000]", what, count);
    p->chip = *c;
    p->count = (long long)count;
    p->chips_per_node = c->chips_per_node;
    p->arrives = LMC_PLAN_NOW;
    snprintf(p->name, sizeof p->name, "%s", c->name);
    return LMC_OK;
}

/* "8xH100" or "8xH100,16x910B": one pool each, available at the start. */
static lmc_status parse_shorthand(const lmc_plan_catalog *cat, const char *spec, lmc_plan_fleet *f)
{
    char *copy = lmc_strdup(spec);
    if (!copy)
        return LMC_ENOMEM;
    lmc_status s = LMC_OK;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && !s; tok = strtok_r(NULL, ",", &save)) {
        char *x = strpbrk(tok, "xX*");
        if (!x || x == tok || !x[1]) {
            s = lmc_err(LMC_EINVAL, "--fleet: '%s' is not NxCHIP (e.g. 8xH100) or a FLEET.json path", tok);
            break;
        }
        *x = 0;
        double count = 0;
        char what[96];
        snprintf(what, sizeof what, "--fleet %s", spec);
        s = lmc_parse_count(tok, what, &count);
        lmc_plan_pool p;
        if (!s)
            s = make_pool(cat, x + 1, count, what, what, &p);
        if (!s)
            s = push_pool(f, &p, what);
    }
    if (!s && f->n == 0) /* "," or " ,": strtok finds no item */
        s = lmc_err(LMC_EINVAL, "--fleet: '%s' names no chips (NxCHIP, e.g. 8xH100)", spec);
    free(copy);
    return s;
}

static const char *const pool_fields[] = {"chip", "count", "chips_per_node", "arrives", "slip_days", "name", NULL};

/* "slip_days": the delivery may come that many days late; only for a
 * delivery with a date. */
static lmc_status parse_slip(const lmc_json *o, const char *what, lmc_plan_pool *p)
{
    const lmc_json *sl = lmc_json_get(o, "slip_days"), *arr = lmc_json_get(o, "arrives");
    if (!sl)
        return LMC_OK;
    if (sl->type != LMC_JSON_NUM || !(sl->num >= 0 && sl->num <= 3650) || sl->num != floor(sl->num))
        return lmc_err(LMC_ERANGE, "%s: slip_days must be a whole number of days in [0, 3650]", what);
    if (!arr || arr->type == LMC_JSON_NULL)
        return lmc_err(LMC_EFORMAT, "%s: slip_days = %g without an 'arrives' date (a slip is counted from the "
                       "delivery date)", what, sl->num);
    p->slip_days = (int)sl->num;
    return LMC_OK;
}

static lmc_status parse_pool(const lmc_plan_catalog *cat, const lmc_json *o, const char *what, int start_day,
                             lmc_plan_pool *p)
{
    if (o->type != LMC_JSON_OBJ)
        return lmc_err(LMC_EFORMAT, "%s must be an object {\"chip\": ..., \"count\": ...}", what);
    for (lmc_json *m = o->child; m; m = m->next) {
        int ok = 0;
        for (int i = 0; pool_fields[i]; i++)
            ok |= !strcmp(m->key, pool_fields[i]);
        if (!ok)
            return lmc_err(LMC_EFORMAT, "%s: unknown field '%s' (chip, count, chips_per_node, arrives, slip_days, "
                           "name)", what,
                           m->key);
    }
    const char *chip = NULL, *arrives = NULL, *name = NULL;
    LMC_TRY(lmc_json_get_str(o, "chip", what, &chip));
    if (!chip)
        return lmc_err(LMC_EFORMAT, "%s: missing field 'chip'", what);
    lmc_json *cnt = lmc_json_get(o, "count");
    if (!cnt || cnt->type != LMC_JSON_NUM)
        return lmc_err(LMC_EFORMAT, "%s: field 'count' must be a number of chips", what);
    char w[320];
    snprintf(w, sizeof w, "%s.chip", what);
    LMC_TRY(make_pool(cat, chip, cnt->num, w, what, p));
    long long cpn = p->chips_per_node;
    LMC_TRY(lmc_json_get_int(o, "chips_per_node", what, &cpn));
    if (cpn < 1 || cpn > 65536)
        return lmc_err(LMC_ERANGE, "%s: chips_per_node = %lld must be in [1, 65536]", what, cpn);
    p->chips_per_node = (int)cpn;
    LMC_TRY(lmc_json_get_str(o, "name", what, &name));
    if (name)
        snprintf(p->name, sizeof p->name, "%s", name);
    LMC_TRY(parse_slip(o, what, p));
    lmc_json *arr = lmc_json_get(o, "arrives");
    if (arr && arr->type != LMC_JSON_NULL) {
        LMC_TRY(lmc_json_get_str(o, "arrives", what, &arrives));
        snprintf(w, sizeof w, "%s.arrives", what);
        LMC_TRY(lmc_plan_parse_date(arrives, w, &p->arrives));
        if (p->arrives < start_day) {
            char sd[16];
            lmc_plan_format_date(start_day, sd);
            return lmc_err(LMC_EINVAL, "%s.arrives = %s is before the start date %s (deliveries must not be in the "
                           "past; see --start)", what, arrives, sd);
        }
    }
    return LMC_OK;
}

lmc_status lmc_plan_fleet_parse_json(const lmc_plan_catalog *cat, const char *text, size_t n, const char *what,
                                     int start_day, lmc_plan_fleet *f)
{
    memset(f, 0, sizeof *f);
    lmc_json *j = NULL;
    LMC_TRY(lmc_json_parse(text, n, what, &j));
    lmc_status s = LMC_OK;
    const lmc_json *arr = j;
    if (j->type == LMC_JSON_OBJ) {
        for (lmc_json *m = j->child; m && !s; m = m->next)
            if (strcmp(m->key, "pools"))
                s = lmc_err(LMC_EFORMAT, "%s: unknown top-level field '%s' (expected \"pools\")", what, m->key);
        arr = lmc_json_get(j, "pools");
    }
    if (!s && (!arr || arr->type != LMC_JSON_ARR))
        s = lmc_err(LMC_EFORMAT, "%s: expected {\"pools\": [...]} or an array of pools", what);
    if (!s && arr->n == 0)
        s = lmc_err(LMC_EFORMAT, "%s: 'pools' is empty", what);
    int i = 0;
    for (lmc_json *e = arr && !s ? arr->child : NULL; e && !s; e = e->next, i++) {
        char w[160];
        snprintf(w, sizeof w, "%s: pools[%d]", what, i);
        lmc_plan_pool p;
        s = parse_pool(cat, e, w, start_day, &p);
        if (!s)
            s = push_pool(f, &p, what);
    }
    lmc_json_free(j);
    if (s)
        lmc_plan_fleet_free(f);
    return s;
}

lmc_status lmc_plan_fleet_load(const lmc_plan_catalog *cat, const char *spec, int start_day, lmc_plan_fleet *f)
{
    memset(f, 0, sizeof *f);
    if (!spec || !*spec)
        return lmc_err(LMC_EINVAL, "--fleet: missing (FLEET.json or NxCHIP, e.g. 8xH100)");
    if (strstr(spec, ".json") || strchr(spec, '/') || lmc_path_exists(spec)) {
        char *text = NULL;
        size_t n = 0;
        LMC_TRY(lmc_read_file(spec, &text, &n));
        lmc_status s = lmc_plan_fleet_parse_json(cat, text, n, spec, start_day, f);
        free(text);
        return s;
    }
    lmc_status s = parse_shorthand(cat, spec, f);
    if (s)
        lmc_plan_fleet_free(f);
    return s;
}

void lmc_plan_fleet_free(lmc_plan_fleet *f)
{
    free(f->pools);
    memset(f, 0, sizeof *f);
}
