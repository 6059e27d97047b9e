/* calfile.c: calibration files. A short run on the fleet's own chips (its
 * lmc train log) measures how much of lmc's best case those chips, that
 * software and that machine reach; the file keeps that factor and its
 * spread, for the chip and model it came from, and later plans use it in
 * place of the published runs' (a narrower range: it was measured here).
 *   {"format": "lmc-calibration-1", "chip": "cpu", "model": "d6",
 *    "params": 1.2e7, "steps": 7, "measured_ms": 310.5, "predicted_ms": 290.1,
 *    "efficiency": {"expected": 0.934, "low": 0.88, "high": 0.99}}
 * and, when the run had data-parallel communication, "comm": {"expected",
 * "measured_ms", "predicted_ms"} (its own factor; efficiency is then the
 * rest of the step). */
#include "lmc/plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT "lmc-calibration-1"

void lmc_plan_calib_fit(const lmc_plan_log_stats *st, double predicted_s, double comm_s, lmc_plan_calib *c)
{
    double p = predicted_s * 1e3, med = st->median_ms, least = st->min_ms > 0 ? st->min_ms : med;
    double pc = comm_s * 1e3, mc = st->comm_ms;
    c->steps = st->kept > 0 ? st->kept : st->used;
    c->measured_ms = med, c->predicted_ms = p;
    c->comm_eff = c->comm_measured_ms = c->comm_predicted_ms = 0;
    if (pc > 0 && mc > 0 && pc < p && mc < least) { /* the rest of the step is compute */
        c->comm_eff = pc / mc, c->comm_measured_ms = mc, c->comm_predicted_ms = pc;
        p -= pc, med -= mc, least -= mc;
    }
    c->eff = (lmc_plan_eff){p / med, p / (2 * med - least), p / least, 0, 1};
}

lmc_status lmc_plan_calib_check_steps(const lmc_plan_log_stats *st, const char *log)
{
    if (st->judged && st->kept < st->used && st->kept < LMC_PLAN_FIT_MIN_STEPS)
        return lmc_err(LMC_ERANGE, "%s: only %d of the %d steps after warm-up got %.0f%% of their cores (the "
                       "steps' median share %.0f%%): too few to fit a calibration (at least %d); rerun it longer "
                       "or on a quieter machine", log, st->kept, st->used, LMC_PLAN_CORES_MIN * 100,
                       st->share_median * 100, LMC_PLAN_FIT_MIN_STEPS);
    if (st->used < LMC_PLAN_FIT_MIN_STEPS)
        return lmc_err(LMC_ERANGE, "%s: %d steps after warm-up: too few to fit a calibration (at least %d)", log,
                       st->used, LMC_PLAN_FIT_MIN_STEPS);
    return LMC_OK;
}

double lmc_plan_calib_predict(const lmc_plan_calib *c, double step_s, double comm_s)
{
    double comm = comm_s > 0 && comm_s < step_s ? comm_s : 0;
    return (step_s - comm) / c->eff.expected + comm / (c->comm_eff > 0 ? c->comm_eff : 1);
}

/* The measured chip's figures, by name in the file. */
static const char *const fig_names[LMC_PLAN_CALIB_FIGS] = {
    "fp32_tflops", "bf16_tflops", "matmul_eff_fp32", "matmul_eff", "gemm_m0", "attn_eff_fp32",
    "attn_eff",    "sfu_gops",    "optim_ns",        "memory_bw_gbs", "kernel_us"};

static void chip_figs(lmc_plan_chip *k, double **f)
{
    double *v[LMC_PLAN_CALIB_FIGS] = {&k->fp32_tflops, &k->bf16_tflops, &k->matmul_eff_fp32, &k->matmul_eff,
                                      &k->gemm_m0,     &k->attn_eff_fp32, &k->attn_eff,      &k->sfu_gops,
                                      &k->optim_ns,    &k->memory_bw_gbs, &k->kernel_us};
    memcpy(f, v, sizeof v);
}

void lmc_plan_calib_keep_chip(lmc_plan_calib *c, const lmc_plan_chip *chip, int threads)
{
    double *f[LMC_PLAN_CALIB_FIGS];
    lmc_plan_chip k = *chip;
    c->threads = chip->measured && threads > 0 ? threads : 0;
    chip_figs(&k, f);
    for (int i = 0; i < LMC_PLAN_CALIB_FIGS; i++)
        c->figs[i] = c->threads ? *f[i] : 0;
}

int lmc_plan_calib_use_chip(const lmc_plan_calib *c, lmc_plan_chip *chip, int threads)
{
    double *f[LMC_PLAN_CALIB_FIGS];
    if (!c->threads || c->threads != threads || !chip->measure)
        return 0;
    chip_figs(chip, f);
    for (int i = 0; i < LMC_PLAN_CALIB_FIGS; i++)
        *f[i] = c->figs[i];
    lmc_plan_chip_measure_memory(chip);
    chip->chips_per_node = 1;
    chip->measured = 1;
    return 1;
}

/* The ranges the reader accepts (parse_obj); save refuses what it would not read back. */
#define PARAMS_MAX 1e16
#define STEPS_MAX 1e9
#define MS_MIN 1e-9
#define MS_MAX 1e12
#define EFF_MIN 1e-4
#define EFF_MAX 1e4
#define FIG_MAX 1e9 /* a chip figure (TFLOP/s, GB/s, ns, us, efficiencies) */
#define THREADS_MAX 65536

static lmc_status save_range(const lmc_plan_calib *c, const char *path, const char *field, double v, double lo,
                             double hi)
{
    if (v >= lo && v <= hi)
        return LMC_OK;
    return lmc_err(LMC_ERANGE, "%s: field '%s' = %g is out of range [%g, %g] (a step of %g ms measured against "
                   "lmc's best case of %g ms): not saved", path, field, v, lo, hi, c->measured_ms, c->predicted_ms);
}

lmc_status lmc_plan_calib_save(const lmc_plan_calib *c, const char *path)
{
    LMC_TRY(save_range(c, path, "params", c->params, 0, PARAMS_MAX));
    LMC_TRY(save_range(c, path, "steps", c->steps, 1, STEPS_MAX));
    LMC_TRY(save_range(c, path, "measured_ms", c->measured_ms, MS_MIN, MS_MAX));
    LMC_TRY(save_range(c, path, "predicted_ms", c->predicted_ms, MS_MIN, MS_MAX));
    LMC_TRY(save_range(c, path, "efficiency.expected", c->eff.expected, EFF_MIN, EFF_MAX));
    LMC_TRY(save_range(c, path, "efficiency.low", c->eff.low, EFF_MIN, EFF_MAX));
    LMC_TRY(save_range(c, path, "efficiency.high", c->eff.high, EFF_MIN, EFF_MAX));
    for (int i = 0; c->threads && i < LMC_PLAN_CALIB_FIGS; i++)
        LMC_TRY(save_range(c, path, fig_names[i], c->figs[i], 0, FIG_MAX));
    if (c->comm_eff > 0) {
        LMC_TRY(save_range(c, path, "comm.expected", c->comm_eff, EFF_MIN, EFF_MAX));
        LMC_TRY(save_range(c, path, "comm.measured_ms", c->comm_measured_ms, MS_MIN, MS_MAX));
        LMC_TRY(save_range(c, path, "comm.predicted_ms", c->comm_predicted_ms, MS_MIN, MS_MAX));
    }
    lmc_sb b;
    lmc_sb_init(&b);
    lmc_sb_printf(&b, "{\"format\": \"%s\", \"chip\": ", FORMAT);
    lmc_sb_json_str(&b, c->chip, strlen(c->chip));
    lmc_sb_puts(&b, ", \"model\": ");
    lmc_sb_json_str(&b, c->model, strlen(c->model));
    lmc_sb_printf(&b, ", \"params\": %.17g, \"steps\": %d, \"measured_ms\": %.17g, \"predicted_ms\": %.17g, "
                  "\"efficiency\": {\"expected\": %.17g, \"low\": %.17g, \"high\": %.17g}", c->params, c->steps,
                  c->measured_ms, c->predicted_ms, c->eff.expected, c->eff.low, c->eff.high);
    if (c->comm_eff > 0)
        lmc_sb_printf(&b, ", \"comm\": {\"expected\": %.17g, \"measured_ms\": %.17g, \"predicted_ms\": %.17g}",
                      c->comm_eff, c->comm_measured_ms, c->comm_predicted_ms);
    if (c->threads) {
        lmc_sb_printf(&b, ", \"threads\": %d, \"chip_figures\": {", c->threads);
        for (int i = 0; i < LMC_PLAN_CALIB_FIGS; i++)
            lmc_sb_printf(&b, "%s\"%s\": %.17g", i ? ", " : "", fig_names[i], c->figs[i]);
        lmc_sb_putc(&b, '}');
    }
    lmc_sb_puts(&b, "}\n");
    lmc_status s = b.oom ? lmc_err(LMC_ENOMEM, "%s: out of memory", path) : lmc_write_file_atomic(path, b.s, b.len);
    lmc_sb_free(&b);
    return s;
}

static lmc_status num(const lmc_json *o, const char *k, const char *what, double lo, double hi, double *out)
{
    const lmc_json *v = lmc_json_get(o, k);
    if (!v || v->type != LMC_JSON_NUM || !(v->num >= lo && v->num <= hi))
        return lmc_err(LMC_EFORMAT, "%s: field '%s' must be a number in [%g, %g]", what, k, lo, hi);
    *out = v->num;
    return LMC_OK;
}

static int printable(const char *s)
{
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e)
            return 0;
    return 1;
}

/* Optional: "threads" and "chip_figures", the measured chip the fit was made against. */
static lmc_status parse_figs(const lmc_json *j, const char *what, lmc_plan_calib *c)
{
    const lmc_json *f = lmc_json_get(j, "chip_figures");
    double t = 0;
    if (!f)
        return LMC_OK;
    char w[300];
    snprintf(w, sizeof w, "%s: chip_figures", what);
    if (f->type != LMC_JSON_OBJ)
        return lmc_err(LMC_EFORMAT, "%s: must be an object of the chip's figures", w);
    LMC_TRY(num(j, "threads", what, 1, THREADS_MAX, &t));
    for (int i = 0; i < LMC_PLAN_CALIB_FIGS; i++)
        LMC_TRY(num(f, fig_names[i], w, 0, FIG_MAX, &c->figs[i]));
    c->threads = (int)t;
    return LMC_OK;
}

static lmc_status parse_obj(const lmc_json *j, const char *what, lmc_plan_calib *c)
{
    const char *fmt = NULL, *chip = NULL, *model = NULL;
    double steps = 0;
    if (j->type != LMC_JSON_OBJ)
        return lmc_err(LMC_EFORMAT, "%s: expected a JSON object", what);
    LMC_TRY(lmc_json_get_str(j, "format", what, &fmt));
    if (!fmt || strcmp(fmt, FORMAT))
        return lmc_err(LMC_EFORMAT, "%s: field 'format' = '%s' (expected \"%s\")", what, fmt ? fmt : "", FORMAT);
    LMC_TRY(lmc_json_get_str(j, "chip", what, &chip));
    LMC_TRY(lmc_json_get_str(j, "model", what, &model));
    if (!chip || !chip[0] || !model)
        return lmc_err(LMC_EFORMAT, "%s: fields 'chip' and 'model' are required", what);
    if (!printable(chip) || !printable(model))
        return lmc_err(LMC_EFORMAT, "%s: fields 'chip' and 'model' must be printable ASCII names", what);
    snprintf(c->chip, sizeof c->chip, "%s", chip);
    snprintf(c->model, sizeof c->model, "%s", model);
    LMC_TRY(num(j, "params", what, 0, PARAMS_MAX, &c->params));
    LMC_TRY(num(j, "steps", what, 1, STEPS_MAX, &steps));
    LMC_TRY(num(j, "measured_ms", what, MS_MIN, MS_MAX, &c->measured_ms));
    LMC_TRY(num(j, "predicted_ms", what, MS_MIN, MS_MAX, &c->predicted_ms));
    c->steps = (int)steps;
    const lmc_json *e = lmc_json_get(j, "efficiency");
    if (!e || e->type != LMC_JSON_OBJ)
        return lmc_err(LMC_EFORMAT, "%s: field 'efficiency' must be an object {expected, low, high}", what);
    char w[300];
    snprintf(w, sizeof w, "%s: efficiency", what);
    LMC_TRY(num(e, "expected", w, EFF_MIN, EFF_MAX, &c->eff.expected));
    LMC_TRY(num(e, "low", w, EFF_MIN, EFF_MAX, &c->eff.low));
    LMC_TRY(num(e, "high", w, EFF_MIN, EFF_MAX, &c->eff.high));
    if (!(c->eff.low <= c->eff.expected && c->eff.expected <= c->eff.high))
        return lmc_err(LMC_EFORMAT, "%s: efficiency needs low <= expected <= high (%g, %g, %g)", what, c->eff.low,
                       c->eff.expected, c->eff.high);
    c->eff.calibrated = 1, c->eff.runs = 0;
    LMC_TRY(parse_figs(j, what, c));
    const lmc_json *m = lmc_json_get(j, "comm"); /* optional: communication fitted apart */
    if (!m)
        return LMC_OK;
    snprintf(w, sizeof w, "%s: comm", what);
    if (m->type != LMC_JSON_OBJ)
        return lmc_err(LMC_EFORMAT, "%s: must be an object {expected, measured_ms, predicted_ms}", w);
    LMC_TRY(num(m, "expected", w, EFF_MIN, EFF_MAX, &c->comm_eff));
    LMC_TRY(num(m, "measured_ms", w, MS_MIN, MS_MAX, &c->comm_measured_ms));
    return num(m, "predicted_ms", w, MS_MIN, MS_MAX, &c->comm_predicted_ms);
}

lmc_status lmc_plan_calib_parse(const char *text, size_t n, const char *what, lmc_plan_calib *c)
{
    memset(c, 0, sizeof *c);
    lmc_json *j = NULL;
    LMC_TRY(lmc_json_parse(text, n, what, &j));
    lmc_status s = parse_obj(j, what, c);
    lmc_json_free(j);
    return s;
}

lmc_status lmc_plan_calib_load(const char *path, lmc_plan_calib *c)
{
    char *text = NULL;
    size_t n = 0;
    LMC_TRY(lmc_read_file(path, &text, &n));
    lmc_status s = lmc_plan_calib_parse(text, n, path, c);
    free(text);
    return s;
}

static int same_chip(const char *a, const char *b)
{
    char ka[128], kb[128];
    lmc_plan_chip_key(a, ka, sizeof ka);
    lmc_plan_chip_key(b, kb, sizeof kb);
    return !strcmp(ka, kb);
}

lmc_status lmc_plan_calib_check_fleet(const lmc_plan_calib *c, const lmc_plan_fleet *f, const char *what)
{
    for (int i = 0; i < f->n; i++)
        if (!same_chip(c->chip, f->pools[i].chip.name))
            return lmc_err(LMC_EINVAL, "%s: field 'chip' = '%s', but the fleet has %s: a calibration holds only for "
                           "the chip it was measured on", what, c->chip, f->pools[i].chip.name);
    return LMC_OK;
}

lmc_status lmc_plan_calib_check_log(const lmc_plan_log_run *run, const lmc_plan_chip *chip, double params,
                                    const char *log, const char *model)
{
    const char *cls = lmc_plan_chip_class(chip->name);
    const char *want = chip->measure ? "cpu" : !strcmp(chip->vendor, "NVIDIA") ? "cuda"
                                                          : !strcmp(cls, "Ascend") ? "npu" : "";
    if (run->device[0] && want[0] && strcmp(run->device, want))
        return lmc_err(LMC_EINVAL, "%s: the run trained on device '%s', not on %s (device '%s'): a calibration holds "
                       "only for the chip the log ran on", log, run->device, chip->name, want);
    if (run->params > 0 && fabs(run->params / params - 1) > 0.005)
        return lmc_err(LMC_EINVAL, "%s: the run's model has %.0f parameters, --model %s has %.0f: give the model "
                       "the log trained", log, run->params, model, params);
    return LMC_OK;
}
