/* emu_lt.cpp: cuBLASLt from its documented column-major semantics, and
 * CUB's radix sort, for the emulation.
 *
 * D (M,N) = alpha op(A) (M,K) op(B) (K,N) + beta C, column-major with
 * leading dimensions; BIAS adds bias[i] (i: row of D) to every column; GELU
 * epilogues write the pre-activation to aux (ld auxld) and D = gelu.
 * Products are summed in fp32 in k order, as a GPU's fp32 accumulators do
 * (not in double, which would hide rounding).
 *
 * Strict where cuBLASLt may refuse or fault:
 *  - types: compute and scale fp32; A and B both fp32 or both bf16, C = D
 *    fp32. Anything else is NOT_SUPPORTED;
 *  - alignment: every pointer aligned to its element; a bf16 operand needs
 *    16-byte pointers and a leading dimension that is a multiple of 8 (the
 *    tensor-core kernels' rule; cuBLASLt may have slow fallbacks, the
 *    emulation has none, because the backend means to get tensor cores);
 *    the heuristic answers NOT_SUPPORTED with no algorithm, and the matmul
 *    refuses pointers less aligned than the algorithm was chosen for;
 *  - the GELU_AUX buffer needs a 16-byte pointer and an ld multiple of 8;
 *  - a BIAS epilogue's bias pointer below 16-byte alignment faults the
 *    device when the GEMM runs (misaligned address, sticky);
 *  - EMU_LT_BAD_FIRST: the heuristic's first result carries a state other
 *    than SUCCESS (its algo is garbage: a matmul with it fails). */
#include "emu_internal.h"

#include <algorithm>
#include <numeric>
#include <stdio.h>
#include <stdlib.h>
#include <vector>

#define ALGO_MAGIC 0x656d756c74616c67ull /* data[4] of an algo the heuristic chose */

struct emu_desc {
    cublasComputeType_t compute;
    cudaDataType_t scale;
    cublasOperation_t ta = CUBLAS_OP_N, tb = CUBLAS_OP_N;
    int epi = CUBLASLT_EPILOGUE_DEFAULT;
    const float *bias = nullptr;
    float *aux = nullptr;
    int64_t auxld = 0;
};
struct emu_layout {
    cudaDataType_t t;
    uint64_t rows, cols;
    int64_t ld;
};
struct emu_pref {
    uint32_t align[4] = {256, 256, 256, 256};
};

cublasStatus_t cublasLtCreate(cublasLtHandle_t *h)
{
    *h = (cublasLtHandle_t)malloc(1);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h)
{
    free(h);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t ct, cudaDataType_t scale)
{
    emu_desc *x = new emu_desc;
    x->compute = ct;
    x->scale = scale;
    *d = (cublasLtMatmulDesc_t)x;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d)
{
    delete (emu_desc *)d;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d0, cublasLtMatmulDescAttributes_t a, const void *v,
                                              size_t n)
{
    emu_desc *d = (emu_desc *)d0;
    switch (a) {
    case CUBLASLT_MATMUL_DESC_TRANSA: memcpy(&d->ta, v, n); break;
    case CUBLASLT_MATMUL_DESC_TRANSB: memcpy(&d->tb, v, n); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE: {
        int32_t e;
        memcpy(&e, v, sizeof e);
        d->epi = e;
        break;
    }
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: memcpy(&d->bias, v, n); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER: memcpy(&d->aux, v, n); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD: memcpy(&d->auxld, v, n); break;
    default: return CUBLAS_STATUS_INVALID_VALUE;
    }
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType_t t, uint64_t rows, uint64_t cols,
                                          int64_t ld)
{
    if (ld < (int64_t)rows || ld < 1)
        return CUBLAS_STATUS_INVALID_VALUE;
    *l = (cublasLtMatrixLayout_t) new emu_layout{t, rows, cols, ld};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l)
{
    delete (emu_layout *)l;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p)
{
    *p = (cublasLtMatmulPreference_t) new emu_pref;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p)
{
    delete (emu_pref *)p;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p0,
                                                    cublasLtMatmulPreferenceAttributes_t a, const void *v, size_t n)
{
    emu_pref *p = (emu_pref *)p0;
    if (a >= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES && a <= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES)
        memcpy(&p->align[a - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES], v, n);
    return CUBLAS_STATUS_SUCCESS;
}

/* Do the shapes of A, B, D agree with the transposes? */
static int shapes_ok(const emu_desc *d, const emu_layout *a, const emu_layout *b, const emu_layout *dl, uint64_t *K)
{
    uint64_t M = dl->rows, N = dl->cols;
    uint64_t am = d->ta == CUBLAS_OP_N ? a->rows : a->cols, ak = d->ta == CUBLAS_OP_N ? a->cols : a->rows;
    uint64_t bk = d->tb == CUBLAS_OP_N ? b->rows : b->cols, bn = d->tb == CUBLAS_OP_N ? b->cols : b->rows;
    *K = ak;
    return am == M && bn == N && ak == bk;
}

/* The types and layouts offered (see the top); why not, or NULL. */
static const char *unsupported(const emu_desc *d, const emu_layout *a, const emu_layout *b, const emu_layout *c,
                               const emu_layout *dl, const uint32_t *align)
{
    if ((d->compute != CUBLAS_COMPUTE_32F && d->compute != CUBLAS_COMPUTE_32F_FAST_TF32) || d->scale != CUDA_R_32F)
        return "compute or scale type";
    if (a->t != b->t || (a->t != CUDA_R_32F && a->t != CUDA_R_16BF) || c->t != CUDA_R_32F || dl->t != CUDA_R_32F)
        return "type combination";
    const emu_layout *ls[4] = {a, b, c, dl};
    for (int i = 0; i < 4; i++) {
        unsigned need = ls[i]->t == CUDA_R_16BF ? 16 : 4;
        if (align[i] < need || align[i] % need)
            return "pointer alignment";
        if (ls[i]->t == CUDA_R_16BF && ls[i]->ld % 8)
            return "leading dimension (bf16: a multiple of 8)";
    }
    if ((d->epi & 128) && (!d->aux || (uintptr_t)d->aux % 16 || d->auxld % 8 || d->auxld < (int64_t)dl->rows))
        return "GELU aux buffer alignment or leading dimension";
    return nullptr;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t d0, cublasLtMatrixLayout_t a,
                                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
                                              cublasLtMatrixLayout_t dl, cublasLtMatmulPreference_t p0, int want,
                                              cublasLtMatmulHeuristicResult_t *res, int *found)
{
    emu_desc *d = (emu_desc *)d0;
    emu_pref *p = (emu_pref *)p0;
    uint64_t K;
    *found = 0;
    if (want < 1)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (!shapes_ok(d, (emu_layout *)a, (emu_layout *)b, (emu_layout *)dl, &K)) {
        fprintf(stderr, "emu cuBLASLt: inconsistent shapes\n");
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (unsupported(d, (emu_layout *)a, (emu_layout *)b, (emu_layout *)c, (emu_layout *)dl, p->align))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    /* EMU_LT_NO_EPILOGUE: pretend no fused algorithm exists (tests the fallback) */
    if (d->epi != CUBLASLT_EPILOGUE_DEFAULT && getenv("EMU_LT_NO_EPILOGUE"))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    int n = 0;
    if (getenv("EMU_LT_BAD_FIRST")) {
        memset(&res[n], 0xab, sizeof res[n]); /* garbage but the state */
        res[n++].state = CUBLAS_STATUS_NOT_SUPPORTED;
    }
    for (; n < want && n < 2; n++) {
        memset(&res[n], 0, sizeof res[n]);
        for (int i = 0; i < 4; i++)
            res[n].algo.data[i] = p->align[i]; /* matmul checks the pointers against these */
        res[n].algo.data[4] = ALGO_MAGIC;
        res[n].state = CUBLAS_STATUS_SUCCESS;
    }
    *found = std::min(n, want);
    return CUBLAS_STATUS_SUCCESS;
}

static float load(const void *m, cudaDataType_t t, size_t i)
{
    if (t == CUDA_R_32F)
        return ((const float *)m)[i];
    uint32_t u = (uint32_t)((const uint16_t *)m)[i] << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* the GEMM itself, when the stream runs it */
static void gemm(const emu_desc d, const emu_layout al, const emu_layout bl, const emu_layout cl, const emu_layout dl,
                 uint64_t K, float a, float bt, const void *A, const void *B, const float *C, float *D)
{
    if (d.bias && (d.epi & 4) && (uintptr_t)d.bias % 16) {
        char why[128];
        snprintf(why, sizeof why, "cublasLtMatmul: bias epilogue read %p, not 16-byte aligned", (const void *)d.bias);
        emu_device_fault(cudaErrorMisalignedAddress, why);
        return;
    }
    for (uint64_t j = 0; j < dl.cols; j++)
        for (uint64_t i = 0; i < dl.rows; i++) {
            float acc = 0.0f;
            for (uint64_t l = 0; l < K; l++) {
                size_t ia = d.ta == CUBLAS_OP_N ? i + l * al.ld : l + i * al.ld;
                size_t ib = d.tb == CUBLAS_OP_N ? l + j * bl.ld : j + l * bl.ld;
                acc += load(A, al.t, ia) * load(B, bl.t, ib);
            }
            float v = a * acc;
            if (bt != 0.0f)
                v += bt * C[i + j * cl.ld];
            if (d.epi & 4)
                v += d.bias[i];
            if (d.epi & 32) {
                if (d.epi & 128)
                    d.aux[i + j * d.auxld] = v;
                v = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
            }
            D[i + j * dl.ld] = v;
        }
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t d0, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t al0, const void *B, cublasLtMatrixLayout_t bl0, const void *beta,
                              const void *C, cublasLtMatrixLayout_t cl0, void *D, cublasLtMatrixLayout_t dl0,
                              const cublasLtMatmulAlgo_t *algo, void *, size_t, cudaStream_t s)
{
    emu_desc *d = (emu_desc *)d0;
    emu_layout *al = (emu_layout *)al0, *bl = (emu_layout *)bl0, *cl = (emu_layout *)cl0, *dl = (emu_layout *)dl0;
    if (!algo || algo->data[4] != ALGO_MAGIC) {
        fprintf(stderr, "emu cuBLASLt: an algo that no successful heuristic result gave\n");
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    const void *ptrs[4] = {A, B, C, D};
    uint32_t align[4];
    for (int i = 0; i < 4; i++) {
        if ((uintptr_t)ptrs[i] % algo->data[i]) {
            fprintf(stderr, "emu cuBLASLt: pointer %d (%p) is not %llu-byte aligned as the algorithm was chosen for\n",
                    i, ptrs[i], (unsigned long long)algo->data[i]);
            return CUBLAS_STATUS_NOT_SUPPORTED;
        }
        align[i] = (uint32_t)algo->data[i];
    }
    uint64_t K;
    if (!shapes_ok(d, al, bl, dl, &K) || cl->rows != dl->rows || cl->cols != dl->cols)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (unsupported(d, al, bl, cl, dl, align))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    float a = *(const float *)alpha, bt = *(const float *)beta; /* host scalars: read at the call */
    emu_desc dc = *d;
    emu_layout alc = *al, blc = *bl, clc = *cl, dlc = *dl;
    emu_enqueue(s, [=]() { gemm(dc, alc, blc, clc, dlc, K, a, bt, A, B, (const float *)C, (float *)D); });
    return CUBLAS_STATUS_SUCCESS;
}

/* ---------- CUB stand-in: a stable sort of pairs, queued ---------- */

cudaError_t emu_sort_pairs(void *temp, size_t *temp_bytes, const int *keys_in, int *keys_out, const int *vals_in,
                           int *vals_out, int n, cudaStream_t s)
{
    if (!temp) {
        *temp_bytes = 64;
        return cudaSuccess;
    }
    emu_enqueue(s, [=]() {
        std::vector<int> idx(n);
        std::iota(idx.begin(), idx.end(), 0);
        std::stable_sort(idx.begin(), idx.end(), [&](int x, int y) { return keys_in[x] < keys_in[y]; });
        std::vector<int> k(n), v(n);
        for (int i = 0; i < n; i++)
            k[i] = keys_in[idx[i]], v[i] = vals_in[idx[i]];
        memcpy(keys_out, k.data(), n * sizeof(int));
        memcpy(vals_out, v.data(), n * sizeof(int));
    });
    return cudaSuccess;
}
