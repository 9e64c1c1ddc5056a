// masked_fill on CUDA: out = mask ? v : a for a contiguous a of any plain
// dtype and a bool/u8 mask broadcast to it (any strides). v's bits are made
// on the host by lfl_set, as the CPU stores it (core/ops/masked_fill.c).
#include "convert.cuh"
#include "strided.cuh"

template <typename R, typename I> __global__ void masked_fill_walk(const R *a, const uint8_t *m, R v, R *o, I n, lfl_walk w)
{
    LFL_GRID_LOOP(I, i, n) {
        I off[1];
        lfl_walk_at<1>(w, i, off);
        o[i] = m[off[0]] ? v : a[i];
    }
}

template <typename R>
static void launch(const void *a, const uint8_t *m, const unsigned char *bits, void *o, long long n, const lfl_walk &w)
{
    const int threads = 256;
    unsigned blocks = lfl_walk_blocks(n, threads);
    R v;
    memcpy(&v, bits, sizeof v);
    if (lfl_walk_fits_int(&w, n))
        LFL_LAUNCH(blocks, threads, 0, masked_fill_walk<R, int>)((const R *)a, m, v, (R *)o, (int)n, w);
    else
        LFL_LAUNCH(blocks, threads, 0, masked_fill_walk<R, long long>)((const R *)a, m, v, (R *)o, n, w);
}

extern "C" lfl_status lfl_cuda_masked_fill(lfl_tensor *a, lfl_tensor *mask, double v, lfl_tensor *out)
{
    long long n = lfl_numel(a);
    if (n == 0) return LFL_OK;
    LFL_ASSERT(lfl_is_contiguous(a) && lfl_is_contiguous(out));
    if (a->dtype > LFL_BOOL)
        return lfl_fail(LFL_ERR_UNSUPPORTED, "masked_fill: dtype %s is not implemented on CUDA", lfl_dtype_name(a->dtype));
    LFL_TRY(lfl_cuda_use(a->device, "masked_fill"));
    unsigned char bits[8];
    LFL_TRY(lfl_cv_host_bits(a->dtype, v, bits));
    int64_t sm[LFL_MAX_DIMS];
    lfl_walk_bstrides(mask, a->ndim, a->shape, sm);
    const int64_t *st[1] = {sm};
    lfl_walk w;
    lfl_walk_init(&w, a->ndim, a->shape, 1, st);
    const uint8_t *m = (const uint8_t *)lfl_data(mask);
    LFL_BITS_SWITCH(lfl_dtype_size(a->dtype), "masked_fill", a->dtype, R,
                    launch<R>(lfl_data(a), m, bits, lfl_data(out), n, w));
    return lfl_cuda_launched("masked_fill");
}
