/* colsum.cuh: deterministic column sums for weight and bias gradients.
 *
 * dst_k[col] += sum over rows r of f(r, col)[k], k < NOUT. Pass 1 splits the
 * rows into cu_colsum_chunks(rows) chunks (a function of the shape only) and
 * writes each chunk's sums to a partial row; pass 2 adds the partial rows in
 * order. No atomics: the same shape gives the same bits on every run. */
#ifndef LMC_CUDA_COLSUM_CUH
#define LMC_CUDA_COLSUM_CUH

#include "backend/cuda/cuda_common.cuh"

#define CU_COLSUM_TX 32
#define CU_COLSUM_TY 8

// partial (NOUT, chunks, cols); block (32, 8), grid (ceil(cols/32), chunks)
template <int NOUT, typename F>
__global__ void cu_colsum_partial_kernel(float *partial, F f, int rows, int cols, int chunk)
{
    CU_SHARED(float, sh, [NOUT][CU_COLSUM_TY][CU_COLSUM_TX + 1]);
    int tx = threadIdx.x, ty = threadIdx.y;
    int col = blockIdx.x * CU_COLSUM_TX + tx, y = blockIdx.y;
    int r0 = y * chunk, r1 = r0 + chunk < rows ? r0 + chunk : rows;
    float acc[NOUT];
    for (int k = 0; k < NOUT; k++)
        acc[k] = 0.0f;
    if (col < cols) {
        for (int r = r0 + ty; r < r1; r += CU_COLSUM_TY) {
            float v[NOUT];
            f(r, col, v);
            for (int k = 0; k < NOUT; k++)
                acc[k] += v[k];
        }
    }
    for (int k = 0; k < NOUT; k++)
        sh[k][ty][tx] = acc[k];
    __syncthreads();
    if (ty == 0 && col < cols) {
        for (int k = 0; k < NOUT; k++) {
            float s = 0.0f;
            for (int i = 0; i < CU_COLSUM_TY; i++)
                s += sh[k][i][tx];
            partial[((size_t)k * gridDim.y + y) * cols + col] = s;
        }
    }
}

// dst0[col] += sum_y partial[0][y][col]; dst1 likewise when NOUT == 2 and not NULL
__global__ void cu_colsum_final_kernel(float *dst0, float *dst1, const float *partial, int nout,
                                       int chunks, int cols);

/* Runs both passes; f is a device functor `void operator()(int r, int col, float *v)`. */
template <int NOUT, typename F>
void cu_colsum(lmc_backend *be, float *dst0, float *dst1, F f, int rows, int cols, const char *what)
{
    if (rows <= 0 || cols <= 0)
        return;
    int chunks = cu_colsum_chunks(rows);
    int chunk = (rows + chunks - 1) / chunks;
    float *partial = (float *)cu_scratch(be, (size_t)NOUT * chunks * cols * sizeof(float));
    if (!partial)
        return;
    dim3 grid((cols + CU_COLSUM_TX - 1) / CU_COLSUM_TX, chunks), block(CU_COLSUM_TX, CU_COLSUM_TY);
    auto pass1 = cu_colsum_partial_kernel<NOUT, F>;
    CU_LAUNCH(pass1, grid, block, 0, cu_of(be)->stream, partial, f, rows, cols, chunk);
    if (!cu_launched(be, what))
        return;
    CU_LAUNCH(cu_colsum_final_kernel, cu_grid((size_t)cols, 256), 256, 0, cu_of(be)->stream, dst0, dst1, partial, NOUT,
              chunks, cols);
    cu_launched(be, what);
}

#endif
