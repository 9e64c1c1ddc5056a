// add/sub/mul/div with broadcasting on CUDA (f32, f64): the CUDA entries of
// the four ops in the dispatch table (core/ops/optable.h, kernels/optable.c).
#include "common.cuh"

struct Strides { int nd; long long shape[LFL_MAX_DIMS], sa[LFL_MAX_DIMS], sb[LFL_MAX_DIMS]; };

template <typename T>
__global__ void binary_kernel(int kind, const T *a, const T *b, T *o, long long n, Strides s)
{
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    long long rem = i, oa = 0, ob = 0;
    for (int d = s.nd - 1; d >= 0; d--) {
        long long k = rem % s.shape[d];
        rem /= s.shape[d];
        oa += k * s.sa[d];
        ob += k * s.sb[d];
    }
    T x = a[oa], y = b[ob];
    o[i] = kind == 0 ? x + y : kind == 1 ? x - y : kind == 2 ? x * y : x / y;
}

static lfl_status binary(int kind, const lfl_tensor *a, const lfl_tensor *b, lfl_tensor *o)
{
    Strides s;
    s.nd = o->ndim;
    for (int d = 0; d < o->ndim; d++) {
        s.shape[d] = o->shape[d];
        int da = d - (o->ndim - a->ndim), db = d - (o->ndim - b->ndim);
        s.sa[d] = (da < 0 || a->shape[da] == 1) ? 0 : a->stride[da];
        s.sb[d] = (db < 0 || b->shape[db] == 1) ? 0 : b->stride[db];
    }
    long long n = lfl_numel(o);
    if (n == 0) return LFL_OK;
    static const char *const names[] = {"add", "sub", "mul", "div"};
    LFL_TRY(lfl_cuda_use(o->device, names[kind]));
    int threads = 256;
    unsigned blocks = lfl_cuda_blocks(n, threads);
    if (o->dtype == LFL_F32)
        LFL_LAUNCH(blocks, threads, 0, binary_kernel<float>)(kind, (const float *)lfl_data(a),
                                                            (const float *)lfl_data(b), (float *)lfl_data(o), n, s);
    else if (o->dtype == LFL_F64)
        LFL_LAUNCH(blocks, threads, 0, binary_kernel<double>)(kind, (const double *)lfl_data(a),
                                                             (const double *)lfl_data(b), (double *)lfl_data(o), n, s);
    else
        return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: dtype %s is not implemented on CUDA", names[kind],
                        lfl_dtype_name(o->dtype));
    return lfl_cuda_launched(names[kind]);
}

extern "C" lfl_status lfl_cuda_add(lfl_tensor *a, lfl_tensor *b, lfl_tensor *out) { return binary(0, a, b, out); }
extern "C" lfl_status lfl_cuda_sub(lfl_tensor *a, lfl_tensor *b, lfl_tensor *out) { return binary(1, a, b, out); }
extern "C" lfl_status lfl_cuda_mul(lfl_tensor *a, lfl_tensor *b, lfl_tensor *out) { return binary(2, a, b, out); }
extern "C" lfl_status lfl_cuda_div(lfl_tensor *a, lfl_tensor *b, lfl_tensor *out) { return binary(3, a, b, out); }
