/* vocab.c: the vocabulary-parallel classifier (Megatron-LM). Each rank of a
 * tensor-parallel group holds rows [v0, v0 + vrows) of the head, computes
 * its columns of the logits, and the softmax cross-entropy is assembled
 * from per-row statistics summed over the group (max, sum of exps, the
 * target's logit), so the full (N, vocabulary) logits never exist on any
 * rank. Only generation gathers them, for B rows. */
#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HEAD lmc_model_tensor(m, m->unit_params, -1, LMC_T_HEAD)

static lmc_status rows_over_group(lmc_model *m, double *x, int n, int op_max)
{
    double t0 = lmc_now();
    lmc_status s = m->tp_comm->ops->allreduce_host(m->tp_comm, x, n, op_max);
    m->tp_s += lmc_now() - t0;
    return s;
}

/* stats column `col` of the device statistics into host doubles */
static void stats_down(lmc_model *m, int N, int col, double *out)
{
    m->be->ops->download(m->be, m->h_xstats, m->xstats, 2 * (size_t)N * sizeof(float));
    for (int r = 0; r < N; r++)
        out[r] = m->h_xstats[2 * r + col];
}

/* column 0 of the device statistics from host doubles */
static void stats_up(lmc_model *m, int N, const double *in)
{
    for (int r = 0; r < N; r++)
        m->h_xstats[2 * r] = (float)in[r];
    m->be->ops->upload(m->be, m->xstats, m->h_xstats, 2 * (size_t)N * sizeof(float));
}

/* losses (N) and, in training, the logits replaced by dloss * dlogits */
static lmc_status vocab_xent(lmc_model *m, int N, lmc_fwd_mode mode, float dloss)
{
    lmc_backend *be = m->be;
    double *mx = m->h_rows, *tl = mx + N, *sum = tl + N;
    float *losses = m->h_xstats; /* reused once the statistics are read */
    be->ops->xent_part(be, m->xstats, m->a.logits, m->targets, N, m->vvalid, m->vrows, m->v0, dloss, 0);
    stats_down(m, N, 0, mx);
    stats_down(m, N, 1, tl);
    LMC_TRY(rows_over_group(m, mx, N, 1));
    LMC_TRY(rows_over_group(m, tl, N, 0));
    stats_up(m, N, mx);
    be->ops->xent_part(be, m->xstats, m->a.logits, m->targets, N, m->vvalid, m->vrows, m->v0, dloss, 1);
    stats_down(m, N, 1, sum);
    LMC_TRY(rows_over_group(m, sum, N, 0));
    for (int r = 0; r < N; r++)
        mx[r] += log(sum[r]); /* now the log-sum-exp */
    if (mode == LMC_FWD_TRAIN) {
        stats_up(m, N, mx);
        be->ops->xent_part(be, m->xstats, m->a.logits, m->targets, N, m->vvalid, m->vrows, m->v0, dloss, 2);
    }
    for (int r = 0; r < N; r++)
        losses[r] = (float)(mx[r] - tl[r]);
    be->ops->upload(be, m->a.losses, losses, (size_t)N * sizeof(float));
    return LMC_OK;
}

/* Each sequence's last row of logits, gathered from the group into (B, Vp). */
static lmc_status gather_last(lmc_model *m, int B, int T)
{
    int C = m->cfg.dim, Vl = m->vrows, Vp = m->cfg.vocab_padded, P = m->tp;
    for (int b = 0; b < B; b++)
        lmc_model_linear(m, m->a.logits + (size_t)b * Vl, lmc_model_head_input(m) + ((size_t)b * T + T - 1) * C, HEAD,
                         NULL, 1, Vl, C, 0);
    size_t part = (size_t)B * Vl;
    float *mine = malloc(part * sizeof(float)), *all = malloc(part * P * sizeof(float));
    float *rows = malloc((size_t)B * Vp * sizeof(float));
    lmc_status s = mine && all && rows ? LMC_OK : lmc_err(LMC_ENOMEM, "out of memory gathering logits");
    if (s == LMC_OK) {
        m->be->ops->download(m->be, mine, m->a.logits, part * sizeof(float));
        s = m->tp_comm->ops->allgather_host(m->tp_comm, mine, all, part * sizeof(float));
    }
    for (int r = 0; s == LMC_OK && r < P; r++)
        for (int b = 0; b < B; b++)
            memcpy(rows + (size_t)b * Vp + (size_t)r * Vl, all + (size_t)r * part + (size_t)b * Vl,
                   (size_t)Vl * sizeof(float));
    if (s == LMC_OK)
        m->be->ops->upload(m->be, m->a.logits, rows, (size_t)B * Vp * sizeof(float));
    free(mine), free(all), free(rows);
    return s;
}

void lmc_model_vocab_forward(lmc_model *m, int B, int T, lmc_fwd_mode mode, float dloss)
{
    int N = B * T;
    lmc_status s;
    if (mode == LMC_FWD_LAST_LOGITS) {
        s = gather_last(m, B, T);
    } else {
        lmc_model_linear(m, m->a.logits, lmc_model_head_input(m), HEAD, NULL, N, m->vrows, m->cfg.dim, 0);
        s = vocab_xent(m, N, mode, dloss);
    }
    if (s && !m->tp_status)
        m->tp_status = s;
}
