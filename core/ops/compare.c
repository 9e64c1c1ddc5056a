/* compare: eq ne lt le gt ge of two same-dtype tensors with broadcasting,
 * giving a bool mask; not differentiable (no node is recorded). NaN compares
 * as in C: unequal to everything, so only ne is true. */
#include "../iter.h"
#include "optable.h"

static const char *const names[] = {"eq", "ne", "lt", "le", "gt", "ge"};

#define LD_PLAIN(x) (x)
#define LD_F16(x) lfl_f16_to_f32(x)
#define LD_BF16(x) lfl_bf16_to_f32(x)

/* unit strides on both sides, or a scalar right-hand side (t:lt(0)), get
 * loops the compiler vectorises; anything else is strided */
#define CMP_ROW(OP)                                                               \
    if (sa == 1 && sb == 1) {                                                     \
        _Pragma("omp simd") for (int64_t j = 0; j < len; j++) o[j] = LD(u[j]) OP LD(v[j]); \
    } else if (sa == 1 && sb == 0) {                                              \
        __typeof__(LD(v[0])) w = LD(v[0]);                                        \
        _Pragma("omp simd") for (int64_t j = 0; j < len; j++) o[j] = LD(u[j]) OP w; \
    } else {                                                                      \
        for (int64_t j = 0; j < len; j++) o[j] = LD(u[j * sa]) OP LD(v[j * sb]);  \
    }                                                                             \
    break

/* one row per iteration; sa/sb are the operands' strides along the last dim
 * (0 where broadcast); LD (defined at the use) loads an element as a number */
#define CMP_LOOP(T)                                                               \
    do {                                                                          \
        const T *pa = lfl_data(a), *pb = lfl_data(b);                             \
        uint8_t *po = lfl_data(r);                                                \
        _Pragma("omp parallel for if (rows * len > LFL_OMP_MIN)")                 \
        for (int64_t row = 0; row < rows; row++) {                                \
            int64_t off[3];                                                       \
            lfl_row_offsets(nd, shape, row, 3, st, off);                          \
            uint8_t *o = po + off[0];                                             \
            const T *u = pa + off[1], *v = pb + off[2];                           \
            switch (k) {                                                          \
            case LFL_CMP_EQ: CMP_ROW(==);                                         \
            case LFL_CMP_NE: CMP_ROW(!=);                                         \
            case LFL_CMP_LT: CMP_ROW(<);                                          \
            case LFL_CMP_LE: CMP_ROW(<=);                                         \
            case LFL_CMP_GT: CMP_ROW(>);                                          \
            case LFL_CMP_GE: CMP_ROW(>=);                                         \
            }                                                                     \
        }                                                                         \
    } while (0)

lfl_status lfl_cpu_compare(lfl_cmp_kind k, lfl_tensor *a, lfl_tensor *b, lfl_tensor *r)
{
    int nd = r->ndim;
    const int64_t *shape = r->shape;
    int64_t st[3][LFL_MAX_DIMS];
    for (int d = 0; d < nd; d++) st[0][d] = r->stride[d];
    lfl_broadcast_strides(a, nd, shape, st[1]);
    lfl_broadcast_strides(b, nd, shape, st[2]);
    int64_t rows, len;
    lfl_rows(nd, shape, &rows, &len);
    int64_t sa = nd ? st[1][nd - 1] : 1, sb = nd ? st[2][nd - 1] : 1;
    switch (a->dtype) {
#define LD LD_PLAIN
    case LFL_F32: CMP_LOOP(float); break;
    case LFL_F64: CMP_LOOP(double); break;
    case LFL_I32: CMP_LOOP(int32_t); break;
    case LFL_I64: CMP_LOOP(int64_t); break;
    case LFL_U8: case LFL_BOOL: CMP_LOOP(uint8_t); break;
#undef LD
#define LD LD_F16
    case LFL_F16: CMP_LOOP(uint16_t); break;
#undef LD
#define LD LD_BF16
    case LFL_BF16: CMP_LOOP(uint16_t); break;
#undef LD
    default: LFL_ASSERT(0);
    }
    return LFL_OK;
}

lfl_status lfl_compare(lfl_cmp_kind k, lfl_tensor *a, lfl_tensor *b, lfl_tensor **out)
{
    if ((unsigned)k > LFL_CMP_GE) return lfl_fail(LFL_ERR_ARG, "compare: unknown kind %d", (int)k);
    const char *op = names[k];
    LFL_TRY(lfl_check_same_device(op, a, b));
    LFL_TRY(lfl_check_same_dtype(op, a, b));
    if (lfl_dtype_is_block(a->dtype))
        return lfl_fail(LFL_ERR_ARG, "%s: dtype %s cannot be compared (dequantize first)", op, lfl_dtype_name(a->dtype));
    int nd;
    int64_t shape[LFL_MAX_DIMS];
    LFL_TRY(lfl_broadcast_shape(op, a, b, &nd, shape));
    lfl_compare_kernel fn;
    LFL_TRY(lfl_dispatch_compare(a->device, op, &fn));
    lfl_tensor *r;
    LFL_TRY(lfl_empty(nd, shape, LFL_BOOL, a->device, &r));
    lfl_status st = fn(k, a, b, r);
    if (st) { lfl_tensor_release(r); return st; }
    *out = r;
    return LFL_OK;
}
