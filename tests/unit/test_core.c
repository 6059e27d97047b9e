/* test_core.c: JSON, string builder, atomic files, rng, number parsing. */
#include "lmc/core.h"
#include "test.h"

#include <unistd.h>

static void test_json_basic(void)
{
    const char *t = "{\"a\": 1.5, \"b\": [true, false, null, \"x\\u00e9\\ud83d\\ude00\"], \"c\": {\"d\": -2e3}}";
    lmc_json *j = NULL;
    CHECK_OK(lmc_json_parse(t, strlen(t), "t", &j));
    double a = 0;
    CHECK_OK(lmc_json_get_num(j, "a", "t", &a));
    CHECK(a == 1.5);
    lmc_json *b = lmc_json_get(j, "b");
    CHECK(b && b->type == LMC_JSON_ARR && b->n == 4);
    CHECK(lmc_json_at(b, 0)->num == 1 && lmc_json_at(b, 1)->num == 0);
    CHECK(lmc_json_at(b, 2)->type == LMC_JSON_NULL);
    CHECK(!strcmp(lmc_json_at(b, 3)->str, "x\xc3\xa9\xf0\x9f\x98\x80"));
    long long d = 0;
    CHECK_OK(lmc_json_get_int(lmc_json_get(j, "c"), "d", "t", &d));
    CHECK(d == -2000);
    const char *s = NULL;
    CHECK_ERR(lmc_json_get_str(j, "a", "cfg.json", &s), LMC_EFORMAT, "cfg.json: field 'a' must be a string");
    lmc_json_free(j);
}

static void test_json_errors(void)
{
    const char *bad[] = {"", "{", "{\"a\":}", "[1,]", "{\"a\":1} x", "\"\\q\"", "01", "[1 2]", "nul", "\"a\nb\""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        lmc_json *j = NULL;
        CHECK_ERR(lmc_json_parse(bad[i], strlen(bad[i]), "in.json", &j), LMC_EFORMAT, "in.json: malformed JSON");
        CHECK(j == NULL);
    }
    char deep[2000];
    memset(deep, '[', sizeof deep);
    lmc_json *j = NULL;
    CHECK_ERR(lmc_json_parse(deep, sizeof deep, "deep", &j), LMC_EFORMAT, "nested too deeply");
}

static void test_sb_json(void)
{
    lmc_sb b;
    lmc_sb_init(&b);
    lmc_sb_json_str(&b, "a\"b\\\n\x01\xff", 7);
    CHECK(!strcmp(b.s, "\"a\\\"b\\\\\\n\\u0001\xEF\xBF\xBD\""));
    lmc_sb_free(&b);
    lmc_sb_init(&b);
    lmc_sb_json_num(&b, 0.1f);
    CHECK(strtod(b.s, NULL) == (double)0.1f);
    lmc_sb_free(&b);
}

static void test_atomic_write(void)
{
    char dir[] = "/tmp/lmc_test_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/f.txt", dir);
    CHECK_OK(lmc_write_file_atomic(path, "one", 3));
    lmc_afile af;
    CHECK_OK(lmc_afile_open(&af, path));
    CHECK_OK(lmc_afile_write(&af, "two-partial", 11));
    lmc_afile_abort(&af); /* a crash before commit: the old file stays */
    char *data;
    size_t n;
    CHECK_OK(lmc_read_file(path, &data, &n));
    CHECK(n == 3 && !memcmp(data, "one", 3));
    free(data);
    CHECK_ERR(lmc_read_file("/nonexistent/x", &data, &n), LMC_EIO, "/nonexistent/x");
    snprintf(path, sizeof path, "%s/new/deeper/g.txt", dir); /* folders are created */
    CHECK_OK(lmc_write_file_atomic(path, "three", 5));
    CHECK_OK(lmc_read_file(path, &data, &n));
    CHECK(n == 5 && !memcmp(data, "three", 5));
    free(data);
    snprintf(path, sizeof path, "%s/f.txt/h.txt", dir); /* a file where a folder must go */
    CHECK_ERR(lmc_write_file_atomic(path, "x", 1), LMC_EIO, "f.txt");
    CHECK_OK(lmc_rm_rf(dir));
    CHECK(!lmc_path_exists(dir));
}

static void test_rng(void)
{
    lmc_rng a, b;
    lmc_rng_seed(&a, 42);
    lmc_rng_seed(&b, 42);
    double s = 0, s2 = 0;
    for (int i = 0; i < 100000; i++) {
        float x = lmc_rng_normal(&a);
        CHECK(x == lmc_rng_normal(&b));
        s += x;
        s2 += x * x;
    }
    CHECK(fabs(s / 100000) < 0.02 && fabs(s2 / 100000 - 1) < 0.02);
}

static void test_parse_numbers(void)
{
    long long v;
    CHECK_OK(lmc_parse_int("12", "--steps", 1, 100, &v));
    CHECK(v == 12);
    CHECK_ERR(lmc_parse_int("12x", "--steps", 1, 100, &v), LMC_EINVAL, "--steps: '12x' is not an integer");
    CHECK_ERR(lmc_parse_int("0", "--steps", 1, 100, &v), LMC_ERANGE, "--steps: 0 is out of range");
    double d;
    CHECK_OK(lmc_parse_count("10B", "--tokens", &d));
    CHECK(d == 1e10);
    CHECK_ERR(lmc_parse_count("10Q", "--tokens", &d), LMC_EINVAL, "--tokens");
}

int main(void)
{
    RUN(test_json_basic);
    RUN(test_json_errors);
    RUN(test_sb_json);
    RUN(test_atomic_write);
    RUN(test_rng);
    RUN(test_parse_numbers);
    return test_summary();
}
