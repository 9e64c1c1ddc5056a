// attention and attention_backward on CUDA (f32, f64): flash-style kernels
// with the semantics of core/ops/attention.c (its header is the reference:
// GQA, causal with S - T cached keys, sliding window, soft-capping, packed
// segments, kv_start left padding, sinks, empty and NaN rows).
//
// Layout of the work: a block of 4 warps owns a tile of 4 * R query rows
// (forward, dq) or 4 * R keys (dk/dv) of one (batch, kv head), the query rows
// being (query, head) pairs of the kv head's G query heads, so GQA heads share
// the K/V tiles; each warp owns R of those rows and walks the other side in
// tiles of 32 staged in shared memory, lane c taking element c of the tile, so
// a score row is one value per lane and its max and sum are warp reductions.
// The T x S score matrix never exists. The per-warp probabilities go through
// shared memory for the P V style products, where each lane owns the head
// dims lane, lane + 32, ... (DC of them, D <= 32 * DC <= 256). With few
// blocks and long rows (decoding) the forward splits the keys over blocks and
// merges the partial softmaxes (att_combine).
//
// Backward is FlashAttention-2's split into deterministic kernels, no atomics:
// delta = rowsum(dO * O) per query, then dq per query tile (key tiles
// streamed) and dk/dv per key tile (the query tiles of its G query heads
// streamed), each output element owned by one thread; dsinks is one block
// reduction per head. Accumulation is in the element type (f32 for f32, f64
// for f64), as the CPU kernel's tiles do.
//
// No tensor cores: the products run on the CUDA cores (the emulator has no
// mma), which bounds the speed on a real GPU but not the results.
#include <stdlib.h>
#include <string.h>
#include "common.cuh"

namespace {

// full unrolling where nvcc would keep a loop (f64 exp is long) and move its arrays to local memory
#ifdef __CUDACC__
#define ATT_UNROLL _Pragma("unroll")
#else
#define ATT_UNROLL
#endif

const int ATT_WARPS = 4, ATT_THREADS = 32 * ATT_WARPS, ATT_TK = 32;
const unsigned ATT_FULL = 0xffffffffu;

struct AttGeo {
    long long B, Hq, Hkv, G, T, S, D, off, window;
    long long qs[4], ks[4], vs[4], os[4];
    int causal;
    double scale, softcap;
    const int64_t *seg; // [B, T] or NULL
    const int64_t *kvs; // [B] or NULL
};

// rows per warp: the register and shared-memory budget per D and dtype
template <typename T, int DC> struct AttRows {
    static const int value = sizeof(T) == 4 ? (DC <= 4 ? 8 : 4) : (DC <= 4 ? 4 : 2);
};

__device__ static inline float att_exp(float x) { return expf(x); }
__device__ static inline double att_exp(double x) { return exp(x); }
__device__ static inline float att_log(float x) { return logf(x); }
__device__ static inline double att_log(double x) { return log(x); }
__device__ static inline float att_tanh(float x) { return tanhf(x); }
__device__ static inline double att_tanh(double x) { return tanh(x); }
template <typename T> __device__ static inline T att_ninf(void) { return -(T)INFINITY; }

// The row stride of a tile read one row per lane: D + 1 (odd: lane c's
// element d falls in bank (c + d) mod 32, no conflicts), or for f32 with D % 4
// == 0, D + 4, read 16 bytes at a time (att_dots): 8 lanes of a quarter warp
// then cover 32 distinct banks.
template <typename T> __host__ __device__ static inline int att_pad(int D)
{
    return sizeof(T) == 4 && D % 4 == 0 ? D + 4 : D + 1;
}

struct __align__(16) att_f4 { float x, y, z, w; };

// s[r] += sum_d a[d] * b[r * D + d] for r < R: a one row per lane (stride
// att_pad), b R rows every lane reads alike (broadcasts). f32 rows of D % 4
// == 0 go 16 bytes per load (every offset a multiple of 4 floats: the tiles
// are laid out so), a quarter of the shared-memory loads of the scalar loop.
template <typename T, int R>
__device__ static __forceinline__ void att_dots(const T *a, const T *b, int D, T *s)
{
    if (sizeof(T) == 4 && D % 4 == 0) {
#ifdef LFL_CUDA_EMU
        if (((uintptr_t)a | (uintptr_t)b) & 15) { // a GPU would fault: the emulator must not pass it
            fprintf(stderr, "att_dots: misaligned 16-byte shared-memory rows\n");
            abort();
        }
#endif
        const att_f4 *a4 = reinterpret_cast<const att_f4 *>(a);
        for (int d4 = 0; d4 < D / 4; d4++) {
            att_f4 x = a4[d4];
            ATT_UNROLL
            for (int r = 0; r < R; r++) {
                att_f4 y = reinterpret_cast<const att_f4 *>(b + r * D)[d4];
                s[r] += x.x * y.x;
                s[r] += x.y * y.y;
                s[r] += x.z * y.z;
                s[r] += x.w * y.w;
            }
        }
        return;
    }
    for (int d = 0; d < D; d++) {
        T x = a[d];
        ATT_UNROLL
        for (int r = 0; r < R; r++) s[r] += x * b[r * D + d];
    }
}

// warp max that keeps a NaN (a NaN score poisons its row, as on the CPU)
template <typename T> __device__ static inline T att_warp_max_nan(T v)
{
    for (int o = 16; o > 0; o >>= 1) {
        T w = __shfl_xor_sync(ATT_FULL, v, o);
        v = (w > v || w != w) ? w : v;
    }
    return v;
}
__device__ static inline long long att_warp_min_ll(long long v)
{
    for (int o = 16; o > 0; o >>= 1) {
        long long w = __shfl_xor_sync(ATT_FULL, v, o);
        v = w < v ? w : v;
    }
    return v;
}
__device__ static inline long long att_warp_max_ll(long long v)
{
    for (int o = 16; o > 0; o >>= 1) {
        long long w = __shfl_xor_sync(ATT_FULL, v, o);
        v = w > v ? w : v;
    }
    return v;
}

// keys [lo, hi) query i may see before segments (attention.c's att_row_lo/hi)
__device__ static inline long long att_lo(const AttGeo &g, long long kv0, long long i)
{
    long long l = g.window > 0 ? i + g.off - g.window + 1 : 0;
    l = l > kv0 ? l : kv0;
    return l < 0 ? 0 : l;
}
__device__ static inline long long att_hi(const AttGeo &g, long long i)
{
    if (!g.causal) return g.S;
    long long h = i + g.off + 1;
    return h < 0 ? 0 : h < g.S ? h : g.S;
}

// the segment ids' range of a tile's 32 (or fewer) rows starting at r0 (n valid)
__device__ static inline void att_seg_range(const AttGeo &g, long long b, long long r0, long long n, long long *mn,
                                            long long *mx)
{
    int lane = threadIdx.x & 31;
    long long x = g.seg[b * g.T + r0 + (lane < n ? lane : 0)];
    *mn = att_warp_min_ll(x);
    *mx = att_warp_max_ll(x);
}

// p[r][u] = P[r * 32 + c4 + u] for r < R, u < 4: one 16-byte load per row for
// f32 (P and c4 multiples of 4 floats: P leads its kernel's shared memory)
template <int R> __device__ static __forceinline__ void att_p4(const float *P, int c4, float (*p)[4])
{
#ifdef LFL_CUDA_EMU
    if (((uintptr_t)(P + c4)) & 15) {
        fprintf(stderr, "att_p4: misaligned 16-byte shared-memory rows\n");
        abort();
    }
#endif
    ATT_UNROLL
    for (int r = 0; r < R; r++) {
        att_f4 v = *reinterpret_cast<const att_f4 *>(P + r * ATT_TK + c4);
        p[r][0] = v.x, p[r][1] = v.y, p[r][2] = v.z, p[r][3] = v.w;
    }
}
template <int R> __device__ static __forceinline__ void att_p4(const double *P, int c4, double (*p)[4])
{
    for (int r = 0; r < R; r++)
        for (int u = 0; u < 4; u++) p[r][u] = P[r * ATT_TK + c4 + u];
}

// ---- forward -------------------------------------------------------------------
// Rows are packed (query, head of the group): row n of kv head hk is query
// n / G of head hk * G + n % G, so the G query heads that read one kv head
// share its K/V tiles (decoding: one block per kv head, not G).
//
// The row's final output and log-sum-exp from its running max m, sum l and
// unnormalised output o (attention.c: zeros and -inf for a row that saw no
// key, NaN for a NaN score), with the head's sink folded in (ATT_SINKS_APPLY).
template <typename T, int DC>
__device__ static __forceinline__ void att_finish(const AttGeo &g, const T *sinks, long long b, long long h, long long i, T m,
                                         T l, const T *o, T *out, T *lse)
{
    const int lane = threadIdx.x & 31, D = (int)g.D;
    const T NINF = att_ninf<T>();
    bool seen = l != 0; // also NaN
    T inv = seen ? (T)1 / l : (T)0, L = seen ? m + att_log(l) : NINF;
    if (sinks) {
        T sh = sinks[h], mm = L > sh ? L : sh;
        if (L != L || sh != sh) {
            L = inv = (T)NAN;
        } else if (mm != NINF) {
            T nl = mm + att_log(att_exp(L - mm) + att_exp(sh - mm));
            inv *= att_exp(L - nl);
            L = nl;
        }
    }
    T *dst = out + ((b * g.T + i) * g.Hq + h) * D;
    for (int c = 0; c < DC; c++) {
        int d = lane + 32 * c;
        if (d < D) dst[d] = o[c] * inv;
    }
    if (lane == 0) lse[(b * g.Hq + h) * g.T + i] = L;
}

// grid (ceil(G T / BQ), Hkv, B * nsplit); smem Ps[BQ][32], Qs[BQ][D] (scaled q), Ks[32][pad], Vs[32][D].
// nsplit > 1 (few blocks, long rows: decoding): split sp walks only its share of the key tiles and
// writes its m, l and unnormalised o to part ([nsplit][B][Hq][T] of (D + 2)) for att_combine.
template <typename T, int R, int DC>
__global__ void __launch_bounds__(ATT_THREADS) att_fwd(AttGeo g, const T *q, const T *k, const T *v, const T *sinks,
                                                      int nsplit, long long split_keys, T *out, T *lse, T *part)
{
    const int BQ = ATT_WARPS * R, D = (int)g.D, KP = att_pad<T>(D);
    LFL_SMEM(T, sm);
    T *Ps = sm, *Qs = Ps + BQ * ATT_TK, *Ks = Qs + BQ * D, *Vs = Ks + ATT_TK * KP;
    const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5;
    const long long b = blockIdx.z / nsplit, sp = blockIdx.z % nsplit, hk = blockIdx.y;
    const long long NR = g.G * g.T, n0 = (long long)blockIdx.x * BQ, nrow = NR - n0 < BQ ? NR - n0 : BQ;
    const T scale = (T)g.scale, cap = (T)g.softcap, icap = cap > 0 ? (T)1 / cap : (T)0, NINF = att_ninf<T>();
    const T *kb = k + b * g.ks[0] + hk * g.ks[1], *vb = v + b * g.vs[0] + hk * g.vs[1];
    for (int e = tid; e < BQ * D; e += ATT_THREADS) {
        int rr = e / D, d = e - rr * D;
        long long n = n0 + rr, i = n / g.G, h = hk * g.G + n % g.G;
        Qs[e] = n < NR ? q[b * g.qs[0] + h * g.qs[1] + i * g.qs[2] + d * g.qs[3]] * scale : (T)0;
    }
    const long long kv0 = g.kvs ? g.kvs[b] : 0;
    long long lo[R], hi[R], si[R];
    for (int r = 0; r < R; r++) {
        long long n = n0 + w * R + r, i = n / g.G;
        bool in = n < NR;
        lo[r] = att_lo(g, kv0, i);
        hi[r] = in ? att_hi(g, i) : 0;
        si[r] = g.seg && in ? g.seg[b * g.T + i] : 0;
    }
    // the keys any row of the block may see (lo and hi grow with i), within this split's share
    const long long imin = n0 / g.G, imax = (n0 + nrow - 1) / g.G;
    long long blo = att_lo(g, kv0, imin), bhi = att_hi(g, imax);
    if (sp * split_keys > blo) blo = sp * split_keys;
    if ((sp + 1) * split_keys < bhi) bhi = (sp + 1) * split_keys;
    long long smn = 0, smx = 0;
    if (g.seg) att_seg_range(g, b, imin, imax - imin + 1, &smn, &smx);
    const bool active = w * R < nrow; // a warp without rows only helps to stage the tiles
    T m[R], l[R], o[R][DC];
    for (int r = 0; r < R; r++) {
        m[r] = NINF;
        l[r] = 0;
        for (int c = 0; c < DC; c++) o[r][c] = 0;
    }
    for (long long j0 = blo / ATT_TK * ATT_TK; j0 < bhi; j0 += ATT_TK) {
        const long long j = j0 + lane;
        long long sj = 0;
        if (g.seg) { // the same answer in every warp: a tile no row's segment reaches is skipped by the block
            sj = j < g.S ? g.seg[b * g.T + j] : 0;
            if (!__any_sync(ATT_FULL, j < g.S && sj >= smn && sj <= smx)) continue;
        }
        __syncthreads(); // the previous tile's K/V (and, at first, Qs) complete
        for (int e = tid; e < ATT_TK * D; e += ATT_THREADS) {
            int c = e / D, d = e - c * D;
            long long jj = j0 + c;
            bool in = jj < g.S;
            Ks[c * KP + d] = in ? kb[jj * g.ks[2] + d * g.ks[3]] : (T)0;
            Vs[c * D + d] = in ? vb[jj * g.vs[2] + d * g.vs[3]] : (T)0;
        }
        __syncthreads();
        if (!active) continue;
        T s[R];
        for (int r = 0; r < R; r++) s[r] = 0;
        att_dots<T, R>(Ks + lane * KP, Qs + w * R * D, D, s);
        bool any = false;
        ATT_UNROLL
        for (int r = 0; r < R; r++) {
            T x = s[r];
            if (cap > 0) x = cap * att_tanh(x * icap);
            // (a split's key range is whole tiles: the loop bounds keep to it)
            bool vis = j >= lo[r] && j < hi[r] && (!g.seg || sj == si[r]);
            x = vis ? x : NINF;
            T mx = att_warp_max_nan(x), p = 0;
            if (mx != NINF) { // the row sees a key of this tile (warp-uniform)
                T mn = m[r] > mx ? m[r] : mx;
                T alpha = m[r] == NINF ? (T)0 : att_exp(m[r] - mn);
                p = att_exp(x - mn);
                l[r] = l[r] * alpha + lfl_warp_sum(p);
                m[r] = mn;
                for (int c = 0; c < DC; c++) o[r][c] *= alpha;
                any = true;
            }
            Ps[(w * R + r) * ATT_TK + lane] = p;
        }
        __syncwarp();
        if (!any) continue;
        for (int c4 = 0; c4 < ATT_TK; c4 += 4) {
            T pr[R][4];
            att_p4<R>(Ps + w * R * ATT_TK, c4, pr);
            for (int u = 0; u < 4; u++) {
                const T *vr = Vs + (c4 + u) * D;
                for (int c = 0; c < DC; c++) {
                    int d = lane + 32 * c;
                    T vd = d < D ? vr[d] : (T)0; // (no break: the loops unroll, o stays in registers)
                    for (int r = 0; r < R; r++) o[r][c] += pr[r][u] * vd;
                }
            }
        }
    }
    ATT_UNROLL
    for (int r = 0; r < R; r++) {
        long long n = n0 + w * R + r, i = n / g.G, h = hk * g.G + n % g.G;
        if (n >= NR) continue;
        if (nsplit == 1) {
            att_finish<T, DC>(g, sinks, b, h, i, m[r], l[r], o[r], out, lse);
            continue;
        }
        T *pp = part + (((sp * g.B + b) * g.Hq + h) * g.T + i) * (D + 2);
        for (int c = 0; c < DC; c++) {
            int d = lane + 32 * c;
            if (d < D) pp[2 + d] = o[r][c];
        }
        if (lane == 0) pp[0] = m[r], pp[1] = l[r];
    }
}

// the splits of each row merged (one warp per row, grid-stride), then finished as above
template <typename T, int DC>
__global__ void __launch_bounds__(256) att_combine(AttGeo g, const T *sinks, int nsplit, const T *part, T *out,
                                                   T *lse)
{
    const int lane = threadIdx.x & 31, D = (int)g.D;
    const long long rows = g.B * g.Hq * g.T, wpb = blockDim.x >> 5;
    const T NINF = att_ninf<T>();
    for (long long row = blockIdx.x * wpb + (threadIdx.x >> 5); row < rows; row += (long long)gridDim.x * wpb) {
        T M = NINF;
        for (int s = 0; s < nsplit; s++) {
            T x = part[(s * rows + row) * (D + 2)];
            M = (x > M || x != x) ? x : M;
        }
        T l = 0, o[DC];
        for (int c = 0; c < DC; c++) o[c] = 0;
        for (int s = 0; s < nsplit; s++) {
            const T *pp = part + (s * rows + row) * (D + 2);
            if (pp[0] == NINF) continue; // the split saw no key of the row
            T f = att_exp(pp[0] - M);
            l += pp[1] * f;
            for (int c = 0; c < DC; c++) {
                int d = lane + 32 * c;
                if (d < D) o[c] += pp[2 + d] * f;
            }
        }
        long long bh = row / g.T, i = row - bh * g.T, b = bh / g.Hq, h = bh - b * g.Hq;
        att_finish<T, DC>(g, sinks, b, h, i, M, l, o, out, lse);
    }
}

// ---- backward --------------------------------------------------------------------
// delta[b, h, i] = sum_d g * o, one warp per row (grid-stride); g contiguous [B, Hq, T, D]
template <typename T>
__global__ void __launch_bounds__(256) att_delta(AttGeo g, const T *o, const T *go, T *delta)
{
    const int lane = threadIdx.x & 31, D = (int)g.D;
    const long long n = g.B * g.Hq * g.T, wpb = blockDim.x >> 5;
    for (long long row = blockIdx.x * wpb + (threadIdx.x >> 5); row < n; row += (long long)gridDim.x * wpb) {
        long long bh = row / g.T, i = row - bh * g.T, b = bh / g.Hq, h = bh - b * g.Hq;
        const T *orow = o + b * g.os[0] + h * g.os[1] + i * g.os[2], *grow = go + row * D;
        T acc = 0;
        for (int d = lane; d < D; d += 32) acc += grow[d] * orow[d * g.os[3]];
        acc = lfl_warp_sum(acc);
        if (lane == 0) delta[row] = acc;
    }
}

// dsinks[h] = -sum over (b, i) of exp(s_h - lse) * delta, one block per head (f64 sums, as the CPU)
template <typename T>
__global__ void __launch_bounds__(256) att_dsinks(AttGeo g, const T *sinks, const T *lse, const T *delta, T *ds)
{
    __shared__ double scratch[32];
    const long long h = blockIdx.x, n = g.B * g.T;
    const double sh = (double)sinks[h];
    double acc = 0;
    for (long long e = threadIdx.x; e < n; e += blockDim.x) {
        long long b = e / g.T, i = e - b * g.T, row = (b * g.Hq + h) * g.T + i;
        double L = (double)lse[row];
        if (L == -INFINITY) continue; // nothing seen and a -inf sink: no gradient
        acc -= exp(sh - L) * (double)delta[row];
    }
    acc = lfl_block_sum(acc, scratch);
    if (threadIdx.x == 0) ds[h] = (T)acc;
}

// dq per tile of packed rows (as the forward's): grid (ceil(G T / BQ), Hkv, B); smem Ps[BQ][32]
// (dS), Qs[BQ][D] (scaled), dOs[BQ][D], Ks[32][pad], Vs[32][pad]
template <typename T, int R, int DC>
__global__ void __launch_bounds__(ATT_THREADS) att_dq(AttGeo g, const T *q, const T *k, const T *v, const T *go,
                                                     const T *lse, const T *delta, T *dq)
{
    const int BQ = ATT_WARPS * R, D = (int)g.D, KP = att_pad<T>(D);
    LFL_SMEM(T, sm);
    T *Ps = sm, *Qs = Ps + BQ * ATT_TK, *dOs = Qs + BQ * D, *Ks = dOs + BQ * D, *Vs = Ks + ATT_TK * KP;
    const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5;
    const long long b = blockIdx.z, hk = blockIdx.y;
    const long long NR = g.G * g.T, n0 = (long long)blockIdx.x * BQ, nrow = NR - n0 < BQ ? NR - n0 : BQ;
    const T scale = (T)g.scale, cap = (T)g.softcap, icap = cap > 0 ? (T)1 / cap : (T)0, NINF = att_ninf<T>();
    const T *kb = k + b * g.ks[0] + hk * g.ks[1], *vb = v + b * g.vs[0] + hk * g.vs[1];
    for (int e = tid; e < BQ * D; e += ATT_THREADS) {
        int rr = e / D, d = e - rr * D;
        long long n = n0 + rr, i = n / g.G, h = hk * g.G + n % g.G;
        bool in = n < NR;
        Qs[e] = in ? q[b * g.qs[0] + h * g.qs[1] + i * g.qs[2] + d * g.qs[3]] * scale : (T)0;
        dOs[e] = in ? go[((b * g.Hq + h) * g.T + i) * D + d] : (T)0;
    }
    const long long kv0 = g.kvs ? g.kvs[b] : 0;
    long long lo[R], hi[R], si[R];
    T L[R], Di[R], acc[R][DC];
    for (int r = 0; r < R; r++) {
        long long n = n0 + w * R + r, i = n / g.G, row = (b * g.Hq + hk * g.G + n % g.G) * g.T + i;
        bool in = n < NR;
        lo[r] = att_lo(g, kv0, i);
        hi[r] = in ? att_hi(g, i) : 0;
        si[r] = g.seg && in ? g.seg[b * g.T + i] : 0;
        L[r] = in ? lse[row] : NINF;
        Di[r] = in ? delta[row] : (T)0;
        for (int c = 0; c < DC; c++) acc[r][c] = 0;
    }
    const long long imin = n0 / g.G, imax = (n0 + nrow - 1) / g.G;
    const long long blo = att_lo(g, kv0, imin), bhi = att_hi(g, imax);
    long long smn = 0, smx = 0;
    if (g.seg) att_seg_range(g, b, imin, imax - imin + 1, &smn, &smx);
    const bool active = w * R < nrow;
    for (long long j0 = blo / ATT_TK * ATT_TK; j0 < bhi; j0 += ATT_TK) {
        const long long j = j0 + lane;
        long long sj = 0;
        if (g.seg) {
            sj = j < g.S ? g.seg[b * g.T + j] : 0;
            if (!__any_sync(ATT_FULL, j < g.S && sj >= smn && sj <= smx)) continue;
        }
        __syncthreads();
        for (int e = tid; e < ATT_TK * D; e += ATT_THREADS) {
            int c = e / D, d = e - c * D;
            long long jj = j0 + c;
            bool in = jj < g.S;
            Ks[c * KP + d] = in ? kb[jj * g.ks[2] + d * g.ks[3]] : (T)0;
            Vs[c * KP + d] = in ? vb[jj * g.vs[2] + d * g.vs[3]] : (T)0;
        }
        __syncthreads();
        if (!active) continue;
        T s[R], dp[R];
        for (int r = 0; r < R; r++) s[r] = dp[r] = 0;
        att_dots<T, R>(Ks + lane * KP, Qs + w * R * D, D, s);
        att_dots<T, R>(Vs + lane * KP, dOs + w * R * D, D, dp);
        bool any = false;
        for (int r = 0; r < R; r++) {
            T x = s[r], th = 0;
            if (cap > 0) {
                th = att_tanh(x * icap);
                x = cap * th;
            }
            bool vis = j >= lo[r] && j < hi[r] && (!g.seg || sj == si[r]) && L[r] != NINF;
            T p = vis ? att_exp(x - L[r]) : (T)0, ds = p * (dp[r] - Di[r]);
            if (cap > 0) ds *= 1 - th * th;
            Ps[(w * R + r) * ATT_TK + lane] = ds;
            any |= vis;
        }
        __syncwarp(); // Ps complete (a vote does not order memory)
        if (!__any_sync(ATT_FULL, any)) continue;
        for (int c4 = 0; c4 < ATT_TK; c4 += 4) {
            T pr[R][4];
            att_p4<R>(Ps + w * R * ATT_TK, c4, pr);
            for (int u = 0; u < 4; u++) {
                const T *kk = Ks + (c4 + u) * KP;
                for (int c = 0; c < DC; c++) {
                    int d = lane + 32 * c;
                    T kd = d < D ? kk[d] : (T)0;
                    for (int r = 0; r < R; r++) acc[r][c] += pr[r][u] * kd;
                }
            }
        }
    }
    for (int r = 0; r < R; r++) {
        long long n = n0 + w * R + r, i = n / g.G, h = hk * g.G + n % g.G;
        if (n >= NR) continue;
        T *dst = dq + ((b * g.Hq + h) * g.T + i) * D;
        for (int c = 0; c < DC; c++) {
            int d = lane + 32 * c;
            if (d < D) dst[d] = acc[r][c] * scale;
        }
    }
}

// dk, dv per key tile: grid (ceil(S / BK), Hkv, B); the packed query rows of the group's G heads
// streamed in tiles of 32 (lane = row); smem Qs[32][pad] (scaled), dOs[32][pad], Ks[BK][D],
// Vs[BK][D], Ps[BK][32], Ss[BK][32] (dS)
template <typename T, int R, int DC>
__global__ void __launch_bounds__(ATT_THREADS) att_dkv(AttGeo g, const T *q, const T *k, const T *v, const T *go,
                                                      const T *lse, const T *delta, T *dk, T *dv)
{
    const int BK = ATT_WARPS * R, D = (int)g.D, KP = att_pad<T>(D);
    LFL_SMEM(T, sm);
    T *Qs = sm, *dOs = Qs + ATT_TK * KP, *Ks = dOs + ATT_TK * KP, *Vs = Ks + BK * D, *Ps = Vs + BK * D;
    T *Ss = Ps + BK * ATT_TK;
    const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5;
    const long long b = blockIdx.z, hk = blockIdx.y, j0 = (long long)blockIdx.x * BK, NR = g.G * g.T;
    const T scale = (T)g.scale, cap = (T)g.softcap, icap = cap > 0 ? (T)1 / cap : (T)0, NINF = att_ninf<T>();
    const T *kb = k + b * g.ks[0] + hk * g.ks[1], *vb = v + b * g.vs[0] + hk * g.vs[1];
    for (int e = tid; e < BK * D; e += ATT_THREADS) {
        int c = e / D, d = e - c * D;
        long long j = j0 + c;
        bool in = j < g.S;
        Ks[e] = in ? kb[j * g.ks[2] + d * g.ks[3]] : (T)0;
        Vs[e] = in ? vb[j * g.vs[2] + d * g.vs[3]] : (T)0;
    }
    const long long kv0 = g.kvs ? g.kvs[b] : 0, nkey = g.S - j0 < BK ? g.S - j0 : BK, jmax = j0 + nkey - 1;
    long long sj[R];
    T dka[R][DC], dva[R][DC];
    for (int r = 0; r < R; r++) {
        long long j = j0 + w * R + r;
        sj[r] = g.seg && j < g.S ? g.seg[b * g.T + j] : 0;
        for (int c = 0; c < DC; c++) dka[r][c] = dva[r][c] = 0;
    }
    // the queries that may see a key of the block: causal i >= j - off, window i < j - off + window
    long long qlo = 0, qhi = g.T;
    if (g.causal) qlo = j0 - g.off > 0 ? j0 - g.off : 0;
    if (g.window > 0 && jmax - g.off + g.window < qhi) qhi = jmax - g.off + g.window;
    if (jmax < kv0) qhi = 0; // every key of the block is padding
    long long smn = 0, smx = 0;
    if (g.seg) att_seg_range(g, b, j0, nkey, &smn, &smx);
    const bool active = w * R < nkey;
    for (long long n0 = qlo * g.G / ATT_TK * ATT_TK; n0 < qhi * g.G; n0 += ATT_TK) {
        const long long n = n0 + lane, i = n / g.G, h = hk * g.G + n % g.G, row = (b * g.Hq + h) * g.T + i;
        const bool in = n < NR;
        long long si = 0;
        if (g.seg) {
            si = in ? g.seg[b * g.T + i] : 0;
            if (!__any_sync(ATT_FULL, in && si >= smn && si <= smx)) continue;
        }
        const T L = in ? lse[row] : NINF, Di = in ? delta[row] : (T)0;
        const long long lo = att_lo(g, kv0, i), hi = in ? att_hi(g, i) : 0;
        __syncthreads(); // the previous tile's Qs/dOs (and, at first, Ks/Vs) complete
        for (int e = tid; e < ATT_TK * D; e += ATT_THREADS) {
            int c = e / D, d = e - c * D;
            long long nn = n0 + c, ii = nn / g.G, hh = hk * g.G + nn % g.G;
            bool ok = nn < NR;
            Qs[c * KP + d] = ok ? q[b * g.qs[0] + hh * g.qs[1] + ii * g.qs[2] + d * g.qs[3]] * scale : (T)0;
            dOs[c * KP + d] = ok ? go[((b * g.Hq + hh) * g.T + ii) * D + d] : (T)0;
        }
        __syncthreads();
        if (!active) continue;
        T s[R], dp[R];
        for (int r = 0; r < R; r++) s[r] = dp[r] = 0;
        att_dots<T, R>(Qs + lane * KP, Ks + w * R * D, D, s);
        att_dots<T, R>(dOs + lane * KP, Vs + w * R * D, D, dp);
        bool any = false;
        for (int r = 0; r < R; r++) {
            long long j = j0 + w * R + r;
            T x = s[r], th = 0;
            if (cap > 0) {
                th = att_tanh(x * icap);
                x = cap * th;
            }
            bool vis = j >= lo && j < hi && (!g.seg || si == sj[r]) && L != NINF;
            T p = vis ? att_exp(x - L) : (T)0, ds = p * (dp[r] - Di);
            if (cap > 0) ds *= 1 - th * th;
            Ps[(w * R + r) * ATT_TK + lane] = p;
            Ss[(w * R + r) * ATT_TK + lane] = ds;
            any |= vis;
        }
        __syncwarp();
        if (!__any_sync(ATT_FULL, any)) continue;
        for (int c2 = 0; c2 < ATT_TK; c2++) {
            T pr[R], sr[R];
            for (int r = 0; r < R; r++) {
                pr[r] = Ps[(w * R + r) * ATT_TK + c2];
                sr[r] = Ss[(w * R + r) * ATT_TK + c2];
            }
            const T *qq = Qs + c2 * KP, *gg = dOs + c2 * KP;
            for (int c = 0; c < DC; c++) {
                int d = lane + 32 * c;
                T qd = d < D ? qq[d] : (T)0, gd = d < D ? gg[d] : (T)0;
                for (int r = 0; r < R; r++) {
                    dva[r][c] += pr[r] * gd;
                    dka[r][c] += sr[r] * qd;
                }
            }
        }
    }
    for (int r = 0; r < R; r++) {
        long long j = j0 + w * R + r;
        if (j >= g.S) continue;
        T *kd = dk + ((b * g.Hkv + hk) * g.S + j) * D, *vd = dv + ((b * g.Hkv + hk) * g.S + j) * D;
        for (int c = 0; c < DC; c++) {
            int d = lane + 32 * c;
            if (d < D) {
                kd[d] = dka[r][c];
                vd[d] = dva[r][c];
            }
        }
    }
}

// ---- host side -----------------------------------------------------------------------

const int ATT_DMAX = 256;

static void att_geo(AttGeo *g, const lfl_attn_args *p, const lfl_tensor *o)
{
    const lfl_tensor *q = p->q, *k = p->k, *v = p->v;
    memset(g, 0, sizeof *g);
    g->B = q->shape[0];
    g->Hq = q->shape[1];
    g->T = q->shape[2];
    g->D = q->shape[3];
    g->Hkv = k->shape[1];
    g->S = k->shape[2];
    g->G = g->Hq / g->Hkv;
    g->off = g->S - g->T;
    g->window = p->window;
    g->causal = p->causal;
    g->scale = p->scale;
    g->softcap = p->softcap;
    for (int d = 0; d < 4; d++) {
        g->qs[d] = q->stride[d];
        g->ks[d] = k->stride[d];
        g->vs[d] = v->stride[d];
        g->os[d] = o ? o->stride[d] : 0;
    }
    g->seg = p->segments ? (const int64_t *)lfl_data(p->segments) : NULL;
    g->kvs = p->kv_start ? (const int64_t *)lfl_data(p->kv_start) : NULL;
}

// opts a kernel into more than the default 48 KiB of dynamic shared memory
template <typename K> static lfl_status att_smem(K *fn, size_t bytes, const char *op)
{
    if (bytes <= (48u << 10)) return LFL_OK;
    cudaError_t e = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
    if (e != cudaSuccess)
        return lfl_fail(LFL_ERR_DEVICE, "%s: CUDA: %zu bytes of shared memory: %s", op, bytes, cudaGetErrorString(e));
    return LFL_OK;
}

static unsigned att_tiles(long long n, int per) { return (unsigned)((n + per - 1) / per); }

// the device's multiprocessors (cached per device)
static int att_sms(int device)
{
    static int sms[64];
    if (device < 0 || device >= 64) return 1;
    if (!sms[device]) {
        cudaDeviceProp pr;
        sms[device] = cudaGetDeviceProperties(&pr, device) == cudaSuccess && pr.multiProcessorCount > 0
                          ? pr.multiProcessorCount
                          : 1;
    }
    return sms[device];
}

template <typename T, int DC>
static lfl_status att_forward_run(const AttGeo &g, const lfl_attn_args *p, lfl_tensor *out, lfl_tensor *lse)
{
    const char *op = "attention";
    const int R = AttRows<T, DC>::value, BQ = ATT_WARPS * R, D = (int)g.D;
    const long long tiles = att_tiles(g.G * g.T, BQ), blocks = tiles * g.Hkv * g.B, ktiles = (g.S + ATT_TK - 1) / ATT_TK;
    // Few blocks for long rows (decoding): the keys split over up to 4 blocks per multiprocessor,
    // at least two key tiles each, merged by att_combine (flash-decoding)
    long long nsplit = 1, want = (4LL * att_sms(out->device) + blocks - 1) / blocks;
    if (want > 1 && ktiles >= 4) {
        nsplit = want < ktiles / 2 ? want : ktiles / 2;
        if (nsplit > 64) nsplit = 64;
        if (nsplit * g.B > 65535) nsplit = 65535 / g.B;
    }
    long long tps = (ktiles + nsplit - 1) / (nsplit > 0 ? nsplit : 1);
    if (tps < 1) tps = 1;
    nsplit = ktiles > 0 ? (ktiles + tps - 1) / tps : 1; // no empty split at the end
    size_t smem = sizeof(T) * (size_t)(BQ * D + ATT_TK * att_pad<T>(D) + ATT_TK * D + BQ * ATT_TK);
    LFL_TRY(att_smem(att_fwd<T, R, DC>, smem, op));
    lfl_tensor *part = NULL;
    if (nsplit > 1) {
        int64_t n = nsplit * g.B * g.Hq * g.T * (g.D + 2);
        LFL_TRY(lfl_empty(1, &n, p->q->dtype, p->q->device, &part));
    }
    dim3 grid((unsigned)tiles, (unsigned)g.Hkv, (unsigned)(g.B * nsplit));
    const T *sinks = p->sinks ? (const T *)lfl_data(p->sinks) : (const T *)0;
    LFL_LAUNCH(grid, ATT_THREADS, smem, att_fwd<T, R, DC>)(g, (const T *)lfl_data(p->q), (const T *)lfl_data(p->k),
                                                            (const T *)lfl_data(p->v), sinks, (int)nsplit,
                                                            tps * ATT_TK, (T *)lfl_data(out), (T *)lfl_data(lse),
                                                            part ? (T *)lfl_data(part) : (T *)0);
    lfl_status st = lfl_cuda_launched(op);
    if (st == LFL_OK && part) {
        unsigned nb = lfl_cuda_blocks(g.B * g.Hq * g.T, 8);
        if (nb > 65535u * 16) nb = 65535u * 16; // grid-stride beyond
        LFL_LAUNCH(nb, 256, 0, att_combine<T, DC>)(g, sinks, (int)nsplit, (const T *)lfl_data(part),
                                                    (T *)lfl_data(out), (T *)lfl_data(lse));
        st = lfl_cuda_launched(op);
    }
    lfl_tensor_release(part);
    return st;
}

template <typename T, int DC>
static lfl_status att_backward_run(const AttGeo &g, const lfl_attn_args *p, lfl_tensor *lse, lfl_tensor *go,
                                   lfl_tensor *delta, lfl_tensor *dq, lfl_tensor *dk, lfl_tensor *dv)
{
    const char *op = "attention backward";
    const int R = AttRows<T, DC>::value, BT = ATT_WARPS * R, D = (int)g.D;
    const T *q = (const T *)lfl_data(p->q), *k = (const T *)lfl_data(p->k), *v = (const T *)lfl_data(p->v);
    const T *gp = (const T *)lfl_data(go), *lp = (const T *)lfl_data(lse), *dp = (const T *)lfl_data(delta);
    size_t sq = sizeof(T) * (size_t)(2 * BT * D + 2 * ATT_TK * att_pad<T>(D) + BT * ATT_TK);
    LFL_TRY(att_smem(att_dq<T, R, DC>, sq, op));
    dim3 gq(att_tiles(g.G * g.T, BT), (unsigned)g.Hkv, (unsigned)g.B);
    LFL_LAUNCH(gq, ATT_THREADS, sq, att_dq<T, R, DC>)(g, q, k, v, gp, lp, dp, (T *)lfl_data(dq));
    LFL_TRY(lfl_cuda_launched(op));
    if (g.S == 0) return LFL_OK; // no key: dk and dv are empty
    size_t skv = sizeof(T) * (size_t)(2 * ATT_TK * att_pad<T>(D) + 2 * BT * D + 2 * BT * ATT_TK);
    LFL_TRY(att_smem(att_dkv<T, R, DC>, skv, op));
    dim3 gk(att_tiles(g.S, BT), (unsigned)g.Hkv, (unsigned)g.B);
    LFL_LAUNCH(gk, ATT_THREADS, skv, att_dkv<T, R, DC>)(g, q, k, v, gp, lp, dp, (T *)lfl_data(dk),
                                                         (T *)lfl_data(dv));
    return lfl_cuda_launched(op);
}

// DC = the head-dim chunks of 32 per lane, a compile-time count
#define ATT_DC_SWITCH(D, ...)                                           \
    do {                                                                \
        if ((D) <= 64) { const int DC = 2; __VA_ARGS__; }               \
        else if ((D) <= 96) { const int DC = 3; __VA_ARGS__; }          \
        else if ((D) <= 128) { const int DC = 4; __VA_ARGS__; }         \
        else { const int DC = 8; __VA_ARGS__; }                         \
    } while (0)

static lfl_status att_check(const lfl_attn_args *p, const char *op)
{
    const lfl_tensor *q = p->q;
    if (q->dtype != LFL_F32 && q->dtype != LFL_F64)
        return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: dtype %s is not implemented on CUDA", op, lfl_dtype_name(q->dtype));
    if (q->shape[3] > ATT_DMAX)
        return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: head dim %lld is not implemented on CUDA (at most %d)", op,
                        (long long)q->shape[3], ATT_DMAX);
    if (q->shape[1] > 65535 || q->shape[0] > 65535)
        return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: %lld batch rows of %lld heads exceed a CUDA grid (65535 each)", op,
                        (long long)q->shape[0], (long long)q->shape[1]);
    return lfl_cuda_use(q->device, op);
}

} // namespace

extern "C" lfl_status lfl_cuda_attention(const lfl_attn_args *p, lfl_tensor *out, lfl_tensor *lse)
{
    LFL_TRY(att_check(p, "attention"));
    const lfl_tensor *kvs = p->kv_start;
    if (kvs) { // B values: read back once per call, for the CPU's message naming the row
        int64_t B = p->q->shape[0], S = p->k->shape[2], buf[256];
        for (int64_t b0 = 0; b0 < B; b0 += 256) {
            int64_t n = B - b0 < 256 ? B - b0 : 256;
            cudaError_t e = cudaMemcpy(buf, (const int64_t *)lfl_data(kvs) + b0, sizeof(int64_t) * (size_t)n,
                                       cudaMemcpyDeviceToHost);
            if (e != cudaSuccess) return lfl_fail(LFL_ERR_DEVICE, "attention: CUDA: %s", cudaGetErrorString(e));
            for (int64_t i = 0; i < n; i++)
                if (buf[i] < 0 || buf[i] > S)
                    return lfl_fail(LFL_ERR_ARG, "attention: kv_start[%lld] = %lld is outside [0, %lld] (the key count)",
                                    (long long)(b0 + i), (long long)buf[i], (long long)S);
        }
    }
    AttGeo g;
    att_geo(&g, p, NULL);
    if (p->q->dtype == LFL_F32) ATT_DC_SWITCH(g.D, return att_forward_run<float, DC>(g, p, out, lse));
    else ATT_DC_SWITCH(g.D, return att_forward_run<double, DC>(g, p, out, lse));
    return LFL_OK;
}

// the backward for one element type: delta = rowsum(dO * O), then the dq and
// dk/dv passes, then the sinks' gradient
template <typename T>
static lfl_status att_backward_typed(const AttGeo &g, const lfl_attn_args *p, lfl_tensor *out, lfl_tensor *lse,
                                     lfl_tensor *go, lfl_tensor *delta, lfl_tensor *dq, lfl_tensor *dk, lfl_tensor *dv,
                                     lfl_tensor *dsinks, unsigned nb)
{
    const char *op = "attention backward";
    LFL_LAUNCH(nb, 256, 0, att_delta<T>)(g, (const T *)lfl_data(out), (const T *)lfl_data(go), (T *)lfl_data(delta));
    lfl_status st = lfl_cuda_launched(op);
    if (st == LFL_OK) ATT_DC_SWITCH(g.D, st = (att_backward_run<T, DC>(g, p, lse, go, delta, dq, dk, dv)));
    if (st == LFL_OK && dsinks) {
        LFL_LAUNCH((unsigned)g.Hq, 256, 0, att_dsinks<T>)(g, (const T *)lfl_data(p->sinks), (const T *)lfl_data(lse),
                                                          (const T *)lfl_data(delta), (T *)lfl_data(dsinks));
        st = lfl_cuda_launched(op);
    }
    return st;
}

extern "C" lfl_status lfl_cuda_attention_backward(const lfl_attn_args *p, lfl_tensor *out, lfl_tensor *lse,
                                                  lfl_tensor *go, lfl_tensor *dq, lfl_tensor *dk, lfl_tensor *dv,
                                                  lfl_tensor *dsinks)
{
    const char *op = "attention backward";
    LFL_TRY(att_check(p, op));
    AttGeo g;
    att_geo(&g, p, out);
    lfl_tensor *delta = NULL;
    int64_t rows = g.B * g.Hq * g.T;
    LFL_TRY(lfl_empty(1, &rows, p->q->dtype, p->q->device, &delta));
    unsigned nb = lfl_cuda_blocks(rows, 8);
    if (nb > 65535u * 16) nb = 65535u * 16; // grid-stride beyond
    lfl_status st = p->q->dtype == LFL_F32 ? att_backward_typed<float>(g, p, out, lse, go, delta, dq, dk, dv, dsinks, nb)
                                           : att_backward_typed<double>(g, p, out, lse, go, delta, dq, dk, dv, dsinks, nb);
    lfl_tensor_release(delta);
    return st;
}
