/* Copies between layouts, dtypes and devices: copy_, contiguous, clone,
 * cast, to_device; broadcasting shape rules and sum_to. Core level: nothing
 * here includes ops/ or io/ (widening a 16-bit or block-quantized dtype goes
 * through its dtype traits; tests/sh/test_layering.sh checks). copy_ moves
 * data across devices itself and leaves a copy within one device to the copy
 * op (core/ops/copy.c), which runs that device's kernel, as sum_to leaves a
 * device sum to the sum op. */
#include <math.h>
#include "autograd.h"
#include "device.h"
#include "iter.h"
#include "ops.h"
#include "tensor.h"
#include "quant/bnb4.h"

typedef double (*load_fn)(const char *p);

static double ld_f32(const char *p) { return *(const float *)p; }
static double ld_f64(const char *p) { return *(const double *)p; }
static double ld_f16(const char *p) { return lfl_f16_to_f32(*(const uint16_t *)p); }
static double ld_bf16(const char *p) { return lfl_bf16_to_f32(*(const uint16_t *)p); }
static double ld_i32(const char *p) { return *(const int32_t *)p; }
static double ld_i64(const char *p) { return (double)*(const int64_t *)p; }
static double ld_u8(const char *p) { return *(const uint8_t *)p; }

static const load_fn loads[] = {ld_f32, ld_f64, ld_f16, ld_bf16, ld_i32, ld_i64, ld_u8, ld_u8};

lfl_status lfl_broadcast_shape(const char *op, const lfl_tensor *a, const lfl_tensor *b,
                               int *ndim, int64_t *shape)
{
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int d = 0; d < nd; d++) {
        int da = d - (nd - a->ndim), db = d - (nd - b->ndim);
        int64_t sa = da >= 0 ? a->shape[da] : 1, sb = db >= 0 ? b->shape[db] : 1;
        if (sa != sb && sa != 1 && sb != 1) {
            char ba[128], bb[128];
            return lfl_fail(LFL_ERR_ARG, "%s: shapes %s and %s cannot be broadcast (dim %d: %lld vs %lld)",
                            op, lfl_shape_str(a, ba, sizeof ba), lfl_shape_str(b, bb, sizeof bb),
                            d + 1, (long long)sa, (long long)sb);
        }
        shape[d] = sa == 1 ? sb : sa;
    }
    *ndim = nd;
    return LFL_OK;
}

lfl_status lfl_copy_(lfl_tensor *dst, const lfl_tensor *src)
{
    char b1[128], b2[128];
    if (lfl_dtype_is_block(dst->dtype) || lfl_dtype_is_block(src->dtype)) {
        if (dst->dtype != src->dtype || lfl_numel(dst) != lfl_numel(src))
            return lfl_fail(LFL_ERR_ARG, "copy: block-quantized tensors copy only to the same dtype and size");
    }
    if ((dst->dtype == LFL_INT8 || src->dtype == LFL_INT8) && dst->dtype != src->dtype)
        return lfl_fail(LFL_ERR_ARG, "copy: int8 (LLM.int8) tensors copy only to int8; dequantize them instead");
    /* src must broadcast to dst's shape */
    if (src->ndim > dst->ndim) goto bad_shape;
    for (int d = 0; d < src->ndim; d++) {
        int64_t have = src->shape[d], want = dst->shape[d + dst->ndim - src->ndim];
        if (have != want && have != 1) goto bad_shape;
    }
    if (dst->device != src->device) {
        if (dst->dtype != src->dtype || !lfl_is_contiguous(dst) || !lfl_is_contiguous(src) ||
            lfl_numel(dst) != lfl_numel(src))
            return lfl_fail(LFL_ERR_DEVICE, "copy: across devices only between contiguous tensors of one dtype and size");
        int kind = src->device == LFL_CPU ? 0 : dst->device == LFL_CPU ? 1 : 2;
        int dev = src->device == LFL_CPU ? dst->device : src->device;
        return lfl_device_memcpy(dev, lfl_data(dst), lfl_data(src), lfl_dtype_nbytes(dst->dtype, lfl_numel(dst)), kind);
    }
    return lfl_copy_same_device(dst, src);
bad_shape:
    return lfl_fail(LFL_ERR_ARG, "copy: source shape %s does not broadcast to %s",
                    lfl_shape_str(src, b1, sizeof b1), lfl_shape_str(dst, b2, sizeof b2));
}

static lfl_status identity_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    (void)n;
    gin[0] = lfl_tensor_retain(gout[0]);
    return LFL_OK;
}

lfl_status lfl_clone(lfl_tensor *t, lfl_tensor **out)
{
    LFL_TRY(lfl_empty_like(t, out));
    lfl_status st = lfl_copy_(*out, t);
    if (st) { lfl_tensor_release(*out); *out = NULL; return st; }
    lfl_node *n = lfl_node_begin("clone", identity_backward, 1, &t, 1);
    if (n) { lfl_node_set_output(n, *out, 0); lfl_node_release(n); }
    return LFL_OK;
}

lfl_status lfl_contiguous(lfl_tensor *t, lfl_tensor **out)
{
    if (lfl_is_contiguous(t)) { *out = lfl_tensor_retain(t); return LFL_OK; }
    return lfl_clone(t, out);
}

static lfl_status cast_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    return lfl_cast(gout[0], n->in[0].dtype, &gin[0]);
}

lfl_status lfl_cast(lfl_tensor *t, lfl_dtype dt, lfl_tensor **out)
{
    if (t->dtype == dt) { *out = lfl_tensor_retain(t); return LFL_OK; }
    if (t->quant && lfl_dtypes[dt].is_float) { /* a quantized tensor widens through its state's hook (no grad) */
        lfl_tensor *f;
        LFL_TRY(t->quant->to_f32(t, &f));
        lfl_status st = lfl_cast(f, dt, out);
        lfl_tensor_release(f);
        return st;
    }
    if (t->device != LFL_CPU && (lfl_dtype_is_block(t->dtype) || lfl_dtype_is_block(dt) || t->dtype == LFL_INT8 ||
                                 dt == LFL_INT8)) {
        char dev[32];
        lfl_device_str(t->device, dev, sizeof dev);
        return lfl_fail(LFL_ERR_UNSUPPORTED, "cast: %s -> %s on %s needs (de)quantization, which only the CPU does "
                        "for this dtype; move the tensor to the CPU first", lfl_dtype_name(t->dtype),
                        lfl_dtype_name(dt), dev);
    }
    if (lfl_dtype_is_block(t->dtype) && lfl_dtypes[dt].is_float && lfl_dtypes[t->dtype].to_f32) {
        /* a block tensor widens through its dtype's to_f32 hook, i.e. dequantizes
         * (no grad: quantized weights are frozen); block tensors are contiguous */
        lfl_tensor *f;
        LFL_TRY(lfl_empty(t->ndim, t->shape, LFL_F32, LFL_CPU, &f));
        lfl_status st = lfl_dtype_to_f32(t->dtype, lfl_data(t), lfl_numel(t), lfl_data(f));
        if (st == LFL_OK) st = lfl_cast(f, dt, out);
        lfl_tensor_release(f);
        return st;
    }
    if (lfl_dtype_is_block(t->dtype) || lfl_dtype_is_block(dt) || t->dtype == LFL_INT8 || dt == LFL_INT8)
        return lfl_fail(LFL_ERR_ARG, "cast: %s -> %s needs (de)quantization, not a cast",
                        lfl_dtype_name(t->dtype), lfl_dtype_name(dt));
    LFL_TRY(lfl_empty(t->ndim, t->shape, dt, t->device, out));
    lfl_status st = lfl_copy_(*out, t);
    if (st) { lfl_tensor_release(*out); *out = NULL; return st; }
    if (lfl_dtypes[dt].is_float) {
        lfl_node *n = lfl_node_begin("cast", cast_backward, 1, &t, 1);
        if (n) { lfl_node_set_output(n, *out, 0); lfl_node_release(n); }
    }
    return LFL_OK;
}

static lfl_status to_device_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    return lfl_to_device(gout[0], (int)n->iarg[0], &gin[0]);
}

lfl_status lfl_to_device(lfl_tensor *t, int device, lfl_tensor **out)
{
    if (t->device == device) { *out = lfl_tensor_retain(t); return LFL_OK; }
    if (t->quant && lfl_is_q4(t->dtype)) return lfl_q4_to_device(t, device, out); /* QLoRA's base: codes + state */
    if (t->quant) /* its scales / zeros live in CPU tensors the device copy would not carry */
        return lfl_fail(LFL_ERR_UNSUPPORTED, "to_device: a quantized %s tensor cannot move off the CPU (its quantization "
                        "state stays there); dequantize it first", lfl_dtype_name(t->dtype));
    lfl_tensor *c;
    LFL_TRY(lfl_contiguous(t, &c));
    lfl_status st = lfl_empty(c->ndim, c->shape, c->dtype, device, out);
    if (st == LFL_OK) st = lfl_copy_(*out, c);
    lfl_tensor_release(c);
    if (st) { lfl_tensor_release(*out); *out = NULL; return st; }
    lfl_node *n = lfl_node_begin("to_device", to_device_backward, 1, &t, 1);
    if (n) { n->iarg[0] = t->device; lfl_node_set_output(n, *out, 0); lfl_node_release(n); }
    return LFL_OK;
}

lfl_status lfl_sum_to(lfl_tensor *g, int ndim, const int64_t *shape, lfl_tensor **out)
{
    bool same = g->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = g->shape[d] == shape[d];
    if (same) { *out = lfl_tensor_retain(g); return LFL_OK; }
    if (g->device != LFL_CPU) { /* on a device: the sum op over the broadcast dims (its kernel), then a reshape */
        int dims[LFL_MAX_DIMS], nd = 0, lead = g->ndim - ndim;
        if (lead < 0) return lfl_fail(LFL_ERR_ARG, "sum_to: %d dims cannot sum to %d", g->ndim, ndim);
        for (int d = 0; d < g->ndim; d++)
            if (d < lead || (shape[d - lead] == 1 && g->shape[d] != 1)) dims[nd++] = d;
        lfl_tensor *s;
        LFL_TRY(lfl_sum(g, nd, dims, true, &s));
        lfl_status st = lfl_reshape(s, ndim, shape, out);
        lfl_tensor_release(s);
        return st;
    }
    lfl_tensor *acc;
    LFL_TRY(lfl_zeros(ndim, shape, LFL_F64, LFL_CPU, &acc));
    /* acc viewed at g's shape: stride 0 along the broadcast dims */
    int64_t strides[2][LFL_MAX_DIMS];
    lfl_broadcast_strides(acc, g->ndim, g->shape, strides[1]);
    for (int d = 0; d < g->ndim; d++) strides[0][d] = g->stride[d];
    int64_t rows, len;
    lfl_rows(g->ndim, g->shape, &rows, &len);
    double *pa = lfl_data(acc);
    const char *pg = lfl_data(g);
    size_t es = lfl_dtype_size(g->dtype);
    load_fn ld = loads[g->dtype];
    int64_t gs = g->ndim ? strides[0][g->ndim - 1] : 1, as = g->ndim ? strides[1][g->ndim - 1] : 1;
    for (int64_t r = 0; r < rows; r++) {
        int64_t o[2];
        lfl_row_offsets(g->ndim, g->shape, r, 2, strides, o);
        for (int64_t j = 0; j < len; j++) pa[o[1] + j * as] += ld(pg + (o[0] + j * gs) * (int64_t)es);
    }
    lfl_status st = LFL_OK;
    if (g->dtype == LFL_F64) {
        *out = acc;
    } else {
        st = lfl_empty(ndim, shape, g->dtype, LFL_CPU, out);
        if (st == LFL_OK) st = lfl_copy_(*out, acc);
        lfl_tensor_release(acc);
    }
    return st;
}
