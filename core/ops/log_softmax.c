/* log_softmax along any dim: x - max - log(sum(exp(x - max))), computed by
 * softmax.c's kernel. Backward: dx = g - exp(y) * sum(g) along the dim. */
#include <math.h>
#include "dimwise.h"
#include "vmath.h"

#define BACK_LOOP(T, EXP)                                                           \
    do {                                                                            \
        const T *pg = lfl_data(g), *py = lfl_data(y);                               \
        T *pd = lfl_data(dx);                                                       \
        _Pragma("omp parallel for collapse(2) if (total > LFL_OMP_MIN)")            \
        for (int64_t o = 0; o < outer; o++)                                         \
            for (int64_t i = 0; i < inner; i++) {                                   \
                int64_t base = o * len * inner + i;                                 \
                T sg = 0;                                                           \
                _Pragma("omp simd reduction(+ : sg)")                               \
                for (int64_t k = 0; k < len; k++) sg += pg[base + k * inner];       \
                for (int64_t k = 0; k < len; k++)                                   \
                    pd[base + k * inner] = pg[base + k * inner] - EXP(py[base + k * inner]) * sg; \
            }                                                                       \
    } while (0)

static lfl_status log_softmax_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    lfl_tensor *y = n->saved[0], *g, *dx;
    int64_t outer, len, inner;
    lfl_dim_split(y->ndim, y->shape, (int)n->iarg[0], &outer, &len, &inner);
    LFL_TRY(lfl_contiguous(gout[0], &g));
    lfl_status st = lfl_empty(y->ndim, y->shape, y->dtype, LFL_CPU, &dx);
    if (st) { lfl_tensor_release(g); return st; }
    int64_t total = outer * len * inner;
    if (y->dtype == LFL_F32) BACK_LOOP(float, lfl_vexpf);
    else BACK_LOOP(double, exp);
    lfl_tensor_release(g);
    gin[0] = dx;
    return LFL_OK;
}

lfl_status lfl_log_softmax(lfl_tensor *a, int dim, lfl_tensor **out)
{
    int d;
    LFL_TRY(lfl_check_float("log_softmax", a));
    if (a->device != LFL_CPU) return lfl_fail(LFL_ERR_UNSUPPORTED, "log_softmax: CUDA tensors are not supported yet");
    LFL_TRY(lfl_norm_dim("log_softmax", dim, a->ndim, &d));
    LFL_TRY(lfl_softmax_raw(a, d, true, out));
    lfl_node *n = lfl_node_begin("log_softmax", log_softmax_backward, 1, &a, 1);
    if (n) {
        n->iarg[0] = d;
        lfl_node_save(n, *out);
        lfl_node_set_output(n, *out, 0);
        lfl_node_release(n);
    }
    return LFL_OK;
}
