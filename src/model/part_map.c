/* part_map.c: the whole buffer's runs one rank keeps (its tp slices,
 * pipeline stage and experts, under ZeRO-3 its shards of those), sorted, so
 * that a reader walks a file once and touches only what the rank keeps.
 * The runs come from lmc_layout_part_runs, the same description that
 * lmc_layout_tp_copy cuts a whole buffer with. */
#include "lmc/model.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    lmc_part_map *m;
    const lmc_part_window *w;
    int nw;
    int oom;
} builder;

static void push(builder *b, size_t whole, size_t at, size_t n)
{
    lmc_part_map *m = b->m;
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 256;
        lmc_part_run *r = realloc(m->r, cap * sizeof *r);
        if (!r) {
            b->oom = 1;
            return;
        }
        m->r = r, m->cap = cap;
    }
    if (m->n && m->r[m->n - 1].whole + m->r[m->n - 1].n == whole && m->r[m->n - 1].at + m->r[m->n - 1].n == at) {
        m->r[m->n - 1].n += n; /* continues the last run on both sides */
        return;
    }
    m->r[m->n++] = (lmc_part_run){whole, at, n};
}

/* A run of the part, clipped to each window it meets. */
static void add_run(void *ctx, size_t whole, size_t part, size_t n)
{
    builder *b = ctx;
    if (b->oom)
        return;
    if (!b->w) {
        push(b, whole, part, n);
        return;
    }
    for (int i = 0; i < b->nw; i++) {
        const lmc_part_window *w = &b->w[i];
        size_t lo = part > w->begin ? part : w->begin, hi = part + n < w->end ? part + n : w->end;
        if (hi > lo)
            push(b, whole + (lo - part), w->at + (lo - w->begin), hi - lo);
    }
}

static int by_whole(const void *a, const void *b)
{
    size_t x = ((const lmc_part_run *)a)->whole, y = ((const lmc_part_run *)b)->whole;
    return (x > y) - (x < y);
}

lmc_status lmc_part_map_build(const lmc_model_config *c, const lmc_layout *t, int r, const lmc_part_window *w,
                              int nw, lmc_part_map *m)
{
    lmc_layout g;
    memset(m, 0, sizeof *m);
    LMC_TRY(lmc_layout_build(c, &g));
    builder b = {m, w, nw, 0};
    lmc_layout_part_runs(c, &g, t, t->tp, r, add_run, &b);
    size_t total = g.total;
    lmc_layout_free(&g);
    if (b.oom) {
        lmc_part_map_free(m);
        return lmc_err(LMC_ENOMEM, "out of memory listing this rank's part of the model");
    }
    qsort(m->r, m->n, sizeof *m->r, by_whole);
    m->floats = w ? 0 : t->total;
    for (int i = 0; w && i < nw; i++)
        if (w[i].end > w[i].begin && w[i].at + (w[i].end - w[i].begin) > m->floats)
            m->floats = w[i].at + (w[i].end - w[i].begin);
    for (size_t i = 0; i < m->n; i++) /* a layout bug, not a user's: never read one element twice */
        if (m->r[i].whole + m->r[i].n > total || (i && m->r[i - 1].whole + m->r[i - 1].n > m->r[i].whole) ||
            m->r[i].at + m->r[i].n > m->floats) {
            lmc_part_map_free(m);
            return lmc_err(LMC_EINVAL, "internal error: this rank's part of the model overlaps itself or leaves "
                           "the buffer (run %zu)", i);
        }
    return LMC_OK;
}

lmc_part_map lmc_part_map_range(lmc_part_run *run, size_t begin, size_t end)
{
    *run = (lmc_part_run){begin, 0, end > begin ? end - begin : 0};
    return (lmc_part_map){.r = run, .n = end > begin, .cap = 0, .floats = run->n};
}

void lmc_part_map_free(lmc_part_map *m)
{
    if (m->cap) /* a range map's run is the caller's */
        free(m->r);
    memset(m, 0, sizeof *m);
}

size_t lmc_part_map_find(const lmc_part_map *m, size_t b)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->r[mid].whole + m->r[mid].n > b)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

int lmc_part_map_meets(const lmc_part_map *m, size_t b, size_t e)
{
    size_t i = lmc_part_map_find(m, b);
    return i < m->n && m->r[i].whole < e && e > b;
}

size_t lmc_part_map_count(const lmc_part_map *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++)
        n += m->r[i].n;
    return n;
}

void lmc_part_map_gather(const lmc_part_map *m, const float *whole, float *dst)
{
    for (size_t i = 0; i < m->n; i++)
        memcpy(dst + m->r[i].at, whole + m->r[i].whole, m->r[i].n * sizeof(float));
}
