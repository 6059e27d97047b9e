/* test_gradcheck.c: finite-difference gradient checks on tiny models (both
 * families), independent of any reference implementation: for the
 * parameters with the largest analytic gradient in every tensor, and a few
 * random ones, (L(p+h) - L(p-h)) / 2h must match the backward pass. For a
 * mixture of experts L includes aux_coef times the load-balancing loss
 * (piecewise smooth: no token's routing flips within h here).
 * In fp32 with h = 1e-3 the loss rounding (~1e-7 of L) contributes ~2e-4
 * absolute error, so the bound is 3% relative + 5e-4 absolute. */
#include "backend/backend.h"
#include "model/model.h"
#include "test.h"

static float loss_at(lmc_model *m, int B, int T)
{
    lmc_model_forward(m, B, T, LMC_FWD_LOSS, 0);
    return lmc_model_mean_loss(m, B, T) + m->cfg.aux_coef * lmc_model_aux_loss(m);
}

static void check_param(lmc_model *m, float *params, const float *grads, size_t idx, int B, int T, const char *what)
{
    const float h = 1e-3f;
    float keep = params[idx];
    params[idx] = keep + h;
    float lp = loss_at(m, B, T);
    params[idx] = keep - h;
    float lm = loss_at(m, B, T);
    params[idx] = keep;
    double fd = ((double)lp - lm) / (2.0 * h), g = grads[idx];
    CHECK_MSG(fabs(fd - g) <= 0.03 * fabs(g) + 5e-4, "%s[%zu]: finite difference %.6g vs backward %.6g", what,
              idx - 0, fd, g);
}

/* moe: 0 dense; 1 softmax router, a shared expert, a dense first layer; 2 sigmoid router */
static void gradcheck(const char *preset, int rope_family, int moe)
{
    lmc_backend *be;
    CHECK_OK(lmc_cpu_backend_open(1, "auto", &be));
    lmc_model_config c;
    CHECK_OK(lmc_config_preset(preset, &c));
    c.n_layer = 2, c.dim = 16, c.n_head = 4, c.n_kv_head = rope_family ? 2 : 4, c.ffn_dim = rope_family ? 24 : 64;
    c.vocab = 23, c.max_seq = 8;
    if (moe) {
        c.n_expert = 4, c.top_k = 2, c.moe_ffn = 12, c.aux_coef = 0.1f;
        c.router = moe == 2 ? LMC_ROUTER_SIGMOID : LMC_ROUTER_SOFTMAX;
        c.n_shared = moe == 1, c.first_dense = moe == 1, c.n_layer = moe == 1 ? 3 : 2;
    }
    CHECK_OK(lmc_config_finish(&c));
    int B = 2, T = 7;
    lmc_model *m;
    CHECK_OK(lmc_model_open(&m, &c, be, B, T, 1));
    float *p = m->params; /* CPU backend: device memory is host memory */
    lmc_weights_init(&c, &m->layout, p, 7);
    for (size_t i = 0; i < m->layout.total; i++)
        p[i] *= 5.0f; /* larger weights: gradients well above the noise floor */
    int tok[14], tg[14];
    for (int i = 0; i < B * T; i++)
        tok[i] = (i * 7 + 3) % c.vocab, tg[i] = (i * 5 + 1) % c.vocab;
    CHECK_OK(lmc_model_set_batch(m, tok, tg, B, T, "gradcheck"));
    lmc_model_zero_grads(m);
    lmc_model_forward(m, B, T, LMC_FWD_TRAIN, 1.0f / (B * T));
    lmc_model_backward(m, B, T);
    float *g = malloc(m->layout.total * sizeof(float));
    memcpy(g, m->grads, m->layout.total * sizeof(float));
    int checked = 0;
    for (int layer = -1; layer < c.n_layer; layer++) {
        int kinds = layer < 0 ? LMC_T_GLOBAL_COUNT : LMC_T_LAYER_COUNT;
        for (int k = 0; k < kinds; k++) {
            const lmc_tensor_slot *s = lmc_layout_slot(&m->layout, layer, k);
            if (s->offset == LMC_ABSENT)
                continue;
            size_t n = s->rows * s->cols, best = s->offset;
            if (layer < 0 && (k == LMC_T_WTE || k == LMC_T_HEAD))
                n = (size_t)c.vocab * s->cols;
            for (size_t i = 0; i < n; i++)
                if (fabsf(g[s->offset + i]) > fabsf(g[best]))
                    best = s->offset + i;
            char what[64];
            lmc_layout_slot_name(layer, k, what, sizeof what);
            check_param(m, p, g, best, B, T, what);
            check_param(m, p, g, s->offset + (n * 7 / 13), B, T, what);
            checked += 2;
        }
    }
    CHECK(checked >= 20);
    free(g);
    lmc_model_close(m);
    lmc_backend_close(be);
}

static void test_gradcheck_gpt2(void) { gradcheck("d6", 0, 0); }
static void test_gradcheck_llama(void) { gradcheck("llama-15m", 1, 0); }
static void test_gradcheck_moe(void) { gradcheck("moe-8x", 1, 1); }
static void test_gradcheck_moe_sigmoid(void) { gradcheck("moe-8x", 1, 2); }

int main(void)
{
    RUN(test_gradcheck_gpt2);
    RUN(test_gradcheck_llama);
    RUN(test_gradcheck_moe);
    RUN(test_gradcheck_moe_sigmoid);
    return test_summary();
}
