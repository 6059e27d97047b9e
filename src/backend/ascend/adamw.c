/* adamw.c: torch's AdamW through aclnnApplyAdamW.
 *
 * The op takes its hyperparameters as [1] device tensors and the beta
 * powers of the previous step (it multiplies by beta itself):
 * beta1_power = (1 - bias_corr1) / beta1. They travel through a ring of
 * pinned host slots copied asynchronously (each call its own slot, so
 * calls with different weight decay can be queued together; the ring
 * waits for the stream when it wraps). The op has no gradient scale, so
 * the scaled gradient is made in scratch, a chunk at a time. */
#include "backend/ascend/npu.h"

#define CHUNK ((size_t)1 << 24) /* elements of scaled gradient per op */

/* the slot's device address: lr, wd, beta1, beta2, eps, beta1^(t-1), beta2^(t-1) */
static float *hyper(lmc_backend *be, const lmc_adamw_hp *hp)
{
    npu_state *s = npu_of(be);
    if (s->hp_next == NPU_HP_SLOTS) {
        if (!npu_drain(be, "adamw: hyperparameter ring"))
            return NULL;
        s->hp_next = 0;
    }
    int k = s->hp_next++;
    float *h = s->hp_host + 8 * k, *d = s->hp_dev + 8 * k;
    float v[8] = {hp->lr, hp->weight_decay, hp->beta1, hp->beta2, hp->eps, (1.0f - hp->bias_corr1) / hp->beta1,
                  (1.0f - hp->bias_corr2) / hp->beta2, 0};
    for (int i = 0; i < 8; i++)
        h[i] = v[i];
    if (!npu_ok(be, s->api->aclrtMemcpyAsync(d, 8 * sizeof(float), h, 8 * sizeof(float), NPU_MEMCPY_H2D, s->stream),
                "adamw: aclrtMemcpyAsync"))
        return NULL;
    return d;
}

static void chunk(lmc_backend *be, float *p, const float *g, float *m, float *v, size_t n, const float *h, float gs)
{
    float *sg = npu_tmp(be, n * sizeof(float));
    if (!sg)
        return;
    int64_t len = (int64_t)n;
    NPU_RUN(be, aclnnMuls, npu_f1(be, g, len), npu_scalar_f(be, gs), npu_f1(be, sg, len));
    NPU_RUN(be, aclnnApplyAdamW, npu_f1(be, p, len), npu_f1(be, m, len), npu_f1(be, v, len), npu_f1(be, h + 5, 1),
            npu_f1(be, h + 6, 1), npu_f1(be, h, 1), npu_f1(be, h + 1, 1), npu_f1(be, h + 2, 1), npu_f1(be, h + 3, 1),
            npu_f1(be, h + 4, 1), npu_f1(be, sg, len), NULL, false, false);
}

void npu_adamw(lmc_backend *be, float *p, const float *g, float *m, float *v, size_t n, const lmc_adamw_hp *hp)
{
    npu_enter(be, LMC_OP_adamw);
    if (!n)
        return;
    const float *h = hyper(be, hp);
    for (size_t at = 0; h && at < n && !npu_of(be)->bad; at += CHUNK) {
        size_t len = n - at < CHUNK ? n - at : CHUNK;
        npu_of(be)->chunk_used = 0; /* each chunk reuses the scratch (stream order) */
        chunk(be, p + at, g + at, m + at, v + at, len, h, hp->grad_scale);
    }
}
