/* test_plan_catalog.c: the chip catalogue (every figure has a source,
 * lookups, user overrides, bad input), fleets (shorthand, FLEET.json,
 * deliveries, bad input naming file/field/value), dates and model shapes. */
#include "backend/peaks.h"
#include "lmc/plan.h"
#include "test.h"

static const char *const figures[] = {"bf16_tflops", "fp32_tflops", "memory_gb", "memory_bw_gbs", "intra_node_gbs",
                                      "network_gbs", "chips_per_node", "matmul_efficiency", "attention_efficiency",
                                      NULL};
static const char *const optional[] = {"tf32_tflops", "fp8_tflops", NULL};

static void test_every_figure_has_a_source(void)
{
    size_t n = 0;
    const char *text = lmc_plan_embedded("share/chips.json", &n);
    CHECK(text && n > 1000);
    lmc_json *j = NULL;
    CHECK_OK(lmc_json_parse(text, n, "chips.json", &j));
    lmc_json *chips = lmc_json_get(j, "chips");
    CHECK(chips && chips->n >= 14);
    for (lmc_json *c = chips ? chips->child : NULL; c; c = c->next) {
        const char *name = lmc_json_get(c, "name")->str;
        lmc_json *src = lmc_json_get(c, "sources");
        CHECK_MSG(src && src->type == LMC_JSON_OBJ, "%s: no sources", name);
        for (int i = 0; figures[i] && src; i++) {
            lmc_json *s = lmc_json_get(src, figures[i]);
            CHECK_MSG(lmc_json_get(c, figures[i]) && s && s->type == LMC_JSON_STR && s->slen > 8,
                      "%s: %s has no figure or no source", name, figures[i]);
        }
        for (int i = 0; optional[i] && src; i++) { /* where a chip has the figure, it has a source */
            lmc_json *s = lmc_json_get(src, optional[i]);
            CHECK_MSG(!lmc_json_get(c, optional[i]) || (s && s->type == LMC_JSON_STR && s->slen > 8),
                      "%s: %s has no source", name, optional[i]);
        }
    }
    lmc_json_free(j);
}

static void test_catalog_lookup(void)
{
    lmc_plan_catalog cat;
    CHECK_OK(lmc_plan_catalog_load_default(&cat));
    static const char *const want[] = {"A100", "H100", "H800", "H20", "H200", "B200", "MI300X", "910B1",
                                       "910B2", "910B3", "910B4", "910C", "cpu", NULL};
    for (int i = 0; want[i]; i++)
        CHECK_MSG(lmc_plan_catalog_find(&cat, want[i]) != NULL, "missing %s", want[i]);
    const lmc_plan_chip *h = lmc_plan_catalog_find(&cat, "nvidia h100");
    CHECK(h && !strcmp(h->name, "H100") && h->bf16_tflops == 989 && h->memory_gb == 80);
    CHECK(lmc_plan_catalog_find(&cat, "H100-SXM5") == h);
    CHECK(lmc_plan_catalog_find(&cat, "Ascend 910B") == lmc_plan_catalog_find(&cat, "910B2"));
    CHECK(lmc_plan_catalog_find(&cat, "ascend910b4")->memory_gb == 32);
    CHECK(lmc_plan_catalog_find(&cat, "AMD Instinct MI300X")->bf16_tflops == 1307.4);
    CHECK(lmc_plan_catalog_find(&cat, "cpu")->measure == 1);
    CHECK(lmc_plan_catalog_find(&cat, "H1000") == NULL && lmc_plan_catalog_find(&cat, "") == NULL);
    const lmc_plan_chip *c = NULL;
    CHECK_ERR(lmc_plan_catalog_get(&cat, "H1000", "--fleet 8xH1000", &c), LMC_EINVAL,
              "--fleet 8xH1000: unknown chip 'H1000' (known: A100");
    lmc_plan_catalog_free(&cat);
}

/* Peaks per precision (dense) against the vendors' datasheets, as cited in
 * share/chips.json; each precision no slower than the wider one before it;
 * fp32 training plans with the plain fp32 peak, as lmc's CUDA backend runs
 * fp32 matmuls without TF32. */
static void test_catalog_precisions(void)
{
    lmc_plan_catalog cat;
    CHECK_OK(lmc_plan_catalog_load_default(&cat));
    static const struct {
        const char *name;
        double fp32, tf32, bf16, fp8;
    } want[] = {{"H100", 67, 494, 989, 1979},  {"A100", 19.5, 156, 312, 0},          {"H200-NVL", 60, 418, 835, 1671},
                {"B200", 75, 1125, 2250, 4500}, {"MI300X", 163.4, 653.7, 1307.4, 2614.9}, {"910B2", 94, 0, 376, 0}};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const lmc_plan_chip *c = lmc_plan_catalog_find(&cat, want[i].name);
        CHECK_MSG(c && c->fp32_tflops == want[i].fp32 && c->tf32_tflops == want[i].tf32 &&
                      c->bf16_tflops == want[i].bf16 && c->fp8_tflops == want[i].fp8,
                  "%s: fp32 %g tf32 %g bf16 %g fp8 %g", want[i].name, c ? c->fp32_tflops : -1,
                  c ? c->tf32_tflops : -1, c ? c->bf16_tflops : -1, c ? c->fp8_tflops : -1);
    }
    for (int i = 0; i < cat.n; i++) {
        const lmc_plan_chip *c = &cat.chips[i];
        double tf = c->tf32_tflops > 0 ? c->tf32_tflops : c->fp32_tflops;
        CHECK_MSG(c->fp32_tflops <= tf && tf <= c->bf16_tflops && (!c->fp8_tflops || c->bf16_tflops <= c->fp8_tflops),
                  "%s: peaks out of order", c->name);
    }
    const lmc_plan_chip *h = lmc_plan_catalog_find(&cat, "NVIDIA H100 80GB HBM3"); /* the name CUDA reports */
    CHECK(h && lmc_plan_peak(h, 0) == 67e12 && lmc_plan_peak(h, 1) == 989e12);
    /* the backends' MFU peaks, by the names devices report (backend/peaks.h) */
    CHECK(lmc_chip_peak_named("NVIDIA H100 80GB HBM3", LMC_F32) == 67e12);
    CHECK(lmc_chip_peak_named("Ascend910B2", LMC_BF16) == 376e12);
    CHECK(lmc_chip_peak_named("Ascend910B2", LMC_F32) == 94e12);
    CHECK(lmc_chip_peak_named("NVIDIA Q9000", LMC_BF16) == 0);
    lmc_plan_catalog_free(&cat);
}

static void test_catalog_user_chips(void)
{
    lmc_plan_catalog cat;
    CHECK_OK(lmc_plan_catalog_load_default(&cat));
    int n = cat.n;
    const char *mine = "{\"chips\": [{\"name\": \"MyNPU\", \"bf16_tflops\": 500, \"memory_gb\": 96, "
                       "\"memory_bw_gbs\": 3000, \"intra_node_gbs\": 200, \"network_gbs\": 50, "
                       "\"chips_per_node\": 16},"
                       "{\"name\": \"h100\", \"bf16_tflops\": 900, \"memory_gb\": 80, \"memory_bw_gbs\": 3350, "
                       "\"intra_node_gbs\": 450, \"network_gbs\": 50, \"chips_per_node\": 8}]}";
    CHECK_OK(lmc_plan_catalog_add_json(&cat, mine, strlen(mine), "my.json"));
    CHECK(cat.n == n + 1);
    const lmc_plan_chip *m = lmc_plan_catalog_find(&cat, "mynpu");
    CHECK(m && m->chips_per_node == 16 && m->fp32_tflops == 250 && m->matmul_eff > 0 && m->gemm_m0 > 0);
    CHECK(lmc_plan_catalog_find(&cat, "H100")->bf16_tflops == 900); /* replaced */
    lmc_plan_catalog_free(&cat);
}

static void test_catalog_bad_input(void)
{
    lmc_plan_catalog cat;
    CHECK_OK(lmc_plan_catalog_load_default(&cat));
    const char *bad[][2] = {
        {"{\"chips\": [", "my.json: malformed JSON"},
        {"[1]", "my.json: expected an object"},
        {"{\"chip\": []}", "my.json: unknown top-level field 'chip'"},
        {"{\"chips\": [{\"bf16_tflops\": 1}]}", "my.json: chips[0]: missing field 'name'"},
        {"{\"chips\": [{\"name\": \"X\", \"bf16_tflops\": -5}]}",
         "my.json: chips[0] (X): field 'bf16_tflops' = -5 must be in (0"},
        {"{\"chips\": [{\"name\": \"X\", \"bf16_tflops\": \"fast\"}]}",
         "my.json: chips[0] (X): field 'bf16_tflops' must be a number"},
        {"{\"chips\": [{\"name\": \"X\", \"bf16_tflops\": 5}]}", "my.json: chips[0] (X): missing field 'memory_gb'"},
        {"{\"chips\": [{\"name\": \"X\", \"bf16_tflops\": 5, \"tf32_tflops\": -2}]}",
         "my.json: chips[0] (X): field 'tf32_tflops' = -2 must be in (0"},
        {"{\"chips\": [{\"name\": \"X\", \"bf16_tflops\": 5, \"fp8_tflops\": \"fast\"}]}",
         "my.json: chips[0] (X): field 'fp8_tflops' must be a number"},
        {"{\"chips\": [{\"name\": \"X\", \"bf16_tflop\": 5}]}", "my.json: chips[0] (X): unknown field 'bf16_tflop'"},
        {"{\"chips\": [{\"name\": \"X\", \"bf16_tflops\": 5, \"memory_gb\": 8, \"memory_bw_gbs\": 1, "
         "\"intra_node_gbs\": 1, \"network_gbs\": 1, \"chips_per_node\": 2.5}]}",
         "chips[0] (X): field 'chips_per_node' = 2.5 must be a whole number"},
        {"{\"chips\": [{\"name\": \"X\", \"bf16_tflops\": 5, \"memory_gb\": 8, \"memory_bw_gbs\": 1, "
         "\"intra_node_gbs\": 1, \"network_gbs\": 1, \"chips_per_node\": 2, \"matmul_efficiency\": 1.5}]}",
         "field 'matmul_efficiency' = 1.5 must be in (0, 1]"},
        {"{\"chips\": [{\"name\": \"X\", \"bf16_tflops\": 5, \"memory_gb\": 8, \"memory_bw_gbs\": 1, "
         "\"intra_node_gbs\": 1, \"network_gbs\": 1, \"chips_per_node\": 2, \"intra_latency_us\": -1}]}",
         "my.json: chips[0] (X): field 'intra_latency_us' = -1 must be in (0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        lmc_status s = lmc_plan_catalog_add_json(&cat, bad[i][0], strlen(bad[i][0]), "my.json");
        CHECK_MSG(s != LMC_OK && strstr(lmc_errmsg(), bad[i][1]), "case %zu: %s", i, lmc_errmsg());
    }
    CHECK_ERR(lmc_plan_catalog_add_file(&cat, "/nonexistent/chips.json"), LMC_EIO, "/nonexistent/chips.json");
    lmc_plan_catalog_free(&cat);
}

static void test_dates(void)
{
    int d = 0;
    CHECK_OK(lmc_plan_parse_date("1970-01-01", "x", &d));
    CHECK(d == 0);
    CHECK_OK(lmc_plan_parse_date("2024-02-29", "x", &d));
    char buf[16];
    lmc_plan_format_date(d, buf);
    CHECK(!strcmp(buf, "2024-02-29"));
    CHECK_OK(lmc_plan_parse_date("2025-03-01", "x", &d));
    lmc_plan_format_date(d - 1, buf);
    CHECK(!strcmp(buf, "2025-02-28"));
    CHECK_OK(lmc_plan_parse_date("2000-01-01", "x", &d));
    CHECK(d == 10957);
    CHECK_ERR(lmc_plan_parse_date("2025-02-29", "--start", &d), LMC_EINVAL, "--start: '2025-02-29' is not a valid");
    CHECK_ERR(lmc_plan_parse_date("2025-13-01", "a", &d), LMC_EINVAL, "not a valid date");
    CHECK_ERR(lmc_plan_parse_date("next week", "a", &d), LMC_EINVAL, "a: 'next week' is not a date (use YYYY-MM-DD)");
    CHECK_ERR(lmc_plan_parse_date("2025-1-01", "a", &d), LMC_EINVAL, "is not a date");
    CHECK(lmc_plan_today() > 19000);
}

static void test_fleets(void)
{
    lmc_plan_catalog cat;
    CHECK_OK(lmc_plan_catalog_load_default(&cat));
    lmc_plan_fleet f;
    CHECK_OK(lmc_plan_fleet_load(&cat, "8xH100", 0, &f));
    CHECK(f.n == 1 && f.pools[0].count == 8 && !strcmp(f.pools[0].chip.name, "H100") &&
          f.pools[0].arrives == LMC_PLAN_NOW && f.pools[0].chips_per_node == 8);
    lmc_plan_fleet_free(&f);
    CHECK_OK(lmc_plan_fleet_load(&cat, "30kx910B,16XMI300X", 0, &f));
    CHECK(f.n == 2 && f.pools[0].count == 30000 && !strcmp(f.pools[0].chip.name, "910B2") && f.pools[1].count == 16);
    lmc_plan_fleet_free(&f);
    CHECK_ERR(lmc_plan_fleet_load(&cat, "8xH1000", 0, &f), LMC_EINVAL, "unknown chip 'H1000'");
    CHECK_ERR(lmc_plan_fleet_load(&cat, "H100", 0, &f), LMC_EINVAL, "'H100' is not NxCHIP");
    CHECK_ERR(lmc_plan_fleet_load(&cat, "0xH100", 0, &f), LMC_ERANGE, "count = 0 must be a whole number");
    CHECK_ERR(lmc_plan_fleet_load(&cat, "1.5xH100", 0, &f), LMC_ERANGE, "count = 1.5");

    int start = 0;
    CHECK_OK(lmc_plan_parse_date("2026-01-01", "x", &start));
    const char *ok = "{\"pools\": [{\"chip\": \"910B\", \"count\": 30000}, {\"chip\": \"ascend 910b\", \"count\": "
                     "70000, \"arrives\": \"2026-06-01\", \"name\": \"second half\", \"chips_per_node\": 16}]}";
    CHECK_OK(lmc_plan_fleet_parse_json(&cat, ok, strlen(ok), "fleet.json", start, &f));
    CHECK(f.n == 2 && f.pools[1].arrives == start + 151 && f.pools[1].chips_per_node == 16 &&
          !strcmp(f.pools[1].name, "second half"));
    lmc_plan_fleet_free(&f);
    const char *bad[][2] = {
        {"{\"pools\": [{\"chip\": \"H1000\", \"count\": 8}]}", "fleet.json: pools[0].chip: unknown chip 'H1000'"},
        {"{\"pools\": [{\"chip\": \"H100\", \"count\": 8, \"arrives\": \"2025-12-31\"}]}",
         "fleet.json: pools[0].arrives = 2025-12-31 is before the start date 2026-01-01"},
        {"{\"pools\": [{\"chip\": \"H100\", \"count\": 8, \"arrives\": \"soon\"}]}",
         "fleet.json: pools[0].arrives: 'soon' is not a date"},
        {"{\"pools\": [{\"chip\": \"H100\"}]}", "fleet.json: pools[0]: field 'count' must be a number"},
        {"{\"pools\": [{\"chip\": \"H100\", \"count\": -8}]}", "fleet.json: pools[0]: count = -8"},
        {"{\"pools\": [{\"chip\": \"H100\", \"count\": 8, \"colour\": 1}]}",
         "fleet.json: pools[0]: unknown field 'colour'"},
        {"{\"pools\": [{\"chip\": \"H100\", \"count\": 8, \"chips_per_node\": 0}]}",
         "fleet.json: pools[0]: chips_per_node = 0"},
        {"{\"pools\": []}", "fleet.json: 'pools' is empty"},
        {"{\"pool\": []}", "fleet.json: unknown top-level field 'pool'"},
        {"{\"pools\": [{\"chip\": \"H100\", \"count\": 8}", "fleet.json: malformed JSON"},
        {"[{\"count\": 8}]", "fleet.json: pools[0]: missing field 'chip'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        lmc_status s = lmc_plan_fleet_parse_json(&cat, bad[i][0], strlen(bad[i][0]), "fleet.json", start, &f);
        CHECK_MSG(s != LMC_OK && strstr(lmc_errmsg(), bad[i][1]), "case %zu: %s", i, lmc_errmsg());
    }
    CHECK_ERR(lmc_plan_fleet_load(&cat, "/nonexistent/fleet.json", 0, &f), LMC_EIO, "/nonexistent/fleet.json");
    lmc_plan_catalog_free(&cat);
}

static void test_models(void)
{
    lmc_model_config c;
    CHECK_OK(lmc_plan_model_load("d12", &c));
    CHECK(c.n_layer == 12 && c.dim == 768);
    CHECK_OK(lmc_plan_model_load("llama3-405b", &c));
    CHECK(c.n_layer == 126 && c.n_kv_head == 8 && fabs(lmc_config_num_params(&c) / 405.9e9 - 1) < 0.01);
    CHECK_OK(lmc_plan_model_load("gpt3-175b", &c));
    CHECK(fabs(lmc_config_num_params(&c) / 174.6e9 - 1) < 0.01);
    CHECK_OK(lmc_plan_model_load("pangu-ultra-135b", &c));
    CHECK(c.n_layer == 94 && fabs(lmc_config_num_params(&c) / 135e9 - 1) < 0.02);
    char name[64];
    int n = 0;
    while (lmc_plan_embedded_model(n, name, sizeof name))
        n++;
    CHECK(n >= 3);
    CHECK_ERR(lmc_plan_model_load("gpt5", &c), LMC_EINVAL, "--model: unknown model 'gpt5' (known: d6");
    CHECK_ERR(lmc_plan_model_load("/nonexistent/config.json", &c), LMC_EIO, "/nonexistent/config.json");
}

int main(void)
{
    RUN(test_every_figure_has_a_source);
    RUN(test_catalog_lookup);
    RUN(test_catalog_precisions);
    RUN(test_catalog_user_chips);
    RUN(test_catalog_bad_input);
    RUN(test_dates);
    RUN(test_fleets);
    RUN(test_models);
    return test_summary();
}
