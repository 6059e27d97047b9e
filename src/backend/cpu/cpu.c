/* cpu.c: the CPU backend's table, memory functions, supports and instruction-set choice. */
#include "backend/cpu/cpu.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

void *lmc_cpu_alloc(lmc_backend *be, size_t bytes)
{
    (void)be;
    return lmc_alloc(bytes, "cpu tensor");
}

void lmc_cpu_free(lmc_backend *be, void *p)
{
    (void)be;
    lmc_free(p);
}

/* staging (hier.c): all of the CPU's memory is host memory */
void *lmc_cpu_host_alloc(lmc_backend *be, size_t bytes) { return lmc_cpu_alloc(be, bytes); }
void lmc_cpu_host_free(lmc_backend *be, void *p) { lmc_cpu_free(be, p); }

void lmc_cpu_copy(lmc_backend *be, void *dst, const void *src, size_t bytes)
{
    (void)be;
    if (bytes && dst != src)
        memmove(dst, src, bytes);
}

/* tensors are host memory: moving bytes in and out is a copy */
void lmc_cpu_upload(lmc_backend *be, void *dst, const void *src, size_t bytes) { lmc_cpu_copy(be, dst, src, bytes); }
void lmc_cpu_download(lmc_backend *be, void *dst, const void *src, size_t bytes) { lmc_cpu_copy(be, dst, src, bytes); }

void lmc_cpu_zero(lmc_backend *be, void *p, size_t bytes)
{
    (void)be;
    memset(p, 0, bytes);
}

/* ops finish before they return: nothing to wait for, no queue to order */
lmc_status lmc_cpu_sync(lmc_backend *be) { return lmc_backend_pending(be); }
void *lmc_cpu_stream(lmc_backend *be) { return NULL; }
lmc_status lmc_cpu_event_record(lmc_backend *be, void *event) { return LMC_OK; }
lmc_status lmc_cpu_event_wait(lmc_backend *be, void *event) { return LMC_OK; }

void lmc_cpu_destroy(lmc_backend *be)
{
    lmc_cpu *c = cpu_of(be);
    lmc_free(c->scratch);
    free(c);
    free(be);
}

/* Any shape; matmul in fp32 or bf16, linear's weights also int8, casts
 * between fp32 and bf16. */
int lmc_cpu_supports(lmc_backend *be, const lmc_op_query *q, char *why, size_t why_len)
{
    int ok = 1;
    if (q->op == LMC_OP_linear)
        ok = q->dtype == LMC_F32 || q->dtype == LMC_BF16 || q->dtype == LMC_I8;
    else if (q->op == LMC_OP_matmul || q->op == LMC_OP_cast)
        ok = q->dtype == LMC_F32 || q->dtype == LMC_BF16;
    if (!ok)
        snprintf(why, why_len, "dtype %d is not supported (supported: fp32, bf16%s)", (int)q->dtype,
                 q->op == LMC_OP_linear ? ", int8" : "");
    return ok;
}

float *lmc_cpu_scratch(lmc_backend *be, size_t bytes, lmc_op op)
{
    lmc_cpu *c = cpu_of(be);
    if (op == c->fail_op) {
        lmc_backend_fail(be, op, LMC_ENOMEM, "cannot allocate %zu bytes of scratch (LMC_TEST_FAIL_OP)", bytes);
        return NULL;
    }
    if (bytes > c->scratch_bytes || !c->scratch) {
        lmc_free(c->scratch);
        c->scratch = lmc_alloc(bytes ? bytes : 64, "cpu scratch");
        c->scratch_bytes = c->scratch ? bytes : 0;
        if (!c->scratch)
            lmc_backend_fail(be, op, LMC_ENOMEM, "cannot allocate %zu bytes of scratch", bytes);
    }
    return c->scratch;
}

/* Every op is lmc_cpu_<op> (declared in cpu.h from the same list). */
static const lmc_backend_ops cpu_ops = {
#define LMC_CPU_FILL_(kind, name, ret, params) .name = lmc_cpu_##name,
    LMC_BACKEND_OPS(LMC_CPU_FILL_)
#undef LMC_CPU_FILL_
};

/* LMC_TEST_FAIL_OP=NAME (tests only): op NAME's scratch requests fail, as
 * if memory ran out, so tests can see an op's error reach
 * lmc_backend_check. Ops that ask for scratch: matmul, sum,
 * attention_forward and attention_decode always; attention_backward and
 * linear (bf16 weights) on the AVX-512 path. */
static lmc_status test_fail_op(lmc_op *op)
{
    static const lmc_op can_fail[] = {LMC_OP_matmul, LMC_OP_sum, LMC_OP_attention_forward,
                                      LMC_OP_attention_backward, LMC_OP_attention_decode, LMC_OP_linear};
    const char *v = getenv("LMC_TEST_FAIL_OP");
    *op = LMC_OP_COUNT;
    if (!v || !*v)
        return LMC_OK;
    for (size_t i = 0; i < sizeof can_fail / sizeof *can_fail; i++)
        if (!strcmp(v, lmc_op_name(can_fail[i])))
            *op = can_fail[i];
    if (*op == LMC_OP_COUNT)
        return lmc_err(LMC_EINVAL, "LMC_TEST_FAIL_OP=%s: the cpu backend can fail only an op that asks for scratch "
                       "memory (matmul, sum, attention_forward, attention_backward, attention_decode, linear)", v);
    return LMC_OK;
}

static int isa_available(lmc_cpu_isa isa)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    switch (isa) {
    case LMC_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("fma");
    case LMC_ISA_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case LMC_ISA_C:
        return 1;
    }
    return 0;
#else
    return isa == LMC_ISA_C; /* other CPUs run the portable path */
#endif
}

/* vdpbf16ps (AVX512-BF16), beside AVX-512 */
static int dot_available(void)
{
#if defined(__x86_64__)
    return isa_available(LMC_ISA_AVX512) && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

/* "avx512-nodot" is AVX-512 without vdpbf16ps (bf16 matmuls on rounded fp32
 * panels): the path of CPUs without AVX512-BF16, forced so the conformance
 * suite covers it everywhere */
static const char *const isa_names[] = {"c", "avx2", "avx512", "avx512-nodot"};

int lmc_cpu_isa_list(const char **names, int max)
{
    int n = 0;
    if (dot_available() && n < max)
        names[n++] = isa_names[3];
    for (int i = LMC_ISA_AVX512; i >= LMC_ISA_C && n < max; i--)
        if (isa_available((lmc_cpu_isa)i))
            names[n++] = isa_names[i];
    return n;
}

lmc_status lmc_cpu_backend_open(int threads, const char *isa, lmc_backend **out)
{
    *out = NULL;
    lmc_cpu_isa chosen = LMC_ISA_C;
    int dot = 1;
    if (!isa || !strcmp(isa, "auto")) {
        chosen = isa_available(LMC_ISA_AVX512) ? LMC_ISA_AVX512
                 : isa_available(LMC_ISA_AVX2) ? LMC_ISA_AVX2 : LMC_ISA_C;
    } else {
        int found = 0;
        for (int i = 0; i < 4; i++)
            if (!strcmp(isa, isa_names[i]))
                chosen = i == 3 ? LMC_ISA_AVX512 : (lmc_cpu_isa)i, dot = i != 3, found = 1;
        if (!found)
            return lmc_err(LMC_EINVAL, "cpu isa: unknown instruction set '%s' (use auto, avx512, avx512-nodot, avx2, c)",
                           isa);
        if (!isa_available(chosen))
            return lmc_err(LMC_EUNSUPPORTED, "cpu isa: this CPU cannot run the '%s' path", isa);
    }
    lmc_op fail_op;
    LMC_TRY(test_fail_op(&fail_op));
    lmc_backend *be = calloc(1, sizeof *be);
    lmc_cpu *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return lmc_err(LMC_ENOMEM, "out of memory opening the cpu backend");
    }
    c->isa = chosen;
    c->dot = dot && chosen == LMC_ISA_AVX512 && dot_available();
    c->fail_op = fail_op;
    be->ops = &cpu_ops;
    be->name = "cpu";
    be->host_memory = 1;
    be->deterministic = 1; /* work split by shape, not by thread timing */
    be->threads = threads > 0 ? threads : omp_get_num_procs();
    be->impl = c;
    *out = be;
    return LMC_OK;
}

void lmc_cpu_set_kc_cap(lmc_backend *be, int kc) { cpu_of(be)->kc_cap = kc; }
