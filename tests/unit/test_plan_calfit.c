/* test_plan_calfit.c: what lmc plan --calibrate-log fits from a training
 * log (src/plan/calib.c, calfile.c). A step of lmc's cpu backend counts
 * only when each rank's CPU time in it (the log's cpu_ms) was at least 90%
 * of the step x threads: the figures are the median, mean and least of
 * those steps, and a fit needs 5 of them. The log's exposed data-parallel
 * communication (comm_ms) is fitted apart from the rest of the step, so a
 * calibration predicts back the very step it was fitted on; a file with
 * communication reads back to the same values. The run line's ep is read.
 * A measured chip's figures are kept with the fit and used again at the
 * same threads. */
#include "lmc/plan.h"
#include "test.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

/* a calibration file's required fields, for files with more */
#define CAL_HEAD                                                                                                    \
    "{\"format\": \"lmc-calibration-1\", \"chip\": \"cpu\", \"model\": \"d6\", \"params\": 1, \"steps\": 5, "            \
    "\"measured_ms\": 5, \"predicted_ms\": 4, \"efficiency\": {\"expected\": 0.8, \"low\": 0.7, \"high\": 0.9}"

#define RUN_CPU2 "\"run\":{\"dp\":1,\"threads\":2,\"device\":\"cpu\"}"

/* 2 threads: step 2 got 98% of its cores, 3 got 33%, 4 and 5 95%, 6 83%. */
static const char *judged_log =
    "{\"step\":1,\"ms\":900,\"cpu_ms\":[600]," RUN_CPU2 "}\n"
    "{\"step\":2,\"ms\":100,\"cpu_ms\":[196]}\n"
    "{\"step\":3,\"ms\":300,\"cpu_ms\":[200]}\n"
    "{\"step\":4,\"ms\":110,\"cpu_ms\":[209]}\n"
    "{\"step\":5,\"ms\":105,\"cpu_ms\":[200]}\n"
    "{\"step\":6,\"ms\":90,\"cpu_ms\":[150]}\n";

static void test_steps_judged(void)
{
    lmc_plan_log_stats st;
    CHECK_OK(lmc_plan_log_parse(judged_log, strlen(judged_log), "run.jsonl", 1, &st));
    CHECK(st.steps == 6 && st.used == 5 && st.judged == 1 && st.kept == 3);
    CHECK(st.median_ms == 105 && st.min_ms == 100 && fabs(st.mean_ms - 105) < 1e-12);
    CHECK_MSG(fabs(st.share_median - 209.0 / 220) < 1e-12, "median share %.6f", st.share_median);
    CHECK(st.comm_ms == -1); /* no comm_ms in the log */
    /* 3 steps that got their cores: too few to fit, said with the figures */
    CHECK_ERR(lmc_plan_calib_check_steps(&st, "run.jsonl"), LMC_ERANGE,
              "run.jsonl: only 3 of the 5 steps after warm-up got 90% of their cores (the steps' median share 95%): "
              "too few to fit a calibration (at least 5)");
    /* on another device the CPU time says nothing about the step: not judged */
    char other[1024];
    snprintf(other, sizeof other, "%s", judged_log);
    memcpy(strstr(other, "\"cpu\""), "\"npu\"", 5);
    CHECK_OK(lmc_plan_log_parse(other, strlen(other), "run.jsonl", 1, &st));
    CHECK(st.judged == 0 && st.kept == 5 && st.median_ms == 105 && st.min_ms == 90);
    CHECK_OK(lmc_plan_calib_check_steps(&st, "run.jsonl"));
    CHECK_OK(lmc_plan_log_parse(other, strlen(other), "run.jsonl", 3, &st));
    CHECK_ERR(lmc_plan_calib_check_steps(&st, "run.jsonl"), LMC_ERANGE,
              "run.jsonl: 3 steps after warm-up: too few to fit a calibration (at least 5)");
}

/* Several ranks: a step counts when every rank got its cores; when no step
 * did, the figures are all the steps' and nothing is kept. */
static void test_ranks_and_busy(void)
{
    const char *two = "{\"step\":1,\"ms\":100,\"cpu_ms\":[99,98],\"run\":{\"threads\":1,\"device\":\"cpu\"}}\n"
                      "{\"step\":2,\"ms\":100,\"cpu_ms\":[99,40]}\n"
                      "{\"step\":3,\"ms\":120,\"cpu_ms\":[118,119]}\n";
    lmc_plan_log_stats st;
    CHECK_OK(lmc_plan_log_parse(two, strlen(two), "run.jsonl", 0, &st));
    CHECK(st.judged == 1 && st.used == 3 && st.kept == 2 && st.median_ms == 110 && st.min_ms == 100);
    /* a rank blocked on a collective does not need its cores: a quiet 2-rank
     * run's steps, 80% of step x threads in CPU but 20 ms of 100 waiting */
    const char *wait = "{\"step\":1,\"ms\":100,\"cpu_ms\":[80,80],\"rank_comm_ms\":[20,12],\"comm_ms\":20,"
                       "\"run\":{\"threads\":1,\"device\":\"cpu\"}}\n"
                       "{\"step\":2,\"ms\":100,\"cpu_ms\":[80,60],\"rank_comm_ms\":[20,12]}\n"
                       "{\"step\":3,\"ms\":100,\"cpu_ms\":[81,80],\"comm_ms\":15}\n";
    CHECK_OK(lmc_plan_log_parse(wait, strlen(wait), "run.jsonl", 0, &st));
    CHECK_MSG(st.kept == 2 && fabs(st.share_median - 80.0 / 88) < 1e-12, "kept %d, median share %.4f", st.kept,
              st.share_median);
    const char *busy = "{\"step\":1,\"ms\":100,\"cpu_ms\":[60],\"run\":{\"threads\":1,\"device\":\"cpu\"}}\n"
                       "{\"step\":2,\"ms\":200,\"cpu_ms\":[50]}\n";
    CHECK_OK(lmc_plan_log_parse(busy, strlen(busy), "run.jsonl", 0, &st));
    CHECK(st.judged == 1 && st.kept == 0 && st.median_ms == 150 && st.min_ms == 100);
    CHECK(fabs(st.share_median - 0.425) < 1e-12);
    /* a log without cpu_ms (older, or another trainer) is taken whole */
    const char *plain = "{\"step\":1,\"ms\":100}\n{\"step\":2,\"ms\":200}\n";
    CHECK_OK(lmc_plan_log_parse(plain, strlen(plain), "run.jsonl", 0, &st));
    CHECK(st.judged == 0 && st.kept == 2 && st.share_median == 0);
    const char *bad = "{\"step\":1,\"ms\":100,\"comm_ms\":-3}\n";
    CHECK_ERR(lmc_plan_log_parse(bad, strlen(bad), "run.jsonl", 0, &st), LMC_EFORMAT,
              "run.jsonl:1: field 'comm_ms' must be a number of milliseconds in [0, 1e12]");
}

/* 2 ranks of data parallelism: the step less its exposed sync is fitted
 * against the best case less the predicted sync, the sync on its own. */
static void test_comm_fit(void)
{
    const char *dp2 =
        "{\"step\":1,\"ms\":400,\"comm_ms\":50,\"cpu_ms\":[395,396],\"run\":{\"dp\":2,\"ep\":2,\"threads\":1,"
        "\"device\":\"cpu\",\"params\":1000}}\n"
        "{\"step\":2,\"ms\":200,\"comm_ms\":20,\"cpu_ms\":[198,199]}\n"
        "{\"step\":3,\"ms\":220,\"comm_ms\":30,\"cpu_ms\":[218,217]}\n"
        "{\"step\":4,\"ms\":210,\"comm_ms\":25,\"cpu_ms\":[208,209]}\n"
        "{\"step\":5,\"ms\":500,\"comm_ms\":90,\"cpu_ms\":[200,495]}\n"
        "{\"step\":6,\"ms\":205,\"comm_ms\":24,\"cpu_ms\":[204,203]}\n"
        "{\"step\":7,\"ms\":215,\"comm_ms\":26,\"cpu_ms\":[214,213]}\n";
    lmc_plan_log_stats st;
    CHECK_OK(lmc_plan_log_parse(dp2, strlen(dp2), "dp2.jsonl", 1, &st));
    CHECK(st.run.ep == 2 && st.run.dp == 2); /* the run line's expert parallelism */
    CHECK(st.kept == 5 && st.median_ms == 210 && st.min_ms == 200 && st.comm_ms == 25);
    CHECK_OK(lmc_plan_calib_check_steps(&st, "dp2.jsonl"));
    lmc_plan_calib c = {.chip = "cpu", .model = "d6", .params = 1000}, back;
    lmc_plan_calib_fit(&st, 0.150, 0.010, &c); /* best case 150 ms, of it 10 ms sync */
    CHECK(c.steps == 5 && fabs(c.comm_eff - 10.0 / 25) < 1e-12 && c.comm_measured_ms == 25);
    CHECK(fabs(c.comm_predicted_ms - 10) < 1e-12);
    CHECK(fabs(c.eff.expected - 140.0 / 185) < 1e-12 && fabs(c.eff.high - 140.0 / 175) < 1e-12);
    CHECK(fabs(c.eff.low - 140.0 / (2 * 185 - 175)) < 1e-12);
    /* the calibration predicts back the median step it was fitted on */
    CHECK_MSG(fabs(lmc_plan_calib_predict(&c, 0.150, 0.010) - 0.210) < 1e-12, "%.9f",
              lmc_plan_calib_predict(&c, 0.150, 0.010));
    /* one replica: no sync in the log or the layout, only compute fitted */
    lmc_plan_calib one = c;
    lmc_plan_calib_fit(&st, 0.150, 0, &one);
    CHECK(one.comm_eff == 0 && fabs(one.eff.expected - 150.0 / 210) < 1e-12);
    CHECK(fabs(lmc_plan_calib_predict(&one, 0.3, 0.05) - 0.25 / one.eff.expected - 0.05) < 1e-12);
    /* the file keeps both, and reads back to the same values */
    const char *dir = test_tmpdir("calfit");
    CHECK(dir != NULL);
    CHECK_OK(lmc_plan_calib_save(&c, test_path("cal.json")));
    CHECK_OK(lmc_plan_calib_load(test_path("cal.json"), &back));
    CHECK(back.comm_eff == c.comm_eff && back.comm_measured_ms == 25 && back.comm_predicted_ms == c.comm_predicted_ms);
    CHECK(back.eff.expected == c.eff.expected && back.steps == 5);
    const char *bad = CAL_HEAD ", \"comm\": {\"expected\": 0.5, \"measured_ms\": -1}}";
    CHECK_ERR(lmc_plan_calib_parse(bad, strlen(bad), "cal.json", &back), LMC_EFORMAT,
              "cal.json: comm: field 'measured_ms' must be a number in");
    lmc_rm_rf(dir);
}

/* A measured chip's figures kept with the fit and used again at the same
 * threads (not at others, nor for a chip of the catalogue's own figures). */
static void test_chip_kept(void)
{
    lmc_plan_chip cpu = {.name = "cpu", .measure = 1, .measured = 1, .fp32_tflops = 0.21, .bf16_tflops = 0.38,
                         .matmul_eff_fp32 = 0.87, .matmul_eff = 0.8, .gemm_m0 = 9, .attn_eff_fp32 = 0.16,
                         .attn_eff = 0.09, .sfu_gops = 2.1, .optim_ns = 1.2, .memory_bw_gbs = 26.5, .kernel_us = 3.7};
    lmc_plan_calib c = {.chip = "cpu", .model = "d6", .params = 1000, .steps = 5, .measured_ms = 300,
                        .predicted_ms = 250, .eff = {0.8, 0.7, 0.9, 0, 1}}, back;
    lmc_plan_calib_keep_chip(&c, &cpu, 1);
    const char *dir = test_tmpdir("calfit_chip");
    CHECK(dir != NULL);
    CHECK_OK(lmc_plan_calib_save(&c, test_path("cal.json")));
    CHECK_OK(lmc_plan_calib_load(test_path("cal.json"), &back));
    CHECK(back.threads == 1 && !memcmp(back.figs, c.figs, sizeof c.figs));
    lmc_plan_chip fresh = {.name = "cpu", .measure = 1}, a100 = {.name = "A100", .fp32_tflops = 19.5};
    CHECK(lmc_plan_calib_use_chip(&back, &fresh, 2) == 0 && fresh.measured == 0); /* other threads: measure */
    CHECK(lmc_plan_calib_use_chip(&back, &a100, 1) == 0 && a100.fp32_tflops == 19.5);
    CHECK(lmc_plan_calib_use_chip(&back, &fresh, 1) == 1 && fresh.measured == 1 && fresh.chips_per_node == 1);
    CHECK(fresh.fp32_tflops == 0.21 && fresh.sfu_gops == 2.1 && fresh.optim_ns == 1.2 && fresh.kernel_us == 3.7);
    CHECK(fresh.gemm_m0 == 9 && fresh.attn_eff == 0.09 && fresh.memory_bw_gbs == 26.5 && fresh.memory_gb > 0);
    const char *bad = CAL_HEAD ", \"threads\": 1, \"chip_figures\": {\"fp32_tflops\": 0.2}}";
    CHECK_ERR(lmc_plan_calib_parse(bad, strlen(bad), "cal.json", &back), LMC_EFORMAT,
              "cal.json: chip_figures: field 'bf16_tflops' must be a number in");
    lmc_rm_rf(dir);
}

int main(void)
{
    RUN(test_steps_judged);
    RUN(test_ranks_and_busy);
    RUN(test_comm_fit);
    RUN(test_chip_kept);
    return test_summary();
}
