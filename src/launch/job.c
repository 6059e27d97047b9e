/* job.c: one run of mpirun: started with its output on a pipe, the output
 * passed on as it comes and scanned for Open MPI's own reports of how the
 * job ended (which rank died of which signal, an MPI_Abort, a lost node),
 * since mpirun's exit status alone does not say.
 *
 * The texts are Open MPI 4's (orte/mca/errmgr help files):
 *   "mpirun noticed that process rank 1 with PID 0 on node vm exited on signal 9 (Killed)."
 *   "MPI_ABORT was invoked on rank 0 in communicator MPI_COMM_WORLD"
 *   "ORTE has lost communication with a remote daemon." ... "Remote daemon: [[1,0],1] on node n2"
 * and lmc train's "starting at step N" once rank 0 is set up. */
#define _GNU_SOURCE
#include "launch/launch_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

lmc_status lmc_job_start(lmc_job *j, char *const *argv)
{
    int fds[2];
    memset(j, 0, sizeof *j);
    j->fd = -1;
    j->died_rank = -1;
    if (pipe2(fds, O_CLOEXEC) != 0)
        return lmc_err(LMC_EIO, "cannot create a pipe for %s: %s", argv[0], strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]), close(fds[1]);
        return lmc_err(LMC_EIO, "cannot start %s: fork: %s", argv[0], strerror(errno));
    }
    if (pid == 0) { /* the child: output to the pipe, no input (mpirun would forward it to rank 0) */
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        execvp(argv[0], argv);
        dprintf(2, "lmc launch: cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    j->pid = pid;
    j->fd = fds[0];
    return LMC_OK;
}

static void scan_line(lmc_job *j, const char *s)
{
    const char *p;
    int rank, pid, sig;
    char node[256];
    if ((p = strstr(s, "process rank ")) &&
        sscanf(p, "process rank %d with PID %d on node %255s exited on signal %d", &rank, &pid, node, &sig) == 4 &&
        j->died_rank < 0) {
        j->died_rank = rank;
        j->died_signal = sig;
    }
    if (strstr(s, "MPI_ABORT was invoked"))
        j->aborted = 1;
    if (strstr(s, "lost communication with a remote daemon") || strstr(s, "unexpectedly failed after launch"))
        j->node_lost = 1;
    if ((p = strstr(s, "Remote daemon:")) && (p = strstr(p, " on node ")))
        snprintf(j->lost_node, sizeof j->lost_node, "%s", p + 9);
    if (!j->ready_t && strstr(s, "starting at step "))
        j->ready_t = lmc_now();
}

static void scan(lmc_job *j, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\n' || buf[i] == '\r') {
            j->line[j->line_len] = 0;
            scan_line(j, j->line);
            j->line_len = 0;
        } else if (j->line_len < sizeof j->line - 1) {
            j->line[j->line_len++] = buf[i];
        }
    }
}

/* Reads what is there: 1 when something was read, 0 at the end of the
 * output, -1 when nothing came within timeout_ms. */
static int drain(lmc_job *j, int timeout_ms, void (*out)(void *, const char *, size_t), void *ctx)
{
    struct pollfd pf = {.fd = j->fd, .events = POLLIN};
    int r = poll(&pf, 1, timeout_ms);
    if (r <= 0)
        return -1;
    char buf[16384];
    ssize_t n = read(j->fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return -1;
    if (n <= 0)
        return 0;
    if (out)
        out(ctx, buf, (size_t)n);
    scan(j, buf, (size_t)n);
    return 1;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

void lmc_job_poll(lmc_job *j, double timeout_s, void (*out)(void *, const char *, size_t), void *ctx)
{
    if (j->exited)
        return;
    if (j->fd >= 0 && drain(j, (int)(timeout_s * 1000), out, ctx) == 0) {
        close(j->fd);
        j->fd = -1;
    } else if (j->fd < 0) {
        sleep_s(timeout_s);
    }
    int st;
    pid_t r = waitpid(j->pid, &st, WNOHANG);
    if (r == j->pid || (r < 0 && errno == ECHILD)) {
        j->exited = 1;
        j->status = r == j->pid ? st : 0;
        /* what the ranks wrote last (bounded: a grandchild may hold the pipe open) */
        for (int k = 0; j->fd >= 0 && k < 1000 && drain(j, 20, out, ctx) == 1; k++)
            ;
        if (j->fd >= 0)
            close(j->fd);
        j->fd = -1;
        if (j->line_len) {
            j->line[j->line_len] = 0;
            scan_line(j, j->line);
            j->line_len = 0;
        }
    }
}

void lmc_job_signal(const lmc_job *j, int sig)
{
    if (j->pid > 0 && !j->exited)
        kill(j->pid, sig);
}

lmc_job_end lmc_job_result(const lmc_job *j, int *code)
{
    *code = WIFEXITED(j->status) ? WEXITSTATUS(j->status) : WIFSIGNALED(j->status) ? 128 + WTERMSIG(j->status) : -1;
    if (j->died_rank >= 0)
        return LMC_JOB_RANK_DIED;
    if (j->node_lost)
        return LMC_JOB_NODE_LOST;
    if (j->aborted)
        return LMC_JOB_ABORTED;
    if (WIFSIGNALED(j->status))
        return LMC_JOB_LAUNCHER;
    return *code == 0 ? LMC_JOB_OK : LMC_JOB_FAILED;
}
