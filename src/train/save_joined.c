/* save_joined.c: checkpoints and final weights of a --tp, --pp or --ep job,
 * streamed to rank 0 one unit of the whole model at a time.
 *
 * A rank holds a part of the model (its tensor slices, stage and experts;
 * under ZeRO its shards of those), listed as runs of the whole buffer by
 * the maps start-up read it with (part_load.c). For each unit of the whole
 * layout, in order, every rank sends rank 0 the runs of its part inside the
 * unit with their floats; rank 0 places them, checks that every element
 * arrived, and writes the unit: parameters into the weights file (one file,
 * or Hugging Face's sharded layout); AdamW's m and v go the same way in
 * pieces of MOMENT_CHUNK floats into the checkpoint's optim.safetensors. No
 * rank holds more than a unit of the whole model, and the files are those
 * a one-process job writes, so a checkpoint resumes on any layout.
 *
 * Data-parallel replicas send nothing they hold alike, nor, under --ep,
 * does any expert-parallel rank but the first send the weights outside its
 * experts; what several ranks still hold alike (tensors replicated over the
 * tensor-parallel group, a tied embedding on two stages) arrives more than
 * once, equal (save.c hashes the weights first). After a failure of its own
 * rank 0 goes on receiving, so that no rank waits forever; the ranks agree
 * on the outcome at the end.
 */
#include "model/moe.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { PARAMS, MOM_M, MOM_V };
#define MOMENT_CHUNK ((size_t)1 << 20) /* floats of m and v joined at a time */
static const char *const buf_names[] = {"parameters", "AdamW m", "AdamW v"};

/* The elements of one kind of buffer this rank sends: its runs of the
 * whole model (at: offsets into the buffer), or none. */
typedef struct {
    lmc_part_map map;
    int sends;
} holding;

typedef struct {
    lmc_trainer *tr;
    lmc_layout g; /* the whole model's */
    const float *dev[3]; /* this rank's parameters, m, v */
    holding held[2];     /* of the parameters; of m and v (which lie alike) */
    float *unit;         /* rank 0: a unit of the parameters */
    float *chunk[2];     /* rank 0: MOMENT_CHUNK floats of m and of v */
    unsigned char *seen; /* rank 0: which of its elements arrived */
    uint64_t *runs;      /* a message: (offset in the unit, count) pairs */
    float *floats;       /* and their floats */
    size_t runs_cap, floats_cap;
    int next;         /* rank 0: the unit the weights writer asks for next */
    lmc_status moved; /* a message that failed under the writer */
    lmc_status fail;  /* this rank's first error of its own */
} joiner;

/* ---------- what this rank sends ---------- */

/* Under --ep without ZeRO the ranks of the first expert-parallel group hold
 * the same weights outside the experts: ep rank 0 sends those, each rank
 * its experts ([x0, x1) of each MoE unit, the same offsets in the part). */
static lmc_status experts_only(const lmc_trainer *tr, lmc_part_map *m)
{
    int units = lmc_layout_num_units(&tr->m->layout), n = 0;
    lmc_part_window *w = malloc((size_t)units * sizeof *w);
    if (!w)
        return lmc_err(LMC_ENOMEM, "out of memory");
    for (int u = 0; u < units; u++) {
        size_t x0, x1;
        if (lmc_trainer_ep_experts(tr, u, &x0, &x1))
            w[n++] = (lmc_part_window){x0, x1, x0};
    }
    lmc_status s = lmc_part_map_build(&tr->cfg, &tr->m->layout, tr->tp_rank, w, n, m);
    free(w);
    return s;
}

/* A buffer every data-parallel rank holds whole for its part (ZeRO-0
 * parameters and moments, ZeRO-1/2 parameters): the data-parallel group's
 * first rank sends it (under --ep its first expert-parallel group, see
 * save.c). */
static lmc_status whole_part(const lmc_trainer *tr, holding *h, int moments)
{
    h->sends = tr->comm->rank < tr->ex.ep;
    if (!h->sends)
        return LMC_OK;
    if (tr->ex.ep > 1 && tr->comm->rank > 0)
        return experts_only(tr, &h->map);
    return moments ? lmc_trainer_optim_map(tr, &h->map) : lmc_trainer_params_map(tr, &h->map);
}

/* Sharded buffers (ZeRO-3 parameters, ZeRO-1/2/3 moments): every rank
 * sends its own shards. */
static lmc_status open_sources(joiner *j)
{
    lmc_trainer *tr = j->tr;
    j->dev[PARAMS] = tr->dp.zero == 3 ? tr->dp.sh->own_params : tr->m->params;
    j->dev[MOM_M] = tr->opt.m;
    j->dev[MOM_V] = tr->opt.v;
    j->held[0].sends = tr->dp.zero == 3;
    LMC_TRY(tr->dp.zero == 3 ? lmc_trainer_params_map(tr, &j->held[0].map) : whole_part(tr, &j->held[0], 0));
    j->held[1].sends = tr->dp.zero >= 1;
    return tr->dp.zero >= 1 ? lmc_trainer_optim_map(tr, &j->held[1].map) : whole_part(tr, &j->held[1], 1);
}

/* This rank's runs of buffer b inside the whole model's [ub, ue) into
 * j->runs (offsets from ub) and j->floats. */
static lmc_status pack(joiner *j, int b, size_t ub, size_t ue, uint64_t hdr[2])
{
    lmc_backend *be = j->tr->be;
    const holding *h = &j->held[b != PARAMS];
    const lmc_part_map *m = &h->map;
    hdr[0] = hdr[1] = 0;
    for (size_t r = h->sends ? lmc_part_map_find(m, ub) : m->n; r < m->n && m->r[r].whole < ue; r++) {
        const lmc_part_run *run = &m->r[r];
        size_t lo = run->whole > ub ? run->whole : ub, hi = run->whole + run->n < ue ? run->whole + run->n : ue;
        if (!lmc_reserve((void **)&j->runs, &j->runs_cap, 2 * (hdr[0] + 1), sizeof *j->runs) ||
            !lmc_reserve((void **)&j->floats, &j->floats_cap, hdr[1] + (hi - lo), sizeof *j->floats))
            return lmc_err(LMC_ENOMEM, "out of memory sending a unit of the model to rank 0");
        j->runs[2 * hdr[0]] = lo - ub;
        j->runs[2 * hdr[0] + 1] = hi - lo;
        be->ops->download(be, j->floats + hdr[1], j->dev[b] + run->at + (lo - run->whole), (hi - lo) * sizeof(float));
        hdr[0]++;
        hdr[1] += hi - lo;
    }
    return LMC_OK;
}

/* ---------- moving and placing ---------- */

/* A host buffer to or from a rank, through device memory when the job's
 * communicator moves only that. */
static lmc_status message(lmc_trainer *tr, void *host, size_t bytes, int peer, int send)
{
    lmc_comm *c = tr->world;
    lmc_backend *be = tr->be;
    void *buf = c->device_memory ? be->ops->alloc(be, bytes ? bytes : 1) : host;
    int req;
    if (!buf)
        return lmc_err(LMC_ENOMEM, "out of device memory staging a checkpoint (%zu bytes)", bytes);
    if (buf != host && send)
        be->ops->upload(be, buf, host, bytes);
    lmc_status s = send ? c->ops->send_start(c, buf, bytes, peer, &req) : c->ops->recv_start(c, buf, bytes, peer, &req);
    if (s == LMC_OK)
        s = c->ops->p2p_wait(c, req);
    if (s == LMC_OK && buf != host && !send)
        be->ops->download(be, host, buf, bytes);
    if (buf != host)
        be->ops->free(be, buf);
    return s;
}

static void place(joiner *j, float *unit, const uint64_t hdr[2])
{
    size_t at = 0;
    for (uint64_t k = 0; k < hdr[0]; k++) {
        size_t off = j->runs[2 * k], n = j->runs[2 * k + 1];
        memcpy(unit + off, j->floats + at, n * sizeof(float));
        memset(j->seen + off, 1, n);
        at += n;
    }
}

/* Rank q's message for the unit: a header (runs, floats), then both. A
 * message that does not fit the unit is an internal error; any failure
 * here ends the save (the rest of q's message cannot be told apart). */
static lmc_status receive(joiner *j, int q, size_t len, uint64_t hdr[2])
{
    LMC_TRY(message(j->tr, hdr, 2 * sizeof *hdr, q, 0));
    if (!hdr[0])
        return LMC_OK;
    if (hdr[1] > len || hdr[0] > len)
        return lmc_err(LMC_EINVAL, "internal error: rank %d sent %llu floats in %llu runs for a unit of %zu", q,
                       (unsigned long long)hdr[1], (unsigned long long)hdr[0], len);
    if (!lmc_reserve((void **)&j->runs, &j->runs_cap, 2 * hdr[0], sizeof *j->runs) ||
        !lmc_reserve((void **)&j->floats, &j->floats_cap, hdr[1], sizeof *j->floats))
        return lmc_err(LMC_ENOMEM, "out of memory receiving %llu floats of a unit from rank %d",
                       (unsigned long long)hdr[1], q);
    LMC_TRY(message(j->tr, j->runs, 2 * hdr[0] * sizeof *j->runs, q, 0));
    LMC_TRY(message(j->tr, j->floats, hdr[1] * sizeof(float), q, 0));
    for (uint64_t k = 0; k < hdr[0]; k++)
        if (j->runs[2 * k] + j->runs[2 * k + 1] > len)
            return lmc_err(LMC_EINVAL, "internal error: rank %d sent elements past the unit's %zu", q, len);
    return LMC_OK;
}

/* Elements [lo, hi) of the whole model's buffer b, on rank 0 (into dst),
 * from every rank; the others send. A failure to move a message is
 * returned (it ends the save at once); any other error is kept in j->fail
 * (the first) while the rank goes on, so that the others are not left
 * waiting. */
static lmc_status join_range(joiner *j, int b, size_t lo, size_t hi, float *dst)
{
    lmc_comm *c = j->tr->world;
    uint64_t hdr[2];
    lmc_status s = pack(j, b, lo, hi, hdr);
    if (c->rank > 0) {
        if (s != LMC_OK)
            hdr[0] = hdr[1] = 0; /* rank 0 finds the elements missing; agreement reports this rank's error */
        LMC_TRY(message(j->tr, hdr, sizeof hdr, 0, 1));
        if (hdr[0]) {
            LMC_TRY(message(j->tr, j->runs, 2 * hdr[0] * sizeof *j->runs, 0, 1));
            LMC_TRY(message(j->tr, j->floats, hdr[1] * sizeof(float), 0, 1));
        }
        j->fail = j->fail ? j->fail : s;
        return LMC_OK;
    }
    memset(j->seen, 0, hi - lo);
    if (s == LMC_OK)
        place(j, dst, hdr);
    for (int q = 1; q < c->size; q++) {
        LMC_TRY(receive(j, q, hi - lo, hdr));
        place(j, dst, hdr);
    }
    size_t missing = 0;
    for (size_t i = 0; i < hi - lo; i++)
        missing += !j->seen[i];
    if (s == LMC_OK && missing)
        s = lmc_err(LMC_EINVAL, "elements [%zu, %zu) of the %s: %zu came from no rank (one failed to send its "
                    "part, or a layout bug)", lo, hi, buf_names[b], missing);
    j->fail = j->fail ? j->fail : s;
    return LMC_OK;
}

static lmc_status join_unit(joiner *j, int b, int u, float *dst)
{
    size_t ub, ue;
    lmc_layout_unit(&j->g, u, &ub, &ue);
    return join_range(j, b, ub, ue, dst);
}

/* ---------- the joiner and its savers ---------- */

static lmc_status joiner_open(joiner *j, lmc_trainer *tr)
{
    memset(j, 0, sizeof *j);
    j->tr = tr;
    lmc_status s = lmc_layout_build(&tr->cfg, &j->g);
    if (s != LMC_OK)
        return s;
    if (!tr->world->ops->send_start)
        return lmc_err(LMC_EUNSUPPORTED, "saving a --tp/--pp/--ep job needs point-to-point messages, which %s has "
                       "none of", tr->world->name);
    s = open_sources(j);
    size_t most = lmc_layout_max_unit(&j->g, 0);
    if (s == LMC_OK && tr->world->rank == 0) {
        j->unit = lmc_alloc(most * sizeof(float), "a unit of the checkpoint");
        j->chunk[0] = lmc_alloc(MOMENT_CHUNK * sizeof(float), "a piece of the checkpoint");
        j->chunk[1] = lmc_alloc(MOMENT_CHUNK * sizeof(float), "a piece of the checkpoint");
        j->seen = lmc_alloc(most > MOMENT_CHUNK ? most : MOMENT_CHUNK, "a unit of the checkpoint");
        if (!j->unit || !j->chunk[0] || !j->chunk[1] || !j->seen)
            s = LMC_ENOMEM;
    }
    return s;
}

static void joiner_close(joiner *j)
{
    for (int i = 0; i < 2; i++)
        lmc_part_map_free(&j->held[i].map);
    lmc_free(j->unit);
    lmc_free(j->chunk[0]);
    lmc_free(j->chunk[1]);
    lmc_free(j->seen);
    free(j->runs);
    free(j->floats);
    lmc_layout_free(&j->g);
}

/* The weights writer's source on rank 0: unit u's parameters, joined. */
static lmc_status next_params(void *ctx, const lmc_layout *l, int u, const float **out)
{
    joiner *j = ctx;
    j->moved = join_unit(j, PARAMS, u, j->unit);
    j->next = u + 1;
    *out = j->unit;
    return j->moved ? j->moved : j->fail;
}

/* Rank 0 writes the parameters with a weights saver, which pulls units from
 * next_params and may stop early (the units it did not ask for are still
 * received); the others send every unit. */
static lmc_status write_params(joiner *j, const char *path, int sharded, const float *bias)
{
    lmc_trainer *tr = j->tr;
    int units = lmc_layout_num_units(&j->g);
    if (tr->world->rank == 0) {
        lmc_unit_source src = {next_params, j};
        size_t max = (size_t)(tr->o->max_shard_mb * 1e6);
        lmc_status w = sharded ? lmc_weights_save_sharded_from(path, &tr->cfg, &j->g, &src, max, bias)
                               : lmc_weights_save_from(path, &tr->cfg, &j->g, &src, bias);
        if (j->moved)
            return j->moved;
        j->fail = j->fail ? j->fail : w;
    }
    for (int u = tr->world->rank == 0 ? j->next : 0; u < units; u++)
        LMC_TRY(join_unit(j, PARAMS, u, j->unit));
    return LMC_OK;
}

/* AdamW's m and v into the checkpoint's optim.safetensors, MOMENT_CHUNK
 * floats at a time. */
static lmc_status write_moments(joiner *j, const char *tmp)
{
    int root = j->tr->world->rank == 0;
    size_t total = j->g.total;
    lmc_ckpt_optim_out o = {0};
    lmc_status s = root ? lmc_ckpt_optim_open(&o, tmp, total) : LMC_OK;
    j->fail = j->fail ? j->fail : s;
    for (size_t lo = 0; lo < total; lo += MOMENT_CHUNK) {
        size_t hi = total - lo < MOMENT_CHUNK ? total : lo + MOMENT_CHUNK;
        for (int i = 0; i < 2; i++)
            if ((s = join_range(j, MOM_M + i, lo, hi, j->chunk[i])) != LMC_OK)
                break;
        if (s == LMC_OK && j->fail == LMC_OK && root)
            j->fail = lmc_ckpt_optim_put(&o, lo, j->chunk[0], j->chunk[1], hi - lo);
        if (s != LMC_OK)
            break;
    }
    if (root && o.af.f)
        j->fail = j->fail || s ? (lmc_afile_abort(&o.af), j->fail) : lmc_afile_commit(&o.af);
    return s;
}

lmc_status lmc_trainer_save_joined(lmc_trainer *tr, const char *tmp)
{
    joiner j;
    lmc_status s = lmc_trainer_agree(tr, joiner_open(&j, tr), "preparing the checkpoint");
    if (s == LMC_OK) {
        char file[4200];
        lmc_ckpt_state st = {0};
        lmc_trainer_experts_state(tr, &st);
        snprintf(file, sizeof file, "%s/model.safetensors", tmp);
        s = write_params(&j, file, 0, st.moe_bias);
        if (s == LMC_OK)
            s = write_moments(&j, tmp);
        if (s == LMC_OK)
            s = j.fail;
    }
    joiner_close(&j);
    return lmc_trainer_agree(tr, s, "writing the checkpoint");
}

lmc_status lmc_trainer_write_joined(lmc_trainer *tr, const char *path)
{
    joiner j;
    lmc_status s = lmc_trainer_agree(tr, joiner_open(&j, tr), "preparing the final weights");
    if (s == LMC_OK) {
        size_t len = strlen(path), max = (size_t)(tr->o->max_shard_mb * 1e6);
        int dir = lmc_is_dir(path) || (len && path[len - 1] == '/');
        s = write_params(&j, path, dir && lmc_weights_files_for(&j.g, max) > 1, lmc_moe_bias(tr->m));
        if (s == LMC_OK)
            s = j.fail;
    }
    joiner_close(&j);
    return lmc_trainer_agree(tr, s, "writing the final weights");
}
