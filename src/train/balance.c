/* balance.c: how many micro-batches each rank runs in a step.
 *
 * The global batch is always grad_accum x world micro-batches of B
 * sequences. Without balancing every rank runs grad_accum of them. With
 * --balance auto the first BALANCE_STEPS steps of a run split them equally
 * while every rank measures its time per micro-batch; from then on the split
 * follows speed, so that a job mixing fast and slow chips does not run at
 * the pace of the slowest. Rank r runs the contiguous micro-batch indices
 * [first_r, first_r + count_r): the data of a step and its gradient (every
 * micro-batch weighs 1 / global tokens) are those of the equal split, up to
 * summation order. The counts are a pure function of measurements that every
 * rank holds identically (one allgather), so all ranks agree on them without
 * further messages. Measuring once and keeping the split keeps the run
 * reproducible from the log and avoids chasing noise.
 */
#include "train/trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BALANCE_STEPS 2

/* The test hook LMC_TEST_SLOWDOWN=X@R (tests and bench/ only, never a
 * user's option): data-parallel rank R runs X times slower, as on a slower
 * chip. */
static lmc_status test_slowdown(lmc_trainer *tr, int world)
{
    const char *v = getenv("LMC_TEST_SLOWDOWN");
    tr->bal.slowdown = 1, tr->bal.slow_rank = -1;
    if (!v || !v[0])
        return LMC_OK;
    char *at = NULL, *end = NULL;
    double x = strtod(v, &at);
    long r = at && *at == '@' ? strtol(at + 1, &end, 10) : -1;
    if (at == v || !end || end == at + 1 || *end || !(x >= 1 && x <= 100) || r < 0 || r >= world)
        return lmc_err(LMC_EINVAL, "LMC_TEST_SLOWDOWN = '%.40s': give X@R, a factor X in [1, 100] and a rank R in "
                       "[0, %d)", v, world);
    tr->bal.slowdown = x, tr->bal.slow_rank = (int)r;
    return LMC_OK;
}

lmc_status lmc_balance_open(lmc_trainer *tr)
{
    const lmc_train_opts *o = tr->o;
    int world = tr->comm->size;
    if (o->balance && strcmp(o->balance, "off") && strcmp(o->balance, "auto"))
        return lmc_err(LMC_EINVAL, "--balance: '%s' is not off or auto", o->balance);
    LMC_TRY(test_slowdown(tr, world));
    tr->bal.mb_count = malloc((size_t)world * sizeof(int));
    tr->bal.mb_ms = malloc((size_t)world * sizeof(double));
    tr->all = calloc((size_t)world, sizeof(lmc_rank_stats));
    if (!tr->bal.mb_count || !tr->bal.mb_ms || !tr->all)
        return lmc_err(LMC_ENOMEM, "out of memory");
    for (int r = 0; r < world; r++) {
        tr->bal.mb_count[r] = o->grad_accum;
        tr->bal.mb_ms[r] = HUGE_VAL;
    }
    tr->bal.measuring = world > 1 && o->balance && !strcmp(o->balance, "auto") ? BALANCE_STEPS : 0;
    return LMC_OK;
}

void lmc_balance_close(lmc_trainer *tr)
{
    free(tr->bal.mb_count);
    free(tr->bal.mb_ms);
    free(tr->all);
    tr->bal.mb_count = NULL;
    tr->bal.mb_ms = NULL;
    tr->all = NULL;
}

int lmc_balance_total(const lmc_trainer *tr) { return tr->o->grad_accum * tr->comm->size; }

int lmc_balance_first(const lmc_trainer *tr)
{
    int first = 0;
    for (int r = 0; r < tr->comm->rank; r++)
        first += tr->bal.mb_count[r];
    return first;
}

/* Test only: the slow rank sleeps (X - 1) times its last forward + backward
 * time (3 x this forward before one was measured), between the forward and
 * the backward so that its gradient buckets are late too, as on a slower
 * chip. */
void lmc_balance_slowdown(lmc_trainer *tr, double forward_s)
{
    if (tr->bal.slowdown <= 1 || tr->comm->rank != tr->bal.slow_rank)
        return;
    double est = tr->bal.fwdbwd_s > 0 ? tr->bal.fwdbwd_s : 3 * forward_s, s = (tr->bal.slowdown - 1) * est;
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Proportional shares rounded down (each finishes no later than the ideal
 * makespan), then the rest one at a time to whichever rank would finish it
 * first: optimal for equal jobs on ranks of different speeds. */
void lmc_balance_assign(const double *ms, int world, int total, int *count)
{
    double inv = 0;
    for (int r = 0; r < world; r++)
        inv += 1.0 / (ms[r] > 1e-9 ? ms[r] : 1e-9);
    int used = 0;
    for (int r = 0; r < world; r++) {
        double share = total * (1.0 / (ms[r] > 1e-9 ? ms[r] : 1e-9)) / inv;
        count[r] = (int)floor(share);
        if (used + count[r] > total)
            count[r] = total - used;
        used += count[r];
    }
    while (used < total) {
        int best = 0;
        for (int r = 1; r < world; r++)
            if ((count[r] + 1) * ms[r] < (count[best] + 1) * ms[best])
                best = r;
        count[best]++;
        used++;
    }
}

/* After a step's statistics are gathered: measure, and assign once measured. */
void lmc_balance_update(lmc_trainer *tr)
{
    if (tr->bal.measuring <= 0)
        return;
    int world = tr->comm->size;
    for (int r = 0; r < world; r++) {
        const lmc_rank_stats *s = &tr->all[r];
        double per = s->mb > 0 ? s->compute_ms / s->mb : HUGE_VAL;
        if (per < tr->bal.mb_ms[r])
            tr->bal.mb_ms[r] = per;
    }
    if (--tr->bal.measuring == 0)
        lmc_balance_assign(tr->bal.mb_ms, world, lmc_balance_total(tr), tr->bal.mb_count);
}
