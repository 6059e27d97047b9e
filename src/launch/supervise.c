/* supervise.c: the loop of lmc launch.
 *
 * Each start runs `mpirun --hostfile OUT/launch.hosts -np N lmc train ...`
 * on the plan (plan.c) of the current host file, with --batch and
 * --grad-accum that keep the global batch and --resume OUT once a
 * checkpoint exists. While it runs, the supervisor passes its output on,
 * follows the trainer's log (the steps done) and polls the host file. How
 * a start ends decides what follows:
 *  - exit 0 at the last step: done;
 *  - the host file changed to a different plan: the job was sent SIGUSR1
 *    (mpirun forwards it to every rank), wrote a checkpoint at the next step
 *    boundary and exited 0: start again on the new plan;
 *  - a rank died of a signal: its slot is lost (until the host file
 *    changes); a host with --host-failures failures is excluded; restart;
 *  - MPI_Abort (a watchdog or a rank failing alone), a lost node, mpirun
 *    killed: restart on what remains;
 *  - every rank exited with an error by itself (a bad flag, missing data):
 *    the command is wrong, restarting cannot help: stop.
 * It also stops below --min-ranks, after --max-restarts restarts after
 * failures, and after three starts in a row that failed without a new
 * checkpoint. Time lost per incident: the wall time from the last step
 * before it to the first step after, less that step's own time, plus the
 * time of the steps redone (those after the checkpoint resumed from). */
#include "launch/launch_internal.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NO_PROGRESS_LIMIT 3

typedef struct {
    const lmc_launch_opts *o;
    lmc_launch_summary *sum;
    lmc_train_cmd tc;
    lmc_hostfile hf;
    struct stat hf_st, settle_st; /* the host file the plan came from; a change seen, settling */
    int settling;
    lmc_health health;
    lmc_plan_rule rule;
    lmc_launch_plan plan;
    lmc_launch_log lg;
    lmc_trainlog tl;
    char train_log[4096], hosts_out[4096], np[16];
    const char *resume;   /* for the next start */
    int no_progress;      /* starts in a row that failed without a new checkpoint */
    int pending;          /* an incident waits for the next start's first step */
    double gap_t, redo_ms; /* when its last useful step was seen; the work it threw away */
} sup;

static int same_stat(const struct stat *a, const struct stat *b)
{
    return a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_size == b->st_size && a->st_ino == b->st_ino;
}

static lmc_status setup(sup *S)
{
    const lmc_launch_opts *o = S->o;
    LMC_TRY(lmc_train_cmd_parse(o->train_argc, o->train_argv, &S->tc));
    LMC_TRY(lmc_hostfile_load(o->hosts, &S->hf));
    if (stat(o->hosts, &S->hf_st) != 0)
        return lmc_err(LMC_EIO, "--hosts %s: cannot stat it", o->hosts);
    LMC_TRY(lmc_mkdir_p(S->tc.out));
    snprintf(S->hosts_out, sizeof S->hosts_out, "%s/launch.hosts", S->tc.out);
    snprintf(S->train_log, sizeof S->train_log, "%s", S->tc.log ? S->tc.log : "");
    if (!S->tc.log)
        snprintf(S->train_log, sizeof S->train_log, "%s/train.jsonl", S->tc.out);
    S->rule = (lmc_plan_rule){.min_ranks = o->min_ranks > 0 ? o->min_ranks : 1, .group = S->tc.tp * S->tc.pp,
                              .min_dp = S->tc.zero == 3 ? 2 : 1, .global = o->global_batch,
                              .batch = S->tc.batch, .accum = S->tc.accum};
    S->resume = S->tc.resume;
    LMC_TRY(lmc_trainlog_open(&S->tl, S->train_log, S->tc.steps));
    return lmc_launch_log_open(&S->lg, o->log, o->on_event, o->ctx);
}

static long long tokens_per_step(const sup *S)
{
    return S->rule.global * S->tc.seq;
}

/* The command of one start: mpirun's words, the plan, the train command. */
typedef struct {
    char **argv, **train, *words, *nums;
} command;

static void command_free(command *c)
{
    free(c->argv), free(c->train), free(c->words), free(c->nums);
}

static lmc_status start_command(sup *S, command *c)
{
    memset(c, 0, sizeof *c);
    LMC_TRY(lmc_train_cmd_argv(&S->tc, &S->plan.split, S->resume, S->train_log, &c->train, &c->nums));
    c->words = lmc_strdup(S->o->mpirun);
    int nt = 0, nw = 0;
    while (c->train[nt])
        nt++;
    c->argv = c->words ? calloc(strlen(c->words) + (size_t)nt + 8, sizeof *c->argv) : NULL;
    if (!c->argv)
        return lmc_err(LMC_ENOMEM, "out of memory");
    for (char *save = NULL, *w = strtok_r(c->words, " ", &save); w; w = strtok_r(NULL, " ", &save))
        c->argv[nw++] = w;
    if (nw == 0)
        return lmc_err(LMC_EINVAL, "--mpirun is empty");
    snprintf(S->np, sizeof S->np, "%d", S->plan.split.ranks);
    c->argv[nw++] = "--hostfile", c->argv[nw++] = S->hosts_out, c->argv[nw++] = "-np", c->argv[nw++] = S->np;
    memcpy(c->argv + nw, c->train, (size_t)(nt + 1) * sizeof *c->argv);
    return LMC_OK;
}

/* A plan for the current host file, or the error that says why there is none. */
static lmc_status make_plan(sup *S, lmc_launch_plan *p)
{
    LMC_TRY(lmc_launch_plan_make(&S->hf, &S->health, &S->rule, p));
    if (!S->rule.global)
        S->rule.global = (long long)p->split.batch * p->split.accum * p->split.dp;
    return LMC_OK;
}

static void event_start(sup *S, int attempt, int ckpt)
{
    char where[1024], fields[1536], from[1024];
    const lmc_launch_split *sp = &S->plan.split;
    lmc_launch_plan_describe(&S->plan, where, sizeof where);
    if (ckpt >= 0)
        snprintf(from, sizeof from, "the checkpoint of step %d", ckpt);
    else
        snprintf(from, sizeof from, "%s%s", S->resume ? "--resume " : "step 0", S->resume ? S->resume : "");
    snprintf(fields, sizeof fields, "\"attempt\":%d,\"ranks\":%d,\"hosts\":\"%s\",\"batch\":%d,\"grad_accum\":%d,"
             "\"global_batch\":%lld,\"from_step\":%d,\"usable_slots\":%d", attempt, sp->ranks, where, sp->batch,
             sp->accum, S->rule.global, ckpt < 0 ? 0 : ckpt, S->plan.avail);
    lmc_launch_event(&S->lg, "start", fields, "start %d: %d rank%s on %s, --batch %d x --grad-accum %d x %d "
                     "replica%s = %lld sequences per step, from %s", attempt, sp->ranks, sp->ranks == 1 ? "" : "s",
                     where, sp->batch, sp->accum, sp->dp, sp->dp == 1 ? "" : "s", S->rule.global, from);
    if (S->plan.avail > sp->ranks)
        lmc_launch_event(&S->lg, "idle", "", "%d of %d usable slots stay idle: the global batch of %lld sequences "
                         "does not split evenly over more", S->plan.avail - sp->ranks, S->plan.avail, S->rule.global);
}

/* The first step of a start: how long it took to get there, and for a
 * restart the time its incident cost. */
static void event_running(sup *S, const lmc_job *j, double start_t, int attempt)
{
    int step = S->tl.first_step;
    double now = S->tl.first_t, first_ms = S->tl.step_ms[step];
    char ready[32] = "null", fields[512];
    if (j->ready_t) /* rank 0 printed its set-up line (not under --quiet) */
        snprintf(ready, sizeof ready, "%.3f", j->ready_t - start_t);
    if (!S->pending) {
        snprintf(fields, sizeof fields, "\"attempt\":%d,\"step\":%d,\"first_step_s\":%.3f,\"ready_s\":%s", attempt,
                 step, now - start_t, ready);
        lmc_launch_event(&S->lg, "running", fields, "running: step %d done %.1f s after the start", step,
                         now - start_t);
        return;
    }
    double lost = (now - S->gap_t) - first_ms / 1e3 + S->redo_ms / 1e3;
    S->sum->lost_s += lost;
    S->pending = 0;
    snprintf(fields, sizeof fields, "\"attempt\":%d,\"step\":%d,\"restart_s\":%.3f,\"ready_s\":%s,"
             "\"first_step_ms\":%.3f,\"redone_s\":%.3f,\"lost_s\":%.3f", attempt, step, now - start_t, ready,
             first_ms, S->redo_ms / 1e3, lost);
    lmc_launch_event(&S->lg, "resumed", fields, "resumed: step %d done %.1f s after the restart; time lost %.1f s "
                     "(%.1f s of it redoing steps)", step, now - start_t, lost, S->redo_ms / 1e3);
}

/* Reads the host file again after a change: the file is the inventory
 * again (slots lost to failures come back; excluded hosts stay out).
 * 0 when it cannot be used (the old list stays). */
static int reload_hosts(sup *S, const struct stat *st)
{
    lmc_hostfile hf;
    S->hf_st = *st;
    if (lmc_hostfile_load(S->o->hosts, &hf)) {
        lmc_launch_event(&S->lg, "hosts_error", "", "the host file changed but cannot be used (the job goes on as it "
                         "is): %s", lmc_errmsg());
        return 0;
    }
    lmc_hostfile_free(&S->hf);
    S->hf = hf;
    for (int i = 0; i < S->health.n; i++)
        S->health.h[i].lost = 0;
    return 1;
}

/* Whether the host file now asks for a different plan than the running
 * one. A change is acted on once the file has stayed the same for one poll
 * (an editor may still be writing it). */
static int hosts_moved(sup *S)
{
    struct stat st;
    if (stat(S->o->hosts, &st) != 0 || same_stat(&st, &S->hf_st)) {
        S->settling = 0;
        return 0;
    }
    if (!S->settling || !same_stat(&st, &S->settle_st)) {
        S->settle_st = st, S->settling = 1;
        return 0;
    }
    S->settling = 0;
    if (!reload_hosts(S, &st))
        return 0;
    lmc_launch_plan next;
    if (make_plan(S, &next)) {
        lmc_launch_event(&S->lg, "hosts", "", "the host file changed: %s; stopping the job at a checkpoint",
                         lmc_errmsg());
        return 1;
    }
    int same = lmc_launch_plan_same(&next, &S->plan), from = S->plan.split.ranks, to = next.split.ranks;
    lmc_launch_plan_free(&next);
    if (same) {
        lmc_launch_event(&S->lg, "hosts", "", "the host file changed; the job keeps its %d ranks", from);
        return 0;
    }
    char fields[128];
    snprintf(fields, sizeof fields, "\"from_ranks\":%d,\"to_ranks\":%d", from, to);
    lmc_launch_event(&S->lg, to > from ? "grow" : to < from ? "shrink" : "move", fields, "the host file changed: "
                     "%d -> %d ranks; asking the job to write a checkpoint at the next step and stop (SIGUSR1)", from,
                     to);
    return 1;
}

typedef struct {
    double start_t;
    int ckpt0, stop_sent, term_sent, running_seen;
    int last, redo; /* at the end: the last step done, the steps after the checkpoint */
} watch;

/* Runs the start until mpirun exits. */
static void monitor(sup *S, lmc_job *j, watch *w, int attempt)
{
    const lmc_launch_opts *o = S->o;
    double next_check = lmc_now() + o->poll_s;
    while (!j->exited) {
        lmc_job_poll(j, 0.1, o->on_output, o->ctx);
        lmc_trainlog_read(&S->tl);
        if (S->tl.seen && !w->running_seen) {
            w->running_seen = 1;
            event_running(S, j, w->start_t, attempt);
        }
        if (o->interrupted && *o->interrupted && !w->term_sent) {
            lmc_job_signal(j, SIGTERM);
            w->term_sent = 1;
        }
        if (!w->stop_sent && !w->term_sent && lmc_now() >= next_check) {
            next_check = lmc_now() + o->poll_s;
            if (hosts_moved(S)) {
                lmc_job_signal(j, SIGUSR1);
                w->stop_sent = 1;
            }
        }
    }
}

/* Books a host's failure: its slot lost, the host excluded after too many. */
static void blame(sup *S, const char *host, int whole)
{
    lmc_host_health *h = host ? lmc_health_of(&S->health, host) : NULL;
    if (!h)
        return;
    int at = lmc_hostfile_find(&S->hf, host);
    h->failures++;
    h->lost = whole && at >= 0 ? S->hf.hosts[at].slots : h->lost + 1;
    if (h->failures >= S->o->host_failures && !h->excluded) {
        h->excluded = 1;
        char fields[320];
        snprintf(fields, sizeof fields, "\"host\":\"%s\",\"failures\":%d", host, h->failures);
        lmc_launch_event(&S->lg, "exclude", fields, "host %s excluded after %d failures", host, h->failures);
    }
}

static const char *end_names[] = {"ok", "rank_died", "aborted", "node_lost", "launcher_died", "command"};

/* A failed start: books it, and says whether to restart. */
static lmc_status after_failure(sup *S, const lmc_job *j, lmc_job_end end, int code, int ckpt, const watch *w)
{
    S->sum->failures++;
    const char *host = NULL;
    if (end == LMC_JOB_RANK_DIED)
        host = lmc_launch_plan_host(&S->plan, j->died_rank);
    if (end == LMC_JOB_NODE_LOST && lmc_hostfile_find(&S->hf, j->lost_node) >= 0)
        host = j->lost_node;
    int last = w->last, redo = w->redo;
    double detect = lmc_now() - (S->tl.seen ? S->tl.last_t : w->start_t);
    char fields[768];
    snprintf(fields, sizeof fields, "\"kind\":\"%s\",\"exit_code\":%d,\"rank\":%d,\"signal\":%d,\"host\":\"%s\","
             "\"step\":%d,\"checkpoint\":%d,\"steps_redone\":%d,\"tokens_redone\":%lld,\"detect_s\":%.3f",
             end_names[end], code, j->died_rank, j->died_signal, host ? host : "", last, ckpt, redo,
             redo * tokens_per_step(S), detect);
    if (end == LMC_JOB_FAILED) {
        lmc_launch_event(&S->lg, "failure", fields, "lmc train failed by itself (mpirun exit code %d; its message "
                         "is above): a bad flag or input is not cured by restarting", code);
        return lmc_err(LMC_EINVAL, "the train command failed (exit code %d) and is not restarted: fix it and run "
                       "lmc launch again", code);
    }
    lmc_launch_event(&S->lg, "failure", fields, "failure (%s%s%s): last step %d, checkpoint %d; %d step%s "
                     "(%lld tokens) to redo; the job ended %.1f s after its last step", end_names[end],
                     host ? " on " : "", host ? host : "", last, ckpt, redo, redo == 1 ? "" : "s",
                     redo * tokens_per_step(S), detect);
    S->sum->tokens_redone += redo * tokens_per_step(S);
    if (host)
        blame(S, host, end == LMC_JOB_NODE_LOST);
    S->no_progress = ckpt > w->ckpt0 ? 0 : S->no_progress + 1;
    if (S->no_progress >= NO_PROGRESS_LIMIT)
        return lmc_err(LMC_ECOMM, "%d starts in a row failed without writing a new checkpoint: not restarting "
                       "(the last checkpoint is %d)", S->no_progress, ckpt);
    if (++S->sum->restarts > S->o->max_restarts)
        return lmc_err(LMC_ECOMM, "%d failures: more than --max-restarts %d", S->sum->failures, S->o->max_restarts);
    return LMC_OK;
}

/* How one start ended: *done when the run is complete; an error stops. */
static lmc_status after_start(sup *S, const lmc_job *j, watch *w, int *done)
{
    int code, ckpt = lmc_latest_checkpoint(S->tc.out);
    lmc_job_end end = lmc_job_result(j, &code);
    lmc_trainlog_read(&S->tl);
    if (w->term_sent)
        return lmc_err(LMC_EIO, "interrupted: the job was ended (SIGTERM); the last checkpoint is step %d", ckpt);
    int stopped = w->stop_sent && (end == LMC_JOB_OK || (end == LMC_JOB_RANK_DIED && j->died_signal == SIGUSR1));
    if (end == LMC_JOB_OK && (ckpt >= S->tc.steps || S->tc.steps == 0)) {
        *done = 1;
        return LMC_OK;
    }
    if (end == LMC_JOB_OK && !w->stop_sent)
        return lmc_err(LMC_EIO, "the job exited 0 at step %d, before --steps %d, without being asked to (a SIGUSR1 "
                       "from elsewhere?): continue with lmc launch and --resume %s", ckpt, S->tc.steps, S->tc.out);
    int from = ckpt < 0 ? 0 : ckpt;
    w->last = S->tl.seen ? S->tl.last_step : from;
    w->redo = w->last > from ? w->last - from : 0;
    if (!S->pending || S->tl.seen) { /* the gap starts at the last useful step seen */
        S->gap_t = S->tl.seen ? S->tl.last_t : w->start_t;
        S->redo_ms = 0;
    }
    S->redo_ms += lmc_trainlog_ms(&S->tl, from, w->last);
    S->pending = 1;
    if (ckpt >= 0)
        S->resume = S->tc.out;
    if (!stopped)
        return after_failure(S, j, end, code, ckpt, w);
    char fields[128];
    snprintf(fields, sizeof fields, "\"step\":%d,\"checkpoint\":%d", w->last, ckpt);
    lmc_launch_event(&S->lg, "stopped", fields, "the job stopped at step %d with a checkpoint, to move onto the new "
                     "host list", ckpt);
    S->no_progress = 0;
    return LMC_OK;
}

/* Before a start: a host file changed since the last look is read again. */
static void refresh_hosts(sup *S)
{
    struct stat st;
    if (stat(S->o->hosts, &st) == 0 && !same_stat(&st, &S->hf_st))
        reload_hosts(S, &st);
    S->settling = 0;
}

/* One start, from plan to exit. */
static lmc_status run_start(sup *S, int attempt, int *done)
{
    if (S->o->interrupted && *S->o->interrupted)
        return lmc_err(LMC_EIO, "interrupted (SIGINT/SIGTERM) between starts");
    if (attempt > 1)
        refresh_hosts(S);
    lmc_launch_plan_free(&S->plan);
    lmc_status s = make_plan(S, &S->plan);
    if (s) {
        char why[1024];
        snprintf(why, sizeof why, "%s", lmc_errmsg());
        return lmc_err(s, "cannot %s: %s", attempt == 1 ? "start" : "restart", why);
    }
    LMC_TRY(lmc_launch_plan_write(&S->plan, S->hosts_out));
    watch w = {.ckpt0 = lmc_latest_checkpoint(S->tc.out)};
    command c;
    lmc_job j;
    s = start_command(S, &c);
    if (s == LMC_OK) {
        event_start(S, attempt, S->resume ? w.ckpt0 : -1);
        lmc_trainlog_mark(&S->tl);
        w.start_t = lmc_now();
        s = lmc_job_start(&j, c.argv);
    }
    command_free(&c);
    if (s)
        return s;
    S->sum->attempts++;
    monitor(S, &j, &w, attempt);
    return after_start(S, &j, &w, done);
}

static void summary(sup *S, double t0)
{
    lmc_launch_summary *sum = S->sum;
    sum->wall_s = lmc_now() - t0;
    sum->steps = S->tl.last_step;
    sum->useful_s = lmc_trainlog_useful_ms(&S->tl, S->tc.steps) / 1e3;
    double frac = sum->wall_s > 0 ? sum->useful_s / sum->wall_s : 0;
    char fields[512];
    snprintf(fields, sizeof fields, "\"wall_s\":%.3f,\"useful_s\":%.3f,\"effective\":%.4f,\"lost_s\":%.3f,"
             "\"attempts\":%d,\"restarts\":%d,\"failures\":%d,\"steps\":%d,\"tokens_redone\":%lld", sum->wall_s,
             sum->useful_s, frac, sum->lost_s, sum->attempts, sum->restarts, sum->failures, sum->steps,
             sum->tokens_redone);
    lmc_launch_event(&S->lg, "summary", fields, "summary: wall %.1f s, useful %.1f s (the steps that count), "
                     "effective-time fraction %.3f; %d start%s, %d failure%s, %lld tokens redone, %.1f s lost to "
                     "incidents", sum->wall_s, sum->useful_s, frac, sum->attempts, sum->attempts == 1 ? "" : "s",
                     sum->failures, sum->failures == 1 ? "" : "s", sum->tokens_redone, sum->lost_s);
}

lmc_status lmc_launch_run(const lmc_launch_opts *o, lmc_launch_summary *sum)
{
    sup S;
    memset(&S, 0, sizeof S);
    memset(sum, 0, sizeof *sum);
    S.o = o;
    S.sum = sum;
    double t0 = lmc_now();
    lmc_status s = setup(&S);
    int done = 0;
    for (int attempt = 1; s == LMC_OK && !done; attempt++)
        s = run_start(&S, attempt, &done);
    if (s && S.tl.step_ms) { /* the log records why; the console gets the error from the caller */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", lmc_errmsg());
        S.lg.cb = NULL;
        lmc_launch_event(&S.lg, "stop", "", "%s", msg);
        S.lg.cb = o->on_event;
        lmc_err(s, "%s", msg);
    }
    if (sum->attempts) {
        summary(&S, t0);
        if (s == LMC_OK)
            lmc_launch_event(&S.lg, "done", "", "done: step %d of %d", sum->steps, S.tc.steps);
    }
    lmc_launch_log_close(&S.lg);
    lmc_trainlog_close(&S.tl);
    lmc_launch_plan_free(&S.plan);
    lmc_health_free(&S.health);
    lmc_hostfile_free(&S.hf);
    return s;
}
