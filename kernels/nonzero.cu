// nonzero's CUDA entry: the 0-based i64 positions of the true elements of a
// 1-D bool mask (any stride), in order. The output's size depends on the
// data, so: each block counts the trues of its tile, one block scans the
// tile counts into tile offsets and the total, the host reads the total back
// (the op's one synchronization) and allocates the output, and each block
// writes its tile's positions from its offset, in order within the tile by a
// block-wide scan of the flags.
#include "dimwise.cuh"

#define NZ_THREADS 256
#define NZ_ROUNDS 8
#define NZ_TILE (NZ_THREADS * NZ_ROUNDS)

// flag of element `round` of this thread in tile `tile`
__device__ static inline int nz_flag(const bool *m, long long n, long long s, long long tile, int round)
{
    long long i = tile * NZ_TILE + (long long)round * NZ_THREADS + threadIdx.x;
    return i < n && m[i * s];
}

// trues per tile
__global__ void nz_count_kernel(const bool *m, long long n, long long s, long long *counts, long long ntiles)
{
    __shared__ long long scratch[32];
    for (long long t = blockIdx.x; t < ntiles; t += gridDim.x) {
        long long c = 0;
        for (int r = 0; r < NZ_ROUNDS; r++) c += nz_flag(m, n, s, t, r);
        c = lfl_block_sum(c, scratch);
        if (threadIdx.x == 0) counts[t] = c;
    }
}

// one block: offs[t] = trues before tile t, offs[ntiles] = all of them
__global__ void nz_scan_kernel(const long long *counts, long long *offs, long long ntiles)
{
    __shared__ long long wsum[32];
    __shared__ long long carry;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    if (threadIdx.x == 0) carry = 0;
    __syncthreads();
    for (long long base = 0; base < ntiles; base += blockDim.x) {
        long long i = base + threadIdx.x, v = i < ntiles ? counts[i] : 0, x = v;
        for (int o = 1; o < 32; o <<= 1) { // inclusive scan within the warp
            long long y = __shfl_up_sync(0xffffffffu, x, o);
            if (lane >= o) x += y;
        }
        if (lane == 31) wsum[w] = x;
        __syncthreads();
        long long before = carry;
        for (int k = 0; k < w; k++) before += wsum[k];
        if (i < ntiles) offs[i] = before + x - v;
        __syncthreads(); // carry and wsum read by all before they change
        if (threadIdx.x == blockDim.x - 1) carry = before + x;
        __syncthreads();
    }
    if (threadIdx.x == 0) offs[ntiles] = carry;
}

// each tile's positions from its offset: per round, a block-wide exclusive scan of the flags
__global__ void nz_write_kernel(const bool *m, long long n, long long s, const long long *offs, int64_t *out,
                                long long ntiles)
{
    __shared__ int wcount[NZ_THREADS / 32];
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    for (long long t = blockIdx.x; t < ntiles; t += gridDim.x) {
        long long at = offs[t];
        for (int r = 0; r < NZ_ROUNDS; r++) {
            int f = nz_flag(m, n, s, t, r);
            unsigned bits = __ballot_sync(0xffffffffu, f);
            __syncthreads(); // wcount of the previous round read by all
            if (lane == 0) wcount[w] = __popc(bits);
            __syncthreads();
            int before = __popc(bits & ((1u << lane) - 1u)), total = 0;
            for (int k = 0; k < NZ_THREADS / 32; k++) {
                if (k < w) before += wcount[k];
                total += wcount[k];
            }
            if (f) out[at + before] = t * NZ_TILE + (long long)r * NZ_THREADS + threadIdx.x;
            at += total;
        }
    }
}

extern "C" lfl_status lfl_cuda_nonzero(lfl_tensor *mask, lfl_tensor **out)
{
    long long n = mask->shape[0], s = mask->stride[0];
    int64_t count = 0;
    if (n == 0) return lfl_empty(1, &count, LFL_I64, mask->device, out);
    LFL_TRY(lfl_cuda_use(mask->device, "nonzero"));
    const bool *m = (const bool *)lfl_data(mask);
    long long ntiles = (n + NZ_TILE - 1) / NZ_TILE;
    unsigned blocks = lfl_cuda_grid(ntiles, 1, 65535);
    lfl_tensor *ws = NULL, *o = NULL;
    LFL_TRY(lfl_cuda_scratch(mask->device, (2 * ntiles + 1) * (long long)sizeof(long long), &ws));
    long long *counts = (long long *)lfl_data(ws), *offs = counts + ntiles;
    LFL_LAUNCH(blocks, NZ_THREADS, 0, nz_count_kernel)(m, n, s, counts, ntiles);
    LFL_LAUNCH(1, 1024, 0, nz_scan_kernel)(counts, offs, ntiles);
    lfl_status st = lfl_cuda_launched("nonzero");
    if (st == LFL_OK) {
        cudaError_t e = cudaMemcpy(&count, offs + ntiles, sizeof count, cudaMemcpyDeviceToHost);
        if (e != cudaSuccess) st = lfl_fail(LFL_ERR_DEVICE, "nonzero: CUDA: %s", cudaGetErrorString(e));
    }
    if (st == LFL_OK) st = lfl_empty(1, &count, LFL_I64, mask->device, &o);
    if (st == LFL_OK && count > 0) {
        LFL_LAUNCH(blocks, NZ_THREADS, 0, nz_write_kernel)(m, n, s, offs, (int64_t *)lfl_data(o), ntiles);
        st = lfl_cuda_launched("nonzero");
    }
    lfl_tensor_release(ws);
    if (st) { lfl_tensor_release(o); return st; }
    *out = o;
    return LFL_OK;
}
