/* acl_load.c: opening CANN's libraries with dlopen, so lmc builds and
 * starts on machines without them and `--device npu` fails at once, naming
 * the library it could not find and where it looked.
 *
 * Folder: $LMC_ASCEND_LIBDIR when set (the mock in tests/ascend uses it),
 * else $ASCEND_TOOLKIT_HOME/lib64 (set by CANN's set_env.sh), else CANN's
 * default install, /usr/local/Ascend/ascend-toolkit/latest/lib64. Each
 * symbol is looked up in every library opened, so it does not matter which
 * of them exports it. The loaded table is process state, as dlopen's is:
 * loaded once and never unloaded. */
#define _GNU_SOURCE
#include "backend/ascend/npu.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NPU_DEFAULT_LIBDIR "/usr/local/Ascend/ascend-toolkit/latest/lib64"
#define REPEAT_INITIALIZE 100002 /* aclInit's "already initialised" (ACL_ERROR_REPEAT_INITIALIZE) */

static const char *const core_libs[] = {"libascendcl.so", "libnnopbase.so", "libopapi.so"};
#define N_CORE (int)(sizeof core_libs / sizeof *core_libs)

static struct {
    pthread_mutex_t mu;
    int loaded;
    void *handle[N_CORE + 1];
    npu_api api;
    npu_hccl_api hccl;
    int hccl_loaded;
} g = {PTHREAD_MUTEX_INITIALIZER};

/* The folder and where its name came from. */
static const char *lib_dir(const char **why)
{
    static char buf[1024];
    const char *d = getenv("LMC_ASCEND_LIBDIR");
    if (d && *d) {
        *why = "$LMC_ASCEND_LIBDIR";
        return d;
    }
    const char *home = getenv("ASCEND_TOOLKIT_HOME");
    if (home && *home) {
        snprintf(buf, sizeof buf, "%s/lib64", home);
        *why = "$ASCEND_TOOLKIT_HOME/lib64";
        return buf;
    }
    *why = "CANN's default install; set ASCEND_TOOLKIT_HOME (source CANN's set_env.sh) or LMC_ASCEND_LIBDIR";
    return NPU_DEFAULT_LIBDIR;
}

void npu_lib_where(char *buf, size_t len)
{
    const char *why, *dir = lib_dir(&why);
    snprintf(buf, len, "%s (%s)", dir, why);
}

static lmc_status open_lib(const char *file, void **handle)
{
    char path[1200], where[1200];
    const char *why, *dir = lib_dir(&why);
    snprintf(path, sizeof path, "%s/%s", dir, file);
    npu_lib_where(where, sizeof where);
    if (access(path, F_OK) != 0)
        return lmc_err(LMC_EUNSUPPORTED, "the Ascend runtime library %s was not found in %s: is the CANN toolkit "
                       "installed?", file, where);
    if (!(*handle = dlopen(path, RTLD_NOW | RTLD_GLOBAL)))
        return lmc_err(LMC_EIO, "the Ascend runtime library %s would not load: %s", path, dlerror());
    return LMC_OK;
}

static void *find_symbol(void *const *handles, int n, const char *name)
{
    for (int i = 0; i < n; i++) {
        void *p = handles[i] ? dlsym(handles[i], name) : NULL;
        if (p)
            return p;
    }
    return NULL;
}

static lmc_status missing(const char *name, const char *libs)
{
    char where[1200];
    npu_lib_where(where, sizeof where);
    return lmc_err(LMC_EUNSUPPORTED, "the Ascend libraries in %s (%s) lack %s: CANN too old for lmc (8.0 or newer "
                   "is needed)", where, libs, name);
}

#define NPU_SYM_(ret, name, params)                                          \
    if (!(*(void **)&a->name = find_symbol(g.handle, N_CORE, #name)))          \
        return missing(#name, "libascendcl, libnnopbase, libopapi");
#define NPU_OPSYM_(name, params)                                                              \
    if (!(*(void **)&a->name##GetWorkspaceSize = find_symbol(g.handle, N_CORE, #name "GetWorkspaceSize"))) \
        return missing(#name "GetWorkspaceSize", "libopapi");                                 \
    if (!(*(void **)&a->name = find_symbol(g.handle, N_CORE, #name)))                         \
        return missing(#name, "libopapi");

static lmc_status resolve(npu_api *a)
{
    NPU_RUNTIME_FUNCS(NPU_SYM_)
    NPU_TENSOR_FUNCS(NPU_SYM_)
    NPU_OPS(NPU_OPSYM_)
    return LMC_OK;
}

static lmc_status load_locked(void)
{
    for (int i = 0; i < N_CORE; i++)
        if (!g.handle[i])
            LMC_TRY(open_lib(core_libs[i], &g.handle[i]));
    LMC_TRY(resolve(&g.api));
    acl_error e = g.api.aclInit(NULL);
    if (e != NPU_ACL_SUCCESS && e != REPEAT_INITIALIZE)
        return lmc_err(LMC_EIO, "aclInit failed: error %d: %s", e, g.api.aclGetRecentErrMsg());
    g.loaded = 1;
    return LMC_OK;
}

lmc_status npu_api_load(const npu_api **out)
{
    pthread_mutex_lock(&g.mu);
    lmc_status s = g.loaded ? LMC_OK : load_locked();
    pthread_mutex_unlock(&g.mu);
    *out = s == LMC_OK ? &g.api : NULL;
    return s;
}

#define NPU_HSYM_(ret, name, params)                                          \
    if (!(*(void **)&h->name = find_symbol(&g.handle[N_CORE], 1, #name)))      \
        return missing(#name, "libhccl");

static lmc_status hccl_locked(void)
{
    npu_hccl_api *h = &g.hccl;
    if (!g.handle[N_CORE])
        LMC_TRY(open_lib("libhccl.so", &g.handle[N_CORE]));
    NPU_HCCL_FUNCS(NPU_HSYM_)
    g.hccl_loaded = 1;
    return LMC_OK;
}

lmc_status npu_hccl_load(const npu_hccl_api **out)
{
    const npu_api *a;
    LMC_TRY(npu_api_load(&a));
    pthread_mutex_lock(&g.mu);
    lmc_status s = g.hccl_loaded ? LMC_OK : hccl_locked();
    pthread_mutex_unlock(&g.mu);
    *out = s == LMC_OK ? &g.hccl : NULL;
    return s;
}
