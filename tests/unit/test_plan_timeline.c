/* test_plan_timeline.c: deliveries (re-plans as chips arrive, tokens done
 * by date, the finish date), the SVG plot, the reports, and the training
 * log / random shard helpers used by calibration. */
#include "lmc/plan.h"
#include "test.h"

#include <unistd.h>

static int close_rel(double a, double b, double tol) { return fabs(a - b) <= tol * fabs(b); }

static lmc_plan_catalog cat;

static void job_d24(lmc_plan_job *j)
{
    lmc_plan_job_defaults(j);
    CHECK_OK(lmc_plan_model_load("d24", &j->model));
    j->seq = 1024;
    j->global_batch = 512;
}

static double best_tps(const lmc_plan_job *j, const char *fleet)
{
    lmc_plan_fleet f;
    CHECK_OK(lmc_plan_fleet_load(&cat, fleet, 0, &f));
    lmc_plan_fix fx;
    lmc_plan_fix_none(&fx);
    lmc_plan_result r;
    int n = 0;
    CHECK_OK(lmc_plan_search(j, f.pools, &f.pools[0].count, 1, &fx, &r, 1, &n, NULL));
    lmc_plan_fleet_free(&f);
    return n ? r.tokens_per_s : 0;
}

static void test_single_pool(void)
{
    lmc_plan_job j;
    job_d24(&j);
    lmc_plan_fleet f;
    CHECK_OK(lmc_plan_fleet_load(&cat, "16xH100", 1000, &f));
    lmc_plan_fix fx;
    lmc_plan_fix_none(&fx);
    lmc_plan_timeline tl;
    CHECK_OK(lmc_plan_timeline_run(&j, &f, &fx, 20e9, 1000, 0.5, &tl));
    double tps = best_tps(&j, "16xH100");
    CHECK(tl.n == 1 && close_rel(tl.hours, 20e9 / tps / 3600, 1e-9));
    CHECK(close_rel(tl.finish_day, 1000 + tl.hours / 24, 1e-12));
    CHECK(close_rel(lmc_plan_timeline_tokens_at(&tl, 1000 + tl.hours / 48), 10e9, 1e-6));
    lmc_plan_timeline_free(&tl);
    lmc_plan_fleet_free(&f);
}

static void test_deliveries(void)
{
    /* 8 A100 now, 64 more on day 2, 64 H100 on day 4: three segments,
     * each re-planned; the two-kind segment balances micro-batches */
    lmc_plan_job j;
    job_d24(&j);
    const char *fleet = "{\"pools\": [{\"chip\": \"A100\", \"count\": 8},"
                        "{\"chip\": \"A100\", \"count\": 64, \"arrives\": \"1970-01-03\"},"
                        "{\"chip\": \"H100\", \"count\": 64, \"arrives\": \"1970-01-05\"}]}";
    lmc_plan_fleet f;
    CHECK_OK(lmc_plan_fleet_parse_json(&cat, fleet, strlen(fleet), "f.json", 0, &f));
    lmc_plan_fix fx;
    lmc_plan_fix_none(&fx);
    lmc_plan_timeline tl;
    double tokens = 3e12, replan = 1.0;
    CHECK_OK(lmc_plan_timeline_run(&j, &f, &fx, tokens, 0, replan, &tl));
    CHECK(tl.n == 3 && tl.seg[0].chips == 8 && tl.seg[1].chips == 72 && tl.seg[2].chips == 136);
    CHECK(tl.seg[0].day == 0 && tl.seg[1].day == 2 && tl.seg[2].day == 4);
    double t0 = best_tps(&j, "8xA100"), t1 = best_tps(&j, "72xA100");
    CHECK(close_rel(tl.seg[0].tokens_per_s, t0, 1e-9) && close_rel(tl.seg[1].tokens_per_s, t1, 1e-9));
    CHECK(tl.seg[2].tokens_per_s > t1 && tl.seg[2].plan.n_pools == 2);
    /* tokens done by each date: full speed, less an hour per re-plan */
    double by2 = 2 * 86400 * t0, by4 = by2 + (2 * 86400 - 3600) * t1;
    CHECK(close_rel(tl.seg[1].tokens_at_start, by2, 1e-9) && close_rel(tl.seg[2].tokens_at_start, by4, 1e-9));
    CHECK(close_rel(lmc_plan_timeline_tokens_at(&tl, 3), by2 + (86400 - 3600) * t1, 1e-9));
    double finish = 4 + replan / 24 + (tokens - by4) / tl.seg[2].tokens_per_s / 86400;
    CHECK_MSG(close_rel(tl.finish_day, finish, 1e-9), "%g vs %g", tl.finish_day, finish);
    CHECK(close_rel(tl.hours, finish * 24, 1e-9));
    CHECK(close_rel(lmc_plan_timeline_tokens_at(&tl, 100), tokens, 1e-12));

    /* the plot: well-formed enough, written atomically */
    char dir[] = "/tmp/lmc_plan_XXXXXX", path[128];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/t.svg", dir);
    CHECK_OK(lmc_plan_svg_write(&tl, "d24 <on> A100 & H100", path));
    char *svg = NULL;
    size_t n = 0;
    CHECK_OK(lmc_read_file(path, &svg, &n));
    CHECK(svg && !strncmp(svg, "<?xml", 5) && strstr(svg, "<svg") && strstr(svg, "</svg>\n") &&
          strstr(svg, "d24 &lt;on&gt; A100 &amp; H100") && strstr(svg, "re-plan: 72 chips") &&
          strstr(svg, "re-plan: 136 chips") && strstr(svg, "<polyline"));
    free(svg);
    unlink(path);
    rmdir(dir);

    /* both reports carry the timeline; the JSON parses */
    lmc_plan_report rep = {&j, "d24", "f.json", tokens, &f, tl.seg[2].plan.fits ? &tl.seg[2].plan : NULL, 1, &tl};
    lmc_sb sb;
    lmc_sb_init(&sb);
    lmc_plan_report_json(&rep, &sb);
    lmc_json *js = NULL;
    CHECK_OK(lmc_json_parse(sb.s, sb.len, "report", &js));
    double hours = 0, mfu = 0;
    CHECK_OK(lmc_json_get_num(js, "hours", "report", &hours));
    CHECK_OK(lmc_json_get_num(js, "mfu", "report", &mfu));
    CHECK(close_rel(hours, tl.hours, 1e-9) && mfu > 0.1 && mfu < 1);
    lmc_json *timeline = lmc_json_get(js, "timeline");
    CHECK(timeline && timeline->n == 3);
    lmc_json_free(js);
    lmc_sb_free(&sb);
    lmc_sb_init(&sb);
    lmc_plan_report_text(&rep, &sb);
    CHECK(strstr(sb.s, "timeline") && strstr(sb.s, "1970-01-05") && strstr(sb.s, "time to train"));
    lmc_sb_free(&sb);
    lmc_plan_timeline_free(&tl);
    lmc_plan_fleet_free(&f);
}

static void test_waiting_and_nothing_fits(void)
{
    lmc_plan_job j;
    job_d24(&j);
    /* nothing on hand until day 10: the job starts then */
    const char *later = "[{\"chip\": \"H100\", \"count\": 8, \"arrives\": \"1970-01-11\"}]";
    lmc_plan_fleet f;
    CHECK_OK(lmc_plan_fleet_parse_json(&cat, later, strlen(later), "f.json", 0, &f));
    lmc_plan_fix fx;
    lmc_plan_fix_none(&fx);
    lmc_plan_timeline tl;
    CHECK_OK(lmc_plan_timeline_run(&j, &f, &fx, 1e9, 0, 0.5, &tl));
    CHECK(tl.n == 2 && tl.seg[0].chips == 0 && tl.seg[0].tokens_per_s == 0);
    CHECK(close_rel(tl.finish_day, 10 + 1e9 / tl.seg[1].tokens_per_s / 86400, 1e-9)); /* no re-plan cost */
    lmc_plan_timeline_free(&tl);
    lmc_plan_fleet_free(&f);
    /* a model that fits nowhere */
    CHECK_OK(lmc_plan_model_load("llama3-405b", &j.model));
    j.seq = 8192;
    CHECK_OK(lmc_plan_fleet_load(&cat, "8xA100", 0, &f));
    CHECK_ERR(lmc_plan_timeline_run(&j, &f, &fx, 1e9, 0, 0.5, &tl), LMC_ERANGE,
              "the model fits nowhere on this fleet: the closest layout");
    lmc_plan_fleet_free(&f);
}

static void test_log_parse(void)
{
    const char *log = "{\"step\": 1, \"loss\": 11.0, \"ms\": 900.0, \"tokens_per_s\": 100, \"mfu\": 0.1}\n"
                      "{\"step\": 2, \"loss\": 10.0, \"ms\": 410.0, \"tokens_per_s\": 250, \"mfu\": 0.25}\n"
                      "\n"
                      "{\"step\": 2, \"val_loss\": 9.9}\n"
                      "{\"step\": 3, \"loss\": 9.0, \"ms\": 400.0, \"tokens_per_s\": 256, \"mfu\": 0.26}\r\n"
                      "{\"step\": 4, \"loss\": 8.0, \"ms\": 390.0, \"tokens_per_s\": 262, \"mfu\": 0.27}";
    lmc_plan_log_stats st;
    CHECK_OK(lmc_plan_log_parse(log, strlen(log), "run.jsonl", 1, &st));
    CHECK(st.steps == 4 && st.used == 3 && st.median_ms == 400 && st.min_ms == 390);
    CHECK(close_rel(st.mean_ms, 400, 1e-12) && st.tokens_per_s == 256 && st.mfu == 0.26);
    CHECK_OK(lmc_plan_log_parse(log, strlen(log), "run.jsonl", 0, &st));
    CHECK(st.used == 4 && st.median_ms == 405);
    CHECK_OK(lmc_plan_log_parse(log, strlen(log), "run.jsonl", 99, &st));
    CHECK(st.used == 1 && st.median_ms == 390); /* always keeps one */
    const char *bad[][2] = {
        {"{\"step\": 1, \"ms\": 5}\n{\"step\": 2, \"ms\": ", "run.jsonl:2: malformed JSON"},
        {"{\"step\": 1, \"ms\": \"fast\"}", "run.jsonl:1: field 'ms' must be a positive number"},
        {"{\"step\": 1, \"ms\": -3}", "run.jsonl:1: field 'ms' must be a positive number"},
        {"[1, 2]", "run.jsonl:1: expected one JSON object per line"},
        {"{\"step\": 1.5, \"ms\": 3}", "run.jsonl:1"},
        {"{\"loss\": 3}\n", "run.jsonl: no step lines"},
        {"", "run.jsonl: no step lines"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        lmc_status s = lmc_plan_log_parse(bad[i][0], strlen(bad[i][0]), "run.jsonl", 0, &st);
        CHECK_MSG(s == LMC_EFORMAT && strstr(lmc_errmsg(), bad[i][1]), "case %zu: %s", i, lmc_errmsg());
    }
    CHECK_ERR(lmc_plan_log_read("/nonexistent/log.jsonl", 0, &st), LMC_EIO, "/nonexistent/log.jsonl");
}

static void test_random_shard(void)
{
    char dir[] = "/tmp/lmc_plan_XXXXXX", path[128];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/s.bin", dir);
    CHECK_OK(lmc_plan_write_random_shard(path, 1000, 300, 7));
    char *d = NULL;
    size_t n = 0;
    CHECK_OK(lmc_read_file(path, &d, &n));
    CHECK(n == 1024 + 2000);
    const unsigned char *u = (const unsigned char *)d;
    CHECK(u[0] + (u[1] << 8) + (u[2] << 16) + ((unsigned)u[3] << 24) == 20240520u);
    CHECK(u[4] == 1 && u[8] + (u[9] << 8) == 1000);
    int max = 0;
    for (int i = 0; i < 1000; i++) {
        int t = u[1024 + 2 * i] | u[1025 + 2 * i] << 8;
        max = t > max ? t : max;
    }
    CHECK(max < 300 && max > 250);
    free(d);
    unlink(path);
    rmdir(dir);
    CHECK_ERR(lmc_plan_write_random_shard(path, 10, 1 << 20, 1), LMC_EINVAL, "out of range");
}

static void test_predict_single(void)
{
    lmc_model_config c;
    CHECK_OK(lmc_plan_model_load("d6", &c));
    lmc_plan_chip cpu = *lmc_plan_catalog_find(&cat, "cpu"); /* unmeasured defaults: fast to test */
    double t4 = lmc_plan_predict_single(&c, &cpu, 4, 256, 0, NULL);
    double t8 = lmc_plan_predict_single(&c, &cpu, 8, 256, 0, NULL);
    CHECK(t4 > 0.01 && t4 < 100 && t8 > 1.5 * t4 && t8 < 2.2 * t4);
    /* the compute alone at the catalogue's efficiency is a lower bound */
    double flops = lmc_config_train_flops_per_token(&c, 256) * 4 * 256;
    CHECK(t4 > flops / (cpu.fp32_tflops * 1e12 * cpu.matmul_eff_fp32));
}

int main(void)
{
    CHECK_OK(lmc_plan_catalog_load_default(&cat));
    RUN(test_single_pool);
    RUN(test_deliveries);
    RUN(test_waiting_and_nothing_fits);
    RUN(test_log_parse);
    RUN(test_random_shard);
    RUN(test_predict_single);
    lmc_plan_catalog_free(&cat);
    return test_summary();
}
