/* plugin_fake.c: a backend plugin for tests/cli/test_devices.sh, built
 * there as liblmc_fake.so: the CPU backend (which lmc exports) behind the
 * plugin entry point, so `--device fake` runs a model through the whole
 * plugin path. Variants, by -D at build time: FAKE_ABI=N (a plugin built
 * for another interface), FAKE_NO_MATMUL (a required op missing),
 * FAKE_NO_DEVICE (probe finds none), FAKE_UNDEFINED (needs a symbol lmc
 * does not have, so it will not load). */
#include "backend/backend.h"

#include <stdio.h>
#include <stdlib.h>

#ifndef FAKE_ABI
#define FAKE_ABI LMC_BACKEND_ABI
#endif

#ifdef FAKE_UNDEFINED
void lmc_no_such_function(void);
#endif

static lmc_backend_ops ops;

static lmc_status fake_open(int index, int threads, lmc_backend **out)
{
#ifdef FAKE_UNDEFINED
    lmc_no_such_function();
#endif
    if (index > 0)
        return lmc_err(LMC_EUNSUPPORTED, "fake:%d: no such device (found 1)", index);
    LMC_TRY(lmc_cpu_backend_open(threads, "auto", out));
    ops = *(*out)->ops;
#ifdef FAKE_NO_MATMUL
    ops.matmul = NULL;
#endif
    (*out)->ops = &ops;
    (*out)->name = "fake:0";
    return LMC_OK;
}

static lmc_status fake_probe(int *count, char *desc, size_t len)
{
#ifdef FAKE_NO_DEVICE
    *count = 0;
    return lmc_err(LMC_EUNSUPPORTED, "no fake device: the test built it without one");
#else
    *count = 1;
    snprintf(desc, len, "fake:0 (the cpu backend, as a plugin)");
    return LMC_OK;
#endif
}

static const lmc_backend_plugin plugin = {FAKE_ABI, sizeof(lmc_backend_ops), "fake", "a test plugin", fake_open,
                                          fake_probe};

const lmc_backend_plugin *lmc_backend_plugin_entry(void) { return &plugin; }
