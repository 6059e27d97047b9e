/* init.c: deterministic initialisation of the parameters, whole or a range. */
#include "lmc/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The projections into the residual stream: attention and MLP output,
 * the experts' down projections included. */
static int is_resid_proj(int k) { return k == LMC_T_ATTN_W || k == LMC_T_PROJ_W || k == LMC_T_EXP_PROJ_W; }

/* One tensor's values where map m's runs meet it (its offsets in layout l),
 * into dst (zeroed by the caller). The tensor's random stream is drawn in
 * order up to its last run; the normals before a run are skipped by their
 * two 64-bit draws (lmc_rng_normal's), without the log and cos. */
static void init_tensor(const lmc_model_config *cfg, const lmc_tensor_slot *s, int layer, int k,
                        const lmc_part_map *m, float *dst, uint64_t seed)
{
    float resid_std = 0.02f / sqrtf(2.0f * cfg->n_layer), std = layer >= 0 && is_resid_proj(k) ? resid_std : 0.02f;
    size_t rows = s->rows;
    if (layer < 0 && (k == LMC_T_WTE || k == LMC_T_HEAD))
        rows = (size_t)cfg->vocab; /* padded rows stay zero */
    uint64_t ts = lmc_hash64(seed ^ lmc_hash64((uint64_t)(layer + 1) * 64 + (uint64_t)k));
    int is_norm_w = layer < 0 ? k == LMC_T_NORMF_W : (k == LMC_T_LN1_W || k == LMC_T_LN2_W);
    size_t n = is_norm_w ? rows : s->cols > 1 ? rows * s->cols : 0, drawn = 0; /* biases stay zero */
    lmc_rng r;
    lmc_rng_seed(&r, ts);
    for (size_t i = lmc_part_map_find(m, s->offset); i < m->n && m->r[i].whole < s->offset + n; i++) {
        size_t a = m->r[i].whole > s->offset ? m->r[i].whole - s->offset : 0;
        size_t b = m->r[i].whole + m->r[i].n - s->offset < n ? m->r[i].whole + m->r[i].n - s->offset : n;
        float *p = dst + m->r[i].at + (s->offset + a - m->r[i].whole);
        for (; !is_norm_w && drawn < a; drawn++) /* a normal is two 64-bit draws (util.c's lmc_rng_normal) */
            (void)lmc_rng_u64(&r), (void)lmc_rng_u64(&r);
        for (size_t j = a; j < b; j++, drawn++)
            p[j - a] = is_norm_w ? 1.0f : std * lmc_rng_normal(&r);
    }
}

void lmc_weights_init_part(const lmc_model_config *cfg, const lmc_layout *l, const lmc_part_map *m, float *dst,
                           uint64_t seed)
{
    memset(dst, 0, m->floats * sizeof(float));
    for (int layer = -1; layer < cfg->n_layer; layer++) {
        int kinds = layer < 0 ? LMC_T_GLOBAL_COUNT : LMC_T_LAYER_COUNT;
        for (int k = 0; k < kinds; k++) {
            const lmc_tensor_slot *s = lmc_layout_slot(l, layer, k);
            if (s->offset == LMC_ABSENT || (layer < 0 && k == LMC_T_HEAD && cfg->tied))
                continue;
            if (lmc_part_map_meets(m, s->offset, s->offset + s->rows * s->cols))
                init_tensor(cfg, s, layer, k, m, dst, seed);
        }
    }
}

lmc_status lmc_weights_init_range(const lmc_model_config *cfg, const lmc_layout *l, size_t begin, size_t end,
                                  float *dst, uint64_t seed)
{
    lmc_part_run run;
    lmc_part_map m = lmc_part_map_range(&run, begin, end);
    lmc_weights_init_part(cfg, l, &m, dst, seed);
    return LMC_OK;
}

/* The whole buffer is one range whose tensors are all whole, filled in
 * place: it cannot fail. */
void lmc_weights_init(const lmc_model_config *cfg, const lmc_layout *l, float *params, uint64_t seed)
{
    (void)lmc_weights_init_range(cfg, l, 0, l->total, params, seed);
}
