/* order.c: a log's records in step order, one per step. A resumed run
 * appends steps it already logged (from its last checkpoint on): those
 * later records describe the weights that went on, so they win. */
#include "report/report.h"

#include <stdlib.h>

typedef struct {
    long long step;
    int seq; /* position in the file */
} key;

static int by_step_then_seq(const void *pa, const void *pb)
{
    const key *a = pa, *b = pb;
    if (a->step != b->step)
        return a->step < b->step ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

static void drop(lmc_report_point *p)
{
    for (int a = 0; a < LMC_REP_NARRAYS; a++)
        free(p->arr[a].v);
}

lmc_status lmc_rep_sort_steps(lmc_report_run *run)
{
    int n = run->n;
    if (n < 2)
        return LMC_OK;
    key *k = malloc((size_t)n * sizeof *k);
    lmc_report_point *out = malloc((size_t)n * sizeof *out);
    if (!k || !out) {
        free(k);
        free(out);
        return lmc_err(LMC_ENOMEM, "out of memory ordering %d steps", n);
    }
    for (int i = 0; i < n; i++)
        k[i] = (key){run->pts[i].step, i};
    qsort(k, (size_t)n, sizeof *k, by_step_then_seq);
    int m = 0;
    for (int i = 0; i < n; i++) {
        lmc_report_point *p = &run->pts[k[i].seq];
        if (i + 1 < n && k[i + 1].step == k[i].step)
            drop(p); /* a later record of the same step follows */
        else
            out[m++] = *p;
    }
    free(k);
    free(run->pts);
    run->pts = out;
    run->n = m;
    return LMC_OK;
}
