/* checkpoint.c: saving, finding, loading and rotating checkpoints. */
#define _GNU_SOURCE
#include "train/checkpoint.h"
#include "lmc/safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lmc_ckpt_state_json(const lmc_ckpt_state *st, lmc_sb *sb)
{
    lmc_sb_printf(sb, "{\n  \"format\": \"lmc-checkpoint-1\",\n  \"step\": %d,\n  \"consumed_sequences\": %llu,\n"
                      "  \"seed\": \"%llu\",\n  \"shuffle\": %s,\n  \"seq\": %d,\n  \"world_size\": %d,\n"
                      "  \"adam_t\": %d,\n  \"loss\": ",
                  st->step, (unsigned long long)st->consumed, (unsigned long long)st->seed,
                  st->shuffle ? "true" : "false", st->seq, st->world, st->adam_t);
    lmc_sb_json_num(sb, st->loss);
    for (int i = 0; i < st->moe_bias_n; i++) {
        lmc_sb_puts(sb, i ? ", " : ",\n  \"moe_bias\": [");
        lmc_sb_json_num(sb, st->moe_bias[i]);
    }
    lmc_sb_puts(sb, st->moe_bias_n ? "]\n}\n" : "\n}\n");
}

/* What describes AdamW's m and v for the elements [begin, end) of a
 * total-float model (the whole state, or one rank's shard with the range
 * in the metadata): the two tensors and the metadata, num keeping its
 * numbers' text. */
typedef struct {
    lmc_st_entry e[2];
    char num[3][32];
    const char *meta[9];
} optim_desc;

static void optim_desc_make(optim_desc *d, size_t total, size_t begin, size_t end, const float *m, const float *v)
{
    int64_t n = (int64_t)(end - begin);
    d->e[0] = (lmc_st_entry){.name = "adamw.m", .dtype = "F32", .ndim = 1, .shape = {n}, .data = m};
    d->e[1] = (lmc_st_entry){.name = "adamw.v", .dtype = "F32", .ndim = 1, .shape = {n}, .data = v};
    snprintf(d->num[0], sizeof d->num[0], "%zu", begin);
    snprintf(d->num[1], sizeof d->num[1], "%zu", end);
    snprintf(d->num[2], sizeof d->num[2], "%zu", total);
    const char *meta[] = {"format", "lmc-optimizer", "begin", d->num[0], "end", d->num[1], "total", d->num[2], NULL};
    memcpy(d->meta, meta, sizeof meta);
}

static lmc_status write_optim(const char *path, size_t total, size_t begin, size_t end, const float *m,
                              const float *v)
{
    optim_desc d;
    optim_desc_make(&d, total, begin, end, m, v);
    return lmc_st_write(path, d.e, 2, d.meta);
}

lmc_status lmc_ckpt_optim_open(lmc_ckpt_optim_out *o, const char *dir, size_t total)
{
    char file[4200];
    snprintf(file, sizeof file, "%s/optim.safetensors", dir);
    optim_desc d;
    optim_desc_make(&d, total, 0, total, NULL, NULL);
    lmc_sb h;
    lmc_sb_init(&h);
    size_t data_len;
    o->total = total;
    lmc_status s = lmc_st_header(d.e, 2, d.meta, &h, &data_len);
    if (s == LMC_OK && (s = lmc_afile_open(&o->af, file)) == LMC_OK) {
        s = lmc_afile_write(&o->af, h.s, h.len);
        if (s != LMC_OK)
            lmc_afile_abort(&o->af);
    }
    o->data_at = h.len;
    lmc_sb_free(&h);
    return s;
}

lmc_status lmc_ckpt_optim_put(lmc_ckpt_optim_out *o, size_t begin, const float *m, const float *v, size_t n)
{
    if (begin > o->total || n > o->total - begin)
        return lmc_err(LMC_EINVAL, "%s: elements [%zu, %zu) are outside the %zu-float state", o->af.path, begin,
                       begin + n, o->total);
    LMC_TRY(lmc_afile_write_at(&o->af, o->data_at + begin * sizeof(float), m, n * sizeof(float)));
    return lmc_afile_write_at(&o->af, o->data_at + (o->total + begin) * sizeof(float), v, n * sizeof(float));
}

static int step_of(const char *name)
{
    int step;
    char tail;
    return sscanf(name, "step_%d%c", &step, &tail) == 1 ? step : -1;
}

/* Removes all but the newest `keep` step folders, and leftover partials. */
static void rotate(const char *out_dir, int keep)
{
    DIR *d = opendir(out_dir);
    if (!d)
        return;
    int steps[4096], n = 0;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        if (!strncmp(e->d_name, ".partial_step_", 14)) {
            snprintf(path, sizeof path, "%s/%s", out_dir, e->d_name);
            lmc_rm_rf(path);
        } else if (step_of(e->d_name) >= 0 && n < 4096) {
            steps[n++] = step_of(e->d_name);
        }
    }
    closedir(d);
    if (keep <= 0)
        return;
    for (int i = 0; i < n; i++) {
        int newer = 0;
        for (int j = 0; j < n; j++)
            newer += steps[j] > steps[i];
        if (newer >= keep) {
            snprintf(path, sizeof path, "%s/step_%08d", out_dir, steps[i]);
            lmc_rm_rf(path);
        }
    }
}

lmc_status lmc_ckpt_start(const char *out_dir, int step, char *tmp, size_t n)
{
    snprintf(tmp, n, "%s/.partial_step_%08d", out_dir, step);
    LMC_TRY(lmc_mkdir_p(out_dir));
    LMC_TRY(lmc_rm_rf(tmp));
    return lmc_mkdir_p(tmp);
}

lmc_status lmc_ckpt_commit(const char *out_dir, const char *tmp, const lmc_ckpt_state *st, int keep, char *saved,
                           size_t saved_len)
{
    char final[4096], file[4200], name[64];
    snprintf(name, sizeof name, "step_%08d", st->step);
    snprintf(final, sizeof final, "%s/%s", out_dir, name);
    lmc_sb sb;
    lmc_sb_init(&sb);
    lmc_ckpt_state_json(st, &sb);
    snprintf(file, sizeof file, "%s/state.json", tmp);
    lmc_status s = lmc_write_file_atomic(file, sb.s, sb.len);
    lmc_sb_free(&sb);
    if (s)
        return s;
    LMC_TRY(lmc_fsync_dir(tmp));
    LMC_TRY(lmc_rm_rf(final)); /* re-saving the same step replaces it */
    if (rename(tmp, final) != 0)
        return lmc_err(LMC_EIO, "%s: cannot rename the finished checkpoint into place", final);
    LMC_TRY(lmc_fsync_dir(out_dir));
    snprintf(file, sizeof file, "%s/latest", out_dir);
    char line[80];
    int len = snprintf(line, sizeof line, "%s\n", name);
    LMC_TRY(lmc_write_file_atomic(file, line, (size_t)len));
    rotate(out_dir, keep);
    if (saved)
        snprintf(saved, saved_len, "%s", final);
    return LMC_OK;
}

lmc_status lmc_ckpt_save(const char *out_dir, const lmc_ckpt_state *st, const lmc_model_config *cfg,
                         const lmc_layout *layout, const float *params, const float *m, const float *v, int keep,
                         char *saved, size_t saved_len)
{
    char tmp[4096], file[4200];
    LMC_TRY(lmc_ckpt_start(out_dir, st->step, tmp, sizeof tmp));
    snprintf(file, sizeof file, "%s/model.safetensors", tmp);
    LMC_TRY(lmc_weights_save_moe(file, cfg, layout, params, st->moe_bias)); /* and state.json's, for older lmc */
    snprintf(file, sizeof file, "%s/optim.safetensors", tmp);
    LMC_TRY(write_optim(file, layout->total, 0, layout->total, m, v));
    return lmc_ckpt_commit(out_dir, tmp, st, keep, saved, saved_len);
}

static void optim_shard_name(const char *dir, int k, int n, char *buf, size_t len)
{
    snprintf(buf, len, "%s/optim-%05d-of-%05d.safetensors", dir, k + 1, n);
}

lmc_status lmc_ckpt_write_optim_shard(const char *tmp, int k, int n, size_t total, size_t begin, size_t end,
                                      const float *m, const float *v)
{
    char file[4200];
    optim_shard_name(tmp, k, n, file, sizeof file);
    return write_optim(file, total, begin, end, m, v);
}

lmc_status lmc_ckpt_resolve(const char *dir, char *path, size_t n)
{
    char file[4200];
    snprintf(file, sizeof file, "%s/state.json", dir);
    if (lmc_path_exists(file)) {
        snprintf(path, n, "%s", dir);
        return LMC_OK;
    }
    snprintf(file, sizeof file, "%s/latest", dir);
    char *text;
    size_t len;
    if (lmc_read_file(file, &text, &len) != LMC_OK)
        return lmc_err(LMC_EIO, "--resume %s: no checkpoint there (no state.json and no 'latest' file)", dir);
    while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
        text[--len] = 0;
    int ok = step_of(text) >= 0;
    if (ok)
        snprintf(path, n, "%s/%s", dir, text);
    lmc_status s = ok ? LMC_OK : lmc_err(LMC_EFORMAT, "%s: does not name a step folder ('%s')", file, text);
    free(text);
    return s;
}

static lmc_status read_state(const char *path, lmc_ckpt_state *st)
{
    char file[4200], *text;
    size_t len;
    snprintf(file, sizeof file, "%s/state.json", path);
    LMC_TRY(lmc_read_file(file, &text, &len));
    lmc_status s = lmc_ckpt_state_parse(text, len, file, st);
    free(text);
    return s;
}

/* An integer field in [lo, hi]: a value beyond an int would be narrowed
 * into another step, sequence length or rank count. */
static lmc_status int_field(const lmc_json *j, const char *key, const char *file, int required, long long lo,
                            long long hi, long long *out)
{
    if (!lmc_json_get(j, key))
        return required ? lmc_err(LMC_EFORMAT, "%s: field '%s' is missing", file, key) : LMC_OK;
    LMC_TRY(lmc_json_get_int(j, key, file, out));
    if (*out < lo || *out > hi)
        return lmc_err(LMC_EFORMAT, "%s: field '%s' = %lld is out of range [%lld, %lld]", file, key, *out, lo, hi);
    return LMC_OK;
}

/* The seed is a string of decimal digits (a JSON number, a double, would
 * round it) that fits 64 bits. */
static lmc_status seed_field(const lmc_json *j, const char *file, uint64_t *out)
{
    const lmc_json *v = lmc_json_get(j, "seed");
    if (!v || v->type != LMC_JSON_STR)
        return lmc_err(LMC_EFORMAT, "%s: field 'seed' is missing or not a string", file);
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(v->str, &end, 10);
    if (v->slen == 0 || strspn(v->str, "0123456789") != v->slen || errno)
        return lmc_err(LMC_EFORMAT, "%s: field 'seed' = '%.40s' is not a decimal number below 2^64", file, v->str);
    *out = x;
    return LMC_OK;
}

lmc_status lmc_ckpt_state_parse(const char *text, size_t len, const char *file, lmc_ckpt_state *st)
{
    lmc_json *j;
    LMC_TRY(lmc_json_parse(text, len, file, &j));
    long long step = 0, consumed = 0, seq = 0, world = 1, adam_t = 0;
    uint64_t seed = 0;
    int shuffle = 1;
    double loss = 0;
    lmc_status s = int_field(j, "step", file, 1, 0, INT_MAX, &step);
    if (!s) s = int_field(j, "consumed_sequences", file, 1, 0, LLONG_MAX, &consumed);
    if (!s) s = int_field(j, "seq", file, 1, 1, INT_MAX, &seq);
    if (!s) s = int_field(j, "world_size", file, 0, 1, INT_MAX, &world);
    if (!s) s = int_field(j, "adam_t", file, 1, 0, INT_MAX, &adam_t);
    if (!s) s = seed_field(j, file, &seed);
    if (!s) s = lmc_json_get_bool(j, "shuffle", file, &shuffle);
    if (!s) s = lmc_json_get_num(j, "loss", file, &loss);
    if (!s && !(fabs(loss) <= FLT_MAX)) /* it would become inf, saved as null */
        s = lmc_err(LMC_EFORMAT, "%s: field 'loss' = %g is beyond a float's range", file, loss);
    if (!s)
        *st = (lmc_ckpt_state){.step = (int)step, .consumed = (uint64_t)consumed, .seed = seed, .shuffle = shuffle,
                               .seq = (int)seq, .world = (int)world, .adam_t = (int)adam_t, .loss = (float)loss};
    lmc_json_free(j);
    return s;
}

/* state.json's moe_bias: n numbers (a checkpoint written before the
 * balancing existed has none: the biases start at 0). */
static lmc_status parse_bias(const lmc_json *j, const char *file, float *bias, int n)
{
    const lmc_json *a = lmc_json_get(j, "moe_bias");
    if (!a)
        return LMC_OK;
    if (a->type != LMC_JSON_ARR || a->n != n)
        return lmc_err(LMC_EFORMAT, "%s: field 'moe_bias' must be an array of %d numbers (layers x experts), "
                       "not %s of %d", file, n, a->type == LMC_JSON_ARR ? "an array" : "a non-array", a->n);
    int i = 0;
    for (const lmc_json *v = a->child; v; v = v->next, i++) {
        if (v->type != LMC_JSON_NUM || !(v->num >= -1e30 && v->num <= 1e30))
            return lmc_err(LMC_EFORMAT, "%s: moe_bias[%d] is not a finite number", file, i);
        bias[i] = (float)v->num;
    }
    return LMC_OK;
}

lmc_status lmc_ckpt_moe_bias_parse(const char *text, size_t len, const char *file, float *bias, int n)
{
    lmc_json *j;
    LMC_TRY(lmc_json_parse(text, len, file, &j));
    lmc_status s = parse_bias(j, file, bias, n);
    lmc_json_free(j);
    return s;
}

/* The runs of map m that one optimizer file holds, copied into m's
 * destinations in mdst, vdst; range gets the elements the file holds, and
 * *covered grows by how many of the runs' it holds. A file without a range
 * in its metadata holds the whole state. */
static lmc_status read_optim_file(const char *file, size_t total, const lmc_part_map *m, float *mdst, float *vdst,
                                  size_t range[2], size_t *covered)
{
    lmc_st_file f;
    LMC_TRY(lmc_st_open(&f, file));
    const char *mb = lmc_st_meta(&f, "begin"), *me = lmc_st_meta(&f, "end"), *mt = lmc_st_meta(&f, "total");
    size_t fb = mb ? strtoull(mb, NULL, 10) : 0, fe = me ? strtoull(me, NULL, 10) : total;
    size_t ft = mt ? strtoull(mt, NULL, 10) : total;
    const char *names[2] = {"adamw.m", "adamw.v"};
    float *dst[2] = {mdst, vdst};
    lmc_status s = LMC_OK;
    if (ft != total || fb > fe || fe > total)
        s = lmc_err(LMC_EFORMAT, "%s: holds elements [%zu, %zu) of a %zu-float model, not of this %zu-float model",
                    file, fb, fe, ft, total);
    for (int i = 0; i < 2 && s == LMC_OK; i++) {
        const lmc_st_tensor *t = lmc_st_find(&f, names[i]);
        if (!t || t->ndim != 1 || (size_t)t->shape[0] != fe - fb)
            s = lmc_err(LMC_EFORMAT, "%s: tensor '%s' missing or not %zu floats (model mismatch)", file, names[i],
                        fe - fb);
        else if (strcmp(t->dtype, "F32"))
            s = lmc_err(LMC_EFORMAT, "%s: tensor '%s' is %s, expected F32", file, names[i], t->dtype);
        for (size_t k = lmc_part_map_find(m, fb); s == LMC_OK && k < m->n && m->r[k].whole < fe; k++) {
            const lmc_part_run *r = &m->r[k];
            size_t lo = r->whole > fb ? r->whole : fb, hi = r->whole + r->n < fe ? r->whole + r->n : fe;
            /* the header check guarantees the byte range lies inside the file */
            memcpy(dst[i] + r->at + (lo - r->whole), f.data + t->begin + (lo - fb) * sizeof(float),
                   (hi - lo) * sizeof(float));
            *covered += i == 0 ? hi - lo : 0;
        }
        if (t)
            lmc_st_release(&f, t);
    }
    range[0] = fb, range[1] = fe;
    lmc_st_close(&f);
    return s;
}

/* N of the optim-00001-of-N.safetensors in a checkpoint folder (0: none). */
static int optim_files(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0, k, total;
    char tail;
    while (d && (e = readdir(d)))
        if (sscanf(e->d_name, "optim-%5d-of-%5d.safetensor%c", &k, &total, &tail) == 3 && k == 1 && total > 0)
            n = total;
    if (d)
        closedir(d);
    return n;
}

/* The files of one checkpoint hold disjoint ranges; with an overlap, the
 * sum of what they cover would hide elements that none of them holds. */
static lmc_status check_disjoint(const char *file, size_t (*seen)[2], int k)
{
    for (int i = 0; i < k; i++)
        if (seen[k][0] < seen[i][1] && seen[i][0] < seen[k][1])
            return lmc_err(LMC_EFORMAT, "%s: holds elements [%zu, %zu), which overlap [%zu, %zu) of another "
                           "optimizer file", file, seen[k][0], seen[k][1], seen[i][0], seen[i][1]);
    return LMC_OK;
}

/* Reads optim.safetensors, or the n files that n ranks wrote; covered
 * gets how many elements of the runs they hold. */
static lmc_status read_optim_files(const char *path, size_t total, const lmc_part_map *m, float *mdst, float *vdst,
                                   size_t *covered)
{
    char file[4200];
    snprintf(file, sizeof file, "%s/optim.safetensors", path);
    int one = lmc_path_exists(file), n = one ? 1 : optim_files(path);
    size_t(*seen)[2] = calloc((size_t)n + 1, sizeof *seen);
    lmc_status s = seen ? LMC_OK : lmc_err(LMC_ENOMEM, "%s: out of memory", path);
    for (int k = 0; k < n && s == LMC_OK; k++) {
        if (!one)
            optim_shard_name(path, k, n, file, sizeof file);
        s = read_optim_file(file, total, m, mdst, vdst, seen[k], covered);
        if (s == LMC_OK)
            s = check_disjoint(file, seen, k);
    }
    free(seen);
    return s;
}

lmc_status lmc_ckpt_load_optim_part(const char *path, size_t total, const lmc_part_map *m, float *mdst, float *vdst)
{
    size_t covered = 0, need = lmc_part_map_count(m);
    if (m->n && m->r[m->n - 1].whole + m->r[m->n - 1].n > total)
        return lmc_err(LMC_EINVAL, "%s: this rank's part ends at element %zu, outside the %zu-float state", path,
                       m->r[m->n - 1].whole + m->r[m->n - 1].n, total);
    memset(mdst, 0, m->floats * sizeof(float));
    memset(vdst, 0, m->floats * sizeof(float));
    LMC_TRY(read_optim_files(path, total, m, mdst, vdst, &covered));
    if (covered != need)
        return lmc_err(LMC_EFORMAT, "%s: the optimizer files cover %zu of the %zu elements this rank needs "
                       "(missing optim.safetensors or optim-*-of-*.safetensors)", path, covered, need);
    return LMC_OK;
}

lmc_status lmc_ckpt_load_optim(const char *path, size_t total, size_t begin, size_t end, float *m, float *v)
{
    if (begin > end || end > total)
        return lmc_err(LMC_EINVAL, "%s: range [%zu, %zu) is outside the %zu-float state", path, begin, end, total);
    lmc_part_run run;
    lmc_part_map map = lmc_part_map_range(&run, begin, end);
    return lmc_ckpt_load_optim_part(path, total, &map, m, v);
}

lmc_status lmc_ckpt_load(const char *path, lmc_ckpt_state *st, lmc_model_config *cfg, lmc_layout *layout,
                         float **params)
{
    LMC_TRY(read_state(path, st));
    return lmc_weights_load(path, cfg, layout, params); /* model.safetensors, or the sharded layout's index */
}

lmc_status lmc_ckpt_load_range(const char *path, lmc_ckpt_state *st, lmc_model_config *cfg, lmc_layout *layout,
                               size_t begin, size_t end, float *dst)
{
    LMC_TRY(read_state(path, st));
    return lmc_weights_load_range(path, cfg, layout, begin, end, dst);
}

lmc_status lmc_ckpt_load_part(const char *path, lmc_ckpt_state *st, lmc_model_config *cfg, lmc_layout *layout,
                              const lmc_part_map *m, float *dst)
{
    LMC_TRY(read_state(path, st));
    return lmc_weights_load_part(path, cfg, layout, m, dst);
}
