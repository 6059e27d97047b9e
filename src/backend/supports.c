/* supports.c: asking a backend, before the first step, about every op a
 * model of a given config will run, so an unsupported shape or dtype is an
 * error at open naming the op ("backend cuda:0: attention_forward: head
 * size 300 is not supported (supported: 1 to 256)") and not a failure in
 * the middle of a run. The calls listed here follow src/model/forward.c,
 * backward.c and vocab.c and src/infer/passes.c: a new op there is a new
 * line here. Backward matmuls are the forward ones transposed (same m, n,
 * k), so only the forward shapes are asked. */
#include "backend/backend.h"

#define MAX_QUERIES 48

typedef struct {
    lmc_op_query q[MAX_QUERIES];
    int n;
} query_list;

static void add(query_list *l, lmc_op op, lmc_dtype dt, long long m, long long n, long long k)
{
    if (l->n < MAX_QUERIES)
        l->q[l->n++] = (lmc_op_query){.op = op, .dtype = dt, .m = m, .n = n, .k = k};
}

static void add_heads(query_list *l, lmc_op op, int NH, int NKV, int HS, long long B, long long T)
{
    add(l, op, LMC_F32, B, T, 0);
    lmc_op_query *q = &l->q[l->n - 1];
    q->heads = NH, q->kv_heads = NKV, q->head_size = HS;
}

/* Per tensor-parallel rank: heads, MLP width and (vocabulary parallel) rows. */
typedef struct {
    int NH, NKV, HS, C, ffn, fc, Vp;
} shapes;

static shapes shapes_of(const lmc_model_config *c, const lmc_backend_use *u)
{
    int tp = u->tp > 1 ? u->tp : 1;
    int hs = c->n_head > 0 ? c->dim / c->n_head : 0; /* lmc_config_head_dim, without linking the model */
    int nkv = c->n_kv_head >= tp ? c->n_kv_head / tp : 1; /* fewer kv heads than ranks: replicated */
    shapes s = {c->n_head / tp, nkv, hs, c->dim, c->ffn_dim / tp, 0,
                c->vocab_padded / (u->vocab_parallel ? tp : 1)};
    s.fc = c->mlp == LMC_MLP_SWIGLU ? 2 * s.ffn : s.ffn;
    return s;
}

/* The four matmuls of a layer and the head, (m, n, k) as forward.c calls them. */
static void add_matmuls(query_list *l, lmc_op op, lmc_dtype dt, long long N, const shapes *s)
{
    add(l, op, dt, N, (long long)(s->NH + 2 * s->NKV) * s->HS, s->C);
    add(l, op, dt, N, s->C, (long long)s->NH * s->HS);
    add(l, op, dt, N, s->fc, s->C);
    add(l, op, dt, N, s->C, s->ffn);
    add(l, op, dt, N, s->Vp, s->C);
}

/* A mixture of experts (src/model/moe.c): the router's matmul, the rows'
 * dispatch and combination (N x top_k of them), one matmul per expert over
 * its rows (at most all N), and in training the routing weights' gradient. */
static void add_experts(query_list *l, const lmc_model_config *c, const lmc_backend_use *u, long long N)
{
    long long R = N * c->top_k, F = c->moe_ffn;
    add(l, LMC_OP_matmul, u->prec, N, c->n_expert, c->dim);
    add(l, LMC_OP_matmul, u->prec, N, 2 * F, c->dim);
    add(l, LMC_OP_matmul, u->prec, N, c->dim, F);
    add(l, LMC_OP_gather_rows, LMC_F32, R, c->dim, 0);
    add(l, LMC_OP_scatter_add_rows, LMC_F32, N, c->dim, 0);
    if (u->training)
        add(l, LMC_OP_row_dot, LMC_F32, R, c->dim, 0);
}

static void add_forward(query_list *l, const lmc_model_config *c, const lmc_backend_use *u, const shapes *s)
{
    long long N = (long long)u->B * u->T;
    int rms = c->norm == LMC_NORM_RMS, swiglu = c->mlp == LMC_MLP_SWIGLU;
    add(l, LMC_OP_embed_forward, LMC_F32, N, s->C, 0);
    add(l, rms ? LMC_OP_rmsnorm_forward : LMC_OP_layernorm_forward, LMC_F32, N, s->C, 0);
    add_matmuls(l, LMC_OP_matmul, u->prec, N, s);
    if (c->pos == LMC_POS_ROPE)
        add_heads(l, LMC_OP_rope, s->NH, s->NKV, s->HS, u->B, u->T);
    add_heads(l, LMC_OP_attention_forward, s->NH, s->NKV, s->HS, u->B, u->T);
    add(l, swiglu ? LMC_OP_swiglu_forward : LMC_OP_gelu_forward, LMC_F32, swiglu ? N : N * s->ffn, swiglu ? s->ffn : 0,
        0);
    add(l, LMC_OP_add, LMC_F32, N * s->C, 0, 0);
    add(l, u->vocab_parallel ? LMC_OP_xent_part : LMC_OP_xent, LMC_F32, N, s->Vp, 0);
    if (c->n_expert > 0)
        add_experts(l, c, u, N);
}

static void add_backward(query_list *l, const lmc_model_config *c, const lmc_backend_use *u, const shapes *s)
{
    long long N = (long long)u->B * u->T;
    int rms = c->norm == LMC_NORM_RMS, swiglu = c->mlp == LMC_MLP_SWIGLU;
    add(l, LMC_OP_embed_backward, LMC_F32, N, s->C, 0);
    add(l, rms ? LMC_OP_rmsnorm_backward : LMC_OP_layernorm_backward, LMC_F32, N, s->C, 0);
    add_heads(l, LMC_OP_attention_backward, s->NH, s->NKV, s->HS, u->B, u->T);
    add(l, swiglu ? LMC_OP_swiglu_backward : LMC_OP_gelu_backward, LMC_F32, swiglu ? N : N * s->ffn,
        swiglu ? s->ffn : 0, 0);
    if (c->bias)
        add(l, LMC_OP_bias_grad, LMC_F32, N, s->C, 0);
    add(l, LMC_OP_adamw, LMC_F32, (long long)s->C * s->Vp, 0, 0);
    add(l, LMC_OP_sum, LMC_F32, (long long)s->C * s->Vp, 0, 0);
    add(l, LMC_OP_scale, LMC_F32, (long long)s->C * s->Vp, 0, 0);
}

/* The inference engine: B slots of ctx tokens; prefill runs one sequence. */
static void add_engine(query_list *l, const lmc_backend_use *u, const shapes *s)
{
    add_matmuls(l, LMC_OP_linear, u->wtype, u->B, s);
    add(l, LMC_OP_kv_store, LMC_F32, u->B, u->T, (long long)s->NKV * s->HS);
    add_heads(l, LMC_OP_attention_decode, s->NH, s->NKV, s->HS, u->B, u->T);
    add_heads(l, LMC_OP_attention_forward, s->NH, s->NKV, s->HS, 1, u->T);
}

lmc_status lmc_backend_supports_model(lmc_backend *be, const lmc_model_config *cfg, const lmc_backend_use *use)
{
    query_list l = {.n = 0};
    shapes s = shapes_of(cfg, use);
    add_forward(&l, cfg, use, &s);
    if (use->training)
        add_backward(&l, cfg, use, &s);
    if (use->engine)
        add_engine(&l, use, &s);
    for (int i = 0; i < l.n; i++)
        LMC_TRY(lmc_backend_supports(be, &l.q[i]));
    return LMC_OK;
}
