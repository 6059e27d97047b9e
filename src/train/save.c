/* save.c: checkpoints and final weights from one rank or many.
 *
 * A checkpoint always holds the whole model's state in the whole model's
 * layout, so a checkpoint written by N ranks resumes on any number of ranks
 * and any layout, each reading only its part. Three writers: data parallel
 * under ZeRO-0/1 gathers to rank 0, which writes; under ZeRO-2/3 every rank
 * writes its units and optimizer shard (save_sharded.c); under --tp, --pp
 * or --ep the parts stream to rank 0 a unit at a time (save_joined.c).
 * Before a checkpoint is written every rank proves it holds bit-identical
 * weights (a hash), the promise data parallelism makes. The ranks then
 * agree on whether the writing succeeded, so that a failed write (disk
 * full) ends every rank with the same message instead of one rank failing
 * while the others wait.
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

/* AdamW moment `dev` (this rank's optimizer range) into rank 0's host_full
 * (whole buffer; NULL on other ranks). */
static lmc_status gather_moment(lmc_trainer *tr, const float *dev, float *host_full)
{
    lmc_comm *c = tr->comm;
    lmc_backend *be = tr->be;
    size_t total = tr->m->layout.total, own = tr->dp.own_end - tr->dp.own_begin;
    if (!tr->dp.zero || c->size == 1) {
        if (c->rank == 0)
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

/* Parameters, m and v gathered to rank 0 (host), whole; NULL elsewhere. */
static lmc_status gather_whole(lmc_trainer *tr, float *bufs[3])
{
    size_t bytes = tr->m->layout.total * sizeof(float);
    int root = tr->comm->rank == 0;
    for (int i = 0; i < 3; i++)
        bufs[i] = root ? lmc_alloc(bytes, "checkpoint staging") : NULL;
    lmc_status s = !root || (bufs[0] && bufs[1] && bufs[2]) ? LMC_OK : LMC_ENOMEM;
    s = lmc_trainer_agree(tr, s, "allocating checkpoint staging");
    if (s == LMC_OK)
        s = gather_moment(tr, tr->opt.m, bufs[1]);
    if (s == LMC_OK)
        s = gather_moment(tr, tr->opt.v, bufs[2]);
    if (s == LMC_OK && root)
        lmc_model_download_params(tr->m, bufs[0]);
    return lmc_trainer_agree(tr, s, "gathering the checkpoint");
}

/* ZeRO-2/3 on whole units: every rank writes its part of the files. Under
 * --tp, --pp or --ep a rank holds parts of tensors (its slices, stage or
 * experts), which stream to rank 0 (save_joined.c). */
static int every_rank_writes(const lmc_trainer *tr)
{
    return tr->dp.zero >= 2 && !lmc_trainer_holds_part(tr);
}

static void ckpt_state(lmc_trainer *tr, lmc_ckpt_state *st)
{
    *st = (lmc_ckpt_state){.step = tr->step, .consumed = tr->data.consumed, .seed = tr->data.seed,
                           .shuffle = tr->data.shuffle, .seq = tr->o->seq, .world = tr->world->size,
                           .adam_t = tr->opt.t, .loss = tr->log.last_loss};
    lmc_trainer_experts_state(tr, st);
}

/* A checkpoint folder that every rank writes into with `write` (rank 0
 * starts and commits it). */
static lmc_status save_folder(lmc_trainer *tr, lmc_status (*write)(lmc_trainer *, const char *), char *saved,
                              size_t saved_len)
{
    char tmp[4096];
    int root = tr->world->rank == 0;
    lmc_status s = root ? lmc_ckpt_start(tr->o->out_dir, tr->step, tmp, sizeof tmp) : LMC_OK;
    if (!root)
        snprintf(tmp, sizeof tmp, "%s/.partial_step_%08d", tr->o->out_dir, tr->step);
    LMC_TRY(lmc_trainer_agree(tr, s, "creating the checkpoint folder"));
    LMC_TRY(write(tr, tmp));
    if (root) {
        lmc_ckpt_state st;
        ckpt_state(tr, &st);
        s = lmc_ckpt_commit(tr->o->out_dir, tmp, &st, tr->o->keep, saved, saved_len);
    }
    return lmc_trainer_agree(tr, s, "saving the checkpoint");
}

/* Without parts or ZeRO-2/3: rank 0 gathers the state and writes it. */
static lmc_status save_gathered(lmc_trainer *tr, char *saved, size_t saved_len)
{
    float *b[3] = {NULL, NULL, NULL};
    lmc_status s = gather_whole(tr, b);
    if (s == LMC_OK && tr->world->rank == 0) {
        lmc_ckpt_state st;
        ckpt_state(tr, &st);
        s = lmc_ckpt_save(tr->o->out_dir, &st, &tr->cfg, &tr->m->layout, b[0], b[1], b[2], tr->o->keep, saved,
                          saved_len);
    }
    for (int i = 0; i < 3; i++)
        lmc_free(b[i]);
    return lmc_trainer_agree(tr, s, "saving the checkpoint");
}

static lmc_status save_checkpoint(lmc_trainer *tr)
{
    LMC_TRY(lmc_trainer_check_same(tr));
    char saved[4096];
    lmc_status s = every_rank_writes(tr)           ? save_folder(tr, lmc_trainer_write_sharded, saved, sizeof saved)
                   : lmc_trainer_holds_part(tr) ? save_folder(tr, lmc_trainer_save_joined, saved, sizeof saved)
                                                : save_gathered(tr, saved, sizeof saved);
    if (s == LMC_OK && tr->world->rank == 0) {
        lmc_train_event ev = {.kind = LMC_EV_SAVE, .step = tr->step, .text = saved};
        lmc_trainer_emit(tr, &ev);
    }
    return s;
}

/* The others wait while rank 0 writes a large file: the watchdog of the
 * job's communicators is raised to an hour meanwhile (restore: put back). */
static void long_wait(lmc_trainer *tr, double saved[2], int restore)
{
    lmc_comm *c[2] = {tr->comm, tr->world};
    for (int i = 0; i < 2; i++) {
        if (!restore)
            saved[i] = c[i]->timeout_s;
        c[i]->timeout_s = restore ? saved[i] : saved[i] < 3600 ? 3600 : saved[i];
    }
}

lmc_status lmc_trainer_save(lmc_trainer *tr)
{
    double timeout[2];
    long_wait(tr, timeout, 0);
    lmc_status s = save_checkpoint(tr);
    long_wait(tr, timeout, 1);
    return s;
}

/* A folder for a model larger than --max-shard-mb gets Hugging Face's
 * sharded layout; otherwise one file (model.safetensors in a folder). */
static lmc_status save_whole(lmc_trainer *tr, const float *params)
{
    const char *path = tr->o->save;
    const lmc_layout *g = &tr->m->layout;
    size_t len = strlen(path), max = (size_t)(tr->o->max_shard_mb * 1e6);
    int dir = lmc_is_dir(path) || (len && path[len - 1] == '/');
    if (dir && lmc_weights_files_for(g, max) > 1)
        return lmc_weights_save_sharded_moe(path, &tr->cfg, g, params, max, lmc_moe_bias(tr->m));
    return lmc_weights_save_moe(path, &tr->cfg, g, params, lmc_moe_bias(tr->m));
}

/* The final weights of ZeRO-0/1 runs without parts: rank 0 writes them. */
static lmc_status save_final_whole(lmc_trainer *tr)
{
    int root = tr->world->rank == 0;
    float *p = root ? lmc_alloc(tr->m->layout.total * sizeof(float), "final weights") : NULL;
    lmc_status s = lmc_trainer_agree(tr, !root || p ? LMC_OK : LMC_ENOMEM, "allocating the final weights");
    if (s == LMC_OK && root)
        lmc_model_download_params(tr->m, p);
    if (s == LMC_OK && root)
        s = save_whole(tr, p);
    lmc_free(p);
    return s;
}

lmc_status lmc_trainer_save_final(lmc_trainer *tr)
{
    if (!tr->o->save)
        return LMC_OK;
    const char *path = tr->o->save;
    size_t len = strlen(path);
    double timeout[2];
    long_wait(tr, timeout, 0);
    lmc_status s;
    if (every_rank_writes(tr)) /* every rank writes its part (a folder), or rank 0 streams one file */
        s = lmc_trainer_write_weights(tr, path, lmc_is_dir(path) || (len && path[len - 1] == '/'));
    else if (lmc_trainer_holds_part(tr))
        s = lmc_trainer_write_joined(tr, path);
    else
        s = save_final_whole(tr);
    s = lmc_trainer_agree(tr, s, "saving the final weights");
    long_wait(tr, timeout, 1);
    if (s == LMC_OK && tr->world->rank == 0) {
        lmc_train_event ev = {.kind = LMC_EV_SAVE, .step = tr->step, .text = tr->o->save};
        lmc_trainer_emit(tr, &ev);
    }
    return s;
}
