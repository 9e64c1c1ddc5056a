// lora_linear's CUDA entries: y = x w^T + bias + s (x A^T) B^T with the
// rank-r branch added straight into the base output by a GEMM with beta = 1
// (no [rows, out] temporary), and the backward's GEMMs: u = g B, dx = g w +
// s u A (beta = 1 again), dw = g^T x, dA = s u^T x, dB = s g^T t, t = x A^T
// the side product the forward saved. w may be bf16/f16 with f32 x (a frozen
// base read as stored, widened block by block: lowp_gemm.cuh) or NF4/FP4
// (QLoRA's base, dequantized in blocks of rows); x, A, B, bias share x's
// dtype (f32, or f64 for gradient checks: alpha in f64 then).
#include "lowp_gemm.cuh"
extern "C" {
#include "quant/bnb4.h"
}

static bool lora_types_ok(const lfl_lora_args *p)
{
    lfl_dtype dt = p->x->dtype;
    bool frozen = lfl_is_lowp(p->w->dtype) || lfl_is_q4(p->w->dtype);
    return (dt == LFL_F32 || dt == LFL_F64) && (p->w->dtype == dt || (frozen && dt == LFL_F32));
}

static lfl_status lora_unsupported(const char *op, const lfl_lora_args *p)
{
    return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: a %s weight with %s input is not implemented on cuda:%d", op,
                    lfl_dtype_name(p->w->dtype), lfl_dtype_name(p->x->dtype), p->x->device);
}

extern "C" lfl_status lfl_cuda_lora_linear(const lfl_lora_args *p, lfl_tensor *o, lfl_tensor *t)
{
    const char *op = "lora_linear";
    if (!lora_types_ok(p)) return lora_unsupported(op, p);
    lfl_tensor *x = p->x, *w = p->w, *A = p->A, *B = p->B;
    lfl_dtype dt = x->dtype;
    int dev = x->device;
    long long fin = w->shape[1], fout = w->shape[0], r = A->shape[0], rows = p->rows;
    LFL_TRY(lfl_cuda_use(dev, op));
    // the side product t = x A^T [rows, r] (alone: a replay of the forward's)
    LFL_TRY(lfl_cuda_gemm_typed(dev, op, dt, false, true, rows, r, fin, 1.0, lfl_data(x), fin, lfl_data(A), fin, 0.0,
                                lfl_data(t), r));
    if (!o || rows == 0 || fout == 0) return LFL_OK;
    if (p->bias) LFL_TRY(lfl_cuda_bias_rows(op, o, p->bias, rows, fout));
    double beta = p->bias ? 1.0 : 0.0;
    if (lfl_is_q4(w->dtype))
        LFL_TRY(lfl_cuda_gemm_f32_q4(dev, op, rows, fout, fin, (const float *)lfl_data(x), (int)fin, w, true,
                                     (float)beta, (float *)lfl_data(o), (int)fout));
    else if (lfl_is_lowp(w->dtype))
        LFL_TRY(lfl_cuda_gemm_f32_lowp(dev, op, false, rows, fout, fin, (const float *)lfl_data(x), (int)fin, w->dtype,
                                       lfl_data(w), w->stride[1], w->stride[0], (float)beta, (float *)lfl_data(o),
                                       (int)fout));
    else
        LFL_TRY(lfl_cuda_gemm_typed(dev, op, dt, false, true, rows, fout, fin, 1.0, lfl_data(x), fin, lfl_data(w), fin,
                                    beta, lfl_data(o), fout));
    // + s t B^T into the base output
    return lfl_cuda_gemm_typed(dev, op, dt, false, true, rows, fout, r, p->scaling, lfl_data(t), r, lfl_data(B), r,
                               1.0, lfl_data(o), fout);
}

extern "C" lfl_status lfl_cuda_lora_linear_backward(const lfl_lora_args *p, lfl_tensor *g, lfl_tensor *t,
                                                    lfl_tensor *dx, lfl_tensor *dw, lfl_tensor *dA, lfl_tensor *dB)
{
    const char *op = "lora_linear backward";
    if (!lora_types_ok(p)) return lora_unsupported(op, p);
    lfl_tensor *x = p->x, *w = p->w, *A = p->A, *B = p->B, *u = NULL;
    lfl_dtype dt = x->dtype;
    int dev = x->device;
    long long fin = w->shape[1], fout = w->shape[0], r = A->shape[0], rows = p->rows;
    double s = p->scaling;
    LFL_TRY(lfl_cuda_use(dev, op));
    lfl_status st = LFL_OK;
    if (dx || dA) { // u [rows, r] = g @ B
        int64_t ushape[2] = {rows, r};
        st = lfl_empty(2, ushape, dt, dev, &u);
        if (st == LFL_OK)
            st = lfl_cuda_gemm_typed(dev, op, dt, false, false, rows, r, fout, 1.0, lfl_data(g), fout, lfl_data(B), r,
                                     0.0, lfl_data(u), r);
    }
    if (st == LFL_OK && dx) { // dx = g @ w + s u @ A
        if (lfl_is_q4(w->dtype))
            st = lfl_cuda_gemm_f32_q4(dev, op, rows, fin, fout, (const float *)lfl_data(g), (int)fout, w, false, 0.0f,
                                      (float *)lfl_data(dx), (int)fin);
        else if (lfl_is_lowp(w->dtype))
            st = lfl_cuda_gemm_f32_lowp(dev, op, false, rows, fin, fout, (const float *)lfl_data(g), (int)fout,
                                        w->dtype, lfl_data(w), w->stride[0], w->stride[1], 0.0f, (float *)lfl_data(dx),
                                        (int)fin);
        else
            st = lfl_cuda_gemm_typed(dev, op, dt, false, false, rows, fin, fout, 1.0, lfl_data(g), fout, lfl_data(w),
                                     fin, 0.0, lfl_data(dx), fin);
        if (st == LFL_OK)
            st = lfl_cuda_gemm_typed(dev, op, dt, false, false, rows, fin, r, s, lfl_data(u), r, lfl_data(A), fin, 1.0,
                                     lfl_data(dx), fin);
    }
    if (st == LFL_OK && dw) // dw = g^T @ x
        st = lfl_cuda_gemm_typed(dev, op, dt, true, false, fout, fin, rows, 1.0, lfl_data(g), fout, lfl_data(x), fin,
                                 0.0, lfl_data(dw), fin);
    if (st == LFL_OK && dA) // dA = s u^T @ x
        st = lfl_cuda_gemm_typed(dev, op, dt, true, false, r, fin, rows, s, lfl_data(u), r, lfl_data(x), fin, 0.0,
                                 lfl_data(dA), fin);
    if (st == LFL_OK && dB) // dB = s g^T @ t
        st = lfl_cuda_gemm_typed(dev, op, dt, true, false, fout, r, rows, s, lfl_data(g), fout, lfl_data(t), r, 0.0,
                                 lfl_data(dB), r);
    lfl_tensor_release(u);
    return st;
}
