/* read.c: a training log (JSON Lines, one object per step, as `lmc train
 * --log` writes it) into a run of points ordered by step. Real logs are
 * untidy: a run still writing (or killed) leaves an unfinished last line, a
 * resumed run repeats steps, a diverged one logs NaN, older or other tools'
 * logs lack fields. Each of those is a warning, never a failure; only a
 * file whose first record is not JSON is refused. */
#include "lmc/report.h"
#include "report/report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const field_key[LMC_REP_NFIELDS] = {
    "loss",   "lr",      "grad_norm",    "tokens_per_s", "mfu",      "ms",
    "tokens", "comm_ms", "comm_busy_ms", "tp_values",    "val_loss", "val_bpb",
};
static const char *const arr_key[LMC_REP_NARRAYS] = {"mb", "compute_ms", "idle_ms", "rss_mb", "pp_bubble"};

/* every step record lmc writes has these (the rest depend on the run) */
#define CORE_FIELDS                                                                                                    \
    (1u << LMC_REP_LOSS | 1u << LMC_REP_LR | 1u << LMC_REP_GRAD_NORM | 1u << LMC_REP_TOKENS_PER_S |                    \
     1u << LMC_REP_MFU | 1u << LMC_REP_MS | 1u << LMC_REP_TOKENS)
#define MAX_ITEMS (1 << 16) /* ranks or stages in one array */

typedef struct {
    lmc_report_run *run;
    const char *file;
    int cap;     /* of run->pts */
    int line;    /* being read, 1-based */
    int records; /* records taken */
    long long last_step;
    int last_ranks;
    int missing[LMC_REP_NFIELDS], first_missing[LMC_REP_NFIELDS];
    lmc_rep_warns w;
} reader;

static lmc_status add_event(reader *rd, long long step, const char *fmt, long long a, long long b)
{
    lmc_report_run *r = rd->run;
    lmc_report_event *ev = realloc(r->ev, (size_t)(r->nev + 1) * sizeof *ev);
    if (!ev)
        return lmc_err(LMC_ENOMEM, "%s: out of memory", rd->file);
    r->ev = ev;
    char buf[96];
    snprintf(buf, sizeof buf, fmt, a, b);
    ev[r->nev].step = step;
    ev[r->nev].what = lmc_strdup(buf);
    if (!ev[r->nev].what)
        return lmc_err(LMC_ENOMEM, "%s: out of memory", rd->file);
    r->nev++;
    return LMC_OK;
}

/* lmc writes a non-finite number as null; other writers use a string or,
 * like Python's json, a bare NaN (quoted before parsing: see nonfinite.c). */
static int nonfinite_name(const lmc_json *m)
{
    if (m->type == LMC_JSON_NULL)
        return 1;
    if (m->type != LMC_JSON_STR)
        return 0;
    static const char *const names[] = {"NaN", "nan", "Infinity", "-Infinity", "inf", "-inf", "Inf", "-Inf"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(m->str, names[i]))
            return 1;
    return 0;
}

static lmc_status read_field(reader *rd, const lmc_json *j, int f, lmc_report_point *p)
{
    const lmc_json *m = lmc_json_get(j, field_key[f]);
    if (!m) {
        if (CORE_FIELDS >> f & 1 && !rd->missing[f]++)
            rd->first_missing[f] = rd->line;
        return LMC_OK;
    }
    if (m->type == LMC_JSON_NUM) {
        p->v[f] = m->num;
        p->has |= 1u << f;
        return LMC_OK;
    }
    if (!nonfinite_name(m))
        return lmc_rep_warn(&rd->w, LMC_REP_W_TYPE, "%s line %d: %s is not a number: ignored", rd->file, rd->line,
                            field_key[f]);
    p->has |= 1u << f;
    p->bad |= 1u << f;
    return lmc_rep_warn(&rd->w, LMC_REP_W_NONFINITE, "%s line %d: step %lld: %s is %s: marked on the charts", rd->file,
                        rd->line, p->step, field_key[f], m->type == LMC_JSON_NULL ? "null" : m->str);
}

static lmc_status read_array(reader *rd, const lmc_json *j, int a, lmc_report_point *p)
{
    const lmc_json *m = lmc_json_get(j, arr_key[a]);
    if (!m)
        return LMC_OK;
    if (m->type != LMC_JSON_ARR || m->n == 0)
        return lmc_rep_warn(&rd->w, LMC_REP_W_TYPE, "%s line %d: %s is not a non-empty array: ignored", rd->file,
                            rd->line, arr_key[a]);
    int n = m->n < MAX_ITEMS ? m->n : MAX_ITEMS;
    double *v = malloc((size_t)n * sizeof *v);
    if (!v)
        return lmc_err(LMC_ENOMEM, "%s: out of memory", rd->file);
    int i = 0;
    for (const lmc_json *c = m->child; c && i < n; c = c->next, i++)
        v[i] = c->type == LMC_JSON_NUM ? c->num : NAN;
    p->arr[a].n = n;
    p->arr[a].v = v;
    return LMC_OK;
}

/* A repeated step means the run was resumed; a new number of ranks means
 * it resumed (or went on) on another layout. Both go on the charts. */
static lmc_status note_layout(reader *rd, const lmc_report_point *p)
{
    int ranks = p->arr[LMC_REP_RSS_MB].n;
    if (rd->records && p->step <= rd->last_step) {
        LMC_TRY(add_event(rd, p->step, "resumed at step %lld (after step %lld)", p->step, rd->last_step));
        LMC_TRY(lmc_rep_warn(&rd->w, LMC_REP_W_RESUME,
                             "%s line %d: step %lld comes again after step %lld (a resumed run): the later records "
                             "win",
                             rd->file, rd->line, p->step, rd->last_step));
    }
    if (rd->last_ranks && ranks && ranks != rd->last_ranks)
        LMC_TRY(add_event(rd, p->step, "ranks %lld -> %lld", rd->last_ranks, ranks));
    if (ranks)
        rd->last_ranks = ranks;
    rd->last_step = p->step;
    return LMC_OK;
}

static lmc_status take_record(reader *rd, const lmc_json *j)
{
    const lmc_json *st = j->type == LMC_JSON_OBJ ? lmc_json_get(j, "step") : NULL;
    if (!st || st->type != LMC_JSON_NUM || st->num != floor(st->num) || st->num < 0 || st->num > 1e15)
        return lmc_rep_warn(&rd->w, LMC_REP_W_SHAPE,
                            "%s line %d: not a step record (no whole \"step\" >= 0): "
                            "skipped",
                            rd->file, rd->line);
    lmc_report_run *r = rd->run;
    if (r->n == rd->cap) {
        int cap = rd->cap ? 2 * rd->cap : 64;
        lmc_report_point *pts = realloc(r->pts, (size_t)cap * sizeof *pts);
        if (!pts)
            return lmc_err(LMC_ENOMEM, "%s: out of memory at line %d", rd->file, rd->line);
        r->pts = pts;
        rd->cap = cap;
    }
    lmc_report_point *p = &r->pts[r->n++];
    memset(p, 0, sizeof *p);
    p->step = (long long)st->num;
    for (int f = 0; f < LMC_REP_NFIELDS; f++) {
        p->v[f] = NAN;
        LMC_TRY(read_field(rd, j, f, p));
    }
    for (int a = 0; a < LMC_REP_NARRAYS; a++)
        LMC_TRY(read_array(rd, j, a, p));
    LMC_TRY(note_layout(rd, p));
    rd->records++;
    return LMC_OK;
}

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

static lmc_status parse_line(reader *rd, const char *s, size_t n, int unfinished)
{
    char what[512];
    snprintf(what, sizeof what, "%s line %d", rd->file, rd->line);
    lmc_json *j = NULL;
    lmc_status st = lmc_rep_parse_json(s, n, what, &j);
    if (st == LMC_OK) {
        st = take_record(rd, j);
        lmc_json_free(j);
        return st;
    }
    if (st != LMC_EFORMAT)
        return st;
    if (unfinished)
        return lmc_rep_warn(&rd->w, LMC_REP_W_BROKEN,
                            "%s line %d: unfinished last line (a run still writing, or "
                            "cut short): skipped",
                            rd->file, rd->line);
    if (!rd->records && !rd->w.count[LMC_REP_W_BROKEN] && !rd->w.count[LMC_REP_W_SHAPE])
        return lmc_err_wrap(LMC_EFORMAT,
                            "%s: not a JSON Lines log (lmc train --log writes one JSON object per "
                            "line)",
                            rd->file);
    return lmc_rep_warn(&rd->w, LMC_REP_W_BROKEN, "%s: skipped", lmc_errmsg());
}

static lmc_status finish(reader *rd)
{
    for (int f = 0; f < LMC_REP_NFIELDS; f++)
        if (rd->missing[f])
            LMC_TRY(lmc_rep_warn(&rd->w, LMC_REP_W_MISSING, "%s: %d of %d records lack %s (the first at line %d)",
                                 rd->file, rd->missing[f], rd->records, field_key[f], rd->first_missing[f]));
    if (!rd->run->n)
        LMC_TRY(lmc_rep_warn(&rd->w, LMC_REP_W_SHAPE, "%s: no step records", rd->file));
    LMC_TRY(lmc_rep_warn_summary(&rd->w, rd->file));
    return lmc_rep_sort_steps(rd->run);
}

/* "runs/a/log.jsonl" -> "a/log": the file and its folder tell runs apart. */
static char *run_name(const char *path)
{
    size_t n = strlen(path), b = n;
    for (int slashes = 0; b > 0; b--)
        if (path[b - 1] == '/' && ++slashes == 2)
            break;
    const char *s = path + b;
    if (!strncmp(s, "./", 2))
        s += 2;
    size_t len = strlen(s);
    if (len > 6 && !strcmp(s + len - 6, ".jsonl"))
        len -= 6;
    char *out = malloc(len + 1);
    if (out) {
        memcpy(out, s, len);
        out[len] = 0;
    }
    return out;
}

lmc_status lmc_report_parse(const char *text, size_t n, const char *name, lmc_report_run *run)
{
    memset(run, 0, sizeof *run);
    reader rd = {.run = run, .file = name, .w = {.run = run}};
    run->name = run_name(name);
    if (!run->name)
        return lmc_err(LMC_ENOMEM, "%s: out of memory", name);
    lmc_status st = LMC_OK;
    for (size_t at = 0; at < n && st == LMC_OK;) {
        const char *nl = memchr(text + at, '\n', n - at);
        size_t len = nl ? (size_t)(nl - (text + at)) : n - at;
        rd.line++;
        if (!blank(text + at, len))
            st = parse_line(&rd, text + at, len, !nl);
        at += len + 1;
    }
    if (st == LMC_OK)
        st = finish(&rd);
    if (st != LMC_OK)
        lmc_report_run_free(run);
    return st;
}

lmc_status lmc_report_read(const char *path, lmc_report_run *run)
{
    char *text;
    size_t n;
    memset(run, 0, sizeof *run);
    LMC_TRY(lmc_read_file(path, &text, &n));
    lmc_status st = lmc_report_parse(text, n, path, run);
    free(text);
    return st;
}

void lmc_report_run_free(lmc_report_run *run)
{
    for (int i = 0; i < run->n; i++)
        for (int a = 0; a < LMC_REP_NARRAYS; a++)
            free(run->pts[i].arr[a].v);
    for (int i = 0; i < run->nev; i++)
        free(run->ev[i].what);
    for (int i = 0; i < run->nwarn; i++)
        free(run->warn[i]);
    free(run->pts);
    free(run->ev);
    free(run->warn);
    free(run->name);
    memset(run, 0, sizeof *run);
}
