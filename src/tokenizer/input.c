/* input.c: what the commands read: expanding FILES|DIRS|- into a sorted file
 * list, and streaming a file in blocks cut only where pre-tokenization is
 * unaffected (so memory stays bounded and blocks can go to different threads
 * without changing a single token). */
#define _GNU_SOURCE
#include "tokenizer/tok_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------- listing inputs ---------- */

typedef struct {
    char **v;
    int n, cap;
} strvec;

static lmc_status push(strvec *l, const char *s)
{
    if (l->n == l->cap) {
        int nc = l->cap ? l->cap * 2 : 16;
        char **nv = realloc(l->v, (size_t)nc * sizeof *nv);
        if (!nv)
            return lmc_err(LMC_ENOMEM, "out of memory listing inputs");
        l->v = nv;
        l->cap = nc;
    }
    if (!(l->v[l->n] = lmc_strdup(s)))
        return lmc_err(LMC_ENOMEM, "out of memory listing inputs");
    l->n++;
    return LMC_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b); /* bytewise: the same order in every locale */
}

static lmc_status walk(strvec *out, const char *dir, int depth)
{
    if (depth > 64)
        return lmc_err(LMC_EIO, "%s: directories nested too deeply (a symlink loop?)", dir);
    DIR *d = opendir(dir);
    if (!d)
        return lmc_err(LMC_EIO, "%s: cannot open directory: %s", dir, strerror(errno));
    strvec names = {0};
    lmc_status s = LMC_OK;
    struct dirent *e;
    while (s == LMC_OK && (e = readdir(d)))
        if (e->d_name[0] != '.')
            s = push(&names, e->d_name);
    closedir(d);
    if (names.n)
        qsort(names.v, (size_t)names.n, sizeof *names.v, cmp_str);
    for (int i = 0; i < names.n && s == LMC_OK; i++) {
        char *path = NULL;
        if (asprintf(&path, "%s/%s", dir, names.v[i]) < 0) {
            s = lmc_err(LMC_ENOMEM, "out of memory listing inputs");
            break;
        }
        struct stat st;
        if (stat(path, &st) != 0)
            s = lmc_err(LMC_EIO, "%s: cannot stat: %s", path, strerror(errno));
        else if (S_ISDIR(st.st_mode))
            s = walk(out, path, depth + 1);
        else if (S_ISREG(st.st_mode))
            s = push(out, path);
        free(path);
    }
    for (int i = 0; i < names.n; i++)
        free(names.v[i]);
    free(names.v);
    return s;
}

/* Opens each file once now, so an unreadable one fails before any work. */
static lmc_status check_readable(const char *path, double *total)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return lmc_err(LMC_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int ok = fstat(fd, &st) == 0;
    close(fd);
    if (!ok || !S_ISREG(st.st_mode))
        return lmc_err(LMC_EIO, "%s: not a regular file", path);
    *total += (double)st.st_size;
    return LMC_OK;
}

static lmc_status expand(strvec *out, const char *spec)
{
    if (!strcmp(spec, "-"))
        return push(out, "-");
    if (lmc_is_dir(spec)) {
        int before = out->n;
        LMC_TRY(walk(out, spec, 0));
        return out->n > before ? LMC_OK : lmc_err(LMC_EIO, "%s: directory holds no files", spec);
    }
    char **paths = NULL;
    int n = 0;
    LMC_TRY(lmc_glob(spec, &paths, &n));
    lmc_status s = LMC_OK;
    for (int i = 0; i < n && s == LMC_OK; i++)
        s = lmc_is_dir(paths[i]) ? walk(out, paths[i], 0) : push(out, paths[i]);
    lmc_glob_free(paths, n);
    return s;
}

lmc_status lmc_tok_list_inputs(const char *const *specs, int n, char ***paths, int *npaths, double *total)
{
    *paths = NULL;
    *npaths = 0;
    *total = 0;
    if (n == 0)
        return lmc_err(LMC_EINVAL, "no input given (--input FILES|DIRS|-)");
    strvec out = {0};
    lmc_status s = LMC_OK;
    int stdin_seen = 0;
    for (int i = 0; i < n && s == LMC_OK; i++)
        s = expand(&out, specs[i]);
    for (int i = 0; i < out.n && s == LMC_OK; i++) {
        if (!strcmp(out.v[i], "-")) {
            if (stdin_seen++)
                s = lmc_err(LMC_EINVAL, "stdin ('-') is given more than once");
        } else {
            s = check_readable(out.v[i], total);
        }
    }
    if (stdin_seen)
        *total = 0;
    if (s != LMC_OK) {
        lmc_tok_free_inputs(out.v, out.n);
        return s;
    }
    *paths = out.v;
    *npaths = out.n;
    return LMC_OK;
}

void lmc_tok_free_inputs(char **paths, int n)
{
    for (int i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

/* ---------- streaming one file ---------- */

lmc_status tok_stream_open(tok_stream *s, const char *path, size_t max_block)
{
    memset(s, 0, sizeof *s);
    s->path = strcmp(path, "-") ? path : "<stdin>";
    s->max_block = max_block;
    s->fd = strcmp(path, "-") ? open(path, O_RDONLY) : 0;
    if (s->fd < 0)
        return lmc_err(LMC_EIO, "%s: cannot open: %s", path, strerror(errno));
    return LMC_OK;
}

void tok_stream_close(tok_stream *s)
{
    if (s->fd > 0)
        close(s->fd);
    free(s->buf);
    memset(s, 0, sizeof *s);
}

/* Reads until want bytes are buffered or the file ends. */
static lmc_status fill(tok_stream *s, size_t want)
{
    if (want + 1 > s->cap) {
        size_t nc = want + (1 << 16);
        uint8_t *nb = realloc(s->buf, nc);
        if (!nb)
            return lmc_err(LMC_ENOMEM, "%s: out of memory (%zu-byte buffer)", s->path, nc);
        s->buf = nb;
        s->cap = nc;
    }
    while (!s->eof && s->len < want) {
        ssize_t r = read(s->fd, s->buf + s->len, s->cap - 1 - s->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return lmc_err(LMC_EIO, "%s: read error: %s", s->path, strerror(errno));
        if (r == 0)
            s->eof = 1;
        s->len += (size_t)r;
    }
    return LMC_OK;
}

lmc_status tok_stream_next(tok_stream *s, size_t target, const uint8_t **data, size_t *n)
{
    /* the previous block (s->cap holds it) is gone: keep what followed it */
    if (s->taken) {
        memmove(s->buf, s->buf + s->taken, s->len - s->taken);
        s->len -= s->taken;
        s->taken = 0;
    }
    if (target < 64)
        target = 64;
    size_t want = 2 * target, from = target, k = 0;
    for (;;) {
        LMC_TRY(fill(s, want));
        if (s->eof && s->len <= want) {
            k = s->len;
            break;
        }
        /* stay 4 bytes clear of the buffer's end: a cut must see whole characters */
        size_t hi = want < s->len - 4 ? want : s->len - 4;
        if (from <= hi && (k = lmc_tok_find_cut((const char *)s->buf, s->len, from, hi)))
            break;
        if (want >= s->max_block) {
            /* no safe cut in max_block bytes (one enormous piece): cut at a
             * character start; the only place output may differ */
            k = want;
            while (k > 1 && (s->buf[k] & 0xC0) == 0x80)
                k--;
            break;
        }
        from = hi + 1;
        want = want * 2 < s->max_block ? want * 2 : s->max_block;
    }
    s->taken = k;
    *data = s->buf;
    *n = k;
    return LMC_OK;
}
