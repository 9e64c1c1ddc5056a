// cat's CUDA entry: n tensors (any strides, any element type: moved by size)
// joined along one dim into a contiguous out. Up to CAT_BATCH inputs go in
// one launch (their pointers, strides and offsets in the kernel's
// arguments, blockIdx.y picking the input). A contiguous input is rows of
// len * inner elements, one per outer index, copied by rows of threads
// (dimwise.cuh's row plan); another is read through its strides element by
// element (sparing the copy that would make it contiguous). Either way
// consecutive threads write consecutive elements of out.
#include "dimwise.cuh"

#define CAT_BATCH 8

struct CatIn {
    const void *p;
    long long n, len, off; // elements, size along dim, offset along dim in out
    int contig, shift;     // contiguous: copied by rows of 2^shift threads
    long long stride[LFL_MAX_DIMS];
};

struct CatArgs {
    int nd, d, count;
    long long outer, len, inner;                          // out as [outer, len, inner] around dim d
    long long shape[LFL_MAX_DIMS], ostride[LFL_MAX_DIMS]; // out's shape (dim d: the input's len) and strides
    CatIn in[CAT_BATCH];
};

template <typename E> __global__ void cat_kernel(E *out, CatArgs a)
{
    const CatIn &t = a.in[blockIdx.y];
    if (t.contig) { // uniform over the block
        long long row = t.len * a.inner, lane = LFL_ROW_LANE(t.shift), step = 1LL << t.shift;
        LFL_ROW_LOOP(r, a.outer, t.shift)
        {
            const E *src = (const E *)t.p + r * row;
            E *dst = out + (r * a.len + t.off) * a.inner;
            for (long long c = lane; c < row; c += step) dst[c] = src[c];
        }
        return;
    }
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < t.n;
         e += (long long)gridDim.x * blockDim.x) {
        long long rem = e, io = 0, oo = t.off * a.ostride[a.d];
        for (int k = a.nd - 1; k >= 0; k--) {
            long long size = k == a.d ? t.len : a.shape[k], c = rem % size;
            rem /= size;
            io += c * t.stride[k];
            oo += c * a.ostride[k];
        }
        out[oo] = ((const E *)t.p)[io];
    }
}

// blocks: enough for the largest input either way (kernels grid-stride past it)
template <typename E> static void cat_launch(lfl_tensor *o, const CatArgs &a, unsigned blocks)
{
    dim3 grid(blocks, (unsigned)a.count);
    LFL_LAUNCH(grid, LFL_ROW_THREADS, 0, cat_kernel<E>)((E *)lfl_data(o), a);
}

extern "C" lfl_status lfl_cuda_cat(int n, lfl_tensor **ts, int d, lfl_tensor *o)
{
    if (lfl_numel(o) == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(o->device, "cat"));
    size_t es = lfl_dtype_size(o->dtype);
    if (es != 1 && es != 2 && es != 4 && es != 8)
        return lfl_fail(LFL_ERR_UNSUPPORTED, "cat: dtype %s is not implemented on CUDA", lfl_dtype_name(o->dtype));
    CatArgs a;
    a.nd = o->ndim;
    a.d = d;
    lfl_cuda_dim_split(o->ndim, o->shape, d, &a.outer, &a.len, &a.inner);
    for (int k = 0; k < o->ndim; k++) {
        a.shape[k] = o->shape[k];
        a.ostride[k] = o->stride[k];
    }
    long long off = 0;
    for (int j0 = 0; j0 < n; j0 += CAT_BATCH) {
        a.count = 0;
        unsigned blocks = 1;
        for (int j = j0; j < n && j < j0 + CAT_BATCH; j++) {
            lfl_tensor *t = ts[j];
            long long len = t->shape[d], ne = lfl_numel(t);
            if (ne > 0) {
                CatIn &c = a.in[a.count++];
                c.p = lfl_data(t);
                c.n = ne;
                c.len = len;
                c.off = off;
                for (int k = 0; k < t->ndim; k++) c.stride[k] = t->stride[k];
                c.contig = lfl_is_contiguous(t);
                unsigned b;
                if (c.contig) {
                    lfl_row_plan p = lfl_rows_plan(a.outer, len * a.inner);
                    c.shift = p.shift;
                    b = p.blocks;
                } else {
                    c.shift = 0;
                    b = lfl_cuda_grid(ne, LFL_ROW_THREADS, 65535);
                }
                if (b > blocks) blocks = b;
            }
            off += len;
        }
        if (a.count == 0) continue;
        switch (es) {
        case 8: cat_launch<uint64_t>(o, a, blocks); break;
        case 4: cat_launch<uint32_t>(o, a, blocks); break;
        case 2: cat_launch<uint16_t>(o, a, blocks); break;
        default: cat_launch<uint8_t>(o, a, blocks); break;
        }
        LFL_TRY(lfl_cuda_launched("cat"));
    }
    return LFL_OK;
}
