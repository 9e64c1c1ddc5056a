/* softmax along any dim, numerically stable (subtract the max before exp);
 * also the front and the forward CPU kernel that log_softmax.c shares.
 * Backward: dx = y * (g - sum(g * y)) along the dim. */
#include <math.h>
#include "dimwise.h"
#include "vmath.h"

/* One row along the last dim of a contiguous tensor: the max, then exp and
 * its sum, then scale (softmax) or shift (log-softmax). simd reductions keep
 * several partial sums, which also helps the accuracy of long rows. */
#define ROWS_LOOP(T, EXP, LOG)                                                      \
    do {                                                                            \
        const T *px = lfl_data(c);                                                  \
        T *py = lfl_data(y);                                                        \
        _Pragma("omp parallel for if (total > LFL_OMP_MIN)")                        \
        for (int64_t r = 0; r < outer; r++) {                                       \
            const T *x = px + r * len;                                              \
            T *o = py + r * len;                                                    \
            T m = -INFINITY, s = 0;                                                 \
            _Pragma("omp simd reduction(max : m)")                                  \
            for (int64_t k = 0; k < len; k++) m = x[k] > m ? x[k] : m;              \
            /* all -inf: every term is exp(-inf) = 0 against a shift of 0 */        \
            if (m == -INFINITY) m = 0;                                              \
            if (is_log) {                                                           \
                _Pragma("omp simd reduction(+ : s)")                                \
                for (int64_t k = 0; k < len; k++) s += EXP(x[k] - m);               \
                T ls = LOG(s);                                                      \
                _Pragma("omp simd")                                                 \
                for (int64_t k = 0; k < len; k++) o[k] = (x[k] - m) - ls;           \
            } else {                                                                \
                _Pragma("omp simd reduction(+ : s)")                                \
                for (int64_t k = 0; k < len; k++) { T e = EXP(x[k] - m); o[k] = e; s += e; } \
                T inv = 1 / s;                                                      \
                _Pragma("omp simd")                                                 \
                for (int64_t k = 0; k < len; k++) o[k] *= inv;                      \
            }                                                                       \
        }                                                                           \
    } while (0)

/* Dim not last: per (outer, block of inner) keep BLK running maxima and sums,
 * walking k outermost so the innermost loop is contiguous. */
#define COLS_LOOP(T, EXP, LOG)                                                      \
    do {                                                                            \
        const T *px = lfl_data(c);                                                  \
        T *py = lfl_data(y);                                                        \
        int64_t nb = (inner + LFL_DIM_BLK - 1) / LFL_DIM_BLK;                       \
        _Pragma("omp parallel for collapse(2) if (total > LFL_OMP_MIN)")            \
        for (int64_t o = 0; o < outer; o++)                                         \
            for (int64_t ib = 0; ib < nb; ib++) {                                   \
                int64_t i0 = ib * LFL_DIM_BLK;                                      \
                int64_t w = inner - i0 < LFL_DIM_BLK ? inner - i0 : LFL_DIM_BLK;    \
                const T *x = px + o * len * inner + i0;                             \
                T *out = py + o * len * inner + i0;                                 \
                T m[LFL_DIM_BLK], s[LFL_DIM_BLK];                                   \
                for (int64_t i = 0; i < w; i++) { m[i] = -INFINITY; s[i] = 0; }     \
                for (int64_t k = 0; k < len; k++)                                   \
                    for (int64_t i = 0; i < w; i++) {                               \
                        T v = x[k * inner + i];                                     \
                        m[i] = v > m[i] ? v : m[i];                                 \
                    }                                                               \
                for (int64_t i = 0; i < w; i++) if (m[i] == -INFINITY) m[i] = 0;    \
                for (int64_t k = 0; k < len; k++)                                   \
                    for (int64_t i = 0; i < w; i++) {                               \
                        T e = EXP(x[k * inner + i] - m[i]);                         \
                        if (!is_log) out[k * inner + i] = e;                        \
                        s[i] += e;                                                  \
                    }                                                               \
                if (is_log) {                                                       \
                    for (int64_t i = 0; i < w; i++) s[i] = LOG(s[i]);               \
                    for (int64_t k = 0; k < len; k++)                               \
                        for (int64_t i = 0; i < w; i++)                             \
                            out[k * inner + i] = (x[k * inner + i] - m[i]) - s[i];  \
                } else {                                                            \
                    for (int64_t i = 0; i < w; i++) s[i] = 1 / s[i];                \
                    for (int64_t k = 0; k < len; k++)                               \
                        for (int64_t i = 0; i < w; i++) out[k * inner + i] *= s[i]; \
                }                                                                   \
            }                                                                       \
    } while (0)

lfl_status lfl_softmax_cpu(lfl_tensor *c, int d, bool is_log, lfl_tensor *y)
{
    int64_t outer, len, inner;
    lfl_dim_split(c->ndim, c->shape, d, &outer, &len, &inner);
    int64_t total = outer * len * inner;
    if (total > 0) {
        if (inner == 1 && c->dtype == LFL_F32) ROWS_LOOP(float, lfl_vexpf, logf);
        else if (inner == 1) ROWS_LOOP(double, exp, log);
        else if (c->dtype == LFL_F32) COLS_LOOP(float, lfl_vexpf, logf);
        else COLS_LOOP(double, exp, log);
    }
    return LFL_OK;
}

lfl_status lfl_cpu_softmax(lfl_tensor *a, int dim, lfl_tensor *out) { return lfl_softmax_cpu(a, dim, false, out); }

/* The front of softmax and log_softmax (entry: which of the two). */
lfl_status lfl_softmax_front(const char *op, lfl_op entry, lfl_tensor *a, int dim, lfl_backward_fn backward,
                             lfl_tensor **out)
{
    int d;
    LFL_TRY(lfl_check_float(op, a));
    LFL_TRY(lfl_norm_dim(op, dim, a->ndim, &d));
    lfl_softmax_kernel fn; /* softmax and log_softmax share one signature */
    if (entry == LFL_OP_log_softmax) LFL_TRY(lfl_dispatch_log_softmax(a->device, op, &fn));
    else LFL_TRY(lfl_dispatch_softmax(a->device, op, &fn));
    lfl_tensor *c, *y = NULL;
    LFL_TRY(lfl_contiguous_nograd(a, &c));
    lfl_status st = lfl_empty(a->ndim, a->shape, a->dtype, a->device, &y);
    if (st == LFL_OK) st = fn(c, d, y);
    lfl_tensor_release(c);
    if (st) { lfl_tensor_release(y); return st; }
    lfl_node *n = lfl_node_begin(op, backward, 1, &a, 1);
    if (n) {
        n->iarg[0] = d;
        lfl_node_save(n, y);
        lfl_node_set_output(n, y, 0);
        lfl_node_release(n);
    }
    *out = y;
    return LFL_OK;
}

/* g and y contiguous with the input's shape: dx = y * (g - sum_k g * y). */
#define BACK_LOOP(T)                                                                \
    do {                                                                            \
        const T *pg = lfl_data(g), *py = lfl_data(y);                               \
        T *pd = lfl_data(dx);                                                       \
        _Pragma("omp parallel for collapse(2) if (total > LFL_OMP_MIN)")            \
        for (int64_t o = 0; o < outer; o++)                                         \
            for (int64_t i = 0; i < inner; i++) {                                   \
                int64_t base = o * len * inner + i;                                 \
                T dot = 0;                                                          \
                _Pragma("omp simd reduction(+ : dot)")                              \
                for (int64_t k = 0; k < len; k++) dot += pg[base + k * inner] * py[base + k * inner]; \
                _Pragma("omp simd")                                                 \
                for (int64_t k = 0; k < len; k++)                                   \
                    pd[base + k * inner] = py[base + k * inner] * (pg[base + k * inner] - dot); \
            }                                                                       \
    } while (0)

lfl_status lfl_cpu_softmax_backward(lfl_tensor *g, lfl_tensor *y, int dim, lfl_tensor *dx)
{
    int64_t outer, len, inner;
    lfl_dim_split(y->ndim, y->shape, dim, &outer, &len, &inner);
    int64_t total = outer * len * inner;
    if (y->dtype == LFL_F32) BACK_LOOP(float);
    else BACK_LOOP(double);
    return LFL_OK;
}

/* The backward node of softmax and log_softmax: g contiguous, dx allocated,
 * then the entry's kernel. */
lfl_status lfl_softmax_backward_front(lfl_op entry, lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    lfl_tensor *y = n->saved[0], *g, *dx = NULL;
    lfl_softmax_backward_kernel fn;
    if (entry == LFL_OP_log_softmax_backward) LFL_TRY(lfl_dispatch_log_softmax_backward(y->device, NULL, &fn));
    else LFL_TRY(lfl_dispatch_softmax_backward(y->device, NULL, &fn));
    LFL_TRY(lfl_contiguous(gout[0], &g));
    lfl_status st = lfl_empty(y->ndim, y->shape, y->dtype, y->device, &dx);
    if (st == LFL_OK) st = fn(g, y, (int)n->iarg[0], dx);
    lfl_tensor_release(g);
    if (st) { lfl_tensor_release(dx); return st; }
    gin[0] = dx;
    return LFL_OK;
}

static lfl_status softmax_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    return lfl_softmax_backward_front(LFL_OP_softmax_backward, n, gout, gin);
}

lfl_status lfl_softmax(lfl_tensor *a, int dim, lfl_tensor **out)
{
    return lfl_softmax_front("softmax", LFL_OP_softmax, a, dim, softmax_backward, out);
}
