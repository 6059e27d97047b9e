/* fuzz_plan_runs.c: libFuzzer target for the planner's published-runs
 * parser (lmc_plan_runs_parse, src/plan/runs.c: share/runs.json or
 * lmc plan --runs FILE) and the reader of lmc launch's restart events
 * (lmc_plan_launch_restart, src/plan/reliab.c: lmc plan --launch-log) and
 * calibration files (lmc_plan_calib_parse, src/plan/calfile.c: lmc plan
 * --calibration). The first byte mod 3 picks: 0 a runs file, 1 a launch
 * log, 2 a calibration file.
 * Properties:
 *  - a refusal names the file ("fuzz/runs.json", "fuzz/launch.jsonl");
 *  - an accepted runs file has 1 to LMC_PLAN_MAX_RUNS runs, each with a
 *    name, at least one chip and token per sequence, a published MFU in
 *    (0, 1) from a named basis, and a layout whose fixed degrees are
 *    positive and ZeRO stage in -1..3;
 *  - an accepted launch log has at least one "resumed" event and a finite,
 *    positive mean restart cost;
 *  - an accepted calibration file has a chip, low <= expected <= high, all
 *    positive, and saved and read back it is the same.
 * Seeds: the built-in share/runs.json and launch logs in lmc launch's format. */
#include "fuzz_common.h"
#include "lmc/plan.h"

#include <math.h>
#include <string.h>

static lmc_plan_catalog cat;

static const char calib[] =
    "{\"format\": \"lmc-calibration-1\", \"chip\": \"cpu\", \"model\": \"d6\", \"params\": 30339456, "
    "\"steps\": 7, \"measured_ms\": 310.5, \"predicted_ms\": 290.1, \"efficiency\": {\"expected\": 0.934, "
    "\"low\": 0.88, \"high\": 0.99}}\n";

static const char *const logs[] = {
    "{\"event\":\"start\",\"time\":1733400000.1,\"t\":0.0,\"message\":\"start 1: 2 ranks\"}\n"
    "{\"event\":\"failure\",\"time\":1733400010.0,\"t\":9.9,\"message\":\"failure\"}\n"
    "{\"event\":\"resumed\",\"time\":1733400020.0,\"t\":19.9,\"attempt\":2,\"step\":5,\"restart_s\":9.5,"
    "\"ready_s\":null,\"first_step_ms\":120.0,\"redone_s\":1.5,\"lost_s\":8.25,\"message\":\"resumed\"}\n",
    "{\"event\":\"resumed\",\"lost_s\":30,\"redone_s\":0}\r\n{\"event\":\"summary\",\"effective\":0.9}",
};

static const char one_run[] =
    "{\"runs\": [{\"name\": \"r\", \"chip\": \"A100\", \"chips\": 8, \"model\": {\"model_type\": \"llama\", "
    "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"hidden_size\": 64, "
    "\"intermediate_size\": 128, \"max_position_embeddings\": 128, \"vocab_size\": 256, \"hidden_act\": \"silu\"}, "
    "\"seq\": 128, \"tokens\": 1e9, \"layout\": {\"tp\": 2, \"zero\": 1, \"recompute\": \"full\"}, "
    "\"tflops_per_chip\": 100, \"counts_recompute\": true, \"gpu_hours\": 10, \"interruptions\": 3, "
    "\"interruption_days\": 2, \"effective_time\": 0.9, \"sources\": {\"chips\": \"a\", \"model\": \"b\", "
    "\"seq\": \"c\", \"tokens\": \"d\", \"layout\": \"e\", \"tflops_per_chip\": \"f\", \"counts_recompute\": "
    "\"g\", \"gpu_hours\": \"h\", \"interruptions\": \"i\", \"interruption_days\": \"j\", \"effective_time\": \"k\"}}]}";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (lmc_plan_catalog_load_default(&cat) != LMC_OK)
        fuzz_fail(__FILE__, __LINE__, "the built-in chip catalogue");
    if (fuzz_seeding()) {
        size_t n = 0;
        const char *runs = lmc_plan_embedded("share/runs.json", &n);
        FUZZ_ASSERT(runs);
        fuzz_seed("seed-runs", 0, runs, n);
        fuzz_seed("seed-run", 0, one_run, sizeof one_run - 1);
        for (size_t i = 0; i < sizeof logs / sizeof *logs; i++) {
            char name[32];
            snprintf(name, sizeof name, "seed-launch-%zu", i);
            fuzz_seed(name, 1, logs[i], strlen(logs[i]));
        }
        fuzz_seed("seed-calibration", 2, calib, strlen(calib));
    }
    return 0;
}

static void check_runs(const lmc_plan_runs *rs)
{
    FUZZ_ASSERT(rs->n >= 1 && rs->n <= LMC_PLAN_MAX_RUNS);
    for (int i = 0; i < rs->n; i++) {
        const lmc_plan_run *r = &rs->runs[i];
        const lmc_plan_fix *f = &r->fix;
        FUZZ_ASSERT(r->name[0] && r->chips >= 1 && r->seq >= 1 && r->basis);
        FUZZ_ASSERT(r->pub_mfu > 0 && r->pub_mfu < 1 && isfinite(r->pub_mfu));
        FUZZ_ASSERT(f->tp >= 0 && f->pp >= 0 && f->dp >= 0 && f->vpp >= 0 && f->micro_batch >= 0);
        FUZZ_ASSERT(f->zero >= -1 && f->zero <= 3 && f->recompute >= -1 && f->recompute <= 2);
        FUZZ_ASSERT(lmc_plan_catalog_find(&cat, r->chip));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    if (data[0] % 3 == 2) {
        lmc_plan_calib c, back;
        if (lmc_plan_calib_parse(text, n, "fuzz/cal.json", &c) != LMC_OK) {
            FUZZ_ASSERT(!strncmp(lmc_errmsg(), "fuzz/cal.json", 13));
            return 0;
        }
        FUZZ_ASSERT(c.chip[0] && c.eff.low > 0 && c.eff.low <= c.eff.expected && c.eff.expected <= c.eff.high);
        char path[4200];
        fuzz_path(path, sizeof path, fuzz_tmpdir("calib"), "cal.json");
        FUZZ_ASSERT(lmc_plan_calib_save(&c, path) == LMC_OK && lmc_plan_calib_load(path, &back) == LMC_OK);
        FUZZ_ASSERT(!strcmp(back.chip, c.chip) && !strcmp(back.model, c.model) && back.eff.expected == c.eff.expected &&
                    back.eff.low == c.eff.low && back.eff.high == c.eff.high && back.steps == c.steps);
        return 0;
    }
    if (data[0] % 3 == 1) {
        double h = 0;
        int events = 0;
        if (lmc_plan_launch_restart(text, n, "fuzz/launch.jsonl", &h, &events) != LMC_OK) {
            FUZZ_ASSERT(!strncmp(lmc_errmsg(), "fuzz/launch.jsonl", 17));
            return 0;
        }
        FUZZ_ASSERT(events >= 1 && h > 0 && isfinite(h));
        return 0;
    }
    lmc_plan_runs rs;
    if (lmc_plan_runs_parse(&cat, text, n, "fuzz/runs.json", &rs) != LMC_OK) {
        FUZZ_ASSERT(!strncmp(lmc_errmsg(), "fuzz/runs.json", 14));
        return 0;
    }
    check_runs(&rs);
    lmc_plan_runs_free(&rs);
    return 0;
}
