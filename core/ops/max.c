/* max along one dim: values and the 0-based i64 argmax (first occurrence on
 * ties, NaN wins like torch). Holds the front and the CPU kernel shared with
 * min.c and argmax.c, and max_backward (min's too), which routes each output
 * gradient to the selected input element. */
#include "dimwise.h"

lfl_status lfl_cpu_max_backward(lfl_tensor *g, lfl_tensor *idx, int d, lfl_tensor *z)
{
    int64_t outer, len, inner;
    lfl_dim_split(z->ndim, z->shape, d, &outer, &len, &inner);
    const int64_t *pi = lfl_data(idx);
    int64_t m = outer * inner;
    /* each (o, i) owns one output slot and writes one input element: no races */
    if (g->dtype == LFL_F32) {
        const float *pg = lfl_data(g);
        float *pz = lfl_data(z);
#pragma omp parallel for if (m > LFL_OMP_MIN)
        for (int64_t j = 0; j < m; j++) {
            int64_t o = j / inner, i = j % inner;
            pz[(o * len + pi[j]) * inner + i] = pg[j];
        }
    } else {
        const double *pg = lfl_data(g);
        double *pz = lfl_data(z);
        for (int64_t j = 0; j < m; j++) {
            int64_t o = j / inner, i = j % inner;
            pz[(o * len + pi[j]) * inner + i] = pg[j];
        }
    }
    return LFL_OK;
}

/* max's and min's node: the gradient goes to the selected elements */
static lfl_status extremum_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    const lfl_edge *e = &n->in[0];
    lfl_tensor *idx = n->saved[0], *g, *z = NULL;
    lfl_max_backward_kernel fn;
    LFL_TRY(lfl_dispatch_max_backward(gout[0]->device, NULL, &fn));
    LFL_TRY(lfl_contiguous(gout[0], &g));
    lfl_status st = lfl_zeros(e->ndim, e->shape, g->dtype, g->device, &z);
    if (st == LFL_OK) st = fn(g, idx, (int)n->iarg[0], z);
    lfl_tensor_release(g);
    if (st) { lfl_tensor_release(z); return st; }
    gin[0] = z;
    return LFL_OK;
}

/* BETTER(v, b): v replaces the best so far. Strict comparison keeps the first
 * of equal values; `v != v` lets the first NaN win and stay. */
#define GT(v, b) ((v) > (b) || ((v) != (v) && (b) == (b)))
#define LT(v, b) ((v) < (b) || ((v) != (v) && (b) == (b)))

#define EXTREMUM_LOOP(T, BETTER)                                                    \
    do {                                                                            \
        const T *px = lfl_data(c);                                                  \
        T *pv = lfl_data(vals);                                                     \
        int64_t *pi = lfl_data(idx);                                                \
        if (inner == 1) {                                                           \
            _Pragma("omp parallel for if (total > LFL_OMP_MIN)")                    \
            for (int64_t o = 0; o < outer; o++) {                                   \
                const T *x = px + o * len;                                          \
                T b = x[0];                                                         \
                int64_t bi = 0;                                                     \
                for (int64_t k = 1; k < len; k++)                                   \
                    if (BETTER(x[k], b)) { b = x[k]; bi = k; }                      \
                pv[o] = b;                                                          \
                pi[o] = bi;                                                         \
            }                                                                       \
        } else {                                                                    \
            /* walk k outermost so the inner loop runs over contiguous memory */    \
            int64_t nb = (inner + LFL_DIM_BLK - 1) / LFL_DIM_BLK;                   \
            _Pragma("omp parallel for collapse(2) if (total > LFL_OMP_MIN)")        \
            for (int64_t o = 0; o < outer; o++)                                     \
                for (int64_t ib = 0; ib < nb; ib++) {                               \
                    int64_t i0 = ib * LFL_DIM_BLK;                                  \
                    int64_t i1 = i0 + LFL_DIM_BLK < inner ? i0 + LFL_DIM_BLK : inner; \
                    T *v = pv + o * inner;                                          \
                    int64_t *vi = pi + o * inner;                                   \
                    const T *x = px + o * len * inner;                              \
                    for (int64_t i = i0; i < i1; i++) { v[i] = x[i]; vi[i] = 0; }   \
                    for (int64_t k = 1; k < len; k++)                               \
                        for (int64_t i = i0; i < i1; i++) {                         \
                            T xv = x[k * inner + i];                                \
                            if (BETTER(xv, v[i])) { v[i] = xv; vi[i] = k; }         \
                        }                                                           \
                }                                                                   \
        }                                                                           \
    } while (0)


lfl_status lfl_extremum_cpu(lfl_tensor *c, int d, bool is_min, lfl_tensor *vals, lfl_tensor *idx)
{
    int64_t outer, len, inner;
    lfl_dim_split(c->ndim, c->shape, d, &outer, &len, &inner);
    int64_t total = outer * len * inner;
    switch (c->dtype) {
    case LFL_F32: if (is_min) EXTREMUM_LOOP(float, LT); else EXTREMUM_LOOP(float, GT); break;
    case LFL_F64: if (is_min) EXTREMUM_LOOP(double, LT); else EXTREMUM_LOOP(double, GT); break;
    case LFL_I32: if (is_min) EXTREMUM_LOOP(int32_t, LT); else EXTREMUM_LOOP(int32_t, GT); break;
    default: if (is_min) EXTREMUM_LOOP(int64_t, LT); else EXTREMUM_LOOP(int64_t, GT); break;
    }
    return LFL_OK;
}

lfl_status lfl_cpu_max(lfl_tensor *a, int dim, lfl_tensor *values, lfl_tensor *indices)
{
    return lfl_extremum_cpu(a, dim, false, values, indices);
}

lfl_status lfl_extremum(const char *op, lfl_op entry, lfl_tensor *a, int dim, bool keepdim, bool record,
                        lfl_tensor **values, lfl_tensor **indices)
{
    lfl_dtype dt = a->dtype;
    if (dt != LFL_F32 && dt != LFL_F64 && dt != LFL_I32 && dt != LFL_I64)
        return lfl_fail(LFL_ERR_ARG, "%s: expected an f32, f64, i32 or i64 tensor, got %s", op, lfl_dtype_name(dt));
    int d;
    LFL_TRY(lfl_norm_dim(op, dim, a->ndim, &d));
    if (a->shape[d] == 0)
        return lfl_fail(LFL_ERR_ARG, "%s: cannot reduce dim %d of size 0 (no element to pick)", op, d + 1);
    lfl_max_kernel fn; /* max, min and argmax share one signature */
    switch (entry) {
    case LFL_OP_min: LFL_TRY(lfl_dispatch_min(a->device, op, &fn)); break;
    case LFL_OP_argmax: LFL_TRY(lfl_dispatch_argmax(a->device, op, &fn)); break;
    default: LFL_TRY(lfl_dispatch_max(a->device, op, &fn)); break;
    }
    int64_t oshape[LFL_MAX_DIMS];
    int ond = 0;
    for (int k = 0; k < a->ndim; k++) {
        if (k != d) oshape[ond++] = a->shape[k];
        else if (keepdim) oshape[ond++] = 1;
    }
    lfl_tensor *c = NULL, *vals = NULL, *idx = NULL;
    lfl_status st = lfl_contiguous_nograd(a, &c);
    if (st == LFL_OK) st = lfl_empty(ond, oshape, dt, a->device, &vals);
    if (st == LFL_OK) st = lfl_empty(ond, oshape, LFL_I64, a->device, &idx);
    if (st == LFL_OK) st = fn(c, d, vals, idx);
    lfl_tensor_release(c);
    if (st) { lfl_tensor_release(vals); lfl_tensor_release(idx); return st; }
    if (record && lfl_dtypes[dt].is_float) {
        lfl_node *n = lfl_node_begin(op, extremum_backward, 1, &a, 1);
        if (n) {
            n->iarg[0] = d;
            lfl_node_save(n, idx);
            lfl_node_set_output(n, vals, 0);
            lfl_node_release(n);
        }
    }
    if (values) *values = vals; else lfl_tensor_release(vals);
    if (indices) *indices = idx; else lfl_tensor_release(idx);
    return LFL_OK;
}

lfl_status lfl_max(lfl_tensor *a, int dim, bool keepdim, lfl_tensor **values, lfl_tensor **indices)
{
    return lfl_extremum("max", LFL_OP_max, a, dim, keepdim, true, values, indices);
}
