/* hostfile.c: Open MPI host files (`node01 slots=4 max_slots=8`, '#'
 * comments), the host list lmc launch supervises.
 *
 * The syntax is Open MPI's (orte_hosts(7)) so that the same file works with
 * a plain `mpirun --hostfile`. Stricter than Open MPI in two ways, both so
 * that the supervisor counts ranks right: every host needs slots=N (Open
 * MPI would count a line without it as one slot, or the host's cores), and
 * a field lmc launch does not understand is an error rather than ignored.
 * A host listed twice is an error, as Open MPI makes it when slots= is given.
 * Every error names the file, the line, the field and the value. */
#include "lmc/launch.h"

#include <stdlib.h>
#include <string.h>

#define MAX_LINE 4096
#define MAX_HOSTS 65536
#define MAX_SLOTS (1 << 20)
#define MAX_NAME 255

void lmc_hostfile_free(lmc_hostfile *hf)
{
    for (int i = 0; i < hf->n; i++)
        free(hf->hosts[i].name);
    free(hf->hosts);
    hf->hosts = NULL;
    hf->n = 0;
}

int lmc_hostfile_slots(const lmc_hostfile *hf)
{
    long long sum = 0;
    for (int i = 0; i < hf->n; i++)
        sum += hf->hosts[i].slots;
    return sum > MAX_SLOTS ? MAX_SLOTS : (int)sum;
}

int lmc_hostfile_find(const lmc_hostfile *hf, const char *name)
{
    for (int i = 0; i < hf->n; i++)
        if (!strcmp(hf->hosts[i].name, name))
            return i;
    return -1;
}

/* Host names as Open MPI takes them: letters, digits and . - _ : @ (user@host, IPv6). */
static lmc_status check_name(const char *path, int line, const char *s, size_t n)
{
    if (n > MAX_NAME)
        return lmc_err(LMC_EFORMAT, "%s:%d: host name of %zu characters (at most %d)", path, line, n, MAX_NAME);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr(".-_:@", c)))
            return lmc_err(LMC_EFORMAT, "%s:%d: host name '%.*s': character '%c' (0x%02x) is not allowed (letters, "
                           "digits and . - _ : @)", path, line, (int)n, s, c >= 32 && c < 127 ? c : '?', c);
    }
    if (s[0] == '-' || s[0] == '.')
        return lmc_err(LMC_EFORMAT, "%s:%d: host name '%.*s' starts with '%c'", path, line, (int)n, s, s[0]);
    return LMC_OK;
}

/* `key=value` with value a count in [lo, MAX_SLOTS]. */
static lmc_status parse_count(const char *path, int line, const char *key, const char *v, size_t n, int lo, int *out)
{
    char buf[32], what[128];
    snprintf(what, sizeof what, "%s:%d: %s", path, line, key);
    if (n == 0)
        return lmc_err(LMC_EFORMAT, "%s has no value (write %s=N)", what, key);
    if (n >= sizeof buf)
        return lmc_err(LMC_EFORMAT, "%s='%.*s...' is not a count", what, 16, v);
    memcpy(buf, v, n);
    buf[n] = 0;
    long long x;
    if (lmc_parse_int(buf, what, lo, MAX_SLOTS, &x))
        return LMC_EFORMAT;
    *out = (int)x;
    return LMC_OK;
}

/* One `key=value` field of a host line. */
static lmc_status parse_field(const char *path, int line, const char *f, size_t n, lmc_host *h, int *have_slots)
{
    const char *eq = memchr(f, '=', n);
    size_t klen = eq ? (size_t)(eq - f) : n;
    const char *v = eq ? eq + 1 : f + n;
    size_t vlen = n - klen - (eq != NULL);
    char key[32];
    snprintf(key, sizeof key, "%.*s", (int)(klen < sizeof key - 1 ? klen : sizeof key - 1), f);
    if (!eq)
        return lmc_err(LMC_EFORMAT, "%s:%d: '%.*s' after host %s is not a key=value field (slots=N)", path, line,
                       (int)(n > 64 ? 64 : n), f, h->name);
    if (klen == 5 && !memcmp(f, "slots", 5)) {
        if (*have_slots)
            return lmc_err(LMC_EFORMAT, "%s:%d: slots given twice for host %s", path, line, h->name);
        *have_slots = 1;
        return parse_count(path, line, "slots", v, vlen, 0, &h->slots);
    }
    if ((klen == 9 && (!memcmp(f, "max_slots", 9) || !memcmp(f, "max-slots", 9))))
        return parse_count(path, line, "max_slots", v, vlen, 1, &h->max_slots);
    return lmc_err(LMC_EFORMAT, "%s:%d: unknown field '%s' for host %s (lmc launch reads slots=N and max_slots=N)",
                   path, line, key, h->name);
}

/* Splits [s, e) into whitespace-separated words: the next one, or 0. */
static size_t next_word(const char **s, const char *e)
{
    while (*s < e && (**s == ' ' || **s == '\t' || **s == '\r'))
        (*s)++;
    const char *b = *s;
    while (*s < e && **s != ' ' && **s != '\t' && **s != '\r')
        (*s)++;
    return (size_t)(*s - b);
}

/* Adds a parsed line. A host listed twice is an error, as in Open MPI ("multiple
 * definitions of the slot count"): its slots belong on one line. */
static lmc_status add_host(lmc_hostfile *hf, const char *path, lmc_host *h)
{
    int at = lmc_hostfile_find(hf, h->name);
    if (at >= 0)
        return lmc_err(LMC_EFORMAT, "%s:%d: host %s is listed again (first on line %d): give all its slots on one "
                       "line", path, h->line, h->name, hf->hosts[at].line);
    if (hf->n >= MAX_HOSTS)
        return lmc_err(LMC_EFORMAT, "%s:%d: more than %d hosts", path, h->line, MAX_HOSTS);
    lmc_host *nh = realloc(hf->hosts, (size_t)(hf->n + 1) * sizeof *nh);
    if (!nh)
        return lmc_err(LMC_ENOMEM, "%s: out of memory", path);
    hf->hosts = nh;
    hf->hosts[hf->n++] = *h;
    return LMC_OK;
}

static lmc_status parse_line(lmc_hostfile *hf, const char *path, int line, const char *s, const char *e)
{
    const char *hash = memchr(s, '#', (size_t)(e - s));
    if (hash)
        e = hash;
    size_t n = next_word(&s, e);
    if (n == 0)
        return LMC_OK; /* blank or a comment */
    const char *name = s - n;
    if (memchr(name, '=', n))
        return lmc_err(LMC_EFORMAT, "%s:%d: '%.*s' where a host name should come first", path, line,
                       (int)(n > 64 ? 64 : n), name);
    LMC_TRY(check_name(path, line, name, n));
    lmc_host h = {.line = line};
    h.name = malloc(n + 1);
    if (!h.name)
        return lmc_err(LMC_ENOMEM, "%s: out of memory", path);
    memcpy(h.name, name, n);
    h.name[n] = 0;
    int have_slots = 0;
    lmc_status st = LMC_OK;
    while (st == LMC_OK && (n = next_word(&s, e)) > 0)
        st = parse_field(path, line, s - n, n, &h, &have_slots);
    if (st == LMC_OK && !have_slots)
        st = lmc_err(LMC_EFORMAT, "%s:%d: host %s has no slots=N (how many ranks it may run)", path, line, h.name);
    if (st == LMC_OK && h.max_slots && h.max_slots < h.slots)
        st = lmc_err(LMC_EFORMAT, "%s:%d: host %s has max_slots=%d below slots=%d", path, line, h.name,
                     h.max_slots, h.slots);
    if (st == LMC_OK)
        st = add_host(hf, path, &h); /* the list owns the name from here */
    if (st)
        free(h.name);
    return st;
}

lmc_status lmc_hostfile_parse(const char *text, size_t len, const char *path, lmc_hostfile *hf)
{
    memset(hf, 0, sizeof *hf);
    const char *p = text, *end = text + len;
    for (int line = 1; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        lmc_status s = LMC_OK;
        if (memchr(p, '\0', (size_t)(e - p)))
            s = lmc_err(LMC_EFORMAT, "%s:%d: a NUL byte (not a text file?)", path, line);
        else if (e - p > MAX_LINE)
            s = lmc_err(LMC_EFORMAT, "%s:%d: line of %zu bytes (at most %d)", path, line, (size_t)(e - p), MAX_LINE);
        else
            s = parse_line(hf, path, line, p, e);
        if (s) {
            lmc_hostfile_free(hf);
            return s;
        }
        p = nl ? nl + 1 : end;
    }
    if (hf->n == 0)
        return lmc_err(LMC_EFORMAT, "%s: no hosts (lines like 'localhost slots=2')", path);
    return LMC_OK;
}

lmc_status lmc_hostfile_load(const char *path, lmc_hostfile *hf)
{
    char *text;
    size_t len;
    memset(hf, 0, sizeof *hf);
    LMC_TRY(lmc_read_file(path, &text, &len));
    lmc_status s = len > (size_t)MAX_HOSTS * 64 ? lmc_err(LMC_EFORMAT, "%s: %zu bytes is too large for a host file",
                                                            path, len)
                                                 : lmc_hostfile_parse(text, len, path, hf);
    free(text);
    return s;
}
