/* pipeline.c: pipeline parallelism, one stage per rank of the pipeline
 * group, with the 1F1B schedule (PipeDream-Flush) and Megatron-LM's
 * interleaved variant.
 *
 * The layers are cut into P x V virtual stages (tr->pipe.pp_begin); rank r of
 * the pipeline group holds V chunks of them, virtual stages r, r + P, ...
 * (--vpp V; V = 1: one stage of consecutive layers). The virtual stage
 * holding layer 0 embeds, the one ending at the last layer computes the
 * loss. Of a step's M micro-batches each rank runs M x V forward and as many
 * backward "virtual micro-batches" in Megatron's order: forward k runs chunk
 * (k mod PV) / P on micro-batch (k / PV) P + k mod P, backward k the chunks
 * in reverse. First W warm-up forwards (P - r - 1 without interleaving,
 * 2 (P - r - 1) + (V - 1) P with), then one forward and one backward at a
 * time, then the remaining backwards: at most W + 1 virtual micro-batches'
 * activations are held, each in an activation set of the model taken from
 * a free list. The ranks of a pipeline are a ring: a chunk's output goes
 * to the next rank (from the last rank to the first rank's next chunk), its
 * input's gradient to the previous one. Activations and gradients travel by
 * non-blocking point to point on two communicators of the same ranks
 * (tr->pipe.ppc, tr->pipe.ppg), so the two kinds never match each other's messages.
 *
 * A tied model's embedding lives on the first and the last rank (its head):
 * their gradients are summed after the data-parallel reduction and both
 * apply the same update, so the copies stay identical; the gradient norm
 * counts it on the first rank only.
 */
#include "train/trainer.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int chunk, mb;
} virtual_mb;

static int vstages(const lmc_trainer *tr) { return tr->pipe.pp * tr->pipe.vpp; }
static int vstage(const lmc_trainer *tr, int chunk) { return chunk * tr->pipe.pp + tr->pipe.pp_rank; }
static int next_rank(const lmc_trainer *tr) { return (tr->pipe.pp_rank + 1) % tr->pipe.pp; }
static int prev_rank(const lmc_trainer *tr) { return (tr->pipe.pp_rank + tr->pipe.pp - 1) % tr->pipe.pp; }

static virtual_mb virtual_of(const lmc_trainer *tr, int k, int forward)
{
    int P = tr->pipe.pp, V = tr->pipe.vpp, in_group = k % (P * V);
    virtual_mb v = {.chunk = in_group / P, .mb = k / (P * V) * P + k % P};
    if (!forward)
        v.chunk = V - 1 - v.chunk;
    return v;
}

/* Warm-up forwards of this rank (Megatron-LM's counts). */
static int warmup(const lmc_trainer *tr, int total)
{
    int P = tr->pipe.pp, V = tr->pipe.vpp, r = tr->pipe.pp_rank;
    int w = V == 1 ? P - r - 1 : 2 * (P - r - 1) + (V - 1) * P;
    return w < total ? w : total;
}

/* A stage's input or output: its rows of the residual stream (all, or
 * under sequence parallelism this rank's). */
static size_t act_bytes(const lmc_trainer *tr, int B, int T)
{
    return (size_t)lmc_model_rows(tr->m, B * T) * tr->cfg.dim * sizeof(float);
}
static size_t mb_bytes(const lmc_trainer *tr) { return act_bytes(tr, tr->o->batch, tr->o->seq); }

/* Waits for a point-to-point operation; the time counts as pipeline wait. */
static lmc_status p2p_wait(lmc_trainer *tr, lmc_comm *c, int *req)
{
    if (*req < 0)
        return LMC_OK;
    double t0 = lmc_now();
    lmc_status s = c->ops->p2p_wait(c, *req);
    tr->pipe.pp_wait_s += lmc_now() - t0;
    *req = -1;
    return s;
}

/* Activation set k's requests: the send of its output (ppc), the send of
 * its input's gradient and the receive of its output's gradient (ppg). */
static int *fwd_send(lmc_trainer *tr, int k) { return &tr->pipe.pp_req[3 * k]; }
static int *bwd_send(lmc_trainer *tr, int k) { return &tr->pipe.pp_req[3 * k + 1]; }
static int *grad_recv(lmc_trainer *tr, int k) { return &tr->pipe.pp_req[3 * k + 2]; }

static lmc_status wait_all(lmc_trainer *tr)
{
    for (int k = 0; k < tr->m->act_slots; k++) {
        LMC_TRY(p2p_wait(tr, tr->pipe.ppc, fwd_send(tr, k)));
        LMC_TRY(p2p_wait(tr, tr->pipe.ppg, bwd_send(tr, k)));
        LMC_TRY(p2p_wait(tr, tr->pipe.ppg, grad_recv(tr, k)));
    }
    return LMC_OK;
}

/* The activation set of (chunk, micro-batch): taken at its forward. */
static int *slot_of(lmc_trainer *tr, virtual_mb v) { return &tr->pipe.pp_slot_of[v.chunk * tr->pipe.pp_mbs + v.mb]; }

static lmc_status take_slot(lmc_trainer *tr, virtual_mb v)
{
    if (tr->pipe.pp_nfree == 0)
        return lmc_err(LMC_EINVAL, "pipeline schedule: more micro-batches in flight than %d activation sets",
                       tr->m->act_slots);
    *slot_of(tr, v) = tr->pipe.pp_free[--tr->pipe.pp_nfree];
    return LMC_OK;
}

static void use(lmc_trainer *tr, virtual_mb v)
{
    lmc_model_use_chunk(tr->m, v.chunk);
    lmc_model_use_slot(tr->m, *slot_of(tr, v));
}

/* Posts the receive of v's output gradient into its activation set. */
static lmc_status post_grad_recv(lmc_trainer *tr, virtual_mb v)
{
    int k = *slot_of(tr, v);
    if (*grad_recv(tr, k) >= 0)
        return LMC_OK;
    LMC_TRY(p2p_wait(tr, tr->pipe.ppg, bwd_send(tr, k))); /* the gradient buffer's last send */
    use(tr, v);
    return tr->pipe.ppg->ops->recv_start(tr->pipe.ppg, lmc_model_stage_grad(tr->m), mb_bytes(tr), next_rank(tr),
                                    grad_recv(tr, k));
}

static lmc_status load_batch(lmc_trainer *tr, virtual_mb v)
{
    const lmc_train_opts *o = tr->o;
    int vs = vstage(tr, v.chunk);
    if (vs != 0 && vs != vstages(tr) - 1)
        return LMC_OK; /* only the embedding needs tokens and only the loss targets */
    uint64_t g0 = tr->data.consumed + (uint64_t)(lmc_balance_first(tr) + v.mb) * o->batch;
    LMC_TRY(lmc_tokens_batch(&tr->data.train, g0, o->batch, o->seq, tr->data.seed, tr->data.shuffle, tr->cfg.vocab, tr->data.inputs,
                             tr->data.targets));
    return lmc_model_set_batch(tr->m, tr->data.inputs, tr->data.targets, o->batch, o->seq, o->data);
}

/* Receives the current chunk's input (unless it embeds), runs its forward. */
static lmc_status stage_forward(lmc_trainer *tr, int vs, int B, int T, lmc_fwd_mode mode, float dloss)
{
    if (vs > 0) {
        int req;
        LMC_TRY(tr->pipe.ppc->ops->recv_start(tr->pipe.ppc, lmc_model_stage_input(tr->m), act_bytes(tr, B, T), prev_rank(tr),
                                         &req));
        LMC_TRY(p2p_wait(tr, tr->pipe.ppc, &req));
    }
    lmc_model_forward(tr->m, B, T, mode, dloss);
    return tr->m->tp_status;
}

/* Forward k; in the steady phase the receive for backward `then` (>= 0)
 * is posted before the output's send. */
static lmc_status forward_one(lmc_trainer *tr, int k, int then, float dloss, float *loss)
{
    virtual_mb v = virtual_of(tr, k, 1);
    int vs = vstage(tr, v.chunk);
    LMC_TRY(take_slot(tr, v));
    int s = *slot_of(tr, v);
    LMC_TRY(p2p_wait(tr, tr->pipe.ppc, fwd_send(tr, s)));
    use(tr, v);
    LMC_TRY(load_batch(tr, v));
    LMC_TRY(stage_forward(tr, vs, tr->o->batch, tr->o->seq, LMC_FWD_TRAIN, dloss));
    if (vs == vstages(tr) - 1) {
        *loss += lmc_model_mean_loss(tr->m, tr->o->batch, tr->o->seq);
    } else {
        const float *out = lmc_model_stage_output(tr->m);
        tr->be->ops->sync(tr->be);
        LMC_TRY(tr->pipe.ppc->ops->send_start(tr->pipe.ppc, out, mb_bytes(tr), next_rank(tr), fwd_send(tr, s)));
    }
    if (then >= 0) { /* overlap: the next backward's gradient may arrive during this rank's next work */
        virtual_mb b = virtual_of(tr, then, 0);
        if (vstage(tr, b.chunk) < vstages(tr) - 1)
            LMC_TRY(post_grad_recv(tr, b));
    }
    return LMC_OK;
}

/* Backward k; each chunk's last micro-batch starts its gradient reduction. */
static lmc_status backward_one(lmc_trainer *tr, int k)
{
    virtual_mb v = virtual_of(tr, k, 0);
    int vs = vstage(tr, v.chunk), s = *slot_of(tr, v);
    LMC_TRY(p2p_wait(tr, tr->pipe.ppg, bwd_send(tr, s))); /* backward rewrites the gradient buffer */
    if (vs < vstages(tr) - 1) {
        LMC_TRY(post_grad_recv(tr, v));
        LMC_TRY(p2p_wait(tr, tr->pipe.ppg, grad_recv(tr, s)));
    }
    use(tr, v);
    if (!tr->dp.sh) /* ZeRO-2/3's hooks stay; they reduce every micro-batch's gradients */
        tr->m->hooks = v.mb == tr->pipe.pp_mbs - 1 && tr->comm->size > 1 ? &tr->dp.dp_hooks : NULL;
    lmc_model_backward(tr->m, tr->o->batch, tr->o->seq);
    if (!tr->dp.sh)
        tr->m->hooks = NULL;
    LMC_TRY(tr->dp.hook_status);
    LMC_TRY(tr->dp.sh ? tr->dp.sh->status : LMC_OK);
    LMC_TRY(tr->m->tp_status);
    if (vs > 0) {
        tr->be->ops->sync(tr->be);
        LMC_TRY(tr->pipe.ppg->ops->send_start(tr->pipe.ppg, lmc_model_stage_grad(tr->m), mb_bytes(tr), prev_rank(tr),
                                         bwd_send(tr, s)));
    }
    tr->pipe.pp_free[tr->pipe.pp_nfree++] = s;
    return LMC_OK;
}

lmc_status lmc_pipe_accumulate(lmc_trainer *tr, float dloss, float *loss)
{
    int M = tr->bal.mb_count[tr->comm->rank], total = M * tr->pipe.vpp, W = warmup(tr, total);
    if (M > tr->pipe.pp_mbs_cap)
        return lmc_err(LMC_EINVAL, "pipeline: %d micro-batches this step, more than the %d planned", M,
                       tr->pipe.pp_mbs_cap);
    if (tr->pipe.vpp > 1 && M % tr->pipe.pp)
        return lmc_err(LMC_EINVAL, "--vpp %d: this rank's %d micro-batches are not a multiple of --pp %d (the "
                       "interleaved schedule runs them in groups of pp)", tr->pipe.vpp, M, tr->pipe.pp);
    tr->pipe.pp_mbs = M;
    tr->pipe.pp_wait_s = 0;
    for (int k = 0; k < W; k++)
        LMC_TRY(forward_one(tr, k, -1, dloss, loss));
    for (int k = 0; k < total - W; k++) {
        LMC_TRY(forward_one(tr, k + W, k, dloss, loss));
        LMC_TRY(backward_one(tr, k));
    }
    for (int k = total - W; k < total; k++)
        LMC_TRY(backward_one(tr, k));
    lmc_model_use_slot(tr->m, 0); /* evaluation and samples use the first set */
    return wait_all(tr);
}

/* Forward-only through every virtual stage (evaluation, samples): each
 * rank runs its chunks in order, receiving and sending as the ring goes. */
lmc_status lmc_pipe_forward(lmc_trainer *tr, int B, int T, lmc_fwd_mode mode)
{
    for (int c = 0; c < tr->pipe.vpp; c++) {
        int vs = vstage(tr, c);
        lmc_model_use_chunk(tr->m, c);
        LMC_TRY(stage_forward(tr, vs, B, T, mode, 0));
        if (vs == vstages(tr) - 1)
            continue;
        int req;
        tr->be->ops->sync(tr->be);
        LMC_TRY(tr->pipe.ppc->ops->send_start(tr->pipe.ppc, lmc_model_stage_output(tr->m), act_bytes(tr, B, T),
                                         next_rank(tr), &req));
        LMC_TRY(p2p_wait(tr, tr->pipe.ppc, &req));
    }
    return LMC_OK;
}

lmc_status lmc_pipe_sync_embed(lmc_trainer *tr)
{
    if (!tr->pipe.embc || !tr->cfg.tied)
        return LMC_OK;
    if (tr->dp.sh)
        return lmc_shard_sum_embed(tr->dp.sh, tr->pipe.embc);
    size_t b, e;
    lmc_layout_unit(&tr->m->layout, 0, &b, &e);
    return tr->pipe.embc->ops->allreduce(tr->pipe.embc, tr->m->grads + b, e - b);
}

void lmc_pipe_bounds(const lmc_trainer *tr, int rank, int *bounds)
{
    for (int c = 0; c < tr->pipe.vpp; c++) {
        bounds[2 * c] = tr->pipe.pp_begin[c * tr->pipe.pp + rank];
        bounds[2 * c + 1] = tr->pipe.pp_begin[c * tr->pipe.pp + rank + 1];
    }
}

int lmc_pipe_act_sets(const lmc_trainer *tr)
{
    int total = tr->pipe.pp_mbs_cap * tr->pipe.vpp;
    return warmup(tr, total) + 1 < total ? warmup(tr, total) + 1 : total;
}

lmc_status lmc_pipe_open(lmc_trainer *tr)
{
    int K = tr->m->act_slots;
    if (!tr->pipe.ppc->ops->send_start || !tr->pipe.ppc->ops->recv_start || !tr->pipe.ppc->ops->p2p_wait)
        return lmc_err(LMC_EUNSUPPORTED, "--pp: the %s communicator has no point-to-point send and receive",
                       tr->pipe.ppc->name);
    tr->pipe.pp_req = malloc((size_t)3 * K * sizeof(int));
    tr->pipe.pp_free = malloc((size_t)K * sizeof(int));
    tr->pipe.pp_slot_of = malloc((size_t)tr->pipe.vpp * tr->pipe.pp_mbs_cap * sizeof(int));
    if (!tr->pipe.pp_req || !tr->pipe.pp_free || !tr->pipe.pp_slot_of)
        return lmc_err(LMC_ENOMEM, "out of memory");
    for (int i = 0; i < 3 * K; i++)
        tr->pipe.pp_req[i] = -1;
    for (int k = 0; k < K; k++)
        tr->pipe.pp_free[k] = K - 1 - k;
    tr->pipe.pp_nfree = K;
    return LMC_OK;
}
