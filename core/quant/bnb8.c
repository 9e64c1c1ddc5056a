/* bitsandbytes' 8-bit row-wise weight quantization (bnb8.h), bit for bit as
 * bitsandbytes 0.50 does it on the CPU (goldens: tests/ref/make_int8_goldens.py):
 * int8_vectorwise_quant's default kernel on the f16 weight, with torch's type
 * promotion (f16 * f32 -> f32), its scalar / tensor (a reciprocal, then a
 * product) and torch.round (half to even). */
#include <math.h>
#include <stdlib.h>
#include "../iter.h"
#include "bnb8.h"

static inline float load_f16_of(lfl_dtype dt, const void *p, int64_t i)
{
    /* the weight goes to f16 first (Int8Params._quantize: .to(torch.float16)) */
    if (dt == LFL_F16) return lfl_f16_to_f32(((const uint16_t *)p)[i]);
    float x = dt == LFL_F32 ? ((const float *)p)[i] : lfl_bf16_to_f32(((const uint16_t *)p)[i]);
    return lfl_f16_to_f32(lfl_f32_to_f16(x));
}

static void quant_row(lfl_dtype dt, const void *src, int64_t s, int64_t cols, int8_t *q, float *scb)
{
    float am = 0;
    for (int64_t c = 0; c < cols; c++) { /* torch.max propagates a NaN */
        float a = fabsf(load_f16_of(dt, src, s + c));
        if (a > am || a != a) am = a;
    }
    *scb = am;
    /* 127 / 0 is inf and 0 * inf NaN in torch; its NaN -> int8 gives 0 on x86: a zero row stays 0 */
    if (am == 0.0f) { for (int64_t c = 0; c < cols; c++) q[c] = 0; return; }
    /* torch's 127.0 / t is t.reciprocal() * 127 (Tensor.__rtruediv__): two f32 roundings */
    float inv = 1.0f / am;
    inv = inv * 127.0f;
    for (int64_t c = 0; c < cols; c++) q[c] = lfl_i8_round(load_f16_of(dt, src, s + c) * inv);
}

lfl_status lfl_quantize_8bit(lfl_tensor *w, lfl_tensor **out)
{
    char b[128];
    if (w->device != LFL_CPU) return lfl_fail(LFL_ERR_UNSUPPORTED, "quantize_8bit: CUDA tensors are not supported yet");
    if (lfl_dtype_is_block(w->dtype) && lfl_dtypes[w->dtype].to_f32) {
        lfl_tensor *f = NULL; /* a GGUF block tensor: through an f32 copy that goes once quantized */
        LFL_TRY(lfl_cast(w, LFL_F32, &f));
        lfl_status st = lfl_quantize_8bit(f, out);
        lfl_tensor_release(f);
        return st;
    }
    if (w->dtype != LFL_F32 && w->dtype != LFL_BF16 && w->dtype != LFL_F16)
        return lfl_fail(LFL_ERR_ARG, "quantize_8bit: takes an f32, bf16, f16 or GGUF block tensor, got %s",
                        lfl_dtype_name(w->dtype));
    if (w->ndim != 2 || w->shape[0] == 0 || w->shape[1] == 0)
        return lfl_fail(LFL_ERR_ARG, "quantize_8bit: takes a non-empty 2-D weight [out, in], got %s",
                        lfl_shape_str(w, b, sizeof b));
    int64_t rows = w->shape[0], cols = w->shape[1];
    lfl_tensor *c = NULL, *q = NULL;
    LFL_TRY(lfl_contiguous(w, &c));
    struct lfl_qstate *st = calloc(1, sizeof *st);
    lfl_status s = st ? LFL_OK : lfl_fail(LFL_ERR_MEM, "quantize_8bit: out of memory");
    if (s == LFL_OK) {
        st->refcount = 1;
        st->nblocks = rows;
        st->to_f32 = lfl_i8_dequantize;
        s = lfl_empty(2, w->shape, LFL_INT8, LFL_CPU, &q);
    }
    if (s == LFL_OK) s = lfl_empty(1, &rows, LFL_F32, LFL_CPU, &st->scb);
    if (s == LFL_OK) {
        int8_t *pq = lfl_data(q);
        float *scb = lfl_data(st->scb);
        const void *src = lfl_data(c);
        lfl_dtype dt = c->dtype;
#pragma omp parallel for schedule(static) if (rows * cols > LFL_OMP_MIN)
        for (int64_t r = 0; r < rows; r++) quant_row(dt, src, r * cols, cols, pq + r * cols, scb + r);
    }
    lfl_tensor_release(c);
    if (s) {
        lfl_qstate_release(st);
        lfl_tensor_release(q);
        return s;
    }
    q->quant = st;
    *out = q;
    return LFL_OK;
}

lfl_status lfl_i8_check(const char *op, const lfl_tensor *q)
{
    if (q->dtype != LFL_INT8 || !q->quant || !q->quant->scb)
        return lfl_fail(LFL_ERR_ARG, "%s: %s tensor has no 8-bit row scales (make it with quantize_8bit)", op,
                        lfl_dtype_name(q->dtype));
    if (q->offset != 0 || q->ndim != 2 || !lfl_is_contiguous(q) || q->shape[0] != q->quant->nblocks)
        return lfl_fail(LFL_ERR_ARG, "%s: a view of an int8 tensor cannot be used; take the whole tensor", op);
    return LFL_OK;
}

void lfl_i8_dequant_tile(const lfl_tensor *q, int64_t r0, int64_t rows, int64_t c0, int64_t cols, float *dst)
{
    const int8_t *p = lfl_data(q);
    const float *scb = lfl_data(q->quant->scb);
    int64_t ld = q->shape[1];
    const float inv127 = (float)(1.0 / 127.0); /* SCB.mul(1.0 / 127.0): torch takes the scalar in f32 */
    for (int64_t r = 0; r < rows; r++) {
        float s = scb[r0 + r] * inv127;
        const int8_t *src = p + (r0 + r) * ld + c0;
        float *d = dst + r * cols;
        for (int64_t c = 0; c < cols; c++) d[c] = (float)src[c] * s;
    }
}

lfl_status lfl_i8_dequantize(lfl_tensor *q, lfl_tensor **out)
{
    LFL_TRY(lfl_i8_check("dequantize", q));
    LFL_TRY(lfl_empty(2, q->shape, LFL_F32, LFL_CPU, out));
    int64_t rows = q->shape[0], cols = q->shape[1];
    float *o = lfl_data(*out);
#pragma omp parallel for schedule(static) if (rows * cols > LFL_OMP_MIN)
    for (int64_t r = 0; r < rows; r++) lfl_i8_dequant_tile(q, r, 1, 0, cols, o + r * cols);
    return LFL_OK;
}

size_t lfl_i8_nbytes(const lfl_tensor *q)
{
    size_t n = (size_t)lfl_numel(q);
    return q->quant && q->quant->scb ? n + sizeof(float) * (size_t)lfl_numel(q->quant->scb) : n;
}

lfl_status lfl_bnb_check(const char *op, const lfl_tensor *q)
{
    return q->dtype == LFL_INT8 ? lfl_i8_check(op, q) : lfl_q4_check(op, q);
}

void lfl_bnb_dequant_tile(const lfl_tensor *q, int64_t r0, int64_t rows, int64_t c0, int64_t cols, float *dst)
{
    if (q->dtype == LFL_INT8) lfl_i8_dequant_tile(q, r0, rows, c0, cols, dst);
    else lfl_q4_dequant_tile(q, r0, rows, c0, cols, dst);
}

lfl_status lfl_i8_from_state(lfl_tensor *cb, lfl_tensor *scb, lfl_tensor **out)
{
    char b[128];
    if (cb->dtype != LFL_INT8 || cb->device != LFL_CPU || cb->ndim != 2 || lfl_numel(cb) == 0)
        return lfl_fail(LFL_ERR_ARG, "int8_from_state: the weight must be a non-empty 2-D int8 CPU tensor, got %s %s",
                        lfl_dtype_name(cb->dtype), lfl_shape_str(cb, b, sizeof b));
    int64_t rows = cb->shape[0];
    if (scb->dtype != LFL_F32 || scb->device != LFL_CPU || lfl_numel(scb) != rows)
        return lfl_fail(LFL_ERR_ARG, "int8_from_state: SCB must be f32 with one absmax per row (%lld), got %s of %lld",
                        (long long)rows, lfl_dtype_name(scb->dtype), (long long)lfl_numel(scb));
    lfl_tensor *c = NULL, *s2 = NULL, *q = NULL;
    struct lfl_qstate *st = calloc(1, sizeof *st);
    if (!st) return lfl_fail(LFL_ERR_MEM, "int8_from_state: out of memory");
    st->refcount = 1;
    st->nblocks = rows;
    st->to_f32 = lfl_i8_dequantize;
    lfl_status s = lfl_contiguous(cb, &c);
    if (s == LFL_OK) s = lfl_contiguous(scb, &s2);
    if (s == LFL_OK) s = lfl_empty(2, cb->shape, LFL_INT8, LFL_CPU, &q);
    if (s == LFL_OK) s = lfl_empty(1, &rows, LFL_F32, LFL_CPU, &st->scb);
    if (s == LFL_OK) {
        memcpy(lfl_data(q), lfl_data(c), (size_t)lfl_numel(cb));
        memcpy(lfl_data(st->scb), lfl_data(s2), sizeof(float) * (size_t)rows);
    }
    lfl_tensor_release(c);
    lfl_tensor_release(s2);
    if (s) {
        lfl_qstate_release(st);
        lfl_tensor_release(q);
        return s;
    }
    q->quant = st;
    *out = q;
    return LFL_OK;
}
