/* cmd_plan.c: `lmc plan`: memory fit, parallel layout and time to train a
 * model on a fleet of chips that may arrive over time; one layout's memory
 * per chip, part by part (--memory); and calibration of the cost model
 * against real step times (--calibrate, --calibrate-log). */
#include "cli.h"
#include "lmc/plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TOP 32

typedef struct {
    const char *model, *tokens, *fleet, *start, *precision, *recompute, *plot, *calib_log, *runs, *launch_log;
    const char *save_calib, *calib_file; /* --save-calibration, --calibration */
    cli_list chips;
    long long global_batch, seq, top, threads, tp, pp, dp, vpp, mb, zero, batch, steps, skip;
    long long ep; /* expert parallelism (a mixture of experts) */
    long long shape[7]; /* --layers --heads --kv-heads --dim --ffn --vocab --max-seq (0: the preset's) */
    double tp_overlap, replan_hours, tolerance, restart_minutes, ckpt_gbs;
    int json, no_flash, no_sp, dropout, calibrate, memory, validate;
} plan_opts;

static lmc_status load_catalog(const plan_opts *o, lmc_plan_catalog *cat)
{
    LMC_TRY(lmc_plan_catalog_load_default(cat));
    for (int i = 0; i < o->chips.n; i++)
        LMC_TRY(lmc_plan_catalog_add_file(cat, o->chips.v[i]));
    return LMC_OK;
}

static lmc_status parse_recompute(const char *s, int *out)
{
    if (!s)
        return LMC_OK;
    for (int rc = 0; rc <= 2; rc++)
        if (!strcmp(s, lmc_plan_recompute_name((lmc_plan_recompute)rc))) {
            *out = rc;
            return LMC_OK;
        }
    return lmc_err(LMC_EINVAL, "--recompute: '%s' is not none, selective or full", s);
}

static lmc_status parse_precision(const char *s, int *bf16)
{
    if (!s || !strcmp(s, "bf16"))
        *bf16 = 1;
    else if (!strcmp(s, "fp32"))
        *bf16 = 0;
    else
        return lmc_err(LMC_EINVAL, "--precision: '%s' is not bf16 or fp32", s);
    return LMC_OK;
}

static lmc_status make_fix(const plan_opts *o, lmc_plan_fix *fx)
{
    lmc_plan_fix_none(fx);
    fx->tp = (int)o->tp, fx->pp = (int)o->pp, fx->dp = (int)o->dp, fx->vpp = (int)o->vpp;
    fx->micro_batch = (int)o->mb, fx->zero = (int)o->zero;
    return parse_recompute(o->recompute, &fx->recompute);
}

static const char *const shape_flags[7] = {"layers", "heads", "kv-heads", "dim", "ffn", "vocab", "max-seq"};

/* --layers ... --max-seq over the loaded model, by lmc train's rules:
 * new heads take as many kv heads (GPT-2, or fewer heads than kv heads)
 * and a new GELU width 4 x dim, unless those are given too. */
static lmc_status apply_shape(const plan_opts *o, lmc_model_config *c)
{
    int *dst[7] = {&c->n_layer, &c->n_head, &c->n_kv_head, &c->dim, &c->ffn_dim, &c->vocab, &c->max_seq};
    for (int i = 0; i < 7; i++)
        if (o->shape[i] > 0)
            *dst[i] = (int)o->shape[i];
    if (o->shape[1] > 0 && o->shape[2] <= 0 && (c->n_kv_head > c->n_head || !strcmp(c->family, "gpt2")))
        c->n_kv_head = c->n_head;
    if (o->shape[3] > 0 && o->shape[4] <= 0 && c->mlp == LMC_MLP_GELU)
        c->ffn_dim = 4 * c->dim;
    return lmc_config_finish(c);
}

/* lmc train's model flags for the model the plan is for: the preset or
 * config.json, a planner shape by its file in the source tree, and the
 * overrides. */
static void model_args(const plan_opts *o, char *buf, size_t n)
{
    int preset = 0;
    for (const char *const *p = lmc_config_preset_names(); *p; p++)
        preset |= !strcmp(*p, o->model);
    size_t len = 0;
    char path[256];
    snprintf(path, sizeof path, "share/models/%s.json", o->model);
    if (!preset && !strchr(o->model, '/') && lmc_plan_embedded(path, &len))
        len = (size_t)snprintf(buf, n, "--model %s", path);
    else
        len = (size_t)snprintf(buf, n, "--model %s", o->model);
    for (int i = 0; i < 7 && len < n; i++)
        if (o->shape[i] > 0)
            len += (size_t)snprintf(buf + len, n - len, " --%s %lld", shape_flags[i], o->shape[i]);
}

static lmc_status make_job(const plan_opts *o, lmc_plan_job *job)
{
    lmc_plan_job_defaults(job);
    LMC_TRY(lmc_plan_model_load(o->model, &job->model));
    LMC_TRY(apply_shape(o, &job->model));
    LMC_TRY(parse_precision(o->precision, &job->bf16));
    job->seq = o->seq > 0 ? (int)o->seq : job->model.max_seq;
    if (job->seq > job->model.max_seq)
        return lmc_err(LMC_EINVAL, "--seq %d is longer than the model's context (%d)", job->seq, job->model.max_seq);
    job->global_batch = o->global_batch > 0 ? o->global_batch : lmc_plan_default_batch(&job->model, job->seq);
    job->flash = !o->no_flash;
    job->seq_parallel = !o->no_sp;
    job->dropout = o->dropout;
    job->tp_overlap = o->tp_overlap;
    job->ep = o->ep > 0 ? (int)o->ep : 1;
    if (job->ep > 1 && (job->model.n_expert <= 0 || job->model.n_expert % job->ep))
        return lmc_err(LMC_EINVAL, "--ep %d must divide the model's experts (%d)", job->ep, job->model.n_expert);
    return LMC_OK;
}

/* Writes a report to stdout and frees it. */
static void print_sb(lmc_sb *out)
{
    fwrite(out->s, 1, out->len, stdout);
    lmc_sb_free(out);
}

/* Chips marked "measure" (cpu) get this machine's figures, and the pool's
 * ranks (chips_per_node of them where given, else all) share this host. */
static lmc_status measure_fleet(lmc_plan_fleet *f, int threads)
{
    for (int i = 0; i < f->n; i++) {
        lmc_plan_pool *p = &f->pools[i];
        if (!p->chip.measure)
            continue;
        if (!p->chip.measured)
            LMC_TRY(lmc_plan_chip_measure_cpu(&p->chip, threads));
        long long ranks = p->chips_per_node > 1 ? p->chips_per_node : p->count;
        LMC_TRY(lmc_plan_chip_measure_host(&p->chip, threads, ranks < 65536 ? (int)ranks : 65536));
        p->chips_per_node = p->chip.chips_per_node;
    }
    return LMC_OK;
}

static lmc_status best_layouts(const lmc_plan_job *job, const lmc_plan_fleet *f, const lmc_plan_fix *fx,
                               lmc_plan_result *best, int top, int *n)
{
    lmc_plan_pool groups[LMC_PLAN_MAX_POOLS];
    long long counts[LMC_PLAN_MAX_POOLS];
    int ng = lmc_plan_fleet_on_hand(f, INFINITY, groups, counts); /* the whole fleet */
    char why[256];
    LMC_TRY(lmc_plan_search(job, groups, counts, ng, fx, best, top, n, why));
    if (*n == 0)
        return lmc_err(LMC_ERANGE, "the model fits nowhere on this fleet: %s", why);
    return LMC_OK;
}

/* The restart cost: --restart-minutes, else lmc launch's measured figure
 * (--launch-log), else the default fitted to the published runs. */
static lmc_status make_reliab(const plan_opts *o, const lmc_plan_runs *rs, lmc_plan_reliab *rl)
{
    memset(rl, 0, sizeof *rl);
    rl->ckpt_gbs = o->ckpt_gbs;
    if (o->restart_minutes > 0) {
        rl->restart_h = o->restart_minutes / 60;
        snprintf(rl->restart_from, sizeof rl->restart_from, "--restart-minutes");
    } else if (o->launch_log) {
        char *text = NULL;
        size_t n = 0;
        int events = 0;
        LMC_TRY(lmc_read_file(o->launch_log, &text, &n));
        lmc_status s = lmc_plan_launch_restart(text, n, o->launch_log, &rl->restart_h, &events);
        free(text);
        LMC_TRY(s);
        snprintf(rl->restart_from, sizeof rl->restart_from, "measured by lmc launch: %d restart%s in %.200s", events,
                 events == 1 ? "" : "s", o->launch_log);
    }
    lmc_plan_reliab_defaults(rs, rl);
    return LMC_OK;
}

/* Expected figures and the range from the published runs, lost time from
 * their failures. */
static lmc_status make_outlook(const plan_opts *o, const lmc_plan_catalog *cat, const lmc_plan_job *job,
                               const lmc_plan_fleet *f, const lmc_plan_fix *fx, double tokens, int start,
                               lmc_plan_outlook *ol)
{
    lmc_plan_runs rs;
    lmc_plan_effs effs;
    lmc_plan_reliab rl;
    lmc_plan_calib cal;
    if (o->calib_file) { /* measured on the fleet's own chips */
        LMC_TRY(lmc_plan_calib_load(o->calib_file, &cal));
        LMC_TRY(lmc_plan_calib_check_fleet(&cal, f, o->calib_file));
    }
    LMC_TRY(lmc_plan_runs_load(cat, o->runs, &rs));
    lmc_status s = make_reliab(o, &rs, &rl);
    if (!s)
        s = lmc_plan_effs_make(cat, &rs, &rl, &effs);
    if (!s)
        s = lmc_plan_outlook_run(job, f, fx, tokens, start, o->replan_hours, &effs, o->calib_file ? &cal.eff : NULL,
                                 &rl, ol);
    lmc_plan_runs_free(&rs);
    return s;
}

static lmc_status run_plan(const plan_opts *o)
{
    if (!o->model || !o->tokens || !o->fleet)
        return lmc_err(LMC_EINVAL, "--model, --tokens and --fleet are required (see lmc plan --help)");
    double tokens = 0;
    LMC_TRY(lmc_parse_count(o->tokens, "--tokens", &tokens));
    if (tokens < 1)
        return lmc_err(LMC_EINVAL, "--tokens: '%s' must be at least 1", o->tokens);
    int start = lmc_plan_today();
    if (o->start)
        LMC_TRY(lmc_plan_parse_date(o->start, "--start", &start));
    lmc_plan_job job;
    lmc_plan_fix fx;
    LMC_TRY(make_job(o, &job));
    LMC_TRY(make_fix(o, &fx));
    lmc_plan_catalog cat;
    lmc_status s = load_catalog(o, &cat);
    lmc_plan_fleet f = {0};
    if (!s)
        s = lmc_plan_fleet_load(&cat, o->fleet, start, &f);
    if (!s)
        s = measure_fleet(&f, (int)o->threads);
    lmc_plan_result *best = calloc(MAX_TOP, sizeof *best);
    lmc_plan_timeline tl = {0};
    int n = 0;
    if (!s && !best)
        s = lmc_err(LMC_ENOMEM, "out of memory");
    if (!s)
        s = best_layouts(&job, &f, &fx, best, (int)o->top, &n);
    if (!s)
        s = lmc_plan_timeline_run(&job, &f, &fx, tokens, start, o->replan_hours, &tl);
    lmc_plan_outlook ol;
    int have_ol = 0;
    if (!s)
        s = make_outlook(o, &cat, &job, &f, &fx, tokens, start, &ol);
    have_ol = !s;
    if (!s && o->plot) {
        char title[256];
        snprintf(title, sizeof title, "%s, %s tokens on %s", o->model, o->tokens, o->fleet);
        s = lmc_plan_svg_write(&tl, title, o->plot);
    }
    if (!s) {
        char args[512];
        model_args(o, args, sizeof args);
        lmc_plan_report r = {&job, o->model, o->fleet, tokens, &f, best, n, &tl, args, &ol};
        lmc_sb out;
        lmc_sb_init(&out);
        (o->json ? lmc_plan_report_json : lmc_plan_report_text)(&r, &out);
        print_sb(&out);
    }
    lmc_plan_timeline_free(&tl);
    if (have_ol)
        lmc_plan_outlook_free(&ol);
    free(best);
    lmc_plan_fleet_free(&f);
    lmc_plan_catalog_free(&cat);
    return s;
}

/* ---------- one layout's memory ---------- */

/* The layout the flags fix, on the first pool's chip: tp, pp, vpp,
 * micro-batch default 1, ZeRO 0, no recomputation, and dp all the fleet's
 * chips over tp x pp. */
static lmc_status memory_layout(const plan_opts *o, const lmc_plan_fleet *f, lmc_plan_layout *l)
{
    long long chips = 0;
    for (int i = 0; i < f->n; i++)
        chips += f->pools[i].count;
    int rc = LMC_RECOMPUTE_NONE;
    LMC_TRY(parse_recompute(o->recompute, &rc));
    *l = (lmc_plan_layout){.tp = o->tp > 0 ? (int)o->tp : 1, .pp = o->pp > 0 ? (int)o->pp : 1,
                           .vpp = o->vpp > 0 ? (int)o->vpp : 1, .micro_batch = o->mb > 0 ? (int)o->mb : 1,
                           .zero = o->zero >= 0 ? (int)o->zero : 0, .recompute = (lmc_plan_recompute)rc};
    long long dp = o->dp > 0 ? o->dp : chips / ((long long)l->tp * l->pp);
    if (dp < 1 || dp * l->tp * l->pp > chips)
        return lmc_err(LMC_EINVAL, "--memory: dp %lld x tp %d x pp %d needs more chips than --fleet %s has (%lld)",
                       dp, l->tp, l->pp, o->fleet, chips);
    l->dp = (int)(dp < 1 << 30 ? dp : 1 << 30);
    return LMC_OK;
}

static lmc_status run_memory(const plan_opts *opt)
{
    if (!opt->model)
        return lmc_err(LMC_EINVAL, "--memory needs --model (and --fleet, default 1xcpu; see lmc plan --help)");
    plan_opts q = *opt;
    q.fleet = opt->fleet ? opt->fleet : "1xcpu";
    lmc_plan_job job;
    LMC_TRY(make_job(&q, &job));
    lmc_plan_catalog cat;
    lmc_plan_fleet f = {0};
    lmc_plan_layout l;
    lmc_status s = load_catalog(&q, &cat);
    if (!s)
        s = lmc_plan_fleet_load(&cat, q.fleet, 0, &f);
    if (!s)
        s = memory_layout(&q, &f, &l);
    if (!s) {
        lmc_plan_chip chip = f.pools[0].chip;
        if (chip.measure)
            lmc_plan_chip_measure_memory(&chip);
        long long per = (long long)l.micro_batch * l.dp, mbs = (job.global_batch + per - 1) / per;
        lmc_plan_mem m;
        lmc_plan_memory(&job, &chip, &l, (int)(mbs < 1 << 30 ? mbs : 1 << 30), &m);
        char args[512];
        model_args(&q, args, sizeof args);
        lmc_plan_memory_report r = {&job, q.model, &chip, &l, &m, args, (int)(mbs < 1 << 30 ? mbs : 1 << 30)};
        lmc_sb out;
        lmc_sb_init(&out);
        (q.json ? lmc_plan_memory_json : lmc_plan_memory_text)(&r, &out);
        print_sb(&out);
    }
    lmc_plan_fleet_free(&f);
    lmc_plan_catalog_free(&cat);
    return s;
}

/* ---------- calibration ---------- */

/* One comparison of the median wall-clock step with the prediction, over
 * the steps that got their cores (lmc_plan_log_stats). When none did (a
 * busy machine stretches every step) the row is inconclusive and not held
 * to --tolerance. */
static void calib_row(const char *model, const lmc_plan_log_stats *st, double pred_s, double tol, int *bad,
                      int *busy)
{
    int b = st->judged && st->kept == 0;
    double err = pred_s * 1e3 / st->median_ms - 1;
    int off = tol > 0 && !b && (err > tol || err < -tol);
    *bad |= off;
    *busy |= b;
    printf("  %-12s %6d %12.1f %12.1f %+8.1f%%", model, b ? st->used : st->kept, st->median_ms, pred_s * 1e3,
           err * 100);
    if (b)
        printf("   inconclusive: busy machine (no step got %.0f%% of its cores; median %.0f%%)",
               LMC_PLAN_CORES_MIN * 100, st->share_median * 100);
    else if (st->judged)
        printf("   (%d of %d steps got their cores; %d left out)", st->kept, st->used, st->used - st->kept);
    printf("%s\n", off ? "  (over tolerance)" : "");
}

static lmc_status run_calibrate(const plan_opts *opt, int *bad, int *busy)
{
    plan_opts q = *opt;
    const plan_opts *o = &q;
    q.seq = q.seq > 0 ? q.seq : 256;
    int bf16 = 0, threads = (int)o->threads > 0 ? (int)o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    LMC_TRY(parse_precision(o->precision ? o->precision : "fp32", &bf16));
    lmc_plan_catalog cat;
    LMC_TRY(load_catalog(o, &cat));
    lmc_plan_chip cpu = *lmc_plan_catalog_find(&cat, "cpu");
    lmc_plan_catalog_free(&cat);
    LMC_TRY(lmc_plan_chip_measure_cpu(&cpu, threads));
    printf("cpu (%d threads, measured): peak %.0f GFLOP/s fp32, %.0f bf16; matmul %.0f%% (half at %.0f rows), "
           "attention %.1f%%; %.2f G exp/s; memory %.1f GB/s; %.1f us per op; AdamW %.2f ns/param\n",
           threads, cpu.fp32_tflops * 1e3, cpu.bf16_tflops * 1e3, cpu.matmul_eff_fp32 * 100, cpu.gemm_m0,
           cpu.attn_eff_fp32 * 100, cpu.sfu_gops, cpu.memory_bw_gbs, cpu.kernel_us, cpu.optim_ns);
    printf("  %-12s %6s %12s %12s %9s\n", "model", "steps", "measured ms", "predicted ms", "error");
    char *models = lmc_strdup(o->model ? o->model : "d6,d12"), *save = NULL;
    lmc_status s = models ? LMC_OK : LMC_ENOMEM;
    for (char *m = models ? strtok_r(models, ",", &save) : NULL; m && !s; m = strtok_r(NULL, ",", &save)) {
        lmc_model_config c;
        lmc_plan_calib_opts co = {.model = m, .precision = o->precision, .batch = (int)o->batch, .seq = (int)o->seq,
                                  .steps = (int)o->steps, .skip = (int)o->skip, .threads = threads};
        lmc_plan_calib_run cr;
        s = lmc_plan_model_load(m, &c);
        if (!s)
            s = lmc_plan_calibrate(&co, &cr);
        if (!s)
            calib_row(m, &cr.st, lmc_plan_predict_single(&c, &cpu, (int)o->batch, (int)o->seq, bf16, NULL),
                      o->tolerance, bad, busy);
    }
    free(models);
    return s;
}

/* Flags not given on the command line from the log's "run" line: the
 * layout (expert parallelism included), micro-batch, sequence, global
 * batch, precision and threads of the run. */
static void flags_from_run(const lmc_plan_log_run *run, plan_opts *q)
{
    if (!run->found)
        return;
    long long *dst[] = {&q->tp, &q->pp, &q->vpp, &q->dp, &q->ep, &q->mb, &q->seq, &q->threads};
    const int src[] = {run->tp, run->pp, run->vpp, run->dp, run->ep, run->batch, run->seq, run->threads};
    for (int i = 0; i < 8; i++)
        if (*dst[i] <= 0 && src[i] > 0)
            *dst[i] = src[i];
    if (q->zero < 0)
        q->zero = run->zero;
    if (!q->recompute && run->recompute[0])
        q->recompute = run->recompute;
    if (!q->precision && run->precision[0])
        q->precision = run->precision;
    if (q->global_batch <= 0 && run->dp > 0 && run->batch > 0 && run->grad_accum > 0)
        q->global_batch = (long long)run->dp * run->batch * run->grad_accum;
}

/* A log is one run: the layout flags it does not give are lmc train's
 * defaults (tp, pp, vpp 1, ZeRO-0, no recomputation), not searched. */
static void run_defaults(plan_opts *q)
{
    q->tp = q->tp > 0 ? q->tp : 1;
    q->pp = q->pp > 0 ? q->pp : 1;
    q->vpp = q->vpp > 0 ? q->vpp : 1;
    q->zero = q->zero >= 0 ? q->zero : 0;
    q->recompute = q->recompute ? q->recompute : "none";
}

/* Measured against predicted: |error| over --tolerance counts as bad. */
static void compare_row(const char *what, double measured, double predicted, const char *unit, double tol, int *bad)
{
    double err = predicted / measured - 1;
    int off = tol > 0 && (err > tol || err < -tol);
    *bad |= off;
    printf("  %-26s %12.1f %12.1f %+8.1f%% %s%s\n", what, measured, predicted, err * 100, unit,
           off ? "  (over tolerance)" : "");
}

/* Per-rank memory: the log's rss_mb lists the data-parallel ranks of
 * pipeline stage 0, tensor-parallel rank 0 (world rank 0's group), so the
 * prediction is that stage's (lmc train's allocations on the cpu chip). */
static void calib_memory(const lmc_plan_job *job, const lmc_plan_fleet *f, const lmc_plan_result *r,
                         const lmc_plan_log_stats *st, double tol, int *bad)
{
    lmc_plan_mem m = r->mem;
    int balance = 0, acc = lmc_plan_result_accum(job, r, &balance);
    if (st->rss_ranks <= 0)
        return;
    if (lmc_plan_chip_is_cpu(&f->pools[0].chip) &&
        lmc_plan_trainer_stage_memory(job, &r->layout, acc, 0, &m) != LMC_OK)
        return;
    char what[64];
    snprintf(what, sizeof what, "peak MB, stage %d rank", m.stage);
    compare_row(what, st->rss_max_mb, m.total / 1e6, "(the most of the log's ranks)", tol, bad);
    if (st->rss_ranks != r->layout.dp)
        printf("  note: the log lists %d data-parallel ranks but the layout has dp %d: give the run's --dp, --tp "
               "and --pp\n", st->rss_ranks, r->layout.dp);
}

/* The measured bubble of each stage beside the schedule's (p-1)/(v m+p-1). */
static void calib_bubble(const lmc_plan_result *r, int acc, const lmc_plan_log_stats *st)
{
    const lmc_plan_layout *l = &r->layout;
    if (st->stages <= 0 && l->pp <= 1)
        return;
    printf("  pipeline bubble per stage: measured");
    for (int k = 0; k < st->stages; k++)
        printf(" %.3f", st->bubble[k]);
    printf("%s; the schedule's (p-1)/(v m+p-1) = %.3f (p %d, v %d, m %d); the plan's bubble %.1f%% of its step\n",
           st->stages ? "" : " (none in the log)", lmc_plan_bubble_fraction(l->pp, l->vpp, acc), l->pp,
           l->pp > 1 ? l->vpp : 1, acc, r->step_s > 0 ? r->t_bubble / r->step_s * 100 : 0);
    if (st->stages && st->stages != l->pp)
        printf("  note: the log has %d pipeline stages but the layout pp %d: give the run's --pp\n", st->stages,
               l->pp);
}

/* The log's exposed data-parallel communication (comm_ms) beside the
 * layout's, for a layout of several replicas. */
static void comm_row(const lmc_plan_log_stats *st, const lmc_plan_result *best, double pred_s)
{
    if (st->comm_ms < 0 || best->layout.dp <= 1)
        return;
    printf("  %-12s %6s %12.1f %12.1f %s\n", "  of it comm", "", st->comm_ms, pred_s * 1e3,
           "(exposed data-parallel sync: the log's comm_ms)");
}

/* --save-calibration: the factors this log measures (refused for a log of
 * another chip or model, or with too few steps that got their cores). */
static lmc_status save_calibration(const plan_opts *o, const lmc_plan_job *job, const lmc_plan_fleet *f,
                                   const lmc_plan_log_stats *st, const lmc_plan_result *best)
{
    lmc_plan_calib cal;
    double params = lmc_config_num_params(&job->model);
    LMC_TRY(lmc_plan_calib_check_log(&st->run, &f->pools[0].chip, params, o->calib_log, o->model));
    LMC_TRY(lmc_plan_calib_check_steps(st, o->calib_log));
    memset(&cal, 0, sizeof cal);
    snprintf(cal.chip, sizeof cal.chip, "%s", f->pools[0].chip.name);
    snprintf(cal.model, sizeof cal.model, "%s", o->model);
    cal.params = params;
    lmc_plan_calib_fit(st, best->step_s, best->t_dp, &cal);
    lmc_plan_calib_keep_chip(&cal, &f->pools[0].chip, (int)o->threads);
    LMC_TRY(lmc_plan_calib_save(&cal, o->save_calib));
    printf("calibration %s: %s reaches %.3f of lmc's best case (%.3f-%.3f over the log's %d steps)\n", o->save_calib,
           cal.chip, cal.eff.expected, cal.eff.low, cal.eff.high, cal.steps);
    if (cal.comm_eff > 0)
        printf("  compute and communication fitted apart: the data-parallel sync reaches %.3f of the best case "
               "(%.1f ms measured, %.1f ms predicted)\n", cal.comm_eff, cal.comm_measured_ms, cal.comm_predicted_ms);
    else
        printf("  only compute fitted: the log has no data-parallel communication to fit (%s); plans keep lmc's "
               "best case for it\n", st->comm_ms < 0 ? "no comm_ms" : best->t_dp <= 0 ? "one replica" : "none measured");
    return LMC_OK;
}

/* The log's step time against the best case, or against the calibrated
 * prediction with --calibration; --save-calibration writes the factors. */
static lmc_status calibrated_row(const plan_opts *o, const lmc_plan_job *job, const lmc_plan_fleet *f,
                                 const lmc_plan_log_stats *st, const lmc_plan_result *best, int *bad, int *busy)
{
    lmc_plan_calib cal;
    double pred = best->step_s, comm = best->t_dp;
    if (o->calib_file) {
        LMC_TRY(lmc_plan_calib_load(o->calib_file, &cal));
        LMC_TRY(lmc_plan_calib_check_fleet(&cal, f, o->calib_file));
        pred = lmc_plan_calib_predict(&cal, best->step_s, best->t_dp);
        comm = best->t_dp / (cal.comm_eff > 0 ? cal.comm_eff : 1);
        printf("  (calibrated by %s: compute %.3f of the best case, communication %s, measured on %s; best case "
               "%.1f ms, of it %.1f ms exposed communication)\n", o->calib_file, cal.eff.expected,
               cal.comm_eff > 0 ? "fitted" : "not fitted (at the best case)", cal.model, best->step_s * 1e3,
               best->t_dp * 1e3);
    }
    calib_row(o->model, st, pred, o->tolerance, bad, busy);
    comm_row(st, best, comm);
    return o->save_calib ? save_calibration(o, job, f, st, best) : LMC_OK;
}

/* --calibration with a measured chip: the figures the fit was made
 * against, when kept for the run's threads, instead of measuring again. */
static lmc_status chip_from_calibration(const plan_opts *q, lmc_plan_fleet *f)
{
    lmc_plan_calib cal;
    LMC_TRY(lmc_plan_calib_load(q->calib_file, &cal));
    for (int i = 0; i < f->n; i++)
        if (lmc_plan_calib_use_chip(&cal, &f->pools[i].chip, (int)q->threads))
            printf("  (the %s chip's figures from %s: measured with its fit, %d threads)\n", f->pools[i].chip.name,
                   q->calib_file, cal.threads);
    return LMC_OK;
}

static lmc_status run_calibrate_log(const plan_opts *o, int *bad, int *busy)
{
    if (!o->model)
        return lmc_err(LMC_EINVAL, "--calibrate-log needs --model (and --fleet, --global-batch, --seq of the run)");
    lmc_plan_log_stats st;
    LMC_TRY(lmc_plan_log_read(o->calib_log, (int)o->skip, &st));
    plan_opts q = *o;
    q.fleet = o->fleet ? o->fleet : "1xcpu";
    flags_from_run(&st.run, &q);
    run_defaults(&q);
    lmc_plan_job job;
    lmc_plan_fix fx;
    LMC_TRY(make_job(&q, &job));
    if (st.run.found && st.run.tp > 1 && !o->no_sp)
        job.seq_parallel = st.run.sp;
    LMC_TRY(make_fix(&q, &fx));
    lmc_plan_catalog cat;
    lmc_plan_fleet f = {0};
    lmc_plan_result best;
    int n = 0;
    lmc_status s = load_catalog(&q, &cat);
    if (!s)
        s = lmc_plan_fleet_load(&cat, q.fleet, 0, &f);
    if (!s && q.calib_file)
        s = chip_from_calibration(&q, &f);
    if (!s)
        s = measure_fleet(&f, (int)q.threads);
    if (!s)
        s = best_layouts(&job, &f, &fx, &best, 1, &n);
    if (!s) {
        const lmc_plan_layout *l = &best.layout;
        char args[512];
        int balance = 0, acc = lmc_plan_result_accum(&job, &best, &balance);
        model_args(&q, args, sizeof args);
        lmc_sb cmd;
        lmc_sb_init(&cmd);
        lmc_plan_command(&job, args, l, acc, &cmd);
        printf("log %s: %d steps (%d after warm-up), median %.1f ms%s\n", o->calib_log, st.steps, st.used,
               st.median_ms, st.run.found ? "; layout from its \"run\" line where no flag gives it" : "");
        if (st.judged)
            printf("  %d of the %d steps got %.0f%% of their cores (the log's cpu_ms; median share %.0f%%): %s\n",
                   st.kept, st.used, LMC_PLAN_CORES_MIN * 100, st.share_median * 100,
                   st.kept ? "the figures are theirs" : "none did, the figures are all the steps'");
        printf("layout on %s: dp %d tp %d pp %d vpp %d, micro-batch %d x %d, ZeRO-%d, recompute %s\n  %s\n",
               q.fleet, l->dp, l->tp, l->pp, l->pp > 1 ? l->vpp : 1, l->micro_batch, acc, l->zero,
               lmc_plan_recompute_name(l->recompute), cmd.s ? cmd.s : "");
        lmc_sb_free(&cmd);
        printf("  %-12s %6s %12s %12s %9s\n", "model", "steps", "measured ms", "predicted ms", "error");
        s = calibrated_row(&q, &job, &f, &st, &best, bad, busy);
        if (st.mfu > 0)
            printf("logged MFU %.1f%%, predicted %.1f%%\n", st.mfu * 100, best.mfu * 100);
        calib_memory(&job, &f, &best, &st, o->tolerance, bad);
        calib_bubble(&best, acc, &st);
        if (!s && st.dp_mb > 0 && st.dp_mb != acc)
            printf("  note: the log's ranks ran %d micro-batches a step, the layout %d: give the run's "
                   "--global-batch\n", st.dp_mb, acc);
    }
    lmc_plan_fleet_free(&f);
    lmc_plan_catalog_free(&cat);
    return s;
}

/* ---------- published runs ---------- */

/* Each run of share/runs.json (or --runs FILE) at its own layout beside
 * the published figure; exits 1 when a published figure lies outside the
 * range. */
static lmc_status run_validate(const plan_opts *o, int *bad)
{
    lmc_plan_catalog cat;
    LMC_TRY(load_catalog(o, &cat));
    lmc_plan_runs rs;
    lmc_plan_validation v;
    lmc_sb out;
    lmc_sb_init(&out);
    lmc_plan_reliab rl;
    lmc_status s = lmc_plan_runs_load(&cat, o->runs, &rs);
    if (!s)
        s = make_reliab(o, &rs, &rl);
    if (!s)
        s = lmc_plan_validate(&cat, &rs, &rl, &out, &v);
    if (!s) {
        print_sb(&out);
        *bad = v.inside < v.predicted;
    }
    lmc_sb_free(&out);
    lmc_plan_runs_free(&rs);
    lmc_plan_catalog_free(&cat);
    return s;
}

int lmc_cmd_plan(int argc, char **argv)
{
    plan_opts o = {.top = 5, .replan_hours = 0.5, .zero = -1, .batch = 4, .steps = 6, .skip = 1};
    const cli_opt opts[] = {
        {"model", CLI_STR, &o.model, "preset, planner shape (llama3-405b, gpt3-175b, pangu-ultra-135b) or config.json"},
        {"tokens", CLI_STR, &o.tokens, "tokens to train on: 10B, 300M, 15.6T"},
        {"fleet", CLI_STR, &o.fleet, "FLEET.json, or NxCHIP[,NxCHIP...] (8xH100)"},
        {"layers", CLI_INT, &o.shape[0], "override the model's layers (as lmc train does)", 1, 1024},
        {"heads", CLI_INT, &o.shape[1], "override the attention heads", 1, 1024},
        {"kv-heads", CLI_INT, &o.shape[2], "override the key/value heads", 1, 1024},
        {"dim", CLI_INT, &o.shape[3], "override the model width", 1, 65536},
        {"ffn", CLI_INT, &o.shape[4], "override the MLP hidden size", 1, 1 << 20},
        {"vocab", CLI_INT, &o.shape[5], "override the vocabulary size", 2, 1 << 24},
        {"max-seq", CLI_INT, &o.shape[6], "override the maximum sequence length", 1, 1 << 20},
        {"global-batch", CLI_INT, &o.global_batch, "sequences per optimizer step (default: by model size)", 1, 1LL << 40},
        {"seq", CLI_INT, &o.seq, "tokens per sequence (default: the model's context)", 1, 1 << 24},
        {"chips", CLI_LIST, &o.chips, "chip catalogue to add or override (repeatable)"},
        {"start", CLI_STR, &o.start, "start date YYYY-MM-DD (default: today)"},
        {"precision", CLI_STR, &o.precision, "bf16 (mixed, default) | fp32"},
        {"tp", CLI_INT, &o.tp, "fix the tensor-parallel degree", 1, 4096},
        {"pp", CLI_INT, &o.pp, "fix the pipeline-parallel degree", 1, 4096},
        {"dp", CLI_INT, &o.dp, "fix the data-parallel degree", 1, 1 << 30},
        {"ep", CLI_INT, &o.ep, "expert parallelism: data-parallel ranks sharing the experts (lmc train --ep)", 1, 4096},
        {"vpp", CLI_INT, &o.vpp, "fix the virtual stages per pipeline rank", 1, 1024},
        {"micro-batch", CLI_INT, &o.mb, "fix the micro-batch (sequences)", 1, 1 << 20},
        {"zero", CLI_INT, &o.zero, "fix the ZeRO stage (0-3)", 0, 3},
        {"recompute", CLI_STR, &o.recompute, "fix recomputation: none | selective | full"},
        {"no-flash", CLI_BOOL, &o.no_flash, "attention keeps its (T x T) scores (no fused kernel)"},
        {"no-sp", CLI_BOOL, &o.no_sp, "tensor parallelism without sequence parallelism (lmc train without --sp)"},
        {"dropout", CLI_BOOL, &o.dropout, "dropout masks are kept for backward"},
        {"tp-overlap", CLI_FLOAT, &o.tp_overlap, "fraction of tensor-parallel traffic hidden by compute", 0, 1},
        {"replan-hours", CLI_FLOAT, &o.replan_hours, "hours lost at each re-plan (default 0.5)", 0, 1e4},
        {"top", CLI_INT, &o.top, "layouts to show (default 5)", 1, MAX_TOP},
        {"json", CLI_BOOL, &o.json, "print one JSON object"},
        {"plot", CLI_STR, &o.plot, "write the timeline as an SVG plot"},
        {"threads", CLI_INT, &o.threads, "CPU threads for the cpu chip and calibration", 1, 4096},
        {"memory", CLI_BOOL, &o.memory, "one layout's memory per chip, part by part: the flags above fix it (default "
                                         "tp, pp, micro-batch 1, ZeRO-0, no recompute, dp all chips; --fleet 1xcpu)"},
        {"calibrate", CLI_BOOL, &o.calibrate, "train --model (default d6,d12) briefly here; compare with prediction"},
        {"calibrate-log", CLI_STR, &o.calib_log, "compare a training log (JSONL with \"ms\"; \"rss_mb\", \"pp_bubble\" "
                                                 "and a \"run\" line if there) with the prediction for its layout "
                                                 "(--tp --pp --vpp --dp --zero --micro-batch --global-batch --seq)"},
        {"validate", CLI_BOOL, &o.validate, "each published run (share/runs.json) at its own layout beside the "
                                             "published figure; exit 1 unless they lie in the range"},
        {"runs", CLI_STR, &o.runs, "published runs file (default: share/runs.json, built in)"},
        {"save-calibration", CLI_STR, &o.save_calib, "with --calibrate-log: write the efficiency the log measured "
                                                     "(for its chip) to FILE"},
        {"calibration", CLI_STR, &o.calib_file, "a --save-calibration FILE: expected figures and range from it"},
        {"launch-log", CLI_STR, &o.launch_log, "lmc launch --log FILE: its measured restart cost for the lost time"},
        {"restart-minutes", CLI_FLOAT, &o.restart_minutes, "restart cost per interruption (detect, relaunch, "
                                                           "reload; default: fitted to the published runs)", 0, 1e5},
        {"checkpoint-gbs", CLI_FLOAT, &o.ckpt_gbs, "checkpoint write bandwidth of the job's storage, GB/s (default "
                                                   "2000, Llama 3's)", 1e-3, 1e9},
        {"batch", CLI_INT, &o.batch, "calibration: sequences per step (default 4)", 1, 1 << 20},
        {"steps", CLI_INT, &o.steps, "calibration: training steps (default 6)", 2, 1 << 20},
        {"skip", CLI_INT, &o.skip, "calibration: warm-up steps to ignore (default 1)", 0, 1 << 20},
        {"tolerance", CLI_FLOAT, &o.tolerance, "calibration: exit 1 when |error| exceeds this (e.g. 0.15)", 0, 100},
        {NULL},
    };
    cli_spec spec = {.cmd = "plan",
                     .synopsis = "--model M --tokens N --fleet FLEET.json|NxCHIP [flags] | --memory --model M "
                                 "[layout flags] | --calibrate | --calibrate-log FILE",
                     .about = "Finds the parallel layouts (data/tensor/pipeline degrees, micro-batch, ZeRO stage, "
                              "recomputation) that fit in memory, their step time, tokens/s and MFU, and when "
                              "training ends as chips arrive. Chips: share/chips.json (built in) and --chips FILE. "
                              "The cost model is in docs/planner.md.",
                     .opts = opts};
    lmc_status s = cli_parse(&spec, argc, argv, NULL);
    int bad = 0, busy = 0;
    if (!s && o.validate)
        s = run_validate(&o, &bad);
    else if (!s && o.memory)
        s = run_memory(&o);
    else if (!s && o.calibrate)
        s = run_calibrate(&o, &bad, &busy);
    else if (!s && o.calib_log)
        s = run_calibrate_log(&o, &bad, &busy);
    else if (!s)
        s = run_plan(&o);
    cli_list_free(&o.chips);
    if (!s && bad)
        fprintf(stderr, "lmc plan: error: %s\n", o.validate ? "a published run lies outside lmc's range"
                                                              : "the prediction is off by more than --tolerance");
    else if (!s && busy && o.tolerance > 0)
        fprintf(stderr, "lmc plan: calibration inconclusive: the machine was busy; rerun on a quiet machine\n");
    return s || spec.help ? cli_exit(&spec, s) : bad;
}
