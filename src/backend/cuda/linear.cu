/* linear.cu: the inference linear layer, out (M,N) (+)= inp (M,K) . W^T
 * (+ bias), W stored (N,K) in fp32, bf16, or int8 with a scale per row.
 *
 * Decode multiplies a handful of rows by every weight, so it is bound by how
 * fast the weights stream from memory: one warp per weight row reads it once
 * (coalesced), converts to fp32 in registers and dots it with up to 8 input
 * rows; the input rows are small and stay in cache. Larger M runs in groups
 * of 8 rows (grid y, looping past 65535 groups), re-reading W per group:
 * correct for prefill, but a GEMM would be faster there (fp32 weights take
 * it: cuBLASLt via matmul).
 * The CPU's arithmetic: fp32 products and sums, then acc * scale + bias. */
#include "backend/cuda/cuda_common.cuh"

#include <string.h>

#define LIN_MR 8    /* input rows per warp */
#define LIN_WARPS 8 /* weight rows per block */

template <int WT> __device__ static inline float w_at(const void *w, size_t i)
{
    if (WT == LMC_F32)
        return ((const float *)w)[i];
    if (WT == LMC_BF16)
        return cu_bf16_to_f32(((const uint16_t *)w)[i]);
    return (float)((const int8_t *)w)[i];
}

// out (M,N); block: LIN_WARPS weight rows x LIN_MR input rows, groups of
// input rows m0 = (blockIdx.y + k gridDim.y) * LIN_MR (grid y is at most 65535)
template <int WT>
__global__ static void linear_kernel(float *out, const float *inp, const void *w, const float *scale,
                                     const float *bias, int M, int N, int K, int accumulate)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int m0 = blockIdx.y * LIN_MR; m0 < M; m0 += gridDim.y * LIN_MR) { /* block-uniform */
        int mr = M - m0 < LIN_MR ? M - m0 : LIN_MR;
        for (int n = blockIdx.x * LIN_WARPS + warp; n < N; n += gridDim.x * LIN_WARPS) { /* warp-uniform */
            float acc[LIN_MR];
            for (int m = 0; m < LIN_MR; m++)
                acc[m] = 0.0f;
            size_t row = (size_t)n * K;
            for (int k = lane; k < K; k += 32) {
                float wv = w_at<WT>(w, row + k);
                for (int m = 0; m < LIN_MR; m++)
                    if (m < mr)
                        acc[m] += inp[(size_t)(m0 + m) * K + k] * wv;
            }
            for (int m = 0; m < LIN_MR; m++)
                acc[m] = cu_warp_sum(acc[m]);
            if (lane == 0) {
                for (int m = 0; m < mr; m++) {
                    float v = acc[m] * (scale ? scale[n] : 1.0f) + (bias ? bias[n] : 0.0f);
                    float *o = out + (size_t)(m0 + m) * N + n;
                    *o = accumulate ? *o + v : v;
                }
            }
        }
    }
}

void cu_linear(lmc_backend *be, float *out, const float *inp, const void *w, lmc_dtype wtype, const float *scale,
               const float *bias, int M, int N, int K, int accumulate)
{
    cu_enter(be, LMC_OP_linear);
    if (M <= 0 || N <= 0)
        return;
    if (wtype == LMC_F32 && M > LIN_MR && K > 0) { /* prefill with fp32 weights: a GEMM */
        lmc_gemm g;
        memset(&g, 0, sizeof g);
        g.m = M, g.n = N, g.k = K, g.trans_b = 1, g.accumulate = accumulate, g.prec = LMC_F32, g.bias = bias;
        cu_matmul(be, out, inp, (const float *)w, &g);
        return;
    }
    if (wtype != LMC_I8)
        scale = NULL;
    unsigned gx = (unsigned)((N + LIN_WARPS - 1) / LIN_WARPS);
    if (gx > 65536)
        gx = 65536;
    unsigned gy = (unsigned)((M + LIN_MR - 1) / LIN_MR);
    dim3 grid(gx, gy > 65535 ? 65535 : gy);
    cudaStream_t st = cu_of(be)->stream;
    if (wtype == LMC_F32) {
        CU_LAUNCH(linear_kernel<LMC_F32>, grid, 32 * LIN_WARPS, 0, st, out, inp, w, scale, bias, M, N, K, accumulate);
    } else if (wtype == LMC_BF16) {
        CU_LAUNCH(linear_kernel<LMC_BF16>, grid, 32 * LIN_WARPS, 0, st, out, inp, w, scale, bias, M, N, K, accumulate);
    } else {
        CU_LAUNCH(linear_kernel<LMC_I8>, grid, 32 * LIN_WARPS, 0, st, out, inp, w, scale, bias, M, N, K, accumulate);
    }
    cu_launched(be, "linear");
}
