/* moe.c: what the cost model needs to know about a mixture of experts.
 * FLOPs come from the active parameters (the router, top_k routed experts
 * and the shared ones per token: lmc_config_matmul_params), memory from
 * all of them (lmc_config_num_params), the routed experts divided over the
 * ep ranks of an expert-parallel group (lmc train --ep: consecutive
 * data-parallel ranks, each holding E / ep experts). Tokens reach their
 * experts' ranks and come back by all-to-all: per mixture-of-experts layer
 * and micro-batch, forward a dispatch and a combine of the N top_k rows of
 * C values, backward their gradients the same way; with uniform routing
 * (ep - 1) / ep of the rows leave the rank (docs/planner.md). */
#include "internal.h"

static int moe_layers(const lmc_model_config *c) { return c->n_expert > 0 ? c->n_layer - c->first_dense : 0; }

double lmc_plan_expert_params(const lmc_model_config *c)
{
    return (double)moe_layers(c) * c->n_expert * 3.0 * c->dim * c->moe_ffn;
}

double lmc_plan_active_params(const lmc_model_config *c)
{
    double idle = (double)moe_layers(c) * (c->n_expert - c->top_k) * 3.0 * c->dim * c->moe_ffn;
    return lmc_config_num_params(c) - idle;
}

double lmc_plan_ffn_active(const lmc_model_config *c)
{
    if (c->n_expert <= 0)
        return c->ffn_dim;
    double moe = (double)c->top_k * c->moe_ffn + (double)c->n_shared * c->moe_ffn;
    return (c->first_dense * (double)c->ffn_dim + moe_layers(c) * moe) / c->n_layer;
}

double lmc_plan_stage_expert_params(const lmc_model_config *c, const lmc_plan_cut *cut, int rank)
{
    if (c->n_expert <= 0)
        return 0;
    int b[2 * LMC_PLAN_MAX_VSTAGES], n = 0;
    lmc_plan_cut_bounds(cut, rank, b);
    for (int k = 0; k < cut->vpp; k++)
        for (int l = b[2 * k]; l < b[2 * k + 1]; l++)
            n += lmc_config_is_moe(c, l);
    return (double)n * c->n_expert * 3.0 * c->dim * c->moe_ffn;
}

double lmc_plan_a2a_bytes(const lmc_plan_job *job, int micro_batch, lmc_plan_recompute rc)
{
    const lmc_model_config *c = &job->model;
    int ep = job->ep > 1 ? job->ep : 1;
    if (c->n_expert <= 0 || ep <= 1)
        return 0;
    double rows = (double)micro_batch * job->seq * c->top_k, e = job->bf16 ? 2 : 4;
    double transfers = rc == LMC_RECOMPUTE_FULL ? 6 : 4; /* a full recompute dispatches and combines again */
    return moe_layers(c) * transfers * rows * c->dim * e * (ep - 1.0) / ep;
}

double lmc_plan_mlp_fwd_s(const lmc_plan_job *job, const lmc_plan_chip *chip, double n, int tp)
{
    const lmc_model_config *c = &job->model;
    int bf = job->bf16, swiglu = c->mlp == LMC_MLP_SWIGLU;
    double h = c->dim, f = c->ffn_dim, t = tp > 0 ? tp : 1;
    double dense = lmc_plan_gemm_s(chip, bf, n, (swiglu ? 2 : 1) * f / t, h) + lmc_plan_gemm_s(chip, bf, n, h, f / t);
    if (c->n_expert <= 0)
        return dense;
    /* each rank runs E / ep experts over the rows of ep ranks: n top_k rows
     * in all, n top_k ep / E per expert when routing is balanced */
    double E = c->n_expert, ep = job->ep > 1 ? job->ep : 1, F = c->moe_ffn, S = (double)c->n_shared * F;
    double rows = n * c->top_k * ep / E;
    double moe = lmc_plan_gemm_s(chip, bf, n, E, h) +
                 E / ep * (lmc_plan_gemm_s(chip, bf, rows, 2 * F, h) + lmc_plan_gemm_s(chip, bf, rows, h, F));
    if (S > 0)
        moe += lmc_plan_gemm_s(chip, bf, n, 2 * S, h) + lmc_plan_gemm_s(chip, bf, n, h, S);
    return (c->first_dense * dense + moe_layers(c) * moe) / c->n_layer;
}

double lmc_plan_a2a_s(const lmc_plan_job *job, const lmc_plan_chip *chip, int cpn, const lmc_plan_layout *l)
{
    double bytes = lmc_plan_a2a_bytes(job, l->micro_batch, l->recompute);
    if (bytes <= 0)
        return 0;
    /* an expert group's ep data-parallel ranks sit tp x pp chips apart */
    int ep = job->ep, intra = (long long)l->tp * l->pp * ep <= cpn;
    double bw = (intra ? chip->intra_node_gbs : chip->network_gbs) * 1e9;
    double lat = intra ? lmc_plan_intra_lat_s(chip) : chip->latency_us * 1e-6;
    double calls = moe_layers(&job->model) * (l->recompute == LMC_RECOMPUTE_FULL ? 6.0 : 4.0);
    return bytes / bw + calls * (ep - 1) * lat;
}
