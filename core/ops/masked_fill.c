/* masked_fill: a copy of a with v wherever mask (bool or u8, broadcast to
 * a's shape) is set; the gradient passes where the mask is clear and is
 * zero where it is set. */
#include <math.h>
#include <string.h>
#include "../iter.h"
#include "optable.h"

/* Filling only writes a constant, so one loop per element size serves every
 * dtype: fill holds v already stored in a's dtype. */
#define FILL_LOOP(T)                                                              \
    do {                                                                          \
        const uint8_t *pm = lfl_data(mask);                                       \
        const T *pa = lfl_data(c);                                                \
        T *po = lfl_data(r), f;                                                   \
        memcpy(&f, fill, sizeof f);                                               \
        _Pragma("omp parallel for if (rows * len > LFL_OMP_MIN)")                 \
        for (int64_t row = 0; row < rows; row++) {                                \
            int64_t off[2];                                                       \
            lfl_row_offsets(nd, shape, row, 2, st, off);                          \
            const uint8_t *m = pm + off[1];                                       \
            const T *u = pa + off[0];                                             \
            T *o = po + off[0];                                                   \
            if (sm == 1) {                                                        \
                _Pragma("omp simd") for (int64_t j = 0; j < len; j++) {           \
                    T x = u[j]; /* loaded unconditionally: vectorisable */        \
                    o[j] = m[j] ? f : x;                                          \
                }                                                                 \
            } else if (sm == 0) { /* one mask value for the whole row */          \
                if (m[0]) { _Pragma("omp simd") for (int64_t j = 0; j < len; j++) o[j] = f; } \
                else memcpy(o, u, (size_t)len * sizeof(T));                       \
            } else {                                                              \
                for (int64_t j = 0; j < len; j++) o[j] = m[j * sm] ? f : u[j];    \
            }                                                                     \
        }                                                                         \
    } while (0)

/* v must be storable in an integer dtype without changing it */
static lfl_status check_value(lfl_dtype dt, double v)
{
    double lo, hi;
    switch (dt) {
    case LFL_I32: lo = -2147483648.0; hi = 2147483647.0; break;
    case LFL_I64: lo = -9223372036854775808.0; hi = 9223372036854775807.0; break;
    case LFL_U8: lo = 0; hi = 255; break;
    default: return LFL_OK;
    }
    if (!(v >= lo && v <= hi) || v != floor(v) || (dt == LFL_I64 && v >= hi))
        return lfl_fail(LFL_ERR_ARG, "masked_fill: value %g cannot be stored in an %s tensor", v, lfl_dtype_name(dt));
    return LFL_OK;
}

lfl_status lfl_cpu_masked_fill(lfl_tensor *c, lfl_tensor *mask, double v, lfl_tensor *r)
{
    unsigned char fill[8]; /* v stored in c's dtype */
    {
        lfl_tensor *s;
        LFL_TRY(lfl_full(0, NULL, v, c->dtype, LFL_CPU, &s));
        memcpy(fill, lfl_data(s), lfl_dtype_size(c->dtype));
        lfl_tensor_release(s);
    }
    int nd = c->ndim;
    const int64_t *shape = c->shape;
    int64_t st[2][LFL_MAX_DIMS];
    for (int d = 0; d < nd; d++) st[0][d] = c->stride[d];
    lfl_broadcast_strides(mask, nd, shape, st[1]);
    int64_t rows, len;
    lfl_rows(nd, shape, &rows, &len);
    int64_t sm = nd ? st[1][nd - 1] : 1;
    switch (lfl_dtype_size(c->dtype)) {
    case 1: FILL_LOOP(uint8_t); break;
    case 2: FILL_LOOP(uint16_t); break;
    case 4: FILL_LOOP(uint32_t); break;
    case 8: FILL_LOOP(uint64_t); break;
    default: LFL_ASSERT(0);
    }
    return LFL_OK;
}

static lfl_status masked_fill_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    return lfl_masked_fill(gout[0], n->saved[0], 0.0, &gin[0]);
}

lfl_status lfl_masked_fill(lfl_tensor *a, lfl_tensor *mask, double v, lfl_tensor **out)
{
    if (mask->dtype != LFL_BOOL && mask->dtype != LFL_U8)
        return lfl_fail(LFL_ERR_ARG, "masked_fill: mask must be a bool or u8 tensor, got %s", lfl_dtype_name(mask->dtype));
    LFL_TRY(lfl_check_same_device("masked_fill", a, mask));
    if (lfl_dtype_is_block(a->dtype))
        return lfl_fail(LFL_ERR_ARG, "masked_fill: dtype %s is not supported (dequantize first)", lfl_dtype_name(a->dtype));
    /* the mask broadcasts to a's shape; the result keeps a's shape */
    bool fits = mask->ndim <= a->ndim;
    for (int d = 0; fits && d < mask->ndim; d++) {
        int64_t m = mask->shape[d], want = a->shape[d + a->ndim - mask->ndim];
        fits = m == want || m == 1;
    }
    if (!fits) {
        char b1[128], b2[128];
        return lfl_fail(LFL_ERR_ARG, "masked_fill: mask %s does not broadcast to the tensor's shape %s",
                        lfl_shape_str(mask, b1, sizeof b1), lfl_shape_str(a, b2, sizeof b2));
    }
    LFL_TRY(check_value(a->dtype, v));
    lfl_masked_fill_kernel fn;
    LFL_TRY(lfl_dispatch_masked_fill(a->device, NULL, &fn));
    lfl_tensor *c, *r = NULL;
    bool prev = lfl_set_grad_enabled(false); /* our own copy: no clone node */
    lfl_status stt = lfl_contiguous(a, &c);
    lfl_set_grad_enabled(prev);
    LFL_TRY(stt);
    stt = lfl_empty_like(c, &r);
    if (stt == LFL_OK) stt = fn(c, mask, v, r);
    lfl_tensor_release(c);
    if (stt) { lfl_tensor_release(r); return stt; }
    lfl_node *n = lfl_node_begin("masked_fill", masked_fill_backward, 1, &a, 1);
    if (n) {
        lfl_node_save(n, mask);
        lfl_node_set_output(n, r, 0);
        lfl_node_release(n);
    }
    *out = r;
    return LFL_OK;
}
