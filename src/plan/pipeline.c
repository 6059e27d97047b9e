/* pipeline.c: what the planner assumes about pipelines, taken from what
 * lmc train does (src/train/pipeline.c): the same cut of the layers into
 * stages (lmc_pipeline_cut, balanced by cost), the same warm-up counts of
 * the 1F1B and interleaved schedules (so the same activation sets held per
 * rank), and the bubble those schedules leave. */
#include "internal.h"

#include <string.h>

lmc_status lmc_plan_cut_make(const lmc_plan_job *job, int pp, int vpp, lmc_plan_cut *cut)
{
    const lmc_model_config *c = &job->model;
    pp = pp > 1 ? pp : 1;
    vpp = pp > 1 && vpp > 1 ? vpp : 1; /* one stage has nothing to interleave */
    cut->pp = pp, cut->vpp = vpp;
    long long n = (long long)pp * vpp;
    if (n > c->n_layer || n > LMC_PLAN_MAX_VSTAGES)
        return lmc_err(LMC_EINVAL, "pp %d x vpp %d = %lld virtual stages for %d layers (each stage holds at least "
                       "one layer; at most %d stages)", pp, vpp, n, c->n_layer, LMC_PLAN_MAX_VSTAGES);
    if (n == 1) {
        cut->begin[0] = 0, cut->begin[1] = c->n_layer;
        return LMC_OK;
    }
    return lmc_pipeline_cut(c, job->seq, (int)n, NULL, cut->begin);
}

void lmc_plan_cut_bounds(const lmc_plan_cut *cut, int rank, int *bounds)
{
    for (int k = 0; k < cut->vpp; k++) {
        bounds[2 * k] = cut->begin[k * cut->pp + rank];
        bounds[2 * k + 1] = cut->begin[k * cut->pp + rank + 1];
    }
}

void lmc_plan_cut_stage(const lmc_plan_cut *cut, int rank, lmc_plan_stage *st)
{
    memset(st, 0, sizeof *st);
    for (int k = 0; k < cut->vpp; k++) {
        int s = k * cut->pp + rank, n = cut->begin[s + 1] - cut->begin[s];
        st->layers += n;
        st->max_chunk = n > st->max_chunk ? n : st->max_chunk;
    }
    st->first = rank == 0;
    st->last = rank == cut->pp - 1; /* the last virtual stage, (vpp-1) pp + pp-1, is on the last rank */
}

/* ---------- parameters per stage ---------- */

static double emb_params(const lmc_model_config *c)
{
    double pos = c->pos == LMC_POS_LEARNED ? (double)c->max_seq * c->dim : 0;
    return (double)c->vocab * c->dim * (c->tied ? 1 : 2) + pos;
}

double lmc_plan_layer_params(const lmc_model_config *c)
{
    return (lmc_config_num_params(c) - emb_params(c)) / c->n_layer;
}

double lmc_plan_stage_params(const lmc_model_config *c, const lmc_plan_cut *cut, int rank)
{
    if (cut->pp <= 1)
        return lmc_config_num_params(c);
    lmc_plan_stage st;
    lmc_plan_cut_stage(cut, rank, &st);
    double pos = c->pos == LMC_POS_LEARNED ? (double)c->max_seq * c->dim : 0;
    /* the first stage embeds; the last holds the head (a copy of wte when tied) */
    return st.layers * lmc_plan_layer_params(c) + (st.first ? (double)c->vocab * c->dim + pos : 0) +
           (st.last ? (double)c->vocab * c->dim : 0);
}

double lmc_plan_max_stage_params(const lmc_model_config *c, const lmc_plan_cut *cut)
{
    double most = 0;
    for (int r = 0; r < cut->pp; r++) {
        double p = lmc_plan_stage_params(c, cut, r);
        most = p > most ? p : most;
    }
    return most;
}

/* ---------- the schedule ---------- */

int lmc_plan_act_sets(int pp, int vpp, int rank, long long cap)
{
    if (pp <= 1)
        return 1;
    /* Megatron-LM's warm-up forwards, as src/train/pipeline.c counts them */
    long long w = vpp <= 1 ? pp - rank - 1 : 2LL * (pp - rank - 1) + (long long)(vpp - 1) * pp;
    long long sets = w + 1 < cap ? w + 1 : cap;
    return (int)(sets > 1 ? sets : 1);
}

double lmc_plan_bubble_fraction(int pp, int vpp, long long microbatches)
{
    if (pp <= 1 || microbatches < 1)
        return 0;
    double v = vpp > 1 ? vpp : 1;
    return (pp - 1.0) / (v * microbatches + pp - 1.0);
}
