/* weights_stream.c: parameters to HF-named safetensors one layout unit at a
 * time (the one place that turns our buffer into HF tensors), and the
 * whole-model savers built on it: a single file, or the sharded layout. */
#include "lmc/safetensors.h"
#include "model/weights_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct lmc_weights_writer {
    lmc_model_config cfg;
    const lmc_layout *l;
    int unit_begin, unit_end, next;
    lmc_afile af;
    float *tmp; /* staging for the largest transposed tensor */
    const float *moe_bias; /* (L,E) written after each MoE layer's unit; NULL: none */
};

int lmc_weights_keeps_bias(const lmc_model_config *cfg, const float *bias)
{
    if (!bias || cfg->n_expert <= 0)
        return 0;
    if (cfg->bias_step > 0)
        return 1;
    for (size_t i = (size_t)cfg->first_dense * cfg->n_expert; i < (size_t)cfg->n_layer * cfg->n_expert; i++)
        if (bias[i] != 0)
            return 1;
    return 0;
}

int lmc_weights_unit_bias(const lmc_model_config *cfg, int unit, const float *bias, char *name, size_t n)
{
    return bias && unit >= 1 && lmc_hf_moe_bias_name(cfg, unit - 1, name, n);
}

/* The header of units [ub, ue): every piece's name, dtype and shape, in
 * the order the units will write them. *max_tr: the largest transposed
 * piece (floats). */
static lmc_status build_header(const lmc_weights_writer *w, lmc_sb *h, size_t *max_tr)
{
    int cap = (w->unit_end - w->unit_begin) * lmc_hf_unit_max_pieces(&w->cfg), n = 0;
    lmc_wpiece *p = calloc((size_t)cap, sizeof *p);
    lmc_st_entry *e = calloc((size_t)cap + (w->unit_end - w->unit_begin), sizeof *e);
    char(*bias)[112] = calloc((size_t)(w->unit_end - w->unit_begin) + 1, sizeof *bias);
    lmc_status s = p && e && bias ? LMC_OK : lmc_err(LMC_ENOMEM, "%s: out of memory", w->af.path);
    *max_tr = 0;
    int ne = 0; /* entries: each unit's pieces, then its layer's bias */
    for (int u = w->unit_begin; u < w->unit_end && s == LMC_OK; u++) {
        int k = lmc_weights_unit_pieces(&w->cfg, w->l, u, p + n);
        for (int i = n; i < n + k; i++, ne++) {
            e[ne].name = p[i].p.name;
            e[ne].dtype = "F32";
            e[ne].ndim = lmc_wpiece_shape(&p[i], e[ne].shape);
            if (p[i].p.transpose && lmc_wpiece_numel(&p[i]) > *max_tr)
                *max_tr = lmc_wpiece_numel(&p[i]);
        }
        n += k;
        char *b = bias[u - w->unit_begin];
        if (lmc_weights_unit_bias(&w->cfg, u, w->moe_bias, b, sizeof bias[0]))
            e[ne++] = (lmc_st_entry){.name = b, .dtype = "F32", .ndim = 1, .shape = {w->cfg.n_expert}};
    }
    lmc_sb cj;
    lmc_sb_init(&cj);
    lmc_config_to_hf_json(&w->cfg, &cj);
    const char *meta[] = {"format", "pt", "lmc_config", cj.s ? cj.s : "", NULL};
    size_t data_len;
    if (s == LMC_OK)
        s = cj.oom ? lmc_err(LMC_ENOMEM, "%s: out of memory", w->af.path) : lmc_st_header(e, ne, meta, h, &data_len);
    lmc_sb_free(&cj);
    free(bias);
    free(e);
    free(p);
    return s;
}

lmc_status lmc_weights_writer_open(lmc_weights_writer **out, const char *path, const lmc_model_config *cfg,
                                   const lmc_layout *l, int unit_begin, int unit_end)
{
    return lmc_weights_writer_open_moe(out, path, cfg, l, unit_begin, unit_end, NULL);
}

lmc_status lmc_weights_writer_open_moe(lmc_weights_writer **out, const char *path, const lmc_model_config *cfg,
                                       const lmc_layout *l, int unit_begin, int unit_end, const float *moe_bias)
{
    *out = NULL;
    int U = lmc_layout_num_units(l);
    if (unit_begin < 0 || unit_end > U || unit_begin >= unit_end)
        return lmc_err(LMC_EINVAL, "%s: units [%d, %d) are not a non-empty part of the model's %d units", path,
                       unit_begin, unit_end, U);
    lmc_weights_writer *w = calloc(1, sizeof *w);
    if (!w)
        return lmc_err(LMC_ENOMEM, "%s: out of memory", path);
    w->cfg = *cfg;
    w->l = l;
    w->unit_begin = w->next = unit_begin;
    w->unit_end = unit_end;
    w->moe_bias = lmc_weights_keeps_bias(cfg, moe_bias) ? moe_bias : NULL;
    lmc_status s = lmc_afile_open(&w->af, path);
    lmc_sb h;
    lmc_sb_init(&h);
    size_t max_tr = 0;
    if (s == LMC_OK)
        s = build_header(w, &h, &max_tr);
    if (s == LMC_OK && max_tr && !(w->tmp = lmc_alloc(max_tr * sizeof(float), "transposed tensor")))
        s = LMC_ENOMEM;
    if (s == LMC_OK)
        s = lmc_afile_write(&w->af, h.s, h.len);
    lmc_sb_free(&h);
    if (s != LMC_OK) {
        lmc_weights_writer_abort(w);
        return s;
    }
    *out = w;
    return LMC_OK;
}

static lmc_status write_piece(lmc_weights_writer *w, const lmc_wpiece *wp, const float *src)
{
    const lmc_hf_piece *p = &wp->p;
    if (!p->transpose)
        return lmc_afile_write(&w->af, src, p->rows * p->cols * sizeof(float));
    for (size_t r = 0; r < p->rows; r++) /* ours (rows, cols) -> file (cols, rows) */
        for (size_t c = 0; c < p->cols; c++)
            w->tmp[c * p->rows + r] = src[r * p->cols + c];
    return lmc_afile_write(&w->af, w->tmp, p->rows * p->cols * sizeof(float));
}

lmc_status lmc_weights_writer_unit(lmc_weights_writer *w, int unit, const float *unit_params)
{
    if (unit != w->next || unit >= w->unit_end)
        return lmc_err(LMC_EINVAL, "%s: got unit %d, expected %d (units [%d, %d) arrive in order)", w->af.path,
                       unit, w->next, w->unit_begin, w->unit_end);
    size_t begin, end;
    lmc_layout_unit(w->l, unit, &begin, &end);
    int np;
    lmc_wpiece *p = lmc_weights_unit_list(&w->cfg, w->l, unit, &np);
    lmc_status s = p ? LMC_OK : LMC_ENOMEM;
    for (int i = 0; i < np && s == LMC_OK; i++)
        s = write_piece(w, &p[i], unit_params + (p[i].at - begin));
    free(p);
    char name[112];
    if (s == LMC_OK && lmc_weights_unit_bias(&w->cfg, unit, w->moe_bias, name, sizeof name))
        s = lmc_afile_write(&w->af, w->moe_bias + (size_t)(unit - 1) * w->cfg.n_expert,
                            (size_t)w->cfg.n_expert * sizeof(float));
    if (s == LMC_OK)
        w->next++;
    return s;
}

lmc_status lmc_weights_writer_close(lmc_weights_writer *w)
{
    lmc_status s;
    if (w->next != w->unit_end) {
        s = lmc_err(LMC_EINVAL, "%s: closed with unit %d of units [%d, %d) not written", w->af.path, w->next,
                    w->unit_begin, w->unit_end);
        lmc_weights_writer_abort(w);
        return s;
    }
    s = lmc_afile_commit(&w->af);
    lmc_free(w->tmp);
    free(w);
    return s;
}

void lmc_weights_writer_abort(lmc_weights_writer *w)
{
    if (!w)
        return;
    lmc_afile_abort(&w->af);
    lmc_free(w->tmp);
    free(w);
}

/* ---------- whole-model savers ---------- */

/* A unit source over a whole buffer in memory. */
static lmc_status from_buffer(void *ctx, const lmc_layout *l, int unit, const float **out)
{
    size_t begin, end;
    lmc_layout_unit(l, unit, &begin, &end);
    *out = (const float *)ctx + begin;
    return LMC_OK;
}

/* Units [ub, ue) from the source into one file at path. */
static lmc_status write_units(const char *path, const lmc_model_config *cfg, const lmc_layout *l,
                              const lmc_unit_source *src, int ub, int ue, const float *bias)
{
    lmc_weights_writer *w;
    LMC_TRY(lmc_weights_writer_open_moe(&w, path, cfg, l, ub, ue, bias));
    for (int u = ub; u < ue; u++) {
        const float *unit = NULL;
        lmc_status s = src->next(src->ctx, l, u, &unit);
        if (s == LMC_OK)
            s = lmc_weights_writer_unit(w, u, unit);
        if (s != LMC_OK) {
            lmc_weights_writer_abort(w);
            return s;
        }
    }
    return lmc_weights_writer_close(w);
}

/* dir/name if it is there. */
static lmc_status remove_file(const char *dir, const char *name)
{
    lmc_sb p;
    lmc_sb_init(&p);
    lmc_sb_printf(&p, "%s/%s", dir, name);
    lmc_status s = p.oom ? LMC_ENOMEM : LMC_OK;
    if (s == LMC_OK && unlink(p.s) != 0 && errno != ENOENT)
        s = lmc_err(LMC_EIO, "%s: cannot remove: %s", p.s, strerror(errno));
    lmc_sb_free(&p);
    return s;
}

/* What a folder's earlier save left that the new one does not use: the
 * single file (keep_shards > 0) or the index (keep_shards == 0), and our
 * shard files of any count but keep_shards. As save_pretrained does, so a
 * folder never holds two models. */
static lmc_status remove_stale(const char *dir, int keep_shards)
{
    LMC_TRY(remove_file(dir, keep_shards ? "model.safetensors" : "model.safetensors.index.json"));
    DIR *d = opendir(dir);
    if (!d)
        return LMC_OK;
    lmc_status s = LMC_OK;
    for (struct dirent *e; s == LMC_OK && (e = readdir(d));) {
        int k, n;
        char ours[64] = "";
        if (sscanf(e->d_name, "model-%5d-of-%5d.safetensors", &k, &n) == 2)
            lmc_weights_shard_name(k - 1, n, ours, sizeof ours);
        if (!strcmp(ours, e->d_name) && n != keep_shards) /* exactly a name we would write */
            s = remove_file(dir, e->d_name);
    }
    closedir(d);
    return s == LMC_OK ? lmc_fsync_dir(dir) : s;
}

lmc_status lmc_weights_save(const char *path, const lmc_model_config *cfg, const lmc_layout *l, const float *params)
{
    return lmc_weights_save_moe(path, cfg, l, params, NULL);
}

lmc_status lmc_weights_save_moe(const char *path, const lmc_model_config *cfg, const lmc_layout *l,
                                const float *params, const float *moe_bias)
{
    lmc_unit_source src = {from_buffer, (void *)params};
    return lmc_weights_save_from(path, cfg, l, &src, moe_bias);
}

lmc_status lmc_weights_save_from(const char *path, const lmc_model_config *cfg, const lmc_layout *l,
                                 const lmc_unit_source *src, const float *moe_bias)
{
    int U = lmc_layout_num_units(l), dir = lmc_is_dir(path) || (*path && path[strlen(path) - 1] == '/');
    if (!dir)
        return write_units(path, cfg, l, src, 0, U, moe_bias);
    lmc_sb file;
    lmc_sb_init(&file);
    lmc_sb_printf(&file, "%s/model.safetensors", path);
    lmc_status s = file.oom ? LMC_ENOMEM : lmc_mkdir_p(path);
    if (s == LMC_OK)
        s = write_units(file.s, cfg, l, src, 0, U, moe_bias);
    if (s == LMC_OK)
        s = lmc_weights_write_config(path, cfg);
    if (s == LMC_OK)
        s = remove_stale(path, 0);
    lmc_sb_free(&file);
    return s;
}

static lmc_status write_shards(const char *dir, const lmc_model_config *cfg, const lmc_layout *l,
                               const lmc_unit_source *src, int n, const int *unit_first, const float *bias)
{
    lmc_status s = LMC_OK;
    for (int k = 0; k < n && s == LMC_OK; k++) {
        char name[64];
        lmc_weights_shard_name(k, n, name, sizeof name);
        lmc_sb file;
        lmc_sb_init(&file);
        lmc_sb_printf(&file, "%s/%s", dir, name);
        s = file.oom ? LMC_ENOMEM : write_units(file.s, cfg, l, src, unit_first[k], unit_first[k + 1], bias);
        lmc_sb_free(&file);
    }
    return s;
}

lmc_status lmc_weights_save_sharded(const char *dir, const lmc_model_config *cfg, const lmc_layout *l,
                                    const float *params, size_t max_file_bytes)
{
    return lmc_weights_save_sharded_moe(dir, cfg, l, params, max_file_bytes, NULL);
}

lmc_status lmc_weights_save_sharded_moe(const char *dir, const lmc_model_config *cfg, const lmc_layout *l,
                                        const float *params, size_t max_file_bytes, const float *moe_bias)
{
    lmc_unit_source src = {from_buffer, (void *)params};
    return lmc_weights_save_sharded_from(dir, cfg, l, &src, max_file_bytes, moe_bias);
}

lmc_status lmc_weights_save_sharded_from(const char *dir, const lmc_model_config *cfg, const lmc_layout *l,
                                         const lmc_unit_source *src, size_t max_file_bytes, const float *moe_bias)
{
    int n = lmc_weights_files_for(l, max_file_bytes);
    int *unit_first = calloc((size_t)n + 1, sizeof *unit_first);
    if (!unit_first)
        return lmc_err(LMC_ENOMEM, "%s: out of memory", dir);
    n = lmc_weights_split(l, n, unit_first);
    /* An old index goes first: shards are replaced one by one, and an old
     * index over a mix of old and new shards would load without error. */
    lmc_status s = lmc_mkdir_p(dir);
    if (s == LMC_OK)
        s = remove_file(dir, "model.safetensors.index.json");
    if (s == LMC_OK)
        s = write_shards(dir, cfg, l, src, n, unit_first, moe_bias);
    if (s == LMC_OK)
        s = lmc_weights_write_index_moe(dir, cfg, l, n, unit_first, moe_bias);
    if (s == LMC_OK)
        s = remove_stale(dir, n);
    free(unit_first);
    return s;
}
