/* save_sharded.c: checkpoints and weights written by every rank (ZeRO-2/3).
 *
 * No rank gathers the whole model: the weights go unit by unit (under
 * ZeRO-3 each unit gathered from its owners, a collective every rank joins)
 * into Hugging Face's sharded layout, file k written by rank k; AdamW's
 * moments go from each rank's shard into its own optimizer file. A failure
 * on one rank does not stop the others from joining the gathers; all agree
 * on the outcome at the end.
 */
#include "model/moe.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int nfiles, mine, *unit_first; /* file k holds units [unit_first[k], unit_first[k+1]) */
    lmc_weights_writer *w;
    float *dev, *host; /* one unit: gathered (ZeRO-3), and its host copy for the writer */
} weights_out;

static int file_of(const weights_out *o, int unit)
{
    int k = 0;
    while (k + 1 < o->nfiles && unit >= o->unit_first[k + 1])
        k++;
    return k;
}

/* One unit from the parameters to the file that holds it. */
static lmc_status write_unit(lmc_trainer *tr, weights_out *o, int unit, lmc_status s)
{
    size_t b, e;
    lmc_layout_unit(&tr->m->layout, unit, &b, &e);
    const float *src = tr->m->params ? tr->m->params + b : o->dev;
    if (!tr->m->params) {
        lmc_status g = lmc_shard_gather_range(tr->dp.sh, b, e, o->dev); /* every rank, even after a failure */
        if (g)
            return g; /* a failed collective: the job ends on the fault path */
    }
    if (s || file_of(o, unit) != o->mine)
        return s;
    tr->be->ops->download(tr->be, o->host, src, (e - b) * sizeof(float));
    return lmc_weights_writer_unit(o->w, unit, o->host);
}

static lmc_status open_out(lmc_trainer *tr, weights_out *o, const char *path, int sharded)
{
    const lmc_layout *l = &tr->m->layout;
    size_t most = lmc_layout_max_unit(l, 0);
    o->unit_first = malloc(((size_t)tr->comm->size + 2) * sizeof(int));
    o->host = lmc_alloc(most * sizeof(float), "a unit of weights");
    o->dev = tr->m->params ? NULL : tr->be->ops->alloc(tr->be, most * sizeof(float));
    if (!o->unit_first || !o->host || (!tr->m->params && !o->dev))
        return lmc_err(LMC_ENOMEM, "out of memory saving the weights");
    o->nfiles = lmc_weights_split(l, sharded ? tr->comm->size : 1, o->unit_first);
    o->mine = tr->comm->rank < o->nfiles ? tr->comm->rank : -1;
    if (o->mine < 0)
        return LMC_OK;
    char file[4200];
    if (sharded) {
        char name[64];
        lmc_weights_shard_name(o->mine, o->nfiles, name, sizeof name);
        snprintf(file, sizeof file, "%s/%s", path, name);
    } else {
        snprintf(file, sizeof file, "%s", path);
    }
    return lmc_weights_writer_open_moe(&o->w, file, &tr->cfg, l, o->unit_first[o->mine], o->unit_first[o->mine + 1],
                                       lmc_moe_bias(tr->m));
}

/* The weights into path: a folder in the sharded layout (one file per rank),
 * or one .safetensors file written by rank 0. */
lmc_status lmc_trainer_write_weights(lmc_trainer *tr, const char *path, int sharded)
{
    weights_out o = {0};
    lmc_status s = sharded && tr->comm->rank == 0 ? lmc_mkdir_p(path) : LMC_OK;
    LMC_TRY(lmc_trainer_agree(tr, s, "creating the weights folder"));
    s = open_out(tr, &o, path, sharded);
    for (int u = 0; u < lmc_layout_num_units(&tr->m->layout); u++) {
        lmc_status w = write_unit(tr, &o, u, s);
        if (w == LMC_ECOMM)
            return w;
        s = w;
    }
    if (o.w)
        s = s ? (lmc_weights_writer_abort(o.w), s) : lmc_weights_writer_close(o.w);
    s = lmc_trainer_agree(tr, s, "writing the weights");
    if (s == LMC_OK && sharded && tr->comm->rank == 0)
        s = lmc_weights_write_index_moe(path, &tr->cfg, &tr->m->layout, o.nfiles, o.unit_first, lmc_moe_bias(tr->m));
    free(o.unit_first);
    lmc_free(o.host);
    if (o.dev)
        tr->be->ops->free(tr->be, o.dev);
    return lmc_trainer_agree(tr, s, "writing the weights index");
}

static lmc_status write_optim(lmc_trainer *tr, const char *tmp)
{
    size_t own = tr->dp.own_end - tr->dp.own_begin;
    float *m = lmc_alloc((own ? own : 1) * sizeof(float), "AdamW m"), *v = lmc_alloc((own ? own : 1) * 4, "AdamW v");
    lmc_status s = m && v ? LMC_OK : LMC_ENOMEM;
    if (s == LMC_OK && own) {
        tr->be->ops->download(tr->be, m, tr->opt.m, own * sizeof(float));
        tr->be->ops->download(tr->be, v, tr->opt.v, own * sizeof(float));
    }
    if (s == LMC_OK)
        s = lmc_ckpt_write_optim_shard(tmp, tr->comm->rank, tr->comm->size, tr->m->layout.total, tr->dp.own_begin,
                                       tr->dp.own_end, m, v);
    lmc_free(m);
    lmc_free(v);
    return s;
}

lmc_status lmc_trainer_write_sharded(lmc_trainer *tr, const char *tmp)
{
    LMC_TRY(lmc_trainer_agree(tr, write_optim(tr, tmp), "writing the optimizer shard"));
    return lmc_trainer_write_weights(tr, tmp, 1);
}
