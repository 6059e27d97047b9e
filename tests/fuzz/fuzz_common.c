/* fuzz_common.c: see fuzz_common.h. */
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp_root[256];

void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "fuzz property failed at %s:%d: %s (last lmc error: %s)\n", file, line, what, lmc_errmsg());
    abort();
}

static void remove_tmp(void)
{
    if (tmp_root[0])
        lmc_rm_rf(tmp_root);
}

const char *fuzz_tmpdir(const char *name)
{
    if (!tmp_root[0]) {
        const char *base = lmc_is_dir("/dev/shm") && access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(tmp_root, sizeof tmp_root, "%s/lmc_fuzz_%s_XXXXXX", base, name);
        if (!mkdtemp(tmp_root)) {
            perror(tmp_root);
            abort();
        }
        atexit(remove_tmp);
    }
    return tmp_root;
}

void fuzz_path(char *out, size_t n, const char *dir, const char *name)
{
    if ((size_t)snprintf(out, n, "%s/%s", dir, name) >= n)
        abort();
}

void fuzz_put_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

int fuzz_seeding(void) { return getenv("LMC_FUZZ_SEEDS") != NULL; }

void fuzz_seed2(const char *name, int mode, const void *a, size_t an, int sep, const void *b, size_t bn)
{
    const char *dir = getenv("LMC_FUZZ_SEEDS");
    if (!dir)
        return;
    char path[4200];
    fuzz_path(path, sizeof path, dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (mode >= 0 && fputc(mode, f) == EOF) || (an && fwrite(a, 1, an, f) != an) ||
        (sep >= 0 && fputc(sep, f) == EOF) || (bn && fwrite(b, 1, bn, f) != bn) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

void fuzz_seed(const char *name, int mode, const void *data, size_t n) { fuzz_seed2(name, mode, data, n, -1, NULL, 0); }
