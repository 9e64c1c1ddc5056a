// affine on CUDA: out = a * s + c for a contiguous a of any plain dtype but
// bool. As on the CPU (core/ops/affine.c): f32 in f32, f64 in f64, every other
// dtype read as f64 and stored back through lfl_set's conversion.
#include "convert.cuh"
#include "elementwise.cuh"

template <typename T, typename W> __global__ void affine_kernel(const T *x, T *y, W s, W c, long long n)
{
    LFL_GRID_LOOP(long long, i, n) lfl_cv_store<T, W>(y + i, lfl_cv_load<W>(x + i) * s + c);
}

extern "C" lfl_status lfl_cuda_affine(lfl_tensor *a, double s, double c, lfl_tensor *out)
{
    long long n = lfl_numel(a);
    if (n == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(a->device, "affine"));
    unsigned blocks = lfl_ew_blocks(n);
    if (a->dtype == LFL_F32) {
        LFL_LAUNCH(blocks, lfl_ew_threads, 0, affine_kernel<float, float>)((const float *)lfl_data(a),
                                                                          (float *)lfl_data(out), (float)s,
                                                                          (float)c, n);
    } else {
        LFL_PLAIN_SWITCH(a->dtype, "affine", T,
                         LFL_LAUNCH(blocks, lfl_ew_threads, 0, affine_kernel<T, double>)(
                             (const T *)lfl_data(a), (T *)lfl_data(out), s, c, n));
    }
    return lfl_cuda_launched("affine");
}
