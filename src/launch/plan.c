/* plan.c: how many ranks a start uses, on which hosts, and the --batch and
 * --grad-accum that keep the global batch.
 *
 * The global batch is --batch x --grad-accum x data-parallel replicas
 * sequences (docs/distributed.md); each micro-batch's gradient is scaled by
 * 1 / global tokens and the replicas' gradients summed, so any split of the
 * same sequences gives the same step within float noise. A start keeps the
 * micro-batch when it can (memory was sized for it) and changes the number
 * of micro-batches; ranks that would leave an uneven split stay idle. */
#include "launch/launch_internal.h"

#include <stdlib.h>
#include <string.h>

lmc_status lmc_launch_split_batch(long long global, int batch, int group, int ranks, lmc_launch_split *out)
{
    memset(out, 0, sizeof *out);
    if (global <= 0 || batch <= 0 || group <= 0 || ranks <= 0)
        return lmc_err(LMC_EINVAL, "global batch %lld, --batch %d, group %d, ranks %d: all must be positive", global,
                       batch, group, ranks);
    if (ranks % group)
        return lmc_err(LMC_ERANGE, "%d ranks are not a whole number of model replicas of %d ranks (--tp x --pp)",
                       ranks, group);
    int dp = ranks / group;
    for (int b = batch; b >= 1; b--)
        if (global % ((long long)b * dp) == 0 && global / ((long long)b * dp) <= (1 << 20)) {
            *out = (lmc_launch_split){.ranks = ranks, .dp = dp, .batch = b, .accum = (int)(global / ((long long)b * dp))};
            return LMC_OK;
        }
    return lmc_err(LMC_ERANGE, "the global batch of %lld sequences does not split evenly over %d data-parallel "
                   "replicas with a micro-batch of at most --batch %d", global, dp, batch);
}

lmc_host_health *lmc_health_of(lmc_health *hl, const char *name)
{
    for (int i = 0; i < hl->n; i++)
        if (!strcmp(hl->h[i].name, name))
            return &hl->h[i];
    lmc_host_health *nh = realloc(hl->h, (size_t)(hl->n + 1) * sizeof *nh);
    if (!nh)
        return NULL;
    hl->h = nh;
    nh = &hl->h[hl->n];
    memset(nh, 0, sizeof *nh);
    nh->name = lmc_strdup(name);
    if (!nh->name)
        return NULL;
    hl->n++;
    return nh;
}

void lmc_health_free(lmc_health *hl)
{
    for (int i = 0; i < hl->n; i++)
        free(hl->h[i].name);
    free(hl->h);
    hl->h = NULL;
    hl->n = 0;
}

void lmc_launch_plan_free(lmc_launch_plan *p)
{
    for (int i = 0; i < p->nhosts; i++)
        free(p->names[i]);
    free(p->names);
    free(p->ranks);
    memset(p, 0, sizeof *p);
}

/* Usable slots of each host: listed less lost, none when excluded. */
static lmc_status usable(const lmc_hostfile *hf, lmc_health *hl, int *slots, int *total)
{
    *total = 0;
    for (int i = 0; i < hf->n; i++) {
        lmc_host_health *h = lmc_health_of(hl, hf->hosts[i].name);
        if (!h)
            return lmc_err(LMC_ENOMEM, "out of memory");
        slots[i] = h->excluded ? 0 : hf->hosts[i].slots - h->lost;
        slots[i] = slots[i] < 0 ? 0 : slots[i];
        *total += slots[i];
    }
    return LMC_OK;
}

/* The most ranks in [lo, avail] that split the batch (the first start
 * fixes the batch: any multiple of the group). */
static lmc_status most_ranks(const lmc_plan_rule *r, int avail, lmc_launch_split *sp)
{
    int lo = r->min_ranks > r->group * r->min_dp ? r->min_ranks : r->group * r->min_dp;
    for (int n = avail - avail % r->group; n >= lo && n > 0; n -= r->group) {
        long long global = r->global ? r->global : (long long)r->batch * r->accum * (n / r->group);
        if (lmc_launch_split_batch(global, r->batch, r->group, n, sp) == LMC_OK)
            return LMC_OK;
    }
    if (avail < lo)
        return lmc_err(LMC_ERANGE, "%d usable slot%s, fewer than the %d rank%s needed (--min-ranks %d%s%s)", avail,
                       avail == 1 ? "" : "s", lo, lo == 1 ? "" : "s", r->min_ranks, r->group > 1 ? ", --tp x --pp" : "",
                       r->min_dp > 1 ? ", ZeRO-3 needs 2 replicas" : "");
    return lmc_err(LMC_ERANGE, "the global batch of %lld sequences does not split evenly over any rank count from "
                   "%d to %d (micro-batch at most --batch %d, replicas of %d ranks)", r->global, lo, avail, r->batch,
                   r->group);
}

lmc_status lmc_launch_plan_make(const lmc_hostfile *hf, lmc_health *hl, const lmc_plan_rule *r, lmc_launch_plan *p)
{
    memset(p, 0, sizeof *p);
    int *slots = calloc((size_t)hf->n + 1, sizeof *slots);
    p->names = calloc((size_t)hf->n + 1, sizeof *p->names);
    p->ranks = calloc((size_t)hf->n + 1, sizeof *p->ranks);
    lmc_status s = slots && p->names && p->ranks ? usable(hf, hl, slots, &p->avail) : lmc_err(LMC_ENOMEM, "out of memory");
    if (s == LMC_OK)
        s = most_ranks(r, p->avail, &p->split);
    for (int i = 0, left = p->split.ranks; s == LMC_OK && i < hf->n && left > 0; i++) {
        int take = slots[i] < left ? slots[i] : left;
        if (take == 0)
            continue;
        p->names[p->nhosts] = lmc_strdup(hf->hosts[i].name);
        if (!p->names[p->nhosts])
            s = LMC_ENOMEM;
        p->ranks[p->nhosts++] = take;
        left -= take;
    }
    free(slots);
    if (s)
        lmc_launch_plan_free(p);
    return s;
}

int lmc_launch_plan_same(const lmc_launch_plan *a, const lmc_launch_plan *b)
{
    if (a->nhosts != b->nhosts || a->split.ranks != b->split.ranks || a->split.batch != b->split.batch)
        return 0;
    for (int i = 0; i < a->nhosts; i++)
        if (strcmp(a->names[i], b->names[i]) || a->ranks[i] != b->ranks[i])
            return 0;
    return 1;
}

const char *lmc_launch_plan_host(const lmc_launch_plan *p, int rank)
{
    for (int i = 0; i < p->nhosts; i++) {
        if (rank < p->ranks[i])
            return p->names[i];
        rank -= p->ranks[i];
    }
    return NULL;
}

void lmc_launch_plan_describe(const lmc_launch_plan *p, char *buf, size_t n)
{
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; i < p->nhosts && at < n; i++) {
        int w = snprintf(buf + at, n - at, "%s%s:%d", i ? " " : "", p->names[i], p->ranks[i]);
        at += w > 0 ? (size_t)w : 0;
    }
}

lmc_status lmc_launch_plan_write(const lmc_launch_plan *p, const char *path)
{
    lmc_sb sb;
    lmc_sb_init(&sb);
    lmc_sb_puts(&sb, "# written by lmc launch for one start of the job: the hosts it uses\n");
    for (int i = 0; i < p->nhosts; i++)
        lmc_sb_printf(&sb, "%s slots=%d\n", p->names[i], p->ranks[i]);
    lmc_status s = sb.oom ? lmc_err(LMC_ENOMEM, "out of memory") : lmc_write_file_atomic(path, sb.s, sb.len);
    lmc_sb_free(&sb);
    return s;
}
