/* part_load.c: what a rank of a --tp, --pp or --ep job reads at start-up:
 * only the elements of its part (its tensor slices, its stage's layers, its
 * experts; under ZeRO-3 only its shards of those), from the weights file
 * or checkpoint, AdamW's m and v on resume, or a fresh init's random
 * streams, so no rank ever holds the whole model. lmc_part_map (model/
 * part_map.c) lists the elements, from the same description that cuts a
 * whole buffer into parts (lmc_layout_part_runs). */
#include "train/checkpoint.h"
#include "train/trainer.h"

#include <stdlib.h>

int lmc_trainer_holds_part(const lmc_trainer *tr) { return tr->tp > 1 || tr->pipe.pp > 1 || tr->ex.ep > 1; }

/* The part's elements in this rank's shards of its pieces (shard.h),
 * packed as the pieces pack them. */
static lmc_status pieces_map(const lmc_trainer *tr, lmc_part_map *m)
{
    const lmc_shard_pieces *ps = &tr->dp.pieces;
    lmc_part_window *w = malloc((size_t)(ps->n ? ps->n : 1) * sizeof *w);
    if (!w)
        return lmc_err(LMC_ENOMEM, "out of memory");
    for (int i = 0; i < ps->n; i++) {
        const lmc_shard_piece *p = &ps->p[i];
        w[i] = (lmc_part_window){p->b + p->own, p->b + p->own + p->cnt, p->at};
    }
    lmc_status s = lmc_part_map_build(&tr->cfg, &tr->m->layout, tr->tp_rank, w, ps->n, m);
    free(w);
    return s;
}

/* This rank's parameters from the file or the init: its whole part, or
 * under ZeRO-3 its shards. The file's config was read already (it made the
 * model); its layout here bounds what is read. */
static lmc_status read_params(lmc_trainer *tr, const char *ckpt, const lmc_part_map *m, float *dst)
{
    const lmc_train_opts *o = tr->o;
    lmc_model_config cfg;
    lmc_ckpt_state st;
    lmc_layout l;
    lmc_status s;
    if (ckpt)
        s = lmc_ckpt_load_part(ckpt, &st, &cfg, &l, m, dst);
    else if (o->init)
        s = lmc_weights_load_part(o->init, &cfg, &l, m, dst);
    else if ((s = lmc_layout_build(&tr->cfg, &l)) == LMC_OK)
        lmc_weights_init_part(&tr->cfg, &l, m, dst, o->seed);
    if (s == LMC_OK)
        lmc_layout_free(&l);
    return s;
}

/* The host buffer n floats are read into: the backend's own (dev) when
 * that is host memory (the CPU backend: no second copy of the part), else
 * staging that done() uploads. */
static float *host_view(const lmc_trainer *tr, float *dev, size_t n, const char *what)
{
    return tr->be->host_memory ? dev : lmc_alloc((n ? n : 1) * sizeof(float), what);
}

static void done(const lmc_trainer *tr, float *dev, float *host, size_t n, lmc_status s)
{
    if (host == dev || !host)
        return;
    if (s == LMC_OK && n)
        tr->be->ops->upload(tr->be, dev, host, n * sizeof(float));
    lmc_free(host);
}

lmc_status lmc_trainer_params_map(const lmc_trainer *tr, lmc_part_map *m)
{
    if (tr->dp.zero == 3) /* its shards, packed as own_params packs them */
        return pieces_map(tr, m);
    return lmc_part_map_build(&tr->cfg, &tr->m->layout, tr->tp_rank, NULL, 0, m);
}

lmc_status lmc_trainer_optim_map(const lmc_trainer *tr, lmc_part_map *m)
{
    lmc_part_window own = {tr->dp.own_begin, tr->dp.own_end, 0}; /* ZeRO-1/2/3: a range of the part */
    if (tr->ex.ep_zero)
        return pieces_map(tr, m);
    return lmc_part_map_build(&tr->cfg, &tr->m->layout, tr->tp_rank, &own, 1, m);
}

lmc_status lmc_trainer_part_params(lmc_trainer *tr, const char *ckpt)
{
    lmc_part_map m;
    LMC_TRY(lmc_trainer_params_map(tr, &m));
    float *dev = tr->dp.zero == 3 ? tr->dp.sh->own_params : tr->m->params;
    float *buf = host_view(tr, dev, m.floats, "this rank's part of the model");
    lmc_status s = buf ? read_params(tr, ckpt, &m, buf) : LMC_ENOMEM;
    done(tr, dev, buf, m.floats, s);
    lmc_part_map_free(&m);
    return s;
}

lmc_status lmc_trainer_load_optim(lmc_trainer *tr, const char *ckpt)
{
    lmc_layout g;
    lmc_part_map m;
    lmc_part_run run;
    size_t n = tr->dp.own_end - tr->dp.own_begin, total = tr->m->layout.total;
    if (lmc_trainer_holds_part(tr)) {
        LMC_TRY(lmc_layout_build(&tr->cfg, &g));
        total = g.total;
        lmc_layout_free(&g);
        LMC_TRY(lmc_trainer_optim_map(tr, &m));
    } else {
        m = lmc_part_map_range(&run, tr->dp.own_begin, tr->dp.own_end);
    }
    float *hm = host_view(tr, tr->opt.m, n, "AdamW m"), *hv = host_view(tr, tr->opt.v, n, "AdamW v");
    lmc_status s = hm && hv ? lmc_ckpt_load_optim_part(ckpt, total, &m, hm, hv) : LMC_ENOMEM;
    done(tr, tr->opt.m, hm, n, s);
    done(tr, tr->opt.v, hv, n, s);
    lmc_part_map_free(&m);
    return s;
}
