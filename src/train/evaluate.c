/* evaluate.c: validation loss and text samples during training. */
#include "lmc/sampler.h"
#include "lmc/tokenizer.h"
#include "train/trainer.h"

#include <math.h>
#include <stdlib.h>

/* Bytes of text the targets stand for (bits per byte needs a tokenizer). */
static double target_bytes(const lmc_trainer *tr, const int *targets, size_t n)
{
    double bytes = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        lmc_tok_token_bytes(tr->tok, targets[i], &len);
        bytes += (double)len;
    }
    return bytes;
}

/* Mean loss over eval_batches micro-batches of the validation stream, in
 * order, micro-batch i on rank i % world; bits per byte when a tokenizer
 * says how many bytes the targets were. */
lmc_status lmc_trainer_eval(lmc_trainer *tr, float *val_loss, float *val_bpb)
{
    const lmc_train_opts *o = tr->o;
    int B = o->batch, T = o->seq, M = o->eval_batches > 0 ? o->eval_batches : 1;
    double acc[3] = {0, 0, 0};
    int W = tr->comm->size, rounds = tr->zero == 3 || tr->ep > 1 ? (M + W - 1) / W : 0;
    for (int r = (M - tr->comm->rank + W - 1) / W; r < rounds; r++) { /* ZeRO-3, --ep: join the ranks with one more batch */
        if (tr->pp == 1 && tr->ep == 1) {
            lmc_model_walk_units(tr->m, 0);
            continue;
        }
        /* a pipeline's chunks gather in their own order, experts exchange rows: run one (batch 0, unused) */
        LMC_TRY(lmc_tokens_batch(&tr->val, 0, B, T, 0, 0, tr->cfg.vocab, tr->inputs, tr->targets));
        LMC_TRY(lmc_model_set_batch(tr->m, tr->inputs, tr->targets, B, T, o->val_data));
        if (tr->pp > 1)
            LMC_TRY(lmc_pipe_forward(tr, B, T, LMC_FWD_LOSS));
        else
            lmc_model_forward(tr->m, B, T, LMC_FWD_LOSS, 0);
    }
    for (int i = tr->comm->rank; i < M; i += tr->comm->size) {
        LMC_TRY(lmc_tokens_batch(&tr->val, (uint64_t)i * B, B, T, 0, 0, tr->cfg.vocab, tr->inputs, tr->targets));
        LMC_TRY(lmc_model_set_batch(tr->m, tr->inputs, tr->targets, B, T, o->val_data));
        if (tr->pp > 1) {
            LMC_TRY(lmc_pipe_forward(tr, B, T, LMC_FWD_LOSS));
            if (tr->pp_rank < tr->pp - 1)
                continue; /* the last stage has the loss */
        } else {
            lmc_model_forward(tr->m, B, T, LMC_FWD_LOSS, 0);
            LMC_TRY(tr->m->tp_status);
        }
        float loss = lmc_model_mean_loss(tr->m, B, T);
        acc[0] += loss;
        if (tr->tok) {
            acc[1] += (double)loss * B * T;
            acc[2] += target_bytes(tr, tr->targets, (size_t)B * T);
        }
    }
    LMC_TRY(tr->comm->ops->allreduce_host(tr->comm, acc, 3, 0));
    if (tr->ppc)
        LMC_TRY(tr->ppc->ops->allreduce_host(tr->ppc, acc, 3, 0));
    *val_loss = (float)(acc[0] / M);
    *val_bpb = acc[2] > 0 ? (float)(acc[1] / (acc[2] * M_LN2)) : -1;
    return LMC_OK;
}

/* The next token after the batch of one sequence of len tokens: from the
 * model, or under --pp from the last stage, which tells the others. */
static lmc_status sample_next(lmc_trainer *tr, int len, const lmc_sampling *s, lmc_rng *rng, float *logits,
                              float *scratch, int *next)
{
    int V = tr->cfg.vocab, last = tr->pp_rank == tr->pp - 1;
    if (tr->pp > 1)
        LMC_TRY(lmc_pipe_forward(tr, 1, len, LMC_FWD_LAST_LOGITS));
    else
        lmc_model_forward(tr->m, 1, len, LMC_FWD_LAST_LOGITS, 0);
    if (last) {
        tr->be->ops->download(tr->be, logits, tr->m->a.logits, (size_t)V * sizeof(float));
        *next = lmc_sample_token(logits, V, s, rng, scratch);
    }
    if (tr->pp > 1) { /* the others add nothing (a host reduction: any communicator has one) */
        double v = last ? *next : 0;
        LMC_TRY(tr->ppc->ops->allreduce_host(tr->ppc, &v, 1, 0));
        *next = (int)v;
    }
    return LMC_OK;
}

/* Generates sample_tokens tokens after an end-of-text token by full
 * recomputation (the fast engine is src/infer): rank 0 only, or under ZeRO-3
 * every rank in step, each gathering the parameters with the others and
 * drawing the same tokens. */
lmc_status lmc_trainer_sample(lmc_trainer *tr, lmc_sb *text)
{
    const lmc_train_opts *o = tr->o;
    int T = o->seq, V = tr->cfg.vocab, n = 1, want = o->sample_tokens;
    int *ids = calloc((size_t)T, sizeof(int));
    float *logits = malloc((size_t)tr->cfg.vocab_padded * sizeof(float)), *scratch = malloc(2 * (size_t)V * sizeof(float));
    if (!ids || !logits || !scratch) {
        free(ids), free(logits), free(scratch);
        return lmc_err(LMC_ENOMEM, "out of memory sampling");
    }
    int eot = tr->tok ? lmc_tok_special_id(tr->tok, "<|endoftext|>") : -1;
    ids[0] = eot >= 0 ? eot : 0; /* a sample starts a new document */
    lmc_rng rng;
    lmc_rng_seed(&rng, lmc_hash64(tr->seed ^ (uint64_t)tr->step));
    lmc_sampling s = {.temperature = 1.0f, .top_k = 40, .top_p = 1.0f};
    lmc_status st = LMC_OK;
    for (int produced = 0; produced < want && st == LMC_OK; produced++) {
        int start = n > T ? n - T : 0, len = n - start;
        st = lmc_model_set_batch(tr->m, ids + start, NULL, 1, len, "sample");
        if (st)
            break;
        int next = 0;
        st = sample_next(tr, len, &s, &rng, logits, scratch, &next);
        if (st)
            break;
        if (tr->tok)
            st = lmc_tok_decode(tr->tok, &next, 1, text);
        else
            lmc_sb_printf(text, "%s%d", produced ? " " : "", next);
        if (n < T)
            ids[n++] = next;
        else {
            for (int i = 1; i < T; i++)
                ids[i - 1] = ids[i];
            ids[T - 1] = next;
        }
    }
    free(ids);
    free(logits);
    free(scratch);
    return st;
}
