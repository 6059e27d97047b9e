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

/* "cpu:" then, comma-separated, an instruction-set path to force (avx512,
 * avx512-nodot, avx2, c) and kc=N (matmuls sum k in blocks of at most N):
 * the same numbers computed another way, to measure float noise. */
static lmc_status cpu_variant(const char *device, int threads, lmc_backend **out)
{
    char isa[32] = "auto", spec[128];
    int kc = 0;
    snprintf(spec, sizeof spec, "%s", device + 4);
    for (char *tok = strtok(spec, ","); tok; tok = strtok(NULL, ",")) {
        if (!strncmp(tok, "kc=", 3)) {
            char *end;
            long v = strtol(tok + 3, &end, 10);
            if (*end || v < 2 || v > 4096)
                return lmc_err(LMC_EINVAL, "--device %s: kc=%s must be a whole number in [2, 4096]", device, tok + 3);
            kc = (int)v;
        } else {
            snprintf(isa, sizeof isa, "%s", tok);
        }
    }
    lmc_status s = lmc_cpu_backend_open(threads, isa, out);
    if (s)
        return lmc_err_wrap(s, "--device %s", device);
    lmc_cpu_set_kc_cap(*out, kc);
    return LMC_OK;
}

lmc_status lmc_backend_open(const char *device, int threads, lmc_backend **out)
{
    *out = NULL;
    if (!device || !strcmp(device, "cpu"))
        return lmc_cpu_backend_open(threads, "auto", out);
    if (!strncmp(device, "cpu:", 4))
        return cpu_variant(device, threads, out);
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
