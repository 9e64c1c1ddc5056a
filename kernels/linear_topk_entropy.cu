// linear_topk_entropy's CUDA entry: per row of hidden @ w^T, the entropy of the
// softmax over the row's k largest logits, without the [N, V] logits (as
// core/ops/linear_topk_entropy.c): V is walked in chunks (one cuBLAS GEMM
// each) and each row keeps its k largest values so far in f64. Where the CPU
// keeps a heap, a block per row merges its kept values with the chunk by a
// radix select (8 passes of 8 bits over order-preserving 64-bit keys, a
// 256-bin shared histogram each) that finds the k-th largest value, then
// compacts the values above it and as many equal to it as are needed, in
// element order (a ballot scan: deterministic). Only the multiset of the top
// k enters the entropy, so the result is the CPU's up to f64 summation order.
// No backward: the op records no autograd node.
#include "head_loss.cuh"

// larger value, larger key (IEEE order; NaN is not ordered by the CPU's heap either)
__device__ static inline unsigned long long topk_key(double v)
{
    unsigned long long b = (unsigned long long)__double_as_longlong(v);
    return (b >> 63) ? ~b : (b | 0x8000000000000000ull);
}

// the rank of this thread's flag among the block's set flags (threads in
// order) and their total; every thread of the block calls it
__device__ static inline void topk_rank(bool flag, long long *pos, long long *total, unsigned *scratch)
{
    unsigned lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    unsigned bal = __ballot_sync(0xffffffffu, flag);
    unsigned before = __popc(bal & ((1u << lane) - 1u));
    __syncthreads(); // the previous call's totals are read
    if (lane == 0) scratch[warp] = __popc(bal);
    __syncthreads();
    long long off = 0, tot = 0;
    for (unsigned w = 0; w < nw; w++) {
        if (w < warp) off += scratch[w];
        tot += scratch[w];
    }
    *pos = off + before;
    *total = tot;
}

// one block per row: neu[r, :k] = the k largest of old[r, :cnt] and x[r, :n]
template <typename T>
__global__ void topk_merge_kernel(const double *old, double *neu, long long cnt, const T *x, long long n, long long k)
{
    __shared__ unsigned hist[256];
    __shared__ unsigned warp_tot[32];
    __shared__ unsigned long long s_prefix;
    __shared__ long long s_need;
    long long r = blockIdx.x, M = cnt + n;
    const double *o = old + r * k;
    const T *xr = x + r * n;
    double *d = neu + r * k;
#define TOPK_VAL(i) ((i) < cnt ? o[i] : (double)xr[(i) - cnt])
    if (M <= k) { // all of them are kept
        for (long long i = threadIdx.x; i < M; i += blockDim.x) d[i] = TOPK_VAL(i);
        return;
    }
    unsigned long long prefix = 0, mask = 0;
    long long need = k;
    for (int shift = 56; shift >= 0; shift -= 8) {
        for (int b = threadIdx.x; b < 256; b += blockDim.x) hist[b] = 0;
        __syncthreads();
        for (long long i = threadIdx.x; i < M; i += blockDim.x) {
            unsigned long long key = topk_key(TOPK_VAL(i));
            if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255u], 1u);
        }
        __syncthreads();
        if (threadIdx.x == 0) { // the bin holding the need-th largest of those matching the prefix
            long long above = 0;
            int b = 255;
            for (; b > 0; b--) {
                if (above + (long long)hist[b] >= need) break;
                above += hist[b];
            }
            s_prefix = prefix | ((unsigned long long)b << shift);
            s_need = need - above;
        }
        __syncthreads();
        prefix = s_prefix;
        need = s_need;
        mask |= 0xffull << shift;
        __syncthreads(); // hist and the s_ values are rewritten next pass
    }
    // prefix is the k-th largest key; `need` values equal to it are kept
    long long greater = k - need, base_g = 0, base_e = 0;
    for (long long t0 = 0; t0 < M; t0 += blockDim.x) {
        long long i = t0 + threadIdx.x, pg, pe, tg, te;
        double v = i < M ? TOPK_VAL(i) : 0.0;
        unsigned long long key = topk_key(v);
        bool g = i < M && key > prefix, e = i < M && key == prefix;
        topk_rank(g, &pg, &tg, warp_tot);
        topk_rank(e, &pe, &te, warp_tot);
        if (g) d[base_g + pg] = v;
        if (e && base_e + pe < need) d[greater + base_e + pe] = v;
        base_g += tg;
        base_e += te;
    }
#undef TOPK_VAL
}

// one block per row: -sum p log p over the softmax of the row's k values
template <typename T> __global__ void topk_entropy_kernel(const double *h, long long k, T *out)
{
    __shared__ double scratch[32];
    long long r = blockIdx.x;
    const double *hr = h + r * k;
    double m = -INFINITY, s = 0, e = 0;
    for (long long i = threadIdx.x; i < k; i += blockDim.x) m = hr[i] > m ? hr[i] : m;
    m = lfl_block_max(m, scratch);
    for (long long i = threadIdx.x; i < k; i += blockDim.x) s += exp(hr[i] - m);
    s = lfl_block_sum(s, scratch);
    double lse = m + log(s);
    for (long long i = threadIdx.x; i < k; i += blockDim.x) e -= exp(hr[i] - lse) * (hr[i] - lse);
    e = lfl_block_sum(e, scratch);
    if (threadIdx.x == 0) out[r] = (T)e;
}

template <typename T>
static lfl_status topk_run(lfl_tensor *hidden, lfl_tensor *w, long long k, long long chunk, lfl_tensor *out)
{
    const char *op = "linear_topk_entropy";
    long long H = w->shape[1], V = w->shape[0], N = lfl_numel(out);
    int dev = out->device;
    lfl_dtype dt = hidden->dtype;
    if (N == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(dev, op));
    int64_t bshape[2] = {N, chunk}, kshape[2] = {2, N * k};
    lfl_tensor *buf = NULL, *keep = NULL;
    lfl_status st = lfl_empty(2, bshape, dt, dev, &buf);
    if (st == LFL_OK) st = lfl_empty(2, kshape, LFL_F64, dev, &keep);
    double *cur = NULL;
    if (st == LFL_OK) {
        double *slots[2] = {(double *)lfl_data(keep), (double *)lfl_data(keep) + N * k};
        int which = 0;
        for (long long v0 = 0; v0 < V && st == LFL_OK; v0 += chunk) {
            long long cw = V - v0 < chunk ? V - v0 : chunk, cnt = v0 < k ? v0 : k;
            st = lfl_cuda_chunk_logits(dev, op, dt, lfl_data(hidden), w->dtype, lfl_data(w), lfl_data(buf), N, H, v0,
                                       cw);
            if (st != LFL_OK) break;
            // ping-pong: the kept values are read from one slot while the merge writes the other
            LFL_LAUNCH(N, LFL_HEAD_THREADS, 0, topk_merge_kernel<T>)(slots[which], slots[1 - which], cnt,
                                                                     (const T *)lfl_data(buf), cw, k);
            st = lfl_cuda_launched(op);
            which = 1 - which;
        }
        cur = slots[which];
    }
    if (st == LFL_OK) {
        LFL_LAUNCH(N, LFL_HEAD_THREADS, 0, topk_entropy_kernel<T>)(cur, k, (T *)lfl_data(out));
        st = lfl_cuda_launched(op);
    }
    lfl_tensor_release(buf);
    lfl_tensor_release(keep);
    return st;
}

extern "C" lfl_status lfl_cuda_linear_topk_entropy(lfl_tensor *hidden, lfl_tensor *w, int64_t k, int64_t chunk,
                                                   lfl_tensor *out)
{
    if (hidden->dtype == LFL_F64) return topk_run<double>(hidden, w, k, chunk, out);
    if (hidden->dtype == LFL_F32) return topk_run<float>(hidden, w, k, chunk, out);
    return lfl_fail(LFL_ERR_UNSUPPORTED, "linear_topk_entropy: hidden %s is not implemented on CUDA",
                    lfl_dtype_name(hidden->dtype));
}
