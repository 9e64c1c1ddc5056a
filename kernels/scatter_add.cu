// scatter_add's CUDA entry (also gather's backward): in place, dst
// (contiguous) at index along dim += src (any strides; only its
// index-shaped corner is read), f32/f64, the index's rows (its last dim)
// spread over rows of threads (dimwise.cuh's row plan), each row's offsets
// found once, one index element a thread with atomicAdd, since two index
// elements may name the same dst element: the order of those additions
// varies, where the CPU adds in index order. An index outside dst's dim is
// reported with the CPU kernel's message.
#include "dimwise.cuh"

struct ScatterDims {
    int nd, d;
    long long shape[LFL_MAX_DIMS], dstride[LFL_MAX_DIMS], sstride[LFL_MAX_DIMS]; // index's shape; dst's, src's strides
};

template <typename T>
__global__ void scatter_add_kernel(T *dst, const int64_t *ix, const T *src, long long rows, long long cols,
                                   long long size, ScatterDims s, int shift, unsigned long long *flag)
{
    long long lane = LFL_ROW_LANE(shift), step = 1LL << shift;
    int last = s.nd - 1;
    long long dd = s.dstride[s.d], dc = s.d == last ? 0 : s.dstride[last], sc = s.sstride[last];
    LFL_ROW_LOOP(r, rows, shift)
    {
        long long rem = r, od = 0, os = 0; // the row's offsets in dst (dim d left out) and src
        for (int k = last - 1; k >= 0; k--) {
            long long c = rem % s.shape[k];
            rem /= s.shape[k];
            if (k != s.d) od += c * s.dstride[k];
            os += c * s.sstride[k];
        }
        for (long long c = lane; c < cols; c += step) {
            long long e = r * cols + c, j = ix[e];
            if (j < 0 || j >= size) {
                lfl_ix_bad(flag, e);
                continue;
            }
            atomicAdd(dst + od + j * dd + c * dc, src[os + c * sc]);
        }
    }
}

extern "C" lfl_status lfl_cuda_scatter_add(lfl_tensor *dst, int d, lfl_tensor *index, lfl_tensor *src)
{
    long long n = lfl_numel(index), size = dst->shape[d];
    if (n == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(dst->device, "scatter_add"));
    ScatterDims s;
    s.nd = index->ndim;
    s.d = d;
    for (int k = 0; k < index->ndim; k++) {
        s.shape[k] = index->shape[k];
        s.dstride[k] = dst->stride[k];
        s.sstride[k] = src->stride[k];
    }
    const int64_t *ix = (const int64_t *)lfl_data(index);
    lfl_ix_flag f;
    LFL_TRY(lfl_ix_begin(dst->device, "scatter_add", &f));
    long long cols = index->shape[index->ndim - 1], rows = n / cols;
    lfl_row_plan p = lfl_rows_plan(rows, cols);
    if (dst->dtype == LFL_F32)
        LFL_LAUNCH(p.blocks, LFL_ROW_THREADS, 0, scatter_add_kernel<float>)(
            (float *)lfl_data(dst), ix, (const float *)lfl_data(src), rows, cols, size, s, p.shift, f.p);
    else if (dst->dtype == LFL_F64)
        LFL_LAUNCH(p.blocks, LFL_ROW_THREADS, 0, scatter_add_kernel<double>)(
            (double *)lfl_data(dst), ix, (const double *)lfl_data(src), rows, cols, size, s, p.shift, f.p);
    else {
        lfl_tensor_release(f.t);
        return lfl_fail(LFL_ERR_UNSUPPORTED, "scatter_add: dtype %s is not implemented on CUDA",
                        lfl_dtype_name(dst->dtype));
    }
    lfl_status st = lfl_cuda_launched("scatter_add");
    if (st) { lfl_tensor_release(f.t); return st; }
    return lfl_ix_end_dim("scatter_add", &f, ix, d, size);
}
