// embedding's CUDA entries: out[i, :] = weight[ids[i], :] (f32, f64, and a
// bf16/f16 table gathered into f32 rows like the CPU kernel), a row of
// threads per id (dimwise.cuh's row plan) so a warp reads and writes
// consecutive columns; ids outside
// [0, V) are reported with the CPU kernel's message (dimwise.cuh's flag).
// The backward adds the gradient rows into dw [V, H] with atomicAdd: repeated
// ids make the order of the additions (and the last bits of f32 sums) vary,
// where the CPU adds each id's rows in position order.
#include "dimwise.cuh"

// one row of out per id (dimwise.cuh's row plan)
template <typename S, typename O>
__global__ void embedding_kernel(const S *w, const int64_t *ids, O *out, long long nids, long long h, long long v,
                                 int shift, unsigned long long *flag)
{
    long long lane = LFL_ROW_LANE(shift), step = 1LL << shift;
    LFL_ROW_LOOP(i, nids, shift)
    {
        long long id = ids[i];
        if (id < 0 || id >= v) {
            if (lane == 0) lfl_ix_bad(flag, i);
            continue;
        }
        const S *src = w + id * h;
        O *dst = out + i * h;
        for (long long c = lane; c < h; c += step) lfl_st(dst + c, lfl_ld(src + c));
    }
}

template <typename S, typename O> static void embedding_launch(lfl_tensor *w, const int64_t *ids, lfl_tensor *o,
                                                               long long nids, long long h, unsigned long long *flag)
{
    lfl_row_plan p = lfl_rows_plan(nids, h);
    LFL_LAUNCH(p.blocks, LFL_ROW_THREADS, 0, embedding_kernel<S, O>)(
        (const S *)lfl_data(w), ids, (O *)lfl_data(o), nids, h, (long long)w->shape[0], p.shift, flag);
}

extern "C" lfl_status lfl_cuda_embedding(lfl_tensor *w, lfl_tensor *ix, lfl_tensor *o)
{
    long long v = w->shape[0], h = w->shape[1], nids = lfl_numel(ix);
    if (nids == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(o->device, "embedding"));
    const int64_t *ids = (const int64_t *)lfl_data(ix);
    lfl_ix_flag f;
    LFL_TRY(lfl_ix_begin(o->device, "embedding", &f));
    if (h == 0) lfl_ix_check_launch(ids, nids, v, f.p); // no element to copy, the ids still checked
    else if (w->dtype == LFL_F32) embedding_launch<float, float>(w, ids, o, nids, h, f.p);
    else if (w->dtype == LFL_F64) embedding_launch<double, double>(w, ids, o, nids, h, f.p);
    else if (w->dtype == LFL_BF16) embedding_launch<bf16_t, float>(w, ids, o, nids, h, f.p);
    else if (w->dtype == LFL_F16) embedding_launch<f16_t, float>(w, ids, o, nids, h, f.p);
    else {
        lfl_tensor_release(f.t);
        return lfl_fail(LFL_ERR_UNSUPPORTED, "embedding: dtype %s is not implemented on CUDA",
                        lfl_dtype_name(w->dtype));
    }
    lfl_status st = lfl_cuda_launched("embedding");
    long long at = -1, bad = 0;
    if (st == LFL_OK) st = lfl_ix_end("embedding", &f, ids, &at, &bad);
    else lfl_tensor_release(f.t);
    if (st) return st;
    if (at >= 0)
        return lfl_fail(LFL_ERR_ARG, "embedding: id %lld (ids element %lld, 0-based) is out of range for a "
                                     "vocabulary of V = %lld rows (ids are 0-based, 0 <= id < V)",
                        bad, at, v);
    return LFL_OK;
}

// dw[ids[i], c] += g[i, c]; ids were checked by the forward
template <typename T>
__global__ void embedding_backward_kernel(const T *g, const int64_t *ids, T *dw, long long nids, long long h,
                                          long long v, int shift)
{
    long long lane = LFL_ROW_LANE(shift), step = 1LL << shift;
    LFL_ROW_LOOP(i, nids, shift)
    {
        long long id = ids[i];
        if (id < 0 || id >= v) continue;
        for (long long c = lane; c < h; c += step) atomicAdd(dw + id * h + c, g[i * h + c]);
    }
}

extern "C" lfl_status lfl_cuda_embedding_backward(lfl_tensor *g, lfl_tensor *ix, lfl_tensor *dw)
{
    long long v = dw->shape[0], h = dw->shape[1], nids = lfl_numel(ix);
    if (nids * h == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(dw->device, "embedding backward"));
    lfl_row_plan p = lfl_rows_plan(nids, h);
    LFL_F32_F64_SWITCH(dw->dtype, "embedding backward", T,
                       LFL_LAUNCH(p.blocks, LFL_ROW_THREADS, 0, embedding_backward_kernel<T>)(
                           (const T *)lfl_data(g), (const int64_t *)lfl_data(ix), (T *)lfl_data(dw), nids, h, v,
                           p.shift));
    return lfl_cuda_launched("embedding backward");
}
