/* weights.c: model weights from safetensors with Hugging Face names (one
 * file or the sharded layout, whole or one range of the flat buffer).
 * Writing is in weights_stream.c, initialisation in init.c. */
#include "lmc/gguf.h"
#include "lmc/safetensors.h"
#include "model/weights_internal.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>

/* ---------- the files a model lives in ----------
 * One safetensors file, or the files of a sharded folder's index, each
 * opened (its header parsed) only when a tensor in it is needed. */

typedef struct {
    char *dir;     /* where config.json and the shards are */
    lmc_windex ix; /* sharded: the index; a single file is one file, no map */
    int sharded;
    int nfiles;
    char **paths;     /* [nfiles] */
    lmc_st_file *f;   /* [nfiles]; f[k].path != NULL once open */
    char **used;      /* [nfiles][tensors]: a piece found it */
} wsrc;

static void src_close(wsrc *src)
{
    for (int k = 0; k < src->nfiles; k++) {
        if (src->f && src->f[k].path)
            lmc_st_close(&src->f[k]);
        free(src->paths ? src->paths[k] : NULL);
        free(src->used ? src->used[k] : NULL);
    }
    free(src->paths);
    free(src->f);
    free(src->used);
    free(src->dir);
    lmc_windex_free(&src->ix);
    memset(src, 0, sizeof *src);
}

static char *join(const char *dir, const char *name)
{
    lmc_sb b;
    lmc_sb_init(&b);
    lmc_sb_printf(&b, "%s/%s", dir, name);
    if (b.oom)
        lmc_sb_free(&b);
    return b.s;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static lmc_status read_index(wsrc *src, const char *index_path)
{
    char *text;
    size_t len;
    LMC_TRY(lmc_read_file(index_path, &text, &len));
    lmc_status s = lmc_windex_parse(text, len, index_path, &src->ix);
    free(text);
    if (s == LMC_OK && src->ix.nfiles == 0)
        s = lmc_err(LMC_EFORMAT, "%s: weight_map is empty", index_path);
    src->sharded = 1;
    src->nfiles = src->ix.nfiles;
    return s;
}

static lmc_status alloc_files(wsrc *src, const char *single)
{
    int n = src->nfiles;
    src->paths = calloc((size_t)n, sizeof *src->paths);
    src->f = calloc((size_t)n, sizeof *src->f);
    src->used = calloc((size_t)n, sizeof *src->used);
    if (!src->paths || !src->f || !src->used)
        return lmc_err(LMC_ENOMEM, "out of memory opening %s", src->dir);
    for (int k = 0; k < n; k++)
        if (!(src->paths[k] = single ? lmc_strdup(single) : join(src->dir, src->ix.files[k])))
            return lmc_err(LMC_ENOMEM, "out of memory opening %s", src->dir);
    return LMC_OK;
}

/* path: a .safetensors file, a folder holding model.safetensors or
 * model.safetensors.index.json, or an index file. */
static lmc_status src_open(wsrc *src, const char *path)
{
    memset(src, 0, sizeof *src);
    int is_dir = lmc_is_dir(path);
    char *file = is_dir ? join(path, "model.safetensors") : lmc_strdup(path);
    char *index = is_dir ? join(path, "model.safetensors.index.json") : lmc_strdup(path);
    char *copy = lmc_strdup(path);
    src->dir = copy && !is_dir ? lmc_strdup(dirname(copy)) : lmc_strdup(path);
    lmc_status s = file && index && copy && src->dir ? LMC_OK : lmc_err(LMC_ENOMEM, "out of memory opening %s", path);
    int sharded = is_dir ? !lmc_path_exists(file) && lmc_path_exists(index) : ends_with(path, ".json");
    if (s == LMC_OK && sharded)
        s = read_index(src, index);
    else if (s == LMC_OK)
        src->nfiles = 1;
    if (s == LMC_OK)
        s = alloc_files(src, sharded ? NULL : file);
    free(file);
    free(index);
    free(copy);
    if (s != LMC_OK)
        src_close(src);
    return s;
}

/* The index file (sharded) or the one file: what errors about the model name. */
static const char *src_name(const wsrc *src) { return src->sharded ? src->ix.path : src->paths[0]; }

/* Opens file k on first use; tensor (NULL: the first the index puts
 * there) is what the message about a missing shard names. */
static lmc_status src_file(wsrc *src, int k, const char *tensor, lmc_st_file **out)
{
    *out = &src->f[k];
    if (src->f[k].path)
        return LMC_OK;
    for (int i = 0; src->sharded && !tensor && i < src->ix.n; i++)
        if (src->ix.map[i].file == k)
            tensor = src->ix.map[i].name;
    if (src->sharded && !lmc_path_exists(src->paths[k]))
        return lmc_err(LMC_EIO, "%s: weight_map puts tensor '%s' in '%s', which does not exist (%s)", src->ix.path,
                       tensor, src->ix.files[k], src->paths[k]);
    LMC_TRY(lmc_st_open(&src->f[k], src->paths[k]));
    if (!(src->used[k] = calloc((size_t)src->f[k].n + 1, 1)))
        return lmc_err(LMC_ENOMEM, "out of memory opening %s", src->paths[k]);
    return LMC_OK;
}

static const lmc_st_tensor *find_gpt2(const lmc_st_file *f, const char *name)
{
    const lmc_st_tensor *t = lmc_st_find(f, name);
    if (!t && !strncmp(name, "transformer.", 12))
        t = lmc_st_find(f, name + 12); /* files saved from GPT2Model lack the prefix */
    return t;
}

static lmc_windex_entry *index_entry(const wsrc *src, const char *name)
{
    lmc_windex_entry *e = lmc_windex_find(&src->ix, name);
    if (!e && !strncmp(name, "transformer.", 12))
        e = lmc_windex_find(&src->ix, name + 12);
    return e;
}

/* The tensor of an HF name, or *t = NULL when the model has none such. */
static lmc_status src_find(wsrc *src, const char *name, lmc_st_file **f, const lmc_st_tensor **t)
{
    *t = NULL;
    lmc_windex_entry *e = src->sharded ? index_entry(src, name) : NULL;
    if (src->sharded && !e)
        return LMC_OK;
    int k = e ? e->file : 0;
    LMC_TRY(src_file(src, k, name, f));
    *t = find_gpt2(*f, name);
    if (!*t && e)
        return lmc_err(LMC_EFORMAT, "%s: weight_map puts tensor '%s' in '%s', which does not hold it", src->ix.path,
                       name, src->ix.files[k]);
    if (e)
        e->used = 1;
    if (*t)
        src->used[k][*t - (*f)->t] = 1;
    return LMC_OK;
}

static lmc_status src_need(wsrc *src, const char *name, lmc_st_file **f, const lmc_st_tensor **t)
{
    LMC_TRY(src_find(src, name, f, t));
    if (*t)
        return LMC_OK;
    if (src->sharded)
        return lmc_err(LMC_EFORMAT, "%s: tensor '%s' is in no file (weight_map does not name it)", src->ix.path,
                       name);
    return lmc_err(LMC_EFORMAT, "%s: missing tensor '%s'", src->paths[0], name);
}

/* ---------- config discovery ---------- */

/* GPT-2 files without a config: shapes give everything but the head count,
 * which follows GPT-2's 64-dimensional heads. */
static lmc_status infer_gpt2_config(wsrc *src, lmc_model_config *cfg)
{
    lmc_st_file *f;
    const lmc_st_tensor *wte, *wpe, *ln;
    LMC_TRY(src_find(src, "transformer.wte.weight", &f, &wte));
    LMC_TRY(src_find(src, "transformer.wpe.weight", &f, &wpe));
    if (!wte || !wpe || wte->ndim != 2 || wpe->ndim != 2)
        return lmc_err(LMC_EFORMAT, "%s: no lmc_config metadata, no config.json beside it, and no GPT-2 "
                       "tensors (transformer.wte.weight, transformer.wpe.weight) to infer the model from",
                       src_name(src));
    LMC_TRY(lmc_config_preset("d12", cfg));
    cfg->vocab = (int)wte->shape[0];
    cfg->dim = (int)wte->shape[1];
    cfg->max_seq = (int)wpe->shape[0];
    cfg->n_head = cfg->n_kv_head = cfg->dim / 64 > 0 ? cfg->dim / 64 : 1;
    cfg->ffn_dim = 4 * cfg->dim;
    int L = 0;
    for (;; L++) {
        char name[96];
        snprintf(name, sizeof name, "transformer.h.%d.ln_1.weight", L);
        LMC_TRY(src_find(src, name, &f, &ln));
        if (!ln)
            break;
    }
    cfg->n_layer = L;
    lmc_status s = lmc_config_finish(cfg);
    return s ? lmc_err_wrap(s, "%s: inferring the model from tensor shapes", src_name(src)) : LMC_OK;
}

/* The lmc_config metadata of the (first) file, else config.json beside it. */
static lmc_status discover_config(wsrc *src, lmc_model_config *cfg)
{
    lmc_st_file *f;
    LMC_TRY(src_file(src, 0, NULL, &f));
    const char *meta = lmc_st_meta(f, "lmc_config");
    if (meta) {
        char what[4200];
        snprintf(what, sizeof what, "%s (lmc_config metadata)", f->path);
        return lmc_config_from_hf_text(meta, strlen(meta), what, cfg);
    }
    char *cfg_path = join(src->dir, "config.json");
    if (!cfg_path)
        return lmc_err(LMC_ENOMEM, "out of memory");
    lmc_status s = lmc_path_exists(cfg_path) ? lmc_config_load(cfg_path, cfg) : infer_gpt2_config(src, cfg);
    free(cfg_path);
    return s;
}

/* ---------- loading ---------- */

static int ignorable(const lmc_model_config *c, const char *name)
{
    return ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias") ||
           ends_with(name, "rotary_emb.inv_freq") || (c->tied && !strcmp(name, "lm_head.weight"));
}

static lmc_status check_shape(const lmc_st_file *f, const lmc_st_tensor *t, const lmc_wpiece *w)
{
    int64_t want[2];
    int nd = lmc_wpiece_shape(w, want);
    if (t->ndim == nd && t->shape[0] == want[0] && (nd == 1 || t->shape[1] == want[1]))
        return LMC_OK;
    char got[96] = "";
    for (int i = 0; i < t->ndim; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (nd == 1)
        return lmc_err(LMC_EFORMAT, "%s: tensor '%s' has shape (%s), the model needs (%lld)", f->path, t->name, got,
                       (long long)want[0]);
    return lmc_err(LMC_EFORMAT, "%s: tensor '%s' has shape (%s), the model needs (%lld, %lld)", f->path, t->name, got,
                   (long long)want[0], (long long)want[1]);
}

/* Layer l's balancing bias (DeepSeek-V3's, beside its router) if the
 * file has it, its shape checked: *t NULL when absent. */
static lmc_status find_bias(wsrc *src, const lmc_model_config *cfg, int l, lmc_st_file **f, const lmc_st_tensor **t)
{
    char name[112];
    *t = NULL;
    if (!lmc_hf_moe_bias_name(cfg, l, name, sizeof name))
        return LMC_OK;
    LMC_TRY(src_find(src, name, f, t));
    lmc_wpiece w = {.p = {.rows = (size_t)cfg->n_expert, .cols = 1}};
    return *t ? check_shape(*f, *t, &w) : LMC_OK;
}

/* Every balancing bias there: the right shape, in every MoE layer or none. */
static lmc_status check_biases(wsrc *src, const lmc_model_config *cfg, int *found)
{
    int have = 0, moe = 0, missing = -1;
    for (int l = 0; l < cfg->n_layer; l++) {
        lmc_st_file *f;
        const lmc_st_tensor *t;
        LMC_TRY(find_bias(src, cfg, l, &f, &t));
        moe += lmc_config_is_moe(cfg, l);
        have += t != NULL;
        if (!t && lmc_config_is_moe(cfg, l) && missing < 0)
            missing = l;
    }
    char name[112];
    if (have && have < moe && lmc_hf_moe_bias_name(cfg, missing, name, sizeof name))
        return lmc_err(LMC_EFORMAT, "%s: missing tensor '%s' (the file has %d other layers' balancing biases: "
                       "every layer with experts needs one, or none)", src_name(src), name, have);
    *found = have > 0;
    return LMC_OK;
}

typedef struct {
    float *p;
    size_t cap;
} staging;

/* The runs of map m that meet one HF tensor into dst (NULL: only find the
 * tensor and check its shape). Untransposed tensors are read in place, a
 * memcpy per run; a transposed one is read whole into staging, as its rows
 * are scattered in the file. */
static lmc_status read_piece(wsrc *src, const lmc_wpiece *w, const lmc_part_map *m, float *dst, staging *tmp)
{
    lmc_st_file *f;
    const lmc_st_tensor *t;
    LMC_TRY(src_need(src, w->p.name, &f, &t));
    LMC_TRY(check_shape(f, t, w));
    if (!dst)
        return LMC_OK;
    size_t n = lmc_wpiece_numel(w), rows = w->p.rows, cols = w->p.cols;
    if (w->p.transpose && n > tmp->cap) {
        lmc_free(tmp->p);
        tmp->cap = 0;
        if (!(tmp->p = lmc_alloc(n * sizeof(float), "weights staging buffer")))
            return LMC_ENOMEM;
        tmp->cap = n;
    }
    if (w->p.transpose)
        LMC_TRY(lmc_st_read_f32(f, t, tmp->p));
    for (size_t i = lmc_part_map_find(m, w->at); i < m->n && m->r[i].whole < w->at + n; i++) {
        const lmc_part_run *r = &m->r[i];
        size_t a = r->whole > w->at ? r->whole - w->at : 0, e = r->whole + r->n - w->at, b = e < n ? e : n;
        float *out = dst + r->at + (w->at + a - r->whole); /* [a, b): the piece's elements in the run */
        if (!w->p.transpose)
            LMC_TRY(lmc_st_read_f32_range(f, t, a, b - a, out));
        for (size_t j = a; w->p.transpose && j < b; j++) /* file (cols, rows) -> ours (rows, cols) */
            out[j - a] = tmp->p[(j % cols) * rows + j / cols];
    }
    lmc_st_release(f, t);
    return LMC_OK;
}

static lmc_status read_unit(wsrc *src, const lmc_model_config *cfg, const lmc_layout *l, int u,
                            const lmc_part_map *m, float *dst, staging *tmp)
{
    int np;
    lmc_wpiece *w = lmc_weights_unit_list(cfg, l, u, &np);
    lmc_status s = w ? LMC_OK : LMC_ENOMEM;
    for (int i = 0; i < np && s == LMC_OK; i++)
        if (lmc_part_map_meets(m, w[i].at, w[i].at + lmc_wpiece_numel(&w[i])))
            s = read_piece(src, &w[i], m, dst, tmp);
    free(w);
    return s;
}

/* After a whole load: every tensor of every file, and every name in the
 * index, was either used or is one HF keeps that we do not need. */
static lmc_status check_extra(wsrc *src, const lmc_model_config *cfg)
{
    for (int i = 0; src->sharded && i < src->ix.n; i++)
        if (!src->ix.map[i].used && !ignorable(cfg, src->ix.map[i].name))
            return lmc_err(LMC_EFORMAT, "%s: unexpected tensor '%s' in weight_map (not part of a %s model with "
                           "this config)", src->ix.path, src->ix.map[i].name, cfg->family);
    for (int k = 0; k < src->nfiles; k++) {
        lmc_st_file *f;
        LMC_TRY(src_file(src, k, NULL, &f));
        for (int i = 0; i < f->n; i++)
            if (!src->used[k][i] && !ignorable(cfg, f->t[i].name))
                return lmc_err(LMC_EFORMAT, "%s: unexpected tensor '%s' (not part of a %s model with this config)",
                               f->path, f->t[i].name, cfg->family);
    }
    return LMC_OK;
}

/* The runs of map m into dst (m->floats floats). With dst NULL, only checks
 * that every tensor meeting the runs is there with its shape (and, when
 * they are the whole buffer, that nothing unexpected is): headers alone, so
 * a file that claims a huge model fails before anyone allocates for it. */
static lmc_status src_read_map(wsrc *src, const lmc_model_config *cfg, const lmc_layout *l, const lmc_part_map *m,
                               float *dst)
{
    if (m->n && m->r[m->n - 1].whole + m->r[m->n - 1].n > l->total)
        return lmc_err(LMC_ERANGE, "%s: elements [%zu, %zu) are not a range of the model's %zu parameters",
                       src_name(src), m->r[m->n - 1].whole, m->r[m->n - 1].whole + m->r[m->n - 1].n, l->total);
    if (dst && m->floats)
        memset(dst, 0, m->floats * sizeof(float)); /* padding stays zero */
    staging tmp = {0};
    lmc_status s = LMC_OK;
    for (int u = 0; u < lmc_layout_num_units(l) && s == LMC_OK; u++) {
        size_t ub, ue;
        lmc_layout_unit(l, u, &ub, &ue);
        if (lmc_part_map_meets(m, ub, ue))
            s = read_unit(src, cfg, l, u, m, dst, &tmp);
    }
    lmc_free(tmp.p);
    int found, whole = m->n == 1 && m->r[0].whole == 0 && m->r[0].n == l->total;
    if (s == LMC_OK && !dst && whole)
        s = check_biases(src, cfg, &found);
    if (s == LMC_OK && !dst && whole)
        s = check_extra(src, cfg);
    return s;
}

/* Elements [begin, end) into dst (end - begin floats), as src_read_map. */
static lmc_status src_read(wsrc *src, const lmc_model_config *cfg, const lmc_layout *l, size_t begin, size_t end,
                           float *dst)
{
    if (begin > end || end > l->total)
        return lmc_err(LMC_ERANGE, "%s: elements [%zu, %zu) are not a range of the model's %zu parameters",
                       src_name(src), begin, end, l->total);
    lmc_part_run run;
    lmc_part_map m = lmc_part_map_range(&run, begin, end);
    return src_read_map(src, cfg, l, &m, dst);
}

/* The files, the config and the layout: what every load starts with. */
static lmc_status open_model(wsrc *src, const char *path, lmc_model_config *cfg, lmc_layout *layout)
{
    LMC_TRY(src_open(src, path));
    lmc_status s = discover_config(src, cfg);
    if (s == LMC_OK)
        s = lmc_layout_build(cfg, layout);
    if (s != LMC_OK)
        src_close(src);
    return s;
}

/* A .gguf file is llama.cpp's format, read by gguf_model.c. Weak: a build
 * of this file without the GGUF reader (a fuzz target) still links. */
#pragma weak lmc_gguf_load_range
#pragma weak lmc_gguf_load
#pragma weak lmc_gguf_load_part

static int is_gguf(const char *path) { return ends_with(path, ".gguf") && !lmc_is_dir(path); }

static lmc_status no_gguf(const char *path)
{
    return lmc_err(LMC_EUNSUPPORTED, "%s: this build of lmc reads no GGUF files", path);
}

lmc_status lmc_weights_load_range(const char *path, lmc_model_config *cfg, lmc_layout *layout, size_t begin,
                                  size_t end, float *dst)
{
    if (is_gguf(path))
        return lmc_gguf_load_range ? lmc_gguf_load_range(path, cfg, layout, begin, end, dst) : no_gguf(path);
    if (!dst && end > begin)
        return lmc_err(LMC_EINVAL, "%s: no buffer for elements [%zu, %zu)", path, begin, end);
    wsrc src;
    LMC_TRY(open_model(&src, path, cfg, layout));
    lmc_status s = src_read(&src, cfg, layout, begin, end, NULL);
    if (s == LMC_OK && dst)
        s = src_read(&src, cfg, layout, begin, end, dst);
    if (s != LMC_OK)
        lmc_layout_free(layout);
    src_close(&src);
    return s;
}

lmc_status lmc_weights_load_part(const char *path, lmc_model_config *cfg, lmc_layout *layout, const lmc_part_map *m,
                                 float *dst)
{
    if (is_gguf(path))
        return lmc_gguf_load_part ? lmc_gguf_load_part(path, cfg, layout, m, dst) : no_gguf(path);
    wsrc src;
    LMC_TRY(open_model(&src, path, cfg, layout));
    lmc_status s = src_read(&src, cfg, layout, 0, layout->total, NULL); /* every tensor, as a whole load checks */
    if (s == LMC_OK)
        s = src_read_map(&src, cfg, layout, m, dst);
    if (s != LMC_OK)
        lmc_layout_free(layout);
    src_close(&src);
    return s;
}

lmc_status lmc_weights_load(const char *path, lmc_model_config *cfg, lmc_layout *layout, float **params)
{
    wsrc src;
    *params = NULL;
    if (is_gguf(path))
        return lmc_gguf_load ? lmc_gguf_load(path, cfg, layout, params) : no_gguf(path);
    LMC_TRY(open_model(&src, path, cfg, layout));
    lmc_status s = src_read(&src, cfg, layout, 0, layout->total, NULL);
    if (s == LMC_OK && !(*params = lmc_alloc(layout->total * sizeof(float), "model parameters")))
        s = LMC_ENOMEM;
    if (s == LMC_OK)
        s = src_read(&src, cfg, layout, 0, layout->total, *params);
    if (s != LMC_OK) {
        lmc_free(*params);
        *params = NULL;
        lmc_layout_free(layout);
    }
    src_close(&src);
    return s;
}

lmc_status lmc_weights_load_moe_bias(const char *path, const lmc_model_config *cfg, float *bias, int *found)
{
    size_t E = cfg->n_expert > 0 ? (size_t)cfg->n_expert : 0;
    memset(bias, 0, (size_t)cfg->n_layer * E * sizeof(float));
    *found = 0;
    if (!E || is_gguf(path)) /* llama.cpp's llama architecture has no such tensor (gguf_export.c refuses it) */
        return LMC_OK;
    wsrc src;
    LMC_TRY(src_open(&src, path));
    lmc_status s = check_biases(&src, cfg, found);
    for (int l = 0; l < cfg->n_layer && s == LMC_OK && *found; l++) {
        lmc_st_file *f;
        const lmc_st_tensor *t;
        s = find_bias(&src, cfg, l, &f, &t);
        if (s == LMC_OK && t)
            s = lmc_st_read_f32(f, t, bias + (size_t)l * E); /* refuses a non-finite value */
    }
    src_close(&src);
    return s;
}
