/* follow.c: a tensor-parallel engine runs its passes on every rank of the
 * group together. Rank 0 leads: the program (generate, serve) drives it as
 * any engine, and each prefill or decode call is first broadcast to the
 * group (the call and its token arrays); the other ranks follow, running
 * the same calls, until the leader's engine closes. Sampling, tokenizing
 * and HTTP happen on rank 0 only. */
#include "infer/engine_internal.h"

#include <stdlib.h>

enum { CMD_STOP, CMD_PREFILL, CMD_DECODE };

static int leads(const lmc_engine *e) { return e->tp_comm && e->tp_comm->rank == 0; }

static lmc_status lead(lmc_engine *e, int op, int a, int n, const int *x, const int *y)
{
    lmc_comm *c = e->tp_comm;
    if (!leads(e))
        return LMC_OK;
    int hdr[3] = {op, a, n};
    LMC_TRY(c->ops->broadcast(c, hdr, sizeof hdr, 0));
    if (x && n > 0)
        LMC_TRY(c->ops->broadcast(c, (void *)x, (size_t)n * sizeof(int), 0));
    if (y && n > 0)
        LMC_TRY(c->ops->broadcast(c, (void *)y, (size_t)n * sizeof(int), 0));
    return LMC_OK;
}

lmc_status lmc_engine_prefill(lmc_engine *e, int slot, const int *ids, int n, float *logits)
{
    if (n >= 1 && n <= e->ctx) /* a bad call fails on the leader alone, before anything is sent */
        LMC_TRY(lead(e, CMD_PREFILL, slot, n, ids, NULL));
    return lmc_engine_prefill_local(e, slot, ids, n, logits);
}

lmc_status lmc_engine_decode(lmc_engine *e, int nb, const int *tokens, const int *pos, float *logits)
{
    if (nb >= 1 && nb <= e->slots)
        LMC_TRY(lead(e, CMD_DECODE, nb, nb, tokens, pos));
    return lmc_engine_decode_local(e, nb, tokens, pos, logits);
}

void lmc_engine_release_followers(lmc_engine *e)
{
    (void)lead(e, CMD_STOP, 0, 0, NULL, NULL);
}

lmc_status lmc_engine_follow(lmc_engine *e)
{
    lmc_comm *c = e->tp_comm;
    if (!c || c->rank == 0)
        return LMC_OK;
    size_t most = (size_t)(e->ctx > e->slots ? e->ctx : e->slots);
    int *x = malloc(most * sizeof(int)), *y = malloc(most * sizeof(int)), hdr[3];
    lmc_status s = x && y ? LMC_OK : lmc_err(LMC_ENOMEM, "out of memory");
    while (s == LMC_OK) {
        c->idle = 1; /* the next request may take any time to come */
        s = c->ops->broadcast(c, hdr, sizeof hdr, 0);
        c->idle = 0;
        if (s || hdr[0] == CMD_STOP)
            break;
        if ((hdr[0] != CMD_PREFILL && hdr[0] != CMD_DECODE) || hdr[2] < 1 || (size_t)hdr[2] > most) {
            s = lmc_err(LMC_ECOMM, "tensor-parallel engine: rank 0 sent a call this rank cannot run (%d, %d, %d)",
                        hdr[0], hdr[1], hdr[2]);
            break;
        }
        s = c->ops->broadcast(c, x, (size_t)hdr[2] * sizeof(int), 0);
        if (s == LMC_OK && hdr[0] == CMD_DECODE)
            s = c->ops->broadcast(c, y, (size_t)hdr[2] * sizeof(int), 0);
        if (s == LMC_OK)
            s = hdr[0] == CMD_PREFILL ? lmc_engine_prefill_local(e, hdr[1], x, hdr[2], e->h_logits)
                                      : lmc_engine_decode_local(e, hdr[1], x, y, e->h_logits);
    }
    free(x);
    free(y);
    return s;
}
