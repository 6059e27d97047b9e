/* backend.c: opening a backend by device name. */
#include "backend/backend.h"

#include <stdlib.h>
#include <string.h>

#ifdef LMC_HAVE_CUDA
lmc_status lmc_cuda_backend_open(int device, lmc_backend **out);
#endif

lmc_status lmc_backend_open(const char *device, int threads, lmc_backend **out)
{
    *out = NULL;
    if (!device || !strcmp(device, "cpu"))
        return lmc_cpu_backend_open(threads, "auto", out);
    if (!strncmp(device, "cuda", 4) && (device[4] == 0 || device[4] == ':')) {
        long long idx = 0;
        if (device[4] == ':')
            LMC_TRY(lmc_parse_int(device + 5, "--device cuda:N", 0, 1023, &idx));
#ifdef LMC_HAVE_CUDA
        return lmc_cuda_backend_open((int)idx, out);
#else
        (void)idx;
        return lmc_err(LMC_EUNSUPPORTED, "--device %s: this lmc was built without CUDA (nvcc was not found at build time)", device);
#endif
    }
    return lmc_err(LMC_EINVAL, "--device: unknown device '%s' (use cpu, cuda or cuda:N)", device);
}

void lmc_backend_close(lmc_backend *be)
{
    if (be)
        be->ops->destroy(be);
}
