/* test_parsers.c: regressions for defects in the parsers of user bytes
 * (JSON, config.json), each found by fuzzing (tests/fuzz/, docs/reliability.md).
 * Every case here failed before its fix. */
#include "lmc/model.h"
#include "test.h"

static lmc_status config_text(const char *text, lmc_model_config *c)
{
    return lmc_config_from_hf_text(text, strlen(text), "config.json", c);
}

/* 4 * n_embd overflowed an int for n_embd in [2^29, 2^30] (UBSan); the
 * value must be refused by name before anything is derived from it. */
static void test_config_huge_dim(void)
{
    lmc_model_config c;
    CHECK_ERR(config_text("{\"model_type\":\"gpt2\",\"n_embd\":536870912}", &c), LMC_EFORMAT,
              "config.json: field 'n_embd' = 536870912 is out of range");
    CHECK_ERR(config_text("{\"model_type\":\"gpt2\",\"n_layer\":1,\"n_head\":1,\"n_embd\":1073741824}", &c),
              LMC_EFORMAT, "field 'n_embd' = 1073741824");
    CHECK_ERR(config_text("{\"model_type\":\"llama\",\"hidden_size\":70000}", &c), LMC_EFORMAT,
              "field 'hidden_size' = 70000");
    /* the largest accepted width still derives its FFN size */
    CHECK_OK(config_text("{\"model_type\":\"gpt2\",\"n_layer\":1,\"n_head\":1,\"n_embd\":65536,"
                         "\"n_positions\":8,\"vocab_size\":10}", &c));
    CHECK(c.dim == 65536 && c.ffn_dim == 4 * 65536);
}

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

/* "rope_theta": 1e39 became +inf as a float, loaded, and was saved as null,
 * which the reader then refused: a config that loads must save and reload. */
static void test_config_float_range(void)
{
    const char *llama = "{\"model_type\":\"llama\",\"num_hidden_layers\":1,\"num_attention_heads\":1,"
                        "\"hidden_size\":8,\"intermediate_size\":8,\"max_position_embeddings\":8,"
                        "\"vocab_size\":10,\"rope_theta\":%s}";
    char text[512];
    lmc_model_config c, back;
    snprintf(text, sizeof text, llama, "1e39");
    CHECK_ERR(config_text(text, &c), LMC_EFORMAT, "config.json: field 'rope_theta' = 1e+39");
    snprintf(text, sizeof text, llama, "1e999");
    CHECK_ERR(config_text(text, &c), LMC_EFORMAT, "out of range");
    CHECK_ERR(config_text("{\"model_type\":\"gpt2\",\"layer_norm_epsilon\":-1e300}", &c), LMC_EFORMAT,
              "field 'layer_norm_epsilon'");
    snprintf(text, sizeof text, llama, "3.4e38");
    CHECK_OK(config_text(text, &c));
    lmc_sb out;
    lmc_sb_init(&out);
    lmc_config_to_hf_json(&c, &out);
    CHECK_OK(lmc_config_from_hf_text(out.s, out.len, "saved config.json", &back));
    CHECK(back.rope_theta == c.rope_theta && !memcmp(&back, &c, sizeof c));
    lmc_sb_free(&out);
}

int main(void)
{
    RUN(test_config_huge_dim);
    RUN(test_json_string_ends_in_backslash);
    RUN(test_json_number_out_of_range);
    RUN(test_config_float_range);
    return test_summary();
}
