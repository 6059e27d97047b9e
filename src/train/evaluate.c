/* evaluate.c: validation loss and text samples during training. */
#include "infer/open_model.h"
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
        lmc_tok_token_bytes(tr->data.tok, targets[i], &len);
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
    int W = tr->comm->size, rounds = tr->dp.zero == 3 || tr->ex.ep > 1 ? (M + W - 1) / W : 0;
    for (int r = (M - tr->comm->rank + W - 1) / W; r < rounds; r++) { /* ZeRO-3, --ep: join the ranks with one more batch */
        if (tr->pipe.pp == 1 && tr->ex.ep == 1) {
            lmc_model_walk_units(tr->m, 0);
            continue;
        }
        /* a pipeline's chunks gather in their own order, experts exchange rows: run one (batch 0, unused) */
        LMC_TRY(lmc_tokens_batch(&tr->data.val, 0, B, T, 0, 0, tr->cfg.vocab, tr->data.inputs, tr->data.targets));
        LMC_TRY(lmc_model_set_batch(tr->m, tr->data.inputs, tr->data.targets, B, T, o->val_data));
        if (tr->pipe.pp > 1)
            LMC_TRY(lmc_pipe_forward(tr, B, T, LMC_FWD_LOSS));
        else
            lmc_model_forward(tr->m, B, T, LMC_FWD_LOSS, 0);
    }
    for (int i = tr->comm->rank; i < M; i += tr->comm->size) {
        LMC_TRY(lmc_tokens_batch(&tr->data.val, (uint64_t)i * B, B, T, 0, 0, tr->cfg.vocab, tr->data.inputs, tr->data.targets));
        LMC_TRY(lmc_model_set_batch(tr->m, tr->data.inputs, tr->data.targets, B, T, o->val_data));
        if (tr->pipe.pp > 1) {
            LMC_TRY(lmc_pipe_forward(tr, B, T, LMC_FWD_LOSS));
            if (tr->pipe.pp_rank < tr->pipe.pp - 1)
                continue; /* the last stage has the loss */
        } else {
            lmc_model_forward(tr->m, B, T, LMC_FWD_LOSS, 0);
            LMC_TRY(tr->m->tp_status);
        }
        float loss = lmc_model_mean_loss(tr->m, B, T);
        acc[0] += loss;
        if (tr->data.tok) {
            acc[1] += (double)loss * B * T;
            acc[2] += target_bytes(tr, tr->data.targets, (size_t)B * T);
        }
    }
    LMC_TRY(tr->comm->ops->allreduce_host(tr->comm, acc, 3, 0));
    if (tr->pipe.ppc)
        LMC_TRY(tr->pipe.ppc->ops->allreduce_host(tr->pipe.ppc, acc, 3, 0));
    *val_loss = (float)(acc[0] / M);
    *val_bpb = acc[2] > 0 ? (float)(acc[1] / (acc[2] * M_LN2)) : -1;
    return LMC_OK;
}

/* The logits after ids[0..n) (n <= T) by full recomputation through the
 * distributed forward (--tp, --pp, ZeRO-3, --ep): every rank makes the
 * call; under --pp the last stage has the logits and tells the others (a
 * host reduction: the others add zeros), so every rank draws the same
 * token from the same generator. */
static lmc_status distributed_logits(void *src, const int *ids, int n, int extend, float *logits)
{
    lmc_trainer *tr = src;
    int V = tr->cfg.vocab, last = tr->pipe.pp_rank == tr->pipe.pp - 1;
    LMC_TRY(lmc_model_set_batch(tr->m, ids, NULL, 1, n, "sample"));
    if (tr->pipe.pp > 1)
        LMC_TRY(lmc_pipe_forward(tr, 1, n, LMC_FWD_LAST_LOGITS));
    else
        lmc_model_forward(tr->m, 1, n, LMC_FWD_LAST_LOGITS, 0);
    LMC_TRY(tr->m->tp_status);
    if (last)
        tr->be->ops->download(tr->be, logits, tr->m->a.logits, (size_t)V * sizeof(float));
    if (tr->pipe.pp == 1)
        return LMC_OK;
    double *v = malloc((size_t)V * sizeof(double));
    if (!v)
        return lmc_err(LMC_ENOMEM, "out of memory sampling");
    for (int i = 0; i < V; i++)
        v[i] = last ? logits[i] : 0.0;
    lmc_status s = tr->pipe.ppc->ops->allreduce_host(tr->pipe.ppc, v, (size_t)V, 0);
    for (int i = 0; i < V; i++)
        logits[i] = (float)v[i];
    free(v);
    return s;
}

typedef struct {
    const lmc_tokenizer *tok;
    lmc_sb *text;
    int count;
} sample_text;

static lmc_status add_token(int token, const float *logits, void *ctx)
{
    (void)logits;
    sample_text *t = ctx;
    return lmc_token_append(t->tok, token, &t->count, t->text);
}

/* Generates sample_tokens tokens after an end-of-text token, each from the
 * last --seq tokens: in one process through the inference engine over the
 * training model; under --tp, --pp, ZeRO-3 or --ep by full recomputation
 * through the distributed forward, every rank in step. The engine decodes
 * with its KV cache in fp32; under --precision bf16 it recomputes each
 * token with a prefill, which rounds the matmul inputs as training does
 * (decode's fp32 logits would draw other tokens than the model trains). */
lmc_status lmc_trainer_sample(lmc_trainer *tr, lmc_sb *text)
{
    const lmc_train_opts *o = tr->o;
    int eot = tr->data.tok ? lmc_tok_special_id(tr->data.tok, "<|endoftext|>") : -1;
    int prompt = eot >= 0 ? eot : 0; /* a sample starts a new document */
    lmc_rng rng;
    lmc_rng_seed(&rng, lmc_hash64(tr->data.seed ^ (uint64_t)tr->step));
    lmc_sampling sp = {.temperature = 1.0f, .top_k = 40, .top_p = 1.0f};
    sample_text t = {tr->data.tok, text, 0};
    lmc_gen_opts g = {.max_new = o->sample_tokens, .sp = &sp, .rng = &rng, .recompute = tr->m->prec != LMC_F32,
                      .slide = 1, .stop_id = -1, .on_token = add_token, .ctx = &t};
    if (tr->tp > 1 || tr->pipe.pp > 1 || tr->dp.zero == 3 || tr->ex.ep > 1 || o->seq < 2)
        return lmc_generate(distributed_logits, tr, tr->cfg.vocab, o->seq, &prompt, 1, &g);
    lmc_engine *e;
    LMC_TRY(lmc_engine_open_model(&e, tr->m, &(lmc_engine_opts){.slots = 1, .ctx = o->seq}));
    lmc_status s = lmc_engine_generate(e, &prompt, 1, &g);
    lmc_engine_close(e);
    return s;
}
