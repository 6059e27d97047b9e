/* backend.c: opening a backend by device name. */
#include "backend/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef lmc_status (*cuda_open_fn)(int device, lmc_backend **out);

#ifdef LMC_HAVE_CUDA /* linked in statically (the emulator build in tests/gpu/emu) */
lmc_status lmc_cuda_backend_open(int device, lmc_backend **out);
#endif

static lmc_status cuda_open(int device, const char *name, lmc_backend **out)
{
#ifdef LMC_HAVE_CUDA
    (void)name;
    return lmc_cuda_backend_open(device, out);
#else
    void *fn;
    LMC_TRY(lmc_cuda_plugin_symbol("lmc_cuda_backend_open", name, &fn));
    return ((cuda_open_fn)fn)(device, out);
#endif
}

lmc_status lmc_backend_open(const char *device, int threads, lmc_backend **out)
{
    *out = NULL;
    if (!device || !strcmp(device, "cpu"))
        return lmc_cpu_backend_open(threads, "auto", out);
    if (!strncmp(device, "cpu:", 4)) /* a forced instruction-set path: avx512, avx512-nodot, avx2, c */
        return lmc_cpu_backend_open(threads, device + 4, out);
    if (!strncmp(device, "cuda", 4) && (device[4] == 0 || device[4] == ':')) {
        long long idx = -1; /* plain "cuda": the GPU of this process's local rank */
        if (device[4] == ':')
            LMC_TRY(lmc_parse_int(device + 5, "--device cuda:N", 0, 1023, &idx));
        char what[64];
        snprintf(what, sizeof what, "--device %s", device);
        return cuda_open((int)idx, what, out);
    }
    return lmc_err(LMC_EINVAL, "--device: unknown device '%s' (use cpu, cpu:ISA, cuda or cuda:N)", device);
}

void lmc_backend_close(lmc_backend *be)
{
    if (be)
        be->ops->destroy(be);
}
