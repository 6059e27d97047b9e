/* step.c: one optimizer step, on one rank or many (data parallel).
 *
 * Each rank runs its micro-batches (balance.c says which), summing their
 * gradients, each scaled by 1 / (global tokens); summing over ranks then
 * gives the gradient of the mean loss over the global batch, the same as one
 * process running every micro-batch. The reduction overlaps the last
 * micro-batch's backward pass: as each gradient bucket (a layer, the final
 * norm and head, the embeddings) completes, the bucket hook starts its
 * reduction and the backward pass goes on with the next layer; the step
 * waits for all buckets only before the optimizer.
 * Without ZeRO every rank allreduces whole buckets and updates every
 * parameter. With ZeRO-1 each rank owns one shard of the parameters
 * (lmc_comm_shard) and AdamW's m and v only for it: buckets are
 * reduce-scattered, the gradient norm is the allreduced sum of the shards'
 * squares, and after the update the parameters are allgathered.
 * ZeRO-2 and ZeRO-3 (shard.c) also keep only this rank's shard of the
 * gradients, and ZeRO-3 only its shard of the parameters; every
 * micro-batch's gradients are reduce-scattered unit by unit during its
 * backward pass.
 */
#include "lmc/report.h"
#include "model/moe.h"
#include "train/trainer.h"

#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>

/* SIGUSR1 asks the job to write a checkpoint and stop at the end of the
 * current step (lmc launch sends it to mpirun, which forwards it to every
 * rank, when the host file changes). A signal handler can reach nothing but
 * a global; the ranks then agree through the step's statistics (agree_stop),
 * so all stop after the same step wherever the signal landed. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_signal = 1;
}

void lmc_trainer_catch_stop(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
}

/* Starts the reduction of gradient elements [b, e). */
static lmc_status post_bucket(lmc_trainer *tr, size_t b, size_t e)
{
    lmc_comm *c = tr->comm;
    int req;
    if (e <= b)
        return LMC_OK;
    if (tr->dp.nreq >= 2 * lmc_layout_num_buckets(&tr->m->layout))
        return lmc_err(LMC_ECOMM, "step %d: more gradient buckets than the model has", tr->step + 1);
    int tied_embed = tr->pipe.embc && tr->cfg.tied && b == 0; /* summed over stages next: whole on every data-parallel rank */
    if (tr->dp.zero && c->ops->reduce_scatter_start && !tied_embed)
        LMC_TRY(c->ops->reduce_scatter_start(c, tr->m->grads + b, tr->m->layout.total, b, e, &req));
    else /* a communicator without a ranged reduce-scatter: the whole sum is a superset */
        LMC_TRY(c->ops->allreduce_start(c, tr->m->grads + b, e - b, &req));
    tr->dp.reqs[tr->dp.nreq++] = req;
    return LMC_OK;
}

/* Called by the backward pass as each unit's gradient is complete. */
static void bucket_release(void *ctx, int unit, int backward)
{
    lmc_trainer *tr = ctx;
    if (tr->dp.hook_status || !backward)
        return;
    size_t b, e;
    int done = 0;
    tr->dp.hook_status = lmc_trainer_ep_post(tr, unit, &done); /* --ep: a MoE layer's experts over their ranks */
    if (done || tr->dp.hook_status)
        return;
    lmc_layout_unit(&tr->m->layout, unit, &b, &e);
    tr->dp.hook_status = post_bucket(tr, b, e);
}

static void no_acquire(void *ctx, int unit, int backward) {}

void lmc_trainer_dp_hooks(lmc_trainer *tr)
{
    tr->dp.dp_hooks = (lmc_unit_hooks){.acquire = no_acquire, .release = bucket_release, .ctx = tr};
}

/* Micro-batch rounds this step: under ZeRO-2/3 every rank joins every
 * round's collectives, so all run as many as the busiest rank. */
static int rounds(const lmc_trainer *tr)
{
    int most = tr->bal.mb_count[tr->comm->rank];
    for (int r = 0; tr->dp.sh && r < tr->comm->size; r++)
        most = tr->bal.mb_count[r] > most ? tr->bal.mb_count[r] : most;
    return most;
}

/* A rank with no micro-batch this step still contributes (zeros) to every
 * bucket, in the order the others start them. */
static lmc_status post_all_buckets(lmc_trainer *tr)
{
    int n = lmc_layout_num_buckets(&tr->m->layout);
    for (int i = 0; i < n; i++) {
        size_t b, e;
        lmc_layout_bucket(&tr->m->layout, i, &b, &e);
        LMC_TRY(post_bucket(tr, b, e));
    }
    return LMC_OK;
}

/* Forward and backward over this rank's micro-batches. */
static lmc_status accumulate_grads(lmc_trainer *tr)
{
    const lmc_train_opts *o = tr->o;
    int B = o->batch, T = o->seq, J = lmc_balance_total(tr), n = tr->bal.mb_count[tr->comm->rank];
    int first = lmc_balance_first(tr), dist = tr->comm->size > 1;
    float dloss = 1.0f / ((float)B * T * J), sum = 0;
    double t0 = lmc_now(), w0 = tr->dp.sh ? tr->dp.sh->wait_s : 0;
    tr->dp.nreq = 0;
    tr->dp.hook_status = LMC_OK;
    lmc_model_zero_grads(tr->m);
    if (tr->dp.sh)
        lmc_shard_zero_grads(tr->dp.sh);
    if (tr->pipe.pp > 1)
        LMC_TRY(lmc_pipe_accumulate(tr, dloss, &sum));
    for (int k = 0, R = tr->pipe.pp > 1 ? 0 : rounds(tr); k < R; k++) {
        if (k >= n) { /* no micro-batch of mine: join the others' collectives */
            lmc_model_walk_units(tr->m, 1);
            continue;
        }
        uint64_t g0 = tr->data.consumed + (uint64_t)(first + k) * B;
        LMC_TRY(lmc_tokens_batch(&tr->data.train, g0, B, T, tr->data.seed, tr->data.shuffle, tr->cfg.vocab, tr->data.inputs,
                                 tr->data.targets));
        LMC_TRY(lmc_model_set_batch(tr->m, tr->data.inputs, tr->data.targets, B, T, o->data));
        double t1 = lmc_now();
        lmc_model_forward(tr->m, B, T, LMC_FWD_TRAIN, dloss);
        sum += lmc_model_mean_loss(tr->m, B, T);
        tr->me.aux_sum += lmc_model_aux_loss(tr->m);
        double t2 = lmc_now();
        lmc_balance_slowdown(tr, t2 - t1);
        double t3 = lmc_now();
        if (!tr->dp.sh)
            tr->m->hooks = dist && k == n - 1 ? &tr->dp.dp_hooks : NULL;
        lmc_model_backward(tr->m, B, T);
        if (!tr->dp.sh)
            tr->m->hooks = NULL;
        LMC_TRY(tr->dp.hook_status);
        LMC_TRY(tr->m->tp_status);
        if (tr->bal.slowdown > 1 || tr->bal.measuring > 0)
            tr->be->ops->sync(tr->be); /* timings below must include the device's work */
        tr->bal.fwdbwd_s = (t2 - t1) + (lmc_now() - t3);
    }
    if (dist && n == 0 && !tr->dp.sh)
        LMC_TRY(post_all_buckets(tr));
    tr->me.loss_sum = sum;
    tr->me.mb = n;
    /* under ZeRO-3 the passes wait for other ranks' gathers, under --pp for
     * the neighbouring stages: not compute */
    double waited = (tr->dp.sh ? tr->dp.sh->wait_s - w0 : 0) + (tr->pipe.pp > 1 ? tr->pipe.pp_wait_s : 0);
    tr->me.pp_wait_ms = tr->pipe.pp > 1 ? tr->pipe.pp_wait_s * 1e3 : 0;
    tr->me.compute_ms = (lmc_now() - t0 - waited) * 1e3;
    tr->me.comm_ms = waited * 1e3;
    return LMC_OK;
}

/* Waits for every bucket, in the order they were started; after a failure
 * (the job is about to be aborted) the rest are not waited for. */
static lmc_status wait_buckets(lmc_trainer *tr)
{
    if (tr->dp.sh)
        return lmc_shard_finish_grads(tr->dp.sh);
    lmc_status s = LMC_OK;
    for (int i = 0; i < tr->dp.nreq && s == LMC_OK; i++)
        s = tr->comm->ops->wait(tr->comm, tr->dp.reqs[i]);
    tr->dp.nreq = 0;
    return s ? s : lmc_trainer_ep_wait(tr);
}

static float *own_grads(lmc_trainer *tr)
{
    return tr->dp.sh ? tr->dp.sh->own_grads : tr->m->grads + tr->dp.own_begin;
}

static float *own_params(lmc_trainer *tr)
{
    return tr->dp.sh ? lmc_shard_params(tr->dp.sh, 0) : tr->m->params + tr->dp.own_begin;
}

static float squares(lmc_trainer *tr, const float *x, size_t n)
{
    float sq = 0;
    if (n) {
        tr->be->ops->sum(tr->be, tr->m->a.scalar, x, n, 1);
        tr->be->ops->download(tr->be, &sq, tr->m->a.scalar, sizeof sq);
    }
    return sq;
}

/* Whether the gradient norm counts a tensor on this rank: a tied head is
 * wte's; a tensor whole on every rank of a tensor-parallel group counts on
 * its first rank, and the copy of a tied embedding on the last stage not. */
static int counted(const lmc_trainer *tr, int layer, int kind)
{
    const lmc_layout *l = &tr->m->layout;
    if (layer < 0 && kind == LMC_T_HEAD && tr->cfg.tied)
        return 0;
    if (tr->tp_rank > 0 && !lmc_layout_tp_split(l, layer, kind))
        return 0;
    return !(tr->pipe.pp_rank > 0 && layer < 0 && lmc_layout_unit_of(l, layer, kind) == 0);
}

/* The squares of this rank's gradient elements [begin, end) (g points at
 * begin) that the norm counts here (see counted). */
static double part_squares(lmc_trainer *tr, const float *g, size_t begin, size_t end)
{
    const lmc_layout *l = &tr->m->layout;
    double sq = 0;
    for (int layer = -1; layer < l->n_layer; layer++)
        for (int k = 0; k < (layer < 0 ? LMC_T_GLOBAL_COUNT : LMC_T_LAYER_COUNT); k++) {
            const lmc_tensor_slot *s = lmc_layout_slot(l, layer, k);
            if (s->offset == LMC_ABSENT || !counted(tr, layer, k))
                continue;
            size_t lo = s->offset > begin ? s->offset : begin, e = lmc_trainer_counted_end(tr, layer, k);
            size_t hi = e < end ? e : end;
            if (hi > lo)
                sq += squares(tr, g + (lo - begin), hi - lo);
        }
    return sq;
}

/* The global gradient norm: of the whole reduced gradient, or the sum of
 * the squares of the parts, over the shards (ZeRO), the tensor-parallel
 * parts and the pipeline stages. */
/* --ep: the rest of the model is whole and the same on every rank, each
 * rank's experts its own: the squares of the rest here, plus every group
 * member's experts (each expert once). ZeRO: every element is in one
 * rank's shard, the sum over the data-parallel ranks. */
static lmc_status ep_norm(lmc_trainer *tr, float *norm)
{
    const lmc_layout *lay = &tr->m->layout;
    const float *g = tr->m->grads, *own;
    double rest = 0, mine = 0;
    size_t n;
    for (int i = 0; (own = lmc_trainer_ep_grads(tr, i, &n)); i++)
        mine += squares(tr, own, n);
    if (tr->ex.ep_zero) {
        LMC_TRY(tr->comm->ops->allreduce_host(tr->comm, &mine, 1, 0));
        *norm = sqrtf((float)mine);
        return LMC_OK;
    }
    for (int u = 0; u < lmc_layout_num_units(lay); u++) {
        size_t b, e, x0, x1;
        lmc_layout_unit(lay, u, &b, &e);
        if (!lmc_trainer_ep_experts(tr, u, &x0, &x1))
            x0 = x1 = e;
        rest += squares(tr, g + b, x0 - b);
        mine += squares(tr, g + x0, x1 - x0);
    }
    LMC_TRY(tr->ex.epc->ops->allreduce_host(tr->ex.epc, &mine, 1, 0));
    *norm = sqrtf((float)(rest + mine));
    return LMC_OK;
}

static lmc_status grad_norm(lmc_trainer *tr, float *norm)
{
    if (tr->ex.ep_grads)
        return ep_norm(tr, norm);
    if (!tr->dp.zero && tr->tp == 1 && tr->pipe.pp == 1) {
        *norm = sqrtf(squares(tr, tr->m->grads, tr->m->layout.total));
        return LMC_OK;
    }
    double d = tr->tp > 1 || tr->pipe.pp > 1 ? part_squares(tr, own_grads(tr), tr->dp.own_begin, tr->dp.own_end)
                                        : squares(tr, own_grads(tr), tr->dp.own_end - tr->dp.own_begin);
    lmc_comm *groups[3] = {tr->dp.zero ? tr->comm : NULL, tr->tpc, tr->pipe.ppc};
    for (int i = 0; i < 3; i++)
        if (groups[i] && groups[i]->size > 1)
            LMC_TRY(groups[i]->ops->allreduce_host(groups[i], &d, 1, 0));
    *norm = sqrtf((float)d);
    return LMC_OK;
}

static lmc_status optimizer_step(lmc_trainer *tr, float *norm, float *lr)
{
    const lmc_train_opts *o = tr->o;
    double t0 = lmc_now();
    LMC_TRY(grad_norm(tr, norm));
    double comm_s = tr->dp.zero ? lmc_now() - t0 : 0;
    if (!isfinite(*norm)) {
        tr->dp.consistent_error = 1; /* every rank holds the same norm */
        return lmc_err(LMC_ERANGE, "step %d: the gradient norm is not finite (loss diverged; lower --lr)",
                       tr->step + 1);
    }
    float scale = 1.0f;
    if (o->clip > 0 && *norm > o->clip)
        scale = (float)(o->clip / (*norm + 1e-6));
    *lr = (float)lmc_lr_at(o, tr->step);
    if (tr->ex.ep_zero) /* --ep, ZeRO-1: the shards of the pieces */
        lmc_trainer_ep_adamw(tr, *lr, scale);
    else
        lmc_optim_step(&tr->opt, own_params(tr), own_grads(tr), *lr, (float)o->beta1, (float)o->beta2,
                       (float)o->eps, (float)o->weight_decay, scale);
    if (tr->dp.sh)
        LMC_TRY(lmc_shard_params_changed(tr->dp.sh));
    if (tr->dp.zero && tr->dp.zero < 3 && tr->comm->size > 1) {
        double t1 = lmc_now();
        LMC_TRY(tr->ex.ep_zero ? lmc_trainer_ep_allgather(tr)
                            : tr->comm->ops->allgather(tr->comm, tr->m->params, tr->m->layout.total));
        comm_s += lmc_now() - t1;
    }
    tr->me.comm_ms += comm_s * 1e3;
    return LMC_OK;
}

static void log_ranks(lmc_sb *sb, const char *key, const lmc_trainer *tr, size_t field, const char *fmt)
{
    lmc_sb_printf(sb, ",\"%s\":[", key);
    for (int r = 0; r < tr->comm->size; r++) {
        double v = *(const double *)((const char *)&tr->all[r] + field);
        if (r)
            lmc_sb_putc(sb, ',');
        lmc_sb_printf(sb, fmt, v);
    }
    lmc_sb_putc(sb, ']');
}

/* "run": the layout, batch and precision, on the first step line of each
 * run (lmc plan --calibrate-log reads it; every line stays one step). */
static void log_run(const lmc_trainer *tr, lmc_sb *sb)
{
    const lmc_train_opts *o = tr->o;
    lmc_sb_printf(sb, ",\"run\":{\"dp\":%d,\"tp\":%d,\"pp\":%d,\"vpp\":%d,\"ep\":%d,\"sp\":%s,\"zero\":%d,"
                  "\"recompute\":", tr->comm->size, tr->tp, tr->pipe.pp, tr->pipe.vpp, tr->ex.ep, o->sp ? "true" : "false",
                  tr->dp.zero);
    lmc_sb_json_str(sb, o->recompute, strlen(o->recompute));
    lmc_sb_printf(sb, ",\"batch\":%d,\"grad_accum\":%d,\"seq\":%d,\"precision\":", o->batch, o->grad_accum, o->seq);
    lmc_sb_json_str(sb, o->precision, strlen(o->precision));
    lmc_sb_printf(sb, ",\"threads\":%d,\"device\":", tr->be->threads);
    lmc_sb_json_str(sb, tr->be->name, strlen(tr->be->name));
    lmc_sb_printf(sb, ",\"params\":%.0f", lmc_config_num_params(&tr->cfg));
    /* the parameters each rank holds (--ep: the rest and its experts) */
    log_ranks(sb, "params_local", tr, offsetof(lmc_rank_stats, params_local), "%.0f");
    lmc_sb_putc(sb, '}');
}

static void log_step(lmc_trainer *tr, const lmc_train_event *ev, int has_val)
{
    if (!tr->log.f)
        return;
    lmc_sb sb;
    lmc_sb_init(&sb);
    lmc_sb_printf(&sb, "{\"step\":%d,\"loss\":", ev->step);
    lmc_sb_json_num(&sb, ev->loss);
    lmc_sb_puts(&sb, ",\"lr\":");
    lmc_sb_json_num(&sb, ev->lr);
    lmc_sb_puts(&sb, ",\"grad_norm\":");
    lmc_sb_json_num(&sb, ev->grad_norm);
    lmc_sb_printf(&sb, ",\"tokens_per_s\":%.2f,\"mfu\":%.5f,\"ms\":%.3f,\"tokens\":%llu", ev->tokens_per_s, ev->mfu,
                  ev->ms, (unsigned long long)tr->data.consumed * (unsigned long long)tr->o->seq);
    lmc_sb_printf(&sb, ",\"comm_ms\":%.3f,\"comm_busy_ms\":%.3f", tr->me.comm_ms, tr->me.busy_ms);
    if (tr->tp > 1)
        lmc_sb_printf(&sb, ",\"tp_values\":%.0f,\"tp_ms\":%.3f", tr->me.tp_values, tr->me.tp_ms);
    if (tr->cfg.n_expert > 0) { /* the load-balancing loss (unweighted), beside the language-model loss */
        double aux = 0;
        for (int r = 0; r < tr->comm->size; r++)
            aux += tr->all[r].aux_sum;
        lmc_sb_printf(&sb, ",\"aux_loss\":%.9g", aux / lmc_balance_total(tr));
        lmc_trainer_experts_log(tr, &sb); /* each layer's max / mean expert load */
    }
    if (tr->ex.ep > 1) { /* expert parallelism's exchanges: time and floats sent to other ranks */
        log_ranks(&sb, "a2a_ms", tr, offsetof(lmc_rank_stats, a2a_ms), "%.3f");
        log_ranks(&sb, "a2a_values", tr, offsetof(lmc_rank_stats, a2a_values), "%.0f");
    }
    if (tr->comm->size > 1) {
        log_ranks(&sb, "mb", tr, offsetof(lmc_rank_stats, mb), "%.0f");
        log_ranks(&sb, "compute_ms", tr, offsetof(lmc_rank_stats, compute_ms), "%.3f");
        log_ranks(&sb, "idle_ms", tr, offsetof(lmc_rank_stats, idle_ms), "%.3f");
        log_ranks(&sb, "rank_comm_ms", tr, offsetof(lmc_rank_stats, comm_ms), "%.3f"); /* comm_ms of each rank */
    }
    log_ranks(&sb, "rss_mb", tr, offsetof(lmc_rank_stats, rss_mb), "%.1f");
    log_ranks(&sb, "cpu_ms", tr, offsetof(lmc_rank_stats, cpu_ms), "%.3f"); /* each rank's CPU time of the step */
    if (tr->pipe.pp > 1) {
        lmc_sb_puts(&sb, ",\"pp_bubble\":[");
        for (int s = 0; s < tr->pipe.pp; s++)
            lmc_sb_printf(&sb, "%s%.4f", s ? "," : "", tr->pipe.pp_bubble[s]);
        lmc_sb_putc(&sb, ']');
        lmc_sb_puts(&sb, ",\"stage_rss_mb\":[");
        for (int s = 0; s < tr->pipe.pp; s++)
            lmc_sb_printf(&sb, "%s%.1f", s ? "," : "", tr->pipe.pp_rss[s]);
        lmc_sb_putc(&sb, ']');
    }
    if (has_val) {
        lmc_sb_puts(&sb, ",\"val_loss\":");
        lmc_sb_json_num(&sb, ev->val_loss);
        if (ev->val_bpb >= 0) {
            lmc_sb_puts(&sb, ",\"val_bpb\":");
            lmc_sb_json_num(&sb, ev->val_bpb);
        }
    }
    if (!tr->log.logged_run)
        log_run(tr, &sb), tr->log.logged_run = 1;
    lmc_sb_puts(&sb, "}\n");
    fwrite(sb.s, 1, sb.len, tr->log.f);
    fflush(tr->log.f);
    lmc_sb_free(&sb);
}

static lmc_status after_step(lmc_trainer *tr, lmc_train_event *ev)
{
    const lmc_train_opts *o = tr->o;
    int has_val = 0, last = tr->step == o->steps;
    if (o->eval_every > 0 && (tr->step % o->eval_every == 0 || last)) {
        LMC_TRY(lmc_trainer_eval(tr, &ev->val_loss, &ev->val_bpb));
        has_val = 1;
    }
    log_step(tr, ev, has_val);
    if (o->report && (has_val || last)) /* the page, from the log rank 0 just wrote */
        LMC_TRY(lmc_trainer_agree(tr, tr->world->rank ? LMC_OK : lmc_report_update(o->report, o->log), "--report"));
    if (has_val) {
        lmc_train_event e = *ev;
        e.kind = LMC_EV_EVAL;
        lmc_trainer_emit(tr, &e);
    }
    /* under ZeRO-3 and --tp the forward pass is a collective: every rank samples */
    int all_sample = tr->dp.zero == 3 || tr->tp > 1 || tr->pipe.pp > 1 || tr->ex.ep > 1;
    if (o->sample_every > 0 && tr->step % o->sample_every == 0 && (tr->world->rank == 0 || all_sample)) {
        lmc_sb text;
        lmc_sb_init(&text);
        lmc_status s = lmc_trainer_sample(tr, &text);
        lmc_train_event e = {.kind = LMC_EV_SAMPLE, .step = tr->step, .text = text.s ? text.s : ""};
        if (s == LMC_OK && tr->world->rank == 0)
            lmc_trainer_emit(tr, &e);
        lmc_sb_free(&text);
        LMC_TRY(s);
    }
    if (o->out_dir && ((o->save_every > 0 && tr->step % o->save_every == 0) || last || tr->stop))
        LMC_TRY(lmc_trainer_save(tr));
    return LMC_OK;
}

/* Every rank's statistics to every rank: the loss, the balance measurements
 * and the log's per-rank columns; and a watchdog scaled to the step time. */
static lmc_status gather_stats(lmc_trainer *tr)
{
    lmc_comm *c = tr->comm;
    if (tr->pipe.ppc) { /* the loss is the last stage's; all stages agree on the balance's measurements */
        double loss = tr->me.loss_sum, wait = tr->me.pp_wait_ms;
        LMC_TRY(tr->pipe.ppc->ops->allreduce_host(tr->pipe.ppc, &loss, 1, 0));
        LMC_TRY(tr->pipe.ppc->ops->allreduce_host(tr->pipe.ppc, &tr->me.compute_ms, 1, 1));
        LMC_TRY(tr->pipe.ppc->ops->allgather_host(tr->pipe.ppc, &wait, tr->pipe.pp_bubble, sizeof wait));
        LMC_TRY(tr->pipe.ppc->ops->allgather_host(tr->pipe.ppc, &tr->me.rss_mb, tr->pipe.pp_rss, sizeof(double)));
        for (int s = 0; s < tr->pipe.pp; s++)
            tr->pipe.pp_bubble[s] /= tr->me.step_ms;
        tr->me.loss_sum = loss;
    }
    LMC_TRY(c->ops->allgather_host(c, &tr->me, tr->all, sizeof tr->me));
    for (int r = 0; r < c->size; r++)
        if (tr->all[r].step_ms / 1e3 > tr->max_step_s)
            tr->max_step_s = tr->all[r].step_ms / 1e3;
    c->timeout_s = 20 * tr->max_step_s > 600 ? 20 * tr->max_step_s : 600;
    lmc_comm *groups[4] = {tr->tpc, tr->pipe.ppc, tr->pipe.embc, tr->ex.epc};
    for (int i = 0; i < 4; i++)
        if (groups[i])
            groups[i]->timeout_s = c->timeout_s;
    return LMC_OK;
}

/* Whether any rank was asked to stop: in the statistics the data-parallel
 * group just gathered and, with --tp or --pp, over the whole job. */
static lmc_status agree_stop(lmc_trainer *tr)
{
    double stop = 0;
    for (int r = 0; r < tr->comm->size; r++)
        stop = tr->all[r].stop > stop ? tr->all[r].stop : stop;
    if (tr->world != tr->comm && tr->world->size > 1)
        LMC_TRY(tr->world->ops->allreduce_host(tr->world, &stop, 1, 1));
    tr->stop = stop > 0;
    return LMC_OK;
}

lmc_status lmc_trainer_step(lmc_trainer *tr)
{
    const lmc_train_opts *o = tr->o;
    double t0 = lmc_now(), busy0 = tr->comm->busy_s, tpv0 = tr->m->tp_values, tps0 = tr->m->tp_s, a2a0, vals0, a2a1,
           vals1;
    double c0 = lmc_cpu_now();
    float norm = 0, lr = 0;
    memset(&tr->me, 0, sizeof tr->me);
    lmc_moe_ep_stats(tr->m, &a2a0, &vals0);
    LMC_TRY(accumulate_grads(tr));
    double t1 = lmc_now();
    LMC_TRY(wait_buckets(tr));
    LMC_TRY(lmc_pipe_sync_embed(tr));
    LMC_TRY(lmc_trainer_kv_sum(tr, own_grads(tr)));
    LMC_TRY(lmc_trainer_sp_sum(tr, own_grads(tr)));
    tr->me.idle_ms = (lmc_now() - t1) * 1e3;
    tr->me.comm_ms += tr->me.idle_ms;
    LMC_TRY(optimizer_step(tr, &norm, &lr));
    /* a device error during the step (every rank stops together) */
    LMC_TRY(lmc_trainer_agree(tr, lmc_backend_check(tr->be), "the backend"));
    LMC_TRY(lmc_trainer_experts_step(tr));
    double dt = lmc_now() - t0;
    tr->me.step_ms = dt * 1e3;
    tr->me.cpu_ms = (lmc_cpu_now() - c0) * 1e3;
    tr->me.busy_ms = (tr->comm->busy_s - busy0) * 1e3;
    tr->me.tp_values = tr->m->tp_values - tpv0;
    tr->me.tp_ms = (tr->m->tp_s - tps0) * 1e3;
    lmc_moe_ep_stats(tr->m, &a2a1, &vals1);
    tr->me.a2a_ms = (a2a1 - a2a0) * 1e3;
    tr->me.a2a_values = vals1 - vals0;
    tr->me.rss_mb = (double)lmc_peak_rss() / 1e6;
    tr->me.params_local = (double)lmc_trainer_params_held(tr);
    tr->me.stop = stop_signal;
    LMC_TRY(gather_stats(tr));
    LMC_TRY(agree_stop(tr));
    int J = lmc_balance_total(tr);
    double loss = 0;
    for (int r = 0; r < tr->comm->size; r++)
        loss += tr->all[r].loss_sum;
    tr->log.last_loss = (float)(loss / J);
    tr->data.consumed += (uint64_t)o->batch * J;
    tr->step++;
    lmc_balance_update(tr);
    double tokens = (double)o->batch * o->seq * J;
    lmc_train_event ev = {.kind = LMC_EV_STEP, .step = tr->step, .loss = tr->log.last_loss, .lr = lr,
                          .grad_norm = norm, .tokens_per_s = tokens / dt, .ms = dt * 1e3, .val_bpb = -1};
    ev.mfu = ev.tokens_per_s * tr->log.flops_per_token / (tr->log.peak_flops * tr->world->size);
    ev.elapsed_s = lmc_now() - tr->log.start_time;
    ev.eta_s = dt * (o->steps - tr->step);
    lmc_trainer_emit(tr, &ev);
    return after_step(tr, &ev);
}
