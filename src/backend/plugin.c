/* plugin.c: finding backend plugins by name. Backend NAME is the shared
 * library liblmc_NAME.so (the CUDA one also holds the NCCL communicator).
 * It is loaded on first use, so lmc starts in milliseconds and runs on
 * machines without a vendor's libraries. It is looked for in, in order:
 *   $LMC_PLUGIN_DIR (folders separated by ':'; first, so a person can
 *     always point lmc at another build),
 *   the folder of the lmc binary,
 *   the build folder it was compiled in (LMC_PLUGIN_BUILD_DIR: the tests,
 *     which do not live beside their plugins),
 *   the loader's path (LD_LIBRARY_PATH, rpath, ld.so.cache).
 * Each library is loaded once per process and never unloaded. Errors:
 * LMC_EUNSUPPORTED when no liblmc_NAME.so is found, LMC_EIO when one is
 * found but will not load (a library it needs is missing), LMC_EFORMAT
 * when it loads but is not a plugin for this lmc. */
#define _GNU_SOURCE
#include "backend/backend.h"

#include <dirent.h>
#include <dlfcn.h>
#include <libgen.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_DIRS 8
#define MAX_LOADED 16

typedef struct {
    char dir[MAX_DIRS][1024];
    const char *why[MAX_DIRS]; /* "beside lmc", ... */
    int n;
} search_path;

static void add_dir(search_path *sp, const char *dir, const char *why)
{
    if (!dir || !*dir || sp->n == MAX_DIRS)
        return;
    for (int i = 0; i < sp->n; i++)
        if (!strcmp(sp->dir[i], dir))
            return;
    snprintf(sp->dir[sp->n], sizeof sp->dir[0], "%s", dir);
    sp->why[sp->n++] = why;
}

static void search_dirs(search_path *sp)
{
    sp->n = 0;
    const char *env = getenv("LMC_PLUGIN_DIR");
    if (env) {
        char list[4096];
        snprintf(list, sizeof list, "%s", env);
        for (char *save = NULL, *d = strtok_r(list, ":", &save); d; d = strtok_r(NULL, ":", &save))
            add_dir(sp, d, "$LMC_PLUGIN_DIR");
    }
    char exe[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        add_dir(sp, dirname(exe), "beside lmc");
    }
#ifdef LMC_PLUGIN_BUILD_DIR
    add_dir(sp, LMC_PLUGIN_BUILD_DIR, "the build folder");
#endif
}

void lmc_plugin_where(char *buf, size_t len)
{
    search_path sp;
    search_dirs(&sp);
    size_t at = 0;
    buf[0] = 0;
    if (!getenv("LMC_PLUGIN_DIR"))
        at += (size_t)snprintf(buf, len, "$LMC_PLUGIN_DIR (not set), ");
    for (int i = 0; i < sp.n && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, "%s (%s), ", sp.dir[i], sp.why[i]);
    if (at < len)
        snprintf(buf + at, len - at, "the loader's path (LD_LIBRARY_PATH, ld.so.cache)");
}

/* The loaded libraries, by backend name: process state, as dlopen's is. */
static struct {
    char name[32];
    void *handle;
} loaded[MAX_LOADED];

static void *already_loaded(const char *name)
{
    for (int i = 0; i < MAX_LOADED && loaded[i].handle; i++)
        if (!strcmp(loaded[i].name, name))
            return loaded[i].handle;
    return NULL;
}

static void remember(const char *name, void *handle)
{
    for (int i = 0; i < MAX_LOADED; i++)
        if (!loaded[i].handle) {
            snprintf(loaded[i].name, sizeof loaded[i].name, "%s", name);
            loaded[i].handle = handle;
            return;
        }
}

/* dlopen by bare name (the loader's path); a dlerror that does not start
 * with our file's name means it was found but a library it needs was not. */
static lmc_status open_from_loader(const char *file, void **handle)
{
    *handle = dlopen(file, RTLD_NOW | RTLD_GLOBAL);
    if (*handle)
        return LMC_OK;
    const char *e = dlerror();
    if (e && strncmp(e, file, strlen(file)) != 0)
        return lmc_err(LMC_EIO, "%s: found on the loader's path but would not load: %s", file, e);
    char where[4096];
    lmc_plugin_where(where, sizeof where);
    return lmc_err(LMC_EUNSUPPORTED, "%s: not found in %s", file, where);
}

static lmc_status load(const char *name, void **handle)
{
    if ((*handle = already_loaded(name)))
        return LMC_OK;
    if (!*name || strlen(name) >= 32 || strpbrk(name, "/:. "))
        return lmc_err(LMC_EINVAL, "'%s' is not a backend name (letters, digits, '_' and '-', under 32)", name);
    char file[64], path[1200];
    snprintf(file, sizeof file, "liblmc_%s.so", name);
    search_path sp;
    search_dirs(&sp);
    for (int i = 0; i < sp.n; i++) {
        snprintf(path, sizeof path, "%s/%s", sp.dir[i], file);
        if (access(path, F_OK) != 0)
            continue;
        if (!(*handle = dlopen(path, RTLD_NOW | RTLD_GLOBAL)))
            return lmc_err(LMC_EIO, "%s: found (%s) but would not load: %s", file, path, dlerror());
        remember(name, *handle);
        return LMC_OK;
    }
    LMC_TRY(open_from_loader(file, handle));
    remember(name, *handle);
    return LMC_OK;
}

/* Where a loaded library lies, for messages. */
static const char *path_of(void *handle)
{
    struct link_map *lm = NULL;
    return dlinfo(handle, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_name ? lm->l_name : "?";
}

const char *lmc_plugin_path(const char *name)
{
    void *handle = already_loaded(name);
    return handle ? path_of(handle) : NULL;
}

lmc_status lmc_plugin_symbol(const char *name, const char *symbol, const char *what, void **sym)
{
    void *handle;
    lmc_status s = load(name, &handle);
    if (s)
        return lmc_err_wrap(s, "%s", what);
    *sym = dlsym(handle, symbol);
    return *sym ? LMC_OK : lmc_err(LMC_EUNSUPPORTED, "%s: %s lacks %s", what, path_of(handle), symbol);
}

lmc_status lmc_cuda_plugin_symbol(const char *name, const char *what, void **sym)
{
    return lmc_plugin_symbol("cuda", name, what, sym);
}

/* A plugin's descriptor, checked against this lmc's interface. */
lmc_status lmc_plugin_backend(const char *name, const lmc_backend_plugin **out)
{
    void *handle, *fn;
    LMC_TRY(load(name, &handle));
    const char *path = path_of(handle);
    if (!(fn = dlsym(handle, LMC_BACKEND_PLUGIN_ENTRY)))
        return lmc_err(LMC_EFORMAT, "%s: not an lmc backend plugin (it has no %s)", path,
                       LMC_BACKEND_PLUGIN_ENTRY);
    const lmc_backend_plugin *p = ((lmc_backend_plugin_fn)fn)();
    if (!p || p->abi != LMC_BACKEND_ABI || p->ops_size != sizeof(lmc_backend_ops))
        return lmc_err(LMC_EFORMAT, "%s: built for backend interface %d (ops table of %zu bytes), this lmc has "
                       "%d (%zu bytes): rebuild the plugin with this lmc", path, p ? p->abi : -1,
                       p ? p->ops_size : 0, LMC_BACKEND_ABI, sizeof(lmc_backend_ops));
    if (!p->name || strcmp(p->name, name) || !p->open || !p->probe)
        return lmc_err(LMC_EFORMAT, "%s: its descriptor names backend '%s' and must name '%s' and give open "
                       "and probe", path, p->name ? p->name : "(none)", name);
    *out = p;
    return LMC_OK;
}

static int has_name(char (*names)[32], int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], name))
            return 1;
    return 0;
}

int lmc_plugin_scan(char (*names)[32], int n, int max)
{
    search_path sp;
    search_dirs(&sp);
    for (int i = 0; i < sp.n; i++) {
        DIR *d = opendir(sp.dir[i]);
        for (struct dirent *e; d && (e = readdir(d));) {
            size_t len = strlen(e->d_name);
            if (len <= 10 || len - 10 >= 32 || strncmp(e->d_name, "liblmc_", 7) || strcmp(e->d_name + len - 3, ".so"))
                continue;
            char name[32];
            snprintf(name, sizeof name, "%.*s", (int)(len - 10), e->d_name + 7);
            if (n < max && !has_name(names, n, name))
                snprintf(names[n++], sizeof names[0], "%s", name);
        }
        if (d)
            closedir(d);
    }
    return n;
}
