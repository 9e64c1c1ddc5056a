/* linear: x[..., in] @ w[out, in]^T + bias[out], one GEMM over all rows.
 * The weight may be bf16/f16 with f32 x (a frozen base weight kept in its
 * stored precision): it is widened to f32 block by block (lowp_gemm.c), never
 * as a whole. A 4-bit NF4/FP4 or 8-bit LLM.int8 weight (QLoRA's frozen base)
 * is dequantized tile by tile (q4_gemm.c) and never takes a gradient; so is a GGUF block
 * weight (Q4_0 ... Q6_K kept as the file stores it: ggml_gemm.c) and a
 * GPTQ / AWQ 4-bit weight kept quantized (gptq_gemm.c). Its
 * gradient, when it requires one, is an f32 [out, in] tensor. */
#include "../blas.h"
#include "linear.h"
#include "lowp.h"
#include "ggml_gemm.h"
#include "gptq_gemm.h"
#include "q4_gemm.h"
#include "../quant/bnb8.h"
#include "../quant/ggml.h"
#include "../quant/gptq.h"

/* c = op(a) op(b) for contiguous 2-D a, b, c (as stored) */
static lfl_status gemm2d(lfl_tensor *a, bool ta, lfl_tensor *b, bool tb, int64_t m, int64_t n, int64_t k,
                         lfl_tensor *c)
{
    lfl_gemm_typed(c->dtype, ta, tb, m, n, k, 1.0, lfl_data(a), a->shape[a->ndim - 1], lfl_data(b),
                   b->shape[b->ndim - 1], 0.0, lfl_data(c), n);
    return LFL_OK;
}

lfl_status lfl_cpu_linear_backward(lfl_tensor *g, lfl_tensor *x, lfl_tensor *w, lfl_tensor *dx, lfl_tensor *dw)
{
    int64_t fin = w->shape[1], fout = w->shape[0], rows = fin ? lfl_numel(x) / fin : 0;
    lfl_status st = LFL_OK;
    if (dx) { /* dx[rows, in] = g[rows, out] @ w[out, in] */
        if (lfl_is_bnb(w->dtype)) {
            st = lfl_gemm_f32_q4(rows, fin, fout, lfl_data(g), (int)fout, w, false, 0.0f, lfl_data(dx), (int)fin);
        } else if (lfl_is_ggml(w->dtype)) {
            st = lfl_gemm_f32_ggml(rows, fin, fout, lfl_data(g), (int)fout, w, false, 0.0f, lfl_data(dx), (int)fin);
        } else if (lfl_is_gptq(w->dtype)) {
            st = lfl_gemm_f32_gptq(rows, fin, fout, lfl_data(g), (int)fout, w, false, 0.0f, lfl_data(dx), (int)fin);
        } else if (lfl_is_lowp(w->dtype)) {
            if (fin == 0 || rows == 0) {}
            else if (fout == 0) lfl_fill_(dx, 0);
            else st = lfl_gemm_f32_lowp(false, rows, fin, fout, lfl_data(g), (int)fout, w->dtype, lfl_data(w),
                                        w->stride[0], w->stride[1], 0.0f, lfl_data(dx), (int)fin);
        } else {
            st = gemm2d(g, false, w, false, rows, fin, fout, dx);
        }
    }
    if (st == LFL_OK && dw) { /* dw[out, in] = g^T @ x */
        if (rows == 0) lfl_fill_(dw, 0);
        else st = gemm2d(g, true, x, false, fout, fin, rows, dw);
    }
    return st;
}

static lfl_status linear_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    lfl_tensor *x = n->saved[0], *w = n->saved[1], *g, *dx = NULL, *dw = NULL;
    int64_t rows = n->iarg[0], fout = w->shape[0];
    lfl_linear_backward_kernel fn;
    LFL_TRY(lfl_dispatch_linear_backward(x->device, NULL, &fn));
    LFL_TRY(lfl_contiguous(gout[0], &g));
    lfl_status st = LFL_OK;
    if (lfl_node_needs(n, 0)) st = lfl_empty(n->in[0].ndim, n->in[0].shape, g->dtype, g->device, &dx);
    if (st == LFL_OK && lfl_node_needs(n, 1)) st = lfl_empty(2, w->shape, g->dtype, g->device, &dw);
    if (st == LFL_OK && (dx || dw)) st = fn(g, x, w, dx, dw);
    if (st == LFL_OK && n->n_in > 2 && lfl_node_needs(n, 2)) st = lfl_linear_bias_grad(g, rows, fout, &gin[2]);
    lfl_tensor_release(g);
    if (st) { lfl_tensor_release(dx); lfl_tensor_release(dw); return st; }
    gin[0] = dx;
    gin[1] = dw;
    return LFL_OK;
}

lfl_status lfl_linear_check(const char *op, lfl_tensor *x, lfl_tensor *w, lfl_tensor *bias)
{
    char bx[128], bw[128];
    LFL_TRY(lfl_check_same_device(op, x, w));
    bool lowp = lfl_is_lowp(w->dtype) || lfl_is_bnb(w->dtype) || lfl_is_ggml(w->dtype) || lfl_is_gptq(w->dtype);
    if (lfl_is_bnb(w->dtype)) {
        LFL_TRY(lfl_bnb_check(op, w));
        if (w->requires_grad)
            return lfl_fail(LFL_ERR_ARG, "%s: a %s (bitsandbytes) weight is frozen (QLoRA trains adapters on it); it cannot require grad",
                            op, lfl_dtype_name(w->dtype));
    }
    if (lfl_is_ggml(w->dtype)) {
        LFL_TRY(lfl_ggml_check(op, w));
        if (w->requires_grad)
            return lfl_fail(LFL_ERR_ARG, "%s: a GGUF %s block weight is frozen (LoRA trains adapters on it); it cannot "
                            "require grad", op, lfl_dtype_name(w->dtype));
    }
    if (lfl_is_gptq(w->dtype)) {
        LFL_TRY(lfl_gptq_check(op, w));
        if (w->requires_grad)
            return lfl_fail(LFL_ERR_ARG, "%s: a GPTQ/AWQ 4-bit weight is frozen (LoRA trains adapters on it); it cannot "
                            "require grad", op);
    }
    if (lowp && x->dtype != LFL_F32)
        return lfl_fail(LFL_ERR_ARG, "%s: a %s weight takes f32 input, got %s", op, lfl_dtype_name(w->dtype),
                        lfl_dtype_name(x->dtype));
    if (!lowp) LFL_TRY(lfl_check_same_dtype(op, x, w));
    LFL_TRY(lfl_check_float(op, x));
    if (w->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1])
        return lfl_fail(LFL_ERR_ARG, "%s: input %s does not match weight %s (want [..., %lld])", op,
                        lfl_shape_str(x, bx, sizeof bx), lfl_shape_str(w, bw, sizeof bw),
                        (long long)(w->ndim == 2 ? w->shape[1] : -1));
    if (bias && (bias->ndim != 1 || bias->shape[0] != w->shape[0] || bias->dtype != x->dtype))
        return lfl_fail(LFL_ERR_ARG, "%s: bias %s should be [%lld] of %s", op,
                        lfl_shape_str(bias, bx, sizeof bx), (long long)w->shape[0], lfl_dtype_name(x->dtype));
    if (bias) LFL_TRY(lfl_check_same_device(op, x, bias));
    return LFL_OK;
}

lfl_status lfl_linear_bias_grad(lfl_tensor *g, int64_t rows, int64_t fout, lfl_tensor **out)
{
    int64_t shape2[2] = {rows, fout};
    lfl_tensor *g2;
    LFL_TRY(lfl_view(g, 2, shape2, &g2));
    int dim0 = 0;
    bool prev = lfl_set_grad_enabled(false);
    lfl_status st = lfl_sum(g2, 1, &dim0, false, out);
    lfl_set_grad_enabled(prev);
    lfl_tensor_release(g2);
    return st;
}

lfl_status lfl_linear_fill_bias(lfl_tensor *o, lfl_tensor *bias, int64_t rows, int64_t fout)
{
    lfl_tensor *bc;
    LFL_TRY(lfl_contiguous(bias, &bc));
    size_t es = lfl_dtype_size(o->dtype);
    for (int64_t r = 0; r < rows; r++)
        memcpy((char *)lfl_data(o) + r * fout * (int64_t)es, lfl_data(bc), (size_t)fout * es);
    lfl_tensor_release(bc);
    return LFL_OK;
}

lfl_status lfl_cpu_linear(lfl_tensor *cx, lfl_tensor *cw, lfl_tensor *bias, lfl_tensor *o)
{
    int64_t fin = cw->shape[1], fout = cw->shape[0], rows = fin ? lfl_numel(cx) / fin : 0;
    lfl_status st = LFL_OK;
    /* start C from the bias so GEMM adds into it (beta = 1) */
    if (bias) st = lfl_linear_fill_bias(o, bias, rows, fout);
    if (st == LFL_OK && rows && fout) {
        float beta = bias ? 1.0f : 0.0f;
        if (fin == 0) {
            if (!bias) lfl_fill_(o, 0);
        } else if (lfl_is_bnb(cw->dtype)) {
            st = lfl_gemm_f32_q4(rows, fout, fin, lfl_data(cx), (int)fin, cw, true, beta, lfl_data(o), (int)fout);
        } else if (lfl_is_ggml(cw->dtype)) {
            st = lfl_gemm_f32_ggml(rows, fout, fin, lfl_data(cx), (int)fin, cw, true, beta, lfl_data(o), (int)fout);
        } else if (lfl_is_gptq(cw->dtype)) {
            st = lfl_gemm_f32_gptq(rows, fout, fin, lfl_data(cx), (int)fin, cw, true, beta, lfl_data(o), (int)fout);
        } else if (lfl_is_lowp(cw->dtype)) {
            st = lfl_gemm_f32_lowp(false, rows, fout, fin, lfl_data(cx), (int)fin, cw->dtype, lfl_data(cw),
                                   cw->stride[1], cw->stride[0], beta, lfl_data(o), (int)fout);
        } else {
            lfl_gemm_typed(cx->dtype, false, true, rows, fout, fin, 1.0, lfl_data(cx), fin, lfl_data(cw), fin, beta,
                           lfl_data(o), fout);
        }
    }
    return st;
}

lfl_status lfl_linear(lfl_tensor *x, lfl_tensor *w, lfl_tensor *bias, lfl_tensor **out)
{
    LFL_TRY(lfl_linear_check("linear", x, w, bias));
    lfl_linear_kernel fn;
    LFL_TRY(lfl_dispatch_linear(x->device, NULL, &fn));
    bool lowp = lfl_is_lowp(w->dtype) || lfl_is_bnb(w->dtype) || lfl_is_ggml(w->dtype) || lfl_is_gptq(w->dtype);
    int64_t fin = w->shape[1], fout = w->shape[0], rows = fin ? lfl_numel(x) / fin : 0;
    lfl_tensor *cx, *cw, *o = NULL;
    LFL_TRY(lfl_contiguous(x, &cx));
    /* a 16-bit weight is read through its strides, a 4-bit one tile by tile: no copy of it at all */
    lfl_status st = lowp ? (cw = lfl_tensor_retain(w), LFL_OK) : lfl_contiguous(w, &cw);
    if (st) { lfl_tensor_release(cx); return st; }
    int64_t oshape[LFL_MAX_DIMS];
    for (int d = 0; d < x->ndim - 1; d++) oshape[d] = x->shape[d];
    oshape[x->ndim - 1] = fout;
    st = lfl_empty(x->ndim, oshape, x->dtype, x->device, &o);
    if (st == LFL_OK) st = fn(cx, cw, bias, o);
    if (st) { lfl_tensor_release(cx); lfl_tensor_release(cw); lfl_tensor_release(o); return st; }
    lfl_tensor *in[3] = {x, w, bias};
    lfl_node *n = lfl_node_begin("linear", linear_backward, bias ? 3 : 2, in, 1);
    if (n) {
        n->iarg[0] = rows;
        lfl_node_save(n, cx);
        lfl_node_save(n, cw);
        lfl_node_set_output(n, o, 0);
        lfl_node_release(n);
    }
    lfl_tensor_release(cx);
    lfl_tensor_release(cw);
    *out = o;
    return LFL_OK;
}
