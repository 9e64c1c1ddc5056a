/* where: out = cond ? a : b, the three broadcast together; cond is bool or
 * u8 (nonzero = true), a and b share a dtype. The gradient goes to a where
 * cond holds and to b elsewhere, each summed back to its own shape. */
#include "../iter.h"
#include "optable.h"

/* shape of cond, a and b broadcast together */
static lfl_status broadcast3(lfl_tensor *const t[3], int *ndim, int64_t *shape)
{
    int nd = 0;
    for (int k = 0; k < 3; k++) nd = t[k]->ndim > nd ? t[k]->ndim : nd;
    for (int d = 0; d < nd; d++) {
        int64_t s = 1;
        for (int k = 0; k < 3; k++) {
            int dk = d - (nd - t[k]->ndim);
            int64_t sk = dk >= 0 ? t[k]->shape[dk] : 1;
            if (sk != 1 && s != 1 && sk != s) {
                char b0[128], b1[128], b2[128];
                return lfl_fail(LFL_ERR_ARG, "where: shapes %s (cond), %s (a) and %s (b) cannot be broadcast (dim %d)",
                                lfl_shape_str(t[0], b0, sizeof b0), lfl_shape_str(t[1], b1, sizeof b1),
                                lfl_shape_str(t[2], b2, sizeof b2), d + 1);
            }
            if (sk != 1) s = sk;
        }
        shape[d] = s;
    }
    *ndim = nd;
    return LFL_OK;
}

/* selection only moves bits, so one loop per element size serves every dtype */
#define WHERE_LOOP(T)                                                             \
    do {                                                                          \
        const uint8_t *pc = lfl_data(cond);                                       \
        const T *pa = lfl_data(a), *pb = lfl_data(b);                             \
        T *po = lfl_data(r);                                                      \
        _Pragma("omp parallel for if (rows * len > LFL_OMP_MIN)")                 \
        for (int64_t row = 0; row < rows; row++) {                                \
            int64_t off[4];                                                       \
            lfl_row_offsets(nd, shape, row, 4, st, off);                          \
            T *o = po + off[0];                                                   \
            const uint8_t *c = pc + off[1];                                       \
            const T *u = pa + off[2], *v = pb + off[3];                           \
            if (sc == 1 && sa == 1 && sb == 1) {                                  \
                _Pragma("omp simd") for (int64_t j = 0; j < len; j++) {           \
                    T x = u[j], y = v[j]; /* both loaded: vectorisable */         \
                    o[j] = c[j] ? x : y;                                          \
                }                                                                 \
            } else {                                                              \
                for (int64_t j = 0; j < len; j++) o[j] = c[j * sc] ? u[j * sa] : v[j * sb]; \
            }                                                                     \
        }                                                                         \
    } while (0)

lfl_status lfl_cpu_where(lfl_tensor *cond, lfl_tensor *a, lfl_tensor *b, lfl_tensor *r)
{
    lfl_tensor *t[3] = {cond, a, b};
    int nd = r->ndim;
    const int64_t *shape = r->shape;
    int64_t st[4][LFL_MAX_DIMS];
    for (int d = 0; d < nd; d++) st[0][d] = r->stride[d];
    for (int k = 0; k < 3; k++) lfl_broadcast_strides(t[k], nd, shape, st[k + 1]);
    int64_t rows, len;
    lfl_rows(nd, shape, &rows, &len);
    int64_t sc = nd ? st[1][nd - 1] : 1, sa = nd ? st[2][nd - 1] : 1, sb = nd ? st[3][nd - 1] : 1;
    switch (lfl_dtype_size(a->dtype)) {
    case 1: WHERE_LOOP(uint8_t); break;
    case 2: WHERE_LOOP(uint16_t); break;
    case 4: WHERE_LOOP(uint32_t); break;
    case 8: WHERE_LOOP(uint64_t); break;
    default: LFL_ASSERT(0);
    }
    return LFL_OK;
}

/* the forward without recording */
static lfl_status where_raw(lfl_tensor *cond, lfl_tensor *a, lfl_tensor *b, lfl_tensor **out)
{
    if (cond->dtype != LFL_BOOL && cond->dtype != LFL_U8)
        return lfl_fail(LFL_ERR_ARG, "where: cond must be a bool or u8 tensor, got %s", lfl_dtype_name(cond->dtype));
    LFL_TRY(lfl_check_same_device("where", cond, a));
    LFL_TRY(lfl_check_same_device("where", a, b));
    if (a->dtype != b->dtype)
        return lfl_fail(LFL_ERR_ARG, "where: a and b must have the same dtype (%s vs %s)",
                        lfl_dtype_name(a->dtype), lfl_dtype_name(b->dtype));
    if (lfl_dtype_is_block(a->dtype))
        return lfl_fail(LFL_ERR_ARG, "where: dtype %s is not supported (dequantize first)", lfl_dtype_name(a->dtype));
    lfl_tensor *t[3] = {cond, a, b};
    int nd = 0;
    int64_t shape[LFL_MAX_DIMS];
    LFL_TRY(broadcast3(t, &nd, shape));
    lfl_where_kernel fn;
    LFL_TRY(lfl_dispatch_where(a->device, NULL, &fn));
    lfl_tensor *r;
    LFL_TRY(lfl_empty(nd, shape, a->dtype, a->device, &r));
    lfl_status st = fn(cond, a, b, r);
    if (st) { lfl_tensor_release(r); return st; }
    *out = r;
    return LFL_OK;
}

static lfl_status where_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    lfl_tensor *cond = n->saved[0], *g = gout[0], *zero;
    LFL_TRY(lfl_zeros(0, NULL, g->dtype, g->device, &zero));
    lfl_status st = LFL_OK;
    for (int i = 0; i < 2 && st == LFL_OK; i++) {
        if (!lfl_node_needs(n, i)) continue;
        lfl_tensor *full;
        st = i == 0 ? where_raw(cond, g, zero, &full) : where_raw(cond, zero, g, &full);
        if (st) break;
        st = lfl_sum_to(full, n->in[i].ndim, n->in[i].shape, &gin[i]);
        lfl_tensor_release(full);
    }
    lfl_tensor_release(zero);
    return st;
}

lfl_status lfl_where(lfl_tensor *cond, lfl_tensor *a, lfl_tensor *b, lfl_tensor **out)
{
    LFL_TRY(where_raw(cond, a, b, out));
    lfl_tensor *in[2] = {a, b};
    lfl_node *n = lfl_node_begin("where", where_backward, 2, in, 1);
    if (n) {
        lfl_node_save(n, cond);
        lfl_node_set_output(n, *out, 0);
        lfl_node_release(n);
    }
    return LFL_OK;
}
