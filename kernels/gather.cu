// gather's CUDA entry: out[index shape] with out[..k..] = a[..index[..k..]..]
// along dim (a any strides, any element type: moved by size; the 0-based i64
// index contiguous), the index's rows (its last dim) spread over rows of
// threads (dimwise.cuh's row plan): a row's offset into `a` is found once,
// consecutive threads take consecutive index elements. An index outside a's
// dim is reported with the CPU kernel's message. Its backward is
// scatter_add's entry.
#include "dimwise.cuh"

struct GatherDims {
    int nd, d;
    long long shape[LFL_MAX_DIMS], astride[LFL_MAX_DIMS]; // the index's shape, a's strides
};

template <typename E>
__global__ void gather_kernel(const E *a, const int64_t *ix, E *out, long long rows, long long cols, long long size,
                              GatherDims s, int shift, unsigned long long *flag)
{
    long long lane = LFL_ROW_LANE(shift), step = 1LL << shift;
    int last = s.nd - 1;
    long long dstride = s.astride[s.d], cstride = s.d == last ? 0 : s.astride[last];
    LFL_ROW_LOOP(r, rows, shift)
    {
        long long rem = r, base = 0; // a's offset of the row, dim d left out
        for (int k = last - 1; k >= 0; k--) {
            long long c = rem % s.shape[k];
            rem /= s.shape[k];
            if (k != s.d) base += c * s.astride[k];
        }
        for (long long c = lane; c < cols; c += step) {
            long long e = r * cols + c, j = ix[e];
            if (j < 0 || j >= size) {
                lfl_ix_bad(flag, e);
                continue;
            }
            out[e] = a[base + j * dstride + c * cstride];
        }
    }
}

extern "C" lfl_status lfl_cuda_gather(lfl_tensor *a, int d, lfl_tensor *index, lfl_tensor *o)
{
    long long n = lfl_numel(index), size = a->shape[d];
    if (n == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(o->device, "gather"));
    GatherDims s;
    s.nd = index->ndim;
    s.d = d;
    for (int k = 0; k < index->ndim; k++) {
        s.shape[k] = index->shape[k];
        s.astride[k] = a->stride[k];
    }
    const int64_t *ix = (const int64_t *)lfl_data(index);
    lfl_ix_flag f;
    LFL_TRY(lfl_ix_begin(o->device, "gather", &f));
    long long cols = index->shape[index->ndim - 1], rows = n / cols;
    lfl_row_plan p = lfl_rows_plan(rows, cols);
    switch (lfl_dtype_size(a->dtype)) {
#define GA_CASE(bytes, E)                                                                                        \
    case bytes:                                                                                                  \
        LFL_LAUNCH(p.blocks, LFL_ROW_THREADS, 0, gather_kernel<E>)((const E *)lfl_data(a), ix, (E *)lfl_data(o), rows, \
                                                                   cols, size, s, p.shift, f.p);                    \
        break;
        GA_CASE(8, uint64_t)
        GA_CASE(4, uint32_t)
        GA_CASE(2, uint16_t)
        GA_CASE(1, uint8_t)
#undef GA_CASE
    default:
        lfl_tensor_release(f.t);
        return lfl_fail(LFL_ERR_UNSUPPORTED, "gather: dtype %s is not implemented on CUDA", lfl_dtype_name(a->dtype));
    }
    lfl_status st = lfl_cuda_launched("gather");
    if (st) { lfl_tensor_release(f.t); return st; }
    return lfl_ix_end_dim("gather", &f, ix, d, size);
}
