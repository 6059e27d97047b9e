/* moe_ep.c: expert parallelism (--ep P): the E experts split over a group
 * of P ranks, E/P consecutive experts each; each rank routes its own
 * tokens, and the rows routed to an expert travel to its owner and back by
 * all-to-all (GShard, Megatron-LM's alltoall dispatcher).
 *
 * A layer's forward, on every rank of the group at once (P = 3, rank q
 * owning experts [q El, (q + 1) El)):
 *   sender: rows in expert order (moe.c's exg), so each owner's rows are one
 *           block; every rank's rows per expert are exchanged first
 *           (allgather_host), then the rows (alltoallv) into `raw`,
 *           source-major: [from 0: its rows of my experts][from 1: ...]...
 *   owner:  raw permuted to expert-major (gather_rows by perm) into xr, each
 *           of its experts one matmul per projection over its rows (the
 *           same code as one process, moe.c's experts_forward), the outputs
 *           permuted back (by inv) and returned (alltoallv) into the
 *           sender's ey, where moe.c adds them to the tokens, weighted.
 * Backward is the same trip with the rows' gradients: d(y) there, d(x)
 * back, the owner's weight gradients accumulating over every sender's rows.
 *
 * Each rank holds only its own experts' weights and gradients (the model's
 * layout is lmc_layout_build_ep's: E/P experts per layer, indexed from 0
 * here), so the AdamW state of the others is not on it either; the trainer
 * sums each expert's gradient over the ranks holding the same experts and
 * joins the experts into whole tensors for checkpoints (src/train/experts_ep.c,
 * save.c). The owner keeps its rows'
 * activations per layer for up to P x N x k rows (dropless: every row of
 * the group may choose its experts). */
#include "model/moe.h"

#include <stdlib.h>
#include <string.h>

struct lmc_moe_ep {
    int P, q, El, cap;      /* ranks, this rank's index, experts per rank, owner rows at most */
    int *cnt;               /* [L][P x E] every rank's rows per expert, this step's layer */
    int *Q;                 /* [L] rows this rank received */
    int *eoff;              /* [L][El + 1] its experts' rows in expert-major order */
    int *h_perm;            /* host (2 cap) */
    size_t *scount, *rcount; /* (P) floats to and from each rank */
    int *base;              /* (P) scratch */
    /* device: per layer the kept rows (inputs, pre-activations, activations)
     * and the permutations [perm | inv]; scratch shared by the layers */
    float *xr, *hr, *ar, *raw, *s1, *da, *dh;
    int *perm;
    double a2a_s, a2a_values; /* seconds in the exchanges and floats sent to other ranks, so far */
};

lmc_status lmc_moe_ep_check(const lmc_model_config *c, int ep)
{
    if (ep <= 1)
        return LMC_OK;
    if (c->n_expert <= 0)
        return lmc_err(LMC_EINVAL, "--ep %d splits the experts of a mixture of experts over ranks, but this model "
                       "is dense (num_local_experts 0)", ep);
    if (c->n_expert % ep)
        return lmc_err(LMC_EINVAL, "--ep %d must divide the model's %d experts (num_local_experts): each rank "
                       "holds the same number of them", ep, c->n_expert);
    return LMC_OK;
}

lmc_status lmc_moe_ep_open(lmc_model *m)
{
    const lmc_model_config *c = &m->cfg;
    lmc_comm *g = m->ep_comm;
    if (m->ep <= 1)
        return LMC_OK;
    LMC_TRY(lmc_moe_ep_check(c, m->ep));
    if (!g || g->size != m->ep)
        return lmc_err(LMC_EINVAL, "--ep %d: the expert-parallel group has %d ranks", m->ep, g ? g->size : 0);
    if (!g->ops->alltoallv)
        return lmc_err(LMC_EUNSUPPORTED, "--ep %d: --dist %s has no all-to-all (expert parallelism runs on mpi and "
                       "nccl)", m->ep, g->name);
    lmc_moe_ep *x = calloc(1, sizeof *x);
    if (!x)
        return lmc_err(LMC_ENOMEM, "out of memory");
    m->moe->ep = x;
    size_t L = (size_t)c->n_layer, P = (size_t)m->ep, E = (size_t)c->n_expert, C = (size_t)c->dim;
    size_t F = (size_t)c->moe_ffn;
    x->P = m->ep, x->q = g->rank, x->El = c->n_expert / m->ep;
    x->cap = m->ep * m->B * m->T * c->top_k;
    size_t cap = (size_t)x->cap;
    x->cnt = calloc(L * P * E, sizeof(int));
    x->Q = calloc(L, sizeof(int));
    x->eoff = calloc(L * (x->El + 1), sizeof(int));
    x->h_perm = malloc(2 * cap * sizeof(int));
    x->scount = calloc(2 * P, sizeof(size_t));
    x->base = calloc(P, sizeof(int));
    lmc_backend *be = m->be;
    x->xr = be->ops->alloc(be, L * cap * C * sizeof(float));
    x->hr = be->ops->alloc(be, L * cap * 2 * F * sizeof(float));
    x->ar = be->ops->alloc(be, L * cap * F * sizeof(float));
    x->perm = be->ops->alloc(be, L * 2 * cap * sizeof(int));
    x->raw = be->ops->alloc(be, cap * C * sizeof(float));
    x->s1 = be->ops->alloc(be, cap * C * sizeof(float));
    x->da = m->training ? be->ops->alloc(be, cap * F * sizeof(float)) : NULL;
    x->dh = m->training ? be->ops->alloc(be, cap * 2 * F * sizeof(float)) : NULL;
    if (!x->cnt || !x->Q || !x->eoff || !x->h_perm || !x->scount || !x->base || !x->xr || !x->hr || !x->ar || !x->perm ||
        !x->raw || !x->s1 || (m->training && (!x->da || !x->dh)))
        return lmc_err(LMC_ENOMEM, "--ep %d: out of memory for the owner's rows (%zu rows of %d experts x %d layers)",
                       m->ep, cap, x->El, c->n_layer);
    x->rcount = x->scount + P;
    return LMC_OK;
}

void lmc_moe_ep_close(lmc_model *m)
{
    lmc_moe_ep *x = m->moe ? m->moe->ep : NULL;
    if (!x)
        return;
    void *dev[] = {x->xr, x->hr, x->ar, x->perm, x->raw, x->s1, x->da, x->dh};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++)
        if (dev[i])
            m->be->ops->free(m->be, dev[i]);
    free(x->cnt), free(x->Q), free(x->eoff), free(x->h_perm), free(x->scount), free(x->base);
    free(x);
    m->moe->ep = NULL;
}

void lmc_moe_ep_stats(const lmc_model *m, double *a2a_s, double *values)
{
    const lmc_moe_ep *x = m->moe ? m->moe->ep : NULL;
    *a2a_s = x ? x->a2a_s : 0;
    *values = x ? x->a2a_values : 0;
}

/* Layer l's kept owner rows: inputs, pre-activations, activations, [perm | inv] */
static float *xr_of(const lmc_model *m, int l) { lmc_moe_ep *x = m->moe->ep; return x->xr + (size_t)l * x->cap * m->cfg.dim; }
static float *hr_of(const lmc_model *m, int l) { lmc_moe_ep *x = m->moe->ep; return x->hr + (size_t)l * x->cap * 2 * m->cfg.moe_ffn; }
static float *ar_of(const lmc_model *m, int l) { lmc_moe_ep *x = m->moe->ep; return x->ar + (size_t)l * x->cap * m->cfg.moe_ffn; }
static int *perm_of(const lmc_model *m, int l) { lmc_moe_ep *x = m->moe->ep; return x->perm + (size_t)l * 2 * x->cap; }

/* This layer's floats to and from each rank, from every rank's rows per
 * expert (cnt, P x E). */
static void counts(lmc_moe_ep *x, const int *cnt, int E, int C)
{
    for (int s = 0; s < x->P; s++) {
        size_t to = 0, from = 0;
        for (int j = 0; j < x->El; j++) {
            to += (size_t)cnt[(size_t)x->q * E + s * x->El + j];
            from += (size_t)cnt[(size_t)s * E + x->q * x->El + j];
        }
        x->scount[s] = to * C, x->rcount[s] = from * C;
    }
}

/* Every rank's rows per expert (one allgather), then the counts, the
 * owner's expert offsets and its permutations: perm[i] = the source-major
 * position of expert-major row i, inv the reverse. */
static lmc_status plan(lmc_model *m, int l, const int *off)
{
    lmc_moe_ep *x = m->moe->ep;
    int P = x->P, E = m->cfg.n_expert, El = x->El, C = m->cfg.dim, *cnt = x->cnt + (size_t)l * P * E;
    int *mine = x->h_perm; /* scratch until the permutation is built */
    for (int e = 0; e < E; e++)
        mine[e] = off[e + 1] - off[e];
    LMC_TRY(m->ep_comm->ops->allgather_host(m->ep_comm, mine, cnt, (size_t)E * sizeof(int)));
    counts(x, cnt, E, C);
    int *eoff = x->eoff + (size_t)l * (El + 1), *base = x->base, Q = 0;
    for (int s = 0; s < P; s++) {
        base[s] = Q;
        Q += (int)(x->rcount[s] / C);
    }
    x->Q[l] = Q;
    int *perm = x->h_perm, *inv = x->h_perm + x->cap, i = 0;
    eoff[0] = 0;
    for (int j = 0; j < El; j++) {
        for (int s = 0; s < P; s++) {
            int n = cnt[(size_t)s * E + x->q * El + j];
            for (int r = 0; r < n; r++, i++)
                perm[i] = base[s] + r, inv[base[s] + r] = i;
            base[s] += n; /* the source's next expert follows */
        }
        eoff[j + 1] = i;
    }
    m->be->ops->upload(m->be, perm_of(m, l), x->h_perm, 2 * (size_t)x->cap * sizeof(int));
    return LMC_OK;
}

/* One exchange: send (in scount's blocks) to the owners, recv (rcount's);
 * back = 1 swaps the counts (the rows go home). */
static void exchange(lmc_model *m, const float *send, float *recv, int back)
{
    lmc_moe_ep *x = m->moe->ep;
    if (m->tp_status)
        return;
    const size_t *sc = back ? x->rcount : x->scount, *rc = back ? x->scount : x->rcount;
    double t0 = lmc_now();
    m->tp_status = m->ep_comm->ops->alltoallv(m->ep_comm, send, sc, recv, rc);
    x->a2a_s += lmc_now() - t0;
    for (int s = 0; s < x->P; s++)
        x->a2a_values += s == x->q ? 0 : (double)sc[s];
}

void lmc_moe_ep_forward(lmc_model *m, lmc_layer_acts *la, int l, int N)
{
    lmc_moe_ep *x = m->moe->ep;
    lmc_backend *be = m->be;
    int C = m->cfg.dim, *perm = perm_of(m, l);
    if (m->tp_status)
        return;
    lmc_status s = plan(m, l, m->moe->route[l].off);
    if (s) {
        m->tp_status = s;
        return;
    }
    int Q = x->Q[l];
    exchange(m, la->exg, x->raw, 0);
    be->ops->gather_rows(be, xr_of(m, l), x->raw, perm, NULL, Q, C);
    lmc_moe_experts_forward(m, l, 0, x->El, x->eoff + (size_t)l * (x->El + 1), xr_of(m, l), hr_of(m, l),
                            ar_of(m, l), x->s1, Q);
    be->ops->gather_rows(be, x->raw, x->s1, perm + x->cap, NULL, Q, C);
    exchange(m, x->raw, la->ey, 1);
    (void)N;
}

void lmc_moe_ep_backward(lmc_model *m, int l, float *dy)
{
    lmc_moe_ep *x = m->moe->ep;
    lmc_backend *be = m->be;
    int C = m->cfg.dim, Q = x->Q[l], *perm = perm_of(m, l);
    counts(x, x->cnt + (size_t)l * x->P * m->cfg.n_expert, m->cfg.n_expert, C);
    exchange(m, dy, x->raw, 0);
    be->ops->gather_rows(be, x->s1, x->raw, perm, NULL, Q, C);
    lmc_moe_experts_backward(m, l, 0, x->El, x->eoff + (size_t)l * (x->El + 1), x->s1, xr_of(m, l),
                             hr_of(m, l), ar_of(m, l), x->da, x->dh, Q);
    be->ops->gather_rows(be, x->raw, x->s1, perm + x->cap, NULL, Q, C);
    exchange(m, x->raw, dy, 1);
}
