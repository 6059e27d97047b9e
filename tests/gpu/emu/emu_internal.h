/* emu_internal.h: what the emulation's own files share (not the backend). */
#ifndef LMC_EMU_INTERNAL_H
#define LMC_EMU_INTERNAL_H

#include "cuda_emu.h"

#include <functional>

/* Queues work on a stream; it runs when the host waits for the stream
 * (emu_runtime.cpp). A null stream or cudaStreamLegacy is the legacy
 * default stream. */
void emu_enqueue(cudaStream_t s, std::function<void()> work);
/* A fault the device would report asynchronously: sticky, every later
 * synchronising call returns it (the context is unusable). */
void emu_device_fault(cudaError_t e, const char *what);
/* An error of the launch just made, for cudaGetLastError (not sticky). */
void emu_set_last_error(cudaError_t e);
/* A launch error found only when the grid ran (a kernel's static shared
 * memory is known once it has run): returned by the next synchronising call
 * and cudaGetLastError, once. */
void emu_set_pending_error(cudaError_t e);
/* Is [p, p+n) inside one live device allocation? */
int emu_is_device(const void *p, size_t n);
/* The device's opt-in shared memory per block (EMU_SMEM_OPTIN overrides). */
int emu_smem_optin(void);
/* The emulation refuses every launch: a binary without an image for this
 * device (EMU_NO_KERNEL_IMAGE). */
int emu_no_kernel_image(void);
/* A programming error the device would hang or corrupt on: say so, abort. */
[[noreturn]] void emu_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
