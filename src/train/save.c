/* save.c: checkpoints and final weights from one rank or many.
 *
 * Rank 0 writes. A checkpoint always holds the whole AdamW state, never
 * per-rank pieces, so a checkpoint written by N ranks resumes on any number
 * of ranks, each reading only its shard; under ZeRO the shards are gathered
 * to rank 0 first. Before a checkpoint is written every rank proves it holds
 * bit-identical weights (a hash), the promise data parallelism makes. The
 * ranks then agree on whether rank 0 succeeded, so that a failed write
 * (disk full) ends every rank with the same message instead of one rank
 * failing while the others wait.
 */
#include "model/moe.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

#include <stdlib.h>
#include <string.h>

#define HASH_CHUNK 65536 /* floats downloaded at a time for the weight hash */

/* FNV-1a over the 32-bit words of weights [b, e), a chunk at a time so
 * the check costs no memory. */
static void hash_range(lmc_trainer *tr, uint32_t *buf, size_t b, size_t e, uint64_t *h)
{
    for (size_t o = b; o < e; o += HASH_CHUNK) {
        size_t k = e - o < HASH_CHUNK ? e - o : HASH_CHUNK;
        tr->be->ops->download(tr->be, buf, tr->m->params + o, k * sizeof(float));
        for (size_t i = 0; i < k; i++)
            *h = (*h ^ buf[i]) * 1099511628211ULL;
    }
}

/* h[0] of the weights every data-parallel rank holds alike, h[1] of the
 * experts this rank holds (--ep; those of the ranks holding the same) */
static lmc_status hash_params(lmc_trainer *tr, uint64_t h[2])
{
    uint32_t *buf = malloc(HASH_CHUNK * sizeof(float));
    if (!buf)
        return lmc_err(LMC_ENOMEM, "out of memory hashing the weights");
    h[0] = h[1] = 1469598103934665603ULL;
    for (int u = 0; u < lmc_layout_num_units(&tr->m->layout); u++) {
        size_t b, e, x0, x1;
        lmc_layout_unit(&tr->m->layout, u, &b, &e);
        if (!lmc_trainer_ep_experts(tr, u, &x0, &x1))
            x0 = x1 = e;
        hash_range(tr, buf, b, x0, &h[0]);
        hash_range(tr, buf, x0, x1, &h[1]);
    }
    free(buf);
    return LMC_OK;
}

lmc_status lmc_trainer_check_same(lmc_trainer *tr)
{
    lmc_comm *c = tr->comm;
    if (c->size == 1 || !tr->m->params) /* ZeRO-3: each rank holds other parameters */
        return LMC_OK;
    uint64_t h[2], *all = malloc((size_t)c->size * sizeof h);
    lmc_status s = all ? hash_params(tr, h) : lmc_err(LMC_ENOMEM, "out of memory");
    s = lmc_trainer_agree(tr, s, "hashing the weights");
    if (s == LMC_OK)
        s = c->ops->allgather_host(c, h, all, sizeof h);
    for (int r = 1; r < c->size && s == LMC_OK; r++) {
        int j = r % tr->ex.ep, part = all[2 * r] != all[0]; /* rank j holds the same experts */
        if (part || all[2 * r + 1] != all[2 * j + 1]) {
            tr->dp.consistent_error = 1;
            s = lmc_err(LMC_ECOMM, "after step %d rank %d holds different %s than rank %d (hash %016llx vs "
                        "%016llx): the ranks diverged", tr->step, r, part ? "weights" : "experts", part ? 0 : j,
                        (unsigned long long)all[2 * r + !part], (unsigned long long)all[part ? 0 : 2 * j + 1]);
        }
    }
    free(all);
    return s;
}

/* The ranks holding the parts joined into a checkpoint: the data-parallel
 * group's first (under --ep its first expert-parallel group). */
static int holds_part(const lmc_trainer *tr) { return tr->comm->rank < tr->ex.ep; }

/* AdamW moment `dev` (this rank's optimizer range) into rank 0's host_full
 * (whole buffer; NULL on other ranks). */
static lmc_status gather_moment(lmc_trainer *tr, const float *dev, float *host_full)
{
    lmc_comm *c = tr->comm;
    lmc_backend *be = tr->be;
    size_t total = tr->m->layout.total, own = tr->dp.own_end - tr->dp.own_begin;
    if (tr->ex.ep_zero)
        return lmc_trainer_ep_gather(tr, dev, host_full);
    if (!tr->dp.zero || c->size == 1) {
        if (holds_part(tr))
            be->ops->download(be, host_full, dev, total * sizeof(float));
        return LMC_OK;
    }
    if (c->ops->gather && !c->device_memory) /* host memory: straight into rank 0's staging */
        return c->ops->gather(c, dev, host_full, total, 0);
    float *full = be->ops->alloc(be, total * sizeof(float)); /* device memory, or no gather */
    lmc_status s = lmc_trainer_agree(tr, full ? LMC_OK : LMC_ENOMEM, "allocating the gather buffer");
    if (s == LMC_OK && own)
        be->ops->copy(be, full + tr->dp.own_begin, dev, own * sizeof(float));
    if (s == LMC_OK)
        s = c->ops->gather ? c->ops->gather(c, full + tr->dp.own_begin, full, total, 0)
                           : c->ops->allgather(c, full, total);
    if (s == LMC_OK && c->rank == 0)
        be->ops->download(be, host_full, full, total * sizeof(float));
    if (full)
        be->ops->free(be, full);
    return s;
}

/* Under --tp, on the ranks of the first tensor-parallel group (each the
 * first of its data-parallel group): bufs[0..n) hold this rank's part of
 * the model (host); afterwards rank 0's hold the whole model's (layout g)
 * and the others' are freed. A collective of that group. */
static lmc_status tp_whole(lmc_trainer *tr, const lmc_layout *g, float **bufs, int n)
{
    size_t part = tr->m->layout.total;
    float *all = lmc_alloc((size_t)tr->tp * part * sizeof(float), "checkpoint staging");
    lmc_status s = all ? LMC_OK : LMC_ENOMEM;
    for (int i = 0; i < n && s == LMC_OK; i++) {
        s = tr->tpc->ops->allgather_host(tr->tpc, bufs[i], all, part * sizeof(float));
        float *whole = tr->tp_rank == 0 && s == LMC_OK ? lmc_alloc(g->total * sizeof(float), "checkpoint staging")
                                                       : NULL;
        if (tr->tp_rank == 0 && s == LMC_OK && !whole)
            s = LMC_ENOMEM;
        for (int r = 0; whole && r < tr->tp; r++)
            lmc_layout_tp_copy(&tr->cfg, g, &tr->m->layout, tr->tp, r, whole, all + (size_t)r * part, 0);
        lmc_free(bufs[i]);
        bufs[i] = whole;
    }
    lmc_free(all);
    return s;
}

/* The layout of this rank's tensors whole: the model's own, or under --tp,
 * --pp or --ep its stage's with whole tensors. */
static lmc_status whole_layout(lmc_trainer *tr, lmc_layout *g)
{
    if (tr->tp > 1 || tr->pipe.pp > 1 || tr->ex.ep > 1)
        return lmc_layout_build_chunks(&tr->cfg, 1, 0, tr->m->chunks, tr->m->chunk_bounds, g);
    *g = tr->m->layout;
    return LMC_OK;
}

static void whole_layout_free(lmc_trainer *tr, lmc_layout *g)
{
    if (tr->tp > 1 || tr->pipe.pp > 1 || tr->ex.ep > 1)
        lmc_layout_free(g);
}

/* A host buffer sent to (send 1) or received from a rank of group c,
 * through device memory when the communicator moves only that. */
static lmc_status host_p2p(lmc_trainer *tr, lmc_comm *c, float *host, size_t n, int peer, int send)
{
    lmc_backend *be = tr->be;
    float *buf = c->device_memory ? be->ops->alloc(be, (n ? n : 1) * sizeof(float)) : host;
    int req;
    if (!buf)
        return lmc_err(LMC_ENOMEM, "out of device memory staging a checkpoint (%zu floats)", n);
    if (buf != host && send)
        be->ops->upload(be, buf, host, n * sizeof(float));
    lmc_status s = send ? c->ops->send_start(c, buf, n * sizeof(float), peer, &req)
                        : c->ops->recv_start(c, buf, n * sizeof(float), peer, &req);
    if (s == LMC_OK)
        s = c->ops->p2p_wait(c, req);
    if (s == LMC_OK && buf != host && !send)
        be->ops->download(be, host, buf, n * sizeof(float));
    if (buf != host)
        be->ops->free(be, buf);
    return s;
}

/* Stage s's buffer (layout ls) from its rank of the pipeline group into the
 * whole model's (layout all); the embeddings unit is the first stage's. */
static lmc_status recv_stage(lmc_trainer *tr, int s, const lmc_layout *all, float *whole)
{
    lmc_layout ls;
    int bounds[2 * 64];
    lmc_pipe_bounds(tr, s, bounds);
    LMC_TRY(lmc_layout_build_chunks(&tr->cfg, 1, 0, tr->pipe.vpp, bounds, &ls));
    float *buf = lmc_alloc((ls.total ? ls.total : 1) * sizeof(float), "checkpoint staging");
    lmc_status st = buf ? host_p2p(tr, tr->pipe.ppc, buf, ls.total, s, 0) : LMC_ENOMEM;
    if (st == LMC_OK)
        lmc_layout_copy_units(all, whole, &ls, buf, 1);
    lmc_free(buf);
    lmc_layout_free(&ls);
    return st;
}

/* Under --pp, on the first rank of each stage's tensor- and data-parallel
 * groups: bufs[0..n) hold the stage's whole tensors (layout *g); afterwards
 * the first stage's hold the whole model's and *g is its layout, the other
 * stages' are freed. A collective of the pipeline group. */
static lmc_status pp_whole(lmc_trainer *tr, lmc_layout *g, float **bufs, int n)
{
    lmc_status s = LMC_OK;
    for (int i = 0; i < n && s == LMC_OK && tr->pipe.pp_rank > 0; i++) {
        s = host_p2p(tr, tr->pipe.ppc, bufs[i], g->total, 0, 1);
        lmc_free(bufs[i]);
        bufs[i] = NULL;
    }
    if (tr->pipe.pp_rank > 0)
        return s;
    lmc_layout all;
    LMC_TRY(lmc_layout_build(&tr->cfg, &all));
    for (int i = 0; i < n && s == LMC_OK; i++) {
        float *whole = lmc_alloc(all.total * sizeof(float), "checkpoint staging");
        s = whole ? LMC_OK : LMC_ENOMEM;
        if (whole)
            lmc_layout_copy_units(&all, whole, g, bufs[i], 0);
        for (int st = 1; st < tr->pipe.pp && s == LMC_OK; st++)
            s = recv_stage(tr, st, &all, whole);
        lmc_free(bufs[i]);
        bufs[i] = whole;
    }
    lmc_layout_free(g);
    *g = all;
    return s;
}

/* Under --ep, on the first expert-parallel group: bufs[0..n) hold this
 * rank's part (its experts); afterwards rank 0's hold the whole model's
 * (layout g), each expert block received from its rank, and the others'
 * are freed. A collective of that group. */
static lmc_status ep_whole(lmc_trainer *tr, const lmc_layout *g, float **bufs, int n)
{
    lmc_comm *c = tr->ex.epc;
    lmc_layout part = tr->m->layout; /* rank r's: the same offsets, its experts' rows */
    size_t total = part.total;
    float *in = c->rank == 0 ? lmc_alloc(total * sizeof(float), "checkpoint staging") : NULL;
    lmc_status s = c->rank == 0 && !in ? LMC_ENOMEM : LMC_OK;
    for (int i = 0; i < n && s == LMC_OK; i++) {
        if (c->rank > 0) {
            s = host_p2p(tr, c, bufs[i], total, 0, 1);
            lmc_free(bufs[i]);
            bufs[i] = NULL;
            continue;
        }
        float *whole = lmc_alloc(g->total * sizeof(float), "checkpoint staging");
        s = whole ? LMC_OK : LMC_ENOMEM;
        for (int r = c->size - 1; r >= 0 && s == LMC_OK; r--) { /* rank 0's rest last (ZeRO-1: only it has all) */
            s = r ? host_p2p(tr, c, in, total, r, 0) : LMC_OK;
            part.ep_rank = r;
            if (s == LMC_OK)
                lmc_layout_tp_copy(&tr->cfg, g, &part, 1, 0, whole, r ? in : bufs[i], 0);
        }
        lmc_free(bufs[i]);
        bufs[i] = whole;
    }
    lmc_free(in);
    return s;
}

/* On each stage's first rank of its data-parallel group: bufs (this rank's
 * part) become whole tensors (--tp, --ep), then the whole model on rank 0
 * (--pp). */
static lmc_status join_parts(lmc_trainer *tr, lmc_layout *g, float **bufs, int n)
{
    lmc_status s = LMC_OK;
    if (tr->ex.ep > 1)
        return ep_whole(tr, g, bufs, n);
    if (tr->tp > 1)
        s = tp_whole(tr, g, bufs, n);
    if (s == LMC_OK && tr->pipe.pp > 1 && tr->tp_rank == 0)
        s = pp_whole(tr, g, bufs, n);
    return s;
}

/* Parameters, m and v gathered to rank 0 (host), whole; NULL elsewhere.
 * (dp_root: a rank holding a part to join, see holds_part) */
static lmc_status gather_whole(lmc_trainer *tr, lmc_layout *g, float *bufs[3])
{
    size_t bytes = tr->m->layout.total * sizeof(float);
    int dp_root = holds_part(tr);
    for (int i = 0; i < 3; i++)
        bufs[i] = dp_root ? lmc_alloc(bytes, "checkpoint staging") : NULL;
    lmc_status s = !dp_root || (bufs[0] && bufs[1] && bufs[2]) ? LMC_OK : LMC_ENOMEM;
    s = lmc_trainer_agree(tr, s, "allocating checkpoint staging");
    if (s == LMC_OK)
        s = gather_moment(tr, tr->opt.m, bufs[1]);
    if (s == LMC_OK)
        s = gather_moment(tr, tr->opt.v, bufs[2]);
    if (s == LMC_OK && tr->dp.zero == 3)
        s = gather_moment(tr, tr->dp.sh->own_params, bufs[0]); /* the parameters' shards, as m's and v's */
    else if (s == LMC_OK && dp_root)
        lmc_model_download_params(tr->m, bufs[0]);
    if (s == LMC_OK && dp_root)
        s = join_parts(tr, g, bufs, 3);
    return lmc_trainer_agree(tr, s, "gathering the checkpoint");
}

/* ZeRO-2/3 on whole units: every rank writes its part of the files. Under
 * --tp, --pp or --ep a rank holds parts of tensors (its slices, stage or
 * experts), which are joined on rank 0 first (join_parts). */
static int every_rank_writes(const lmc_trainer *tr)
{
    return tr->dp.zero >= 2 && tr->tp == 1 && tr->pipe.pp == 1 && tr->ex.ep == 1;
}

static lmc_status save_checkpoint(lmc_trainer *tr)
{
    int root = tr->world->rank == 0;
    LMC_TRY(lmc_trainer_check_same(tr));
    char saved[4096];
    lmc_status s;
    if (every_rank_writes(tr)) {
        s = lmc_trainer_save_sharded(tr, saved, sizeof saved);
    } else { /* under --tp the parts are joined into whole tensors on rank 0 */
        lmc_layout g;
        float *b[3] = {NULL, NULL, NULL};
        LMC_TRY(whole_layout(tr, &g));
        s = gather_whole(tr, &g, b);
        if (s == LMC_OK && root) {
            lmc_ckpt_state st = {.step = tr->step, .consumed = tr->data.consumed, .seed = tr->data.seed,
                                 .shuffle = tr->data.shuffle, .seq = tr->o->seq, .world = tr->world->size,
                                 .adam_t = tr->opt.t, .loss = tr->log.last_loss};
            lmc_trainer_experts_state(tr, &st);
            s = lmc_ckpt_save(tr->o->out_dir, &st, &tr->cfg, &g, b[0], b[1], b[2], tr->o->keep, saved,
                              sizeof saved);
        }
        for (int i = 0; i < 3; i++)
            lmc_free(b[i]);
        whole_layout_free(tr, &g);
        s = lmc_trainer_agree(tr, s, "saving the checkpoint");
    }
    if (s == LMC_OK && root) {
        lmc_train_event ev = {.kind = LMC_EV_SAVE, .step = tr->step, .text = saved};
        lmc_trainer_emit(tr, &ev);
    }
    return s;
}

lmc_status lmc_trainer_save(lmc_trainer *tr)
{
    lmc_comm *c = tr->comm;
    double timeout = c->timeout_s;
    if (c->timeout_s < 3600)
        c->timeout_s = 3600; /* the others wait while rank 0 writes a large file */
    lmc_status s = save_checkpoint(tr);
    c->timeout_s = timeout;
    return s;
}

/* A folder for a model larger than --max-shard-mb gets Hugging Face's
 * sharded layout; otherwise one file (model.safetensors in a folder). */
static lmc_status save_whole(lmc_trainer *tr, const lmc_layout *g, const float *params)
{
    const char *path = tr->o->save;
    size_t len = strlen(path), max = (size_t)(tr->o->max_shard_mb * 1e6);
    int dir = lmc_is_dir(path) || (len && path[len - 1] == '/');
    if (dir && lmc_weights_files_for(g, max) > 1)
        return lmc_weights_save_sharded_moe(path, &tr->cfg, g, params, max, lmc_moe_bias(tr->m));
    return lmc_weights_save_moe(path, &tr->cfg, g, params, lmc_moe_bias(tr->m));
}

/* The final weights of ZeRO-0/1 runs: rank 0 writes them whole. */
static lmc_status save_final_whole(lmc_trainer *tr)
{
    lmc_layout g;
    LMC_TRY(whole_layout(tr, &g));
    int root = holds_part(tr);
    float *p = root ? lmc_alloc(tr->m->layout.total * sizeof(float), "final weights") : NULL;
    lmc_status s = lmc_trainer_agree(tr, !root || p ? LMC_OK : LMC_ENOMEM, "allocating the final weights");
    if (s == LMC_OK && tr->dp.zero == 3)
        s = gather_moment(tr, tr->dp.sh->own_params, p); /* the shards to the data-parallel group's first rank */
    else if (s == LMC_OK && root)
        lmc_model_download_params(tr->m, p);
    if (s == LMC_OK && root)
        s = join_parts(tr, &g, &p, 1);
    if (s == LMC_OK && tr->world->rank == 0)
        s = save_whole(tr, &g, p);
    lmc_free(p);
    whole_layout_free(tr, &g);
    return s;
}

lmc_status lmc_trainer_save_final(lmc_trainer *tr)
{
    if (!tr->o->save)
        return LMC_OK;
    lmc_status s = LMC_OK;
    const char *path = tr->o->save;
    size_t len = strlen(path);
    if (every_rank_writes(tr)) /* every rank writes its part (a folder), or rank 0 streams one file */
        s = lmc_trainer_write_weights(tr, path, lmc_is_dir(path) || (len && path[len - 1] == '/'));
    else
        s = save_final_whole(tr);
    double timeout = tr->comm->timeout_s;
    if (timeout < 3600)
        tr->comm->timeout_s = 3600;
    s = lmc_trainer_agree(tr, s, "saving the final weights");
    tr->comm->timeout_s = timeout;
    if (s == LMC_OK && tr->world->rank == 0) {
        lmc_train_event ev = {.kind = LMC_EV_SAVE, .step = tr->step, .text = tr->o->save};
        lmc_trainer_emit(tr, &ev);
    }
    return s;
}
