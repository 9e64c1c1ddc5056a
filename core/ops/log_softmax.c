/* log_softmax along any dim: x - max - log(sum(exp(x - max))), through
 * softmax.c's front and forward kernel. Backward: dx = g - exp(y) * sum(g)
 * along the dim. */
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

lfl_status lfl_cpu_log_softmax(lfl_tensor *a, int dim, lfl_tensor *out) { return lfl_softmax_cpu(a, dim, true, out); }

lfl_status lfl_cpu_log_softmax_backward(lfl_tensor *g, lfl_tensor *y, int dim, lfl_tensor *dx)
{
    int64_t outer, len, inner;
    lfl_dim_split(y->ndim, y->shape, dim, &outer, &len, &inner);
    int64_t total = outer * len * inner;
    if (y->dtype == LFL_F32) BACK_LOOP(float, lfl_vexpf);
    else BACK_LOOP(double, exp);
    return LFL_OK;
}

static lfl_status log_softmax_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    return lfl_softmax_backward_front(LFL_OP_log_softmax_backward, n, gout, gin);
}

lfl_status lfl_log_softmax(lfl_tensor *a, int dim, lfl_tensor **out)
{
    return lfl_softmax_front("log_softmax", LFL_OP_log_softmax, a, dim, log_softmax_backward, out);
}
