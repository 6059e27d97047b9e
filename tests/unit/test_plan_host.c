/* test_plan_host.c: ranks of one job sharing this host (src/plan/host.c)
 * and what the cost model makes of them (src/plan/cost.c): the shares of
 * cores and memory worked out by hand, one rank unchanged, compute slowed
 * by the share, the gradient sum not hidden when every core computes, and
 * the measurement filling the per-rank bandwidth and the shared-memory link. */
#include "lmc/plan.h"
#include "plan/internal.h"
#include "test.h"

#include <math.h>
#include <string.h>

static void test_shares_by_hand(void)
{
    lmc_plan_chip c;
    memset(&c, 0, sizeof c);
    lmc_plan_chip_host_shares(&c, 1, 1, 2); /* one rank: all of it, nothing shared */
    CHECK(c.host_ranks == 1 && c.host_share == 1 && c.host_bw_share == 1 && !c.comm_on_cores && c.chips_per_node == 1 &&
          c.host_contention == 1);
    lmc_plan_chip_host_shares(&c, 1, 2, 2); /* 2 ranks x 1 thread on 2 cores: every core computes */
    CHECK(c.host_share == 1 && c.host_bw_share == 1 && c.comm_on_cores && c.chips_per_node == 2);
    lmc_plan_chip_host_shares(&c, 1, 2, 4); /* a core left over for the sums */
    CHECK(c.host_share == 1 && !c.comm_on_cores);
    lmc_plan_chip_host_shares(&c, 1, 4, 2); /* oversubscribed: they take turns */
    CHECK(c.host_share == 0.5 && c.host_bw_share == 0.5 && c.comm_on_cores && c.chips_per_node == 4);
    lmc_plan_chip_host_shares(&c, 2, 2, 2); /* 2 ranks x 2 threads on 2 cores: the peak was of 2 cores */
    CHECK(c.host_share == 0.5 && c.host_bw_share == 1);
    lmc_plan_chip_host_shares(&c, 0, 3, 2); /* threads 0: all cores each */
    CHECK(fabs(c.host_share - 1.0 / 3) < 1e-15 && fabs(c.host_bw_share - 2.0 / 3) < 1e-15);
    lmc_plan_chip_host_shares(&c, 8, 1, 2); /* more threads than cores on one rank: its measured peak says so */
    CHECK(c.host_share == 1 && !c.comm_on_cores);
}

static const lmc_plan_chip *cpu_chip(lmc_plan_catalog *cat)
{
    CHECK_OK(lmc_plan_catalog_load_default(cat));
    const lmc_plan_chip *c = lmc_plan_catalog_find(cat, "cpu");
    CHECK(c != NULL);
    return c;
}

static void test_cost_uses_shares(void)
{
    lmc_plan_catalog cat;
    lmc_plan_chip one = *cpu_chip(&cat), four = one;
    lmc_plan_chip_host_shares(&one, 1, 1, 2);
    lmc_plan_chip_host_shares(&four, 1, 4, 2);
    four.rank_bw_gbs = one.memory_bw_gbs / 2; /* each stream half as fast beside the others */
    /* a big GEMM is compute-bound: twice the time at half the share; a
     * skinny one is memory-bound: 4x at half the bandwidth for half the time */
    double big1 = lmc_plan_gemm_s(&one, 0, 4096, 4096, 4096), big4 = lmc_plan_gemm_s(&four, 0, 4096, 4096, 4096);
    CHECK_MSG(fabs(big4 / big1 - 2) < 1e-12, "compute-bound GEMM %g -> %g", big1, big4);
    lmc_plan_chip fast1 = one, fast4 = four; /* a peak so high that every GEMM waits on memory */
    fast1.fp32_tflops = fast4.fp32_tflops = 1e9;
    double thin1 = lmc_plan_gemm_s(&fast1, 0, 1, 8192, 8192), thin4 = lmc_plan_gemm_s(&fast4, 0, 1, 8192, 8192);
    CHECK_MSG(fabs(thin4 / thin1 - 4) < 1e-12, "memory-bound GEMM %g -> %g", thin1, thin4);
    CHECK(fabs(lmc_plan_peak(&four, 1) / lmc_plan_peak(&one, 1) - 0.5) < 1e-12);
    four.host_contention = 0.8; /* GEMMs at 80% of their speed alone beside the others */
    CHECK(fabs(lmc_plan_gemm_s(&four, 0, 4096, 4096, 4096) / big1 - 2 / 0.8) < 1e-12);
    CHECK(fabs(lmc_plan_peak(&four, 1) / lmc_plan_peak(&one, 1) - 0.4) < 1e-12);
    /* the gradient sum: hidden behind the last backward with a core to
     * spare, not when the sums run on the computing cores */
    lmc_plan_job job;
    lmc_plan_job_defaults(&job);
    CHECK_OK(lmc_plan_model_load("d6", &job.model));
    job.seq = 64;
    job.bf16 = 0;
    lmc_plan_layout l = {.dp = 2, .tp = 1, .pp = 1, .vpp = 1, .micro_batch = 4};
    lmc_plan_cut cut;
    CHECK_OK(lmc_plan_cut_make(&job, 1, 1, &cut));
    lmc_plan_chip spare = one, busy = one;
    lmc_plan_chip_host_shares(&spare, 1, 2, 4);
    lmc_plan_chip_host_shares(&busy, 1, 2, 2);
    spare.intra_node_gbs = busy.intra_node_gbs = 4;
    lmc_plan_mb_time mb;
    lmc_plan_microbatch_time_cut(&job, &busy, 2, &l, &cut, &mb);
    double whole = lmc_plan_collective_s(&busy, 2, 2, lmc_plan_max_stage_params(&job.model, &cut) * 4, 2, 1);
    double hidden = lmc_plan_dp_sync_s(&job, &spare, 2, &l, &cut, 0, &mb);
    double exposed = lmc_plan_dp_sync_s(&job, &busy, 2, &l, &cut, 0, &mb);
    CHECK_MSG(exposed == whole && hidden < exposed, "sync %g whole, %g with a spare core, %g on the busy cores",
              whole, hidden, exposed);
    /* 30.3M fp32 gradients over a 4 GB/s shared-memory sum: B / bw */
    CHECK_MSG(fabs(whole - lmc_plan_max_stage_params(&job.model, &cut) * 4 / 4e9) < 1e-3 * whole, "sync %g", whole);
    lmc_plan_catalog_free(&cat);
}

static void test_measure(void)
{
    lmc_plan_catalog cat;
    lmc_plan_chip c = *cpu_chip(&cat);
    double link = c.intra_node_gbs, hop = c.intra_latency_us;
    CHECK_OK(lmc_plan_chip_measure_host(&c, 1, 1)); /* one rank: nothing to measure */
    CHECK(c.rank_bw_gbs == 0 && c.intra_node_gbs == link && c.chips_per_node == 1);
    CHECK_OK(lmc_plan_chip_measure_host(&c, 1, 3));
    CHECK_MSG(c.rank_bw_gbs > 0.1 && c.intra_node_gbs > 0.05 && c.chips_per_node == 3 && c.host_ranks == 3 &&
                  c.host_contention > 0 && c.host_contention <= c.host_pace && c.host_pace <= 1,
              "3 ranks: %g GB/s each, shared-memory sums %g GB/s, GEMMs at %g, the slowest at %g of the average",
              c.rank_bw_gbs, c.intra_node_gbs, c.host_contention, c.host_pace);
    /* the wait for the partner at a collective is part of the hop */
    CHECK_MSG(hop == 3 && c.host_wait_us >= 0 && c.host_wait_us < 1e5 && c.intra_latency_us == hop + c.host_wait_us,
              "hop %g us, wait %g us, now %g us", hop, c.host_wait_us, c.intra_latency_us);
    lmc_plan_catalog_free(&cat);
}

int main(void)
{
    RUN(test_shares_by_hand);
    RUN(test_cost_uses_shares);
    RUN(test_measure);
    return test_summary();
}
