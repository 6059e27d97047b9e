/* test_plan_calrun.c: lmc_plan_calibrate (lmc plan --calibrate) trains in
 * this process through lmc_train's events: one step time per step, warm-up
 * dropped, and each step judged by the CPU time it got (CLOCK_PROCESS_
 * CPUTIME_ID between step events) within what the kernel's own account of
 * the process (getrusage) says the whole run used. Bad options are errors. */
#include "lmc/plan.h"
#include "test.h"

#include <sys/resource.h>
#include <unistd.h>

static double rusage_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static void test_calibrate_run(void)
{
    char dir[] = "/tmp/lmc_calrun_XXXXXX", cfg[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(cfg, sizeof cfg, "%s/tiny.json", dir);
    const char *json = "{\"model_type\": \"gpt2\", \"n_layer\": 2, \"n_head\": 2, \"n_embd\": 64, "
                       "\"vocab_size\": 512, \"n_positions\": 64}";
    CHECK_OK(lmc_write_file_atomic(cfg, json, strlen(json)));
    lmc_plan_calib_opts o = {.model = cfg, .batch = 2, .seq = 32, .steps = 4, .skip = 1, .threads = 1};
    lmc_plan_calib_run r;
    double c0 = rusage_s();
    CHECK_OK(lmc_plan_calibrate(&o, &r));
    double used_ms = (rusage_s() - c0) * 1e3;
    CHECK(r.st.steps == 4 && r.st.used == 3 && r.threads == 1);
    CHECK(r.st.min_ms > 0 && r.st.min_ms <= r.st.median_ms && r.st.median_ms <= r.st.mean_ms * 3);
    /* every step judged by its share of the cores: CPU time between step
     * events over one thread's wall-clock time there (at most all of it),
     * and the steps' CPU within the kernel's account of the whole run */
    CHECK(r.st.judged == 1 && r.st.kept <= r.st.used);
    CHECK_MSG(r.st.share_median > 0 && r.st.share_median <= 1.02 &&
                  r.st.share_median * r.st.min_ms * ((r.st.used + 1) / 2) <= used_ms + 10, /* half at least the median */
              "median share %.3f of %.3f ms steps, run %.3f ms of CPU", r.st.share_median, r.st.min_ms, used_ms);
    if (r.st.kept) /* the figures are those of the steps that got their cores */
        CHECK(r.st.min_ms > 0 && r.st.min_ms <= r.st.median_ms);
    o.skip = 9; /* more warm-up than steps: the last step is kept */
    CHECK_OK(lmc_plan_calibrate(&o, &r));
    CHECK(r.st.steps == 4 && r.st.used == 1);
    o.threads = 0;
    CHECK_ERR(lmc_plan_calibrate(&o, &r), LMC_EINVAL,
              "calibrate: threads 0, batch 2, seq 32, steps 4 must be at least 1");
    o.threads = 1, o.seq = 128; /* longer than the model's context: lmc_train's own error, named */
    CHECK_ERR(lmc_plan_calibrate(&o, &r), LMC_ERANGE, "tiny.json failed: --seq 128 must be in [1, 64]");
    lmc_rm_rf(dir);
}

int main(void)
{
    RUN(test_calibrate_run);
    return test_summary();
}
