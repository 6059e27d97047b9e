/* rows.cu: rows by index, a mixture of experts' dropless dispatch: gather
 * (optionally weighted), weighted scatter-add into distinct rows (no two
 * threads write one element, so no atomics and the same bits every run),
 * and one dot product per row (a warp per row, as rmsnorm.cu). */
#include "backend/cuda/cuda_common.cuh"

#define ROWS_PER_BLOCK 8

#define GRID_STRIDE(i, n) \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

// out (n,C) = in[idx[i]] * (w ? w[i] : 1)
__global__ static void gather_kernel(float *out, const float *in, const int *idx, const float *w, int n, int C)
{
    GRID_STRIDE(e, (size_t)n * C) {
        size_t i = e / (size_t)C, c = e % (size_t)C;
        float x = in[(size_t)idx[i] * C + c];
        out[e] = w ? w[i] * x : x;
    }
}

// out[idx[i]] += w[i] * in[i]; the idx are distinct, so each element has one writer
__global__ static void scatter_add_kernel(float *out, const float *in, const int *idx, const float *w, int n, int C)
{
    GRID_STRIDE(e, (size_t)n * C) {
        size_t i = e / (size_t)C, c = e % (size_t)C;
        float *o = out + (size_t)idx[i] * C + c;
        *o = w ? *o + w[i] * in[e] : *o + in[e];
    }
}

// out (n) = a[idx[i]] . b[i], one warp per row
__global__ static void row_dot_kernel(float *out, const float *a, const int *idx, const float *b, int n, int C)
{
    int lane = threadIdx.x & 31, row = blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= n)
        return;
    const float *x = a + (size_t)(idx ? idx[row] : row) * C, *y = b + (size_t)row * C;
    float acc = 0.0f;
    for (int c = lane; c < C; c += 32)
        acc += x[c] * y[c];
    acc = cu_warp_sum(acc);
    if (lane == 0)
        out[row] = acc;
}

void cu_gather_rows(lmc_backend *be, float *out, const float *in, const int *idx, const float *w, int n, int C)
{
    cu_enter(be, LMC_OP_gather_rows);
    size_t total = (size_t)n * (size_t)C;
    if (n <= 0 || C <= 0)
        return;
    CU_LAUNCH(gather_kernel, cu_grid(total, 256), 256, 0, cu_of(be)->stream, out, in, idx, w, n, C);
    cu_launched(be, "gather_rows");
}

void cu_scatter_add_rows(lmc_backend *be, float *out, const float *in, const int *idx, const float *w, int n, int C)
{
    cu_enter(be, LMC_OP_scatter_add_rows);
    size_t total = (size_t)n * (size_t)C;
    if (n <= 0 || C <= 0)
        return;
    CU_LAUNCH(scatter_add_kernel, cu_grid(total, 256), 256, 0, cu_of(be)->stream, out, in, idx, w, n, C);
    cu_launched(be, "scatter_add_rows");
}

void cu_row_dot(lmc_backend *be, float *out, const float *a, const int *idx, const float *b, int n, int C)
{
    cu_enter(be, LMC_OP_row_dot);
    if (n <= 0)
        return;
    unsigned grid = (unsigned)((n + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
    CU_LAUNCH(row_dot_kernel, grid, 32 * ROWS_PER_BLOCK, 0, cu_of(be)->stream, out, a, idx, b, n, C);
    cu_launched(be, "row_dot");
}
