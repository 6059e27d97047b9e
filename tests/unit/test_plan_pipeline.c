/* test_plan_pipeline.c: the planner's pipelines are lmc train's: the same
 * cut (lmc_pipeline_cut) in the step time, the bubble of its schedules,
 * the rules it checks before step 1, the command that runs a layout, and
 * on the cpu chip a search that proposes only layouts it runs. */
#include "lmc/plan.h"
#include "test.h"

static int close_rel(double a, double b, double tol) { return fabs(a - b) <= tol * fabs(b); }

static void d12_job(lmc_plan_job *j, int seq, long long batch)
{
    lmc_plan_job_defaults(j);
    CHECK_OK(lmc_plan_model_load("d12", &j->model));
    j->seq = seq;
    j->global_batch = batch;
}

/* The busiest stage of the trainer's cut sets the micro-batch time: with
 * x a layer's time and H the head's (from two one-stage models), a cut
 * whose first stage holds b layers takes max(b x, (L - b) x + H). */
static void test_step_uses_the_cut(void)
{
    lmc_plan_catalog cat;
    CHECK_OK(lmc_plan_catalog_load_default(&cat));
    const lmc_plan_chip *a100 = lmc_plan_catalog_find(&cat, "A100");
    lmc_plan_job j;
    d12_job(&j, 1024, 64);
    lmc_plan_layout one = {.dp = 1, .tp = 1, .pp = 1, .vpp = 1, .micro_batch = 4};
    lmc_plan_mb_time t12, t6, t;
    lmc_plan_microbatch_time(&j, a100, &one, &t12);
    j.model.n_layer = 6;
    lmc_plan_microbatch_time(&j, a100, &one, &t6);
    j.model.n_layer = 12;
    double x = (t12.total - t6.total) / 6, head = t12.total - 12 * x;
    CHECK(x > 0 && head > 0);
    for (int pp = 2; pp <= 4; pp++) {
        int begin[5];
        CHECK_OK(lmc_pipeline_cut(&j.model, j.seq, pp, NULL, begin));
        double want = 0;
        for (int s = 0; s < pp; s++)
            want = fmax(want, (begin[s + 1] - begin[s]) * x + (s == pp - 1 ? head : 0));
        lmc_plan_layout l = one;
        l.pp = pp;
        lmc_plan_microbatch_time(&j, a100, &l, &t);
        CHECK_MSG(close_rel(t.compute + t.memory, want, 1e-9), "pp %d: %g vs %g (cut %d %d ...)", pp,
                  t.compute + t.memory, want, begin[1], begin[2]);
    }
    lmc_plan_catalog_free(&cat);
}

/* The bubble is the schedule's: the planner's bubble term over the
 * pipeline's busy time is (p-1)/(m+p-1), (p-1)/(v m+p-1) interleaved. */
static void test_bubble_is_the_schedules(void)
{
    CHECK(close_rel(lmc_plan_bubble_fraction(2, 1, 8), 1.0 / 9, 1e-12));
    CHECK(close_rel(lmc_plan_bubble_fraction(4, 2, 8), 3.0 / 19, 1e-12));
    CHECK(lmc_plan_bubble_fraction(1, 1, 8) == 0);
    lmc_plan_catalog cat;
    CHECK_OK(lmc_plan_catalog_load_default(&cat));
    lmc_plan_job j;
    d12_job(&j, 1024, 64);
    lmc_plan_pool p = {.chip = *lmc_plan_catalog_find(&cat, "A100"), .count = 8, .chips_per_node = 8};
    long long n = 8;
    for (int v = 1; v <= 3; v++) {
        lmc_plan_layout l = {.tp = 1, .pp = 4, .vpp = v, .micro_batch = 4};
        lmc_plan_result r;
        lmc_plan_evaluate(&j, &p, &n, 1, &l, &r);
        int m = r.pool_mb[0];
        double busy = r.t_compute + r.t_memory + r.t_tp + r.t_pp + r.t_zero3;
        CHECK(r.fits && m == 8);
        CHECK_MSG(close_rel(r.t_bubble / (busy + r.t_bubble), lmc_plan_bubble_fraction(4, v, m), 1e-9),
                  "vpp %d: %g vs %g", v, r.t_bubble / (busy + r.t_bubble), lmc_plan_bubble_fraction(4, v, m));
    }
    lmc_plan_catalog_free(&cat);
}

static void test_trainer_rules(void)
{
    lmc_plan_job j;
    d12_job(&j, 128, 16);
    char why[200];
    lmc_plan_layout l = {.dp = 1, .tp = 1, .pp = 2, .vpp = 1, .micro_batch = 1};
    CHECK(lmc_plan_trainer_runs(&j, &l, 2, why, sizeof why));
    CHECK(!lmc_plan_trainer_runs(&j, &l, 1, why, sizeof why) && strstr(why, "smaller than --pp"));
    l.vpp = 2;
    CHECK(!lmc_plan_trainer_runs(&j, &l, 3, why, sizeof why) && strstr(why, "multiple of --pp"));
    CHECK(lmc_plan_trainer_runs(&j, &l, 4, why, sizeof why));
    l.vpp = 7;
    CHECK(!lmc_plan_trainer_runs(&j, &l, 14, why, sizeof why) && strstr(why, "more stages than"));
    l = (lmc_plan_layout){.dp = 1, .tp = 5, .pp = 1, .vpp = 1, .micro_batch = 1};
    CHECK(!lmc_plan_trainer_runs(&j, &l, 1, why, sizeof why) && strstr(why, "--tp 5 does not divide the heads"));
    l.tp = 2;
    CHECK(lmc_plan_trainer_runs(&j, &l, 1, why, sizeof why));
    l.zero = 3;
    CHECK(!lmc_plan_trainer_runs(&j, &l, 1, why, sizeof why) && strstr(why, "--zero 3"));
    l.dp = 2;
    CHECK(lmc_plan_trainer_runs(&j, &l, 1, why, sizeof why));
    /* sequence parallelism splits B x T rows over tp */
    j.seq = 3;
    CHECK(!lmc_plan_trainer_runs(&j, &l, 1, why, sizeof why) && strstr(why, "--sp"));
    j.seq_parallel = 0;
    CHECK(lmc_plan_trainer_runs(&j, &l, 1, why, sizeof why));
}

static void test_command(void)
{
    lmc_plan_job j;
    d12_job(&j, 128, 16);
    lmc_sb o;
    lmc_sb_init(&o);
    lmc_plan_layout l = {.dp = 2, .tp = 2, .pp = 2, .vpp = 2, .micro_batch = 1, .zero = 1,
                         .recompute = LMC_RECOMPUTE_FULL};
    lmc_plan_command(&j, "--model d12", &l, 4, &o);
    CHECK_MSG(!strcmp(o.s, "mpirun -np 8 lmc train --model d12 --seq 128 --batch 1 --grad-accum 4 --tp 2 --sp "
                           "--pp 2 --vpp 2 --zero 1 --recompute full --precision bf16"), "%s", o.s);
    o.len = 0;
    l = (lmc_plan_layout){.dp = 1, .tp = 1, .pp = 1, .vpp = 1, .micro_batch = 4};
    j.bf16 = 0;
    lmc_plan_command(&j, "--model d6 --layers 4", &l, 2, &o);
    CHECK_MSG(!strcmp(o.s, "lmc train --model d6 --layers 4 --seq 128 --batch 4 --grad-accum 2"), "%s", o.s);
    lmc_sb_free(&o);
}

/* On the cpu chip every proposed layout is one lmc train runs, with dp x
 * micro-batch x grad-accum the global batch; pipelines appear when asked. */
static void test_cpu_search_runs(void)
{
    lmc_plan_catalog cat;
    CHECK_OK(lmc_plan_catalog_load_default(&cat));
    lmc_plan_job j;
    d12_job(&j, 128, 8);
    j.model.n_layer = 4;
    lmc_plan_pool p = {.chip = *lmc_plan_catalog_find(&cat, "cpu"), .count = 4, .chips_per_node = 1};
    long long n = 4;
    lmc_plan_result best[32];
    lmc_plan_fix fx;
    char why[256];
    for (int pp = 0; pp <= 4; pp += 2) {
        for (int tp = 0; tp <= 2 && (pp < 4 || !tp); tp += 2) {
            lmc_plan_fix_none(&fx);
            fx.pp = pp, fx.tp = tp;
            int found = 0;
            CHECK_OK(lmc_plan_search(&j, &p, &n, 1, &fx, best, 32, &found, why));
            CHECK_MSG(found > 0, "pp %d tp %d: %s", pp, tp, why);
            for (int i = 0; i < found; i++) {
                const lmc_plan_layout *l = &best[i].layout;
                int bal = 0, acc = lmc_plan_result_accum(&j, &best[i], &bal);
                CHECK(lmc_plan_trainer_runs(&j, l, acc, why, sizeof why) && !bal);
                CHECK((long long)l->dp * l->micro_batch * acc == j.global_batch && best[i].mem.trainer);
                CHECK((!pp || l->pp == pp) && (!tp || l->tp == tp) && l->dp * l->tp * l->pp <= 4);
            }
        }
    }
    lmc_plan_catalog_free(&cat);
}

int main(void)
{
    RUN(test_step_uses_the_cut);
    RUN(test_bubble_is_the_schedules);
    RUN(test_trainer_rules);
    RUN(test_command);
    RUN(test_cpu_search_runs);
    return test_summary();
}
