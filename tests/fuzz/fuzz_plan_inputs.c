/* fuzz_plan_inputs.c: libFuzzer target for the planner's user inputs:
 * a chips file (lmc plan --chips FILE: lmc_plan_catalog_add_json,
 * src/plan/catalog.c) and a fleet (lmc plan --fleet: FLEET.json through
 * lmc_plan_fleet_parse_json, or NxCHIP through lmc_plan_fleet_load,
 * src/plan/fleet.c), both against the built-in catalogue. The first byte
 * picks (its value mod 3) what the rest is: 0 a chips file, 1 FLEET.json,
 * 2 a NxCHIP list; its higher bits move the start date by months.
 * Properties:
 *  - a refusal names the file or the --fleet value;
 *  - chips that load have a name, figures in their documented ranges (the
 *    optional tf32 and fp8 peaks 0 or in range), and are found by name;
 *  - a fleet that loads has 1 to LMC_PLAN_MAX_POOLS pools of catalogue
 *    chips, each with a whole count in [1, 1e8], chips_per_node in
 *    [1, 65536], an arrival at the start or on a date from the start on,
 *    and a slip of [0, 3650] days only for a dated delivery.
 * Seeds: share/chips.json (built in), fleets as docs/planner.md and
 * tests/cli/test_plan.sh write them, NxCHIP lists, and past findings. */
#include "fuzz_common.h"
#include "lmc/plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static lmc_plan_catalog cat;
static int start_base;

static void seeds(void)
{
    size_t n = 0;
    const char *chips = lmc_plan_embedded("share/chips.json", &n);
    fuzz_seed("seed-builtin-chips", 0, chips, n);
    static const char lab[] = "{\"chips\": [{\"name\": \"LabChip\", \"vendor\": \"Lab\", \"aliases\": [\"LC-1\"], "
                              "\"bf16_tflops\": 600, \"fp32_tflops\": 150, \"tf32_tflops\": 300, "
                              "\"fp8_tflops\": 1200, \"memory_gb\": 96, \"memory_bw_gbs\": 2500, "
                              "\"intra_node_gbs\": 300, \"network_gbs\": 50, \"chips_per_node\": 8, "
                              "\"matmul_efficiency\": 0.6, \"latency_us\": 12, \"sources\": {}, \"notes\": \"x\"}]}";
    fuzz_seed("seed-chips-lab", 0, lab, sizeof lab - 1);
    static const char fleet[] = "{\"pools\": [\n  {\"chip\": \"910B\", \"count\": 3000, \"name\": \"first lot\"},\n"
                                "  {\"chip\": \"Ascend 910B\", \"count\": 4000, \"arrives\": \"2030-03-01\", "
                                "\"slip_days\": 30},\n  {\"chip\": \"H20\", \"count\": 3000, \"arrives\": "
                                "\"2030-04-01\", \"chips_per_node\": 8}\n]}";
    fuzz_seed("seed-fleet-deliveries", 1, fleet, sizeof fleet - 1);
    static const char arr[] = "[{\"chip\": \"H100\", \"count\": 8, \"arrives\": null}]";
    fuzz_seed("seed-fleet-array", 1, arr, sizeof arr - 1);
    fuzz_seed("seed-shorthand", 2, "8xH100,16x910B", 14);
    fuzz_seed("seed-shorthand-count", 2, "2kXA100", 7);
    /* past findings (tests/unit/test_parsers.c): no pools; 17 pools refused without naming the value */
    fuzz_seed("regress-fleet-comma", 2, ",", 1);
    static const char many[] = "1xH100,1xH100,1xH100,1xH100,1xH100,1xH100,1xH100,1xH100,1xH100,1xH100,1xH100,"
                               "1xH100,1xH100,1xH100,1xH100,1xH100,1xH100";
    fuzz_seed("regress-fleet-17-pools", 2, many, sizeof many - 1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (lmc_plan_catalog_load_default(&cat) || lmc_plan_parse_date("2030-01-01", "start", &start_base))
        abort();
    if (fuzz_seeding())
        seeds();
    return 0;
}

static void check_chip(const lmc_plan_catalog *c, const lmc_plan_chip *x)
{
    FUZZ_ASSERT(x->name[0] && strlen(x->name) < LMC_PLAN_NAME && x->n_aliases >= 0);
    FUZZ_ASSERT(x->n_aliases <= LMC_PLAN_MAX_ALIASES && lmc_plan_catalog_find(c, x->name) != NULL);
    FUZZ_ASSERT(x->bf16_tflops > 0 && x->bf16_tflops <= 1e6 && x->fp32_tflops > 0 && x->memory_gb > 0);
    FUZZ_ASSERT(x->tf32_tflops >= 0 && x->tf32_tflops <= 1e6 && x->fp8_tflops >= 0 && x->fp8_tflops <= 1e6);
    FUZZ_ASSERT(x->memory_bw_gbs > 0 && x->intra_node_gbs > 0 && x->network_gbs > 0);
    FUZZ_ASSERT(x->chips_per_node >= 1 && x->chips_per_node <= 65536);
    FUZZ_ASSERT(x->matmul_eff > 0 && x->matmul_eff <= 1 && x->attn_eff > 0 && x->attn_eff <= 1);
    FUZZ_ASSERT(x->matmul_eff_fp32 > 0 && x->matmul_eff_fp32 <= 1 && x->attn_eff_fp32 > 0 && x->attn_eff_fp32 <= 1);
    FUZZ_ASSERT(x->latency_us > 0 && x->kernel_us > 0 && x->gemm_m0 > 0 && x->sfu_gops >= 0);
}

/* On a copy of the built-in catalogue, as lmc plan adds --chips to it. */
static void check_chips(const char *s, size_t n)
{
    lmc_plan_catalog c = {malloc((size_t)cat.n * sizeof *cat.chips), cat.n, cat.n};
    FUZZ_ASSERT(c.chips);
    memcpy(c.chips, cat.chips, (size_t)cat.n * sizeof *cat.chips);
    if (lmc_plan_catalog_add_json(&c, s, n, "fuzz/chips.json") == LMC_OK)
        for (int i = 0; i < c.n; i++)
            check_chip(&c, &c.chips[i]);
    else
        FUZZ_ASSERT(strstr(lmc_errmsg(), "fuzz/chips.json") != NULL);
    lmc_plan_catalog_free(&c);
}

static void check_fleet(const lmc_plan_fleet *f, int start)
{
    int last;
    FUZZ_ASSERT(f->n >= 1 && f->n <= LMC_PLAN_MAX_POOLS && lmc_plan_parse_date("9999-12-31", "end", &last) == 0);
    for (int i = 0; i < f->n; i++) {
        const lmc_plan_pool *p = &f->pools[i];
        FUZZ_ASSERT(lmc_plan_catalog_find(&cat, p->chip.name) != NULL);
        FUZZ_ASSERT(p->count >= 1 && p->count <= 100000000 && p->chips_per_node >= 1 && p->chips_per_node <= 65536);
        FUZZ_ASSERT(p->arrives == LMC_PLAN_NOW || (p->arrives >= start && p->arrives <= last));
        FUZZ_ASSERT(p->slip_days >= 0 && p->slip_days <= 3650 && (p->slip_days == 0 || p->arrives != LMC_PLAN_NOW));
    }
}

static void fleet_json(const char *s, size_t n, int start)
{
    lmc_plan_fleet f;
    if (lmc_plan_fleet_parse_json(&cat, s, n, "fuzz/fleet.json", start, &f) != LMC_OK) {
        FUZZ_ASSERT(strstr(lmc_errmsg(), "fuzz/fleet.json") != NULL && f.pools == NULL);
        return;
    }
    check_fleet(&f, start);
    lmc_plan_fleet_free(&f);
}

/* NxCHIP lists only: a value that looks like a path is read as a file. */
static void fleet_shorthand(const char *s, size_t n, int start)
{
    if (n == 0 || n > 200 || memchr(s, 0, n) || memchr(s, '/', n))
        return;
    char spec[201];
    memcpy(spec, s, n);
    spec[n] = 0;
    if (strstr(spec, ".json") || lmc_path_exists(spec))
        return;
    lmc_plan_fleet f;
    if (lmc_plan_fleet_load(&cat, spec, start, &f) != LMC_OK) {
        FUZZ_ASSERT(strstr(lmc_errmsg(), "--fleet") != NULL && f.pools == NULL);
        return;
    }
    check_fleet(&f, start);
    for (int i = 0; i < f.n; i++)
        FUZZ_ASSERT(f.pools[i].arrives == LMC_PLAN_NOW && f.pools[i].chips_per_node == f.pools[i].chip.chips_per_node);
    lmc_plan_fleet_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    int start = start_base + 30 * (data[0] / 3 % 64);
    switch (data[0] % 3) {
    case 0: check_chips(s, n); break;
    case 1: fleet_json(s, n, start); break;
    case 2: fleet_shorthand(s, n, start); break;
    }
    return 0;
}
