/* checkpoint.c: saving, finding, loading and rotating checkpoints. */
#define _GNU_SOURCE
#include "train/checkpoint.h"
#include "lmc/safetensors.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void state_json(const lmc_ckpt_state *st, lmc_sb *sb)
{
    lmc_sb_printf(sb, "{\n  \"format\": \"lmc-checkpoint-1\",\n  \"step\": %d,\n  \"consumed_sequences\": %llu,\n"
                      "  \"seed\": \"%llu\",\n  \"shuffle\": %s,\n  \"seq\": %d,\n  \"world_size\": %d,\n"
                      "  \"adam_t\": %d,\n  \"loss\": ",
                  st->step, (unsigned long long)st->consumed, (unsigned long long)st->seed,
                  st->shuffle ? "true" : "false", st->seq, st->world, st->adam_t);
    lmc_sb_json_num(sb, st->loss);
    lmc_sb_puts(sb, "\n}\n");
}

static lmc_status write_optim(const char *path, const lmc_layout *l, const float *m, const float *v)
{
    lmc_st_entry e[2] = {
        {.name = "adamw.m", .dtype = "F32", .ndim = 1, .shape = {(int64_t)l->total}, .data = m},
        {.name = "adamw.v", .dtype = "F32", .ndim = 1, .shape = {(int64_t)l->total}, .data = v},
    };
    const char *meta[] = {"format", "lmc-optimizer", NULL};
    return lmc_st_write(path, e, 2, meta);
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

lmc_status lmc_ckpt_save(const char *out_dir, const lmc_ckpt_state *st, const lmc_model_config *cfg,
                         const lmc_layout *layout, const float *params, const float *m, const float *v, int keep,
                         char *saved, size_t saved_len)
{
    char tmp[4096], final[4096], file[4200], name[64];
    snprintf(name, sizeof name, "step_%08d", st->step);
    snprintf(tmp, sizeof tmp, "%s/.partial_%s", out_dir, name);
    snprintf(final, sizeof final, "%s/%s", out_dir, name);
    LMC_TRY(lmc_mkdir_p(out_dir));
    LMC_TRY(lmc_rm_rf(tmp));
    LMC_TRY(lmc_mkdir_p(tmp));
    snprintf(file, sizeof file, "%s/model.safetensors", tmp);
    LMC_TRY(lmc_weights_save(file, cfg, layout, params));
    snprintf(file, sizeof file, "%s/optim.safetensors", tmp);
    LMC_TRY(write_optim(file, layout, m, v));
    lmc_sb sb;
    lmc_sb_init(&sb);
    state_json(st, &sb);
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
    lmc_json *j;
    lmc_status s = lmc_json_parse(text, len, file, &j);
    free(text);
    if (s)
        return s;
    long long step = -1, consumed = -1, seq = 0, world = 1, adam_t = -1;
    const char *seed = NULL;
    int shuffle = 1;
    double loss = 0;
    s = lmc_json_get_int(j, "step", file, &step);
    if (!s) s = lmc_json_get_int(j, "consumed_sequences", file, &consumed);
    if (!s) s = lmc_json_get_int(j, "seq", file, &seq);
    if (!s) s = lmc_json_get_int(j, "world_size", file, &world);
    if (!s) s = lmc_json_get_int(j, "adam_t", file, &adam_t);
    if (!s) s = lmc_json_get_str(j, "seed", file, &seed);
    if (!s) s = lmc_json_get_bool(j, "shuffle", file, &shuffle);
    if (!s) s = lmc_json_get_num(j, "loss", file, &loss);
    if (!s && (step < 0 || consumed < 0 || adam_t < 0 || seq < 1 || !seed))
        s = lmc_err(LMC_EFORMAT, "%s: missing or invalid step, consumed_sequences, adam_t, seq or seed", file);
    if (!s) {
        st->step = (int)step;
        st->consumed = (uint64_t)consumed;
        st->seq = (int)seq;
        st->world = (int)world;
        st->adam_t = (int)adam_t;
        st->seed = strtoull(seed, NULL, 10);
        st->shuffle = shuffle;
        st->loss = (float)loss;
    }
    lmc_json_free(j);
    return s;
}

lmc_status lmc_ckpt_load_optim(const char *path, size_t total, size_t begin, size_t end, float *m, float *v)
{
    char file[4200];
    snprintf(file, sizeof file, "%s/optim.safetensors", path);
    if (begin > end || end > total)
        return lmc_err(LMC_EINVAL, "%s: range [%zu, %zu) is outside the %zu-float state", file, begin, end, total);
    lmc_st_file f;
    LMC_TRY(lmc_st_open(&f, file));
    const char *names[2] = {"adamw.m", "adamw.v"};
    float *dst[2] = {m, v};
    lmc_status s = LMC_OK;
    for (int i = 0; i < 2 && s == LMC_OK; i++) {
        const lmc_st_tensor *t = lmc_st_find(&f, names[i]);
        if (!t || t->ndim != 1 || (size_t)t->shape[0] != total)
            s = lmc_err(LMC_EFORMAT, "%s: tensor '%s' missing or not %zu floats (model mismatch)", file, names[i],
                        total);
        else if (strcmp(t->dtype, "F32"))
            s = lmc_err(LMC_EFORMAT, "%s: tensor '%s' is %s, expected F32", file, names[i], t->dtype);
        else /* the header check guarantees the byte range lies inside the file */
            memcpy(dst[i], f.data + t->begin + begin * sizeof(float), (end - begin) * sizeof(float));
    }
    lmc_st_close(&f);
    return s;
}

lmc_status lmc_ckpt_load(const char *path, lmc_ckpt_state *st, lmc_model_config *cfg, lmc_layout *layout,
                         float **params)
{
    char file[4200];
    LMC_TRY(read_state(path, st));
    snprintf(file, sizeof file, "%s/model.safetensors", path);
    return lmc_weights_load(file, cfg, layout, params);
}
