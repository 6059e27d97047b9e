/* elementwise.cu: add, scale, sum (double accumulation, deterministic), cast. */
#include "backend/cuda/cuda_common.cuh"

#define GRID_STRIDE(i, n) \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

// out may alias a or b
__global__ static void add_kernel(float *out, const float *a, const float *b, size_t n)
{
    GRID_STRIDE(i, n)
        out[i] = a[i] + b[i];
}

__global__ static void scale_kernel(float *x, float s, size_t n)
{
    GRID_STRIDE(i, n)
        x[i] *= s;
}

__global__ static void f32_to_bf16_kernel(uint16_t *dst, const float *src, size_t n)
{
    GRID_STRIDE(i, n)
        dst[i] = cu_f32_to_bf16(src[i]);
}

// dst (rows, ld) = src (rows, cols) in bf16, the ld - cols pad columns zeroed
__global__ static void f32_to_bf16_pad_kernel(uint16_t *dst, const float *src, size_t rows, int cols, int ld)
{
    GRID_STRIDE(i, rows * (size_t)ld) {
        size_t r = i / (size_t)ld;
        int c = (int)(i % (size_t)ld);
        dst[i] = c < cols ? cu_f32_to_bf16(src[r * cols + c]) : (uint16_t)0;
    }
}

__global__ static void bf16_to_f32_kernel(float *dst, const uint16_t *src, size_t n)
{
    GRID_STRIDE(i, n)
        dst[i] = cu_bf16_to_f32(src[i]);
}

void cu_add(lmc_backend *be, float *out, const float *a, const float *b, size_t n)
{
    cu_enter(be, LMC_OP_add);
    if (!n)
        return;
    CU_LAUNCH(add_kernel, cu_grid(n, 256), 256, 0, cu_of(be)->stream, out, a, b, n);
    cu_launched(be, "add");
}

void cu_scale(lmc_backend *be, float *x, float s, size_t n)
{
    cu_enter(be, LMC_OP_scale);
    if (!n)
        return;
    CU_LAUNCH(scale_kernel, cu_grid(n, 256), 256, 0, cu_of(be)->stream, x, s, n);
    cu_launched(be, "scale");
}

void cu_cast_f32_bf16(lmc_backend *be, uint16_t *dst, const float *src, size_t n)
{
    if (!n)
        return;
    CU_LAUNCH(f32_to_bf16_kernel, cu_grid(n, 256), 256, 0, cu_of(be)->stream, dst, src, n);
    cu_launched(be, "cast to bf16");
}

void cu_cast_f32_bf16_pad(lmc_backend *be, uint16_t *dst, const float *src, int rows, int cols, int ld)
{
    if (ld == cols) {
        cu_cast_f32_bf16(be, dst, src, (size_t)rows * cols);
        return;
    }
    size_t n = (size_t)rows * ld;
    if (!n)
        return;
    CU_LAUNCH(f32_to_bf16_pad_kernel, cu_grid(n, 256), 256, 0, cu_of(be)->stream, dst, src, (size_t)rows, cols, ld);
    cu_launched(be, "cast to bf16 (padded)");
}

// dst = src converted (F32 <-> BF16, round to nearest even)
void cu_cast(lmc_backend *be, void *dst, lmc_dtype dst_type, const void *src, lmc_dtype src_type, size_t n)
{
    cu_enter(be, LMC_OP_cast);
    if (!n)
        return;
    if (dst_type == src_type) {
        size_t bytes = n * (dst_type == LMC_F32 ? 4 : 2);
        if (dst != src)
            cu_ok(be, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cu_of(be)->stream), "cast");
        return;
    }
    if (dst_type == LMC_BF16) {
        cu_cast_f32_bf16(be, (uint16_t *)dst, (const float *)src, n);
        return;
    }
    CU_LAUNCH(bf16_to_f32_kernel, cu_grid(n, 256), 256, 0, cu_of(be)->stream, (float *)dst,
              (const uint16_t *)src, n);
    cu_launched(be, "cast to f32");
}

/* ---------- sum ----------
 * Pass 1: a grid fixed by n, each thread a strided double sum, each block a
 * fixed-order tree; pass 2: one block adds the block sums in a fixed tree and
 * writes the float. Same n, same bits; no host round trip. */

#define SUM_THREADS 256
#define SUM_MAX_BLOCKS 1024

__global__ static void sum_partial_kernel(double *part, const float *x, size_t n, int squares)
{
    CU_SHARED(double, sh, [32]);
    double acc = 0.0;
    GRID_STRIDE(i, n) {
        double v = x[i];
        acc += squares ? v * v : v;
    }
    acc = cu_block_sum(acc, sh);
    if (threadIdx.x == 0)
        part[blockIdx.x] = acc;
}

__global__ static void sum_final_kernel(float *out, const double *part, int nparts)
{
    CU_SHARED(double, sh, [32]);
    double acc = 0.0;
    for (int i = threadIdx.x; i < nparts; i += blockDim.x)
        acc += part[i];
    acc = cu_block_sum(acc, sh);
    if (threadIdx.x == 0)
        out[0] = (float)acc;
}

// out[0] = sum of x (squares: of x^2), accumulated in double
void cu_sum(lmc_backend *be, float *out, const float *x, size_t n, int squares)
{
    cu_enter(be, LMC_OP_sum);
    size_t nb = (n + SUM_THREADS * 8 - 1) / (SUM_THREADS * 8);
    int blocks = nb < 1 ? 1 : nb > SUM_MAX_BLOCKS ? SUM_MAX_BLOCKS : (int)nb;
    double *part = (double *)cu_scratch(be, (size_t)blocks * sizeof(double));
    if (!part)
        return;
    cudaStream_t st = cu_of(be)->stream;
    CU_LAUNCH(sum_partial_kernel, blocks, SUM_THREADS, 0, st, part, x, n, squares);
    if (!cu_launched(be, "sum"))
        return;
    CU_LAUNCH(sum_final_kernel, 1, 1024, 0, st, out, part, blocks);
    cu_launched(be, "sum");
}
