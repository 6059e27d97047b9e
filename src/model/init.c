/* init.c: deterministic initialisation of the parameters, whole or a range. */
#include "lmc/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void fill_normal(float *p, size_t n, float std, uint64_t seed)
{
    lmc_rng r;
    lmc_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        p[i] = std * lmc_rng_normal(&r);
}

/* The projections into the residual stream: attention and MLP output,
 * the experts' down projections included. */
static int is_resid_proj(int k) { return k == LMC_T_ATTN_W || k == LMC_T_PROJ_W || k == LMC_T_EXP_PROJ_W; }

/* One tensor's initial values into p (rows x cols, zeroed by the caller). */
static void init_tensor(const lmc_model_config *cfg, const lmc_tensor_slot *s, int layer, int k, float *p,
                        uint64_t seed)
{
    float resid_std = 0.02f / sqrtf(2.0f * cfg->n_layer);
    size_t rows = s->rows;
    if (layer < 0 && (k == LMC_T_WTE || k == LMC_T_HEAD))
        rows = (size_t)cfg->vocab; /* padded rows stay zero */
    uint64_t ts = lmc_hash64(seed ^ lmc_hash64((uint64_t)(layer + 1) * 64 + (uint64_t)k));
    int is_norm_w = layer < 0 ? k == LMC_T_NORMF_W : (k == LMC_T_LN1_W || k == LMC_T_LN2_W);
    if (is_norm_w)
        for (size_t i = 0; i < rows; i++)
            p[i] = 1.0f;
    else if (s->cols > 1)
        fill_normal(p, rows * s->cols, layer >= 0 && is_resid_proj(k) ? resid_std : 0.02f, ts);
}

lmc_status lmc_weights_init_range(const lmc_model_config *cfg, const lmc_layout *l, size_t begin, size_t end,
                                  float *dst, uint64_t seed)
{
    memset(dst, 0, (end - begin) * sizeof(float));
    for (int layer = -1; layer < cfg->n_layer; layer++) {
        int kinds = layer < 0 ? LMC_T_GLOBAL_COUNT : LMC_T_LAYER_COUNT;
        for (int k = 0; k < kinds; k++) {
            const lmc_tensor_slot *s = lmc_layout_slot(l, layer, k);
            if (s->offset == LMC_ABSENT || (layer < 0 && k == LMC_T_HEAD && cfg->tied))
                continue;
            size_t n = s->rows * s->cols, lo = s->offset > begin ? s->offset : begin;
            size_t hi = s->offset + n < end ? s->offset + n : end;
            if (hi <= lo)
                continue;
            int whole = lo == s->offset && hi == s->offset + n;
            float *t = whole ? dst + (lo - begin) : calloc(n, sizeof(float)); /* a tensor cut by the range */
            if (!t)
                return lmc_err(LMC_ENOMEM, "out of memory initialising the weights");
            init_tensor(cfg, s, layer, k, t, seed);
            if (!whole) {
                memcpy(dst + (lo - begin), t + (lo - s->offset), (hi - lo) * sizeof(float));
                free(t);
            }
        }
    }
    return LMC_OK;
}

/* The whole buffer is one range whose tensors are all whole, filled in
 * place: it cannot fail. */
void lmc_weights_init(const lmc_model_config *cfg, const lmc_layout *l, float *params, uint64_t seed)
{
    (void)lmc_weights_init_range(cfg, l, 0, l->total, params, seed);
}
