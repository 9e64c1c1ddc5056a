// fill on CUDA: every element of t (any strides) set to one value. The value's
// bits are made on the host by lfl_set, the CPU's own conversion, so both
// devices store the same thing; a contiguous tensor whose value is one byte
// repeated (zeros above all) is a memset.
#include "strided.cuh"

template <typename R> __global__ void fill_flat(R *d, R v, long long n)
{
    long long step = (long long)gridDim.x * blockDim.x;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += step) d[i] = v;
}

template <typename R, typename I> __global__ void fill_walk(R *d, R v, I n, lfl_walk w)
{
    I step = (I)gridDim.x * (I)blockDim.x;
    for (I i = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; i < n; i += step) {
        I o, unused;
        lfl_walk_at(w, i, &o, &unused);
        d[o] = v;
    }
}

template <typename R> static void launch(void *d, const void *bits, long long n, const lfl_walk &w)
{
    const int threads = 256;
    unsigned blocks = lfl_walk_blocks(n, threads);
    R v;
    memcpy(&v, bits, sizeof v);
    if (w.nd == 1 && w.s0[0] == 1)
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
    lfl_tensor *one;
    LFL_TRY(lfl_empty(0, NULL, t->dtype, LFL_CPU, &one));
    lfl_set(one, 0, v);
    size_t es = lfl_dtype_size(t->dtype);
    unsigned char bits[8];
    memcpy(bits, lfl_data(one), es);
    lfl_tensor_release(one);
    bool bytewise = true;
    for (size_t k = 1; k < es; k++) bytewise = bytewise && bits[k] == bits[0];
    if (bytewise && lfl_is_contiguous(t)) {
        cudaError_t e = cudaMemsetAsync(lfl_data(t), bits[0], (size_t)n * es, lfl_cuda_stream());
        if (e != cudaSuccess) return lfl_fail(LFL_ERR_DEVICE, "fill: CUDA: %s", cudaGetErrorString(e));
        return LFL_OK;
    }
    lfl_walk w;
    lfl_walk_init(&w, t->ndim, t->shape, t->stride, NULL);
    if (w.nd == 0) {
        w.nd = 1;
        w.shape[0] = 1;
        w.s0[0] = w.s1[0] = 1;
    }
    switch (es) {
    case 1: launch<uint8_t>(lfl_data(t), bits, n, w); break;
    case 2: launch<uint16_t>(lfl_data(t), bits, n, w); break;
    case 4: launch<uint32_t>(lfl_data(t), bits, n, w); break;
    default: launch<unsigned long long>(lfl_data(t), bits, n, w); break;
    }
    return lfl_cuda_launched("fill");
}
