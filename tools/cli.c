/* cli.c: table-driven flag parsing with errors that name the flag and value. */
#include "cli.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt *find(const cli_spec *spec, const char *name, size_t len, int *index)
{
    for (int i = 0; spec->opts[i].name; i++)
        if (strlen(spec->opts[i].name) == len && !strncmp(spec->opts[i].name, name, len)) {
            *index = i;
            return &spec->opts[i];
        }
    return NULL;
}

static lmc_status list_push(cli_list *l, const char *v)
{
    char **nv = realloc(l->v, (size_t)(l->n + 1) * sizeof *nv);
    if (!nv)
        return lmc_err(LMC_ENOMEM, "out of memory");
    l->v = nv;
    l->v[l->n++] = (char *)v;
    return LMC_OK;
}

static lmc_status set_value(const cli_opt *o, const char *flag, const char *val)
{
    switch (o->kind) {
    case CLI_STR:
        *(const char **)o->dst = val;
        return LMC_OK;
    case CLI_LIST:
        return list_push(o->dst, val);
    case CLI_INT:
        return lmc_parse_int(val, flag, (long long)o->lo, (long long)o->hi, o->dst);
    case CLI_FLOAT:
        return lmc_parse_float(val, flag, o->lo, o->hi, o->dst);
    case CLI_BOOL:
        *(int *)o->dst = 1;
        return LMC_OK;
    }
    return LMC_EINVAL;
}

lmc_status cli_parse(cli_spec *spec, int argc, char **argv, cli_list *pos)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            spec->help = 1;
            return LMC_EINVAL;
        }
        if (strncmp(a, "--", 2) || !a[2]) {
            if (!pos)
                return lmc_err(LMC_EINVAL, "unexpected argument '%s' (see lmc %s --help)", a, spec->cmd);
            LMC_TRY(list_push(pos, argv[i]));
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        int idx = 0;
        const cli_opt *o = find(spec, a + 2, len, &idx);
        if (!o)
            return lmc_err(LMC_EINVAL, "unknown flag '%.*s' (see lmc %s --help)", (int)len + 2, a, spec->cmd);
        char flag[96];
        snprintf(flag, sizeof flag, "--%s", o->name);
        const char *val = NULL;
        if (o->kind == CLI_BOOL) {
            if (eq)
                return lmc_err(LMC_EINVAL, "%s takes no value (got '%s')", flag, eq + 1);
        } else if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            return lmc_err(LMC_EINVAL, "%s needs a value", flag);
        }
        LMC_TRY(set_value(o, flag, val));
        if (idx < (int)sizeof spec->set)
            spec->set[idx] = 1;
    }
    return LMC_OK;
}

int cli_was_set(const cli_spec *spec, const char *name)
{
    int idx;
    return find(spec, name, strlen(name), &idx) && idx < (int)sizeof spec->set && spec->set[idx];
}

lmc_status cli_require(const cli_spec *spec, const char *names)
{
    char msg[256] = "";
    int n = 0, missing = 0;
    for (const char *p = names; *p;) {
        size_t len = strcspn(p, " ");
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)len, p);
        missing |= !cli_was_set(spec, name);
        p += len + (p[len] == ' ');
        size_t at = strlen(msg);
        snprintf(msg + at, sizeof msg - at, "%s--%s", !n ? "" : *p ? ", " : " and ", name);
        n++;
    }
    return missing ? lmc_err(LMC_EINVAL, "%s %s required", msg, n > 1 ? "are" : "is") : LMC_OK;
}

void cli_usage(const cli_spec *spec, FILE *f)
{
    fprintf(f, "usage: lmc %s %s\n", spec->cmd, spec->synopsis ? spec->synopsis : "[flags]");
    if (spec->about)
        fprintf(f, "\n%s\n", spec->about);
    fprintf(f, "\nflags:\n");
    for (int i = 0; spec->opts[i].name; i++) {
        const cli_opt *o = &spec->opts[i];
        const char *arg = o->kind == CLI_BOOL ? "" : o->kind == CLI_INT ? " N" : o->kind == CLI_FLOAT ? " X" : " S";
        char left[64];
        snprintf(left, sizeof left, "--%s%s", o->name, arg);
        fprintf(f, "  %-22s %s\n", left, o->help ? o->help : "");
    }
}

int cli_fail(const char *cmd, lmc_status s)
{
    if (s == LMC_OK)
        return 0;
    fprintf(stderr, "lmc %s: error: %s\n", cmd, lmc_errmsg());
    return s == LMC_EINVAL ? 2 : 1;
}

int cli_exit(const cli_spec *spec, lmc_status s)
{
    if (spec->help) {
        cli_usage(spec, stdout);
        return 0;
    }
    return cli_fail(spec->cmd, s);
}

void cli_list_free(cli_list *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

lmc_status cli_parse_require(cli_spec *spec, int argc, char **argv, const char *names)
{
    lmc_status s = cli_parse(spec, argc, argv, NULL);
    return s == LMC_OK ? cli_require(spec, names) : s;
}

void cli_catch_stop(void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}
