/* weights.c: model weights from and to safetensors with Hugging Face names,
 * and deterministic initialisation. */
#include "lmc/model.h"
#include "lmc/safetensors.h"

#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------- config discovery ---------- */

static const lmc_st_tensor *find_gpt2(const lmc_st_file *f, const char *name)
{
    const lmc_st_tensor *t = lmc_st_find(f, name);
    if (!t && !strncmp(name, "transformer.", 12))
        t = lmc_st_find(f, name + 12); /* files saved from GPT2Model lack the prefix */
    return t;
}

/* GPT-2 files without a config: shapes give everything but the head count,
 * which follows GPT-2's 64-dimensional heads. */
static lmc_status infer_gpt2_config(const lmc_st_file *f, lmc_model_config *cfg)
{
    const lmc_st_tensor *wte = find_gpt2(f, "transformer.wte.weight");
    const lmc_st_tensor *wpe = find_gpt2(f, "transformer.wpe.weight");
    if (!wte || !wpe || wte->ndim != 2 || wpe->ndim != 2)
        return lmc_err(LMC_EFORMAT, "%s: no lmc_config metadata, no config.json beside it, and no GPT-2 "
                       "tensors (transformer.wte.weight, transformer.wpe.weight) to infer the model from", f->path);
    LMC_TRY(lmc_config_preset("d12", cfg));
    cfg->vocab = (int)wte->shape[0];
    cfg->dim = (int)wte->shape[1];
    cfg->max_seq = (int)wpe->shape[0];
    cfg->n_head = cfg->n_kv_head = cfg->dim / 64 > 0 ? cfg->dim / 64 : 1;
    cfg->ffn_dim = 4 * cfg->dim;
    int L = 0;
    char name[96];
    for (;; L++) {
        snprintf(name, sizeof name, "transformer.h.%d.ln_1.weight", L);
        if (!find_gpt2(f, name))
            break;
    }
    cfg->n_layer = L;
    lmc_status s = lmc_config_finish(cfg);
    return s ? lmc_err_wrap(s, "%s: inferring the model from tensor shapes", f->path) : LMC_OK;
}

static lmc_status discover_config(const lmc_st_file *f, const char *cfg_path, lmc_model_config *cfg)
{
    const char *meta = lmc_st_meta(f, "lmc_config");
    if (meta) {
        char what[4200];
        snprintf(what, sizeof what, "%s (lmc_config metadata)", f->path);
        return lmc_config_from_hf_text(meta, strlen(meta), what, cfg);
    }
    if (lmc_path_exists(cfg_path))
        return lmc_config_load(cfg_path, cfg);
    return infer_gpt2_config(f, cfg);
}

/* ---------- loading ---------- */

static int ignorable(const lmc_model_config *c, const char *name)
{
    size_t n = strlen(name);
#define ENDS(s) (n >= strlen(s) && !strcmp(name + n - strlen(s), s))
    return ENDS(".attn.bias") || ENDS(".attn.masked_bias") || ENDS("rotary_emb.inv_freq") ||
           (c->tied && !strcmp(name, "lm_head.weight"));
#undef ENDS
}

static lmc_status check_shape(const lmc_st_file *f, const lmc_st_tensor *t, const lmc_hf_piece *p)
{
    int64_t want0 = (int64_t)(p->transpose ? p->cols : p->rows), want1 = (int64_t)(p->transpose ? p->rows : p->cols);
    int ok = p->cols == 1 ? t->ndim == 1 && t->shape[0] == want0
                          : t->ndim == 2 && t->shape[0] == want0 && t->shape[1] == want1;
    if (ok)
        return LMC_OK;
    char got[96] = "";
    for (int i = 0; i < t->ndim; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (p->cols == 1)
        return lmc_err(LMC_EFORMAT, "%s: tensor '%s' has shape (%s), the model needs (%lld)", f->path, t->name, got,
                       (long long)want0);
    return lmc_err(LMC_EFORMAT, "%s: tensor '%s' has shape (%s), the model needs (%lld, %lld)", f->path, t->name, got,
                   (long long)want0, (long long)want1);
}

static lmc_status load_piece(const lmc_st_file *f, const lmc_hf_piece *p, float *dst, float *tmp, char *used)
{
    const lmc_st_tensor *t = find_gpt2(f, p->name);
    if (!t)
        return lmc_err(LMC_EFORMAT, "%s: missing tensor '%s'", f->path, p->name);
    used[t - f->t] = 1;
    LMC_TRY(check_shape(f, t, p));
    LMC_TRY(lmc_st_read_f32(f, t, tmp));
    float *out = dst + p->row0 * p->cols;
    if (!p->transpose) {
        memcpy(out, tmp, p->rows * p->cols * sizeof(float));
        return LMC_OK;
    }
    for (size_t r = 0; r < p->rows; r++) /* file (cols, rows) -> ours (rows, cols) */
        for (size_t c = 0; c < p->cols; c++)
            out[r * p->cols + c] = tmp[c * p->rows + r];
    return LMC_OK;
}

static lmc_status load_all(const lmc_st_file *f, const lmc_model_config *cfg, const lmc_layout *l, float *params)
{
    size_t maxel = 0;
    for (int i = 0; i < f->n; i++)
        if (lmc_st_numel(&f->t[i]) > maxel)
            maxel = lmc_st_numel(&f->t[i]);
    float *tmp = lmc_alloc(maxel * sizeof(float), "weights staging buffer");
    char *used = calloc((size_t)f->n + 1, 1);
    lmc_status s = tmp && used ? LMC_OK : lmc_err(LMC_ENOMEM, "out of memory loading %s", f->path);
    for (int layer = -1; layer < cfg->n_layer && s == LMC_OK; layer++) {
        int kinds = layer < 0 ? LMC_T_GLOBAL_COUNT : LMC_T_LAYER_COUNT;
        for (int k = 0; k < kinds && s == LMC_OK; k++) {
            const lmc_tensor_slot *slot = lmc_layout_slot(l, layer, k);
            lmc_hf_piece p[3];
            int np = slot->offset == LMC_ABSENT ? 0 : lmc_hf_pieces(cfg, layer, k, p);
            for (int i = 0; i < np && s == LMC_OK; i++)
                s = load_piece(f, &p[i], params + slot->offset, tmp, used);
        }
    }
    for (int i = 0; i < f->n && s == LMC_OK; i++)
        if (!used[i] && !ignorable(cfg, f->t[i].name))
            s = lmc_err(LMC_EFORMAT, "%s: unexpected tensor '%s' (not part of a %s model with this config)", f->path,
                        f->t[i].name, cfg->family);
    lmc_free(tmp);
    free(used);
    return s;
}

lmc_status lmc_weights_load(const char *path, lmc_model_config *cfg, lmc_layout *layout, float **params)
{
    char file[4096], cfgpath[4096];
    *params = NULL;
    if (lmc_is_dir(path)) {
        snprintf(file, sizeof file, "%s/model.safetensors", path);
        snprintf(cfgpath, sizeof cfgpath, "%s/config.json", path);
    } else {
        snprintf(file, sizeof file, "%s", path);
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", path);
        snprintf(cfgpath, sizeof cfgpath, "%s/config.json", dirname(dir));
    }
    lmc_st_file f;
    LMC_TRY(lmc_st_open(&f, file));
    lmc_status s = discover_config(&f, cfgpath, cfg);
    if (s == LMC_OK)
        s = lmc_layout_build(cfg, layout);
    if (s == LMC_OK) {
        *params = lmc_alloc(layout->total * sizeof(float), "model parameters");
        s = *params ? load_all(&f, cfg, layout, *params) : LMC_ENOMEM;
        if (s != LMC_OK) {
            lmc_free(*params);
            *params = NULL;
            lmc_layout_free(layout);
        }
    }
    lmc_st_close(&f);
    return s;
}

/* ---------- saving ---------- */

lmc_status lmc_weights_save(const char *path, const lmc_model_config *cfg, const lmc_layout *l, const float *params)
{
    int cap = (cfg->n_layer + 1) * LMC_T_LAYER_COUNT * 3 + 8, n = 0;
    lmc_st_entry *e = calloc((size_t)cap, sizeof *e);
    lmc_hf_piece *names = calloc((size_t)cap, sizeof *names);
    float **owned = calloc((size_t)cap, sizeof *owned);
    lmc_status s = e && names && owned ? LMC_OK : lmc_err(LMC_ENOMEM, "out of memory saving %s", path);
    for (int layer = -1; layer < cfg->n_layer && s == LMC_OK; layer++) {
        int kinds = layer < 0 ? LMC_T_GLOBAL_COUNT : LMC_T_LAYER_COUNT;
        for (int k = 0; k < kinds && s == LMC_OK; k++) {
            const lmc_tensor_slot *slot = lmc_layout_slot(l, layer, k);
            int np = slot->offset == LMC_ABSENT ? 0 : lmc_hf_pieces(cfg, layer, k, names + n);
            for (int i = 0; i < np; i++, n++) {
                lmc_hf_piece *p = &names[n];
                const float *src = params + slot->offset + p->row0 * p->cols;
                e[n].name = p->name;
                e[n].dtype = "F32";
                e[n].ndim = p->cols == 1 ? 1 : 2;
                e[n].shape[0] = (int64_t)(p->transpose ? p->cols : p->rows);
                e[n].shape[1] = (int64_t)(p->transpose ? p->rows : p->cols);
                e[n].data = src;
                if (!p->transpose)
                    continue;
                float *t = owned[n] = lmc_alloc(p->rows * p->cols * sizeof(float), "transposed tensor");
                if (!t) {
                    s = LMC_ENOMEM;
                    break;
                }
                for (size_t r = 0; r < p->rows; r++)
                    for (size_t c = 0; c < p->cols; c++)
                        t[c * p->rows + r] = src[r * p->cols + c];
                e[n].data = t;
            }
        }
    }
    lmc_sb cj;
    lmc_sb_init(&cj);
    lmc_config_to_hf_json(cfg, &cj);
    if (s == LMC_OK) {
        int dir = lmc_is_dir(path) || path[strlen(path) - 1] == '/';
        char file[4096], cfile[4096];
        snprintf(file, sizeof file, dir ? "%s/model.safetensors" : "%s", path);
        snprintf(cfile, sizeof cfile, "%s/config.json", path);
        const char *meta[] = {"format", "pt", "lmc_config", cj.s, NULL};
        if (dir)
            s = lmc_mkdir_p(path);
        if (s == LMC_OK)
            s = lmc_st_write(file, e, n, meta);
        if (s == LMC_OK && dir)
            s = lmc_write_file_atomic(cfile, cj.s, cj.len);
    }
    lmc_sb_free(&cj);
    for (int i = 0; owned && i < n; i++)
        lmc_free(owned[i]);
    free(owned);
    free(names);
    free(e);
    return s;
}

/* ---------- initialisation ---------- */

static void fill_normal(float *p, size_t n, float std, uint64_t seed)
{
    lmc_rng r;
    lmc_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        p[i] = std * lmc_rng_normal(&r);
}

void lmc_weights_init(const lmc_model_config *cfg, const lmc_layout *l, float *params, uint64_t seed)
{
    float resid_std = 0.02f / sqrtf(2.0f * cfg->n_layer);
    for (int layer = -1; layer < cfg->n_layer; layer++) {
        int kinds = layer < 0 ? LMC_T_GLOBAL_COUNT : LMC_T_LAYER_COUNT;
        for (int k = 0; k < kinds; k++) {
            const lmc_tensor_slot *s = lmc_layout_slot(l, layer, k);
            if (s->offset == LMC_ABSENT || (layer < 0 && k == LMC_T_HEAD && cfg->tied))
                continue;
            float *p = params + s->offset;
            size_t rows = s->rows;
            if (layer < 0 && (k == LMC_T_WTE || k == LMC_T_HEAD))
                rows = (size_t)cfg->vocab; /* padded rows stay zero */
            uint64_t ts = lmc_hash64(seed ^ lmc_hash64((uint64_t)(layer + 1) * 64 + (uint64_t)k));
            int is_norm_w = layer < 0 ? k == LMC_T_NORMF_W : (k == LMC_T_LN1_W || k == LMC_T_LN2_W);
            if (is_norm_w)
                for (size_t i = 0; i < rows; i++)
                    p[i] = 1.0f;
            else if (s->cols > 1)
                fill_normal(p, rows * s->cols,
                            layer >= 0 && (k == LMC_T_ATTN_W || k == LMC_T_PROJ_W) ? resid_std : 0.02f, ts);
            else
                memset(p, 0, rows * sizeof(float));
        }
    }
}
