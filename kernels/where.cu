// where on CUDA: out = cond ? a : b with cond (bool/u8), a and b broadcast
// together, any strides; selection moves bits, so one kernel per element
// size serves every dtype (core/ops/where.c). out is contiguous.
#include "convert.cuh"
#include "strided.cuh"

template <typename R> __global__ void where_flat(const uint8_t *c, const R *a, const R *b, R *o, long long n)
{
    LFL_GRID_LOOP(long long, i, n) o[i] = c[i] ? a[i] : b[i];
}

template <typename R, typename I>
__global__ void where_walk(const uint8_t *c, const R *a, const R *b, R *o, I n, lfl_walk w)
{
    LFL_GRID_LOOP(I, i, n) {
        I off[3];
        lfl_walk_at<3>(w, i, off);
        o[i] = c[off[0]] ? a[off[1]] : b[off[2]];
    }
}

template <typename R>
static void launch(const uint8_t *c, const void *a, const void *b, void *o, long long n, const lfl_walk &w)
{
    const int threads = 256;
    unsigned blocks = lfl_walk_blocks(n, threads);
    if (lfl_walk_flat(&w, 0) && lfl_walk_flat(&w, 1) && lfl_walk_flat(&w, 2))
        LFL_LAUNCH(blocks, threads, 0, where_flat<R>)(c, (const R *)a, (const R *)b, (R *)o, n);
    else if (lfl_walk_fits_int(&w, n))
        LFL_LAUNCH(blocks, threads, 0, where_walk<R, int>)(c, (const R *)a, (const R *)b, (R *)o, (int)n, w);
    else
        LFL_LAUNCH(blocks, threads, 0, where_walk<R, long long>)(c, (const R *)a, (const R *)b, (R *)o, n, w);
}

extern "C" lfl_status lfl_cuda_where(lfl_tensor *cond, lfl_tensor *a, lfl_tensor *b, lfl_tensor *out)
{
    long long n = lfl_numel(out);
    if (n == 0) return LFL_OK;
    LFL_ASSERT(lfl_is_contiguous(out));
    LFL_TRY(lfl_cuda_use(out->device, "where"));
    int64_t s[3][LFL_MAX_DIMS];
    lfl_walk_bstrides(cond, out->ndim, out->shape, s[0]);
    lfl_walk_bstrides(a, out->ndim, out->shape, s[1]);
    lfl_walk_bstrides(b, out->ndim, out->shape, s[2]);
    const int64_t *st[3] = {s[0], s[1], s[2]};
    lfl_walk w;
    lfl_walk_init(&w, out->ndim, out->shape, 3, st);
    const uint8_t *c = (const uint8_t *)lfl_data(cond);
    LFL_BITS_SWITCH(lfl_dtype_size(a->dtype), "where", a->dtype, R,
                    launch<R>(c, lfl_data(a), lfl_data(b), lfl_data(out), n, w));
    return lfl_cuda_launched("where");
}
