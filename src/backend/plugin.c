/* plugin.c: finding the CUDA plugin (liblmc_cuda.so: the CUDA backend and
 * the NCCL communicator). It is loaded on first use so that lmc starts in
 * milliseconds and runs on machines without the CUDA libraries; it is looked
 * for beside the lmc binary, then where the build put it. */
#define _GNU_SOURCE
#include "backend/backend.h"

#include <dlfcn.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static lmc_status open_plugin(void **handle, const char *what)
{
    char exe[4096], path[4200], errs[2048] = "";
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    const char *candidates[2] = {NULL, NULL};
    if (n > 0) {
        exe[n] = 0;
        snprintf(path, sizeof path, "%s/liblmc_cuda.so", dirname(exe));
        candidates[0] = path;
    }
#ifdef LMC_CUDA_PLUGIN
    candidates[1] = LMC_CUDA_PLUGIN;
#endif
    for (int i = 0; i < 2; i++) {
        if (!candidates[i] || access(candidates[i], F_OK) != 0)
            continue;
        *handle = dlopen(candidates[i], RTLD_NOW | RTLD_GLOBAL);
        if (*handle)
            return LMC_OK;
        snprintf(errs, sizeof errs, ": %s", dlerror());
    }
    if (errs[0])
        return lmc_err(LMC_EUNSUPPORTED, "%s: the CUDA plugin liblmc_cuda.so would not load%s", what, errs);
    return lmc_err(LMC_EUNSUPPORTED, "%s: this lmc has no CUDA plugin (liblmc_cuda.so is built when nvcc is found "
                   "at build time)", what);
}

lmc_status lmc_cuda_plugin_symbol(const char *name, const char *what, void **sym)
{
    static void *handle; /* loaded once per process, never unloaded */
    if (!handle)
        LMC_TRY(open_plugin(&handle, what));
    *sym = dlsym(handle, name);
    return *sym ? LMC_OK : lmc_err(LMC_EUNSUPPORTED, "%s: liblmc_cuda.so lacks %s", what, name);
}
