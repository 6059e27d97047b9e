/* test_parsers.c: regressions for defects in the parsers of user bytes
 * (JSON, config.json), each found by fuzzing (tests/fuzz/, docs/reliability.md).
 * Every case here failed before its fix. */
#include "lmc/model.h"
#include "test.h"

/* A top-level string ending right after a backslash parsed as if closed. */
static void test_json_string_ends_in_backslash(void)
{
    const char *bad[] = {"\"abc\\", "\"\\", "[\"a\\", "{\"k\\"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        lmc_json *j = NULL;
        CHECK_ERR(lmc_json_parse(bad[i], strlen(bad[i]), "in.json", &j), LMC_EFORMAT, "unterminated string");
        CHECK(j == NULL);
    }
}

/* A number beyond a double's range became inf. */
static void test_json_number_out_of_range(void)
{
    const char *bad[] = {"1e999", "-1e400", "[1, 2e308]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        lmc_json *j = NULL;
        CHECK_ERR(lmc_json_parse(bad[i], strlen(bad[i]), "in.json", &j), LMC_EFORMAT, "out of range");
        CHECK(j == NULL);
    }
    lmc_json *j = NULL; /* underflow rounds to zero, as everywhere */
    CHECK_OK(lmc_json_parse("[1e-999, 1.7976931348623157e308]", 32, "in.json", &j));
    CHECK(j && lmc_json_at(j, 0)->num == 0 && lmc_json_at(j, 1)->num > 1e308);
    lmc_json_free(j);
}

int main(void)
{
    RUN(test_json_string_ends_in_backslash);
    RUN(test_json_number_out_of_range);
    return test_summary();
}
