/* matmul.cu: C = op(A) op(B) (+ bias) (+ GELU) with cuBLASLt, and the bias
 * gradient.
 *
 * Row-major onto column-major: a row-major (r,c) matrix is the column-major
 * (c,r) matrix with the same leading dimension. So row-major C (m,n) = op(A)
 * op(B) is column-major C^T (n,m) = op(B)^T op(A)^T: cuBLASLt's first
 * operand is our B, its second our A, and our transposes carry over as they
 * are (B stored (k,n) is column-major (n,k) = op(B)^T already: OP_N; B stored
 * (n,k) is column-major (k,n): OP_T; the same for A with m for n).
 *
 * Precision: LMC_F32 is plain fp32 (CUBLAS_COMPUTE_32F, no TF32: CU_F32_COMPUTE
 * as backend/peaks.h's LMC_CUDA_F32_TF32 sets it) so results match the CPU
 * tightly. LMC_BF16 rounds A and B to bf16 (round to nearest
 * even, the CPU's bits) into scratch and multiplies those with fp32
 * accumulation and fp32 output. The bf16 copies' rows are padded to a
 * multiple of 8 elements (16 bytes) and start 256-byte aligned: tensor-core
 * kernels need that of every operand, and with an odd k (or m, n) an
 * unpadded copy would leave cuBLASLt slow fallbacks or no algorithm at all.
 *
 * Epilogues: the bias is added by cuBLASLt's BIAS epilogue (an exact add)
 * when the bias pointer is 16-byte aligned (below that the epilogue may
 * fault on some CUDA 13 versions). GELU is our own tanhf kernel after the
 * GEMM unless lmc_cuda_set_fused_gelu turned on cuBLASLt's GELU(_AUX)
 * epilogue for bf16 (off by default: its accuracy is not documented, and
 * gelu_forward cannot reproduce its bits). When cuBLASLt offers no algorithm
 * for a fused form (alignment, ld), our own kernels do the bias and GELU
 * around a plain GEMM, in the CPU's order.
 */
#include "backend/cuda/colsum.cuh"

#include <string.h>

/* ---------- small kernels ---------- */

// c (m,n) = (acc ? c : 0) + bias (n)
__global__ static void bias_fill_kernel(float *c, const float *bias, int m, int n, int acc)
{
    size_t total = (size_t)m * n;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        float b = bias[i % (size_t)n];
        c[i] = acc ? c[i] + b : b;
    }
}

__global__ void cu_colsum_final_kernel(float *dst0, float *dst1, const float *partial, int nout,
                                       int chunks, int cols)
{
    for (int col = blockIdx.x * blockDim.x + threadIdx.x; col < cols; col += gridDim.x * blockDim.x) {
        for (int k = 0; k < nout; k++) {
            float *dst = k == 0 ? dst0 : dst1;
            if (!dst)
                continue;
            float s = 0.0f;
            for (int y = 0; y < chunks; y++)
                s += partial[((size_t)k * chunks + y) * cols + col];
            dst[col] += s;
        }
    }
}

int cu_colsum_chunks(int rows)
{
    /* about 32 rows per chunk, at most 256 chunks: enough blocks to fill
     * the device for the shapes we train, few partial rows to add */
    int c = (rows + 31) / 32;
    return c < 1 ? 1 : c > 256 ? 256 : c;
}

/* ---------- cuBLASLt ---------- */

static int align_of(const void *p)
{
    uintptr_t u = (uintptr_t)p;
    int a = 256;
    while (a > 4 && (u % (uintptr_t)a))
        a >>= 1;
    return a;
}

static int log2i(int a)
{
    int l = 0;
    while (a > 1)
        a >>= 1, l++;
    return l;
}

#define LT_TRY(expr)                              \
    do {                                          \
        if ((expr) != CUBLAS_STATUS_SUCCESS)      \
            goto done;                            \
    } while (0)

#define LT_RESULTS 4 /* heuristic results asked for: the first usable one is taken */

typedef struct {
    const void *x, *y; /* cuBLASLt's A (our B) and B (our A) */
    int64_t ldx, ldy;  /* their leading dimensions (bf16 copies: padded) */
    float *c;
    int bf16;
    cublasLtEpilogue_t epi;
    const float *bias;
    float *aux;
    float beta;
} lt_call;

/* One cuBLASLt matmul. Returns 1 when it was enqueued, 0 when cuBLASLt
 * refused this form (no algorithm, or an error): the caller falls back to
 * the unfused form, and records a failure if that is refused too. */
static int lt_matmul(lmc_backend *be, const lmc_gemm *g, const lt_call *L)
{
    lmc_cuda *cu = cu_of(be);
    int m = g->m, n = g->n, k = g->k, ok = 0;
    cudaDataType_t in = L->bf16 ? CUDA_R_16BF : CUDA_R_32F;
    cublasOperation_t opx = g->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t opy = g->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t xl = NULL, yl = NULL, dl = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    int32_t epi = (int32_t)L->epi;
    float alpha = 1.0f, beta = L->beta;
    /* alignments (log2) of every pointer cuBLASLt looks at, packed: part of
     * the algorithm's validity, hence of the cache key */
    int ax = align_of(L->x), ay = align_of(L->y), ac = align_of(L->c);
    int key_align = log2i(ax) | log2i(ay) << 4 | log2i(ac) << 8 |
                    (L->bias ? log2i(align_of(L->bias)) : 0) << 12 | (L->aux ? log2i(align_of(L->aux)) : 0) << 16;
    cu_algo_entry *hit = NULL;
    for (int i = 0; i < CU_ALGO_CACHE; i++) {
        cu_algo_entry *e = &cu->algos[i];
        if (e->valid && e->m == m && e->n == n && e->k == k && e->ta == g->trans_a && e->tb == g->trans_b &&
            e->prec == L->bf16 && e->epi == epi && e->beta1 == (beta != 0.0f) && e->align == key_align) {
            hit = e;
            break;
        }
    }

    LT_TRY(cublasLtMatmulDescCreate(&op, L->bf16 ? CUBLAS_COMPUTE_32F : CU_F32_COMPUTE, CUDA_R_32F));
    LT_TRY(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &opx, sizeof opx));
    LT_TRY(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &opy, sizeof opy));
    LT_TRY(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    if (L->bias)
        LT_TRY(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &L->bias, sizeof L->bias));
    if (L->aux) {
        int64_t ld = n; /* pre (m,n) row-major = column-major (n,m), ld n */
        LT_TRY(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &L->aux, sizeof L->aux));
        LT_TRY(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ld, sizeof ld));
    }
    // X: our B, column-major (n,k), or (k,n) when trans_b
    LT_TRY(cublasLtMatrixLayoutCreate(&xl, in, g->trans_b ? k : n, g->trans_b ? n : k, L->ldx));
    // Y: our A, column-major (k,m), or (m,k) when trans_a
    LT_TRY(cublasLtMatrixLayoutCreate(&yl, in, g->trans_a ? m : k, g->trans_a ? k : m, L->ldy));
    // D = C: column-major (n,m) ld n
    LT_TRY(cublasLtMatrixLayoutCreate(&dl, CUDA_R_32F, n, m, n));

    if (!hit) {
        size_t ws = CU_LT_WS_BYTES;
        uint32_t a32x = (uint32_t)ax, a32y = (uint32_t)ay, a32c = (uint32_t)ac;
        cublasLtMatmulHeuristicResult_t res[LT_RESULTS];
        int found = 0, use = -1;
        LT_TRY(cublasLtMatmulPreferenceCreate(&pref));
        LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
        LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &a32x, sizeof a32x));
        LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &a32y, sizeof a32y));
        LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &a32c, sizeof a32c));
        LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &a32c, sizeof a32c));
        if (cublasLtMatmulAlgoGetHeuristic(cu->lt, op, xl, yl, dl, dl, pref, LT_RESULTS, res, &found) !=
            CUBLAS_STATUS_SUCCESS)
            goto done;
        /* a result's other fields are valid only when its state is SUCCESS */
        for (int i = 0; i < found && i < LT_RESULTS && use < 0; i++)
            if (res[i].state == CUBLAS_STATUS_SUCCESS)
                use = i;
        if (use < 0)
            goto done;
        hit = &cu->algos[cu->algo_next];
        cu->algo_next = (cu->algo_next + 1) % CU_ALGO_CACHE;
        hit->m = m, hit->n = n, hit->k = k, hit->ta = g->trans_a, hit->tb = g->trans_b;
        hit->prec = L->bf16, hit->epi = epi, hit->beta1 = beta != 0.0f, hit->align = key_align;
        hit->algo = res[use].algo;
        hit->valid = 1;
    }
    if (cublasLtMatmul(cu->lt, op, &alpha, L->x, xl, L->y, yl, &beta, L->c, dl, L->c, dl, &hit->algo, cu->lt_ws,
                       CU_LT_WS_BYTES, cu->stream) != CUBLAS_STATUS_SUCCESS) {
        hit->valid = 0;
        goto done;
    }
    ok = 1;
done:
    if (pref)
        cublasLtMatmulPreferenceDestroy(pref);
    if (dl)
        cublasLtMatrixLayoutDestroy(dl);
    if (yl)
        cublasLtMatrixLayoutDestroy(yl);
    if (xl)
        cublasLtMatrixLayoutDestroy(xl);
    if (op)
        cublasLtMatmulDescDestroy(op);
    return ok;
}

/* The epilogue for this call if cuBLASLt may do it, else DEFAULT (our kernels
 * then do bias and GELU). */
static cublasLtEpilogue_t fused_epilogue(lmc_backend *be, const lmc_gemm *g, int bf16)
{
    if (g->bias && align_of(g->bias) < 16) /* the epilogue reads the bias in 16-byte vectors */
        return CUBLASLT_EPILOGUE_DEFAULT;
    if (g->gelu) {
        /* gelu with accumulate is outside the contract; do it the CPU's way */
        if (!bf16 || !cu_of(be)->fuse_gelu || g->accumulate)
            return CUBLASLT_EPILOGUE_DEFAULT;
        if (g->pre && (g->n % 8 != 0 || align_of(g->pre) < 16)) /* aux ld and pointer rules */
            return CUBLASLT_EPILOGUE_DEFAULT;
        if (g->bias)
            return g->pre ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_BIAS;
        return g->pre ? CUBLASLT_EPILOGUE_GELU_AUX : CUBLASLT_EPILOGUE_GELU;
    }
    return g->bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
}

void cu_matmul(lmc_backend *be, float *c, const float *a, const float *b, const lmc_gemm *g)
{
    lmc_cuda *cu = cu_of(be);
    int m = g->m, n = g->n, k = g->k;
    int bf16 = g->prec == LMC_BF16;
    cu_enter(be, LMC_OP_matmul);
    if (m <= 0 || n <= 0)
        return;
    // A stored (m,k), or (k,m) when trans_a; B stored (k,n), or (n,k) when trans_b
    int ra = g->trans_a ? k : m, ca = g->trans_a ? m : k, rb = g->trans_b ? n : k, cb = g->trans_b ? k : n;
    lt_call L;
    L.x = b, L.y = a, L.ldx = cb, L.ldy = ca, L.c = c, L.bf16 = bf16;
    if (bf16 && k > 0) { /* rows padded to 8 elements (16 bytes) */
        L.ldy = (int64_t)cu_align_up((size_t)ca, 8), L.ldx = (int64_t)cu_align_up((size_t)cb, 8);
        size_t oa = 0, ob = cu_align_up((size_t)ra * L.ldy * 2, 256);
        char *s = (char *)cu_scratch(be, ob + (size_t)rb * L.ldx * 2);
        if (!s)
            return;
        cu_cast_f32_bf16_pad(be, (uint16_t *)(s + oa), a, ra, ca, (int)L.ldy);
        cu_cast_f32_bf16_pad(be, (uint16_t *)(s + ob), b, rb, cb, (int)L.ldx);
        L.y = s + oa;
        L.x = s + ob;
    }

    if (k > 0) {
        L.epi = fused_epilogue(be, g, bf16);
        if (L.epi != CUBLASLT_EPILOGUE_DEFAULT) {
            L.bias = g->bias;
            L.aux = (L.epi == CUBLASLT_EPILOGUE_GELU_AUX || L.epi == CUBLASLT_EPILOGUE_GELU_AUX_BIAS) ? g->pre : NULL;
            L.beta = g->accumulate && !g->gelu ? 1.0f : 0.0f;
            if (lt_matmul(be, g, &L))
                return;
        }
    }

    /* unfused: C = (acc ? C : 0) + bias, then C += A.B, then GELU (the CPU's order) */
    float beta = g->accumulate ? 1.0f : 0.0f;
    if (g->bias) {
        CU_LAUNCH(bias_fill_kernel, cu_grid((size_t)m * n, 256), 256, 0, cu->stream, c, g->bias, m, n,
                  g->accumulate);
        if (!cu_launched(be, "matmul bias"))
            return;
        beta = 1.0f;
    }
    if (k > 0) {
        L.epi = CUBLASLT_EPILOGUE_DEFAULT;
        L.bias = NULL;
        L.aux = NULL;
        L.beta = beta;
        if (lt_matmul(be, g, &L) != 1) {
            cu_fail(be, "matmul: cuBLASLt has no algorithm for m=%d n=%d k=%d trans_a=%d trans_b=%d %s", m, n, k,
                    g->trans_a, g->trans_b, bf16 ? "bf16" : "fp32");
            return;
        }
    } else if (beta == 0.0f) {
        cu_ok(be, cudaMemsetAsync(c, 0, (size_t)m * n * sizeof(float), cu->stream), "matmul k=0");
    }
    if (g->gelu)
        cu_gelu_inplace_keep(be, c, g->pre, (size_t)m * n);
}

/* ---------- bias gradient ---------- */

struct colsum_plain {
    const float *x;
    int n;
    __device__ void operator()(int r, int col, float *v) const { v[0] = x[(size_t)r * n + col]; }
};

// dbias (n) += column sums of dout (m,n)
void cu_bias_grad(lmc_backend *be, float *dbias, const float *dout, int m, int n)
{
    cu_enter(be, LMC_OP_bias_grad);
    colsum_plain f = {dout, n};
    cu_colsum<1>(be, dbias, (float *)NULL, f, m, n, "bias_grad");
}
