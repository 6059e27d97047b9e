/* test_moe_route.c: a mixture of experts' routing on the host (route.c):
 * ties go to the lower expert index, the weights are the chosen scores
 * renormalised, the rows come in expert order with increasing tokens and
 * each token's choices map to their rows; the config's expert fields. The
 * gradients are checked by test_gradcheck (finite differences) and the
 * PyTorch oracle (tests/oracle/test_moe_oracle.py). */
#include "model/moe.h"
#include "test.h"

static void route(lmc_route *r, const float *z, int N, int E, int k, lmc_router_kind kind)
{
    CHECK_OK(lmc_route_alloc(r, N, E, k));
    lmc_route_forward(r, z, N, E, k, kind);
}

static void test_ties_lower_index(void)
{
    float z[4][5] = {{0, 0, 0, 0, 0}, {1, 3, 3, 2, 3}, {5, 4, 5, 5, -1}, {-2, -2, 7, -2, 7}};
    int want[4][3] = {{0, 1, 2}, {1, 2, 4}, {0, 2, 3}, {2, 4, 0}};
    for (int kind = 0; kind < 2; kind++) {
        lmc_route r;
        route(&r, &z[0][0], 4, 5, 3, (lmc_router_kind)kind);
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 3; j++)
                CHECK_MSG(r.sel[i * 3 + j] == want[i][j], "%s router, token %d choice %d: expert %d, wanted %d",
                          kind ? "sigmoid" : "softmax", i, j, r.sel[i * 3 + j], want[i][j]);
        lmc_route_free(&r);
    }
}

static void test_rows_and_weights(void)
{
    enum { N = 37, E = 6, K = 2 };
    float z[N * E];
    for (int i = 0; i < N * E; i++)
        z[i] = (float)((i * 7919) % 101) / 17.0f;
    for (int kind = 0; kind < 2; kind++) {
        lmc_route r;
        route(&r, z, N, E, K, (lmc_router_kind)kind);
        CHECK(r.off[0] == 0 && r.off[E] == N * K);
        for (int e = 0; e < E; e++)
            for (int row = r.off[e]; row < r.off[e + 1]; row++) {
                CHECK(row == r.off[e] || r.tok[row] > r.tok[row - 1]); /* distinct, increasing */
                int i = r.tok[row], j = r.sel[i * K] == e ? 0 : 1;
                CHECK_MSG(r.sel[i * K + j] == e && r.row[i * K + j] == row, "row %d: token %d, expert %d", row, i, e);
            }
        for (int i = 0; i < N; i++) {
            const float *p = r.prob + i * E;
            float a = p[r.sel[i * K]], b = p[r.sel[i * K + 1]], wa = r.w[r.row[i * K]], wb = r.w[r.row[i * K + 1]];
            CHECK_MSG(a >= b && fabsf(wa - a / (a + b)) < 1e-6f && fabsf(wa + wb - 1) < 1e-6f,
                      "token %d: scores %g %g, weights %g %g", i, a, b, wa, wb);
            for (int e = 0; e < E; e++) /* nothing unchosen scores above the second choice */
                CHECK(e == r.sel[i * K] || e == r.sel[i * K + 1] || p[e] <= b);
        }
        lmc_route_free(&r);
    }
}

/* DeepSeek-V3's balancing bias chooses the experts and does not weigh
 * them: scores 0.9 0.8 0.1 0.2 with bias -1 on expert 0 and +1 on expert
 * 3 choose experts 3 and 1, weighted by their unbiased scores. */
static void test_bias_chooses_only(void)
{
    float z[4] = {0.9f, 0.8f, 0.1f, 0.2f}, bias[4] = {-1, 0, 0, 1};
    for (int i = 0; i < 4; i++) /* logits whose sigmoid is z */
        z[i] = logf(z[i] / (1 - z[i]));
    lmc_route r;
    CHECK_OK(lmc_route_alloc(&r, 1, 4, 2));
    r.bias = bias;
    lmc_route_forward(&r, z, 1, 4, 2, LMC_ROUTER_SIGMOID);
    CHECK_MSG(r.sel[0] == 3 && r.sel[1] == 1, "chose %d %d, wanted 3 1", r.sel[0], r.sel[1]);
    float w3 = r.w[r.row[0]], w1 = r.w[r.row[1]];
    CHECK_MSG(fabsf(w3 - 0.2f / 1.0f) < 1e-6f && fabsf(w1 - 0.8f / 1.0f) < 1e-6f, "weights %g %g", w3, w1);
    lmc_route_free(&r);
}

static void test_config_fields(void)
{
    lmc_model_config c;
    CHECK_OK(lmc_config_preset("moe-8x", &c));
    CHECK(c.n_expert == 8 && c.top_k == 2 && c.moe_ffn == 704 && c.vocab == 50257 && c.router == LMC_ROUTER_SOFTMAX);
    CHECK(lmc_config_is_moe(&c, 0) && fabs(lmc_config_num_params(&c) / 1e6 - 103.4) < 0.05);
    lmc_sb j;
    lmc_sb_init(&j);
    lmc_config_to_hf_json(&c, &j);
    lmc_model_config back;
    CHECK_OK(lmc_config_from_hf_text(j.s, j.len, "round trip", &back));
    CHECK(back.n_expert == 8 && back.top_k == 2 && back.moe_ffn == 704 && back.aux_coef == c.aux_coef &&
          back.first_dense == 0 && back.n_shared == 0 && back.ffn_dim == c.ffn_dim);
    lmc_sb_free(&j);
    c.top_k = 9;
    CHECK_ERR(lmc_config_finish(&c), LMC_EINVAL, "num_experts_per_tok = 9 must be in [1, num_local_experts = 8]");
    c.top_k = 2, c.first_dense = 8;
    CHECK_ERR(lmc_config_finish(&c), LMC_EINVAL, "first_k_dense_replace = 8 must be in [0, 7]");
    c.first_dense = 0, c.bias_step = 0.001f;
    lmc_sb_init(&j);
    lmc_config_to_hf_json(&c, &j);
    CHECK_OK(lmc_config_from_hf_text(j.s, j.len, "round trip", &back));
    CHECK(back.bias_step == 0.001f);
    lmc_sb_free(&j);
    c.bias_step = -1;
    CHECK_ERR(lmc_config_finish(&c), LMC_EINVAL, "moe_bias_step = -1 must be in [0, 1]");
    c.bias_step = 0;
    CHECK_ERR(lmc_config_check_tp(&c, 2), LMC_EUNSUPPORTED, "--tp 2: tensor parallelism of mixture-of-experts");
}

int main(void)
{
    RUN(test_ties_lower_index);
    RUN(test_rows_and_weights);
    RUN(test_bias_chooses_only);
    RUN(test_config_fields);
    return test_summary();
}
