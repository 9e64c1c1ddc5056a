// linear's CUDA entries: out = x @ w^T + bias as one cuBLAS GEMM into C
// started from the bias rows (beta = 1), and the backward's two GEMMs. A
// bf16/f16 w with f32 x (a frozen base weight) is widened block by block as
// the CPU does (lowp_gemm.cuh); its dw, when asked for, is f32 like g.
// An NF4/FP4 weight (QLoRA's frozen base, moved with its state) is
// dequantized in blocks of rows to f32 (q4.cuh) for cuBLAS, as the CPU does
// with its tiles. int8, GGUF and GPTQ weights cannot move to a device (their
// state stays on the CPU), so they never reach these kernels.
#include "lowp_gemm.cuh"
extern "C" {
#include "quant/bnb4.h"
}

static lfl_status unsupported_w(const char *op, const lfl_tensor *x, const lfl_tensor *w)
{
    return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: a %s weight with %s input is not implemented on cuda:%d", op,
                    lfl_dtype_name(w->dtype), lfl_dtype_name(x->dtype), x->device);
}

static bool plain_pair(const lfl_tensor *x, const lfl_tensor *w)
{
    return (x->dtype == LFL_F32 || x->dtype == LFL_F64) &&
           (w->dtype == x->dtype || ((lfl_is_lowp(w->dtype) || lfl_is_q4(w->dtype)) && x->dtype == LFL_F32));
}

// x [rows, in] contiguous, w [out, in] contiguous or 16-bit with any strides
extern "C" lfl_status lfl_cuda_linear(lfl_tensor *x, lfl_tensor *w, lfl_tensor *bias, lfl_tensor *o)
{
    const char *op = "linear";
    if (!plain_pair(x, w)) return unsupported_w(op, x, w);
    int dev = o->device;
    long long fin = w->shape[1], fout = w->shape[0], rows = fin ? lfl_numel(x) / fin : 0;
    if (rows == 0 || fout == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(dev, op));
    if (bias) LFL_TRY(lfl_cuda_bias_rows(op, o, bias, rows, fout));
    float beta = bias ? 1.0f : 0.0f;
    if (lfl_is_q4(w->dtype))
        return lfl_cuda_gemm_f32_q4(dev, op, rows, fout, fin, (const float *)lfl_data(x), (int)fin, w, true, beta,
                                    (float *)lfl_data(o), (int)fout);
    if (lfl_is_lowp(w->dtype))
        return lfl_cuda_gemm_f32_lowp(dev, op, false, rows, fout, fin, (const float *)lfl_data(x), (int)fin, w->dtype,
                                      lfl_data(w), w->stride[1], w->stride[0], beta, (float *)lfl_data(o), (int)fout);
    return lfl_cuda_gemm_typed(dev, op, x->dtype, false, true, rows, fout, fin, 1.0, lfl_data(x), fin, lfl_data(w),
                               fin, beta, lfl_data(o), fout);
}

// g [rows, out] contiguous; dx [rows, in] = g @ w, dw [out, in] = g^T @ x (each NULL when not needed)
extern "C" lfl_status lfl_cuda_linear_backward(lfl_tensor *g, lfl_tensor *x, lfl_tensor *w, lfl_tensor *dx,
                                               lfl_tensor *dw)
{
    const char *op = "linear backward";
    if (!plain_pair(x, w)) return unsupported_w(op, x, w);
    int dev = g->device;
    long long fin = w->shape[1], fout = w->shape[0], rows = fin ? lfl_numel(x) / fin : 0;
    LFL_TRY(lfl_cuda_use(dev, op));
    if (dx) {
        if (lfl_is_q4(w->dtype))
            LFL_TRY(lfl_cuda_gemm_f32_q4(dev, op, rows, fin, fout, (const float *)lfl_data(g), (int)fout, w, false,
                                         0.0f, (float *)lfl_data(dx), (int)fin));
        else if (lfl_is_lowp(w->dtype))
            LFL_TRY(lfl_cuda_gemm_f32_lowp(dev, op, false, rows, fin, fout, (const float *)lfl_data(g), (int)fout,
                                           w->dtype, lfl_data(w), w->stride[0], w->stride[1], 0.0f,
                                           (float *)lfl_data(dx), (int)fin));
        else
            LFL_TRY(lfl_cuda_gemm_typed(dev, op, g->dtype, false, false, rows, fin, fout, 1.0, lfl_data(g), fout,
                                        lfl_data(w), fin, 0.0, lfl_data(dx), fin));
    }
    if (dw) // k = rows = 0 clears dw
        LFL_TRY(lfl_cuda_gemm_typed(dev, op, g->dtype, true, false, fout, fin, rows, 1.0, lfl_data(g), fout,
                                    lfl_data(x), fin, 0.0, lfl_data(dw), fin));
    return LFL_OK;
}
