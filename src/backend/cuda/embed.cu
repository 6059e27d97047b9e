/* embed.cu: token (+ learned position) embedding and its gradient.
 *
 * The backward pass is deterministic and adds in the CPU's order: the
 * positions are sorted by token id with a stable radix sort (CUB), so each
 * token's rows are summed in increasing position order by one block; dwpe
 * sums over the batch in order. No atomics; the same bits as the CPU. */
#include "backend/cuda/cuda_common.cuh"

#ifndef LMC_CUDA_EMU
#include <cub/device/device_radix_sort.cuh>
#endif

// out (B,T,C) = wte[tokens] (+ wpe[pos0[b] + t])
__global__ static void embed_fwd_kernel(float *out, const int *tokens, const int *pos0, const float *wte,
                                        const float *wpe, int B, int T, int C)
{
    size_t total = (size_t)B * T * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t bt = i / (size_t)C;
        int c = (int)(i % (size_t)C), b = (int)(bt / T), t = (int)(bt % T);
        float e = wte[(size_t)tokens[bt] * C + c];
        if (wpe)
            e = e + wpe[(size_t)((pos0 ? pos0[b] : 0) + t) * C + c];
        out[i] = e;
    }
}

// dwpe (T,C) += sum over b of dout (B,T,C), b in order
__global__ static void embed_bwd_pos_kernel(float *dwpe, const float *dout, int B, int T, int C)
{
    size_t total = (size_t)T * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        float acc = dwpe[i];
        for (int b = 0; b < B; b++)
            acc += dout[(size_t)b * T * C + i];
        dwpe[i] = acc;
    }
}

__global__ static void iota_kernel(int *v, int n)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        v[i] = i;
}

// block i: if sorted position i starts a run of one token, dwte[token] += its rows in order
__global__ static void embed_bwd_tok_kernel(float *dwte, const float *dout, const int *keys, const int *rows, int N,
                                            int C)
{
    int i = blockIdx.x;
    if (i >= N || (i > 0 && keys[i - 1] == keys[i]))
        return;
    int tok = keys[i];
    float *w = dwte + (size_t)tok * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float acc = w[c];
        for (int j = i; j < N && keys[j] == tok; j++)
            acc += dout[(size_t)rows[j] * C + c];
        w[c] = acc;
    }
}

void cu_embed_forward(lmc_backend *be, float *out, const int *tokens, const int *pos0, const float *wte,
                      const float *wpe, int B, int T, int C)
{
    cu_enter(be);
    size_t total = (size_t)B * T * C;
    if (!total)
        return;
    CU_LAUNCH(embed_fwd_kernel, cu_grid(total, 256), 256, 0, cu_of(be)->stream, out, tokens, pos0, wte, wpe, B, T,
              C);
    cu_launched(be, "embed_forward");
}

/* Stable sort of (key, value) pairs by key, on the stream. temp may be NULL:
 * then only *temp_bytes is set. */
static cudaError_t sort_pairs(void *temp, size_t *temp_bytes, const int *keys_in, int *keys_out, const int *vals_in,
                              int *vals_out, int n, cudaStream_t st)
{
#ifndef LMC_CUDA_EMU
    return cub::DeviceRadixSort::SortPairs(temp, *temp_bytes, keys_in, keys_out, vals_in, vals_out, n, 0,
                                           (int)(sizeof(int) * 8), st);
#else
    return emu_sort_pairs(temp, temp_bytes, keys_in, keys_out, vals_in, vals_out, n);
#endif
}

// dwte (V,C) +=, dwpe (T,C) += (if not NULL), dout (B,T,C)
void cu_embed_backward(lmc_backend *be, float *dwte, float *dwpe, const float *dout, const int *tokens, int B,
                       int T, int C)
{
    lmc_cuda *cu = cu_of(be);
    cu_enter(be);
    int N = B * T;
    if (N <= 0 || C <= 0)
        return;
    if (dwpe) {
        CU_LAUNCH(embed_bwd_pos_kernel, cu_grid((size_t)T * C, 256), 256, 0, cu->stream, dwpe, dout, B, T, C);
        if (!cu_launched(be, "embed_backward dwpe"))
            return;
    }
    size_t temp_bytes = 0;
    if (!cu_ok(be, sort_pairs(NULL, &temp_bytes, tokens, NULL, NULL, NULL, N, cu->stream), "embed_backward sort"))
        return;
    size_t vec = cu_align_up((size_t)N * sizeof(int), 256);
    char *s = (char *)cu_scratch(be, 3 * vec + temp_bytes);
    if (!s)
        return;
    int *keys = (int *)s, *rows_in = (int *)(s + vec), *rows = (int *)(s + 2 * vec);
    CU_LAUNCH(iota_kernel, cu_grid((size_t)N, 256), 256, 0, cu->stream, rows_in, N);
    if (!cu_launched(be, "embed_backward"))
        return;
    if (!cu_ok(be, sort_pairs(s + 3 * vec, &temp_bytes, tokens, keys, rows_in, rows, N, cu->stream),
               "embed_backward sort"))
        return;
    CU_LAUNCH(embed_bwd_tok_kernel, (unsigned)N, 128, 0, cu->stream, dwte, dout, keys, rows, N, C);
    cu_launched(be, "embed_backward dwte");
}
