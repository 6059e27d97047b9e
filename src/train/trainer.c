/* trainer.c: setting up a training job (one rank or many) and running it. */
#include "train/trainer.h"
#include "lmc/tokenizer.h"
#include "model/moe.h"
#include "train/checkpoint.h"
#include "dist/hier.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

void lmc_trainer_emit(lmc_trainer *tr, lmc_train_event *ev)
{
    ev->rank = tr->world->rank;
    ev->world = tr->world->size;
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

/* The elements [*begin, *end) of the parameters this rank starts from: all
 * of them, or under ZeRO-3 its shard (no rank ever holds the whole model).
 * Under --tp, --pp or --ep none here: setup_model reads the rank's part
 * (part_load.c) once the model's layout says what that is. */
static void start_range(const lmc_trainer *tr, const lmc_layout *l, size_t *begin, size_t *end)
{
    size_t count = l->total;
    *begin = 0;
    if (tr->dp.zero == 3)
        lmc_comm_shard(l->total, tr->comm->size, tr->comm->rank, begin, &count);
    *end = *begin + count;
}

typedef lmc_status (*range_loader)(const char *path, lmc_ckpt_state *st, lmc_model_config *cfg, lmc_layout *l,
                                   size_t begin, size_t end, float *dst);

static lmc_status ckpt_loader(const char *path, lmc_ckpt_state *st, lmc_model_config *cfg, lmc_layout *l,
                              size_t begin, size_t end, float *dst)
{
    return lmc_ckpt_load_range(path, st, cfg, l, begin, end, dst);
}

static lmc_status weights_loader(const char *path, lmc_ckpt_state *st, lmc_model_config *cfg, lmc_layout *l,
                                 size_t begin, size_t end, float *dst)
{
    return lmc_weights_load_range(path, cfg, l, begin, end, dst);
}

/* This rank's range of the parameters from a file: the config first (an
 * empty range), then the range. */
static lmc_status load_start(lmc_trainer *tr, range_loader load, const char *path, lmc_ckpt_state *st,
                             float **params, size_t *begin)
{
    lmc_layout layout;
    size_t end;
    LMC_TRY(load(path, st, &tr->cfg, &layout, 0, 0, NULL));
    start_range(tr, &layout, begin, &end);
    lmc_layout_free(&layout);
    if (lmc_trainer_holds_part(tr)) /* its part is read once the model is open: setup_model */
        return LMC_OK;
    *params = lmc_alloc((end - *begin ? end - *begin : 1) * sizeof(float), "model parameters");
    if (!*params)
        return LMC_ENOMEM;
    lmc_status s = load(path, st, &tr->cfg, &layout, *begin, end, *params);
    lmc_layout_free(&layout);
    return s;
}

/* The starting point: a checkpoint (ckpt receives its folder), weights from
 * a file, or a fresh init; *params holds the elements from *begin on (see
 * start_range), or under --tp, --pp or --ep nothing yet (the config only). */
static lmc_status initial_state(lmc_trainer *tr, float **params, size_t *begin, lmc_ckpt_state *st, char *ckpt,
                                size_t n)
{
    const lmc_train_opts *o = tr->o;
    lmc_layout layout;
    memset(st, 0, sizeof *st);
    if (o->resume) {
        LMC_TRY(lmc_ckpt_resolve(o->resume, ckpt, n));
        lmc_status s = load_start(tr, ckpt_loader, ckpt, st, params, begin);
        if (s == LMC_OK)
            s = check_resume_model(o, &tr->cfg, ckpt);
        if (s == LMC_OK && st->seq != o->seq)
            s = lmc_err(LMC_EINVAL, "--seq %d differs from the checkpoint's %d (%s): the data position is counted "
                        "in sequences of that length", o->seq, st->seq, ckpt);
        return s;
    }
    if (o->init) {
        if (o->model)
            return lmc_err(LMC_EINVAL, "give either --model or --init, not both (--init takes the model from the file)");
        return load_start(tr, weights_loader, o->init, st, params, begin);
    }
    if (!o->model)
        return lmc_err(LMC_EINVAL, "give --model PRESET (e.g. d6), --init FILE.safetensors or --resume DIR");
    LMC_TRY(lmc_config_load(o->model, &tr->cfg));
    LMC_TRY(apply_overrides(o, &tr->cfg, tr->data.tok ? lmc_tok_vocab_size(tr->data.tok) : 0));
    if (lmc_trainer_holds_part(tr)) /* its part is drawn once the model is open: setup_model */
        return LMC_OK;
    LMC_TRY(lmc_layout_build(&tr->cfg, &layout));
    size_t end;
    start_range(tr, &layout, begin, &end);
    *params = lmc_alloc((end - *begin ? end - *begin : 1) * sizeof(float), "model parameters");
    lmc_status s = *params ? lmc_weights_init_range(&tr->cfg, &layout, *begin, end, *params, tr->data.seed) : LMC_ENOMEM;
    lmc_layout_free(&layout);
    return s;
}

static lmc_status open_data(lmc_trainer *tr)
{
    const lmc_train_opts *o = tr->o;
    if (!o->data)
        return lmc_err(LMC_EINVAL, "--data GLOB is required (token shards in llm.c's format)");
    LMC_TRY(lmc_tokens_open(&tr->data.train, o->data));
    if (lmc_tokens_num_seqs(&tr->data.train, o->seq) == 0)
        return lmc_err(LMC_ERANGE, "--data %s: %zu tokens is too few for one sequence of --seq %d (+1)", o->data,
                       tr->data.train.total, o->seq);
    if (o->val_data) {
        LMC_TRY(lmc_tokens_open(&tr->data.val, o->val_data));
        if (lmc_tokens_num_seqs(&tr->data.val, o->seq) == 0)
            return lmc_err(LMC_ERANGE, "--val-data %s: %zu tokens is too few for one sequence of --seq %d (+1)",
                           o->val_data, tr->data.val.total, o->seq);
        tr->data.have_val = 1;
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
    if (o->report && !o->log)
        return lmc_err(LMC_EINVAL, "--report %s is drawn from the log: it needs --log FILE.jsonl", o->report);
    if (o->zero < 0 || o->zero > 3)
        return lmc_err(LMC_EINVAL, "--zero %d: the stages are 0, 1, 2 and 3", o->zero);
    lmc_recompute rc;
    return lmc_recompute_parse(o->recompute, &rc);
}

/* The job's process groups, ranks ordered tp innermost, then pp, then dp:
 * --tp consecutive ranks split every layer (the fast links inside a node),
 * --pp groups of those hold consecutive layers each, and the ranks holding
 * the same part of the model form a data-parallel group. */
static lmc_status open_groups(lmc_trainer *tr)
{
    const lmc_train_opts *o = tr->o;
    LMC_TRY(lmc_comm_open_job(o->dist, o->device, &tr->world)); /* mixed chip kinds: hier.c */
    lmc_comm *w = tr->world;
    tr->comm = w;
    tr->tp = o->tp > 1 ? o->tp : 1;
    tr->pipe.pp = o->pp > 1 ? o->pp : 1;
    tr->pipe.vpp = o->vpp > 1 ? o->vpp : 1;
    int mp = tr->tp * tr->pipe.pp;
    if (o->sp && tr->tp == 1)
        return lmc_err(LMC_EINVAL, "--sp splits the rows over the tensor-parallel group: it needs --tp >= 2");
    if (tr->pipe.vpp > 1 && tr->pipe.pp == 1)
        return lmc_err(LMC_EINVAL, "--vpp %d interleaves the chunks of a pipeline: it needs --pp >= 2", tr->pipe.vpp);
    if (tr->pipe.vpp > 1 && o->grad_accum % tr->pipe.pp)
        return lmc_err(LMC_EINVAL, "--vpp %d: --grad-accum %d must be a multiple of --pp %d (the interleaved "
                       "schedule runs micro-batches in groups of pp)", tr->pipe.vpp, o->grad_accum, tr->pipe.pp);
    if (mp == 1)
        return LMC_OK;
    if (w->size % mp) {
        char what[64];
        if (tr->tp > 1 && tr->pipe.pp > 1)
            snprintf(what, sizeof what, "--tp %d x --pp %d = %d", tr->tp, tr->pipe.pp, mp);
        else
            snprintf(what, sizeof what, tr->pipe.pp > 1 ? "--pp %d" : "--tp %d", mp);
        return lmc_err(LMC_EINVAL, "%s does not divide the %d ranks of this job: a job is groups of %d consecutive "
                       "ranks (each holding the whole model between them) times data-parallel replicas, so run a "
                       "multiple of %d ranks", what, w->size, mp, mp);
    }
    if (o->zero >= 2 && tr->pipe.pp > 1 && o->balance && !strcmp(o->balance, "auto"))
        return lmc_err(LMC_EUNSUPPORTED, "--pp with --zero %d and --balance auto is not supported: every "
                       "data-parallel rank of a pipeline stage runs the same micro-batches (use --zero 0 or 1 to "
                       "balance)", o->zero);
    if (tr->pipe.pp > 1 && o->grad_accum < tr->pipe.pp)
        return lmc_err(LMC_EINVAL, "--grad-accum %d is smaller than --pp %d: a pipeline needs at least one "
                       "micro-batch per stage in flight (use --grad-accum >= %d; more shrinks the bubble)",
                       o->grad_accum, tr->pipe.pp, tr->pipe.pp);
    tr->tp_rank = w->rank % tr->tp;
    tr->pipe.pp_rank = w->rank / tr->tp % tr->pipe.pp;
    int dp_rank = w->rank / mp;
    if (tr->tp > 1)
        LMC_TRY(w->ops->split(w, w->rank / tr->tp, w->rank, &tr->tpc));
    if (tr->pipe.pp > 1) {
        LMC_TRY(w->ops->split(w, dp_rank * tr->tp + tr->tp_rank, tr->pipe.pp_rank, &tr->pipe.ppc));
        LMC_TRY(tr->pipe.ppc->ops->split(tr->pipe.ppc, 0, tr->pipe.pp_rank, &tr->pipe.ppg));
        int ends = tr->pipe.pp_rank == 0 || tr->pipe.pp_rank == tr->pipe.pp - 1;
        LMC_TRY(tr->pipe.ppc->ops->split(tr->pipe.ppc, !ends, tr->pipe.pp_rank, &tr->pipe.embc));
        if (!ends) {
            lmc_comm_close(tr->pipe.embc);
            tr->pipe.embc = NULL;
        }
    }
    lmc_comm *dp = NULL;
    LMC_TRY(w->ops->split(w, tr->pipe.pp_rank * tr->tp + tr->tp_rank, w->rank, &dp));
    tr->comm = dp;
    return LMC_OK;
}

/* --ep consecutive ranks of the data-parallel group split the experts;
 * all of them run the same micro-batches (the exchanges pair them up). */
static lmc_status open_ep(lmc_trainer *tr)
{
    const lmc_train_opts *o = tr->o;
    lmc_comm *dp = tr->comm;
    tr->ex.ep = o->ep > 1 ? o->ep : 1;
    if (tr->ex.ep == 1)
        return LMC_OK;
    if (dp->size % tr->ex.ep)
        return lmc_err(LMC_EINVAL, "--ep %d does not divide the %d data-parallel ranks of this job: expert-parallel "
                       "groups are --ep consecutive ranks, so run a multiple of %d", tr->ex.ep, dp->size, tr->ex.ep);
    if (o->balance && !strcmp(o->balance, "auto"))
        return lmc_err(LMC_EUNSUPPORTED, "--ep %d with --balance auto is not supported: the ranks of an "
                       "expert-parallel group exchange tokens in every micro-batch, so all run as many", tr->ex.ep);
    LMC_TRY(dp->ops->split(dp, dp->rank / tr->ex.ep, dp->rank, &tr->ex.epc));
    return lmc_trainer_ep_split(tr);
}

/* Sequence parallelism splits the B*T rows of the residual stream evenly
 * over the group. */
static lmc_status check_sp(const lmc_trainer *tr)
{
    const lmc_train_opts *o = tr->o;
    int N = o->batch * o->seq, t = tr->tp;
    if (!o->sp)
        return LMC_OK;
    if (N % t || (size_t)(N / t) * tr->cfg.dim % 16)
        return lmc_err(LMC_EINVAL, "--sp: --batch %d x --seq %d = %d rows must split evenly over --tp %d (and each "
                       "rank's rows x dim %d be a multiple of 16 floats)", o->batch, o->seq, N, t, tr->cfg.dim);
    if (o->sample_every > 0)
        return lmc_err(LMC_EUNSUPPORTED, "--sp with --sample-every is not supported (a sample's rows do not split "
                       "over the group): sample from the saved weights with lmc generate --tp %d", t);
    return LMC_OK;
}

/* Each rank holds 1/tp of every layer's heads and MLP width. */
static lmc_status check_tp(const lmc_trainer *tr)
{
    const lmc_model_config *c = &tr->cfg;
    int t = tr->tp;
    if (!tr->be->ops->xent_part)
        return lmc_err(LMC_EUNSUPPORTED, "--tp: backend %s has no vocabulary-parallel cross-entropy (xent_part)",
                       tr->be->name);
    LMC_TRY(lmc_config_check_tp(c, t));
    LMC_TRY(check_sp(tr));
    if (c->vocab_padded % t == 0)
        return LMC_OK;
    return lmc_err(LMC_EINVAL, "--tp %d must divide the padded vocabulary (%d rows)", t, c->vocab_padded);
}

/* The (virtual) stages' first layers (balanced, or --pp-layers). */
static lmc_status setup_stages(lmc_trainer *tr)
{
    int n = tr->pipe.pp * tr->pipe.vpp;
    tr->pipe.pp_begin = malloc((size_t)(n + 1) * sizeof(int));
    tr->pipe.pp_bubble = calloc((size_t)tr->pipe.pp, sizeof(double));
    tr->pipe.pp_rss = calloc((size_t)tr->pipe.pp, sizeof(double));
    if (!tr->pipe.pp_begin || !tr->pipe.pp_bubble || !tr->pipe.pp_rss)
        return lmc_err(LMC_ENOMEM, "out of memory");
    if (tr->pipe.vpp > 1 && tr->cfg.n_layer < n)
        return lmc_err(LMC_EINVAL, "--pp %d x --vpp %d = %d virtual stages but the model has %d layers (each stage "
                       "holds at least one)", tr->pipe.pp, tr->pipe.vpp, n, tr->cfg.n_layer);
    return lmc_pipeline_cut(&tr->cfg, tr->o->seq, n, tr->o->pp_layers, tr->pipe.pp_begin);
}

/* The model, and AdamW over the parameters this rank owns: all of them, or
 * under ZeRO its lmc_comm_shard (m and v allocated for that shard only;
 * resuming reads just that range of the checkpoint's state). Under ZeRO-2
 * the model has no gradient buffer and under ZeRO-3 no parameter buffer
 * either: shard.c provides them unit by unit. params holds this rank's
 * starting parameters from element params_begin on. */
static lmc_status setup_model(lmc_trainer *tr, const float *params, size_t params_begin, const char *ckpt,
                              const lmc_ckpt_state *st)
{
    const lmc_train_opts *o = tr->o;
    int bounds[2 * 64];
    if (tr->pipe.vpp > 64)
        return lmc_err(LMC_EINVAL, "--vpp %d: at most 64 chunks per rank", tr->pipe.vpp);
    lmc_pipe_bounds(tr, tr->pipe.pp_rank, bounds);
    tr->pipe.pp_mbs_cap = lmc_balance_total(tr);
    lmc_model_opts mo = {.training = 1, .no_grads = tr->dp.zero >= 2, .no_params = tr->dp.zero == 3, .tp = tr->tp,
                         .tp_rank = tr->tp_rank, .tp_comm = tr->tpc, .vocab_parallel = tr->tp > 1, .sp = o->sp,
                         .chunks = tr->pipe.vpp, .chunk_bounds = bounds,
                         .act_slots = tr->pipe.pp > 1 ? lmc_pipe_act_sets(tr) : 1, .ep = tr->ex.ep,
                         .ep_comm = tr->ex.epc};
    LMC_TRY(lmc_recompute_parse(o->recompute, &mo.recompute));
    LMC_TRY(lmc_model_open_opts(&tr->m, &tr->cfg, tr->be, o->batch, o->seq, &mo));
    tr->m->prec = strcmp(o->precision, "bf16") ? LMC_F32 : LMC_BF16;
    LMC_TRY(lmc_backend_supports_model(tr->be, &tr->cfg, &((lmc_backend_use){.B = o->batch, .T = o->seq, .training = 1,
                                                                             .prec = tr->m->prec, .tp = tr->tp,
                                                                             .vocab_parallel = tr->tp > 1})));
    const lmc_layout *l = &tr->m->layout;
    size_t count = l->total;
    tr->dp.own_begin = 0;
    if (tr->dp.zero && tr->ex.ep > 1) /* its shards of each piece, packed: own_begin .. own_end index them */
        LMC_TRY(lmc_trainer_ep_zero_open(tr, &count));
    else if (tr->dp.zero)
        lmc_comm_shard(l->total, tr->comm->size, tr->comm->rank, &tr->dp.own_begin, &count);
    tr->dp.own_end = tr->dp.own_begin + count;
    if (tr->dp.zero >= 2 && !tr->ex.ep_zero) { /* one piece: the whole buffer over the data-parallel group */
        LMC_TRY(lmc_shard_pieces_open(&tr->dp.pieces, 1));
        lmc_shard_pieces_add(&tr->dp.pieces, 0, l->total, tr->comm);
    }
    if (tr->dp.zero >= 2) {
        LMC_TRY(lmc_shard_open(&tr->dp.sh, tr->m, tr->comm, &tr->dp.pieces, tr->dp.zero));
        tr->m->hooks = &tr->dp.sh->hooks;
    }
    if (tr->dp.sh && tr->pipe.pp > 1)
        tr->dp.sh->keep_embed = tr->cfg.tied;
    if (lmc_trainer_holds_part(tr)) /* only its part, read now */
        LMC_TRY(lmc_trainer_part_params(tr, ckpt));
    else if (tr->dp.zero == 3)
        tr->be->ops->upload(tr->be, tr->dp.sh->own_params, params + (tr->dp.own_begin - params_begin),
                            count * sizeof(float));
    else
        lmc_model_upload_params(tr->m, params);
    LMC_TRY(lmc_optim_open(&tr->opt, tr->be, l, tr->cfg.tied, tr->dp.own_begin, tr->dp.own_end));
    if (!ckpt)
        return LMC_OK;
    LMC_TRY(lmc_trainer_load_optim(tr, ckpt));
    tr->opt.t = st->adam_t;
    return LMC_OK;
}

/* Every rank must run the same job: the same flags, the same starting point
 * (a checkpoint or weights read on each host). One allgather compares them;
 * every rank sees the same answer. */
static lmc_status check_ranks_agree(lmc_trainer *tr)
{
    const lmc_train_opts *o = tr->o;
    lmc_comm *c = tr->world;
    static const char *const names[] = {"parameter count", "--batch", "--seq", "--grad-accum", "--steps",
                                        "--zero", "step", "data position", "--seed", "shuffle", "--balance",
                                        "training tokens", "--ep"};
    enum { NF = sizeof names / sizeof *names };
    double mine[NF] = {lmc_config_num_params(&tr->cfg), o->batch, o->seq, o->grad_accum, o->steps, tr->dp.zero, tr->step,
                       (double)tr->data.consumed, (double)(tr->data.seed & 0xffffffffffffULL), tr->data.shuffle,
                       tr->bal.measuring > 0, (double)tr->data.train.total, tr->ex.ep};
    double *all = malloc((size_t)c->size * sizeof mine);
    if (!all)
        return lmc_err(LMC_ENOMEM, "out of memory");
    lmc_status s = c->ops->allgather_host(c, mine, all, sizeof mine);
    for (int r = 1; r < c->size && s == LMC_OK; r++)
        for (int f = 0; f < NF && s == LMC_OK; f++)
            if (all[r * NF + f] != all[f]) {
                tr->dp.consistent_error = 1;
                s = lmc_err(LMC_EINVAL, "rank %d has %s %.17g but rank 0 has %.17g: every rank must run the same "
                            "command on the same files", r, names[f], all[r * NF + f], all[f]);
            }
    free(all);
    return s;
}

/* Communicator buffers must be the backend's memory: MPI moves host memory
 * (the CPU backend), NCCL device memory. */
static lmc_status check_memory_kinds(lmc_trainer *tr)
{
    int device = !tr->be->host_memory;
    if (tr->comm->size == 1 || device == tr->comm->device_memory || tr->comm->per_rank_memory)
        return LMC_OK;
    return lmc_err(LMC_EUNSUPPORTED, "--dist %s reduces %s memory but --device %s keeps tensors in %s memory: use "
                   "--dist nccl with cuda devices and --dist mpi with cpu", tr->comm->name,
                   tr->comm->device_memory ? "device" : "host", tr->be->name, device ? "device" : "host");
}

/* All ranks learn whether any failed; a rank that did not fail returns an
 * error pointing at the one that did. Either way all end alike, with no
 * rank left waiting in a collective. */
lmc_status lmc_trainer_agree(lmc_trainer *tr, lmc_status s, const char *what)
{
    if (!tr->world || tr->world->size == 1)
        return s;
    char why[1024] = "";
    if (s != LMC_OK)
        snprintf(why, sizeof why, "%s", lmc_errmsg());
    double bad = s != LMC_OK;
    lmc_status c = tr->world->ops->allreduce_host(tr->world, &bad, 1, 1);
    if (c != LMC_OK) /* this rank's own failure (a watchdog's, say) says why, not the agreement that followed it */
        return s != LMC_OK ? lmc_err(s, "%s", why) : c;
    if (bad)
        tr->dp.consistent_error = 1;
    if (bad && s == LMC_OK)
        return lmc_err(LMC_EIO, "%s failed on another rank (its message says why)", what);
    return s;
}

/* Everything that involves no other rank. */
static lmc_status setup_local(lmc_trainer *tr)
{
    const lmc_train_opts *o = tr->o;
    LMC_TRY(lmc_backend_open(o->device, o->threads, &tr->be));
    lmc_comm *groups[] = {tr->world, tr->comm, tr->tpc, tr->pipe.ppc, tr->pipe.ppg, tr->pipe.embc, tr->ex.epc};
    for (size_t i = 0; i < sizeof groups / sizeof *groups; i++)
        if (groups[i]) /* a device communicator orders its work with the backend's queue */
            groups[i]->be = tr->be;
    LMC_TRY(check_memory_kinds(tr));
    tr->data.seed = o->seed;
    tr->data.shuffle = o->shuffle;
    /* mixed chip kinds: each parameter is updated by one rank (ZeRO-1 at
     * least), so vendors' AdamW kernels cannot drift the ranks apart */
    tr->dp.zero = o->zero ? o->zero : tr->comm->per_rank_memory;
    float *params = NULL;
    size_t params_begin = 0;
    lmc_ckpt_state st;
    char ckpt[4096];
    if (o->tokenizer)
        LMC_TRY(lmc_tok_load(o->tokenizer, &tr->data.tok));
    lmc_status s = initial_state(tr, &params, &params_begin, &st, ckpt, sizeof ckpt);
    if (s) {
        lmc_free(params);
        return s;
    }
    if (s == LMC_OK && tr->tp > 1)
        s = check_tp(tr);
    if (s == LMC_OK)
        s = lmc_moe_ep_check(&tr->cfg, tr->ex.ep);
    if (s == LMC_OK)
        s = lmc_trainer_experts_open(tr);
    if (s == LMC_OK)
        s = setup_stages(tr);
    if (s) {
        lmc_free(params);
        return s;
    }
    if (tr->data.tok && lmc_tok_vocab_size(tr->data.tok) > tr->cfg.vocab) {
        lmc_free(params);
        return lmc_err(LMC_EINVAL, "--tokenizer %s has %d tokens but the model's vocabulary is %d", o->tokenizer,
                       lmc_tok_vocab_size(tr->data.tok), tr->cfg.vocab);
    }
    if (o->resume) {
        tr->step = st.step;
        tr->data.consumed = st.consumed;
        tr->data.seed = st.seed;
        tr->data.shuffle = st.shuffle;
        tr->log.last_loss = st.loss;
        tr->ckpt_world = st.world;
    }
    s = open_data(tr);
    if (s == LMC_OK)
        s = setup_model(tr, params, params_begin, o->resume ? ckpt : NULL, &st);
    if (s == LMC_OK && (o->resume || o->init)) /* the balancing bias */
        s = lmc_trainer_experts_resume(tr, o->resume ? ckpt : o->init);
    lmc_free(params);
    if (s)
        return s;
    LMC_TRY(lmc_balance_open(tr));
    if (tr->pipe.pp > 1)
        LMC_TRY(lmc_pipe_open(tr));
    lmc_trainer_dp_hooks(tr);
    LMC_TRY(lmc_trainer_ep_open(tr));
    tr->dp.reqs = malloc(2 * (size_t)lmc_layout_num_buckets(&tr->m->layout) * sizeof(int)); /* --ep: pieces */
    size_t n = (size_t)o->batch * o->seq;
    tr->data.inputs = malloc(n * sizeof(int));
    tr->data.targets = malloc(n * sizeof(int));
    if (!tr->dp.reqs || !tr->data.inputs || !tr->data.targets)
        return lmc_err(LMC_ENOMEM, "out of memory");
    tr->log.flops_per_token = lmc_config_train_flops_per_token(&tr->cfg, o->seq);
    tr->log.peak_flops = tr->be->ops->peak_flops(tr->be, tr->m->prec);
    if (o->log && tr->world->rank == 0) {
        LMC_TRY(lmc_mkdir_parent(o->log));
        tr->log.f = fopen(o->log, o->resume ? "a" : "w");
        if (!tr->log.f)
            return lmc_err(LMC_EIO, "--log %s: cannot open for writing: %s", o->log, strerror(errno));
    }
    return LMC_OK;
}

/* With several ranks: all started (or all stop), run the same job, and
 * begin from rank 0's weights (a safeguard against hosts that read
 * different files). */
static lmc_status setup(lmc_trainer *tr)
{
    const lmc_train_opts *o = tr->o;
    LMC_TRY(check_opts(o));
    LMC_TRY(open_groups(tr));
    LMC_TRY(open_ep(tr));
    lmc_comm *c = tr->comm;
    if (o->zero == 3 && c->size == 1)
        return lmc_err(LMC_EINVAL, "--zero 3 shards the parameters over the ranks of a distributed launch, but this "
                       "is one process: run it under mpirun -np N (N >= 2), or use --zero 0");
    c->timeout_s = 3600; /* the other ranks may be loading a large checkpoint */
    LMC_TRY(lmc_trainer_agree(tr, setup_local(tr), "starting"));
    LMC_TRY(lmc_trainer_kv_open(tr));
    if (tr->world->size == 1)
        return LMC_OK;
    LMC_TRY(lmc_trainer_check_job(tr)); /* the model field by field first */
    LMC_TRY(check_ranks_agree(tr));
    if (tr->ex.ep > 1) /* each rank holds its experts */
        LMC_TRY(lmc_trainer_ep_bcast(tr));
    else if (tr->m->params) /* ZeRO-3: each rank read its own shard */
        LMC_TRY(c->ops->broadcast(c, tr->m->params, tr->m->layout.total * sizeof(float), 0));
    c->timeout_s = 600; /* until steps are timed */
    return LMC_OK;
}

static void teardown(lmc_trainer *tr)
{
    if (tr->log.f)
        fclose(tr->log.f);
    free(tr->data.inputs);
    free(tr->data.targets);
    free(tr->dp.reqs);
    lmc_balance_close(tr);
    lmc_trainer_experts_close(tr);
    lmc_trainer_ep_close(tr);
    lmc_optim_close(&tr->opt);
    lmc_shard_close(tr->dp.sh);
    lmc_shard_pieces_close(&tr->dp.pieces);
    lmc_model_close(tr->m);
    lmc_tokens_close(&tr->data.train);
    if (tr->data.have_val)
        lmc_tokens_close(&tr->data.val);
    free(tr->pipe.pp_begin);
    free(tr->pipe.pp_bubble);
    free(tr->pipe.pp_rss);
    free(tr->pipe.pp_req);
    if (tr->comm != tr->world)
        lmc_comm_close(tr->comm);
    free(tr->pipe.pp_free);
    free(tr->pipe.pp_slot_of);
    lmc_comm_close(tr->pipe.embc);
    lmc_comm_close(tr->pipe.ppg);
    lmc_comm_close(tr->pipe.ppc);
    lmc_comm_close(tr->kvc);
    lmc_comm_close(tr->ex.epc);
    lmc_comm_close(tr->tpc);
    lmc_comm_close(tr->world);
    lmc_backend_close(tr->be); /* after the communicators: theirs may hold its memory (hier's staging) */
    lmc_tok_free(tr->data.tok);
}

static void describe(lmc_trainer *tr)
{
    const lmc_train_opts *o = tr->o;
    int world = tr->world->size;
    static const char *const zero_desc[] = {"", ", ZeRO-1 (optimizer state sharded)",
                                            ", ZeRO-2 (optimizer state and gradients sharded)",
                                            ", ZeRO-3 (optimizer state, gradients and parameters sharded)"};
    char desc[2048], cfg[512], dist[768] = "";
    lmc_config_describe(&tr->cfg, cfg, sizeof cfg);
    if (world > 1 || tr->dp.zero)
        snprintf(dist, sizeof dist, "; %s %d-way tensor x %d-way pipeline x %d-way data parallel%s%s",
                 tr->comm->name, tr->tp, tr->pipe.pp, tr->comm->size, zero_desc[tr->dp.zero],
                 tr->bal.measuring > 0 ? ", balancing micro-batches by measured speed" : "");
    if (tr->ex.ep > 1)
        snprintf(dist + strlen(dist), sizeof dist - strlen(dist), "; experts split over groups of %d ranks (%d "
                 "each)", tr->ex.ep, tr->cfg.n_expert / tr->ex.ep);
    for (int v = 0; tr->pipe.pp > 1 && v < tr->pipe.pp * tr->pipe.vpp; v++) /* the cut: layers of each (virtual) stage */
        snprintf(dist + strlen(dist), sizeof dist - strlen(dist), "%s%d-%d", v ? " | " : "; stage layers ",
                 tr->pipe.pp_begin[v], tr->pipe.pp_begin[v + 1] - 1);
    if (tr->ckpt_world > 0 && tr->ckpt_world != world)
        snprintf(dist + strlen(dist), sizeof dist - strlen(dist), "; checkpoint written by %d rank%s",
                 tr->ckpt_world, tr->ckpt_world > 1 ? "s" : "");
    snprintf(desc, sizeof desc,
             "%s\ndevice %s (%d threads), %s, recompute %s, %d rank%s; batch %d x %d x accum %d%s = %d tokens/step; %zu train "
             "tokens%s; starting at step %d%s",
             cfg, tr->be->name, tr->be->threads, o->precision, o->recompute, world, world > 1 ? "s" : "", o->batch, o->seq,
             o->grad_accum, world > 1 ? " x ranks" : "", o->batch * o->seq * lmc_balance_total(tr), tr->data.train.total,
             tr->data.shuffle ? " (shuffled)" : " (in order)", tr->step, dist);
    lmc_train_event ev = {.kind = LMC_EV_START, .step = tr->step, .text = desc};
    lmc_trainer_emit(tr, &ev);
}

/* DONE: peak memory and micro-batches of every rank (from the last step). */
static void finish(lmc_trainer *tr)
{
    lmc_sb sb;
    lmc_sb_init(&sb);
    lmc_sb_puts(&sb, "peak RSS per rank (MB):");
    for (int r = 0; r < tr->comm->size; r++)
        lmc_sb_printf(&sb, " %.1f", tr->all[r].rss_mb > 0 ? tr->all[r].rss_mb : (double)lmc_peak_rss() / 1e6);
    if (tr->comm->size > 1) {
        lmc_sb_puts(&sb, "; micro-batches per rank:");
        for (int r = 0; r < tr->comm->size; r++)
            lmc_sb_printf(&sb, " %d", tr->bal.mb_count[r]);
    }
    lmc_train_event ev = {.kind = LMC_EV_DONE, .step = tr->step, .loss = tr->log.last_loss, .text = sb.s ? sb.s : ""};
    ev.elapsed_s = lmc_now() - tr->log.start_time;
    lmc_trainer_emit(tr, &ev);
    lmc_sb_free(&sb);
}

lmc_status lmc_train(const lmc_train_opts *o, lmc_train_cb cb, void *ctx)
{
    lmc_trainer tr;
    memset(&tr, 0, sizeof tr);
    tr.o = o;
    tr.cb = cb;
    tr.ctx = ctx;
    tr.log.start_time = lmc_now();
    if (o->out_dir) /* SIGUSR1: checkpoint and stop after the current step (lmc launch); exit 0 */
        lmc_trainer_catch_stop();
    lmc_status s = setup(&tr);
    if (s == LMC_OK)
        describe(&tr);
    while (s == LMC_OK && tr.step < o->steps && !tr.stop) {
        s = lmc_trainer_step(&tr);
        if (s == LMC_OK && o->check_every > 0 && tr.step % o->check_every == 0 && tr.step < o->steps)
            s = lmc_trainer_check_same(&tr); /* --check-every: weights that drift apart name the rank */
    }
    int stopped = tr.step < o->steps; /* on request, with a checkpoint of this step: no final weights */
    if (s == LMC_OK)
        s = lmc_trainer_check_same(&tr);
    if (s == LMC_OK && !stopped)
        s = lmc_trainer_save_final(&tr);
    if (s == LMC_OK && !stopped)
        finish(&tr);
    /* A failure the other ranks cannot know about would leave them waiting
     * in their next collective: end the whole job (the fault path). */
    if (s && tr.comm && tr.comm->size > 1 && !tr.dp.consistent_error && tr.comm->ops->abort)
        tr.comm->ops->abort(tr.comm, lmc_errmsg());
    teardown(&tr);
    return s;
}
