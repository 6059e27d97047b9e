/* cost.c: the cost model. Memory per chip, and the time of a micro-batch,
 * a gradient sync and an optimizer step, for one layout on one chip kind.
 * docs/planner.md states every formula with its source; the comments here
 * say which one each function implements. */
#include "internal.h"
#include "backend/peaks.h"

#include <math.h>
#include <string.h>

void lmc_plan_job_defaults(lmc_plan_job *j)
{
    memset(j, 0, sizeof *j);
    j->bf16 = 1;
    j->flash = 1;
    j->seq_parallel = 1;
    j->tp_overlap = 0.0; /* Megatron's default: TP collectives block */
    j->dp_overlap = 1.0; /* DDP buckets overlap the last backward */
    j->mem_reserve = 0.08;
    j->ep = 1;
}

long long lmc_plan_default_batch(const lmc_model_config *c, int seq)
{
    /* tokens per step grow with model size (GPT-3 Table 2.1; Llama 3 uses 16M) */
    double n = lmc_config_num_params(c), tokens;
    if (n < 1e9)
        tokens = 0.5e6;
    else if (n < 3e9)
        tokens = 1e6;
    else if (n < 2e10)
        tokens = 2e6;
    else if (n < 1e11)
        tokens = 4e6;
    else
        tokens = 8e6;
    double seqs = tokens / (seq > 0 ? seq : 1);
    long long b = 1;
    while (b * 2 <= seqs * 1.41) /* nearest power of two */
        b *= 2;
    return b;
}

static double esize(const lmc_plan_job *j) { return j->bf16 ? 2 : 4; }

/* The share of its compute a rank gets: ranks co-located on one host
 * (host.c) split its cores, and slow each other's GEMMs down through the
 * caches and memory they share; a chip of its own gets all of it. */
static double share(const lmc_plan_chip *c)
{
    return (c->host_share > 0 ? c->host_share : 1) * (c->host_contention > 0 ? c->host_contention : 1);
}

/* Bytes a second of a rank's memory stream: on a shared host the
 * bandwidth it gets beside the others, for its share of the time. */
static double mem_bw(const lmc_plan_chip *c)
{
    double bw = c->host_ranks > 1 && c->rank_bw_gbs > 0 ? c->rank_bw_gbs : c->memory_bw_gbs;
    return bw * 1e9 * (c->host_bw_share > 0 ? c->host_bw_share : 1);
}

/* fp32: the chip's plain fp32 peak, or its TF32 one where lmc's backend
 * runs fp32 matmuls on TF32 tensor cores (backend/peaks.h); a rank's share
 * of it where ranks share a host */
double lmc_plan_peak(const lmc_plan_chip *chip, int bf16)
{
    return lmc_chip_peak(chip, bf16 ? LMC_BF16 : LMC_F32) * share(chip);
}

static double mm_eff(const lmc_plan_chip *c, int bf16) { return bf16 ? c->matmul_eff : c->matmul_eff_fp32; }
static double at_eff(const lmc_plan_chip *c, int bf16) { return bf16 ? c->attn_eff : c->attn_eff_fp32; }

/* ---------- memory (ZeRO, Rajbhandari et al. 2020; Korthikanti et al. 2022) ---------- */

double lmc_plan_act_bytes_layer(const lmc_plan_job *job, int b, int tp, lmc_plan_recompute rc)
{
    const lmc_model_config *c = &job->model;
    double e = esize(job), h = c->dim, a = c->n_head, s = job->seq;
    double hkv = (double)c->n_kv_head * lmc_config_head_dim(c), f = lmc_plan_ffn_active(c);
    double tokens = (double)b * s, t = tp > 0 ? tp : 1;
    double tsp = job->seq_parallel && t > 1 ? t : 1; /* sequence parallelism shards the rest */
    if (rc == LMC_RECOMPUTE_FULL)
        return tokens * h * e / tsp; /* only the layer input is kept */
    /* replicated across the tp group without SP: the inputs of both norms,
     * of the QKV and first MLP matmul, and the two 1-byte dropout masks */
    double repl = 4 * h * e + (job->dropout ? 2 * h : 0);
    /* split over tp: Q and K (QK^T), V, the attention output (projection
     * input), and the MLP activations (GELU: its input and output; SwiGLU:
     * gate, up and their product) */
    double par = (h + hkv) * e + hkv * e + h * e + (c->mlp == LMC_MLP_SWIGLU ? 3 : 2) * f * e;
    if (job->flash)
        par += a * 4; /* the fp32 log-sum-exp per row */
    else if (rc != LMC_RECOMPUTE_SELECTIVE)
        par += a * s * e + (job->dropout ? a * s * (1 + e) : 0); /* softmax, its mask and dropped output */
    return tokens * (repl / tsp + par / t);
}

/* One pipeline rank's memory in the generic model: its parameters, the
 * activation sets its schedule holds (each its largest chunk's layers),
 * the logits on the last stage. */
static void generic_stage(const lmc_plan_job *job, const lmc_plan_layout *l, int microbatches,
                          const lmc_plan_cut *cut, int rank, lmc_plan_mem *m)
{
    const lmc_model_config *c = &job->model;
    memset(m, 0, sizeof *m);
    double e = esize(job), tp = l->tp, dp = l->dp > 0 ? l->dp : 1;
    double ep = job->ep > 1 ? job->ep : 1; /* each rank of an expert group holds 1/ep of the routed experts */
    double P = (lmc_plan_stage_params(c, cut, rank) - lmc_plan_stage_expert_params(c, cut, rank) * (1 - 1 / ep)) / tp;
    /* mixed precision: 16-bit weights and grads, fp32 master + Adam m, v;
     * fp32 training: weights, grads, m, v (ZeRO paper's K = 12 and 8) */
    m->weights = P * e / (l->zero >= 3 ? dp : 1);
    m->grads = P * e / (l->zero >= 2 ? dp : 1);
    m->optim = P * (job->bf16 ? 12 : 8) / (l->zero >= 1 ? dp : 1);
    lmc_plan_stage st;
    lmc_plan_cut_stage(cut, rank, &st);
    double act = lmc_plan_act_bytes_layer(job, l->micro_batch, l->tp, l->recompute);
    double work = l->recompute == LMC_RECOMPUTE_FULL ? lmc_plan_act_bytes_layer(job, l->micro_batch, l->tp,
                                                                                LMC_RECOMPUTE_NONE)
                                                     : 0;
    /* 1F1B holds pp - rank micro-batches' activations on rank `rank`,
     * interleaving 2 (pp - rank - 1) + (vpp - 1) pp + 1 chunk-sized sets:
     * on the first rank the stage's layers x (1 + (pp-1)/(pp vpp)) of
     * Korthikanti sec. 4.2.3 */
    int sets = lmc_plan_act_sets(cut->pp, cut->vpp, rank, (long long)microbatches * cut->vpp);
    m->activations = act * st.max_chunk * sets + work;
    if (st.last) /* fp32 softmax; gradients overwrite them in place */
        m->logits = (double)l->micro_batch * job->seq * c->vocab_padded / tp * 4;
    if (l->zero >= 3) /* gathered weights of the layer in use and the next (prefetch) */
        m->buffers = 2 * lmc_plan_layer_params(c) / tp * e;
    m->total = m->weights + m->grads + m->optim + m->activations + m->logits + m->buffers;
    m->stage = rank;
}

int lmc_plan_memory_cut(const lmc_plan_job *job, const lmc_plan_chip *chip, const lmc_plan_layout *l,
                        int microbatches, const lmc_plan_cut *cut, lmc_plan_mem *m)
{
    memset(m, 0, sizeof *m);
    /* lmc train on its CPU backend: what it allocates */
    int cpu = lmc_plan_chip_is_cpu(chip);
    if (job->ep > 1 && (l->dp % job->ep || l->tp > 1)) { /* lmc train's --ep splits data-parallel ranks only */
        m->total = 1e300;
        m->usable = chip->memory_gb * 1e9;
        return 0;
    }
    for (int r = 0; r < cut->pp; r++) {
        lmc_plan_mem s;
        /* a part lmc train cannot build (tp not dividing the MLP, ...) is
         * costed generically; lmc_plan_trainer_runs says why it does not run */
        if (!cpu || lmc_plan_trainer_stage_memory_cut(job, l, microbatches, r, cut, &s) != LMC_OK)
            generic_stage(job, l, microbatches, cut, r, &s);
        if (r == 0 || s.total > m->total)
            *m = s;
    }
    m->usable = chip->memory_gb * 1e9 * (1 - job->mem_reserve);
    return m->total <= m->usable;
}

int lmc_plan_memory(const lmc_plan_job *job, const lmc_plan_chip *chip, const lmc_plan_layout *l, int microbatches,
                    lmc_plan_mem *m)
{
    lmc_plan_cut cut;
    if (lmc_plan_cut_make(job, l->pp, l->vpp, &cut) != LMC_OK) {
        memset(m, 0, sizeof *m);
        m->total = 1e300;
        return 0;
    }
    return lmc_plan_memory_cut(job, chip, l, microbatches, &cut, m);
}

/* ---------- communication (ring algorithms; Thakur et al. 2005) ---------- */

double lmc_plan_allreduce_s(double bytes, int n, double bw, double lat)
{
    return n <= 1 ? 0 : 2.0 * (n - 1) / n * bytes / bw + 2.0 * (n - 1) * lat;
}

double lmc_plan_reduce_scatter_s(double bytes, int n, double bw, double lat)
{
    return n <= 1 ? 0 : (n - 1.0) / n * bytes / bw + (n - 1.0) * lat;
}

double lmc_plan_allgather_s(double bytes, int n, double bw, double lat)
{
    return lmc_plan_reduce_scatter_s(bytes, n, bw, lat);
}

double lmc_plan_collective_s(const lmc_plan_chip *chip, int cpn, double factor, double bytes, int n, int stride)
{
    if (n <= 1 || bytes <= 0)
        return 0;
    int per = stride >= cpn ? 1 : cpn / (stride > 0 ? stride : 1); /* group members sharing a node */
    if (per > n)
        per = n;
    if (per < 1)
        per = 1;
    int nodes = (n + per - 1) / per;
    double t = 0;
    if (per > 1)
        t += factor * lmc_plan_reduce_scatter_s(bytes, per, chip->intra_node_gbs * 1e9, lmc_plan_intra_lat_s(chip));
    if (nodes > 1) {
        /* bandwidth as a ring; latency as NCCL's trees once rings get long */
        double bw = factor * (nodes - 1.0) / nodes * (bytes / per) / (chip->network_gbs * 1e9);
        double hops = nodes - 1.0, tree = 2 * ceil(log2(nodes));
        t += bw + factor * (hops < tree ? hops : tree) * chip->latency_us * 1e-6;
    }
    return t;
}

/* ---------- compute ---------- */

double lmc_plan_gemm_s(const lmc_plan_chip *chip, int bf16, double m, double n, double k)
{
    /* small GEMMs reach less of the peak (tiles, packing, waves): the
     * efficiency halves when the smallest dimension is gemm_m0 */
    double e = bf16 ? 2 : 4, d = fmin(m, fmin(n, k)), size = d / (d + chip->gemm_m0);
    double tc = 2 * m * n * k / (lmc_plan_peak(chip, bf16) * mm_eff(chip, bf16) * size);
    double tm = (m * k + k * n + m * n) * e / mem_bw(chip);
    return tc > tm ? tc : tm;
}

/* Time of `count` exp/tanh evaluations where they, not memory, can limit
 * (CPUs); 0 when the chip's special-function units never do. */
static double sfu_s(const lmc_plan_chip *chip, double count)
{
    return chip->sfu_gops > 0 ? count / (chip->sfu_gops * 1e9 * share(chip)) : 0;
}

typedef struct {
    double fwd_gemm, attn, mem, head; /* one layer (fwd+bwd except fwd_gemm) and the head */
} layer_cost;

static void layer_costs(const lmc_plan_job *job, const lmc_plan_chip *chip, const lmc_plan_layout *l,
                        layer_cost *lc)
{
    const lmc_model_config *c = &job->model;
    int bf = job->bf16;
    double e = esize(job), h = c->dim, f = lmc_plan_ffn_active(c), s = job->seq, t = l->tp;
    double hkv = (double)c->n_kv_head * lmc_config_head_dim(c), n = (double)l->micro_batch * s;
    double tsp = job->seq_parallel && t > 1 ? t : 1, bw = mem_bw(chip);
    int swiglu = c->mlp == LMC_MLP_SWIGLU;
    /* Megatron's split: QKV and MLP-up by columns, projections by rows */
    lc->fwd_gemm = lmc_plan_gemm_s(chip, bf, n, (h + 2 * hkv) / t, h) + lmc_plan_gemm_s(chip, bf, n, h, h / t) +
                   lmc_plan_mlp_fwd_s(job, chip, n, l->tp);
    /* attention scores and values: 12*T*h per token counted (PaLM app. B),
     * half of it executed under the causal mask */
    double counted = 12.0 * n * s * h / t;
    lc->attn = 0.5 * counted / (lmc_plan_peak(chip, bf) * at_eff(chip, bf));
    /* exponentials: the causal half of the scores forward and again
     * backward; GELU's tanh forward and twice backward, SwiGLU's sigmoid */
    lc->attn += sfu_s(chip, n * c->n_head * s / t);
    double act_sfu = sfu_s(chip, n * (swiglu ? 2 : 3) * f / t);
    /* memory-bound ops (elements read + written per token): forward, the
     * two norms (2h each) and residual adds (3h each), the activation
     * (GELU 2f, SwiGLU 3f), the attention kernel's q, k, v in and out,
     * rotary embedding; backward, norms 5h each, residuals again, the
     * activation (3f, 5f), attention in/out twice and bias gradients */
    double qkv = h + 2 * hkv, bias = c->bias ? qkv + 2 * h + f : 0;
    double fwd = (2 * 2 * h + 2 * 3 * h) / tsp + ((swiglu ? 3 : 2) * f + qkv + h) / t;
    double bwd = (2 * 5 * h + 2 * 3 * h) / tsp + ((swiglu ? 5 : 3) * f + 2 * qkv + 2 * h + bias) / t;
    double rope = c->pos == LMC_POS_ROPE ? 4 * (h + hkv) / t : 0;
    double scores = job->flash ? 0 : 9.0 * c->n_head * s / t; /* written, softmaxed, read back */
    lc->mem = n * (fwd + bwd + rope + scores) * e / (bw * LMC_PLAN_MEM_EFF) + act_sfu +
              LMC_PLAN_KERNELS * chip->kernel_us * 1e-6;
    double vp = c->vocab_padded / t;
    lc->head = 3 * lmc_plan_gemm_s(chip, bf, n, vp, h) + fmax(3 * n * vp * 4 / bw, sfu_s(chip, n * vp)) +
               3 * n * h * e / bw; /* logits GEMMs, softmax + cross-entropy, embedding */
}

/* The busiest pipeline rank (every rank with pp = 1): the most seconds
 * of layers, their tensor-parallel collectives and, on the last rank, the
 * head; the cut is the trainer's. */
static int busiest_stage(const lmc_plan_cut *cut, double layer, double head, lmc_plan_stage *out)
{
    double most = -1;
    int at = 0;
    memset(out, 0, sizeof *out);
    for (int r = 0; r < cut->pp; r++) {
        lmc_plan_stage st;
        lmc_plan_cut_stage(cut, r, &st);
        double t = st.layers * layer + (st.last ? head : 0);
        if (t > most) {
            most = t;
            at = r;
            *out = st;
        }
    }
    return at;
}

void lmc_plan_microbatch_time_cut(const lmc_plan_job *job, const lmc_plan_chip *chip, int cpn,
                                  const lmc_plan_layout *l, const lmc_plan_cut *cut, lmc_plan_mb_time *t)
{
    const lmc_model_config *c = &job->model;
    memset(t, 0, sizeof *t);
    layer_cost lc;
    layer_costs(job, chip, l, &lc);
    double recompute = 0;
    if (l->recompute == LMC_RECOMPUTE_FULL)
        recompute = lc.fwd_gemm + lc.attn / 3 + lc.mem / 3; /* one more forward */
    else if (l->recompute == LMC_RECOMPUTE_SELECTIVE && !job->flash)
        recompute = lc.attn / 3;
    double compute_layer = 3 * lc.fwd_gemm + lc.attn + recompute;
    double per_layer = compute_layer + lc.mem;
    double e = esize(job), n = (double)l->micro_batch * job->seq;
    /* tensor parallelism with SP: per layer 2 all-gathers + 2 reduce-scatters
     * forward and again backward (4 all-reduces without SP: same bytes) */
    double msg = n * c->dim * e;
    double ops = 8 + (l->recompute == LMC_RECOMPUTE_FULL ? 4 : 0);
    double tp_layer = ops * lmc_plan_collective_s(chip, cpn, 1, msg, l->tp, 1) * (1 - job->tp_overlap);
    lmc_plan_stage st;
    busiest_stage(cut, per_layer + tp_layer, lc.head, &st);
    double body = st.layers * per_layer + (st.last ? lc.head : 0);
    double share = per_layer > 0 ? compute_layer / per_layer : 1;
    t->compute = body * share;
    t->memory = body - t->compute;
    t->tp_comm = st.layers * tp_layer;
    t->ep_comm = lmc_plan_a2a_s(job, chip, cpn, l) * st.layers / c->n_layer; /* this stage's expert layers' share */
    /* pipeline: activations forward and gradients back at each boundary,
     * vpp times with interleaving; stages sit tp*dp chips apart */
    if (l->pp > 1) {
        double tsp = job->seq_parallel && l->tp > 1 ? l->tp : 1;
        int intra = (long long)l->tp * l->dp * l->pp <= cpn;
        double bw = (intra ? chip->intra_node_gbs : chip->network_gbs) * 1e9;
        double lat = intra ? lmc_plan_intra_lat_s(chip) : chip->latency_us * 1e-6;
        t->pp_comm = 2.0 * cut->vpp * (msg / tsp / bw + lat);
    }
    /* ZeRO-3 gathers weights forward and backward and scatters grads each
     * micro-batch; prefetching hides it behind compute when it can, all but
     * the first layer's gather */
    if (l->zero >= 3 && l->dp > 1) {
        double w = lmc_plan_max_stage_params(c, cut) / l->tp * e;
        double z3 = 3 * lmc_plan_collective_s(chip, cpn, 1, w, l->dp, l->tp);
        t->zero3 = fmax(z3 - t->compute, z3 / (st.layers > 0 ? st.layers : 1));
    }
    t->total = t->compute + t->memory + t->tp_comm + t->ep_comm + t->pp_comm + t->zero3;
}

void lmc_plan_microbatch_time(const lmc_plan_job *job, const lmc_plan_chip *chip, const lmc_plan_layout *l,
                              lmc_plan_mb_time *t)
{
    lmc_plan_cut cut;
    memset(t, 0, sizeof *t);
    if (lmc_plan_cut_make(job, l->pp, l->vpp, &cut) == LMC_OK)
        lmc_plan_microbatch_time_cut(job, chip, chip->chips_per_node, l, &cut, t);
}

double lmc_plan_dp_sync_s(const lmc_plan_job *job, const lmc_plan_chip *chip, int cpn, const lmc_plan_layout *l,
                          const lmc_plan_cut *cut, int cross_pools, const lmc_plan_mb_time *mb)
{
    if (l->dp <= 1 || l->zero >= 3) /* ZeRO-3 syncs inside each micro-batch */
        return 0;
    double g = lmc_plan_max_stage_params(&job->model, cut) / l->tp * esize(job);
    /* all-reduce, or reduce-scatter + all-gather with ZeRO-1/2: same bytes */
    double t = lmc_plan_collective_s(chip, cross_pools ? 1 : cpn, 2, g, l->dp, l->tp);
    /* the last backward hides it, unless the sums run on the cores that
     * compute (ranks sharing a host with every core busy) */
    double hidden = chip->comm_on_cores ? 0 : job->dp_overlap * mb->compute * 2 / 3;
    return t > hidden ? t - hidden : 0;
}

double lmc_plan_optimizer_s(const lmc_plan_job *job, const lmc_plan_chip *chip, const lmc_plan_layout *l,
                            const lmc_plan_cut *cut)
{
    double p = lmc_plan_max_stage_params(&job->model, cut) / l->tp / (l->zero >= 1 && l->dp > 1 ? l->dp : 1);
    /* AdamW touches master weights, m, v (read+write), the gradient and the
     * 16-bit weight copy: 28 bytes per parameter either way; on the cpu chip
     * the measured cost of the backend's adamw and gradient norm */
    if (chip->optim_ns > 0) /* measured alone: as memory-bound, slower as its stream is */
        return p * chip->optim_ns * 1e-9 * (chip->memory_bw_gbs * 1e9 / mem_bw(chip));
    return p * 28 / mem_bw(chip);
}
