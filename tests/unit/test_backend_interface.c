/* test_backend_interface.c: the backend interface around the kernels (the
 * conformance suite checks the kernels): op names from the X-macro list,
 * the required-op check, an op's error reaching lmc_backend_check with the
 * op's name (the CPU backend's LMC_TEST_FAIL_OP makes an op's scratch
 * request fail, as running out of memory would), and
 * lmc_backend_supports_model asking about every op a model runs. */
#include "backend/backend.h"
#include "test.h"

static void t_op_names(void)
{
    CHECK(!strcmp(lmc_op_name(LMC_OP_matmul), "matmul"));
    CHECK(!strcmp(lmc_op_name(LMC_OP_attention_forward), "attention_forward"));
    CHECK(!strcmp(lmc_op_name(LMC_OP_COUNT), "unknown op"));
    for (int i = 0; i < LMC_OP_COUNT; i++)
        CHECK_MSG(lmc_op_from_name(lmc_op_name((lmc_op)i)) == (lmc_op)i, "op %d (%s) does not round-trip", i,
                  lmc_op_name((lmc_op)i));
    CHECK(lmc_op_from_name("nosuch") == LMC_OP_COUNT);
    CHECK(lmc_op_kind_of(LMC_OP_matmul) == LMC_OPK_CORE);
    CHECK(lmc_op_kind_of(LMC_OP_linear) == LMC_OPK_INFER);
    CHECK(lmc_op_kind_of(LMC_OP_xent_part) == LMC_OPK_OPT);
}

/* A table with a required op left empty is refused, naming it. */
static void t_ops_check(void)
{
    lmc_backend *cpu;
    CHECK_OK(lmc_backend_open("cpu", 1, &cpu));
    CHECK_OK(lmc_backend_ops_check(cpu));
    CHECK(cpu->host_memory && cpu->deterministic);
    lmc_backend_ops ops = *cpu->ops;
    lmc_backend fake = *cpu;
    fake.ops = &ops;
    ops.xent_part = NULL; /* optional */
    CHECK_OK(lmc_backend_ops_check(&fake));
    ops.event_wait = NULL;
    CHECK_ERR(lmc_backend_ops_check(&fake), LMC_EUNSUPPORTED, "backend cpu leaves the required op 'event_wait' empty");
    lmc_backend_close(cpu);
}

static void run_matmul(lmc_backend *be)
{
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1}, c[4] = {0};
    lmc_gemm g = {.m = 2, .n = 2, .k = 3};
    be->ops->matmul(be, c, a, b, &g);
    CHECK_MSG(lmc_backend_error(be) || (c[0] == 4 && c[3] == 11), "matmul gave %g %g", c[0], c[3]);
}

/* LMC_TEST_FAIL_OP=matmul: the matmul records an error and computes
 * nothing; the check returns it naming the op, then clears it. */
static void t_error_reaches_check(void)
{
    lmc_backend *be;
    setenv("LMC_TEST_FAIL_OP", "matmul", 1);
    CHECK_OK(lmc_backend_open("cpu", 2, &be));
    unsetenv("LMC_TEST_FAIL_OP");
    if (!be)
        return;
    CHECK_OK(lmc_backend_check(be));
    float x[4] = {1, 2, 3, 4}, s = 0;
    be->ops->sum(be, &s, x, 4, 0); /* another op is unaffected */
    CHECK(s == 10 && lmc_backend_error(be) == NULL);
    run_matmul(be);
    run_matmul(be); /* the first error is the one kept */
    CHECK(be->ops->sync(be) == LMC_ENOMEM); /* sync returns it and leaves it pending */
    CHECK_ERR(lmc_backend_check(be), LMC_ENOMEM, "cpu: matmul: cannot allocate");
    CHECK_OK(lmc_backend_check(be));
    lmc_backend_close(be);

    setenv("LMC_TEST_FAIL_OP", "add", 1);
    CHECK_ERR(lmc_backend_open("cpu", 1, &be), LMC_EINVAL, "LMC_TEST_FAIL_OP=add: the cpu backend can fail only");
    unsetenv("LMC_TEST_FAIL_OP");
}

/* refuses attention head sizes other than 64 and 128, as a chip might */
static int picky_supports(lmc_backend *be, const lmc_op_query *q, char *why, size_t why_len)
{
    int attention = q->op == LMC_OP_attention_forward || q->op == LMC_OP_attention_backward ||
                    q->op == LMC_OP_attention_decode;
    if (!attention || q->head_size == 64 || q->head_size == 128)
        return 1;
    snprintf(why, why_len, "head size %d is not supported (supported: 64, 128)", q->head_size);
    return 0;
}

static void t_supports_model(void)
{
    lmc_backend *cpu;
    CHECK_OK(lmc_backend_open("cpu", 1, &cpu));
    lmc_backend_ops ops = *cpu->ops;
    lmc_backend picky = *cpu;
    picky.ops = &ops;
    ops.supports = picky_supports;
    lmc_model_config cfg;
    CHECK_OK(lmc_config_preset("d12", &cfg)); /* head size 64 */
    lmc_backend_use use = {.B = 4, .T = 64, .training = 1, .prec = LMC_BF16};
    CHECK_OK(lmc_backend_supports_model(&picky, &cfg, &use));
    cfg.dim = 1600, cfg.n_head = 10, cfg.n_kv_head = 10; /* head size 160 */
    CHECK_ERR(lmc_backend_supports_model(&picky, &cfg, &use), LMC_EUNSUPPORTED,
              "backend cpu: attention_forward: head size 160 is not supported (supported: 64, 128)");
    CHECK_OK(lmc_backend_supports_model(cpu, &cfg, &use));
    use.engine = 1, use.wtype = LMC_I8;
    CHECK_OK(lmc_backend_supports_model(cpu, &cfg, &use));
    use.wtype = (lmc_dtype)7;
    CHECK_ERR(lmc_backend_supports_model(cpu, &cfg, &use), LMC_EUNSUPPORTED, "backend cpu: linear: dtype 7");
    use.wtype = LMC_F32;
    use.vocab_parallel = 1, use.tp = 2;
    CHECK_OK(lmc_config_preset("d12", &cfg));
    ops.xent_part = NULL;
    CHECK_OK(lmc_backend_supports_model(cpu, &cfg, &use));
    CHECK_ERR(lmc_backend_supports_model(&picky, &cfg, &use), LMC_EUNSUPPORTED, "backend cpu has no 'xent_part' op");
    lmc_backend_close(cpu);
}

/* A backend name with no plugin: the error names the library and where it
 * looked; the CPU's variants and a bad device number. */
static void t_open_errors(void)
{
    lmc_backend *be = NULL;
    CHECK_ERR(lmc_backend_open("nosuch", 1, &be), LMC_EUNSUPPORTED, "liblmc_nosuch.so: not found in $LMC_PLUGIN_DIR");
    CHECK(strstr(lmc_errmsg(), "--device: unknown device 'nosuch'") && strstr(lmc_errmsg(), "the loader's path"));
    setenv("LMC_PLUGIN_DIR", "/nonexistent/a:/nonexistent/b", 1);
    CHECK_ERR(lmc_backend_open("tpu:1", 1, &be), LMC_EUNSUPPORTED, /* a plugin not built here */
              "liblmc_tpu.so: not found in /nonexistent/a ($LMC_PLUGIN_DIR), /nonexistent/b");
    unsetenv("LMC_PLUGIN_DIR");
    CHECK_ERR(lmc_backend_open("cuda:x", 1, &be), LMC_EINVAL, "--device cuda:x: the device number");
    CHECK_ERR(lmc_backend_open("cpu:avx9", 1, &be), LMC_EINVAL, "unknown instruction set 'avx9'");
    CHECK(be == NULL);
    char names[8][32];
    int n = lmc_backend_names(names, 8);
    CHECK(n >= 3 && !strcmp(names[0], "cpu") && !strcmp(names[1], "cuda") && !strcmp(names[2], "npu"));
}

int main(void)
{
    RUN(t_op_names);
    RUN(t_ops_check);
    RUN(t_error_reaches_check);
    RUN(t_supports_model);
    RUN(t_open_errors);
    return test_summary();
}
