/* launch_internal.h: the pieces of lmc launch (src/launch/): the train
 * command it runs (trainargs.c), which slots a start uses (plan.c), the
 * mpirun process (job.c), the trainer's log it follows (trainlog.c) and
 * its events (events.c); supervise.c runs them. */
#ifndef LMC_LAUNCH_INTERNAL_H
#define LMC_LAUNCH_INTERNAL_H

#include "lmc/launch.h"

#include <sys/types.h>

/* ---------- trainargs.c: the `lmc train` command ---------- */

typedef struct {
    int argc;
    char **argv;        /* as given: lmc train FLAGS... */
    const char *out;    /* --out: where the checkpoints are (required) */
    const char *log;    /* --log, NULL when not given */
    const char *resume; /* --resume, NULL when not given */
    int batch, accum, seq, steps, tp, pp, zero, save_every;
} lmc_train_cmd;

lmc_status lmc_train_cmd_parse(int argc, char **argv, lmc_train_cmd *tc);
/* The command for one start: --batch, --grad-accum, --resume and --log
 * replaced by these (resume NULL: none). *argv is NULL-terminated; free
 * the array (not the strings it points to) and *owned with free(). */
lmc_status lmc_train_cmd_argv(const lmc_train_cmd *tc, const lmc_launch_split *sp, const char *resume,
                              const char *log, char ***argv, char **owned);

/* ---------- plan.c: which slots a start uses ---------- */

/* What the supervisor has learned about a host. */
typedef struct {
    char *name;
    int lost;     /* slots whose rank died (given back when the host file changes) */
    int failures; /* failures on it, ever */
    int excluded; /* after too many failures: not used again */
} lmc_host_health;

typedef struct {
    lmc_host_health *h;
    int n;
} lmc_health;

lmc_host_health *lmc_health_of(lmc_health *hl, const char *name); /* added when new; NULL: out of memory */
void lmc_health_free(lmc_health *hl);

typedef struct {
    lmc_launch_split split;
    int nhosts;
    char **names; /* the hosts used, in file order */
    int *ranks;   /* ranks on each */
    int avail;    /* usable slots (some may stay idle to keep the batch) */
} lmc_launch_plan;

typedef struct {
    int min_ranks, group, min_dp; /* group: tp x pp; min_dp: 2 under ZeRO-3 */
    long long global;             /* sequences per step; 0: not fixed yet (the first start) */
    int batch, accum;             /* the command's */
} lmc_plan_rule;

/* The largest start the hosts allow: usable slots (not excluded, less the
 * lost ones), a multiple of the group, at least min_ranks, splitting the
 * global batch evenly. An error says why there is none. */
lmc_status lmc_launch_plan_make(const lmc_hostfile *hf, lmc_health *hl, const lmc_plan_rule *r, lmc_launch_plan *p);
void lmc_launch_plan_free(lmc_launch_plan *p);
int lmc_launch_plan_same(const lmc_launch_plan *a, const lmc_launch_plan *b);
/* The host rank r runs on (ranks fill each host's slots in order, as mpirun's by-slot mapping). */
const char *lmc_launch_plan_host(const lmc_launch_plan *p, int rank);
/* "node1:2 node2:1" */
void lmc_launch_plan_describe(const lmc_launch_plan *p, char *buf, size_t n);
/* The plan as an Open MPI host file, written atomically. */
lmc_status lmc_launch_plan_write(const lmc_launch_plan *p, const char *path);

/* ---------- job.c: one mpirun ---------- */

typedef enum {
    LMC_JOB_OK,          /* every rank exited 0 */
    LMC_JOB_RANK_DIED,   /* a rank ended on a signal (rank, sig) */
    LMC_JOB_ABORTED,     /* MPI_Abort: one rank failed alone, a watchdog, a lost peer */
    LMC_JOB_NODE_LOST,   /* mpirun lost a remote daemon (node) */
    LMC_JOB_LAUNCHER,    /* mpirun itself died on a signal */
    LMC_JOB_FAILED,      /* ranks exited with an error on their own (a bad flag, bad data) */
} lmc_job_end;

typedef struct {
    pid_t pid;
    int fd;         /* mpirun's stdout and stderr */
    char line[1024]; /* the current output line (scanned for Open MPI's reports) */
    size_t line_len;
    int exited, status;
    int died_rank, died_signal, aborted, node_lost;
    char lost_node[256];
    double ready_t; /* when rank 0 said it was set up ("starting at step"), 0 until then */
} lmc_job;

lmc_status lmc_job_start(lmc_job *j, char *const *argv);
/* Waits up to timeout_s for output or the end; output goes to the callback. */
void lmc_job_poll(lmc_job *j, double timeout_s, void (*out)(void *, const char *, size_t), void *ctx);
void lmc_job_signal(const lmc_job *j, int sig);
lmc_job_end lmc_job_result(const lmc_job *j, int *code);

/* ---------- trainlog.c: the trainer's JSON Lines, followed ---------- */

typedef struct {
    const char *path;
    long long offset;
    lmc_sb part;     /* an unfinished line */
    double *step_ms; /* [steps + 1]: the last run of each step */
    int steps;
    int last_step;   /* the last step logged, 0 before any */
    double last_t;   /* when it was seen (lmc_now) */
    int seen;        /* lines read since lmc_trainlog_mark */
    int first_step;  /* the first of them, and when it was seen */
    double first_t;
} lmc_trainlog;

lmc_status lmc_trainlog_open(lmc_trainlog *tl, const char *path, int steps);
void lmc_trainlog_read(lmc_trainlog *tl);
void lmc_trainlog_mark(lmc_trainlog *tl); /* a new start: count its lines from here */
double lmc_trainlog_useful_ms(const lmc_trainlog *tl, int upto);
double lmc_trainlog_ms(const lmc_trainlog *tl, int from, int to); /* steps from+1 .. to */
void lmc_trainlog_close(lmc_trainlog *tl);
/* The step of the newest checkpoint in an --out folder ('latest'), -1 for none. */
int lmc_latest_checkpoint(const char *out);

/* ---------- events.c: the console and the JSON Lines log ---------- */

typedef struct {
    FILE *f;
    double t0, wall0; /* lmc_now and the Unix time at the start */
    void (*cb)(void *ctx, const char *line);
    void *ctx;
} lmc_launch_log;

lmc_status lmc_launch_log_open(lmc_launch_log *lg, const char *path, void (*cb)(void *, const char *), void *ctx);
/* One event: `fields` is JSON members without braces ("\"ranks\":2"), or "";
 * the console gets `text` (printf-style). */
void lmc_launch_event(lmc_launch_log *lg, const char *kind, const char *fields, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void lmc_launch_log_close(lmc_launch_log *lg);

#endif
