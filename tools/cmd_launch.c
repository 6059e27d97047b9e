/* cmd_launch.c: `lmc launch --hosts FILE [flags] -- lmc train FLAGS...`:
 * flags -> lmc_launch_opts; the job's output and the events to stderr. */
#include "cli.h"
#include "lmc/launch.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SIGINT/SIGTERM: end the job and stop (a handler reaches only a global) */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void on_output(void *ctx, const char *text, size_t n)
{
    fwrite(text, 1, n, stderr);
    fflush(stderr);
}

static void on_event(void *ctx, const char *line)
{
    fprintf(stderr, "lmc launch: %s\n", line);
    fflush(stderr);
}

int lmc_cmd_launch(int argc, char **argv)
{
    int split = 1;
    while (split < argc && strcmp(argv[split], "--"))
        split++;
    lmc_launch_opts o = {.min_ranks = 1, .max_restarts = 20, .host_failures = 2, .poll_s = 0.5, .mpirun = "mpirun",
                         .interrupted = &interrupted, .on_output = on_output, .on_event = on_event};
    long long min_ranks = o.min_ranks, max_restarts = o.max_restarts, host_failures = o.host_failures, global = 0;
    cli_opt opts[] = {
        {"hosts", CLI_STR, &o.hosts, "host file, Open MPI syntax: 'host slots=N' per line; polled for changes"},
        {"min-ranks", CLI_INT, &min_ranks, "stop when fewer ranks than this remain", 1, 1 << 20},
        {"max-restarts", CLI_INT, &max_restarts, "stop after this many restarts after failures", 0, 1 << 20},
        {"host-failures", CLI_INT, &host_failures, "exclude a host after this many failures on it", 1, 1 << 20},
        {"global-batch", CLI_INT, &global, "sequences per step (default: --batch x --grad-accum x the first "
         "start's replicas)", 1, 1LL << 40},
        {"poll", CLI_FLOAT, &o.poll_s, "seconds between looks at the host file", 0.05, 3600},
        {"log", CLI_STR, &o.log, "JSON Lines: one object per event (start, failure, restart, summary)"},
        {"mpirun", CLI_STR, &o.mpirun, "the launcher and its flags, e.g. \"mpirun --allow-run-as-root\""},
        {NULL},
    };
    cli_spec spec = {.cmd = "launch", .synopsis = "--hosts FILE [flags] -- lmc train FLAGS...",
                     .about = "Runs lmc train under mpirun on the hosts of FILE and keeps it going: after a rank dies "
                              "or hangs it restarts from the last checkpoint (--out) on the slots that remain; when "
                              "FILE changes the job writes a checkpoint at the next step and restarts on the new "
                              "hosts. --grad-accum (or --batch) is recomputed on every start so that the global "
                              "batch stays the same.",
                     .opts = opts};
    lmc_status s = cli_parse(&spec, split, argv, NULL);
    if (s)
        return cli_exit(&spec, s);
    s = cli_require(&spec, "hosts");
    if (s == LMC_OK && split >= argc - 1)
        s = lmc_err(LMC_EINVAL, "no job: give the train command after --, e.g. -- lmc train --model d6 ...");
    if (s)
        return cli_fail("launch", s);
    o.min_ranks = (int)min_ranks, o.max_restarts = (int)max_restarts, o.host_failures = (int)host_failures;
    o.global_batch = global;
    o.train_argc = argc - split - 1;
    o.train_argv = argv + split + 1;
    char mpirun[4096];
    if (getenv("LMC_COMM_TIMEOUT")) { /* the watchdog's setting reaches ranks on other hosts too */
        snprintf(mpirun, sizeof mpirun, "%s -x LMC_COMM_TIMEOUT", o.mpirun);
        o.mpirun = mpirun;
    }
    cli_catch_stop(on_signal);
    lmc_launch_summary sum;
    return cli_fail("launch", lmc_launch_run(&o, &sum));
}
