/* report.c: what `lmc plan` prints: a text report for people and one JSON
 * object with the same content for programs. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void count(lmc_sb *o, double v)
{
    const char *suf[] = {"", "k", "M", "B", "T", "P"};
    int i = 0;
    while (fabs(v) >= 1000 && i < 5) {
        v /= 1000;
        i++;
    }
    lmc_sb_printf(o, v >= 100 || v == floor(v) ? "%.0f%s" : "%.3g%s", v, suf[i]);
}

static void duration(lmc_sb *o, double hours)
{
    if (hours < 1)
        lmc_sb_printf(o, "%.0f min", hours * 60);
    else if (hours < 72)
        lmc_sb_printf(o, "%.1f h", hours);
    else
        lmc_sb_printf(o, "%.0f h (%.1f days)", hours, hours / 24);
}

static double part_share(const lmc_plan_result *r)
{
    double parts[] = {r->t_compute, r->t_memory, r->t_tp, r->t_pp, r->t_zero3, r->t_bubble, r->t_dp, r->t_opt,
                      r->t_idle};
    double m = 0;
    for (int i = 0; i < 9; i++)
        m = fmax(m, parts[i]);
    return r->step_s > 0 ? m / r->step_s : 0;
}

static void layout_row(lmc_sb *o, int i, const lmc_plan_result *r)
{
    const lmc_plan_layout *l = &r->layout;
    long long acc = r->pool_mb[0];
    for (int p = 1; p < r->n_pools; p++)
        acc = r->pool_mb[p] > acc ? r->pool_mb[p] : acc;
    lmc_sb_printf(o, "  %-2d %7lld %6d %3d %3d %3d %5d %4lld %4d %6s %9.3fs ", i + 1, r->chips_used, l->dp, l->tp,
                  l->pp, l->vpp, l->micro_batch, acc, l->zero, lmc_plan_recompute_name(l->recompute), r->step_s);
    size_t at = o->len;
    count(o, r->tokens_per_s);
    lmc_sb_printf(o, "%*s %5.1f%% %6.1f/%-6.1f %s %.0f%%\n", (int)(9 - (o->len - at)), "", r->mfu * 100,
                  r->mem.total / 1e9, r->mem.usable / 1e9, r->bottleneck, part_share(r) * 100);
}

/* ---------- the command that runs a layout ---------- */

void lmc_plan_command(const lmc_plan_job *job, const char *model_args, const lmc_plan_layout *l, int grad_accum,
                      lmc_sb *o)
{
    long long np = (long long)l->dp * l->tp * l->pp;
    if (np > 1)
        lmc_sb_printf(o, "mpirun -np %lld ", np);
    lmc_sb_printf(o, "lmc train %s --seq %d --batch %d --grad-accum %d", model_args, job->seq, l->micro_batch,
                  grad_accum);
    if (l->tp > 1)
        lmc_sb_printf(o, " --tp %d%s", l->tp, job->seq_parallel ? " --sp" : "");
    if (l->pp > 1)
        lmc_sb_printf(o, " --pp %d", l->pp);
    if (l->pp > 1 && l->vpp > 1)
        lmc_sb_printf(o, " --vpp %d", l->vpp);
    if (l->zero > 0)
        lmc_sb_printf(o, " --zero %d", l->zero);
    if (job->ep > 1)
        lmc_sb_printf(o, " --ep %d", job->ep);
    if (l->recompute != LMC_RECOMPUTE_NONE)
        lmc_sb_printf(o, " --recompute %s", lmc_plan_recompute_name(l->recompute));
    if (job->bf16) /* lmc train's default is fp32 */
        lmc_sb_puts(o, " --precision bf16");
}

int lmc_plan_result_accum(const lmc_plan_job *job, const lmc_plan_result *r, int *balance)
{
    int kinds = 0, acc = 0;
    for (int p = 0; p < r->n_pools; p++)
        if (r->pool_mb[p] > 0) {
            kinds++;
            acc = r->pool_mb[p] > acc ? r->pool_mb[p] : acc;
        }
    *balance = kinds > 1;
    if (kinds > 1 && r->layout.dp > 0) { /* --balance auto spreads dp x grad-accum micro-batches by speed */
        long long M = (job->global_batch + r->layout.micro_batch - 1) / r->layout.micro_batch;
        acc = (int)((M + r->layout.dp - 1) / r->layout.dp);
    }
    return acc;
}

/* A result's command; model_args NULL: --model NAME. */
static void result_command(lmc_sb *o, const lmc_plan_job *job, const char *name, const char *model_args,
                           const lmc_plan_result *r)
{
    char buf[300];
    int balance = 0, acc = lmc_plan_result_accum(job, r, &balance);
    if (!model_args) {
        snprintf(buf, sizeof buf, "--model %s", name);
        model_args = buf;
    }
    lmc_plan_command(job, model_args, &r->layout, acc, o);
    if (balance)
        lmc_sb_puts(o, " --balance auto");
}

/* Ranks sharing this host (host.c): what each gets of it. */
static void host_text(lmc_sb *o, const lmc_plan_chip *c)
{
    if (c->host_ranks <= 1 || c->rank_bw_gbs <= 0)
        return;
    lmc_sb_printf(o, "\n           %d ranks on this host: memory %.3g GB/s each, shared-memory sums %.3g GB/s, "
                  "%.0f%% of the compute each (GEMMs at %.0f%% of their speed alone, the slowest rank's pace "
                  "%.0f%% of the average), a collective waits %.0f us for the partner%s", c->host_ranks,
                  c->rank_bw_gbs * c->host_bw_share, c->intra_node_gbs, c->host_share * 100,
                  c->host_contention / (c->host_pace > 0 ? c->host_pace : 1) * 100, c->host_pace * 100, c->host_wait_us,
                  c->comm_on_cores ? ", gradient sums on the computing cores (not hidden)" : "");
}

static void fleet_text(lmc_sb *o, const lmc_plan_fleet *f)
{
    lmc_sb_puts(o, "fleet    ");
    for (int i = 0; i < f->n; i++) {
        const lmc_plan_pool *p = &f->pools[i];
        lmc_sb_printf(o, "%s%lldx %s (%d per node", i ? "\n         " : "", p->count, p->chip.name, p->chips_per_node);
        if (p->chip.measured)
            lmc_sb_printf(o, ", measured peak %.3g TFLOP/s fp32, %.3g bf16", p->chip.fp32_tflops, p->chip.bf16_tflops);
        if (p->arrives != LMC_PLAN_NOW) {
            char d[16];
            lmc_plan_format_date(p->arrives, d);
            lmc_sb_printf(o, ", arrives %s", d);
        }
        lmc_sb_puts(o, strcmp(p->name, p->chip.name) ? ", " : ")");
        if (strcmp(p->name, p->chip.name))
            lmc_sb_printf(o, "%s)", p->name);
        host_text(o, &p->chip);
    }
    lmc_sb_putc(o, '\n');
}

/* What a reader should change when the best layout wastes chips. */
static void notes(lmc_sb *o, const lmc_plan_job *j, const lmc_plan_result *b)
{
    long long idle = 0, least = -1;
    for (int p = 0; p < b->n_pools; p++) {
        if (b->pool_dp[p] > 0 && b->pool_mb[p] == 0)
            idle += (long long)b->pool_dp[p] * b->layout.tp * b->layout.pp;
        if (b->pool_mb[p] > 0 && (least < 0 || b->pool_mb[p] < least))
            least = b->pool_mb[p];
    }
    if (idle > 0)
        lmc_sb_printf(o, "note: %lld chips get no micro-batch: the global batch (%lld sequences) is too small for "
                         "this fleet; a larger --global-batch uses them\n", idle, j->global_batch);
    else if (b->layout.pp > 1 && least >= 0 && least < b->layout.pp)
        lmc_sb_printf(o, "note: %lld micro-batches per replica for %d pipeline stages: the bubble is large; a "
                         "larger --global-batch fills it\n", least, b->layout.pp);
}

/* A mixture of experts: total and active parameters (what memory and
 * FLOPs count), and the expert parallelism asked for. */
static void moe_text(lmc_sb *o, const lmc_plan_job *j)
{
    const lmc_model_config *c = &j->model;
    if (c->n_expert <= 0)
        return;
    lmc_sb_printf(o, "experts  %.4gM parameters in all (memory), %.4gM active per token (FLOPs): %d experts, top %d; "
                     "%d per rank (--ep %d)\n", lmc_config_num_params(c) / 1e6, lmc_plan_active_params(c) / 1e6,
                  c->n_expert, c->top_k, c->n_expert / (j->ep > 1 ? j->ep : 1), j->ep > 1 ? j->ep : 1);
}

/* All-to-all bytes one rank sends per step: each micro-batch's. */
static double a2a_step_bytes(const lmc_plan_job *j, const lmc_plan_result *r)
{
    int balance = 0;
    return lmc_plan_a2a_bytes(j, r->layout.micro_batch, r->layout.recompute) * lmc_plan_result_accum(j, r, &balance);
}

static void a2a_text(lmc_sb *o, const lmc_plan_job *j, const lmc_plan_result *r)
{
    double b = a2a_step_bytes(j, r);
    if (b > 0)
        lmc_sb_printf(o, "all-to-all: %.4g GB sent per rank per step over --ep %d expert groups\n", b / 1e9, j->ep);
}

static void timeline_text(lmc_sb *o, const lmc_plan_timeline *tl)
{
    lmc_sb_printf(o, "\ntimeline (a re-plan at each delivery costs %.1f h):\n", tl->replan_hours);
    lmc_sb_puts(o, "  date          chips  layout dp x tp x pp    tokens/s   tokens done\n");
    for (int i = 0; i < tl->n; i++) {
        const lmc_plan_segment *s = &tl->seg[i];
        char d[16], lay[48] = "idle (nothing fits)";
        lmc_plan_format_date(s->day, d);
        if (s->tokens_per_s > 0)
            snprintf(lay, sizeof lay, "%d x %d x %d", s->plan.layout.dp, s->plan.layout.tp, s->plan.layout.pp);
        lmc_sb_printf(o, "  %s %9lld  %-20s ", d, s->chips, lay);
        size_t at = o->len;
        count(o, s->tokens_per_s);
        lmc_sb_printf(o, "%*s ", (int)(11 - (o->len - at)), "");
        count(o, s->tokens_at_start);
        lmc_sb_putc(o, '\n');
    }
}

/* "118 days (range 82-160)" or "30.5 h (range 20.1-41.0)" */
static void span(lmc_sb *o, double mid, double lo, double hi)
{
    if (mid >= 72)
        lmc_sb_printf(o, "%.0f days (range %.0f-%.0f)", mid / 24, lo / 24, hi / 24);
    else
        lmc_sb_printf(o, "%.1f h (range %.1f-%.1f)", mid, lo, hi);
}

static void outlook_text(lmc_sb *o, const lmc_plan_report *r)
{
    const lmc_plan_outlook *x = r->outlook;
    const lmc_plan_result *b = r->n_best ? &r->best[0] : NULL;
    const lmc_plan_eff *e = &x->eff;
    char d1[16], d2[16], d3[16];
    lmc_plan_format_date(x->expected.finish_day, d1);
    lmc_plan_format_date(x->fast.finish_day, d2);
    lmc_plan_format_date(x->slow.finish_day, d3);
    lmc_sb_puts(o, "expected: ");
    span(o, x->expected.hours, x->fast.hours, x->slow.hours);
    lmc_sb_printf(o, ", finishing %s (%s to %s)\n", d1, d2, d3);
    if (b)
        lmc_sb_printf(o, "  MFU %.1f%% (range %.1f-%.1f%%; best case %.1f%%), step %.3g s (range %.3g-%.3g s)\n",
                      b->mfu * e->expected * 100, b->mfu * e->low * 100, b->mfu * e->high * 100, b->mfu * 100,
                      b->step_s / e->expected, b->step_s / e->high, b->step_s / e->low);
    if (e->calibrated)
        lmc_sb_printf(o, "  efficiency: %.2f of lmc's best case (%.2f-%.2f), measured on these chips (--calibration)\n",
                      e->expected, e->low, e->high);
    else
        lmc_sb_printf(o, "  efficiency: published runs on these chips reached %.2f of lmc's best case (%.2f-%.2f; %s; "
                      "see lmc plan --validate)\n", e->expected, e->low, e->high,
                      e->runs >= 3 ? "their chip class" : e->runs ? "their median, all runs' spread" : "all runs");
    lmc_sb_printf(o, "  lost time: %.3g interruptions per chip-hour (%s): one every %.2g h on %.0f chips\n"
                  "    restart %.1f min (%s)\n    checkpoint %.2g s every %.1f min (Young/Daly: sqrt(2 x checkpoint x "
                  "time between interruptions)); effective-time fraction %.3f\n", x->rel.rate, x->rel.rate_from,
                  x->mtbf_h, x->chips, x->rel.restart_h * 60, x->rel.restart_from, x->ckpt_h * 3600,
                  x->interval_h * 60, x->effective);
    if (x->slipped)
        lmc_sb_puts(o, "  the range's far end has every delivery as late as its slip_days\n");
}

void lmc_plan_report_text(const lmc_plan_report *r, lmc_sb *o)
{
    const lmc_plan_job *j = r->job;
    char desc[256], d0[16], d1[16];
    lmc_config_describe(&j->model, desc, sizeof desc);
    double fpt = lmc_config_train_flops_per_token(&j->model, j->seq);
    lmc_sb_printf(o, "model    %s: %s\nbudget   ", r->model_name, desc);
    count(o, r->tokens);
    lmc_sb_printf(o, " tokens; sequences of %d; global batch %lld sequences (", j->seq, j->global_batch);
    count(o, (double)j->global_batch * j->seq);
    lmc_sb_printf(o, " tokens/step); %s\nflops    %.4g GFLOP per token (6N + 12*L*h*T), %.3g in all\n",
                  j->bf16 ? "bf16 mixed precision" : "fp32", fpt / 1e9, fpt * r->tokens);
    moe_text(o, j);
    fleet_text(o, r->fleet);
    lmc_sb_puts(o, "\nbest layouts on the whole fleet (mb: micro-batch, acc: micro-batches per replica):\n"
                   "  #    chips     dp  tp  pp vpp    mb  acc zero recomp       step  tokens/s    MFU  "
                   "mem GB/chip  bottleneck\n");
    for (int i = 0; i < r->n_best; i++)
        layout_row(o, i, &r->best[i]);
    if (r->n_best > 0 && r->best[0].n_pools > 1)
        for (int p = 0; p < r->best[0].n_pools; p++)
            lmc_sb_printf(o, "     %s: %d replicas x %d micro-batches, busy %.3fs of the step\n",
                          r->best[0].pool_chip[p], r->best[0].pool_dp[p], r->best[0].pool_mb[p],
                          r->best[0].pool_busy[p]);
    if (r->n_best > 0) {
        lmc_sb_puts(o, "run #1:  ");
        result_command(o, j, r->model_name, r->model_args, &r->best[0]);
        lmc_sb_putc(o, '\n');
        notes(o, j, &r->best[0]);
        a2a_text(o, j, &r->best[0]);
    }
    const lmc_plan_timeline *tl = r->tl;
    if (tl && tl->n > 1)
        timeline_text(o, tl);
    if (tl) {
        lmc_plan_format_date(tl->start_day, d0);
        lmc_plan_format_date(tl->finish_day, d1);
        lmc_sb_puts(o, r->outlook ? "\ntime to train, best case (a well-engineered stack, no failures): "
                                  : "\ntime to train: ");
        duration(o, tl->hours);
        lmc_sb_printf(o, ", from %s to %s\n", d0, d1);
    }
    if (r->outlook)
        outlook_text(o, r);
}

/* ---------- JSON ---------- */

static void key(lmc_sb *o, const char *k, int *first)
{
    lmc_sb_puts(o, *first ? "" : ", ");
    *first = 0;
    lmc_sb_json_str(o, k, strlen(k));
    lmc_sb_puts(o, ": ");
}

static void knum(lmc_sb *o, const char *k, double v, int *first)
{
    key(o, k, first);
    lmc_sb_json_num(o, isfinite(v) ? v : 0);
}

static void kstr(lmc_sb *o, const char *k, const char *v, int *first)
{
    key(o, k, first);
    lmc_sb_json_str(o, v, strlen(v));
}

/* {"name": value, ...} */
static void num_object(lmc_sb *o, const char *const *names, const double *v, int n)
{
    int g = 1;
    lmc_sb_putc(o, '{');
    for (int i = 0; i < n; i++)
        knum(o, names[i], v[i], &g);
    lmc_sb_putc(o, '}');
}

/* The parts of a per-chip memory figure, in bytes. */
static void mem_parts_json(lmc_sb *o, const lmc_plan_mem *m)
{
    static const char *const names[] = {"weights", "grads",   "optim",    "activations", "logits",
                                        "buffers", "startup", "overhead", "total"};
    double v[] = {m->weights, m->grads, m->optim, m->activations, m->logits, m->buffers, m->startup, m->overhead,
                  m->total};
    num_object(o, names, v, 9);
}

static void result_json(lmc_sb *o, const lmc_plan_report *rep, const lmc_plan_result *r)
{
    const lmc_plan_layout *l = &r->layout;
    double tokens = rep->tokens;
    int f = 1, balance = 0;
    lmc_sb_putc(o, '{');
    knum(o, "chips", (double)r->chips_used, &f);
    knum(o, "dp", l->dp, &f);
    knum(o, "tp", l->tp, &f);
    knum(o, "pp", l->pp, &f);
    knum(o, "vpp", l->vpp, &f);
    knum(o, "micro_batch", l->micro_batch, &f);
    knum(o, "microbatches_per_replica", r->pool_mb[0], &f);
    knum(o, "grad_accum", lmc_plan_result_accum(rep->job, r, &balance), &f);
    knum(o, "zero", l->zero, &f);
    kstr(o, "recompute", lmc_plan_recompute_name(l->recompute), &f);
    knum(o, "step_s", r->step_s, &f);
    knum(o, "tokens_per_s", r->tokens_per_s, &f);
    knum(o, "mfu", r->mfu, &f);
    knum(o, "hours", tokens / r->tokens_per_s / 3600, &f);
    knum(o, "mem_gb", r->mem.total / 1e9, &f);
    knum(o, "mem_usable_gb", r->mem.usable / 1e9, &f);
    key(o, "mem_bytes", &f);
    mem_parts_json(o, &r->mem);
    kstr(o, "bottleneck", r->bottleneck ? r->bottleneck : "", &f);
    knum(o, "pp_bubble_fraction", lmc_plan_bubble_fraction(l->pp, l->vpp, r->pool_mb[0]), &f);
    knum(o, "ep", rep->job->ep > 1 ? rep->job->ep : 1, &f);
    knum(o, "a2a_bytes_per_step", a2a_step_bytes(rep->job, r), &f);
    key(o, "command", &f);
    lmc_sb cmd;
    lmc_sb_init(&cmd);
    result_command(&cmd, rep->job, rep->model_name, rep->model_args, r);
    lmc_sb_json_str(o, cmd.s ? cmd.s : "", cmd.len);
    lmc_sb_free(&cmd);
    key(o, "step_parts_s", &f);
    static const char *const steps[] = {"compute",       "memory_bound", "tensor_parallel",
                                        "pipeline_sends", "pipeline_bubble", "data_parallel",
                                        "optimizer",     "zero3",        "imbalance"};
    double t[] = {r->t_compute, r->t_memory, r->t_tp, r->t_pp, r->t_bubble, r->t_dp, r->t_opt, r->t_zero3, r->t_idle};
    num_object(o, steps, t, 9);
    key(o, "pools", &f);
    lmc_sb_putc(o, '[');
    for (int p = 0; p < r->n_pools; p++) {
        int h = 1;
        lmc_sb_puts(o, p ? ", {" : "{");
        kstr(o, "chip", r->pool_chip[p], &h);
        knum(o, "replicas", r->pool_dp[p], &h);
        knum(o, "micro_batches", r->pool_mb[p], &h);
        knum(o, "busy_s", r->pool_busy[p], &h);
        lmc_sb_putc(o, '}');
    }
    lmc_sb_puts(o, "]}");
}

static void fleet_json(lmc_sb *o, const lmc_plan_fleet *fl)
{
    lmc_sb_puts(o, "[");
    for (int i = 0; i < fl->n; i++) {
        const lmc_plan_pool *p = &fl->pools[i];
        int f = 1;
        char d[16] = "";
        if (p->arrives != LMC_PLAN_NOW)
            lmc_plan_format_date(p->arrives, d);
        lmc_sb_puts(o, i ? ", {" : "{");
        kstr(o, "name", p->name, &f);
        kstr(o, "chip", p->chip.name, &f);
        knum(o, "count", (double)p->count, &f);
        knum(o, "chips_per_node", p->chips_per_node, &f);
        knum(o, "peak_tflops", p->chip.bf16_tflops, &f);
        if (p->chip.host_ranks > 1 && p->chip.rank_bw_gbs > 0) { /* ranks sharing this host: what each gets */
            knum(o, "host_ranks", p->chip.host_ranks, &f);
            knum(o, "rank_memory_gbs", p->chip.rank_bw_gbs * p->chip.host_bw_share, &f);
            knum(o, "shared_memory_sum_gbs", p->chip.intra_node_gbs, &f);
            knum(o, "compute_share", p->chip.host_share, &f);
            knum(o, "gemm_contention", p->chip.host_contention, &f);
            knum(o, "slowest_rank_pace", p->chip.host_pace, &f);
            knum(o, "collective_wait_us", p->chip.host_wait_us, &f);
            knum(o, "intra_latency_us", p->chip.intra_latency_us, &f);
            key(o, "sums_on_compute_cores", &f);
            lmc_sb_puts(o, p->chip.comm_on_cores ? "true" : "false");
        }
        key(o, "arrives", &f);
        if (d[0])
            lmc_sb_json_str(o, d, strlen(d));
        else
            lmc_sb_puts(o, "null");
        lmc_sb_putc(o, '}');
    }
    lmc_sb_puts(o, "]");
}

static void timeline_json(lmc_sb *o, const lmc_plan_report *rep, const lmc_plan_timeline *tl)
{
    lmc_sb_puts(o, "[");
    for (int i = 0; i < tl->n; i++) {
        const lmc_plan_segment *s = &tl->seg[i];
        char d[16];
        int f = 1;
        lmc_plan_format_date(s->day, d);
        lmc_sb_puts(o, i ? ", {" : "{");
        kstr(o, "date", d, &f);
        knum(o, "chips", (double)s->chips, &f);
        knum(o, "tokens_per_s", s->tokens_per_s, &f);
        knum(o, "tokens_done", s->tokens_at_start, &f);
        key(o, "layout", &f);
        if (s->tokens_per_s > 0)
            result_json(o, rep, &s->plan);
        else
            lmc_sb_puts(o, "null");
        lmc_sb_putc(o, '}');
    }
    lmc_sb_puts(o, "]");
}

static void pair(lmc_sb *o, const char *k, double a, double b, int *first)
{
    key(o, k, first);
    lmc_sb_putc(o, '[');
    lmc_sb_json_num(o, isfinite(a) ? a : 0);
    lmc_sb_puts(o, ", ");
    lmc_sb_json_num(o, isfinite(b) ? b : 0);
    lmc_sb_putc(o, ']');
}

/* hours, mfu, step_s and tokens_per_s are the expected figures; *_range
 * [low, high] and *_best beside them. */
static void outlook_json(lmc_sb *o, const lmc_plan_report *r, int *f)
{
    const lmc_plan_outlook *x = r->outlook;
    const lmc_plan_eff *e = &x->eff;
    double mfu = r->n_best ? r->best[0].mfu : 0, step = r->n_best ? r->best[0].step_s : 0;
    double tps = r->n_best ? r->best[0].tokens_per_s : 0;
    char d[16];
    knum(o, "hours", x->expected.hours, f);
    pair(o, "hours_range", x->fast.hours, x->slow.hours, f);
    knum(o, "hours_best", r->tl ? r->tl->hours : 0, f);
    knum(o, "mfu", mfu * e->expected, f);
    pair(o, "mfu_range", mfu * e->low, mfu * e->high, f);
    knum(o, "mfu_best", mfu, f);
    knum(o, "step_s", step / e->expected, f);
    pair(o, "step_s_range", step / e->high, step / e->low, f);
    knum(o, "step_s_best", step, f);
    knum(o, "tokens_per_s", tps * e->expected, f);
    knum(o, "tokens_per_s_best", tps, f);
    lmc_plan_format_date(x->fast.finish_day, d);
    kstr(o, "finish_early", d, f);
    lmc_plan_format_date(x->slow.finish_day, d);
    kstr(o, "finish_late", d, f);
    key(o, "efficiency", f);
    static const char *const en[] = {"expected", "low", "high", "runs", "calibrated"};
    double ev[] = {e->expected, e->low, e->high, e->runs, e->calibrated};
    num_object(o, en, ev, 5);
    key(o, "lost_time", f);
    static const char *const ln[] = {"interruptions_per_chip_hour", "mtbf_hours", "restart_hours",
                                     "checkpoint_seconds", "checkpoint_interval_hours", "effective_time"};
    double lv[] = {x->rel.rate, isfinite(x->mtbf_h) ? x->mtbf_h : 0, x->rel.restart_h, x->ckpt_h * 3600,
                   x->interval_h, x->effective};
    num_object(o, ln, lv, 6);
}

void lmc_plan_report_json(const lmc_plan_report *r, lmc_sb *o)
{
    const lmc_plan_job *j = r->job;
    const lmc_plan_timeline *tl = r->tl;
    int f = 1;
    lmc_sb_putc(o, '{');
    kstr(o, "model", r->model_name, &f);
    knum(o, "params", lmc_config_num_params(&j->model), &f);
    knum(o, "active_params", lmc_plan_active_params(&j->model), &f);
    knum(o, "flops_per_token", lmc_config_train_flops_per_token(&j->model, j->seq), &f);
    knum(o, "tokens", r->tokens, &f);
    knum(o, "seq", j->seq, &f);
    knum(o, "global_batch", (double)j->global_batch, &f);
    kstr(o, "precision", j->bf16 ? "bf16" : "fp32", &f);
    key(o, "fleet", &f);
    fleet_json(o, r->fleet);
    if (r->outlook)
        outlook_json(o, r, &f);
    else {
        knum(o, "hours", tl ? tl->hours : 0, &f);
        knum(o, "mfu", r->n_best ? r->best[0].mfu : 0, &f);
        knum(o, "tokens_per_s", r->n_best ? r->best[0].tokens_per_s : 0, &f);
    }
    if (tl) {
        char d0[16], d1[16];
        lmc_plan_format_date(tl->start_day, d0);
        lmc_plan_format_date(r->outlook ? r->outlook->expected.finish_day : tl->finish_day, d1);
        kstr(o, "start", d0, &f);
        kstr(o, "finish", d1, &f);
    }
    key(o, "best", &f);
    if (r->n_best)
        result_json(o, r, &r->best[0]);
    else
        lmc_sb_puts(o, "null");
    key(o, "layouts", &f);
    lmc_sb_putc(o, '[');
    for (int i = 0; i < r->n_best; i++) {
        lmc_sb_puts(o, i ? ", " : "");
        result_json(o, r, &r->best[i]);
    }
    lmc_sb_putc(o, ']');
    if (tl) {
        key(o, "timeline", &f);
        timeline_json(o, r, tl);
    }
    lmc_sb_puts(o, "}\n");
}

/* ---------- one layout's memory (lmc plan --memory) ---------- */

void lmc_plan_memory_text(const lmc_plan_memory_report *r, lmc_sb *o)
{
    const lmc_plan_job *j = r->job;
    const lmc_plan_layout *l = r->layout;
    const lmc_plan_mem *m = r->mem;
    char desc[256], name[300];
    lmc_config_describe(&j->model, desc, sizeof desc);
    lmc_sb_printf(o, "model    %s: %s\n", r->model_name, desc);
    lmc_sb_printf(o, "layout   %s: dp %d, tp %d, pp %d, vpp %d, micro-batch %d x %d tokens, %d per step, ZeRO-%d, "
                  "recompute %s\n", r->chip->name, l->dp, l->tp, l->pp, l->pp > 1 ? l->vpp : 1, l->micro_batch,
                  j->seq, r->grad_accum, l->zero, lmc_plan_recompute_name(l->recompute));
    if (m->trainer) {
        snprintf(name, sizeof name, "--model %s", r->model_name);
        lmc_sb_puts(o, "run      ");
        lmc_plan_command(j, r->model_args ? r->model_args : name, l, r->grad_accum, o);
        lmc_sb_puts(o, "\nmemory per rank: what lmc train allocates (fp32 on the CPU backend, all of it RSS), "
                       "MB = 1e6 bytes\n");
    } else {
        lmc_sb_printf(o, "memory per chip: the generic model (%s; docs/planner.md), MB = 1e6 bytes\n",
                      j->bf16 ? "16-bit weights and gradients, fp32 master and Adam" : "fp32");
    }
    const char *whole = l->tp * l->pp > 1 || (j->ep > 1 && j->model.n_expert > 0) ? "this rank's part of the model"
                                                                                   : "the whole model";
    struct {
        const char *name;
        double v;
        const char *why;
    } parts[] = {
        {"weights", m->weights, l->zero == 3 ? "this rank's shard" : whole},
        {"gradients", m->grads, l->zero >= 2 ? "this rank's shard" : whole},
        {"optimizer", m->optim, l->zero >= 1 ? "AdamW state, this rank's shard" : "AdamW state"},
        {"activations", m->activations, m->trainer ? "kept for backward, scratch and logits" : "kept for backward"},
        {"logits", m->logits, "fp32, on the last stage"},
        {"buffers", m->buffers, l->zero >= 2 ? "ZeRO units in flight (embeddings, two more)" : "none below ZeRO-2"},
        {"start-up", m->startup, "the starting weights on the host until uploaded"},
        {"overhead", m->overhead, "the process: binary, libraries, MPI"},
    };
    if (l->pp > 1)
        lmc_sb_printf(o, "pipeline stage %d of %d needs the most (%s)\n", m->stage, l->pp,
                      m->trainer ? "its part of the model and the activation sets its schedule holds"
                                 : "its layers' parameters and activations, the logits on the last");
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        if (parts[i].v > 0 || (m->trainer && strcmp(parts[i].name, "logits")))
            lmc_sb_printf(o, "  %-12s %10.1f MB  %s\n", parts[i].name, parts[i].v / 1e6, parts[i].why);
    lmc_sb_printf(o, "  %-12s %10.1f MB  of %.1f MB usable: %s\n", "total (peak)", m->total / 1e6, m->usable / 1e6,
                  m->total <= m->usable ? "fits" : "does not fit");
    int np = l->dp * l->tp * l->pp;
    if (m->trainer && np > 1) /* a cpu "chip" is a machine; mpirun on one runs every rank there */
        lmc_sb_printf(o, "  all %d ranks on one machine: at most %.1f MB\n", np, np * m->total / 1e6);
}

void lmc_plan_memory_json(const lmc_plan_memory_report *r, lmc_sb *o)
{
    const lmc_plan_layout *l = r->layout;
    int f = 1;
    lmc_sb_putc(o, '{');
    kstr(o, "model", r->model_name, &f);
    kstr(o, "chip", r->chip->name, &f);
    kstr(o, "source", r->mem->trainer ? "lmc train" : "generic", &f);
    knum(o, "params", lmc_config_num_params(&r->job->model), &f);
    knum(o, "dp", l->dp, &f);
    knum(o, "tp", l->tp, &f);
    knum(o, "pp", l->pp, &f);
    knum(o, "vpp", l->pp > 1 ? l->vpp : 1, &f);
    knum(o, "stage", r->mem->stage, &f);
    knum(o, "micro_batch", l->micro_batch, &f);
    knum(o, "grad_accum", r->grad_accum, &f);
    knum(o, "seq", r->job->seq, &f);
    knum(o, "zero", l->zero, &f);
    kstr(o, "recompute", lmc_plan_recompute_name(l->recompute), &f);
    key(o, "bytes", &f);
    mem_parts_json(o, r->mem);
    knum(o, "usable_bytes", r->mem->usable, &f);
    key(o, "fits", &f);
    lmc_sb_puts(o, r->mem->total <= r->mem->usable ? "true" : "false");
    char name[300];
    snprintf(name, sizeof name, "--model %s", r->model_name);
    lmc_sb cmd;
    lmc_sb_init(&cmd);
    lmc_plan_command(r->job, r->model_args ? r->model_args : name, l, r->grad_accum, &cmd);
    kstr(o, "command", cmd.s ? cmd.s : "", &f);
    lmc_sb_free(&cmd);
    lmc_sb_puts(o, "}\n");
}
