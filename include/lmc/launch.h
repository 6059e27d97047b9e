/* launch.h: `lmc launch`, an elastic supervisor for `lmc train` under
 * Open MPI's mpirun: reads a host file, starts the job on what is there,
 * restarts it from its last checkpoint when a rank dies or hangs (on the
 * slots that remain), and moves it onto a changed host list at a step
 * boundary, keeping the global batch so that the run learns what an
 * uninterrupted one would. */
#ifndef LMC_LAUNCH_H
#define LMC_LAUNCH_H

#include "lmc/core.h"

#include <signal.h>

/* ---------- host file (Open MPI's syntax: `host slots=N [max_slots=M]`) ---------- */

typedef struct {
    char *name;
    int slots;     /* processes it may run (0: listed, drained) */
    int max_slots; /* 0 when not given */
    int line;      /* where it is listed */
} lmc_host;

typedef struct {
    lmc_host *hosts; /* in file order, each listed once */
    int n;
} lmc_hostfile;

/* Parses host file text; `path` names it in errors ("hosts:3: ..."). '#'
 * starts a comment; every host needs slots=N (Open MPI would guess the core
 * count, which a supervisor cannot know for a remote host). */
lmc_status lmc_hostfile_parse(const char *text, size_t len, const char *path, lmc_hostfile *hf);
lmc_status lmc_hostfile_load(const char *path, lmc_hostfile *hf);
void lmc_hostfile_free(lmc_hostfile *hf);
int lmc_hostfile_slots(const lmc_hostfile *hf);
/* The entry of that name, or -1. */
int lmc_hostfile_find(const lmc_hostfile *hf, const char *name);

/* ---------- keeping the global batch ---------- */

/* How a job of `ranks` processes runs a global batch. */
typedef struct {
    int ranks;        /* processes started */
    int dp;           /* data-parallel replicas: ranks / (tp x pp) */
    int batch, accum; /* each replica's --batch and --grad-accum */
} lmc_launch_split;

/* The rule: the global batch is `global` sequences = batch x accum x dp.
 * --batch stays `batch` when batch x dp divides the global batch, else it
 * becomes the largest smaller micro-batch that does; --grad-accum is what
 * is left. `group` = tp x pp ranks hold one replica. LMC_ERANGE (naming the
 * numbers) when ranks is not a multiple of group or no micro-batch splits
 * the global batch evenly over dp replicas. */
lmc_status lmc_launch_split_batch(long long global, int batch, int group, int ranks, lmc_launch_split *out);

/* ---------- the supervisor ---------- */

typedef struct {
    const char *hosts;   /* the host file (polled for changes) */
    int min_ranks;       /* stop below this many ranks */
    int max_restarts;    /* stop after this many restarts (failures and moves) */
    int host_failures;   /* exclude a host after this many failures on it */
    long long global_batch; /* sequences per step; 0: --batch x --grad-accum x the first start's replicas */
    double poll_s;       /* how often the host file is checked */
    const char *log;     /* JSON Lines of the events, NULL for none */
    const char *mpirun;  /* the launcher and its flags, split at spaces ("mpirun --oversubscribe") */
    int train_argc;      /* the job: lmc train FLAGS... (argv[1] must be "train") */
    char **train_argv;
    volatile sig_atomic_t *interrupted; /* set by the caller's SIGINT/SIGTERM handler; may be NULL */
    /* The launcher's own output (stdout and stderr of every rank), as it comes. */
    void (*on_output)(void *ctx, const char *text, size_t n);
    /* One line for the console per event ("restart on 1 rank ..."). */
    void (*on_event)(void *ctx, const char *line);
    void *ctx;
} lmc_launch_opts;

typedef struct {
    double wall_s;      /* the supervisor's whole run */
    double useful_s;    /* the optimizer steps that count (each step's last run) */
    double lost_s;      /* per incident: the gap around it and the work redone */
    int attempts, restarts, failures, steps;
    long long tokens_redone;
} lmc_launch_summary;

/* Runs the job to its last step (LMC_OK) or until it cannot go on: too few
 * ranks, too many restarts, a train command that fails by itself (a bad
 * flag: not restarted), a malformed host file at the start. The summary is
 * filled either way. */
lmc_status lmc_launch_run(const lmc_launch_opts *o, lmc_launch_summary *sum);

#endif
