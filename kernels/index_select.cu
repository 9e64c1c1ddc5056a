// index_select's CUDA entries: slices of a contiguous `a` along dim picked by
// a 1-D 0-based i64 index (any element type: moved by size), a row of
// threads per output slice [o, k, :] (dimwise.cuh's row plan) so consecutive
// threads move consecutive elements; an index
// outside the dim is reported with the CPU kernel's message. The backward adds
// the gradient slices back with atomicAdd (f32, f64): a repeated index makes
// the order of its additions vary, where the CPU adds in index order.
#include "dimwise.cuh"

// out [outer, nidx, inner] from a [outer, len, inner]: row r = (o, k) of out is a's row (o, index[k])
template <typename E>
__global__ void index_select_kernel(const E *a, const int64_t *ix, E *out, long long outer, long long len,
                                    long long inner, long long nidx, int shift, unsigned long long *flag)
{
    long long lane = LFL_ROW_LANE(shift), step = 1LL << shift;
    LFL_ROW_LOOP(r, outer * nidx, shift)
    {
        long long o = r / nidx, k = r - o * nidx, j = ix[k];
        if (j < 0 || j >= len) {
            if (o == 0 && lane == 0) lfl_ix_bad(flag, k);
            continue;
        }
        const E *src = a + (o * len + j) * inner;
        E *dst = out + r * inner;
        for (long long i = lane; i < inner; i += step) dst[i] = src[i];
    }
}

extern "C" lfl_status lfl_cuda_index_select(lfl_tensor *c, int d, lfl_tensor *ixt, lfl_tensor *o)
{
    long long outer, len, inner, nidx = lfl_numel(ixt);
    lfl_cuda_dim_split(c->ndim, c->shape, d, &outer, &len, &inner);
    if (nidx == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(o->device, "index_select"));
    const int64_t *ix = (const int64_t *)lfl_data(ixt);
    lfl_ix_flag f;
    LFL_TRY(lfl_ix_begin(o->device, "index_select", &f));
    long long n = outer * nidx * inner;
    lfl_row_plan p = lfl_rows_plan(outer * nidx, inner);
    if (n == 0) {
        lfl_ix_check_launch(ix, nidx, len, f.p); // no element to move, the index still checked
    } else {
        switch (lfl_dtype_size(c->dtype)) {
#define IS_CASE(bytes, E)                                                                                  \
    case bytes:                                                                                            \
        LFL_LAUNCH(p.blocks, LFL_ROW_THREADS, 0, index_select_kernel<E>)((const E *)lfl_data(c), ix,           \
                                                                         (E *)lfl_data(o), outer, len, inner,  \
                                                                         nidx, p.shift, f.p);                  \
        break;
            IS_CASE(8, uint64_t)
            IS_CASE(4, uint32_t)
            IS_CASE(2, uint16_t)
            IS_CASE(1, uint8_t)
#undef IS_CASE
        default:
            lfl_tensor_release(f.t);
            return lfl_fail(LFL_ERR_UNSUPPORTED, "index_select: dtype %s is not implemented on CUDA",
                            lfl_dtype_name(c->dtype));
        }
    }
    lfl_status st = lfl_cuda_launched("index_select");
    if (st) { lfl_tensor_release(f.t); return st; }
    return lfl_ix_end_dim("index_select", &f, ix, d, len);
}

// da [outer, len, inner] (zeros) += g [outer, nidx, inner] at the index; checked by the forward
template <typename T>
__global__ void index_select_backward_kernel(const T *g, const int64_t *ix, T *da, long long outer, long long len,
                                             long long inner, long long nidx, int shift)
{
    long long lane = LFL_ROW_LANE(shift), step = 1LL << shift;
    LFL_ROW_LOOP(r, outer * nidx, shift)
    {
        long long o = r / nidx, k = r - o * nidx, j = ix[k];
        if (j < 0 || j >= len) continue;
        T *dst = da + (o * len + j) * inner;
        const T *src = g + r * inner;
        for (long long i = lane; i < inner; i += step) atomicAdd(dst + i, src[i]);
    }
}

extern "C" lfl_status lfl_cuda_index_select_backward(lfl_tensor *g, int d, lfl_tensor *ixt, lfl_tensor *da)
{
    long long outer, len, inner, nidx = lfl_numel(ixt);
    lfl_cuda_dim_split(da->ndim, da->shape, d, &outer, &len, &inner);
    if (outer * nidx * inner == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(da->device, "index_select backward"));
    lfl_row_plan p = lfl_rows_plan(outer * nidx, inner);
    LFL_F32_F64_SWITCH(da->dtype, "index_select backward", T,
                       LFL_LAUNCH(p.blocks, LFL_ROW_THREADS, 0, index_select_backward_kernel<T>)(
                           (const T *)lfl_data(g), (const int64_t *)lfl_data(ixt), (T *)lfl_data(da), outer, len,
                           inner, nidx, p.shift));
    return lfl_cuda_launched("index_select backward");
}
