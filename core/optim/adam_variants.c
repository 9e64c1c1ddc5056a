/* The Adam variants of GaLore (direction in the projected space) and BAdam's
 * ratio mode (sparse states over a mask of flat indices). */
#include <math.h>
#include "../iter.h"
#include "adam_variants.h"

static lfl_status check(const char *op, lfl_tensor *t, lfl_dtype dt, int64_t n, const char *what)
{
    if (t->dtype != dt || !lfl_is_contiguous(t) || lfl_numel(t) != n || t->device != LFL_CPU)
        return lfl_fail(LFL_ERR_ARG, "%s: %s must be a contiguous %s CPU tensor of %lld elements", op, what,
                        lfl_dtype_name(dt), (long long)n);
    return LFL_OK;
}

lfl_status lfl_adam_direction(lfl_tensor *g, lfl_tensor *m, lfl_tensor *v, lfl_tensor *dir, double beta1,
                              double beta2, double eps)
{
    int64_t n = lfl_numel(g);
    LFL_TRY(check("adam_direction", g, LFL_F32, n, "the gradient"));
    LFL_TRY(check("adam_direction", m, LFL_F32, n, "exp_avg"));
    LFL_TRY(check("adam_direction", v, LFL_F32, n, "exp_avg_sq"));
    LFL_TRY(check("adam_direction", dir, LFL_F32, n, "the output"));
    const float *gg = lfl_data(g);
    float *mm = lfl_data(m), *vv = lfl_data(v), *dd = lfl_data(dir);
    float b1 = (float)beta1, b2 = (float)beta2, e = (float)eps;
#pragma omp parallel for simd if (n > LFL_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        float gi = gg[i];
        float mi = mm[i] * b1 + (1 - b1) * gi, vi = vv[i] * b2 + (1 - b2) * gi * gi;
        mm[i] = mi;
        vv[i] = vi;
        dd[i] = mi / (sqrtf(vi) + e);
    }
    return LFL_OK;
}

lfl_status lfl_sparse_adam_step(lfl_tensor *p, lfl_tensor *g, lfl_tensor *idx, lfl_tensor *m, lfl_tensor *v,
                                double step_size, double beta1, double beta2, double eps)
{
    int64_t n = lfl_numel(p), k = lfl_numel(idx);
    LFL_TRY(check("sparse_adam", p, LFL_F32, n, "the parameter"));
    LFL_TRY(check("sparse_adam", g, LFL_F32, n, "the gradient"));
    LFL_TRY(check("sparse_adam", idx, LFL_I64, k, "the index list"));
    LFL_TRY(check("sparse_adam", m, LFL_F32, k, "exp_avg"));
    LFL_TRY(check("sparse_adam", v, LFL_F32, k, "exp_avg_sq"));
    const int64_t *ii = lfl_data(idx);
    for (int64_t j = 0; j < k; j++)
        if (ii[j] < 0 || ii[j] >= n)
            return lfl_fail(LFL_ERR_ARG, "sparse_adam: index %lld at position %lld is outside 0..%lld",
                            (long long)ii[j], (long long)j, (long long)(n - 1));
    float *pp = lfl_data(p), *mm = lfl_data(m), *vv = lfl_data(v);
    const float *gg = lfl_data(g);
    float b1 = (float)beta1, b2 = (float)beta2, e = (float)eps, ss = (float)step_size;
#pragma omp parallel for if (k > LFL_OMP_MIN)
    for (int64_t j = 0; j < k; j++) {
        float gi = gg[ii[j]];
        /* BAdam writes it as old += (1 - b)(new - old); the same value */
        float mi = mm[j] * b1 + (1 - b1) * gi, vi = vv[j] * b2 + (1 - b2) * gi * gi;
        mm[j] = mi;
        vv[j] = vi;
        pp[ii[j]] -= ss * (mi / (sqrtf(vi) + e));
    }
    return LFL_OK;
}
