/* trainer.c: setting up a training job and running its steps. */
#include "train/trainer.h"
#include "lmc/tokenizer.h"
#include "train/checkpoint.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void lmc_trainer_emit(lmc_trainer *tr, lmc_train_event *ev)
{
    ev->rank = tr->comm->rank;
    ev->world = tr->comm->size;
    ev->steps = tr->o->steps;
    if (tr->cb)
        tr->cb(tr->ctx, ev);
}

static lmc_status apply_overrides(const lmc_train_opts *o, lmc_model_config *c, int tok_vocab)
{
    int *dst[] = {&c->n_layer, &c->n_head, &c->n_kv_head, &c->dim, &c->ffn_dim, &c->vocab, &c->max_seq};
    const int src[] = {o->layers, o->heads, o->kv_heads, o->dim, o->ffn, o->vocab, o->max_seq};
    int heads_set = o->heads > 0, dim_set = o->dim > 0;
    for (int i = 0; i < 7; i++)
        if (src[i] > 0)
            *dst[i] = src[i];
    if (o->vocab <= 0 && tok_vocab > 0)
        c->vocab = tok_vocab; /* a fresh model takes its tokenizer's vocabulary */
    if (heads_set && o->kv_heads <= 0 && c->n_kv_head > c->n_head)
        c->n_kv_head = c->n_head;
    if (heads_set && o->kv_heads <= 0 && !strcmp(c->family, "gpt2"))
        c->n_kv_head = c->n_head;
    if (dim_set && o->ffn <= 0 && c->mlp == LMC_MLP_GELU)
        c->ffn_dim = 4 * c->dim;
    return lmc_config_finish(c);
}

/* With --resume the checkpoint defines the model; model flags given as well
 * (rerunning the same command line) must describe the same model. */
static lmc_status check_resume_model(const lmc_train_opts *o, const lmc_model_config *ck, const char *path)
{
    if (!o->model)
        return LMC_OK;
    lmc_model_config want;
    LMC_TRY(lmc_config_load(o->model, &want));
    LMC_TRY(apply_overrides(o, &want, ck->vocab));
    if (want.n_layer == ck->n_layer && want.n_head == ck->n_head && want.n_kv_head == ck->n_kv_head &&
        want.dim == ck->dim && want.ffn_dim == ck->ffn_dim && want.vocab == ck->vocab &&
        want.max_seq == ck->max_seq && !strcmp(want.family, ck->family))
        return LMC_OK;
    char a[256], b[256];
    lmc_config_describe(&want, a, sizeof a);
    lmc_config_describe(ck, b, sizeof b);
    return lmc_err(LMC_EINVAL, "--resume %s holds a different model (%s) than the model flags say (%s)", path, b, a);
}

/* The starting point: a checkpoint, weights from a file, or a fresh init. */
static lmc_status initial_state(lmc_trainer *tr, float **params, float **m, float **v, lmc_ckpt_state *st)
{
    const lmc_train_opts *o = tr->o;
    lmc_layout layout;
    *m = *v = NULL;
    memset(st, 0, sizeof *st);
    if (o->resume) {
        char path[4096];
        LMC_TRY(lmc_ckpt_resolve(o->resume, path, sizeof path));
        LMC_TRY(lmc_ckpt_load(path, st, &tr->cfg, &layout, params, m, v));
        lmc_layout_free(&layout);
        lmc_status s = check_resume_model(o, &tr->cfg, path);
        if (s == LMC_OK && st->seq != o->seq)
            s = lmc_err(LMC_EINVAL, "--seq %d differs from the checkpoint's %d (%s): the data position is counted "
                        "in sequences of that length", o->seq, st->seq, path);
        if (s) {
            lmc_free(*params), lmc_free(*m), lmc_free(*v);
            *params = *m = *v = NULL;
        }
        return s;
    }
    if (o->init) {
        if (o->model)
            return lmc_err(LMC_EINVAL, "give either --model or --init, not both (--init takes the model from the file)");
        LMC_TRY(lmc_weights_load(o->init, &tr->cfg, &layout, params));
        lmc_layout_free(&layout);
        return LMC_OK;
    }
    if (!o->model)
        return lmc_err(LMC_EINVAL, "give --model PRESET (e.g. d6), --init FILE.safetensors or --resume DIR");
    LMC_TRY(lmc_config_load(o->model, &tr->cfg));
    LMC_TRY(apply_overrides(o, &tr->cfg, tr->tok ? lmc_tok_vocab_size(tr->tok) : 0));
    LMC_TRY(lmc_layout_build(&tr->cfg, &layout));
    *params = lmc_alloc(layout.total * sizeof(float), "model parameters");
    if (*params)
        lmc_weights_init(&tr->cfg, &layout, *params, tr->seed);
    lmc_layout_free(&layout);
    return *params ? LMC_OK : LMC_ENOMEM;
}

static lmc_status open_data(lmc_trainer *tr)
{
    const lmc_train_opts *o = tr->o;
    if (!o->data)
        return lmc_err(LMC_EINVAL, "--data GLOB is required (token shards in llm.c's format)");
    LMC_TRY(lmc_tokens_open(&tr->train, o->data));
    if (lmc_tokens_num_seqs(&tr->train, o->seq) == 0)
        return lmc_err(LMC_ERANGE, "--data %s: %zu tokens is too few for one sequence of --seq %d (+1)", o->data,
                       tr->train.total, o->seq);
    if (o->val_data) {
        LMC_TRY(lmc_tokens_open(&tr->val, o->val_data));
        if (lmc_tokens_num_seqs(&tr->val, o->seq) == 0)
            return lmc_err(LMC_ERANGE, "--val-data %s: %zu tokens is too few for one sequence of --seq %d (+1)",
                           o->val_data, tr->val.total, o->seq);
        tr->have_val = 1;
    }
    return LMC_OK;
}

static lmc_status check_opts(const lmc_train_opts *o)
{
    if (strcmp(o->schedule, "cosine") && strcmp(o->schedule, "linear") && strcmp(o->schedule, "constant"))
        return lmc_err(LMC_EINVAL, "--schedule: '%s' is not cosine, linear or constant", o->schedule);
    if (strcmp(o->precision, "fp32") && strcmp(o->precision, "bf16"))
        return lmc_err(LMC_EINVAL, "--precision: '%s' is not fp32 or bf16", o->precision);
    if (o->save_every > 0 && !o->out_dir)
        return lmc_err(LMC_EINVAL, "--save-every needs --out DIR for the checkpoints");
    if (o->eval_every > 0 && !o->val_data)
        return lmc_err(LMC_EINVAL, "--eval-every needs --val-data GLOB");
    return LMC_OK;
}

static lmc_status setup_model(lmc_trainer *tr, float *params, float *m, float *v, const lmc_ckpt_state *st)
{
    const lmc_train_opts *o = tr->o;
    LMC_TRY(lmc_model_open(&tr->m, &tr->cfg, tr->be, o->batch, o->seq, 1));
    tr->m->prec = strcmp(o->precision, "bf16") ? LMC_F32 : LMC_BF16;
    lmc_model_upload_params(tr->m, params);
    const lmc_layout *l = &tr->m->layout;
    LMC_TRY(lmc_optim_open(&tr->opt, tr->be, l, tr->cfg.tied, 0, l->total));
    if (m) {
        tr->be->ops->upload(tr->be, tr->opt.m, m, l->total * sizeof(float));
        tr->be->ops->upload(tr->be, tr->opt.v, v, l->total * sizeof(float));
        tr->opt.t = st->adam_t;
    }
    return LMC_OK;
}

static lmc_status setup(lmc_trainer *tr)
{
    const lmc_train_opts *o = tr->o;
    LMC_TRY(check_opts(o));
    LMC_TRY(lmc_comm_open(o->dist, &tr->comm));
    LMC_TRY(lmc_backend_open(o->device, o->threads, &tr->be));
    tr->seed = o->seed;
    tr->shuffle = o->shuffle;
    float *params = NULL, *m = NULL, *v = NULL;
    lmc_ckpt_state st;
    if (o->tokenizer)
        LMC_TRY(lmc_tok_load(o->tokenizer, &tr->tok));
    LMC_TRY(initial_state(tr, &params, &m, &v, &st));
    if (tr->tok && lmc_tok_vocab_size(tr->tok) > tr->cfg.vocab) {
        lmc_free(params), lmc_free(m), lmc_free(v);
        return lmc_err(LMC_EINVAL, "--tokenizer %s has %d tokens but the model's vocabulary is %d", o->tokenizer,
                       lmc_tok_vocab_size(tr->tok), tr->cfg.vocab);
    }
    if (o->resume) {
        tr->step = st.step;
        tr->consumed = st.consumed;
        tr->seed = st.seed;
        tr->shuffle = st.shuffle;
        tr->last_loss = st.loss;
    }
    lmc_status s = open_data(tr);
    if (s == LMC_OK)
        s = setup_model(tr, params, m, v, &st);
    lmc_free(params);
    lmc_free(m);
    lmc_free(v);
    if (s)
        return s;
    size_t n = (size_t)o->batch * o->seq;
    tr->inputs = malloc(n * sizeof(int));
    tr->targets = malloc(n * sizeof(int));
    if (!tr->inputs || !tr->targets)
        return lmc_err(LMC_ENOMEM, "out of memory");
    tr->flops_per_token = lmc_config_train_flops_per_token(&tr->cfg, o->seq);
    tr->peak_flops = tr->be->ops->peak_flops(tr->be, tr->m->prec);
    if (o->log && tr->comm->rank == 0) {
        tr->log = fopen(o->log, o->resume ? "a" : "w");
        if (!tr->log)
            return lmc_err(LMC_EIO, "--log %s: cannot open for writing", o->log);
    }
    return LMC_OK;
}

static void teardown(lmc_trainer *tr)
{
    if (tr->log)
        fclose(tr->log);
    free(tr->inputs);
    free(tr->targets);
    lmc_optim_close(&tr->opt);
    lmc_model_close(tr->m);
    lmc_tokens_close(&tr->train);
    if (tr->have_val)
        lmc_tokens_close(&tr->val);
    lmc_backend_close(tr->be);
    lmc_comm_close(tr->comm);
    lmc_tok_free(tr->tok);
}

/* Forward and backward over this rank's micro-batches; returns the mean loss. */
static lmc_status accumulate_grads(lmc_trainer *tr, float *loss)
{
    const lmc_train_opts *o = tr->o;
    int B = o->batch, T = o->seq, K = o->grad_accum, world = tr->comm->size;
    float dloss = 1.0f / ((float)B * T * K * world), sum = 0;
    lmc_model_zero_grads(tr->m);
    for (int k = 0; k < K; k++) {
        uint64_t g0 = tr->consumed + (uint64_t)(tr->comm->rank * K + k) * B;
        LMC_TRY(lmc_tokens_batch(&tr->train, g0, B, T, tr->seed, tr->shuffle, tr->cfg.vocab, tr->inputs,
                                 tr->targets));
        LMC_TRY(lmc_model_set_batch(tr->m, tr->inputs, tr->targets, B, T, o->data));
        lmc_model_forward(tr->m, B, T, LMC_FWD_TRAIN, dloss);
        sum += lmc_model_mean_loss(tr->m, B, T);
        lmc_model_backward(tr->m, B, T, NULL, NULL);
    }
    *loss = sum / K;
    return LMC_OK;
}

static lmc_status optimizer_step(lmc_trainer *tr, float *grad_norm, float *lr)
{
    const lmc_train_opts *o = tr->o;
    lmc_backend *be = tr->be;
    size_t total = tr->m->layout.total;
    if (tr->comm->size > 1)
        LMC_TRY(tr->comm->ops->allreduce(tr->comm, tr->m->grads, total));
    float sq;
    be->ops->sum(be, tr->m->a.scalar, tr->m->grads, total, 1);
    be->ops->download(be, &sq, tr->m->a.scalar, sizeof sq);
    *grad_norm = sqrtf(sq);
    if (!isfinite(*grad_norm))
        return lmc_err(LMC_ERANGE, "step %d: the gradient norm is not finite (loss diverged; lower --lr)", tr->step + 1);
    float scale = 1.0f;
    if (o->clip > 0 && *grad_norm > o->clip)
        scale = (float)(o->clip / (*grad_norm + 1e-6));
    *lr = (float)lmc_lr_at(o, tr->step);
    lmc_optim_step(&tr->opt, tr->m->params, tr->m->grads, *lr, (float)o->beta1, (float)o->beta2, (float)o->eps,
                   (float)o->weight_decay, scale);
    return LMC_OK;
}

static void log_step(lmc_trainer *tr, const lmc_train_event *ev, int has_val)
{
    if (!tr->log)
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
                  ev->ms, (unsigned long long)tr->consumed * (unsigned long long)tr->o->seq);
    if (has_val) {
        lmc_sb_puts(&sb, ",\"val_loss\":");
        lmc_sb_json_num(&sb, ev->val_loss);
        if (ev->val_bpb >= 0) {
            lmc_sb_puts(&sb, ",\"val_bpb\":");
            lmc_sb_json_num(&sb, ev->val_bpb);
        }
    }
    lmc_sb_puts(&sb, "}\n");
    fwrite(sb.s, 1, sb.len, tr->log);
    fflush(tr->log);
    lmc_sb_free(&sb);
}

static lmc_status save_checkpoint(lmc_trainer *tr)
{
    lmc_backend *be = tr->be;
    const lmc_layout *l = &tr->m->layout;
    size_t bytes = l->total * sizeof(float);
    lmc_status s = LMC_OK;
    if (tr->comm->rank == 0) {
        float *p = lmc_alloc(bytes, "checkpoint staging"), *m = lmc_alloc(bytes, "checkpoint staging"),
              *v = lmc_alloc(bytes, "checkpoint staging");
        s = p && m && v ? LMC_OK : LMC_ENOMEM;
        if (s == LMC_OK) {
            lmc_model_download_params(tr->m, p);
            be->ops->download(be, m, tr->opt.m, bytes);
            be->ops->download(be, v, tr->opt.v, bytes);
            lmc_ckpt_state st = {.step = tr->step, .consumed = tr->consumed, .seed = tr->seed,
                                 .shuffle = tr->shuffle, .seq = tr->o->seq, .world = tr->comm->size,
                                 .adam_t = tr->opt.t, .loss = tr->last_loss};
            char saved[4096];
            s = lmc_ckpt_save(tr->o->out_dir, &st, &tr->cfg, l, p, m, v, tr->o->keep, saved, sizeof saved);
            if (s == LMC_OK) {
                lmc_train_event ev = {.kind = LMC_EV_SAVE, .step = tr->step, .text = saved};
                lmc_trainer_emit(tr, &ev);
            }
        }
        lmc_free(p);
        lmc_free(m);
        lmc_free(v);
    }
    lmc_status cs = tr->comm->ops->barrier(tr->comm);
    return s ? s : cs;
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
    if (has_val) {
        lmc_train_event e = *ev;
        e.kind = LMC_EV_EVAL;
        lmc_trainer_emit(tr, &e);
    }
    if (o->sample_every > 0 && tr->step % o->sample_every == 0 && tr->comm->rank == 0) {
        lmc_sb text;
        lmc_sb_init(&text);
        lmc_status s = lmc_trainer_sample(tr, &text);
        lmc_train_event e = {.kind = LMC_EV_SAMPLE, .step = tr->step, .text = text.s ? text.s : ""};
        if (s == LMC_OK)
            lmc_trainer_emit(tr, &e);
        lmc_sb_free(&text);
        LMC_TRY(s);
    }
    if (o->out_dir && ((o->save_every > 0 && tr->step % o->save_every == 0) || last))
        LMC_TRY(save_checkpoint(tr));
    return LMC_OK;
}

static lmc_status train_step(lmc_trainer *tr)
{
    const lmc_train_opts *o = tr->o;
    double t0 = lmc_now();
    float loss = 0, grad_norm = 0, lr = 0;
    LMC_TRY(accumulate_grads(tr, &loss));
    LMC_TRY(optimizer_step(tr, &grad_norm, &lr));
    int world = tr->comm->size;
    double l = loss;
    LMC_TRY(tr->comm->ops->allreduce_host(tr->comm, &l, 1, 0));
    tr->last_loss = (float)(l / world);
    tr->consumed += (uint64_t)o->batch * o->grad_accum * world;
    tr->step++;
    tr->be->ops->sync(tr->be);
    double dt = lmc_now() - t0, tokens = (double)o->batch * o->seq * o->grad_accum * world;
    lmc_train_event ev = {.kind = LMC_EV_STEP, .step = tr->step, .loss = tr->last_loss, .lr = lr,
                          .grad_norm = grad_norm, .tokens_per_s = tokens / dt, .ms = dt * 1e3, .val_bpb = -1};
    ev.mfu = ev.tokens_per_s * tr->flops_per_token / (tr->peak_flops * world);
    ev.elapsed_s = lmc_now() - tr->start_time;
    ev.eta_s = dt * (o->steps - tr->step);
    lmc_trainer_emit(tr, &ev);
    return after_step(tr, &ev);
}

static lmc_status save_final(lmc_trainer *tr)
{
    if (!tr->o->save || tr->comm->rank != 0)
        return LMC_OK;
    float *p = lmc_alloc(tr->m->layout.total * sizeof(float), "final weights");
    if (!p)
        return LMC_ENOMEM;
    lmc_model_download_params(tr->m, p);
    lmc_status s = lmc_weights_save(tr->o->save, &tr->cfg, &tr->m->layout, p);
    lmc_free(p);
    if (s == LMC_OK) {
        lmc_train_event ev = {.kind = LMC_EV_SAVE, .step = tr->step, .text = tr->o->save};
        lmc_trainer_emit(tr, &ev);
    }
    return s;
}

static void describe(lmc_trainer *tr)
{
    const lmc_train_opts *o = tr->o;
    char desc[1024], cfg[512];
    lmc_config_describe(&tr->cfg, cfg, sizeof cfg);
    snprintf(desc, sizeof desc,
             "%s\ndevice %s (%d threads), %s, %d rank%s; batch %d x %d x accum %d = %d tokens/step; %zu train "
             "tokens%s; starting at step %d",
             cfg, tr->be->name, tr->be->threads, o->precision, tr->comm->size, tr->comm->size > 1 ? "s" : "", o->batch,
             o->seq, o->grad_accum, o->batch * o->seq * o->grad_accum * tr->comm->size, tr->train.total,
             tr->shuffle ? " (shuffled)" : " (in order)", tr->step);
    lmc_train_event ev = {.kind = LMC_EV_START, .step = tr->step, .text = desc};
    lmc_trainer_emit(tr, &ev);
}

lmc_status lmc_train(const lmc_train_opts *o, lmc_train_cb cb, void *ctx)
{
    lmc_trainer tr;
    memset(&tr, 0, sizeof tr);
    tr.o = o;
    tr.cb = cb;
    tr.ctx = ctx;
    tr.start_time = lmc_now();
    lmc_status s = setup(&tr);
    if (s == LMC_OK)
        describe(&tr);
    while (s == LMC_OK && tr.step < o->steps)
        s = train_step(&tr);
    if (s == LMC_OK)
        s = save_final(&tr);
    if (s == LMC_OK) {
        lmc_train_event ev = {.kind = LMC_EV_DONE, .step = tr.step, .loss = tr.last_loss};
        ev.elapsed_s = lmc_now() - tr.start_time;
        lmc_trainer_emit(&tr, &ev);
    }
    teardown(&tr);
    return s;
}
