// fill on CUDA: every element of t (any strides) set to one value. The value's
// bits are made on the host by lfl_set, the CPU's own conversion, so both
// devices store the same thing; a contiguous tensor whose value is one byte
// repeated (zeros above all) is a memset.
#include "convert.cuh"
#include "strided.cuh"

template <typename R> __global__ void fill_flat(R *d, R v, long long n)
{
    LFL_GRID_LOOP(long long, i, n) d[i] = v;
}

template <typename R, typename I> __global__ void fill_walk(R *d, R v, I n, lfl_walk w)
{
    LFL_GRID_LOOP(I, i, n) {
        I o[1];
        lfl_walk_at<1>(w, i, o);
        d[o[0]] = v;
    }
}

template <typename R> static void launch(void *d, const unsigned char *bits, long long n, const lfl_walk &w)
{
    const int threads = 256;
    unsigned blocks = lfl_walk_blocks(n, threads);
    R v;
    memcpy(&v, bits, sizeof v);
    if (lfl_walk_flat(&w, 0))
        LFL_LAUNCH(blocks, threads, 0, fill_flat<R>)((R *)d, v, n);
    else if (lfl_walk_fits_int(&w, n))
        LFL_LAUNCH(blocks, threads, 0, fill_walk<R, int>)((R *)d, v, (int)n, w);
    else
        LFL_LAUNCH(blocks, threads, 0, fill_walk<R, long long>)((R *)d, v, n, w);
}

extern "C" lfl_status lfl_cuda_fill(lfl_tensor *t, double v)
{
    if (t->dtype > LFL_BOOL) // the dtypes lfl_set converts to
        return lfl_fail(LFL_ERR_UNSUPPORTED, "fill: cannot fill a %s tensor", lfl_dtype_name(t->dtype));
    long long n = lfl_numel(t);
    if (n == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(t->device, "fill"));
    unsigned char bits[8];
    LFL_TRY(lfl_cv_host_bits(t->dtype, v, bits));
    size_t es = lfl_dtype_size(t->dtype);
    bool bytewise = true;
    for (size_t k = 1; k < es; k++) bytewise = bytewise && bits[k] == bits[0];
    if (bytewise && lfl_is_contiguous(t)) {
        cudaError_t e = cudaMemsetAsync(lfl_data(t), bits[0], (size_t)n * es, lfl_cuda_stream());
        if (e != cudaSuccess) return lfl_fail(LFL_ERR_DEVICE, "fill: CUDA: %s", cudaGetErrorString(e));
        return LFL_OK;
    }
    const int64_t *st[1] = {t->stride};
    lfl_walk w;
    lfl_walk_init(&w, t->ndim, t->shape, 1, st);
    LFL_BITS_SWITCH(es, "fill", t->dtype, R, launch<R>(lfl_data(t), bits, n, w));
    return lfl_cuda_launched("fill");
}
