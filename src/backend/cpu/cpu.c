/* cpu.c: the CPU backend's table, memory functions and instruction-set choice. */
#include "backend/cpu/cpu.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

static void *cpu_alloc(lmc_backend *be, size_t bytes)
{
    (void)be;
    return lmc_alloc(bytes, "cpu tensor");
}

static void cpu_free(lmc_backend *be, void *p)
{
    (void)be;
    lmc_free(p);
}

static void cpu_copy(lmc_backend *be, void *dst, const void *src, size_t bytes)
{
    (void)be;
    if (bytes && dst != src)
        memmove(dst, src, bytes);
}

static void cpu_zero(lmc_backend *be, void *p, size_t bytes)
{
    (void)be;
    memset(p, 0, bytes);
}

static void cpu_sync(lmc_backend *be) { (void)be; }

static void cpu_destroy(lmc_backend *be)
{
    lmc_cpu *c = cpu_of(be);
    lmc_free(c->scratch);
    free(c);
    free(be);
}

static int cpu_supports(lmc_backend *be, lmc_op op, lmc_dtype dtype)
{
    (void)be;
    if (op == LMC_OP_LINEAR)
        return dtype == LMC_F32 || dtype == LMC_BF16 || dtype == LMC_I8;
    return op < LMC_OP_COUNT && (dtype == LMC_F32 || dtype == LMC_BF16);
}

float *lmc_cpu_scratch(lmc_backend *be, size_t bytes)
{
    lmc_cpu *c = cpu_of(be);
    if (bytes > c->scratch_bytes) {
        lmc_free(c->scratch);
        c->scratch = lmc_alloc(bytes, "cpu scratch");
        c->scratch_bytes = c->scratch ? bytes : 0;
    }
    return c->scratch;
}

static const lmc_backend_ops cpu_ops = {
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .zero = cpu_zero,
    .sync = cpu_sync,
    .destroy = cpu_destroy,
    .supports = cpu_supports,
    .peak_flops = lmc_cpu_peak_flops,
    .matmul = lmc_cpu_matmul,
    .bias_grad = lmc_cpu_bias_grad,
    .embed_forward = lmc_cpu_embed_forward,
    .embed_backward = lmc_cpu_embed_backward,
    .layernorm_forward = lmc_cpu_layernorm_forward,
    .layernorm_backward = lmc_cpu_layernorm_backward,
    .rmsnorm_forward = lmc_cpu_rmsnorm_forward,
    .rmsnorm_backward = lmc_cpu_rmsnorm_backward,
    .gelu_forward = lmc_cpu_gelu_forward,
    .gelu_backward = lmc_cpu_gelu_backward,
    .swiglu_forward = lmc_cpu_swiglu_forward,
    .swiglu_backward = lmc_cpu_swiglu_backward,
    .rope = lmc_cpu_rope,
    .attention_forward = lmc_cpu_attention_forward,
    .attention_backward = lmc_cpu_attention_backward,
    .attention_decode = lmc_cpu_attention_decode_fast,
    .kv_store = lmc_cpu_kv_store,
    .linear = lmc_cpu_linear,
    .add = lmc_cpu_add,
    .scale = lmc_cpu_scale,
    .xent = lmc_cpu_xent,
    .xent_part = lmc_cpu_xent_part,
    .sum = lmc_cpu_sum,
    .adamw = lmc_cpu_adamw,
    .cast = lmc_cpu_cast,
};

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
    lmc_backend *be = calloc(1, sizeof *be);
    lmc_cpu *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return lmc_err(LMC_ENOMEM, "out of memory opening the cpu backend");
    }
    c->isa = chosen;
    c->dot = dot && chosen == LMC_ISA_AVX512 && dot_available();
    be->ops = &cpu_ops;
    be->name = "cpu";
    be->threads = threads > 0 ? threads : omp_get_num_procs();
    be->impl = c;
    *out = be;
    return LMC_OK;
}

void lmc_cpu_set_kc_cap(lmc_backend *be, int kc) { cpu_of(be)->kc_cap = kc; }
