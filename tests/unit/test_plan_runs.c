/* test_plan_runs.c: the published runs catalogue (share/runs.json) and
 * what the planner makes of it: each run's published throughput as MFU
 * (checked by hand), the expected factor and range per chip class, the
 * interruption rate and restart cost, the Young/Daly checkpoint interval
 * and effective-time fraction (by hand), lmc launch's restart events, the
 * expected and range timelines, and bad input (a figure without a source,
 * a slip without a date) failing with messages that name the field. */
#include "lmc/plan.h"
#include "test.h"

static lmc_plan_catalog cat;
static lmc_plan_runs runs;

static int close_rel(double a, double b, double tol) { return fabs(a - b) <= tol * fabs(b); }

static const lmc_plan_run *find(const char *name)
{
    for (int i = 0; i < runs.n; i++)
        if (!strcmp(runs.runs[i].name, name))
            return &runs.runs[i];
    CHECK_MSG(0, "run '%s' not in share/runs.json", name);
    return NULL;
}

static void test_catalogue(void)
{
    int a100 = 0, h100 = 0, ascend = 0;
    CHECK(runs.n >= 12);
    for (int i = 0; i < runs.n; i++) {
        const char *c = lmc_plan_chip_class(runs.runs[i].chip);
        a100 += !strcmp(c, "A100"), h100 += !strcmp(c, "H100"), ascend += !strcmp(c, "Ascend");
        CHECK_MSG(runs.runs[i].pub_mfu > 0.1 && runs.runs[i].pub_mfu < 0.8, "%s: %g", runs.runs[i].name,
                  runs.runs[i].pub_mfu);
    }
    CHECK(a100 >= 3 && h100 >= 2 && ascend >= 1);
    CHECK(!strcmp(lmc_plan_chip_class("H800"), "H100") && !strcmp(lmc_plan_chip_class("Ascend 910B3"), "Ascend"));
    CHECK(!strcmp(lmc_plan_chip_class("MI300X"), ""));
}

/* Each basis converted by hand. */
static void test_published_mfu(void)
{
    const lmc_plan_run *m = find("Megatron-LM 1T"), *s = find("MegaScale GPT-3 175B"), *l = find("LLaMA 65B");
    if (!m || !s || !l)
        return;
    CHECK(close_rel(m->pub_mfu, 163.0 / 312 * 0.75, 1e-9)); /* 163 TFLOP/s counting recomputation: 8TP -> 6TP */
    CHECK(close_rel(s->pub_mfu, 0.552, 1e-12) && !s->end_to_end);
    /* 380 tokens/s x F / 312 TFLOP/s, F = 6 x 65,022,197,760 matmul weights + 12 x 80 x 8192 x 2048 */
    CHECK(close_rel(l->pub_mfu, 0.4947786515692308, 1e-9));
    CHECK(m->fix.tp == 8 && m->fix.pp == 64 && m->fix.dp == 6 && m->fix.recompute == LMC_RECOMPUTE_FULL);
    const lmc_plan_run *mpt = find("MPT-7B");
    CHECK(mpt && mpt->end_to_end);
}

static void test_reliability(void)
{
    lmc_plan_reliab rl = {0};
    lmc_plan_reliab_defaults(&runs, &rl);
    /* Llama 3: 466 in 54 days on 16,384; OPT: 35 in 60 days on 992 */
    CHECK(close_rel(rl.rate, 501.0 / (16384.0 * 54 * 24 + 992.0 * 60 * 24), 1e-9));
    /* the fitted restart leaves Llama 3 405B at its published 90% (its own rate differs by 0.7%) */
    double ckpt = 0, tau = 0, e = lmc_plan_effective(&rl, 16384, 405.8e9, &ckpt, &tau);
    CHECK_MSG(fabs(e - 0.90) < 0.003, "effective %g", e);
    CHECK(rl.restart_h > 0.1 && rl.restart_h < 0.3);
    /* by hand: 1e-5 per chip-hour on 1000 chips: M = 100 h; C = 1e11 x 14 B / 2 TB/s = 0.7 s */
    lmc_plan_reliab h = {.rate = 1e-5, .restart_h = 0.2, .ckpt_gbs = 2000, .state_bytes_per_param = 14};
    e = lmc_plan_effective(&h, 1000, 1e11, &ckpt, &tau);
    CHECK(close_rel(ckpt * 3600, 0.7, 1e-9));
    CHECK(close_rel(tau, sqrt(2 * 0.7 / 3600 * 100), 1e-9)); /* Young: sqrt(2 C M) */
    CHECK(close_rel(e, 0.9960279734056334, 1e-9));
    h.rate = 0;
    CHECK(lmc_plan_effective(&h, 1000, 1e11, &ckpt, &tau) == 1);
}

static void test_launch_log(void)
{
    const char *log = "{\"event\":\"start\",\"time\":1.0,\"t\":0.0,\"message\":\"start 1\"}\n"
                      "{\"event\":\"resumed\",\"t\":9.5,\"lost_s\":30,\"redone_s\":10,\"message\":\"x\"}\n\n"
                      "{\"event\":\"resumed\",\"t\":19.5,\"lost_s\":50.0,\"redone_s\":20.0}\n";
    double h = 0;
    int n = 0;
    CHECK_OK(lmc_plan_launch_restart(log, strlen(log), "launch.jsonl", &h, &n));
    CHECK(n == 2 && close_rel(h * 3600, 25, 1e-12)); /* (30-10 + 50-20) / 2 */
    const char *none = "{\"event\":\"start\"}\n{\"event\":\"summary\",\"effective\":1}\n";
    CHECK(lmc_plan_launch_restart(none, strlen(none), "ok.jsonl", &h, &n) != LMC_OK);
    CHECK(strstr(lmc_errmsg(), "ok.jsonl") && strstr(lmc_errmsg(), "resumed"));
    const char *bad = "{\"event\":\"start\"}\n{\"event\":\"resumed\",\"lost_s\":5,\"redone_s\":10}\n";
    CHECK(lmc_plan_launch_restart(bad, strlen(bad), "bad.jsonl", &h, &n) != LMC_OK);
    CHECK(strstr(lmc_errmsg(), "bad.jsonl:2") && strstr(lmc_errmsg(), "lost_s"));
    CHECK(lmc_plan_launch_restart("not json\n", 9, "x.jsonl", &h, &n) != LMC_OK && strstr(lmc_errmsg(), "x.jsonl:1"));
}

static void test_factors(void)
{
    lmc_plan_effs e;
    lmc_plan_eff h, a, o;
    lmc_plan_validation v;
    CHECK_OK(lmc_plan_effs_make(&cat, &runs, NULL, &e));
    lmc_plan_eff_for(&e, "H100", -1, &h);
    lmc_plan_eff_for(&e, "A100", -1, &a);
    lmc_plan_eff_for(&e, "MI300X", -1, &o);
    CHECK(h.runs >= 3 && h.low <= h.expected && h.expected <= h.high);
    CHECK(a.runs >= 3 && a.low < a.expected && a.expected < a.high);
    CHECK(o.runs == 0 && o.low <= o.expected && o.expected <= o.high);
    for (int i = 0; i < runs.n; i++) /* every run's own ratio lies inside its class's range */
        if (e.ratio[i] > 0) {
            lmc_plan_eff x;
            lmc_plan_eff_for(&e, runs.runs[i].chip, -1, &x);
            CHECK_MSG(e.ratio[i] >= x.low - 1e-12 && e.ratio[i] <= x.high + 1e-12, "%s", runs.runs[i].name);
        }
    lmc_sb out;
    lmc_sb_init(&out);
    lmc_plan_reliab rl = {0};
    lmc_plan_reliab_defaults(&runs, &rl);
    CHECK_OK(lmc_plan_validate(&cat, &runs, &rl, &out, &v));
    CHECK(v.runs == runs.n && v.predicted == v.runs && v.inside == v.predicted);
    CHECK(out.s && strstr(out.s, "Llama 3 405B, 16,384 GPUs"));
    CHECK_MSG(5 * v.within25 >= 4 * v.runs, "expected within 25%% for %d of %d runs: issue 23 asks for 80%%",
              v.within25, v.runs);
    fprintf(stderr, "     validation: %d runs, %d inside the range, expected within 25%%: %d, left out: %d\n", v.runs,
            v.inside, v.within25, v.loo_within25);
    lmc_sb_free(&out);
}

static void test_bad_runs(void)
{
    lmc_plan_runs r;
    const char *nosrc = "{\"runs\": [{\"name\": \"X\", \"chip\": \"H100\", \"chips\": 8, \"model\": \"d12\", "
                        "\"seq\": 1024, \"mfu\": 0.4, \"sources\": {\"chips\": \"a\", \"model\": \"b\", \"seq\": \"c\"}}]}";
    CHECK(lmc_plan_runs_parse(&cat, nosrc, strlen(nosrc), "bad.json", &r) != LMC_OK);
    CHECK_MSG(strstr(lmc_errmsg(), "bad.json") && strstr(lmc_errmsg(), "\"X\"") &&
              strstr(lmc_errmsg(), "field 'mfu' has no source"), "%s", lmc_errmsg());
    const char *nosources = "{\"runs\": [{\"name\": \"Y\", \"chip\": \"H100\", \"chips\": 8, \"model\": \"d12\", "
                            "\"seq\": 1024, \"mfu\": 0.4}]}";
    CHECK(lmc_plan_runs_parse(&cat, nosources, strlen(nosources), "b.json", &r) != LMC_OK);
    CHECK(strstr(lmc_errmsg(), "missing field 'sources'"));
    const char *chip = "{\"runs\": [{\"name\": \"Z\", \"chip\": \"Z80\", \"chips\": 8, \"model\": \"d12\", "
                       "\"seq\": 1024, \"mfu\": 0.4, \"sources\": {\"chips\": \"a\", \"model\": \"b\", \"seq\": \"c\", "
                       "\"mfu\": \"d\"}}]}";
    CHECK(lmc_plan_runs_parse(&cat, chip, strlen(chip), "c.json", &r) != LMC_OK && strstr(lmc_errmsg(), "Z80"));
    const char *none = "{\"runs\": [{\"name\": \"W\", \"chip\": \"H100\", \"chips\": 8, \"model\": \"d12\", "
                       "\"seq\": 1024, \"sources\": {\"chips\": \"a\", \"model\": \"b\", \"seq\": \"c\"}}]}";
    CHECK(lmc_plan_runs_parse(&cat, none, strlen(none), "d.json", &r) != LMC_OK &&
          strstr(lmc_errmsg(), "no throughput"));
    const char *ok = "{\"runs\": [{\"name\": \"V\", \"chip\": \"H100\", \"chips\": 8, \"model\": \"d12\", "
                     "\"seq\": 1024, \"layout\": {\"zero\": 0, \"tp\": 2}, \"mfu\": 0.4, \"sources\": {\"chips\": "
                     "\"a\", \"model\": \"b\", \"seq\": \"c\", \"mfu\": \"d\", \"layout\": \"e\"}}]}";
    CHECK_OK(lmc_plan_runs_parse(&cat, ok, strlen(ok), "e.json", &r));
    CHECK(r.n == 1 && r.runs[0].fix.zero == 0 && r.runs[0].fix.tp == 2 && r.runs[0].fix.pp == 0);
    lmc_plan_runs_free(&r);
}

static void test_slip(void)
{
    lmc_plan_fleet f;
    const char *bad = "{\"pools\": [{\"chip\": \"910B\", \"count\": 64, \"slip_days\": 30}]}";
    CHECK(lmc_plan_fleet_parse_json(&cat, bad, strlen(bad), "fleet.json", 0, &f) != LMC_OK);
    CHECK_MSG(strstr(lmc_errmsg(), "fleet.json: pools[0]") && strstr(lmc_errmsg(), "slip_days = 30 without an "
              "'arrives' date"), "%s", lmc_errmsg());
    const char *ok = "{\"pools\": [{\"chip\": \"910B\", \"count\": 64, \"arrives\": \"2030-01-01\", \"slip_days\": 30}]}";
    CHECK_OK(lmc_plan_fleet_parse_json(&cat, ok, strlen(ok), "fleet.json", 0, &f));
    CHECK(f.n == 1 && f.pools[0].slip_days == 30);
    lmc_plan_fleet_free(&f);
}

/* One pool, no deliveries: the expected time is the best case over the
 * factor and the effective-time fraction; a late delivery moves only the
 * far end of the range. */
static void test_outlook(void)
{
    lmc_plan_job job;
    lmc_plan_job_defaults(&job);
    CHECK_OK(lmc_plan_model_load("d24", &job.model));
    job.seq = 1024, job.global_batch = 512;
    lmc_plan_fix fx;
    lmc_plan_fix_none(&fx);
    lmc_plan_fleet f;
    lmc_plan_effs effs;
    lmc_plan_reliab rl = {0};
    lmc_plan_reliab_defaults(&runs, &rl);
    CHECK_OK(lmc_plan_effs_make(&cat, &runs, &rl, &effs));
    CHECK_OK(lmc_plan_fleet_load(&cat, "64xH100", 0, &f));
    lmc_plan_timeline best;
    lmc_plan_outlook o;
    CHECK_OK(lmc_plan_timeline_run(&job, &f, &fx, 30e9, 0, 0.5, &best));
    CHECK_OK(lmc_plan_outlook_run(&job, &f, &fx, 30e9, 0, 0.5, &effs, NULL, &rl, &o));
    double ck = 0, tau = 0;
    double eff = lmc_plan_effective(&rl, (double)best.seg[0].plan.chips_used, o.params, &ck, &tau);
    CHECK(close_rel(o.expected.hours, best.hours / (o.eff.expected * eff), 1e-9));
    CHECK(o.fast.hours <= o.expected.hours && o.expected.hours <= o.slow.hours);
    lmc_plan_outlook_free(&o);
    lmc_plan_timeline_free(&best);
    lmc_plan_fleet_free(&f);
    const char *late = "{\"pools\": [{\"chip\": \"H100\", \"count\": 8}, {\"chip\": \"H100\", \"count\": 56, "
                       "\"arrives\": \"1970-01-03\", \"slip_days\": 20}]}";
    lmc_plan_outlook s, n;
    CHECK_OK(lmc_plan_fleet_parse_json(&cat, late, strlen(late), "late.json", 0, &f));
    CHECK_OK(lmc_plan_outlook_run(&job, &f, &fx, 1e12, 0, 0.5, &effs, NULL, &rl, &s));
    f.pools[1].slip_days = 0;
    CHECK_OK(lmc_plan_outlook_run(&job, &f, &fx, 1e12, 0, 0.5, &effs, NULL, &rl, &n));
    CHECK_MSG(s.slipped && !n.slipped && s.slow.hours > n.slow.hours + 24 && close_rel(s.expected.hours, n.expected.hours, 1e-12), "slow %g / %g h, expected %g / %g", s.slow.hours, n.slow.hours, s.expected.hours, n.expected.hours);
    lmc_plan_outlook_free(&s);
    lmc_plan_outlook_free(&n);
    lmc_plan_fleet_free(&f);
}

int main(void)
{
    CHECK_OK(lmc_plan_catalog_load_default(&cat));
    CHECK_OK(lmc_plan_runs_load(&cat, NULL, &runs));
    RUN(test_catalogue);
    RUN(test_published_mfu);
    RUN(test_reliability);
    RUN(test_launch_log);
    RUN(test_factors);
    RUN(test_bad_runs);
    RUN(test_slip);
    RUN(test_outlook);
    lmc_plan_runs_free(&runs);
    lmc_plan_catalog_free(&cat);
    return test_summary();
}
