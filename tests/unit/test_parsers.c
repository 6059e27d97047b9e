/* test_parsers.c: regressions for defects in the parsers of user bytes
 * (JSON, config.json, a checkpoint's state.json and optimizer files,
 * lmc plan --fleet), each found by fuzzing (tests/fuzz/,
 * docs/reliability.md); every such case here failed before its fix. Also: the in-memory entry points that the fuzz
 * targets call read as the file readers do. */
#include "lmc/data.h"
#include "lmc/model.h"
#include "lmc/plan.h"
#include "lmc/safetensors.h"
#include "test.h"
#include "train/checkpoint.h"

#include <stdlib.h>
#include <unistd.h>

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

static lmc_status state_text(const char *fields, lmc_ckpt_state *st)
{
    char text[512];
    snprintf(text, sizeof text, "{\"step\": 7, \"consumed_sequences\": 9, \"seq\": 4, \"adam_t\": 7, %s}", fields);
    return lmc_ckpt_state_parse(text, strlen(text), "ck/state.json", st);
}

/* state.json: a step beyond an int was narrowed into another step, a seed
 * that is not a 64-bit decimal number was read as part of it (or 0), and a
 * loss beyond a float became inf, saved as null, which no reader takes. */
static void test_ckpt_state_ranges(void)
{
    lmc_ckpt_state st, back;
    CHECK_ERR(state_text("\"seed\": \"1\", \"world_size\": 2, \"step\": 2147483648", &st), LMC_EFORMAT,
              "ck/state.json: field 'step' = 2147483648 is out of range");
    CHECK_ERR(state_text("\"seed\": \"1\", \"seq\": 1214748364720", &st), LMC_EFORMAT, "field 'seq'");
    CHECK_ERR(state_text("\"seed\": \"1\", \"world_size\": 0", &st), LMC_EFORMAT, "field 'world_size' = 0");
    CHECK_ERR(state_text("\"seed\": \"1?37\"", &st), LMC_EFORMAT, "field 'seed' = '1?37'");
    CHECK_ERR(state_text("\"seed\": \"18446744073709551616\"", &st), LMC_EFORMAT, "below 2^64");
    CHECK_ERR(state_text("\"seed\": \"\"", &st), LMC_EFORMAT, "field 'seed'");
    CHECK_ERR(state_text("\"seed\": \"1\", \"loss\": 1e39", &st), LMC_EFORMAT, "field 'loss' = 1e+39");
    CHECK_ERR(lmc_ckpt_state_parse("{}", 2, "ck/state.json", &st), LMC_EFORMAT, "field 'step' is missing");
    CHECK_OK(state_text("\"seed\": \"18446744073709551615\", \"loss\": 3.4e38, \"shuffle\": false", &st));
    CHECK(st.step == 7 && st.seed == 18446744073709551615ull && st.world == 1 && !st.shuffle);
    lmc_sb o;
    lmc_sb_init(&o);
    lmc_ckpt_state_json(&st, &o);
    CHECK_OK(lmc_ckpt_state_parse(o.s, o.len, "saved", &back));
    CHECK(back.step == st.step && back.consumed == st.consumed && back.seed == st.seed && back.seq == st.seq &&
          back.world == st.world && back.adam_t == st.adam_t && back.shuffle == st.shuffle && back.loss == st.loss);
    lmc_sb_free(&o);
}

/* Two optimizer files holding the same range added up to the whole state,
 * so the elements neither held were left unread and the load succeeded. */
static void test_ckpt_optim_overlap(void)
{
    float m[20], v[20];
    for (int i = 0; i < 20; i++)
        m[i] = (float)i, v[i] = 1;
    const char *dir = test_tmpdir("parsers");
    CHECK(dir != NULL);
    CHECK_OK(lmc_ckpt_write_optim_shard(dir, 0, 2, 20, 0, 10, m, v));
    CHECK_OK(lmc_ckpt_write_optim_shard(dir, 1, 2, 20, 0, 10, m, v));
    CHECK_ERR(lmc_ckpt_load_optim(dir, 20, 0, 20, m, v), LMC_EFORMAT, "overlap [0, 10) of another optimizer file");
    CHECK_OK(lmc_ckpt_write_optim_shard(dir, 1, 2, 20, 10, 20, m + 10, v + 10));
    float m2[20], v2[20];
    CHECK_OK(lmc_ckpt_load_optim(dir, 20, 0, 20, m2, v2));
    CHECK(!memcmp(m, m2, sizeof m) && !memcmp(v, v2, sizeof v));
    lmc_rm_rf(dir);
}

/* --fleet "," gave a fleet of no pools (strtok finds no item), and a
 * fleet of more than 16 pools was refused without naming its source. */
static void test_fleet_without_chips(void)
{
    lmc_plan_catalog cat = {0};
    lmc_plan_fleet f;
    CHECK_OK(lmc_plan_catalog_load_default(&cat));
    CHECK_ERR(lmc_plan_fleet_load(&cat, ",", 0, &f), LMC_EINVAL, "--fleet: ',' names no chips");
    CHECK(f.n == 0 && f.pools == NULL);
    char many[256] = "1xH100", json[1024] = "[";
    for (int i = 0; i < 16; i++)
        strcat(many, ",1xH100");
    for (int i = 0; i < 17; i++)
        strcat(json, i ? ", {\"chip\": \"H100\", \"count\": 1}" : "{\"chip\": \"H100\", \"count\": 1}");
    strcat(json, "]");
    CHECK_ERR(lmc_plan_fleet_load(&cat, many, 0, &f), LMC_ERANGE, "--fleet 1xH100,1xH100");
    CHECK_ERR(lmc_plan_fleet_parse_json(&cat, json, strlen(json), "f.json", 0, &f), LMC_ERANGE,
              "f.json: more than 16 pools");
    CHECK_OK(lmc_plan_fleet_load(&cat, ",8xH100,", 0, &f));
    CHECK(f.n == 1 && f.pools[0].count == 8);
    lmc_plan_fleet_free(&f);
    lmc_plan_catalog_free(&cat);
}

/* lmc_st_open_mem and lmc_tokens_open_mem (what the fuzz targets call) read
 * files' bytes as lmc_st_open and lmc_tokens_open read the files. */
static void test_open_mem(void)
{
    const char *dir = test_tmpdir("parsers");
    CHECK(dir != NULL);
    float w[6] = {1, 2, 3, 4, 5, 6}, a[6], b[6];
    lmc_st_entry e = {"w", "F32", 2, {2, 3}, w};
    char *bytes;
    size_t len;
    lmc_st_file f, g;
    CHECK_OK(lmc_st_write(test_path("w.safetensors"), &e, 1, NULL));
    CHECK_OK(lmc_read_file(test_path("w.safetensors"), &bytes, &len));
    CHECK_OK(lmc_st_open(&f, test_path("w.safetensors")));
    CHECK_OK(lmc_st_open_mem(&g, bytes, len, "mem.safetensors"));
    CHECK(f.n == 1 && g.n == 1 && f.data_len == g.data_len);
    CHECK_OK(lmc_st_read_f32(&f, &f.t[0], a));
    CHECK_OK(lmc_st_read_f32(&g, &g.t[0], b));
    CHECK(!memcmp(a, w, sizeof w) && !memcmp(b, w, sizeof w));
    lmc_st_close(&f);
    lmc_st_close(&g);
    CHECK_ERR(lmc_st_open_mem(&g, bytes, len - 1, "mem.safetensors"), LMC_EFORMAT, "mem.safetensors");
    free(bytes);
    int toks[5] = {1, 70000, 3, 4, 5}, got[5];
    CHECK_OK(lmc_shard_write(test_path("t.bin"), toks, 5));
    CHECK_OK(lmc_read_file(test_path("t.bin"), &bytes, &len));
    lmc_mmap m[2] = {{(const uint8_t *)bytes, len}, {(const uint8_t *)bytes, len}};
    const char *names[2] = {"a.bin", "b.bin"};
    lmc_tokens ds;
    CHECK_OK(lmc_tokens_open_mem(&ds, 2, m, names));
    CHECK(ds.total == 10);
    lmc_tokens_read(&ds, 3, 5, got);
    CHECK(got[0] == 4 && got[1] == 5 && got[2] == 1 && got[3] == 70000 && got[4] == 3);
    lmc_tokens_close(&ds);
    m[1].size = len - 1;
    CHECK_ERR(lmc_tokens_open_mem(&ds, 2, m, names), LMC_EFORMAT, "b.bin: header says 5 tokens");
    free(bytes);
    lmc_rm_rf(dir);
}

/* lmc plan --calibrate-log LOG --save-calibration FILE wrote a file that
 * --calibration FILE refused: a log of 0.01 ms steps against lmc's best
 * case of 290 ms gave an efficiency of 29000, beyond the reader's [1e-4,
 * 1e4] (found by fuzz_calib). The save is refused, naming the file, field
 * and value, and writes nothing; what saves reads back to the same values. */
static void test_calib_save_reads_back(void)
{
    const char *dir = test_tmpdir("calib");
    CHECK(dir != NULL);
    const char *fast = "{\"step\": 1, \"ms\": 0.01}\n{\"step\": 2, \"ms\": 0.01}\n";
    lmc_plan_log_stats st;
    lmc_plan_calib c = {.chip = "cpu", .model = "d6", .params = 7e6}, back;
    CHECK_OK(lmc_plan_log_parse(fast, strlen(fast), "run.jsonl", 0, &st));
    lmc_plan_calib_fit(&st, 0.29, 0, &c);
    CHECK_ERR(lmc_plan_calib_save(&c, test_path("cal.json")), LMC_ERANGE,
              "cal.json: field 'efficiency.expected' = 29000 is out of range [0.0001, 10000]");
    CHECK(access(test_path("cal.json"), F_OK) != 0);
    const char *fine = "{\"step\": 1, \"ms\": 300}\n{\"step\": 2, \"ms\": 310.5}\n";
    CHECK_OK(lmc_plan_log_parse(fine, strlen(fine), "run.jsonl", 0, &st));
    lmc_plan_calib_fit(&st, 0.29, 0, &c);
    CHECK_OK(lmc_plan_calib_save(&c, test_path("cal.json")));
    CHECK_OK(lmc_plan_calib_load(test_path("cal.json"), &back));
    CHECK(back.eff.expected == c.eff.expected && back.eff.low == c.eff.low && back.eff.high == c.eff.high);
    CHECK(back.measured_ms == c.measured_ms && back.predicted_ms == c.predicted_ms && back.steps == 2);
    lmc_rm_rf(dir);
}

/* lmc plan --calibrate-log: a micro-batch count beyond an int was
 * converted to one (UBSan: float-cast-overflow), and step times near
 * DBL_MAX summed to an infinite mean (found writing fuzz_calib; its
 * properties fail on both); an empty pp_bubble before any other added 0 to
 * a null pointer (UBSan; found by fuzz_calib). */
static void test_calib_log_ranges(void)
{
    lmc_plan_log_stats st;
    const char *mb = "{\"step\": 1, \"ms\": 5, \"mb\": [1e10]}";
    const char *huge = "{\"step\": 1, \"ms\": 1e308}\n{\"step\": 2, \"ms\": 1e308}";
    const char *edge = "{\"step\": 1, \"ms\": 1e12, \"mb\": [2147483647]}\n{\"step\": 2, \"ms\": 1e12}";
    CHECK_ERR(lmc_plan_log_parse(mb, strlen(mb), "run.jsonl", 0, &st), LMC_EFORMAT,
              "run.jsonl:1: mb[0] = 1e+10 is out of range [0, 2147483647]");
    CHECK_ERR(lmc_plan_log_parse(huge, strlen(huge), "run.jsonl", 0, &st), LMC_EFORMAT,
              "run.jsonl:1: field 'ms' must be a positive number of milliseconds, at most 1e12");
    CHECK_OK(lmc_plan_log_parse(edge, strlen(edge), "run.jsonl", 0, &st));
    CHECK(st.dp_mb == 2147483647 && st.mean_ms == 1e12 && st.median_ms == 1e12);
    /* an empty pp_bubble first: a null buffer plus 0 (UBSan, fuzz_calib) */
    const char *empty = "{\"step\": 1, \"ms\": 5, \"pp_bubble\": []}\n{\"step\": 2, \"ms\": 5, \"pp_bubble\": [0.5]}";
    CHECK_OK(lmc_plan_log_parse(empty, strlen(empty), "run.jsonl", 0, &st));
    CHECK(st.stages == 1 && st.bubble[0] == 0.5);
}

int main(void)
{
    RUN(test_config_huge_dim);
    RUN(test_json_string_ends_in_backslash);
    RUN(test_json_number_out_of_range);
    RUN(test_config_float_range);
    RUN(test_ckpt_state_ranges);
    RUN(test_ckpt_optim_overlap);
    RUN(test_fleet_without_chips);
    RUN(test_open_mem);
    RUN(test_calib_save_reads_back);
    RUN(test_calib_log_ranges);
    return test_summary();
}
