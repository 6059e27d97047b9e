/* backend.h (public): opening a device by name, and what `lmc devices`
 * reports. The ops table a chip implements is src/backend/backend.h. */
#ifndef LMC_BACKEND_PUBLIC_H
#define LMC_BACKEND_PUBLIC_H

#include "lmc/core.h"

typedef struct lmc_backend lmc_backend;

/* Opens a backend by name: "cpu", "cpu:ISA[,kc=N]", or NAME[:N] for a
 * plugin (liblmc_NAME.so: "cuda", "cuda:1", "npu:0"); without :N a
 * plugin picks the device of this process's local rank. threads <= 0: all
 * cores. A plugin's table is checked (every CORE op filled) before use. */
lmc_status lmc_backend_open(const char *device, int threads, lmc_backend **out);
void lmc_backend_close(lmc_backend *be);

/* Every backend lmc knows (cpu, cuda, npu and any other liblmc_NAME.so in
 * the plugin folders), one line each into out: whether it can run here
 * and why not; then where plugins are looked for. */
void lmc_devices_list(lmc_sb *out);
/* Opens device and describes it in one line (threads, memory, determinism,
 * the ops it lacks); fails as the device's own check does. */
lmc_status lmc_device_describe(const char *device, int threads, lmc_sb *out);

#endif
