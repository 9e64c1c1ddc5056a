// matmul's CUDA entry in the dispatch table: batches of row-major GEMMs through
// cuBLAS (blas.cuh), f32 and f64 with GEMM layouts.
#include "blas.cuh"
extern "C" {
#include "ops/matmul.h"
}

// a and b as matmul's front leaves them; out [batch..., n, m] contiguous.
extern "C" lfl_status lfl_cuda_matmul(lfl_tensor *a, lfl_tensor *b, lfl_tensor *out)
{
    if (a->dtype != b->dtype || (a->dtype != LFL_F32 && a->dtype != LFL_F64))
        return lfl_fail(LFL_ERR_UNSUPPORTED, "matmul: %s @ %s is not implemented on cuda:%d (f32 or f64 only)",
                        lfl_dtype_name(a->dtype), lfl_dtype_name(b->dtype), out->device);
    bool ta = false, tb = false;
    int lda = 1, ldb = 1;
    lfl_matmul_layout(a, &ta, &lda);
    lfl_matmul_layout(b, &tb, &ldb);
    int64_t n = out->shape[out->ndim - 2], m = out->shape[out->ndim - 1], k = a->shape[a->ndim - 1];
    int64_t sa[LFL_MAX_DIMS], sb[LFL_MAX_DIMS], batches;
    lfl_matmul_batch_strides(a, b, out, sa, sb, &batches);
    if (n == 0 || m == 0 || batches == 0) return LFL_OK;
    size_t es = lfl_dtype_size(a->dtype);
    if (k == 0) {
        LFL_TRY(lfl_cuda_use(out->device, "matmul"));
        cudaError_t e = cudaMemset(lfl_data(out), 0, es * (size_t)(n * m * batches));
        return e == cudaSuccess ? LFL_OK : lfl_fail(LFL_ERR_DEVICE, "matmul: %s", cudaGetErrorString(e));
    }
    for (int64_t bi = 0; bi < batches; bi++) {
        int64_t oa, ob;
        lfl_matmul_batch_offsets(out, sa, sb, bi, &oa, &ob);
        LFL_TRY(lfl_cuda_gemm(out->device, "matmul", ta, tb, (int)n, (int)m, (int)k, 1.0f,
                              (const char *)lfl_data(a) + oa * es, lda, (const char *)lfl_data(b) + ob * es, ldb,
                              0.0f, (char *)lfl_data(out) + bi * n * m * es, (int)m, a->dtype, out->dtype));
    }
    return LFL_OK;
}
