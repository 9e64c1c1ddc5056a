// copy on CUDA: dst[...] = src[...] within one device, any strides, src
// broadcast to dst, with the CPU's dtype conversions (kernels/convert.cuh).
// One dtype: a flat copy is a device memcpy, a strided one moves raw
// 1/2/4/8-byte words, a transposing one through shared-memory tiles.
#include "convert.cuh"
#include "strided.cuh"

template <typename D, typename S, typename W> __global__ void convert_flat(D *d, const S *s, long long n)
{
    LFL_GRID_LOOP(long long, i, n) lfl_cv_store<D, W>(d + i, lfl_cv_load<W>(s + i));
}

template <typename D, typename S, typename W, typename I>
__global__ void convert_walk(D *d, const S *s, I n, lfl_walk w)
{
    LFL_GRID_LOOP(I, i, n) {
        I o[2];
        lfl_walk_at<2>(w, i, o);
        lfl_cv_store<D, W>(d + o[0], lfl_cv_load<W>(s + o[1]));
    }
}

template <typename R, typename I> __global__ void copy_walk(R *d, const R *s, I n, lfl_walk w)
{
    LFL_GRID_LOOP(I, i, n) {
        I o[2];
        lfl_walk_at<2>(w, i, o);
        d[o[0]] = s[o[1]];
    }
}

// A transpose-like copy (dst's innermost dim unit-stride, src's unit-stride
// dim another one, j): 32x32 tiles through shared memory, so both the reads
// (along j) and the writes (along the inner dim) are coalesced. The walk
// `batch` covers the other dims (lists: dst, src).
static const int TILE = 32, TILE_ROWS = 8;

template <typename R>
__global__ void copy_tiles(R *d, const R *s, long long nj, long long ni, long long dsj, long long ssi, lfl_walk batch,
                           long long nb)
{
    __shared__ R tile[TILE][TILE + 1];
    long long i0 = (long long)blockIdx.x * TILE, j0 = (long long)blockIdx.y * TILE;
    int tx = threadIdx.x, ty = threadIdx.y;
    for (long long b = blockIdx.z; b < nb; b += gridDim.z) {
        long long o[2];
        lfl_walk_at<2>(batch, b, o);
        for (int r = ty; r < TILE; r += TILE_ROWS) {
            long long i = i0 + r, j = j0 + tx;
            if (i < ni && j < nj) tile[r][tx] = s[o[1] + j + i * ssi];
        }
        __syncthreads();
        for (int r = ty; r < TILE; r += TILE_ROWS) {
            long long j = j0 + r, i = i0 + tx;
            if (i < ni && j < nj) d[o[0] + j * dsj + i] = tile[tx][r];
        }
        __syncthreads(); // the tile is refilled for the next batch entry
    }
}

// the tiled copy when the layouts call for it (true: launched)
template <typename R> static bool launch_tiles(void *d, const void *s, const lfl_walk &w)
{
    int nd = w.nd, j = -1;
    if (nd < 2 || w.st[0][nd - 1] != 1 || w.st[1][nd - 1] == 1) return false;
    for (int k = 0; k < nd - 1; k++)
        if (w.st[1][k] == 1) j = k;
    if (j < 0 || w.shape[j] < 8 || w.shape[nd - 1] < 8) return false;
    lfl_walk batch;
    batch.nd = 0;
    batch.k = 2;
    long long nb = 1;
    for (int k = 0; k < nd - 1; k++) {
        if (k == j) continue;
        batch.shape[batch.nd] = w.shape[k];
        batch.st[0][batch.nd] = w.st[0][k];
        batch.st[1][batch.nd] = w.st[1][k];
        batch.st[2][batch.nd] = 0;
        batch.nd++;
        nb *= w.shape[k];
    }
    if (batch.nd == 0) {
        batch.nd = 1;
        batch.shape[0] = 1;
        batch.st[0][0] = batch.st[1][0] = batch.st[2][0] = 0;
    }
    long long ni = w.shape[nd - 1], nj = w.shape[j];
    long long gx = (ni + TILE - 1) / TILE, gy = (nj + TILE - 1) / TILE;
    if (gx > 2147483647LL || gy > 65535) return false;
    dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)(nb < (long long)lfl_walk_max_z ? nb : lfl_walk_max_z));
    LFL_LAUNCH(grid, dim3(TILE, TILE_ROWS), 0, copy_tiles<R>)((R *)d, (const R *)s, nj, ni, w.st[0][j],
                                                             w.st[1][nd - 1], batch, nb);
    return true;
}

static const int threads = 256;

template <typename R> static void launch_raw(void *d, const void *s, long long n, const lfl_walk &w)
{
    unsigned blocks = lfl_walk_blocks(n, threads);
    if (launch_tiles<R>(d, s, w)) return;
    if (lfl_walk_fits_int(&w, n))
        LFL_LAUNCH(blocks, threads, 0, copy_walk<R, int>)((R *)d, (const R *)s, (int)n, w);
    else
        LFL_LAUNCH(blocks, threads, 0, copy_walk<R, long long>)((R *)d, (const R *)s, n, w);
}

template <typename D, typename S> static void launch_convert(void *d, const void *s, long long n, const lfl_walk &w)
{
    typedef lfl_wide_t<D, S> W;
    unsigned blocks = lfl_walk_blocks(n, threads);
    if (lfl_walk_flat(&w, 0) && lfl_walk_flat(&w, 1))
        LFL_LAUNCH(blocks, threads, 0, convert_flat<D, S, W>)((D *)d, (const S *)s, n);
    else if (lfl_walk_fits_int(&w, n))
        LFL_LAUNCH(blocks, threads, 0, convert_walk<D, S, W, int>)((D *)d, (const S *)s, (int)n, w);
    else
        LFL_LAUNCH(blocks, threads, 0, convert_walk<D, S, W, long long>)((D *)d, (const S *)s, n, w);
}

extern "C" lfl_status lfl_cuda_copy(lfl_tensor *dst, const lfl_tensor *src)
{
    long long n = lfl_numel(dst);
    if (n == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(dst->device, "copy"));
    bool flat = lfl_is_contiguous(dst) && lfl_is_contiguous(src) && lfl_numel(src) == n;
    if (dst->dtype == src->dtype && (flat || lfl_dtype_is_block(dst->dtype))) {
        if (!flat)
            return lfl_fail(LFL_ERR_UNSUPPORTED, "copy: a %s tensor copies on CUDA only between contiguous tensors",
                            lfl_dtype_name(dst->dtype));
        cudaError_t e = cudaMemcpyAsync(lfl_data(dst), lfl_data(src), lfl_dtype_nbytes(dst->dtype, n),
                                        cudaMemcpyDeviceToDevice, lfl_cuda_stream());
        if (e != cudaSuccess) return lfl_fail(LFL_ERR_DEVICE, "copy: CUDA: %s", cudaGetErrorString(e));
        return LFL_OK;
    }
    int64_t sst[LFL_MAX_DIMS];
    lfl_walk_bstrides(src, dst->ndim, dst->shape, sst);
    const int64_t *st[2] = {dst->stride, sst};
    lfl_walk w;
    lfl_walk_init(&w, dst->ndim, dst->shape, 2, st);
    void *d = lfl_data(dst);
    const void *s = lfl_data(src);
    if (dst->dtype == src->dtype) {
        LFL_BITS_SWITCH(lfl_dtype_size(dst->dtype), "copy", dst->dtype, R, launch_raw<R>(d, s, n, w));
        return lfl_cuda_launched("copy");
    }
    LFL_PLAIN_SWITCH(dst->dtype, "copy", D, LFL_PLAIN_SWITCH(src->dtype, "copy", S, launch_convert<D, S>(d, s, n, w)));
    return lfl_cuda_launched("copy");
}
