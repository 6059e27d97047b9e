/* memory.c: what `lmc train` itself allocates per rank on the CPU backend,
 * so `lmc plan` on the `cpu` chip predicts the peak RSS a run reports (the
 * JSONL log's rss_mb) instead of a generic fp16 training's, and which
 * layouts it runs at all. The sizes come from the functions the trainer
 * allocates by (the parameter layout of a rank's part and its units,
 * lmc_comm_shard, the pipeline cut) and from the model's activation block
 * (mirrored below); the rules and their measurement are in
 * docs/zero_memory.md and docs/planner.md. */
#include "internal.h"
#include "dist/comm.h"
#include "model/model.h"

#include <stdio.h>
#include <string.h>

/* The process before it allocates a tensor: binary, libc, libgomp and page
 * tables (7 MB); under mpirun Open MPI's libraries, shared-memory segments
 * and communication thread add 13 MB. Measured as the peak RSS of a
 * 1-layer, 64-wide model (bench/bench_zero_memory.sh prints it beside these
 * figures): 9.7 MB alone and 23.4 MB per rank with 4 ranks, less that
 * model's own 2.8 MB. It moves with the binary by a few MB (21 MB per rank
 * earlier the same day), a rounding error beside any real model. */
#define PROC_BYTES 7e6
#define MPI_BYTES 13e6

int lmc_plan_chip_is_cpu(const lmc_plan_chip *chip)
{
    char key[128];
    lmc_plan_chip_key(chip->name, key, sizeof key);
    return !strcmp(key, "cpu");
}

/* ---------- the activation block (src/model/model.c, layout_acts) ---------- */

static size_t r16(size_t n) { return (n + 15) / 16 * 16; }

/* Floats of one activation set of a rank's part: per layer the 13
 * intermediates in model.c's order (ln1, its mean and rstd, qkv, attention
 * output, log-sum-exp, res2, ln2, its mean and rstd, fc, its activation,
 * res3), one slot per held layer when forward keeps it for backward; then
 * the stage input, the final norm, the sequence-parallel gather buffer,
 * the logits and losses (last stage), and backward's residual gradient and
 * two scratch buffers. model.c has no entry point for a part (tp, sp,
 * chunks), so this mirrors layout_acts; test_plan_memory.c opens real
 * parts and checks the two agree. */
static size_t act_set_floats(const lmc_model_config *c, int B, int T, int tp, int sp, int layers, int final,
                             lmc_recompute rc)
{
    size_t N = (size_t)B * T, C = (size_t)c->dim, n = sp ? N / tp : N;
    size_t hs = (size_t)lmc_config_head_dim(c), nh = (size_t)(c->n_head / tp);
    size_t nkv = (size_t)lmc_config_tp_kv_heads(c, tp), act = (size_t)(c->ffn_dim / tp);
    size_t qkv = (nh + 2 * nkv) * hs, fc = (c->mlp == LMC_MLP_SWIGLU ? 2 : 1) * act;
    size_t sz[13] = {n * C, n, n, N * qkv, N * C, N * nh, n * C, n * C, n, n, N * fc, N * act, n * C};
    size_t off = 0;
    for (int i = 0; i < 13; i++)
        off += r16(r16(sz[i]) * (lmc_model_keeps(rc, i) ? (size_t)layers : 1));
    size_t vrows = (size_t)c->vocab_padded / (tp > 1 ? tp : 1), logits = N * vrows;
    if (tp > 1 && (size_t)B * c->vocab_padded > logits) /* vocabulary-parallel: B gathered rows */
        logits = (size_t)B * c->vocab_padded;
    size_t scratch = C > qkv ? C : qkv;
    scratch = scratch > fc ? scratch : fc;
    off += r16(n * C);                                                       /* the stage input */
    off += final ? r16(n * C) + 2 * r16(n) : 0;                              /* final norm, mean, rstd */
    off += sp ? r16(N * C) : 0;                                              /* sequence-parallel gather */
    off += final ? r16(logits) + r16(N) : 0;                                 /* logits, losses */
    off += 16 + r16(n * C) + 2 * r16(N * scratch);                           /* scalar, dres, dbuf_a/b */
    return off;
}

/* ---------- which layouts lmc train runs ---------- */

int lmc_plan_trainer_runs(const lmc_plan_job *job, const lmc_plan_layout *l, int grad_accum, char *why, size_t n)
{
    const lmc_model_config *c = &job->model;
    int tp = l->tp, pp = l->pp, vpp = l->vpp > 1 ? l->vpp : 1, dp = l->dp > 0 ? l->dp : 1;
    long long rows = (long long)l->micro_batch * job->seq;
    char tmp[8];
    if (!why)
        why = tmp, n = sizeof tmp;
    why[0] = 0;
    if (c->n_expert > 0 && (tp > 1 || pp > 1))
        snprintf(why, n, "a mixture of experts (%d) is not yet split by --%s", c->n_expert, tp > 1 ? "tp" : "pp");
    else if (job->ep > 1 && dp % job->ep)
        snprintf(why, n, "--ep %d does not divide the %d data-parallel ranks", job->ep, dp);
    else if (tp > 1 && (c->n_head % tp || c->ffn_dim % tp || c->vocab_padded % tp))
        snprintf(why, n, "--tp %d does not divide the %s (%d)", tp,
                 c->n_head % tp ? "heads" : c->ffn_dim % tp ? "MLP width" : "padded vocabulary",
                 c->n_head % tp ? c->n_head : c->ffn_dim % tp ? c->ffn_dim : c->vocab_padded);
    else if (tp > 1 && lmc_config_check_tp(c, tp) != LMC_OK)
        snprintf(why, n, "--tp %d neither divides nor is a multiple of the %d kv heads", tp, c->n_kv_head);
    else if ((long long)pp * vpp > c->n_layer)
        snprintf(why, n, "--pp %d x --vpp %d is more stages than the %d layers", pp, vpp, c->n_layer);
    else if (vpp > 1 && pp == 1)
        snprintf(why, n, "--vpp %d needs --pp >= 2", vpp);
    else if (pp > 1 && grad_accum < pp)
        snprintf(why, n, "--grad-accum %d is smaller than --pp %d", grad_accum, pp);
    else if (vpp > 1 && grad_accum % pp)
        snprintf(why, n, "--vpp %d needs --grad-accum (%d) a multiple of --pp %d", vpp, grad_accum, pp);
    else if (l->zero == 3 && dp < 2)
        snprintf(why, n, "--zero 3 needs at least 2 data-parallel ranks");
    else if (tp > 1 && job->seq_parallel && (rows % tp || rows / tp * c->dim % 16))
        snprintf(why, n, "--sp: %lld rows of a micro-batch do not split evenly over --tp %d", rows, tp);
    return why[0] == 0;
}

/* ---------- per-rank memory ---------- */

/* Floats of the whole model's buffer (0 if it cannot be built). */
static double whole_floats(const lmc_model_config *c)
{
    lmc_layout whole;
    if (lmc_layout_build(c, &whole) != LMC_OK)
        return 0;
    double n = (double)whole.total;
    lmc_layout_free(&whole);
    return n;
}

/* --ep: the owner's rows of every layer kept for backward (moe_ep.c: up to
 * ep x N x top_k rows of inputs, pre-activations, activations and their
 * two permutations) and its exchange and backward scratch */
static double ep_bytes(const lmc_plan_job *job, int micro_batch)
{
    const lmc_model_config *c = &job->model;
    if (job->ep <= 1 || c->n_expert <= 0)
        return 0;
    double cap = (double)job->ep * micro_batch * job->seq * c->top_k, C = c->dim, F = c->moe_ffn;
    return 4.0 * (c->n_layer * cap * (C + 3 * F + 2) + cap * (2 * C + 3 * F));
}

/* The part of the model pipeline rank `stage`, tensor-parallel rank 0
 * holds, as the trainer builds it (--ep: the rest and E / ep experts). */
static lmc_status stage_layout(const lmc_plan_job *job, const lmc_plan_layout *l, const lmc_plan_cut *cut, int stage,
                               lmc_layout *out)
{
    int bounds[2 * LMC_PLAN_MAX_VSTAGES];
    if (job->ep > 1 && job->model.n_expert > 0)
        return lmc_layout_build_ep(&job->model, job->ep, 0, out);
    lmc_plan_cut_bounds(cut, stage, bounds);
    return lmc_layout_build_chunks(&job->model, l->tp, l->tp > 1, cut->vpp, bounds, out);
}

lmc_status lmc_plan_trainer_stage_memory_cut(const lmc_plan_job *job, const lmc_plan_layout *l, int grad_accum,
                                             int stage, const lmc_plan_cut *cut, lmc_plan_mem *m)
{
    const lmc_model_config *c = &job->model;
    memset(m, 0, sizeof *m);
    int dp = l->dp > 0 ? l->dp : 1, tp = l->tp > 0 ? l->tp : 1;
    if (l->micro_batch < 1 || job->seq < 1 || l->zero < 0 || l->zero > 3 || grad_accum < 1 || stage < 0 ||
        stage >= cut->pp)
        return lmc_err(LMC_EINVAL, "trainer memory: micro-batch %d, seq %d, ZeRO-%d, grad-accum %d, stage %d of %d "
                       "out of range", l->micro_batch, job->seq, l->zero, grad_accum, stage, cut->pp);
    lmc_layout part;
    LMC_TRY(stage_layout(job, l, cut, stage, &part));
    size_t b0, e0, shard, begin;
    lmc_layout_unit(&part, 0, &b0, &e0);
    lmc_comm_shard(part.total, dp, 0, &begin, &shard); /* rank 0's is the largest */
    if (job->ep > 1 && l->zero >= 1) /* the rest over dp ranks, E / ep experts over dp / ep: the whole model / dp */
        shard = (size_t)(whole_floats(c) / dp);
    /* shard.c: slot 0 holds the embeddings unit, slots 1 and 2 a ring of the
     * other units; one set for gradients (ZeRO-2/3), one for parameters (3) */
    double all = 4.0 * part.total, own = 4.0 * shard;
    size_t emb = e0 - b0, ring = lmc_layout_max_unit(&part, 1);
    double slots = 4.0 * ((emb ? emb : 16) + 2 * (ring ? ring : 16)); /* an empty slot still takes 16 */
    lmc_layout_free(&part);
    int z = l->zero;
    m->weights = z == 3 ? own : all;
    m->grads = z >= 2 ? own : all;
    m->optim = 2 * (z >= 1 ? own : all); /* AdamW m and v */
    m->buffers = (z >= 2) * slots + (z == 3) * slots + ep_bytes(job, l->micro_batch);
    /* the model's activation block: one set per micro-batch in flight */
    lmc_plan_stage st;
    lmc_plan_cut_stage(cut, stage, &st);
    int sp = tp > 1 && job->seq_parallel;
    int sets = lmc_plan_act_sets(cut->pp, cut->vpp, stage, (long long)grad_accum * dp * cut->vpp);
    m->activations = 4.0 * sets *
                     act_set_floats(c, l->micro_batch, job->seq, tp, sp, st.max_chunk, st.last, l->recompute);
    /* the starting weights are read (or initialised) on the host and
     * uploaded while every buffer above already exists; ZeRO-3 alone reads
     * only this rank's shard. A tensor-, pipeline- or expert-parallel rank
     * reads only its part (train/part_load.c), straight into its buffers
     * on a host-memory backend, through a staging copy freed before AdamW's
     * m and v on another (host memory, not the chip's): nothing more */
    m->startup = tp * cut->pp == 1 && job->ep <= 1 ? (z == 3 ? own : all) : 0;
    m->overhead = PROC_BYTES + ((long long)dp * tp * cut->pp > 1 ? MPI_BYTES : 0);
    m->total = m->weights + m->grads + m->optim + m->buffers + m->activations + m->startup + m->overhead;
    m->trainer = 1;
    m->stage = stage;
    return LMC_OK;
}

lmc_status lmc_plan_trainer_stage_memory(const lmc_plan_job *job, const lmc_plan_layout *l, int grad_accum,
                                         int stage, lmc_plan_mem *m)
{
    lmc_plan_cut cut;
    memset(m, 0, sizeof *m);
    LMC_TRY(lmc_plan_cut_make(job, l->pp, l->vpp, &cut));
    return lmc_plan_trainer_stage_memory_cut(job, l, grad_accum, stage, &cut, m);
}

lmc_status lmc_plan_trainer_memory(const lmc_model_config *c, int batch, int seq, int ranks, int zero,
                                   lmc_plan_recompute rc, lmc_plan_mem *m)
{
    memset(m, 0, sizeof *m);
    if (batch < 1 || seq < 1 || ranks < 1 || zero < 0 || zero > 3)
        return lmc_err(LMC_EINVAL, "trainer memory: batch %d, seq %d, ranks %d, ZeRO-%d out of range", batch, seq,
                       ranks, zero);
    lmc_plan_job job;
    lmc_plan_job_defaults(&job);
    job.model = *c;
    job.seq = seq;
    lmc_plan_layout l = {.dp = ranks, .tp = 1, .pp = 1, .vpp = 1, .micro_batch = batch, .zero = zero, .recompute = rc};
    return lmc_plan_trainer_stage_memory(&job, &l, 1, 0, m);
}
