/* test_plan_memory.c: lmc plan's per-rank memory of lmc train on the cpu
 * chip (src/plan/memory.c) against the allocation rules of
 * docs/zero_memory.md, worked out by hand for d12 on 4 ranks and from the
 * layout for an untied Llama on 3 ranks (uneven shards, the head the
 * largest unit); the ZeRO stages in order; lmc_plan_memory using it on the
 * cpu chip only; and, for tensor- and pipeline-parallel ranks, the
 * planner's activation block against the one a real model part allocates
 * (lmc_model_open_opts as the trainer opens it) and its parameters against
 * the part's layout. */
#include "backend/backend.h"
#include "lmc/plan.h"
#include "model/model.h"
#include "test.h"

/* d12's layout, by hand: wte 50304 x 768 = 38,633,472 (vocab padded to a
 * multiple of 64) and wpe 1024 x 768 = 786,432 (unit 0: 39,419,904); a
 * layer 2*768 + 2304*768 + 2304 + 768*768 + 768 + 2*768 + 3072*768 + 3072 +
 * 768*3072 + 768 = 7,087,872 (x 12 = 85,054,464); norm_f 1536; the head is
 * wte. P = 124,475,904 floats; over 4 ranks, shards of 31,118,976. */
#define D12_P 124475904.0
#define D12_SHARD 31118976.0
#define D12_EMB 39419904.0
#define D12_LAYER 7087872.0

/* Activations of d12 for 4 x 256 tokens (N = 1024), in floats: per layer
 * ln1, res2, ln2, atty, res3 (N x 768 each), qkv N x 2304, fch and its GELU
 * N x 3072 each, lse N x 12 and four N-long means/rstds: 12,599,296; the
 * rest (embeddings, final norm, logits N x 50304, losses, 16 for
 * reductions, the residual gradient and two N x 3072 scratch buffers):
 * 60,165,136. Selective recomputation keeps one slot of ln1, ln2 and the
 * GELU output (4,718,592 a layer), full one slot of all but res3. */
static double d12_acts(lmc_recompute rc)
{
    double layer = 12599296, rest = 60165136, res3 = 786432, sel = 4718592;
    double floats = rc == LMC_RECOMPUTE_NONE        ? 12 * layer + rest
                    : rc == LMC_RECOMPUTE_SELECTIVE ? 12 * (layer - sel) + sel + rest
                                                    : layer + 11 * res3 + rest;
    return 4 * floats;
}

static void check_parts(const lmc_plan_mem *m, double w, double g, double o, double a, double b, double st,
                        const char *what)
{
    CHECK_MSG(m->weights == w, "%s weights %.0f != %.0f", what, m->weights, w);
    CHECK_MSG(m->grads == g, "%s grads %.0f != %.0f", what, m->grads, g);
    CHECK_MSG(m->optim == o, "%s optim %.0f != %.0f", what, m->optim, o);
    CHECK_MSG(m->activations == a, "%s activations %.0f != %.0f", what, m->activations, a);
    CHECK_MSG(m->buffers == b, "%s buffers %.0f != %.0f", what, m->buffers, b);
    CHECK_MSG(m->startup == st, "%s startup %.0f != %.0f", what, m->startup, st);
    CHECK_MSG(m->logits == 0 && m->trainer == 1, "%s: logits are inside the activations", what);
    double sum = w + g + o + a + b + st + m->overhead;
    CHECK_MSG(m->total == sum, "%s total %.0f != parts %.0f", what, m->total, sum);
}

static void test_d12_by_hand(void)
{
    lmc_model_config c;
    CHECK_OK(lmc_plan_model_load("d12", &c));
    lmc_layout l;
    CHECK_OK(lmc_layout_build(&c, &l));
    CHECK(l.total == D12_P);
    size_t b, e;
    lmc_layout_unit(&l, 0, &b, &e);
    CHECK(e - b == D12_EMB);
    lmc_layout_unit(&l, 5, &b, &e);
    CHECK(e - b == D12_LAYER);
    lmc_layout_free(&l);
    double P = 4 * D12_P, S = 4 * D12_SHARD, slots = 4 * (D12_EMB + 2 * D12_LAYER);
    for (int rc = 0; rc <= 2; rc++) {
        double a = d12_acts((lmc_recompute)rc);
        CHECK(a == lmc_model_activation_bytes(&c, 4, 256, 1, (lmc_recompute)rc));
        lmc_plan_mem m[4];
        for (int z = 0; z <= 3; z++) {
            char what[64];
            snprintf(what, sizeof what, "d12 ZeRO-%d recompute %s", z, lmc_plan_recompute_name(rc));
            CHECK_OK(lmc_plan_trainer_memory(&c, 4, 256, 4, z, (lmc_recompute)rc, &m[z]));
            CHECK(m[z].overhead > 0 && m[z].overhead < 50e6);
        }
        check_parts(&m[0], P, P, 2 * P, a, 0, P, "ZeRO-0");
        check_parts(&m[1], P, P, 2 * S, a, 0, P, "ZeRO-1");
        check_parts(&m[2], P, S, 2 * S, a, slots, P, "ZeRO-2");
        check_parts(&m[3], S, S, 2 * S, a, 2 * slots, S, "ZeRO-3");
        for (int z = 1; z <= 3; z++)
            CHECK_MSG(m[z].total < m[z - 1].total, "ZeRO-%d %.0f >= ZeRO-%d %.0f", z, m[z].total, z - 1,
                      m[z - 1].total);
    }
    /* the d12 case the bench measured first: 3353.1 MB per rank */
    lmc_plan_mem m;
    CHECK_OK(lmc_plan_trainer_memory(&c, 4, 256, 4, 0, LMC_RECOMPUTE_NONE, &m));
    CHECK_MSG(fabs(m.total / 1e6 - 3353.1) < 0.02 * 3353.1, "d12 ZeRO-0: %.1f MB", m.total / 1e6);
    /* recomputation keeps less, and one process has no MPI */
    lmc_plan_mem none, full, one;
    CHECK_OK(lmc_plan_trainer_memory(&c, 4, 256, 4, 2, LMC_RECOMPUTE_NONE, &none));
    CHECK_OK(lmc_plan_trainer_memory(&c, 4, 256, 4, 2, LMC_RECOMPUTE_FULL, &full));
    CHECK_OK(lmc_plan_trainer_memory(&c, 4, 256, 1, 0, LMC_RECOMPUTE_NONE, &one));
    CHECK(full.total < none.total && one.overhead < none.overhead);
    CHECK(lmc_plan_trainer_memory(&c, 0, 256, 4, 0, LMC_RECOMPUTE_NONE, &m) == LMC_EINVAL);
    CHECK(lmc_plan_trainer_memory(&c, 4, 256, 4, 4, LMC_RECOMPUTE_NONE, &m) == LMC_EINVAL);
}

/* An untied Llama on 3 ranks: P is not a multiple of 3 x 16, so rank 0's
 * shard is ceil(P/3) rounded up to 16; the head unit outgrows a layer. */
static void test_llama_uneven(void)
{
    lmc_model_config c;
    CHECK_OK(lmc_plan_model_load("llama-1b", &c));
    CHECK(!c.tied);
    lmc_layout l;
    CHECK_OK(lmc_layout_build(&c, &l));
    int U = lmc_layout_num_units(&l);
    size_t b, e, eb, ee, lb, le;
    lmc_layout_unit(&l, 0, &eb, &ee);
    lmc_layout_unit(&l, 1, &lb, &le);
    lmc_layout_unit(&l, U - 1, &b, &e);
    CHECK(e - b == (size_t)c.vocab_padded * c.dim + (size_t)c.dim && e - b > le - lb);
    double P = 4.0 * l.total, blk = ceil(l.total / 3.0 / 16) * 16, S = 4 * blk;
    CHECK(blk * 3 > l.total && blk * 2 < l.total);
    double slots = 4.0 * ((ee - eb) + 2 * (e - b));
    lmc_layout_free(&l);
    double a = (double)lmc_model_activation_bytes(&c, 2, 64, 1, LMC_RECOMPUTE_SELECTIVE);
    lmc_plan_mem m[4];
    for (int z = 0; z <= 3; z++)
        CHECK_OK(lmc_plan_trainer_memory(&c, 2, 64, 3, z, LMC_RECOMPUTE_SELECTIVE, &m[z]));
    check_parts(&m[0], P, P, 2 * P, a, 0, P, "llama ZeRO-0");
    check_parts(&m[1], P, P, 2 * S, a, 0, P, "llama ZeRO-1");
    check_parts(&m[2], P, S, 2 * S, a, slots, P, "llama ZeRO-2");
    check_parts(&m[3], S, S, 2 * S, a, 2 * slots, S, "llama ZeRO-3");
    for (int z = 1; z <= 3; z++)
        CHECK(m[z].total < m[z - 1].total);
}

/* lmc_plan_memory: the trainer's figure on the cpu chip (any alias) with
 * tp = pp = 1; the generic model on other chips and other layouts. */
static void test_plan_memory_uses_it(void)
{
    lmc_plan_catalog cat;
    CHECK_OK(lmc_plan_catalog_load_default(&cat));
    const lmc_plan_chip *cpu = lmc_plan_catalog_find(&cat, "this-machine"), *a100 = lmc_plan_catalog_find(&cat, "A100");
    CHECK(cpu && a100 && lmc_plan_chip_is_cpu(cpu) && !lmc_plan_chip_is_cpu(a100));
    lmc_plan_job j;
    lmc_plan_job_defaults(&j);
    CHECK_OK(lmc_plan_model_load("d12", &j.model));
    j.seq = 256;
    j.global_batch = 16;
    lmc_plan_layout l = {.dp = 4, .tp = 1, .pp = 1, .vpp = 1, .micro_batch = 4, .zero = 2,
                         .recompute = LMC_RECOMPUTE_FULL};
    lmc_plan_mem m, want, g;
    CHECK_OK(lmc_plan_trainer_memory(&j.model, 4, 256, 4, 2, LMC_RECOMPUTE_FULL, &want));
    CHECK(lmc_plan_memory(&j, cpu, &l, 1, &m) == 1);
    CHECK(m.trainer && m.total == want.total && m.usable == cpu->memory_gb * 1e9 * (1 - j.mem_reserve));
    lmc_plan_memory(&j, a100, &l, 1, &g);
    CHECK(!g.trainer && g.startup == 0 && g.overhead == 0 && g.total != want.total);
    /* a pipeline on the cpu chip is lmc train's too (it runs them), on its
     * tightest stage; elsewhere generic */
    l.pp = 2;
    lmc_plan_memory(&j, cpu, &l, 2, &g);
    CHECK(g.trainer && g.stage >= 0 && g.stage < 2);
    lmc_plan_memory(&j, a100, &l, 2, &g);
    CHECK(!g.trainer);
    /* too little memory: does not fit */
    lmc_plan_chip small = *cpu;
    small.memory_gb = want.total / 1e9;
    l.pp = 1;
    CHECK(lmc_plan_memory(&j, &small, &l, 1, &m) == 0);
    lmc_plan_catalog_free(&cat);
}

/* A part as lmc train opens it (trainer.c's setup_model): its chunks of
 * the cut, 1/tp of each layer, vocabulary-parallel under tp, act_slots
 * activation sets. The planner's figures must be its allocations. */
static void check_part(const lmc_plan_job *j, const lmc_plan_layout *l, int accum, int stage, lmc_backend *be)
{
    char what[160];
    snprintf(what, sizeof what, "tp %d pp %d vpp %d dp %d stage %d mb %d accum %d ZeRO-%d %s sp %d", l->tp, l->pp,
             l->vpp, l->dp, stage, l->micro_batch, accum, l->zero, lmc_plan_recompute_name(l->recompute),
             j->seq_parallel && l->tp > 1);
    int n = l->pp * l->vpp, begin[64], bounds[64];
    CHECK_OK(lmc_pipeline_cut(&j->model, j->seq, n, NULL, begin));
    for (int c = 0; c < l->vpp; c++)
        bounds[2 * c] = begin[c * l->pp + stage], bounds[2 * c + 1] = begin[c * l->pp + stage + 1];
    int sets = lmc_plan_act_sets(l->pp, l->vpp, stage, (long long)accum * l->dp * l->vpp);
    lmc_model_opts mo = {.training = 1, .tp = l->tp, .vocab_parallel = l->tp > 1,
                         .sp = j->seq_parallel && l->tp > 1, .chunks = l->vpp, .chunk_bounds = bounds,
                         .act_slots = sets, .recompute = l->recompute};
    lmc_model *m = NULL;
    CHECK_OK(lmc_model_open_opts(&m, &j->model, be, l->micro_batch, j->seq, &mo));
    lmc_plan_mem pm;
    CHECK_OK(lmc_plan_trainer_stage_memory(j, l, accum, stage, &pm));
    if (!m)
        return;
    double acts = 4.0 * sets * m->act_floats, all = 4.0 * m->layout.total;
    CHECK_MSG(pm.activations == acts, "%s: activations %.0f, the model allocates %.0f", what, pm.activations, acts);
    if (l->zero == 0)
        CHECK_MSG(pm.weights == all && pm.grads == all && pm.optim == 2 * all, "%s: weights %.0f vs part %.0f",
                  what, pm.weights, all);
    CHECK_MSG(pm.trainer && pm.stage == stage && pm.total > pm.weights + pm.activations, "%s", what);
    lmc_model_close(m);
}

static void test_parts_as_the_trainer_opens_them(void)
{
    lmc_backend *be = NULL;
    CHECK_OK(lmc_backend_open("cpu", 1, &be));
    if (!be)
        return;
    lmc_plan_job j;
    lmc_plan_job_defaults(&j);
    CHECK_OK(lmc_plan_model_load("d6", &j.model));
    j.model.n_layer = 6, j.model.dim = 64, j.model.n_head = 4, j.model.n_kv_head = 4, j.model.ffn_dim = 256;
    j.model.vocab = 500;
    CHECK_OK(lmc_config_finish(&j.model));
    j.seq = 16;
    static const int shapes[][6] = {/* tp, pp, vpp, micro-batch, accum, recompute */
                                    {1, 1, 1, 2, 1, 0}, {2, 1, 1, 2, 1, 0}, {1, 2, 1, 1, 4, 0},
                                    {1, 2, 2, 1, 4, 0}, {2, 2, 1, 2, 2, 2}, {1, 3, 2, 1, 3, 1},
                                    {2, 3, 1, 1, 6, 1}, {1, 2, 3, 2, 4, 2}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        for (int sp = 0; sp <= (shapes[i][0] > 1); sp++) {
            const int *x = shapes[i];
            j.seq_parallel = sp;
            lmc_plan_layout l = {.dp = 1 + (int)(i % 2), .tp = x[0], .pp = x[1], .vpp = x[2], .micro_batch = x[3],
                                 .recompute = (lmc_recompute)x[5]};
            for (int stage = 0; stage < l.pp; stage++)
                check_part(&j, &l, x[4], stage, be);
        }
    /* Llama: untied head, SwiGLU, GQA with kv heads replicated at tp 4 */
    CHECK_OK(lmc_plan_model_load("llama-15m", &j.model));
    j.model.n_layer = 4, j.model.vocab = 512;
    CHECK_OK(lmc_config_finish(&j.model));
    j.seq_parallel = 0;
    lmc_plan_layout l = {.dp = 1, .tp = 2, .pp = 2, .vpp = 1, .micro_batch = 1};
    for (int stage = 0; stage < 2; stage++)
        check_part(&j, &l, 2, stage, be);
    lmc_backend_close(be);
}

/* The trainer's schedule: 1F1B holds pp - r sets on rank r; interleaved
 * 2 (pp - r - 1) + (vpp - 1) pp + 1; never more than the micro-batches. So
 * the first stage holds the most, and with --vpp the last stage holds one
 * set per chunk round, each with its logits. */
static void test_pipeline_memory(void)
{
    CHECK(lmc_plan_act_sets(4, 1, 0, 8) == 4 && lmc_plan_act_sets(4, 1, 3, 8) == 1);
    CHECK(lmc_plan_act_sets(4, 1, 0, 2) == 2);
    CHECK(lmc_plan_act_sets(2, 2, 0, 8) == 5 && lmc_plan_act_sets(2, 2, 1, 8) == 3);
    CHECK(lmc_plan_act_sets(4, 2, 0, 8) == 8 && lmc_plan_act_sets(1, 4, 0, 8) == 1);
    lmc_plan_job j;
    lmc_plan_job_defaults(&j);
    CHECK_OK(lmc_plan_model_load("d12", &j.model));
    j.seq = 128;
    lmc_plan_layout l = {.dp = 1, .tp = 1, .pp = 2, .vpp = 1, .micro_batch = 1};
    lmc_plan_mem s0, s1, both;
    CHECK_OK(lmc_plan_trainer_stage_memory(&j, &l, 8, 0, &s0));
    CHECK_OK(lmc_plan_trainer_stage_memory(&j, &l, 8, 1, &s1));
    CHECK(s0.stage == 0 && s1.stage == 1 && s0.weights != s1.weights);
    lmc_plan_catalog cat;
    CHECK_OK(lmc_plan_catalog_load_default(&cat));
    lmc_plan_memory(&j, lmc_plan_catalog_find(&cat, "cpu"), &l, 8, &both);
    CHECK(both.total == fmax(s0.total, s1.total));
    lmc_plan_catalog_free(&cat);
    /* start-up: a pipeline rank reads only its stage (train/part_load.c),
     * straight into its buffers on the CPU backend, through host staging
     * freed before AdamW's m and v elsewhere: no start-up term, with or
     * without ZeRO (one process holding the whole model has one: above) */
    CHECK(s0.startup == 0 && s1.startup == 0 && s0.optim == 2 * s0.weights);
    l.dp = 4, l.zero = 1;
    CHECK_OK(lmc_plan_trainer_stage_memory(&j, &l, 2, 0, &s0));
    CHECK_MSG(s0.startup == 0 && s0.optim < s0.weights, "startup %.0f, part %.0f, optim %.0f", s0.startup,
              s0.weights, s0.optim);
    /* more stages than layers is an error, as in lmc train */
    l.pp = 13;
    CHECK_ERR(lmc_plan_trainer_stage_memory(&j, &l, 13, 0, &s0), LMC_EINVAL, "virtual stages for 12 layers");
}

int main(void)
{
    RUN(test_d12_by_hand);
    RUN(test_llama_uneven);
    RUN(test_plan_memory_uses_it);
    RUN(test_parts_as_the_trainer_opens_them);
    RUN(test_pipeline_memory);
    return test_summary();
}
