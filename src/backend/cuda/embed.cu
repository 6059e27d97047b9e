/* embed.cu: token (+ learned position) embedding and its gradient.
 *
 * The backward pass is deterministic without atomics: the positions are
 * sorted by token id with a stable radix sort (CUB), so each token's rows
 * form a run in increasing position order. On real text a few tokens are
 * very frequent (Zipf: "the", ",", "." are several percent of a batch), so
 * one block per token would add thousands of rows in one dependent chain
 * while the rest of the device idles. The sorted positions are therefore cut
 * into segments of EMB_SEG: a run inside one segment is added by that
 * segment's block in the CPU's order (the same bits), and a run crossing
 * segments is summed piece by piece (each piece in order, into a partial
 * row), then the pieces are added to dwte in segment order by one block.
 * Every order is fixed by the sorted tokens, so the bits are the same on
 * every run; no chain is longer than EMB_SEG rows plus one partial row per
 * EMB_SEG occurrences. dwpe sums over the batch in order. A negative id
 * (vocabulary parallelism: another rank's row) embeds as zeros and adds no
 * gradient; radix sort puts those first. */
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
        int tok = tokens[bt];
        float e = tok >= 0 ? wte[(size_t)tok * C + c] : 0.0f; /* < 0: another rank's row */
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

#define EMB_SEG 64 /* sorted positions per segment */

/* Does the run of keys[i] continue into sorted position j? */
__device__ static inline int same_run(const int *keys, int i, int j, int N)
{
    return j >= 0 && j < N && keys[j] == keys[i];
}

// Block s: the pieces of runs in sorted positions [s*EMB_SEG, +EMB_SEG). A
// whole run: dwte[token] += its rows in order. A piece of a longer run: its
// rows in order into part (nseg, 2, C), slot 0 when the piece starts the
// segment, slot 1 when it ends it (both when it is the whole segment).
__global__ static void embed_bwd_seg_kernel(float *dwte, float *part, const float *dout, const int *keys,
                                            const int *rows, int N, int C)
{
    int s = blockIdx.x, p0 = s * EMB_SEG, p1 = p0 + EMB_SEG < N ? p0 + EMB_SEG : N;
    for (int i = p0; i < p1;) { /* block-uniform */
        int j = i + 1;
        while (j < p1 && keys[j] == keys[i])
            j++;
        int head = i == p0 && same_run(keys, i, i - 1, N), tail = j == p1 && same_run(keys, i, j, N);
        float *w = dwte + (size_t)keys[i] * C;
        for (int c = threadIdx.x; c < C && keys[i] >= 0; c += blockDim.x) { /* < 0: another rank's row */
            float acc = head || tail ? 0.0f : w[c];
            for (int r = i; r < j; r++)
                acc += dout[(size_t)rows[r] * C + c];
            if (!head && !tail)
                w[c] = acc;
            if (head)
                part[((size_t)s * 2 + 0) * C + c] = acc;
            if (tail)
                part[((size_t)s * 2 + 1) * C + c] = acc;
        }
        i = j;
    }
}

// Block s: the run that starts in segment s and crosses into s+1, if any:
// dwte[token] += its pieces in segment order.
__global__ static void embed_bwd_join_kernel(float *dwte, const float *part, const int *keys, int N, int C)
{
    int s = blockIdx.x, p0 = s * EMB_SEG, last = (p0 + EMB_SEG < N ? p0 + EMB_SEG : N) - 1;
    if (keys[last] < 0 || !same_run(keys, last, last + 1, N))
        return; /* another rank's row, or the segment's last run ends inside it */
    int first = last;
    while (first > p0 && keys[first - 1] == keys[last])
        first--;
    if (first == p0 && same_run(keys, last, p0 - 1, N))
        return; /* started in an earlier segment, whose block adds it */
    float *w = dwte + (size_t)keys[last] * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float acc = w[c] + part[((size_t)s * 2 + 1) * C + c];
        for (int t = s + 1;; t++) {
            acc += part[((size_t)t * 2 + 0) * C + c];
            int end = (t + 1) * EMB_SEG; /* first position after segment t */
            if (!same_run(keys, last, end, N))
                break;
        }
        w[c] = acc;
    }
}

void cu_embed_forward(lmc_backend *be, float *out, const int *tokens, const int *pos0, const float *wte,
                      const float *wpe, int B, int T, int C)
{
    cu_enter(be, LMC_OP_embed_forward);
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
    return emu_sort_pairs(temp, temp_bytes, keys_in, keys_out, vals_in, vals_out, n, st);
#endif
}

// dwte (V,C) +=, dwpe (T,C) += (if not NULL), dout (B,T,C)
void cu_embed_backward(lmc_backend *be, float *dwte, float *dwpe, const float *dout, const int *tokens, int B,
                       int T, int C)
{
    lmc_cuda *cu = cu_of(be);
    cu_enter(be, LMC_OP_embed_backward);
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
    int nseg = (N + EMB_SEG - 1) / EMB_SEG;
    size_t vec = cu_align_up((size_t)N * sizeof(int), 256), nbpart = cu_align_up((size_t)nseg * 2 * C * sizeof(float), 256);
    char *s = (char *)cu_scratch(be, nbpart + 3 * vec + temp_bytes);
    if (!s)
        return;
    float *part = (float *)s;
    int *keys = (int *)(s + nbpart), *rows_in = (int *)(s + nbpart + vec), *rows = (int *)(s + nbpart + 2 * vec);
    CU_LAUNCH(iota_kernel, cu_grid((size_t)N, 256), 256, 0, cu->stream, rows_in, N);
    if (!cu_launched(be, "embed_backward"))
        return;
    if (!cu_ok(be, sort_pairs(s + nbpart + 3 * vec, &temp_bytes, tokens, keys, rows_in, rows, N, cu->stream),
               "embed_backward sort"))
        return;
    CU_LAUNCH(embed_bwd_seg_kernel, (unsigned)nseg, 128, 0, cu->stream, dwte, part, dout, keys, rows, N, C);
    if (!cu_launched(be, "embed_backward dwte"))
        return;
    CU_LAUNCH(embed_bwd_join_kernel, (unsigned)nseg, 128, 0, cu->stream, dwte, part, keys, N, C);
    cu_launched(be, "embed_backward dwte");
}
