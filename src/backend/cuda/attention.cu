/* attention.cu: causal multi-head / grouped-query attention, flash style.
 *
 * Forward: one block per (query tile, batch*head) walks the key tiles up to
 * the diagonal with an online softmax (running max m and sum l per row), so
 * memory is O(T): only lse = m + log(l) is saved for backward.
 *
 * Backward recomputes the probabilities from lse in two kernels so that no
 * sum needs atomics (deterministic): one block per (key tile, batch*kv head)
 * accumulates dK and dV over every query tile at or after it and every query
 * head of its group; one block per (query tile, batch*head) accumulates dQ
 * over the key tiles up to the diagonal. D = rowsum(dO * O) is precomputed.
 *
 * Tiles: BT rows of the head dim padded to D (64, 128, 256; zero padded so
 * the dot products are exact), in shared memory with rows of D+4 floats:
 * 16-byte aligned for 128-bit loads, and 8 consecutive rows fall in 8
 * different 4-bank groups, so those loads are conflict-free. 256 threads as
 * a 16x16 grid: thread (ty,tx) owns score rows ty*RB.. and columns tx+16j,
 * and output columns 4tx+64g..+3 of the head dim, so every tile product is a
 * register-blocked outer product fed by float4 loads (a quarter of the
 * shared-memory instructions of scalar loads per FMA).
 * fp32 throughout, like the CPU reference (tensor cores are a later step).
 */
#include "backend/cuda/cuda_common.cuh"

#include <stdio.h>
#include <string.h>

#define ATT_THREADS 256
#define DEC_WARPS 4
#define DEC_MAXJ 8 /* head size <= 32 * DEC_MAXJ in decode */

/* ---------- tile helpers ---------- */

/* Row strides of the shared tiles: a multiple of 4 floats (float4 loads) */
template <int D> struct att_ld {
    static const int v = D + 4;
};
template <int BT> struct att_ls {
    static const int v = BT + 4;
};

__device__ static inline float4 ld4(const float *p) { return *reinterpret_cast<const float4 *>(p); }

// dst (BT, D+4) = rows t0.. of a (T, stride) tensor at base, zero outside T and HS
template <int D, int BT>
__device__ static inline void load_tile(float *dst, const float *base, size_t stride, int t0, int T, int HS)
{
    const int LD = att_ld<D>::v;
    for (int idx = threadIdx.x; idx < BT * D; idx += ATT_THREADS) {
        int r = idx / D, d = idx % D, t = t0 + r;
        dst[r * LD + d] = (t < T && d < HS) ? base[(size_t)t * stride + d] : 0.0f;
    }
}

// s[i][j] = X[ty*RB+i] . Y[tx+16j] over the first HS columns (rounded up to 4: zeros)
template <int D, int BT>
__device__ static inline void tile_dot(float (*s)[BT / 16], const float *X, const float *Y, int HS)
{
    const int RB = BT / 16, LD = att_ld<D>::v;
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    for (int i = 0; i < RB; i++)
        for (int j = 0; j < RB; j++)
            s[i][j] = 0.0f;
    for (int d = 0; d < HS; d += 4) {
        float4 xv[RB], yv[RB];
        for (int i = 0; i < RB; i++)
            xv[i] = ld4(X + (ty * RB + i) * LD + d);
        for (int j = 0; j < RB; j++)
            yv[j] = ld4(Y + (tx + 16 * j) * LD + d);
        for (int i = 0; i < RB; i++)
            for (int j = 0; j < RB; j++)
                s[i][j] += xv[i].x * yv[j].x + xv[i].y * yv[j].y + xv[i].z * yv[j].z + xv[i].w * yv[j].w;
    }
}

/* acc[i][4g+e] += v * M[row][4tx+64g+e] for the thread's columns */
template <int D, int BT>
__device__ static inline void axpy_row(float (*acc)[D / 16], const float *v, const float *mrow)
{
    const int RB = BT / 16, DV = D / 64;
    int tx = threadIdx.x % 16;
    for (int g = 0; g < DV; g++) {
        float4 m = ld4(mrow + 4 * tx + 64 * g);
        for (int i = 0; i < RB; i++) {
            acc[i][4 * g + 0] += v[i] * m.x;
            acc[i][4 * g + 1] += v[i] * m.y;
            acc[i][4 * g + 2] += v[i] * m.z;
            acc[i][4 * g + 3] += v[i] * m.w;
        }
    }
}

// acc (rows ty*RB+i, cols 4tx+64g+e) += A (BT,BT) . M (BT,D): A's rows are the thread's
template <int D, int BT>
__device__ static inline void tile_pv(float (*acc)[D / 16], const float *A, const float *M)
{
    const int RB = BT / 16, LD = att_ld<D>::v, LS = att_ls<BT>::v;
    int ty = threadIdx.x / 16;
    for (int c = 0; c < BT; c += 4) {
        float4 a[RB];
        for (int i = 0; i < RB; i++)
            a[i] = ld4(A + (ty * RB + i) * LS + c);
        float v[RB];
        for (int i = 0; i < RB; i++)
            v[i] = a[i].x;
        axpy_row<D, BT>(acc, v, M + (c + 0) * LD);
        for (int i = 0; i < RB; i++)
            v[i] = a[i].y;
        axpy_row<D, BT>(acc, v, M + (c + 1) * LD);
        for (int i = 0; i < RB; i++)
            v[i] = a[i].z;
        axpy_row<D, BT>(acc, v, M + (c + 2) * LD);
        for (int i = 0; i < RB; i++)
            v[i] = a[i].w;
        axpy_row<D, BT>(acc, v, M + (c + 3) * LD);
    }
}

// acc (rows ty*RB+i, cols 4tx+64g+e) += A^T . M: A's columns are the thread's
template <int D, int BT>
__device__ static inline void tile_ptv(float (*acc)[D / 16], const float *A, const float *M)
{
    const int RB = BT / 16, LD = att_ld<D>::v, LS = att_ls<BT>::v;
    int ty = threadIdx.x / 16;
    for (int r = 0; r < BT; r++) {
        float v[RB];
        for (int i = 0; i < RB; i++)
            v[i] = A[r * LS + ty * RB + i];
        axpy_row<D, BT>(acc, v, M + r * LD);
    }
}

template <int D, int BT> static size_t fwd_smem(void)
{
    return (size_t)(3 * BT * att_ld<D>::v + BT * att_ls<BT>::v + 3 * BT) * sizeof(float);
}
template <int D, int BT> static size_t bwd_kv_smem(void)
{
    return (size_t)(4 * BT * att_ld<D>::v + 2 * BT * att_ls<BT>::v + 2 * BT) * sizeof(float);
}
template <int D, int BT> static size_t bwd_q_smem(void)
{
    return (size_t)(4 * BT * att_ld<D>::v + BT * att_ls<BT>::v + 2 * BT) * sizeof(float);
}

/* ---------- forward ---------- */

// out (B,T,NH*HS), lse (B,NH,T); grid (B*NH, T/BT tiles)
template <int D, int BT>
__global__ void __launch_bounds__(ATT_THREADS)
    att_fwd_kernel(float *out, float *lse, const float *qkv, int T, int NH, int NKV, int HS, float scale)
{
    const int RB = BT / 16, DC = D / 16, LD = att_ld<D>::v, LS = att_ls<BT>::v, TPR = ATT_THREADS / BT;
    CU_DYN_SMEM(float, sm);
    float *Qs = sm, *Ks = Qs + BT * LD, *Vs = Ks + BT * LD, *Ps = Vs + BT * LD;
    float *mrow = Ps + BT * LS, *lrow = mrow + BT, *arow = lrow + BT;
    int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    int qt = gridDim.y - 1 - blockIdx.y; /* the longest rows first */
    int b = blockIdx.x / NH, h = blockIdx.x % NH, kh = h / (NH / NKV);
    size_t stride = (size_t)(NH + 2 * NKV) * HS;
    const float *base = qkv + (size_t)b * T * stride;
    int q0 = qt * BT;

    load_tile<D, BT>(Qs, base + (size_t)h * HS, stride, q0, T, HS);
    for (int r = tid; r < BT; r += ATT_THREADS) {
        mrow[r] = -INFINITY;
        lrow[r] = 0.0f;
    }
    float o[RB][DC];
    for (int i = 0; i < RB; i++)
        for (int j = 0; j < DC; j++)
            o[i][j] = 0.0f;

    for (int kt = 0; kt <= qt; kt++) {
        int k0 = kt * BT;
        __syncthreads(); /* the previous tile's readers are done */
        load_tile<D, BT>(Ks, base + (size_t)(NH + kh) * HS, stride, k0, T, HS);
        load_tile<D, BT>(Vs, base + (size_t)(NH + NKV + kh) * HS, stride, k0, T, HS);
        __syncthreads();
        float s[RB][RB];
        tile_dot<D, BT>(s, Qs, Ks, HS);
        for (int i = 0; i < RB; i++)
            for (int j = 0; j < RB; j++) {
                int r = ty * RB + i, c = tx + 16 * j;
                Ps[r * LS + c] = k0 + c <= q0 + r ? s[i][j] * scale : -INFINITY;
            }
        __syncthreads();
        /* online softmax: TPR neighbouring lanes share a row. Every row sees
         * key k0 <= its query here, so the new max is finite. */
        {
            int r = tid / TPR;
            float mx = -INFINITY;
            for (int c = tid % TPR; c < BT; c += TPR)
                mx = fmaxf(mx, Ps[r * LS + c]);
            for (int off = TPR / 2; off > 0; off >>= 1)
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
            float mold = mrow[r], mnew = fmaxf(mold, mx), sum = 0.0f;
            for (int c = tid % TPR; c < BT; c += TPR) {
                float p = expf(Ps[r * LS + c] - mnew);
                Ps[r * LS + c] = p;
                sum += p;
            }
            for (int off = TPR / 2; off > 0; off >>= 1)
                sum += __shfl_xor_sync(0xffffffffu, sum, off);
            if (tid % TPR == 0) { /* after the shuffle: every lane has read mrow[r] */
                float alpha = expf(mold - mnew);
                arow[r] = alpha;
                lrow[r] = lrow[r] * alpha + sum;
                mrow[r] = mnew;
            }
        }
        __syncthreads();
        for (int i = 0; i < RB; i++) {
            float a = arow[ty * RB + i];
            for (int j = 0; j < DC; j++)
                o[i][j] *= a;
        }
        tile_pv<D, BT>(o, Ps, Vs);
    }
    __syncthreads();
    for (int i = 0; i < RB; i++) {
        int r = ty * RB + i, t = q0 + r;
        if (t >= T)
            continue;
        float inv = 1.0f / lrow[r];
        float *dst = out + ((size_t)b * T + t) * NH * HS + (size_t)h * HS;
        for (int j = 0; j < DC; j++) {
            int d = 4 * tx + 64 * (j / 4) + j % 4;
            if (d < HS)
                dst[d] = o[i][j] * inv;
        }
    }
    if (lse)
        for (int r = tid; r < BT; r += ATT_THREADS)
            if (q0 + r < T)
                lse[((size_t)b * NH + h) * T + q0 + r] = mrow[r] + logf(lrow[r]);
}

/* ---------- backward ---------- */

// Dv (B,NH,T) = rowsum(dout * out) per head; one warp per (b,t,h)
__global__ static void att_rowdot_kernel(float *Dv, const float *dout, const float *out, int B, int T, int NH,
                                         int HS)
{
    int lane = threadIdx.x & 31;
    size_t w = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (w >= (size_t)B * T * NH)
        return;
    int h = (int)(w % NH);
    size_t bt = w / NH;
    const float *d = dout + w * HS, *o = out + w * HS; /* (B,T,NH,HS) is w-major */
    float s = 0.0f;
    for (int i = lane; i < HS; i += 32)
        s += d[i] * o[i];
    s = cu_warp_sum(s);
    if (lane == 0)
        Dv[((bt / T) * NH + h) * T + bt % T] = s;
}

/* p and dS = p * (dP - D) * scale for one (query tile, key tile) pair, into
 * Ps (if not NULL) and dSs; s = Q.K^T and dp = dO.V^T come from tile_dot. */
template <int D, int BT>
__device__ static inline void bwd_scores(float *Ps, float *dSs, const float *Qs, const float *dOs, const float *Ks,
                                         const float *Vs, const float *ls, const float *Ds, int q0, int k0, int T,
                                         int HS, float scale)
{
    const int RB = BT / 16, LS = att_ls<BT>::v;
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    float s[RB][RB], dp[RB][RB];
    tile_dot<D, BT>(s, Qs, Ks, HS);
    tile_dot<D, BT>(dp, dOs, Vs, HS);
    for (int i = 0; i < RB; i++)
        for (int j = 0; j < RB; j++) {
            int r = ty * RB + i, c = tx + 16 * j, q = q0 + r;
            float p = (k0 + c <= q && q < T) ? expf(s[i][j] * scale - ls[r]) : 0.0f;
            if (Ps)
                Ps[r * LS + c] = p;
            dSs[r * LS + c] = p * (dp[i][j] - Ds[r]) * scale;
        }
}

// lse and D of query rows q0.. of head h into ls, Ds (0 past T)
template <int BT>
__device__ static inline void load_rowstats(float *ls, float *Ds, const float *lse, const float *Dv, size_t off,
                                            int q0, int T)
{
    for (int r = threadIdx.x; r < BT; r += ATT_THREADS) {
        int t = q0 + r;
        ls[r] = t < T ? lse[off + t] : 0.0f;
        Ds[r] = t < T ? Dv[off + t] : 0.0f;
    }
}

// dK, dV of key tile blockIdx.y of kv head (b, kh); grid (B*NKV, T/BT tiles)
template <int D, int BT>
__global__ void __launch_bounds__(ATT_THREADS)
    att_bwd_kv_kernel(float *dqkv, const float *dout, const float *qkv, const float *lse, const float *Dv, int T,
                      int NH, int NKV, int HS, float scale)
{
    const int RB = BT / 16, DC = D / 16, LD = att_ld<D>::v, LS = att_ls<BT>::v;
    CU_DYN_SMEM(float, sm);
    float *Ks = sm, *Vs = Ks + BT * LD, *Qs = Vs + BT * LD, *dOs = Qs + BT * LD;
    float *Ps = dOs + BT * LD, *dSs = Ps + BT * LS, *ls = dSs + BT * LS, *Ds = ls + BT;
    int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    int kt = blockIdx.y, nq = gridDim.y; /* the earliest keys have the most queries: first */
    int b = blockIdx.x / NKV, kh = blockIdx.x % NKV, rep = NH / NKV;
    size_t stride = (size_t)(NH + 2 * NKV) * HS, ostride = (size_t)NH * HS;
    const float *base = qkv + (size_t)b * T * stride, *obase = dout + (size_t)b * T * ostride;
    int k0 = kt * BT;

    load_tile<D, BT>(Ks, base + (size_t)(NH + kh) * HS, stride, k0, T, HS);
    load_tile<D, BT>(Vs, base + (size_t)(NH + NKV + kh) * HS, stride, k0, T, HS);
    float dk[RB][DC], dv[RB][DC];
    for (int i = 0; i < RB; i++)
        for (int j = 0; j < DC; j++)
            dk[i][j] = dv[i][j] = 0.0f;

    for (int h = kh * rep; h < (kh + 1) * rep; h++) {
        for (int qt = kt; qt < nq; qt++) {
            int q0 = qt * BT;
            __syncthreads();
            load_tile<D, BT>(Qs, base + (size_t)h * HS, stride, q0, T, HS);
            load_tile<D, BT>(dOs, obase + (size_t)h * HS, ostride, q0, T, HS);
            load_rowstats<BT>(ls, Ds, lse, Dv, ((size_t)b * NH + h) * T, q0, T);
            __syncthreads();
            bwd_scores<D, BT>(Ps, dSs, Qs, dOs, Ks, Vs, ls, Ds, q0, k0, T, HS, scale);
            __syncthreads();
            // dV[c] += sum_r P[r][c] dO[r], dK[c] += sum_r dS[r][c] Q[r], c = ty*RB+i
            tile_ptv<D, BT>(dv, Ps, dOs);
            tile_ptv<D, BT>(dk, dSs, Qs);
        }
    }
    for (int i = 0; i < RB; i++) {
        int t = k0 + ty * RB + i;
        if (t >= T)
            continue;
        float *row = dqkv + ((size_t)b * T + t) * stride;
        for (int j = 0; j < DC; j++) {
            int d = 4 * tx + 64 * (j / 4) + j % 4;
            if (d < HS) {
                row[(size_t)(NH + kh) * HS + d] = dk[i][j];
                row[(size_t)(NH + NKV + kh) * HS + d] = dv[i][j];
            }
        }
    }
}

// dQ of query tile (reversed blockIdx.y) of head (b, h); grid (B*NH, T/BT tiles)
template <int D, int BT>
__global__ void __launch_bounds__(ATT_THREADS)
    att_bwd_q_kernel(float *dqkv, const float *dout, const float *qkv, const float *lse, const float *Dv, int T,
                     int NH, int NKV, int HS, float scale)
{
    const int RB = BT / 16, DC = D / 16, LD = att_ld<D>::v, LS = att_ls<BT>::v;
    CU_DYN_SMEM(float, sm);
    float *Qs = sm, *dOs = Qs + BT * LD, *Ks = dOs + BT * LD, *Vs = Ks + BT * LD;
    float *dSs = Vs + BT * LD, *ls = dSs + BT * LS, *Ds = ls + BT;
    int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    int qt = gridDim.y - 1 - blockIdx.y;
    int b = blockIdx.x / NH, h = blockIdx.x % NH, kh = h / (NH / NKV);
    size_t stride = (size_t)(NH + 2 * NKV) * HS, ostride = (size_t)NH * HS;
    const float *base = qkv + (size_t)b * T * stride;
    int q0 = qt * BT;

    load_tile<D, BT>(Qs, base + (size_t)h * HS, stride, q0, T, HS);
    load_tile<D, BT>(dOs, dout + (size_t)b * T * ostride + (size_t)h * HS, ostride, q0, T, HS);
    load_rowstats<BT>(ls, Ds, lse, Dv, ((size_t)b * NH + h) * T, q0, T);
    float dq[RB][DC];
    for (int i = 0; i < RB; i++)
        for (int j = 0; j < DC; j++)
            dq[i][j] = 0.0f;

    for (int kt = 0; kt <= qt; kt++) {
        int k0 = kt * BT;
        __syncthreads();
        load_tile<D, BT>(Ks, base + (size_t)(NH + kh) * HS, stride, k0, T, HS);
        load_tile<D, BT>(Vs, base + (size_t)(NH + NKV + kh) * HS, stride, k0, T, HS);
        __syncthreads();
        bwd_scores<D, BT>((float *)NULL, dSs, Qs, dOs, Ks, Vs, ls, Ds, q0, k0, T, HS, scale);
        __syncthreads();
        // dQ[r] += sum_c dS[r][c] K[c], r = ty*RB+i
        tile_pv<D, BT>(dq, dSs, Ks);
    }
    for (int i = 0; i < RB; i++) {
        int t = q0 + ty * RB + i;
        if (t >= T)
            continue;
        float *row = dqkv + ((size_t)b * T + t) * stride + (size_t)h * HS;
        for (int j = 0; j < DC; j++) {
            int d = 4 * tx + 64 * (j / 4) + j % 4;
            if (d < HS)
                row[d] = dq[i][j];
        }
    }
}

/* ---------- dispatch ---------- */

typedef struct {
    float *out, *lse, *dqkv, *Dv; /* outputs; lse is written by forward */
    const float *qkv, *dout, *lse_in;
    int B, T, NH, NKV, HS;
} att_args;

/* Sets the kernel's dynamic shared memory limit and checks it fits. */
template <typename K> static int smem_ready(lmc_backend *be, K kern, size_t bytes, const char *what)
{
    if (bytes > cu_of(be)->smem_optin) {
        cu_fail(be, "%s: needs %zu bytes of shared memory per block, the device allows %zu", what, bytes,
                cu_of(be)->smem_optin);
        return 0;
    }
    return cu_ok(be, cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes), what);
}

template <int D, int BT> static void run_fwd(lmc_backend *be, const att_args *a)
{
    auto kern = att_fwd_kernel<D, BT>;
    size_t smem = fwd_smem<D, BT>();
    if (!smem_ready(be, kern, smem, "attention_forward"))
        return;
    dim3 grid(a->B * a->NH, (a->T + BT - 1) / BT); /* tiles on y: blocks start y-major, heavy first */
    CU_LAUNCH(kern, grid, ATT_THREADS, smem, cu_of(be)->stream, a->out, a->lse, a->qkv, a->T, a->NH, a->NKV, a->HS,
              1.0f / sqrtf((float)a->HS));
    cu_launched(be, "attention_forward");
}

template <int D, int BT> static void run_bwd(lmc_backend *be, const att_args *a)
{
    auto kv = att_bwd_kv_kernel<D, BT>;
    auto q = att_bwd_q_kernel<D, BT>;
    size_t skv = bwd_kv_smem<D, BT>(), sq = bwd_q_smem<D, BT>();
    if (!smem_ready(be, kv, skv, "attention_backward") || !smem_ready(be, q, sq, "attention_backward"))
        return;
    float scale = 1.0f / sqrtf((float)a->HS);
    int tiles = (a->T + BT - 1) / BT;
    cudaStream_t st = cu_of(be)->stream;
    CU_LAUNCH(kv, dim3(a->B * a->NKV, tiles), ATT_THREADS, skv, st, a->dqkv, a->dout, a->qkv, a->lse_in, a->Dv, a->T,
              a->NH, a->NKV, a->HS, scale);
    if (!cu_launched(be, "attention_backward dk dv"))
        return;
    CU_LAUNCH(q, dim3(a->B * a->NH, tiles), ATT_THREADS, sq, st, a->dqkv, a->dout, a->qkv, a->lse_in, a->Dv, a->T,
              a->NH, a->NKV, a->HS, scale);
    cu_launched(be, "attention_backward dq");
}

/* The padded head dim for HS (a multiple of 64: each of the 16 thread
 * columns owns float4s); 0 when HS is too large. */
static int pick_dim(int HS)
{
    return HS <= 64 ? 64 : HS <= 128 ? 128 : HS <= 256 ? 256 : 0;
}

/* Shared memory per block the op needs at padded head dim D (backward: its
 * larger kernel; 128 falls back to 32-row tiles where 64 do not fit, as
 * cu_attention_backward does). Decode uses static shared memory only. */
static size_t smem_need(lmc_op op, int D)
{
    if (op == LMC_OP_attention_decode)
        return 0;
    if (op == LMC_OP_attention_forward)
        return D == 64 ? fwd_smem<64, 64>() : D == 128 ? fwd_smem<128, 64>() : fwd_smem<256, 32>();
    size_t kv = D == 64 ? bwd_kv_smem<64, 64>() : D == 128 ? bwd_kv_smem<128, 32>() : bwd_kv_smem<256, 32>();
    size_t q = D == 64 ? bwd_q_smem<64, 64>() : D == 128 ? bwd_q_smem<128, 32>() : bwd_q_smem<256, 32>();
    return kv > q ? kv : q;
}

int cu_attention_supports(lmc_backend *be, const lmc_op_query *q, char *why, size_t why_len)
{
    int HS = q->head_size, D = pick_dim(HS);
    if (HS < 1 || !D) {
        snprintf(why, why_len, "head size %d is not supported (supported: 1 to 256)", HS);
        return 0;
    }
    if (q->kv_heads <= 0 || q->heads % q->kv_heads) {
        snprintf(why, why_len, "%d query heads do not divide into %d kv heads", q->heads, q->kv_heads);
        return 0;
    }
    size_t need = smem_need(q->op, D);
    if (need > cu_of(be)->smem_optin) {
        snprintf(why, why_len, "head size %d needs %zu bytes of shared memory per block, %s allows %zu", HS, need,
                 cu_of(be)->dev_name, cu_of(be)->smem_optin);
        return 0;
    }
    return 1;
}

/* What supports says, recorded as the op's error when it says no. */
static int check_shape(lmc_backend *be, lmc_op op, int HS, int NH, int NKV)
{
    lmc_op_query q;
    memset(&q, 0, sizeof q);
    q.op = op, q.heads = NH, q.kv_heads = NKV, q.head_size = HS;
    char why[256];
    if (cu_attention_supports(be, &q, why, sizeof why))
        return 1;
    cu_fail(be, "%s", why);
    return 0;
}

void cu_attention_forward(lmc_backend *be, float *out, float *lse, const float *qkv, int B, int T, int NH, int NKV,
                          int HS)
{
    cu_enter(be, LMC_OP_attention_forward);
    if (B <= 0 || T <= 0 || NH <= 0 || HS <= 0 || !check_shape(be, LMC_OP_attention_forward, HS, NH, NKV))
        return;
    att_args a = {out, lse, NULL, NULL, qkv, NULL, NULL, B, T, NH, NKV, HS};
    switch (pick_dim(HS)) {
    case 64: run_fwd<64, 64>(be, &a); break;
    case 128: run_fwd<128, 64>(be, &a); break;
    default: run_fwd<256, 32>(be, &a); break;
    }
}

// dqkv (B,T,(NH+2NKV)*HS) =
void cu_attention_backward(lmc_backend *be, float *dqkv, const float *dout, const float *out, const float *lse,
                           const float *qkv, int B, int T, int NH, int NKV, int HS)
{
    cu_enter(be, LMC_OP_attention_backward);
    if (B <= 0 || T <= 0 || NH <= 0 || HS <= 0 || !check_shape(be, LMC_OP_attention_backward, HS, NH, NKV))
        return;
    size_t rows = (size_t)B * T * NH;
    float *Dv = (float *)cu_scratch(be, rows * sizeof(float));
    if (!Dv)
        return;
    CU_LAUNCH(att_rowdot_kernel, (unsigned)((rows * 32 + 255) / 256), 256, 0, cu_of(be)->stream, Dv, dout, out, B,
              T, NH, HS);
    if (!cu_launched(be, "attention_backward rowdot"))
        return;
    att_args a = {NULL, NULL, dqkv, Dv, qkv, dout, lse, B, T, NH, NKV, HS};
    switch (pick_dim(HS)) {
    case 64: run_bwd<64, 64>(be, &a); break;
    case 128: /* 171 KB of tiles: more than an A100 has, where 32-row tiles fit */
        if (bwd_kv_smem<128, 64>() <= cu_of(be)->smem_optin)
            run_bwd<128, 64>(be, &a);
        else
            run_bwd<128, 32>(be, &a);
        break;
    default: run_bwd<256, 32>(be, &a); break;
    }
}

/* ---------- decode ---------- */

// out (B,NH*HS); one block per (b,h), each warp an online softmax over every
// DEC_WARPS-th cached key, merged at the end: O(HS) memory for any length.
__global__ static void att_decode_kernel(float *out, const float *q, const float *kcache, const float *vcache,
                                         const int *len, int maxT, int NH, int NKV, int HS, float scale)
{
    CU_SHARED(float, wm, [DEC_WARPS]);
    CU_SHARED(float, wl, [DEC_WARPS]);
    CU_SHARED(float, wo, [DEC_WARPS][32 * DEC_MAXJ]);
    int bh = blockIdx.x, b = bh / NH, h = bh % NH, kh = h / (NH / NKV);
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    float *o = out + (size_t)bh * HS;
    int n = len[b] < maxT ? len[b] : maxT;
    if (n <= 0) { /* uniform over the block */
        for (int d = threadIdx.x; d < HS; d += blockDim.x)
            o[d] = 0.0f;
        return;
    }
    size_t kvrow = (size_t)NKV * HS;
    const float *kb = kcache + (size_t)b * maxT * kvrow + (size_t)kh * HS;
    const float *vb = vcache + (size_t)b * maxT * kvrow + (size_t)kh * HS;
    float qv[DEC_MAXJ], acc[DEC_MAXJ];
    for (int j = 0; j < DEC_MAXJ; j++) {
        int d = lane + 32 * j;
        qv[j] = d < HS ? q[(size_t)bh * HS + d] : 0.0f;
        acc[j] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int s = w; s < n; s += DEC_WARPS) {
        const float *k = kb + (size_t)s * kvrow, *v = vb + (size_t)s * kvrow;
        float dot = 0.0f;
        for (int j = 0; j < DEC_MAXJ; j++) {
            int d = lane + 32 * j;
            if (d < HS)
                dot += qv[j] * k[d];
        }
        dot = cu_warp_sum(dot) * scale;
        float mnew = fmaxf(m, dot), c = expf(m - mnew), p = expf(dot - mnew);
        l = l * c + p;
        for (int j = 0; j < DEC_MAXJ; j++) {
            int d = lane + 32 * j;
            acc[j] = acc[j] * c + (d < HS ? p * v[d] : 0.0f);
        }
        m = mnew;
    }
    if (lane == 0) {
        wm[w] = m;
        wl[w] = l;
    }
    for (int j = 0; j < DEC_MAXJ; j++)
        wo[w][lane + 32 * j] = acc[j];
    __syncthreads();
    float M = -INFINITY;
    for (int i = 0; i < DEC_WARPS; i++)
        M = fmaxf(M, wm[i]);
    for (int d = threadIdx.x; d < HS; d += blockDim.x) {
        float L = 0.0f, O = 0.0f;
        for (int i = 0; i < DEC_WARPS; i++) {
            float f = wm[i] == -INFINITY ? 0.0f : expf(wm[i] - M); /* a warp with no keys */
            L += wl[i] * f;
            O += wo[i][d] * f;
        }
        o[d] = O / L;
    }
}

void cu_attention_decode(lmc_backend *be, float *out, const float *q, const float *kcache, const float *vcache,
                         const int *len, int B, int maxT, int NH, int NKV, int HS)
{
    cu_enter(be, LMC_OP_attention_decode);
    if (B <= 0 || NH <= 0 || HS <= 0 || !check_shape(be, LMC_OP_attention_decode, HS, NH, NKV))
        return;
    CU_LAUNCH(att_decode_kernel, (unsigned)(B * NH), 32 * DEC_WARPS, 0, cu_of(be)->stream, out, q, kcache, vcache,
              len, maxT, NH, NKV, HS, 1.0f / sqrtf((float)HS));
    cu_launched(be, "attention_decode");
}
