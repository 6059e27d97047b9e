/* fileio.c: reading, mapping, atomic writing, directories and globs. */
#define _GNU_SOURCE
#include "lmc/core.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

lmc_status lmc_read_file(const char *path, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return lmc_err(LMC_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
        fclose(f);
        return lmc_err(LMC_EIO, "%s: not a readable file", path);
    }
    size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(f);
            return lmc_err(LMC_ENOMEM, "%s: out of memory reading file", path);
        }
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1)
            break;
        cap *= 2;
        char *nb = realloc(buf, cap);
        if (!nb)
            free(buf);
        buf = nb;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return lmc_err(LMC_EIO, "%s: read error", path);
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return LMC_OK;
}

lmc_status lmc_mmap_open(lmc_mmap *m, const char *path)
{
    m->data = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return lmc_err(LMC_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return lmc_err(LMC_EIO, "%s: not a regular file", path);
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return lmc_err(LMC_EIO, "%s: mmap failed: %s", path, strerror(errno));
        }
        m->data = p;
        m->size = (size_t)st.st_size;
    }
    close(fd);
    return LMC_OK;
}

void lmc_mmap_close(lmc_mmap *m)
{
    if (m->data)
        munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

lmc_status lmc_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return lmc_err(LMC_EIO, "%s: cannot open directory: %s", dir, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? LMC_OK : lmc_err(LMC_EIO, "%s: fsync failed: %s", dir, strerror(errno));
}

static lmc_status fsync_parent(const char *path)
{
    char *copy = lmc_strdup(path);
    if (!copy)
        return LMC_ENOMEM;
    lmc_status s = lmc_fsync_dir(dirname(copy));
    free(copy);
    return s;
}

lmc_status lmc_afile_open(lmc_afile *af, const char *path)
{
    memset(af, 0, sizeof *af);
    size_t n = strlen(path) + 32;
    af->path = lmc_strdup(path);
    af->tmp = malloc(n);
    if (!af->path || !af->tmp) {
        lmc_afile_abort(af);
        return lmc_err(LMC_ENOMEM, "%s: out of memory", path);
    }
    snprintf(af->tmp, n, "%s.tmp.%d", path, (int)getpid());
    lmc_status s = lmc_mkdir_parent(path);
    if (s != LMC_OK) {
        lmc_afile_abort(af);
        return s;
    }
    af->f = fopen(af->tmp, "wb");
    if (!af->f) {
        s = lmc_err(LMC_EIO, "%s: cannot create: %s", af->tmp, strerror(errno));
        lmc_afile_abort(af);
        return s;
    }
    return LMC_OK;
}

lmc_status lmc_afile_write(lmc_afile *af, const void *data, size_t n)
{
    if (af->failed)
        return LMC_EIO;
    if (n && fwrite(data, 1, n, af->f) != n) {
        af->failed = 1;
        return lmc_err(LMC_EIO, "%s: write failed: %s", af->tmp, strerror(errno));
    }
    return LMC_OK;
}

lmc_status lmc_afile_write_at(lmc_afile *af, size_t offset, const void *data, size_t n)
{
    if (af->failed)
        return LMC_EIO;
    if (fseeko(af->f, (off_t)offset, SEEK_SET) != 0) {
        af->failed = 1;
        return lmc_err(LMC_EIO, "%s: seek to byte %zu failed: %s", af->tmp, offset, strerror(errno));
    }
    return lmc_afile_write(af, data, n);
}

lmc_status lmc_afile_commit(lmc_afile *af)
{
    lmc_status s = LMC_OK;
    if (af->failed)
        s = lmc_err(LMC_EIO, "%s: earlier write failed", af->tmp);
    else if (fflush(af->f) != 0 || fsync(fileno(af->f)) != 0)
        s = lmc_err(LMC_EIO, "%s: flush failed: %s", af->tmp, strerror(errno));
    if (fclose(af->f) != 0 && s == LMC_OK)
        s = lmc_err(LMC_EIO, "%s: close failed: %s", af->tmp, strerror(errno));
    af->f = NULL;
    if (s == LMC_OK && rename(af->tmp, af->path) != 0)
        s = lmc_err(LMC_EIO, "%s: rename failed: %s", af->path, strerror(errno));
    if (s == LMC_OK)
        s = fsync_parent(af->path);
    if (s != LMC_OK)
        unlink(af->tmp);
    free(af->path);
    free(af->tmp);
    af->path = af->tmp = NULL;
    return s;
}

void lmc_afile_abort(lmc_afile *af)
{
    if (af->f) {
        fclose(af->f);
        unlink(af->tmp);
    }
    free(af->path);
    free(af->tmp);
    memset(af, 0, sizeof *af);
}

lmc_status lmc_write_file_atomic(const char *path, const void *data, size_t n)
{
    lmc_afile af;
    LMC_TRY(lmc_afile_open(&af, path));
    lmc_status s = lmc_afile_write(&af, data, n);
    if (s != LMC_OK) {
        lmc_afile_abort(&af);
        return s;
    }
    return lmc_afile_commit(&af);
}

int lmc_path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int lmc_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

lmc_status lmc_mkdir_p(const char *path)
{
    char *p = lmc_strdup(path);
    if (!p)
        return LMC_ENOMEM;
    for (char *c = p + 1;; c++) {
        if (*c == '/' || *c == 0) {
            char save = *c;
            *c = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                lmc_status s = lmc_err(LMC_EIO, "%s: cannot create directory: %s", p, strerror(errno));
                free(p);
                return s;
            }
            *c = save;
            if (!save)
                break;
        }
    }
    free(p);
    return lmc_is_dir(path) ? LMC_OK : lmc_err(LMC_EIO, "%s: exists and is not a directory", path);
}

lmc_status lmc_mkdir_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return LMC_OK;
    char *dir = lmc_strdup(path);
    if (!dir)
        return LMC_ENOMEM;
    dir[slash - path] = 0;
    lmc_status s = lmc_is_dir(dir) ? LMC_OK : lmc_mkdir_p(dir);
    free(dir);
    return s;
}

lmc_status lmc_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return LMC_OK;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d)
            return lmc_err(LMC_EIO, "%s: cannot open directory: %s", path, strerror(errno));
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char *sub = NULL;
            if (asprintf(&sub, "%s/%s", path, e->d_name) < 0) {
                closedir(d);
                return LMC_ENOMEM;
            }
            lmc_status s = lmc_rm_rf(sub);
            free(sub);
            if (s != LMC_OK) {
                closedir(d);
                return s;
            }
        }
        closedir(d);
        if (rmdir(path) != 0)
            return lmc_err(LMC_EIO, "%s: cannot remove: %s", path, strerror(errno));
        return LMC_OK;
    }
    if (unlink(path) != 0)
        return lmc_err(LMC_EIO, "%s: cannot remove: %s", path, strerror(errno));
    return LMC_OK;
}

lmc_status lmc_glob(const char *pattern, char ***paths, int *n)
{
    *paths = NULL;
    *n = 0;
    char *list = lmc_strdup(pattern);
    if (!list)
        return LMC_ENOMEM;
    glob_t g;
    memset(&g, 0, sizeof g);
    int flags = 0, rc = 0;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        size_t before = g.gl_pathc;
        rc = glob(tok, flags, NULL, &g);
        flags = GLOB_APPEND;
        if (rc == GLOB_NOSPACE)
            break;
        if (g.gl_pathc == before) {
            lmc_status s = lmc_err(LMC_EIO, "%s: no such file (pattern matched nothing)", tok);
            free(list);
            globfree(&g);
            return s;
        }
        rc = 0;
    }
    free(list);
    if (rc != 0 || g.gl_pathc == 0) {
        globfree(&g);
        return lmc_err(LMC_EIO, "%s: no such file (pattern matched nothing)", pattern);
    }
    char **out = calloc(g.gl_pathc, sizeof *out);
    if (!out) {
        globfree(&g);
        return LMC_ENOMEM;
    }
    for (size_t i = 0; i < g.gl_pathc; i++)
        out[i] = lmc_strdup(g.gl_pathv[i]);
    *paths = out;
    *n = (int)g.gl_pathc;
    globfree(&g);
    return LMC_OK;
}

void lmc_glob_free(char **paths, int n)
{
    for (int i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}
