/* The four arithmetic ops' shared front (checks, broadcast shape, output,
 * dispatch) and their CPU kernel: a broadcasting loop per dtype. */
#include "../iter.h"
#include "binary.h"

#define BINARY_LOOP(T)                                                             \
    do {                                                                           \
        T *po = lfl_data(o);                                                       \
        const T *pa = lfl_data(a), *pb = lfl_data(b);                              \
        _Pragma("omp parallel for if (rows * len > LFL_OMP_MIN)")                  \
        for (int64_t r = 0; r < rows; r++) {                                       \
            int64_t off[3];                                                        \
            lfl_row_offsets(nd, shape, r, 3, st, off);                             \
            T *x = po + off[0];                                                    \
            const T *u = pa + off[1], *v = pb + off[2];                            \
            if (sa == 1 && sb == 1) {                                              \
                switch (kind) {                                                    \
                case LFL_B_ADD: for (int64_t j = 0; j < len; j++) x[j] = u[j] + v[j]; break; \
                case LFL_B_SUB: for (int64_t j = 0; j < len; j++) x[j] = u[j] - v[j]; break; \
                case LFL_B_MUL: for (int64_t j = 0; j < len; j++) x[j] = u[j] * v[j]; break; \
                case LFL_B_DIV: for (int64_t j = 0; j < len; j++) x[j] = u[j] / v[j]; break; \
                }                                                                  \
            } else {                                                               \
                switch (kind) {                                                    \
                case LFL_B_ADD: for (int64_t j = 0; j < len; j++) x[j] = u[j * sa] + v[j * sb]; break; \
                case LFL_B_SUB: for (int64_t j = 0; j < len; j++) x[j] = u[j * sa] - v[j * sb]; break; \
                case LFL_B_MUL: for (int64_t j = 0; j < len; j++) x[j] = u[j * sa] * v[j * sb]; break; \
                case LFL_B_DIV: for (int64_t j = 0; j < len; j++) x[j] = u[j * sa] / v[j * sb]; break; \
                }                                                                  \
            }                                                                      \
        }                                                                          \
    } while (0)

lfl_status lfl_binary_raw(const char *op, lfl_binary_kind kind, lfl_tensor *a, lfl_tensor *b, lfl_tensor **out)
{
    LFL_TRY(lfl_check_same_device(op, a, b));
    LFL_TRY(lfl_check_same_dtype(op, a, b));
    lfl_dtype dt = a->dtype;
    if (dt != LFL_F32 && dt != LFL_F64 && dt != LFL_I32 && dt != LFL_I64)
        return lfl_fail(LFL_ERR_ARG, "%s: dtype %s is not supported (f32, f64, i32, i64)", op, lfl_dtype_name(dt));
    int nd;
    int64_t shape[LFL_MAX_DIMS];
    LFL_TRY(lfl_broadcast_shape(op, a, b, &nd, shape));
    lfl_add_kernel fn; /* the four entries share one signature */
    switch (kind) {
    case LFL_B_ADD: LFL_TRY(lfl_dispatch_add(a->device, op, &fn)); break;
    case LFL_B_SUB: LFL_TRY(lfl_dispatch_sub(a->device, op, &fn)); break;
    case LFL_B_MUL: LFL_TRY(lfl_dispatch_mul(a->device, op, &fn)); break;
    default: LFL_TRY(lfl_dispatch_div(a->device, op, &fn)); break;
    }
    lfl_tensor *o;
    LFL_TRY(lfl_empty(nd, shape, dt, a->device, &o));
    lfl_status s = fn(a, b, o);
    if (s) { lfl_tensor_release(o); return s; }
    *out = o;
    return LFL_OK;
}

lfl_status lfl_binary_cpu(lfl_binary_kind kind, lfl_tensor *a, lfl_tensor *b, lfl_tensor *o)
{
    int nd = o->ndim;
    const int64_t *shape = o->shape;
    int64_t st[3][LFL_MAX_DIMS];
    for (int d = 0; d < nd; d++) st[0][d] = o->stride[d];
    lfl_broadcast_strides(a, nd, shape, st[1]);
    lfl_broadcast_strides(b, nd, shape, st[2]);
    int64_t rows, len;
    lfl_rows(nd, shape, &rows, &len);
    int64_t sa = nd ? st[1][nd - 1] : 1, sb = nd ? st[2][nd - 1] : 1;
    switch (o->dtype) {
    case LFL_F32: BINARY_LOOP(float); break;
    case LFL_F64: BINARY_LOOP(double); break;
    case LFL_I32: BINARY_LOOP(int32_t); break;
    default: BINARY_LOOP(int64_t); break;
    }
    return LFL_OK;
}
