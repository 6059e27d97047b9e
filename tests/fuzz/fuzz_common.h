/* fuzz_common.h: what the libFuzzer targets in tests/fuzz/ share: a
 * scratch folder for readers that take paths, seeds written by lmc's own
 * writers, and property checks that abort (libFuzzer then saves the input).
 * Seeds: with LMC_FUZZ_SEEDS=dir a target writes its seed corpus into dir
 * from LLVMFuzzerInitialize; tests/fuzz/run.sh does that before each run. */
#ifndef LMC_FUZZ_COMMON_H
#define LMC_FUZZ_COMMON_H

#include "lmc/core.h"

#include <stddef.h>
#include <stdint.h>

/* A property of the parser under test failed: print it and abort. */
#define FUZZ_ASSERT(cond)                                                        \
    do {                                                                         \
        if (!(cond))                                                             \
            fuzz_fail(__FILE__, __LINE__, #cond);                                \
    } while (0)
void fuzz_fail(const char *file, int line, const char *what) __attribute__((noreturn));

/* A fresh folder for this process (in /dev/shm when there is one), removed
 * at exit. name: a short word for the folder's name. */
const char *fuzz_tmpdir(const char *name);
/* dir/name into out (n bytes). */
void fuzz_path(char *out, size_t n, const char *dir, const char *name);
/* Writes a file plainly (not atomically: the fuzzer rewrites it for every
 * input and fsync would dominate); aborts on failure. */
void fuzz_put_file(const char *path, const void *data, size_t n);

/* Whether seeds are wanted (LMC_FUZZ_SEEDS is set). */
int fuzz_seeding(void);
/* Writes a seed: the mode byte (when mode >= 0) then the data. */
void fuzz_seed(const char *name, int mode, const void *data, size_t n);
/* The same with two parts joined by one sep byte (sep < 0: none). */
void fuzz_seed2(const char *name, int mode, const void *a, size_t an, int sep, const void *b, size_t bn);

/* The GGUF targets' seeds: tiny models exported by lmc (fuzz_gguf_seeds.c). */
void fuzz_gguf_seeds(void);

#endif
