/* test_plan_moe.c: the planner on a mixture of experts (src/plan/moe.c),
 * against counts worked out by hand for the moe-8x preset: 8 layers of
 * dim 512, 8 heads (8 kv), 8 experts of width 704, top 2, GPT-2's 50257
 * tokens, tied head, RMSNorm.
 *   per layer: attention 4 x 512^2 = 1,048,576; router 8 x 512 = 4,096;
 *   experts 8 x 3 x 512 x 704 = 8,650,752 (2 of them: 2,162,688); norms
 *   2 x 512 = 1,024; embedding 50257 x 512 = 25,731,584; final norm 512.
 *   total = 8 x 9,704,448 + 25,731,584 + 512 = 103,367,680
 *   active = 8 x 3,216,384 + 25,731,584 + 512 = 51,463,168
 *   FLOPs per token = 6 x (25,731,584 + 8 x 3,215,360) + 12 x 8 x 512 x 1024
 *                   = 359,058,432 (the active matmul weights, not the total)
 *   all-to-all per micro-batch of 8 x 1024 tokens at bf16, --ep 4: 8 layers
 *   x 4 transfers (dispatch, combine; both again backward) x 16,384 rows x
 *   512 x 2 bytes x 3/4 leaving the rank = 402,653,184 bytes. */
#include "plan/internal.h"
#include "test.h"

#include <math.h>

static int close_rel(double a, double b, double tol) { return fabs(a - b) <= tol * fabs(b); }

static void job(lmc_plan_job *j, int ep)
{
    lmc_plan_job_defaults(j);
    CHECK_OK(lmc_plan_model_load("moe-8x", &j->model));
    j->seq = 1024, j->global_batch = 256, j->ep = ep;
}

static void test_counts(void)
{
    lmc_plan_job j;
    job(&j, 1);
    CHECK(lmc_config_num_params(&j.model) == 103367680.0);
    CHECK(lmc_plan_active_params(&j.model) == 51463168.0);
    CHECK(lmc_plan_expert_params(&j.model) == 8.0 * 8650752);
    CHECK(lmc_config_train_flops_per_token(&j.model, 1024) == 359058432.0);
    CHECK(lmc_plan_ffn_active(&j.model) == 2 * 704.0);
    /* dense first layers and shared experts: 2 dense layers of ffn 1000, 6
     * with top 2 + 1 shared of 704 */
    lmc_model_config c = j.model;
    c.first_dense = 2, c.n_shared = 1, c.ffn_dim = 1000;
    CHECK(close_rel(lmc_plan_ffn_active(&c), (2 * 1000.0 + 6 * 3 * 704.0) / 8, 1e-12));
    CHECK(lmc_plan_expert_params(&c) == 6.0 * 8650752);
}

static void test_a2a(void)
{
    lmc_plan_job j;
    job(&j, 1);
    CHECK(lmc_plan_a2a_bytes(&j, 8, LMC_RECOMPUTE_NONE) == 0); /* every rank holds every expert */
    j.ep = 4;
    CHECK(lmc_plan_a2a_bytes(&j, 8, LMC_RECOMPUTE_NONE) == 402653184.0);
    CHECK(lmc_plan_a2a_bytes(&j, 8, LMC_RECOMPUTE_FULL) == 402653184.0 * 6 / 4); /* forward again */
    j.ep = 2, j.bf16 = 0; /* half the rows leave; fp32 doubles the bytes */
    CHECK(lmc_plan_a2a_bytes(&j, 8, LMC_RECOMPUTE_NONE) == 402653184.0 / 0.75 * 0.5 * 2);
}

/* Memory from all the parameters, each rank holding E / ep of the
 * experts; compute from the active ones; the all-to-all in the step. */
static void test_layout(void)
{
    lmc_plan_catalog c;
    CHECK_OK(lmc_plan_catalog_load_default(&c));
    const lmc_plan_chip *h100 = lmc_plan_catalog_find(&c, "H100");
    CHECK(h100 != NULL);
    if (!h100)
        return;
    lmc_plan_layout l = {.dp = 8, .tp = 1, .pp = 1, .vpp = 1, .micro_batch = 8, .zero = 0};
    lmc_plan_job j1, j4;
    job(&j1, 1);
    job(&j4, 4);
    lmc_plan_mem m1, m4;
    lmc_plan_memory(&j1, h100, &l, 4, &m1);
    lmc_plan_memory(&j4, h100, &l, 4, &m4);
    double P = 103367680.0, X = 8.0 * 8650752;
    CHECK_MSG(close_rel(m1.weights, P * 2, 1e-12), "%g", m1.weights);            /* bf16 weights */
    CHECK_MSG(close_rel(m4.weights, (P - X * 3 / 4) * 2, 1e-12), "%g", m4.weights); /* 2 of 8 experts */
    CHECK(close_rel(m4.optim, (P - X * 3 / 4) * 12, 1e-12));
    lmc_plan_mb_time t1, t4;
    lmc_plan_microbatch_time(&j1, h100, &l, &t1);
    lmc_plan_microbatch_time(&j4, h100, &l, &t4);
    CHECK(t1.ep_comm == 0 && t4.ep_comm > 0);
    /* the same rows in all (E / ep experts, ep times the rows each): no more compute */
    CHECK(t4.compute <= t1.compute * (1 + 1e-12) && close_rel(t4.total, t4.compute + t4.memory + t4.ep_comm, 1e-12));
    /* the 8 ranks of one node: NVLink carries the bytes, plus a latency per exchange */
    double want = 402653184.0 / (h100->intra_node_gbs * 1e9) + 8 * 4 * 3 * h100->intra_latency_us * 1e-6;
    CHECK_MSG(close_rel(t4.ep_comm, want, 1e-9), "%g vs %g", t4.ep_comm, want);
    /* --ep must divide the data-parallel ranks */
    lmc_plan_layout odd = l;
    odd.dp = 6;
    CHECK(!lmc_plan_memory(&j4, h100, &odd, 4, &m4));
    char why[128];
    CHECK(!lmc_plan_trainer_runs(&j4, &odd, 4, why, sizeof why) && strstr(why, "--ep 4"));
    lmc_plan_catalog_free(&c);
}

int main(void)
{
    RUN(test_counts);
    RUN(test_a2a);
    RUN(test_layout);
    return test_summary();
}
