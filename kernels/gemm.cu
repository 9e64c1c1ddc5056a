// matmul's CUDA entry in the dispatch table: batches of row-major GEMMs through
// cuBLAS (blas.cuh), f32 and f64 with GEMM layouts, and one bf16/f16 operand
// (any strides) with an f32 partner, widened block by block to f32 as the CPU
// does (lowp_gemm.cuh): f32 products, an f32 result.
#include "lowp_gemm.cuh"
extern "C" {
#include "ops/matmul.h"
}

// a and b as matmul's front leaves them; out [batch..., n, m] contiguous.
extern "C" lfl_status lfl_cuda_matmul(lfl_tensor *a, lfl_tensor *b, lfl_tensor *out)
{
    bool la = lfl_is_lowp(a->dtype), lb = lfl_is_lowp(b->dtype);
    bool ok = (la || lb) ? la != lb && (la ? b : a)->dtype == LFL_F32
                         : a->dtype == b->dtype && (a->dtype == LFL_F32 || a->dtype == LFL_F64);
    if (!ok)
        return lfl_fail(LFL_ERR_UNSUPPORTED,
                        "matmul: %s @ %s is not implemented on cuda:%d (f32 or f64, or bf16/f16 with f32)",
                        lfl_dtype_name(a->dtype), lfl_dtype_name(b->dtype), out->device);
    bool ta = false, tb = false;
    int lda = 1, ldb = 1;
    if (!la) lfl_matmul_layout(a, &ta, &lda);
    if (!lb) lfl_matmul_layout(b, &tb, &ldb);
    int64_t n = out->shape[out->ndim - 2], m = out->shape[out->ndim - 1], k = a->shape[a->ndim - 1];
    int64_t sa[LFL_MAX_DIMS], sb[LFL_MAX_DIMS], batches;
    lfl_matmul_batch_strides(a, b, out, sa, sb, &batches);
    if (n == 0 || m == 0 || batches == 0) return LFL_OK;
    size_t es = lfl_dtype_size(out->dtype), esa = lfl_dtype_size(a->dtype), esb = lfl_dtype_size(b->dtype);
    if (k == 0) {
        LFL_TRY(lfl_cuda_use(out->device, "matmul"));
        cudaError_t e = cudaMemset(lfl_data(out), 0, es * (size_t)(n * m * batches));
        return e == cudaSuccess ? LFL_OK : lfl_fail(LFL_ERR_DEVICE, "matmul: %s", cudaGetErrorString(e));
    }
    for (int64_t bi = 0; bi < batches; bi++) {
        int64_t oa, ob;
        lfl_matmul_batch_offsets(out, sa, sb, bi, &oa, &ob);
        const char *pa = (const char *)lfl_data(a) + oa * esa, *pb = (const char *)lfl_data(b) + ob * esb;
        char *po = (char *)lfl_data(out) + bi * n * m * es; // f32 whenever an operand is 16-bit
        if (la)
            LFL_TRY(lfl_cuda_gemm_lowp_f32(out->device, "matmul", n, m, k, a->dtype, pa, a->stride[a->ndim - 2],
                                           a->stride[a->ndim - 1], tb, (const float *)pb, ldb, 0.0f, (float *)po,
                                           (int)m));
        else if (lb)
            LFL_TRY(lfl_cuda_gemm_f32_lowp(out->device, "matmul", ta, n, m, k, (const float *)pa, lda, b->dtype, pb,
                                           b->stride[b->ndim - 2], b->stride[b->ndim - 1], 0.0f, (float *)po,
                                           (int)m));
        else
            LFL_TRY(lfl_cuda_gemm(out->device, "matmul", ta, tb, (int)n, (int)m, (int)k, 1.0f, pa, lda, pb, ldb,
                                  0.0f, po, (int)m, a->dtype, out->dtype));
    }
    return LFL_OK;
}
