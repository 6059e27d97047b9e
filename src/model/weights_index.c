/* weights_index.c: Hugging Face's sharded weight layout: which HF tensors a
 * layout unit holds, how units are cut into files, and
 * model.safetensors.index.json in both directions. */
#include "model/weights_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------- the HF tensors of a unit ---------- */

static int add_slot(const lmc_model_config *cfg, const lmc_layout *l, int layer, int kind, lmc_wpiece *out)
{
    const lmc_tensor_slot *slot = lmc_layout_slot(l, layer, kind);
    int np = 0;
    while (slot->offset != LMC_ABSENT && lmc_hf_piece_at(cfg, layer, kind, np, &out[np].p)) {
        out[np].at = slot->offset + out[np].p.row0 * out[np].p.cols;
        np++;
    }
    return np;
}

lmc_wpiece *lmc_weights_unit_list(const lmc_model_config *cfg, const lmc_layout *l, int unit, int *n)
{
    lmc_wpiece *w = malloc((size_t)lmc_hf_unit_max_pieces(cfg) * sizeof *w);
    *n = w ? lmc_weights_unit_pieces(cfg, l, unit, w) : 0;
    if (!w)
        lmc_err(LMC_ENOMEM, "out of memory listing the tensors of unit %d", unit);
    return w;
}

int lmc_weights_unit_pieces(const lmc_model_config *cfg, const lmc_layout *l, int unit, lmc_wpiece *out)
{
    int n = 0;
    if (unit >= 1 && unit <= l->n_layer) {
        for (int k = 0; k < LMC_T_LAYER_COUNT; k++)
            n += add_slot(cfg, l, unit - 1, k, out + n);
        return n;
    }
    for (int k = 0; k < LMC_T_GLOBAL_COUNT; k++) /* a tied head has no pieces, so its unit does not matter */
        if (lmc_layout_unit_of(l, -1, k) == unit)
            n += add_slot(cfg, l, -1, k, out + n);
    return n;
}

size_t lmc_wpiece_numel(const lmc_wpiece *w) { return w->p.rows * w->p.cols; }

int lmc_wpiece_shape(const lmc_wpiece *w, int64_t shape[2])
{
    const lmc_hf_piece *p = &w->p;
    shape[0] = (int64_t)(p->transpose ? p->cols : p->rows);
    shape[1] = (int64_t)(p->transpose ? p->rows : p->cols);
    return p->cols == 1 ? 1 : 2;
}

lmc_status lmc_weights_write_config(const char *dir, const lmc_model_config *cfg)
{
    lmc_sb cj, path;
    lmc_sb_init(&cj);
    lmc_sb_init(&path);
    lmc_config_to_hf_json(cfg, &cj);
    lmc_sb_printf(&path, "%s/config.json", dir);
    lmc_status s = cj.oom || path.oom ? lmc_err(LMC_ENOMEM, "%s: out of memory", dir)
                                      : lmc_write_file_atomic(path.s, cj.s, cj.len);
    lmc_sb_free(&cj);
    lmc_sb_free(&path);
    return s;
}

/* ---------- cutting units into files ---------- */

void lmc_weights_shard_name(int k, int n, char *buf, size_t len)
{
    snprintf(buf, len, "model-%05d-of-%05d.safetensors", k + 1, n);
}

static size_t unit_bytes(const lmc_layout *l, int u)
{
    size_t b, e;
    lmc_layout_unit(l, u, &b, &e);
    return (e - b) * sizeof(float);
}

/* Greedy: files needed when each takes whole units while they fit in cap
 * (a unit over cap alone). The fewest for contiguous groups. */
static int files_within(const lmc_layout *l, size_t cap)
{
    int n = 0;
    size_t cur = 0;
    for (int u = 0; u < lmc_layout_num_units(l); u++) {
        size_t b = unit_bytes(l, u);
        if (n == 0 || cur + b > cap) {
            n++;
            cur = b;
        } else {
            cur += b;
        }
    }
    return n;
}

int lmc_weights_files_for(const lmc_layout *l, size_t max_file_bytes)
{
    return max_file_bytes ? files_within(l, max_file_bytes) : 1;
}

int lmc_weights_split(const lmc_layout *l, int nfiles, int *unit_first)
{
    int U = lmc_layout_num_units(l), n = nfiles < 1 ? 1 : nfiles > U ? U : nfiles;
    size_t lo = 0, hi = l->total * sizeof(float);
    for (int u = 0; u < U; u++)
        lo = unit_bytes(l, u) > lo ? unit_bytes(l, u) : lo;
    while (lo < hi) { /* the smallest largest-file size n files allow */
        size_t mid = lo + (hi - lo) / 2;
        if (files_within(l, mid) <= n)
            hi = mid;
        else
            lo = mid + 1;
    }
    /* Greedy within that size, cutting early where later files would
     * otherwise get no unit; the last file takes the rest. */
    int u = 0;
    for (int g = 0; g < n; g++) {
        unit_first[g] = u;
        size_t cur = 0;
        do
            cur += unit_bytes(l, u++);
        while (u < U && (g == n - 1 || (cur + unit_bytes(l, u) <= lo && U - u > n - 1 - g)));
    }
    for (int k = n; k <= (nfiles > n ? nfiles : n); k++)
        unit_first[k] = U;
    return n;
}

/* ---------- writing the index ---------- */

static lmc_status check_split(const lmc_layout *l, int nfiles, const int *unit_first)
{
    int U = lmc_layout_num_units(l), ok = nfiles >= 1 && unit_first[0] == 0 && unit_first[nfiles] == U;
    for (int k = 0; ok && k < nfiles; k++)
        ok = unit_first[k] < unit_first[k + 1];
    return ok ? LMC_OK
              : lmc_err(LMC_EINVAL, "weights index: %d files must split the %d units into non-empty groups "
                        "from unit 0 to %d", nfiles, U, U);
}

static void map_entry(lmc_sb *map, const char *name, const char *file)
{
    lmc_sb_puts(map, map->len ? ",\n    " : "    ");
    lmc_sb_json_str(map, name, strlen(name));
    lmc_sb_printf(map, ": \"%s\"", file);
}

static void weight_map_json(const lmc_model_config *cfg, const lmc_layout *l, int nfiles, const int *unit_first,
                            const float *bias, lmc_sb *map, size_t *total)
{
    *total = 0;
    for (int k = 0; k < nfiles; k++) {
        char file[64];
        lmc_weights_shard_name(k, nfiles, file, sizeof file);
        for (int u = unit_first[k]; u < unit_first[k + 1]; u++) {
            int np;
            lmc_wpiece *w = lmc_weights_unit_list(cfg, l, u, &np);
            map->oom |= !w;
            for (int i = 0; i < np; i++) {
                map_entry(map, w[i].p.name, file);
                *total += lmc_wpiece_numel(&w[i]) * sizeof(float);
            }
            free(w);
            char name[112];
            if (lmc_weights_unit_bias(cfg, u, bias, name, sizeof name)) {
                map_entry(map, name, file);
                *total += (size_t)cfg->n_expert * sizeof(float);
            }
        }
    }
}

lmc_status lmc_weights_write_index(const char *dir, const lmc_model_config *cfg, const lmc_layout *l, int nfiles,
                                   const int *unit_first)
{
    return lmc_weights_write_index_moe(dir, cfg, l, nfiles, unit_first, NULL);
}

lmc_status lmc_weights_write_index_moe(const char *dir, const lmc_model_config *cfg, const lmc_layout *l,
                                       int nfiles, const int *unit_first, const float *moe_bias)
{
    LMC_TRY(check_split(l, nfiles, unit_first));
    lmc_sb map, j, path;
    lmc_sb_init(&map);
    lmc_sb_init(&j);
    lmc_sb_init(&path);
    size_t total;
    weight_map_json(cfg, l, nfiles, unit_first, lmc_weights_keeps_bias(cfg, moe_bias) ? moe_bias : NULL, &map,
                    &total);
    lmc_sb_printf(&j, "{\n  \"metadata\": {\n    \"total_size\": %zu\n  },\n  \"weight_map\": {\n%s\n  }\n}\n", total,
                  map.s ? map.s : "");
    lmc_sb_printf(&path, "%s/model.safetensors.index.json", dir);
    lmc_status s = map.oom || j.oom || path.oom ? lmc_err(LMC_ENOMEM, "%s: out of memory", dir) : LMC_OK;
    if (s == LMC_OK)
        s = lmc_write_file_atomic(path.s, j.s, j.len);
    if (s == LMC_OK)
        s = lmc_weights_write_config(dir, cfg);
    lmc_sb_free(&map);
    lmc_sb_free(&j);
    lmc_sb_free(&path);
    return s;
}

/* ---------- reading the index ---------- */

/* A shard must lie inside the index's folder: an index is untrusted input
 * and must not make us read (or report on) arbitrary files. */
static lmc_status check_file_name(const char *what, const lmc_json *e)
{
    const char *f = e->str;
    if (strlen(f) != e->slen || !*f)
        return lmc_err(LMC_EFORMAT, "%s: weight_map puts tensor '%s' in an empty or NUL-holding file name", what,
                       e->key);
    if (f[0] == '/')
        return lmc_err(LMC_EFORMAT, "%s: weight_map puts tensor '%s' in '%s', an absolute path outside the folder",
                       what, e->key, f);
    for (const char *c = f; c; c = strchr(c, '/') ? strchr(c, '/') + 1 : NULL)
        if (!strncmp(c, "..", 2) && (c[2] == '/' || !c[2]))
            return lmc_err(LMC_EFORMAT, "%s: weight_map puts tensor '%s' in '%s', outside the folder", what,
                           e->key, f);
    return LMC_OK;
}

static lmc_status check_metadata(const lmc_json *j, const char *what)
{
    const lmc_json *m = lmc_json_get(j, "metadata");
    if (!m)
        return LMC_OK;
    if (m->type != LMC_JSON_OBJ)
        return lmc_err(LMC_EFORMAT, "%s: field 'metadata' must be an object", what);
    const lmc_json *t = lmc_json_get(m, "total_size");
    if (t && (t->type != LMC_JSON_NUM || t->num < 0 || t->num != floor(t->num)))
        return lmc_err(LMC_EFORMAT, "%s: field 'metadata.total_size' must be a non-negative integer", what);
    return LMC_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const lmc_windex_entry *)a)->name, ((const lmc_windex_entry *)b)->name);
}

/* files[]: the distinct names, sorted; then each entry's file by search. */
static lmc_status intern_files(const lmc_json *wm, lmc_windex *ix)
{
    const char **names = calloc((size_t)wm->n + 1, sizeof *names);
    ix->files = calloc((size_t)wm->n + 1, sizeof *ix->files);
    if (!names || !ix->files) {
        free(names);
        return lmc_err(LMC_ENOMEM, "%s: out of memory", ix->path);
    }
    int i = 0;
    for (const lmc_json *e = wm->child; e; e = e->next)
        names[i++] = e->str;
    qsort(names, (size_t)wm->n, sizeof *names, cmp_str);
    for (i = 0; i < wm->n; i++)
        if (i == 0 || strcmp(names[i], names[i - 1]))
            if (!(ix->files[ix->nfiles++] = lmc_strdup(names[i])))
                break;
    free(names);
    if (i < wm->n)
        return lmc_err(LMC_ENOMEM, "%s: out of memory", ix->path);
    i = 0;
    for (const lmc_json *e = wm->child; e; e = e->next, i++) {
        char **at = bsearch(&e->str, ix->files, (size_t)ix->nfiles, sizeof *ix->files, cmp_str);
        ix->map[i].file = (int)(at - ix->files);
    }
    return LMC_OK;
}

static lmc_status read_weight_map(const lmc_json *j, lmc_windex *ix)
{
    const char *what = ix->path;
    const lmc_json *wm = lmc_json_get(j, "weight_map");
    if (!wm || wm->type != LMC_JSON_OBJ)
        return lmc_err(LMC_EFORMAT, "%s: field 'weight_map' missing or not an object", what);
    ix->map = calloc((size_t)wm->n + 1, sizeof *ix->map);
    if (!ix->map)
        return lmc_err(LMC_ENOMEM, "%s: out of memory", what);
    for (const lmc_json *e = wm->child; e; e = e->next, ix->n++) {
        if (e->type != LMC_JSON_STR)
            return lmc_err(LMC_EFORMAT, "%s: weight_map['%s'] is not a file name string", what, e->key);
        LMC_TRY(check_file_name(what, e));
        if (!(ix->map[ix->n].name = lmc_strdup(e->key)))
            return lmc_err(LMC_ENOMEM, "%s: out of memory", what);
    }
    LMC_TRY(intern_files(wm, ix));
    qsort(ix->map, (size_t)ix->n, sizeof *ix->map, cmp_entry);
    for (int i = 1; i < ix->n; i++)
        if (!strcmp(ix->map[i].name, ix->map[i - 1].name))
            return lmc_err(LMC_EFORMAT, "%s: tensor '%s' appears twice in weight_map", what, ix->map[i].name);
    return LMC_OK;
}

lmc_status lmc_windex_parse(const char *text, size_t len, const char *what, lmc_windex *ix)
{
    memset(ix, 0, sizeof *ix);
    if (!(ix->path = lmc_strdup(what)))
        return lmc_err(LMC_ENOMEM, "%s: out of memory", what);
    lmc_json *j = NULL;
    lmc_status s = lmc_json_parse(text, len, what, &j);
    if (s == LMC_OK && j->type != LMC_JSON_OBJ)
        s = lmc_err(LMC_EFORMAT, "%s: not a JSON object", what);
    if (s == LMC_OK)
        s = check_metadata(j, what);
    if (s == LMC_OK)
        s = read_weight_map(j, ix);
    lmc_json_free(j);
    if (s != LMC_OK)
        lmc_windex_free(ix);
    return s;
}

void lmc_windex_free(lmc_windex *ix)
{
    for (int i = 0; ix->map && i < ix->n; i++)
        free(ix->map[i].name);
    for (int i = 0; ix->files && i < ix->nfiles; i++)
        free(ix->files[i]);
    free(ix->map);
    free(ix->files);
    free(ix->path);
    memset(ix, 0, sizeof *ix);
}

lmc_windex_entry *lmc_windex_find(const lmc_windex *ix, const char *name)
{
    lmc_windex_entry key = {.name = (char *)name};
    return ix->n ? bsearch(&key, ix->map, (size_t)ix->n, sizeof *ix->map, cmp_entry) : NULL;
}
