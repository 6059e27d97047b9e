/* search.c: layouts. A layout (tp, pp, vpp, micro-batch, ZeRO stage,
 * recomputation) is evaluated on every pool of chips at once: each pool
 * holds whole tp*pp replicas, and the global batch's micro-batches go to
 * replicas in proportion to their speed (unequal-rank balancing), so a
 * step takes as long as the slowest replica's share. The search keeps the
 * layouts with the most tokens per second that fit in memory. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lmc_plan_fix_none(lmc_plan_fix *fx)
{
    memset(fx, 0, sizeof *fx);
    fx->zero = -1;
    fx->recompute = -1;
}

const char *lmc_plan_recompute_name(lmc_plan_recompute rc)
{
    return rc == LMC_RECOMPUTE_FULL ? "full" : rc == LMC_RECOMPUTE_SELECTIVE ? "selective" : "none";
}

typedef struct {
    int dp[LMC_PLAN_MAX_POOLS], mb[LMC_PLAN_MAX_POOLS];
    lmc_plan_mb_time t[LMC_PLAN_MAX_POOLS];
    lmc_plan_mem mem[LMC_PLAN_MAX_POOLS];
} pool_state;

/* Smallest step (in micro-batch time units of each pool) that gives every
 * micro-batch a replica: bisection on the step time tau, where a replica
 * of pool i fits floor(tau / t_i - bubble) micro-batches. */
static double balance(const pool_state *ps, int n, long long M, double bub, int *mb)
{
    double hi = 1e300;
    for (int i = 0; i < n; i++)
        if (ps->dp[i] > 0) {
            double h = (ceil((double)M / ps->dp[i]) + bub) * ps->t[i].total;
            if (h < hi)
                hi = h;
        }
    double lo = 0;
    for (int it = 0; it < 200 && hi - lo > 1e-12 * hi; it++) {
        double mid = 0.5 * (lo + hi);
        double cap = 0;
        for (int i = 0; i < n; i++)
            if (ps->dp[i] > 0)
                cap += ps->dp[i] * fmax(0, floor(mid / ps->t[i].total - bub + 1e-9));
        if (cap >= M)
            hi = mid;
        else
            lo = mid;
    }
    double tau = 0;
    for (int i = 0; i < n; i++) {
        mb[i] = ps->dp[i] > 0 ? (int)fmax(0, floor(hi / ps->t[i].total - bub + 1e-9)) : 0;
        if (mb[i] > 0)
            tau = fmax(tau, (mb[i] + bub) * ps->t[i].total);
    }
    return tau;
}

/* Whole tp x pp replicas on a pool (a tensor-parallel group larger than a
 * node pays the network for its collectives; the search keeps tp inside a
 * node unless --tp asks for more). */
static int replicas(const lmc_plan_pool *p, long long count, const lmc_plan_layout *l)
{
    long long r = count / ((long long)l->tp * l->pp);
    return r > 1 << 30 ? 1 << 30 : (int)r;
}

/* Replicas per pool that fit in memory; ZeRO shards over all of them, so
 * dropping a pool changes the others' memory: iterate to a fixed point. */
static int place(const lmc_plan_job *job, const lmc_plan_pool *pools, const long long *counts, int n,
                 lmc_plan_layout *l, const lmc_plan_cut *cut, long long M, pool_state *ps, lmc_plan_result *r)
{
    int dp = 0;
    for (int i = 0; i < n; i++)
        dp += ps->dp[i] = replicas(&pools[i], counts[i], l);
    for (int round = 0; round <= n && dp > 0; round++) {
        l->dp = dp;
        int per = (int)((M + dp - 1) / dp), changed = 0;
        dp = 0;
        for (int i = 0; i < n; i++) {
            if (ps->dp[i] > 0 && !lmc_plan_memory_cut(job, &pools[i].chip, l, per, cut, &ps->mem[i])) {
                snprintf(r->why, sizeof r->why, "needs %.1f GB per %s, which offers %.1f GB",
                         ps->mem[i].total / 1e9, pools[i].chip.name, ps->mem[i].usable / 1e9);
                r->mem = ps->mem[i];
                ps->dp[i] = 0;
                changed = 1;
            }
            dp += ps->dp[i];
        }
        if (!changed)
            break;
    }
    l->dp = dp;
    return dp;
}

static void breakdown(lmc_plan_result *r, const lmc_plan_mb_time *t, int m, double bub)
{
    r->t_compute = m * t->compute;
    r->t_memory = m * t->memory;
    r->t_tp = m * t->tp_comm;
    r->t_pp = m * t->pp_comm;
    r->t_zero3 = m * t->zero3;
    r->t_bubble = bub * t->total;
    static const char *const names[] = {"compute", "memory-bound ops", "tensor-parallel comm", "pipeline sends",
                                        "ZeRO-3 gathers", "pipeline bubble", "data-parallel sync",
                                        "optimizer step", "rank imbalance"};
    double parts[] = {r->t_compute, r->t_memory, r->t_tp, r->t_pp, r->t_zero3,
                      r->t_bubble,  r->t_dp,     r->t_opt, r->t_idle};
    int best = 0;
    for (int i = 1; i < 9; i++)
        if (parts[i] > parts[best])
            best = i;
    r->bottleneck = names[best];
}

/* lmc train on the cpu chip: the layout must be one it runs, with the
 * micro-batches the balance gave each replica as its --grad-accum and the
 * global batch exactly dp x micro-batch x grad-accum. */
static int trainer_check(const lmc_plan_job *job, const lmc_plan_pool *pools, int n, lmc_plan_result *r)
{
    int cpu = 0, acc = 0, kinds = 0;
    for (int i = 0; i < n; i++)
        if (r->pool_mb[i] > 0) {
            cpu |= lmc_plan_chip_is_cpu(&pools[i].chip);
            acc = r->pool_mb[i] > acc ? r->pool_mb[i] : acc;
            kinds++;
        }
    if (!cpu)
        return 1;
    char why[120];
    if (!lmc_plan_trainer_runs(job, &r->layout, acc, why, sizeof why)) {
        snprintf(r->why, sizeof r->why, "lmc train does not run it: %s", why);
        return 0;
    }
    const lmc_plan_layout *l = &r->layout;
    if (kinds == 1 && (long long)l->dp * l->micro_batch * acc != job->global_batch) {
        snprintf(r->why, sizeof r->why, "dp %d x micro-batch %d x grad-accum %d is not the global batch %lld",
                 l->dp, l->micro_batch, acc, job->global_batch);
        return 0;
    }
    return 1;
}

void lmc_plan_evaluate(const lmc_plan_job *job, const lmc_plan_pool *pools, const long long *counts, int n_pools,
                       const lmc_plan_layout *lin, lmc_plan_result *r)
{
    lmc_plan_cut cut;
    if (lmc_plan_cut_make(job, lin->pp, lin->vpp, &cut) != LMC_OK) {
        memset(r, 0, sizeof *r);
        r->layout = *lin;
        snprintf(r->why, sizeof r->why, "pp %d x vpp %d is more stages than the %d layers", lin->pp, lin->vpp,
                 job->model.n_layer);
        return;
    }
    lmc_plan_evaluate_cut(job, pools, counts, n_pools, lin, &cut, r);
}

void lmc_plan_evaluate_cut(const lmc_plan_job *job, const lmc_plan_pool *pools, const long long *counts,
                           int n_pools, const lmc_plan_layout *lin, const lmc_plan_cut *cut, lmc_plan_result *r)
{
    memset(r, 0, sizeof *r);
    r->layout = *lin;
    lmc_plan_layout *l = &r->layout;
    int n = n_pools < LMC_PLAN_MAX_POOLS ? n_pools : LMC_PLAN_MAX_POOLS;
    r->n_pools = n;
    long long M = (job->global_batch + l->micro_batch - 1) / l->micro_batch;
    pool_state ps;
    memset(&ps, 0, sizeof ps);
    if (!place(job, pools, counts, n, l, cut, M, &ps, r)) {
        if (!r->why[0])
            snprintf(r->why, sizeof r->why, "needs %d chips per replica (tp %d x pp %d) in one pool",
                     l->tp * l->pp, l->tp, l->pp);
        return;
    }
    for (int i = 0; i < n; i++)
        if (ps.dp[i] > 0)
            lmc_plan_microbatch_time_cut(job, &pools[i].chip, pools[i].chips_per_node, l, cut, &ps.t[i]);
    double bub = (l->pp - 1.0) / (l->vpp > 0 ? l->vpp : 1);
    double tau = balance(&ps, n, M, bub, r->pool_mb);
    int bind = -1, tight = -1, kinds = 0;
    double peak = 0, slack = 1e300;
    for (int i = 0; i < n; i++)
        kinds += r->pool_mb[i] > 0;
    for (int i = 0; i < n; i++) {
        r->pool_dp[i] = ps.dp[i];
        memcpy(r->pool_chip[i], pools[i].chip.name, LMC_PLAN_NAME);
        if (r->pool_mb[i] <= 0)
            continue;
        double busy = (r->pool_mb[i] + bub) * ps.t[i].total;
        r->pool_busy[i] = busy;
        slack = fmin(slack, tau - busy);
        if (bind < 0 || busy > r->pool_busy[bind])
            bind = i;
        if (tight < 0 || ps.mem[i].total / ps.mem[i].usable > ps.mem[tight].total / ps.mem[tight].usable)
            tight = i;
        r->chips_used += (long long)ps.dp[i] * l->tp * l->pp;
        peak += (double)ps.dp[i] * l->tp * l->pp * lmc_plan_peak(&pools[i].chip, job->bf16);
        double dps = lmc_plan_dp_sync_s(job, &pools[i].chip, pools[i].chips_per_node, l, cut, 0, &ps.t[i]);
        if (kinds > 1) /* replicas on different pools: lmc train's hierarchical sync (xgroup.c) */
            dps = lmc_plan_xgroup_sync_s(job, pools, ps.dp, r->pool_mb, n, l, cut, &ps.t[i]);
        r->t_dp = fmax(r->t_dp, dps);
        r->t_opt = fmax(r->t_opt, lmc_plan_optimizer_s(job, &pools[i].chip, l, cut));
    }
    r->t_idle = kinds > 1 ? slack : 0;
    r->mem = ps.mem[tight];
    r->fits = trainer_check(job, pools, n, r);
    r->step_s = tau + r->t_dp + r->t_opt;
    r->tokens_per_s = (double)job->global_batch * job->seq / r->step_s;
    r->mfu = lmc_config_train_flops_per_token(&job->model, job->seq) * r->tokens_per_s / peak;
    breakdown(r, &ps.t[bind], r->pool_mb[bind], bub);
}

/* ---------- search ---------- */

static int better(const lmc_plan_result *a, const lmc_plan_result *b)
{
    /* faster wins; within 0.5% the simpler layout (lower ZeRO stage, less
     * recomputation: fewer ways to go wrong), then the one with more memory
     * to spare */
    if (a->tokens_per_s > b->tokens_per_s * 1.005)
        return 1;
    if (b->tokens_per_s > a->tokens_per_s * 1.005)
        return 0;
    if (a->layout.zero != b->layout.zero)
        return a->layout.zero < b->layout.zero;
    if (a->layout.recompute != b->layout.recompute)
        return a->layout.recompute < b->layout.recompute;
    return a->mem.total / a->mem.usable < b->mem.total / b->mem.usable;
}

static int same_shape(const lmc_plan_layout *a, const lmc_plan_layout *b)
{
    return a->tp == b->tp && a->pp == b->pp && a->vpp == b->vpp && a->micro_batch == b->micro_batch;
}

/* Keeps the best `max` distinct shapes, sorted. */
static void keep(lmc_plan_result *best, int max, int *n, const lmc_plan_result *r)
{
    for (int i = 0; i < *n; i++)
        if (same_shape(&best[i].layout, &r->layout)) {
            if (!better(r, &best[i]))
                return;
            for (int j = i; j + 1 < *n; j++) /* drop it, re-insert below */
                best[j] = best[j + 1];
            (*n)--;
            break;
        }
    int pos = *n;
    while (pos > 0 && better(r, &best[pos - 1]))
        pos--;
    if (pos >= max)
        return;
    int last = *n < max ? *n : max - 1;
    for (int j = last; j > pos; j--)
        best[j] = best[j - 1];
    best[pos] = *r;
    if (*n < max)
        (*n)++;
}

typedef struct {
    const lmc_plan_job *job;
    const lmc_plan_pool *pools;
    const long long *counts;
    int n_pools;
    const lmc_plan_fix *fx;
    lmc_plan_result *best;
    int max, *n;
    double closest; /* smallest memory need / offer among misses */
    char *why;
    lmc_plan_cut cut; /* of the pp x vpp being searched */
} search_ctx;

static void try_layout(search_ctx *s, const lmc_plan_layout *l)
{
    lmc_plan_result r;
    long long capped[LMC_PLAN_MAX_POOLS];
    const long long *counts = s->counts;
    if (s->fx->dp > 0) { /* --dp: use only as many chips as dp replicas need, first pools first */
        long long per = (long long)l->tp * l->pp, left = s->fx->dp * per;
        for (int i = 0; i < s->n_pools && i < LMC_PLAN_MAX_POOLS; i++) {
            long long c = s->counts[i] / per * per;
            capped[i] = c < left ? c : left;
            left -= capped[i];
        }
        counts = capped;
    }
    lmc_plan_evaluate_cut(s->job, s->pools, counts, s->n_pools, l, &s->cut, &r);
    if (s->fx->dp > 0 && r.layout.dp != s->fx->dp)
        return;
    if (r.fits) {
        keep(s->best, s->max, s->n, &r);
        return;
    }
    double ratio = r.mem.usable > 0 ? r.mem.total / r.mem.usable : 1e300;
    if (r.mem.usable > 0 && r.mem.total <= r.mem.usable)
        ratio = 1e299; /* it fits, but the trainer does not run it: a memory miss is closer */
    if (s->why && r.why[0] && (ratio < s->closest || !s->why[0])) {
        s->closest = ratio;
        snprintf(s->why, 256, "the closest layout (tp %d, pp %d, micro-batch %d, ZeRO-%d, recompute %s) %s",
                 l->tp, l->pp, l->micro_batch, l->zero, lmc_plan_recompute_name(l->recompute), r.why);
    }
}

static int fixed(int want, int v) { return want <= 0 || want == v; }

/* Powers of two up to max, or just the value asked for. */
static int candidates(int want, int max, int *out)
{
    int n = 0;
    if (want > 0)
        out[n++] = want;
    else
        for (int v = 1; v <= max && n < 16; v *= 2)
            out[n++] = v;
    return n;
}

static void search_inner(search_ctx *s, lmc_plan_layout *l, int max_dp)
{
    const lmc_plan_fix *fx = s->fx;
    for (int b = 1; b <= 1024 && b <= s->job->global_batch; b *= 2) {
        if (!fixed(fx->micro_batch, b))
            continue;
        l->micro_batch = b;
        for (int z = 0; z <= 3; z++) {
            if ((fx->zero >= 0 && fx->zero != z) || (z > 0 && max_dp <= 1 && fx->zero < 0))
                continue;
            l->zero = z;
            for (int rc = 0; rc <= 2; rc++) {
                if ((fx->recompute >= 0 && fx->recompute != rc) ||
                    (fx->recompute < 0 && rc == LMC_RECOMPUTE_SELECTIVE && s->job->flash))
                    continue; /* with flash attention selective recompute saves nothing */
                l->recompute = (lmc_plan_recompute)rc;
                try_layout(s, l);
            }
        }
    }
    if (fx->micro_batch > 1024 || (fx->micro_batch > 0 && fx->micro_batch > s->job->global_batch)) {
        l->micro_batch = fx->micro_batch; /* an explicit request is evaluated as given */
        l->zero = fx->zero > 0 ? fx->zero : 0;
        l->recompute = fx->recompute > 0 ? (lmc_plan_recompute)fx->recompute : LMC_RECOMPUTE_NONE;
        try_layout(s, l);
    }
}

lmc_status lmc_plan_search(const lmc_plan_job *job, const lmc_plan_pool *pools, const long long *counts, int n_pools,
                           const lmc_plan_fix *fx, lmc_plan_result *best, int max, int *n, char *why)
{
    *n = 0;
    if (why)
        why[0] = 0;
    if (max < 1 || n_pools < 1)
        return lmc_err(LMC_EINVAL, "plan search: no pools or no room for results");
    const lmc_model_config *c = &job->model;
    long long total = 0;
    int max_cpn = 0;
    for (int i = 0; i < n_pools; i++) {
        total += counts[i];
        if (counts[i] > 0 && pools[i].chips_per_node > max_cpn)
            max_cpn = pools[i].chips_per_node;
    }
    search_ctx *s = malloc(sizeof *s);
    if (!s)
        return lmc_err(LMC_ENOMEM, "plan search: out of memory");
    *s = (search_ctx){job, pools, counts, n_pools, fx, best, max, n, 1e300, why};
    int tps[16], pps[16], vpps[16];
    static const int vpp_all[] = {1, 2, 3, 4, 6, 8, 12, 16};
    int ntp = candidates(fx->tp, 64, tps), npp = candidates(fx->pp, 256, pps), nv = 0;
    if (fx->vpp > 0)
        vpps[nv++] = fx->vpp;
    else
        for (size_t v = 0; v < sizeof vpp_all / sizeof *vpp_all; v++)
            vpps[nv++] = vpp_all[v];
    for (int a = 0; a < ntp; a++) {
        int tp = tps[a];
        if (c->n_head % tp || (tp > max_cpn && fx->tp <= 0)) /* tp stays inside a node unless asked */
            continue;
        for (int b = 0; b < npp; b++) {
            int pp = pps[b];
            if (pp > c->n_layer || (long long)tp * pp > total)
                continue;
            for (int v = 0; v < nv; v++) {
                int vpp = vpps[v];
                if ((pp == 1 && vpp > 1) || (long long)pp * vpp > c->n_layer ||
                    lmc_plan_cut_make(job, pp, vpp, &s->cut) != LMC_OK)
                    continue;
                lmc_plan_layout l = {.tp = tp, .pp = pp, .vpp = vpp};
                search_inner(s, &l, (int)(total / ((long long)tp * pp)));
            }
        }
    }
    free(s);
    if (*n == 0 && why && !why[0])
        snprintf(why, 256, "no layout matches the constraints on %lld chips", total);
    return LMC_OK;
}
