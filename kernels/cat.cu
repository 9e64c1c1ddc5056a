// cat's CUDA entry: n tensors (any strides, any element type: moved by size)
// joined along one dim into a contiguous out. Up to CAT_BATCH inputs go in
// one launch (their pointers, strides and offsets in the kernel's
// arguments, blockIdx.y picking the input), each block walking its input's
// elements in order so consecutive threads write consecutive elements of out.
// Reading the inputs through their strides spares the copies a contiguous
// input would need.
#include "dimwise.cuh"

#define CAT_BATCH 8

struct CatIn {
    const void *p;
    long long n, len, off; // elements, size along dim, offset along dim in out
    long long stride[LFL_MAX_DIMS];
};

struct CatArgs {
    int nd, d, count;
    long long shape[LFL_MAX_DIMS], ostride[LFL_MAX_DIMS]; // out's shape (dim d: the input's len) and strides
    CatIn in[CAT_BATCH];
};

template <typename E> __global__ void cat_kernel(E *out, CatArgs a)
{
    const CatIn &t = a.in[blockIdx.y];
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < t.n; e += (long long)gridDim.x * blockDim.x) {
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

template <typename E> static void cat_launch(lfl_tensor *o, const CatArgs &a, long long most)
{
    dim3 grid(lfl_cuda_grid(most, 256, 65535), (unsigned)a.count);
    LFL_LAUNCH(grid, 256, 0, cat_kernel<E>)((E *)lfl_data(o), a);
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
    for (int k = 0; k < o->ndim; k++) {
        a.shape[k] = o->shape[k];
        a.ostride[k] = o->stride[k];
    }
    long long off = 0;
    for (int j0 = 0; j0 < n; j0 += CAT_BATCH) {
        a.count = 0;
        long long most = 0;
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
                if (ne > most) most = ne;
            }
            off += len;
        }
        if (a.count == 0) continue;
        switch (es) {
        case 8: cat_launch<uint64_t>(o, a, most); break;
        case 4: cat_launch<uint32_t>(o, a, most); break;
        case 2: cat_launch<uint16_t>(o, a, most); break;
        default: cat_launch<uint8_t>(o, a, most); break;
        }
        LFL_TRY(lfl_cuda_launched("cat"));
    }
    return LFL_OK;
}
