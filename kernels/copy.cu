// copy on CUDA: dst[...] = src[...] within one device, any strides, src
// broadcast to dst, with the CPU's dtype conversions (kernels/convert.cuh).
// One dtype: a flat copy is a device memcpy, a strided one moves raw
// 1/2/4/8-byte words.
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

static const int threads = 256;

template <typename R> static void launch_raw(void *d, const void *s, long long n, const lfl_walk &w)
{
    unsigned blocks = lfl_walk_blocks(n, threads);
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
