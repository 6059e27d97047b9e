/* test.h: a minimal unit-test harness. Each test file has a main() that
 * calls RUN(test_fn) and returns test_summary(). */
#ifndef LMC_TEST_H
#define LMC_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures, test_checks;
static const char *test_current;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        test_checks++;                                                               \
        if (!(cond)) {                                                               \
            test_failures++;                                                         \
            fprintf(stderr, "FAIL %s:%d [%s]: %s\n", __FILE__, __LINE__, test_current, \
                    #cond);                                                          \
        }                                                                            \
    } while (0)

#define CHECK_MSG(cond, ...)                                                         \
    do {                                                                             \
        test_checks++;                                                               \
        if (!(cond)) {                                                               \
            test_failures++;                                                         \
            fprintf(stderr, "FAIL %s:%d [%s]: ", __FILE__, __LINE__, test_current);  \
            fprintf(stderr, __VA_ARGS__);                                            \
            fputc('\n', stderr);                                                     \
        }                                                                            \
    } while (0)

#define CHECK_OK(expr)                                                               \
    do {                                                                             \
        lmc_status s_ = (expr);                                                      \
        CHECK_MSG(s_ == LMC_OK, "%s -> %s: %s", #expr, lmc_status_name(s_), lmc_errmsg()); \
    } while (0)

/* the call must fail with `code` and its message must contain `needle` */
#define CHECK_ERR(expr, code, needle)                                                \
    do {                                                                             \
        lmc_status s_ = (expr);                                                      \
        CHECK_MSG(s_ == (code) && strstr(lmc_errmsg(), (needle)),                   \
                  "%s -> %s (%s), wanted %s containing '%s'", #expr, lmc_status_name(s_), \
                  s_ ? lmc_errmsg() : "", lmc_status_name(code), needle);            \
    } while (0)

#define RUN(fn)                           \
    do {                                  \
        test_current = #fn;               \
        int before_ = test_failures;      \
        fn();                             \
        fprintf(stderr, "%s %s\n", test_failures == before_ ? "ok  " : "FAIL", #fn); \
    } while (0)

/* A scratch folder per test program: test_tmpdir("gguf") makes
 * $TMPDIR/lmc_gguf_XXXXXX (default /tmp) and returns it, NULL on failure;
 * test_path("x.bin") names a file in it (four rotating buffers, so one
 * call may take a few paths). */
static char test_dir[256];

static inline const char *test_tmpdir(const char *name)
{
    const char *t = getenv("TMPDIR");
    snprintf(test_dir, sizeof test_dir, "%s/lmc_%s_XXXXXX", t && *t ? t : "/tmp", name);
    return mkdtemp(test_dir);
}

static inline const char *test_path(const char *name)
{
    static char buf[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", test_dir, name);
    return buf[i];
}

static inline int test_summary(void)
{
    fprintf(stderr, "%d checks, %d failures\n", test_checks, test_failures);
    return test_failures ? 1 : 0;
}

#endif
