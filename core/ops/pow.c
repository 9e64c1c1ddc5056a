/* pow: a ^ p for a scalar exponent p; d/da = p a^(p-1) (zero for p = 0).
 * Common exponents (0, 1, 2, 3, 1/2, -1/2, -1, -2) take exact multiply /
 * sqrt paths; any other p calls libm pow per element. */
#include <math.h>
#include "../iter.h"
#include "optable.h"

typedef enum { P_ZERO, P_ONE, P_SQR, P_CUBE, P_SQRT, P_RSQRT, P_RECIP, P_RSQR, P_GENERAL } pow_mode;

static pow_mode mode_of(double p)
{
    if (p == 0) return P_ZERO;
    if (p == 1) return P_ONE;
    if (p == 2) return P_SQR;
    if (p == 3) return P_CUBE;
    if (p == 0.5) return P_SQRT;
    if (p == -0.5) return P_RSQRT;
    if (p == -1) return P_RECIP;
    if (p == -2) return P_RSQR;
    return P_GENERAL;
}

#define LOOP(expr)                                                                \
    _Pragma("omp simd") for (int64_t i = 0; i < n; i++)                           \
    {                                                                             \
        __typeof__(x[0]) v = x[i];                                                \
        (void)v;                                                                  \
        y[i] = (expr);                                                            \
    }                                                                             \
    break

#define POW_KERNEL(T, SFX, SQRT, POW)                                             \
    static void pow_##SFX(pow_mode m, T p, const T *restrict x, T *restrict y, int64_t n) \
    {                                                                             \
        switch (m) {                                                              \
        case P_ZERO: LOOP((T)1);                                                  \
        case P_ONE: LOOP(v);                                                      \
        case P_SQR: LOOP(v * v);                                                  \
        case P_CUBE: LOOP(v * v * v);                                             \
        case P_SQRT: LOOP(SQRT(v));                                               \
        case P_RSQRT: LOOP((T)1 / SQRT(v));                                       \
        case P_RECIP: LOOP((T)1 / v);                                             \
        case P_RSQR: LOOP((T)1 / (v * v));                                        \
        default: LOOP(POW(v, p));                                                 \
        }                                                                         \
    }

POW_KERNEL(float, f32, sqrtf, powf)
POW_KERNEL(double, f64, sqrt, pow)

#define CHUNK 16384

/* y = x ^ p over contiguous x into y (x's shape and dtype) */
static void pow_raw(lfl_tensor *x, double p, lfl_tensor *y)
{
    pow_mode m = mode_of(p);
    int64_t n = lfl_numel(x), nc = (n + CHUNK - 1) / CHUNK;
    bool f32 = x->dtype == LFL_F32;
    const void *px = lfl_data(x);
    void *py = lfl_data(y);
#pragma omp parallel for schedule(static) if (n > LFL_OMP_MIN)
    for (int64_t c = 0; c < nc; c++) {
        int64_t lo = c * CHUNK, len = n - lo < CHUNK ? n - lo : CHUNK;
        if (f32) pow_f32(m, (float)p, (const float *)px + lo, (float *)py + lo, len);
        else pow_f64(m, p, (const double *)px + lo, (double *)py + lo, len);
    }
}

lfl_status lfl_cpu_pow(lfl_tensor *x, double p, lfl_tensor *y)
{
    pow_raw(x, p, y);
    return LFL_OK;
}

lfl_status lfl_cpu_pow_backward(lfl_tensor *g, lfl_tensor *x, double p, lfl_tensor *d)
{
    pow_raw(x, p - 1, d); /* d = x^(p-1), then d *= p g */
    int64_t cnt = lfl_numel(d);
    if (d->dtype == LFL_F32) {
        float *pd = lfl_data(d), fp = (float)p;
        const float *pg = lfl_data(g);
#pragma omp parallel for simd if (cnt > LFL_OMP_MIN)
        for (int64_t i = 0; i < cnt; i++) pd[i] *= fp * pg[i];
    } else {
        double *pd = lfl_data(d);
        const double *pg = lfl_data(g);
        for (int64_t i = 0; i < cnt; i++) pd[i] *= p * pg[i];
    }
    return LFL_OK;
}

static lfl_status pow_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    double p = n->farg[0];
    lfl_tensor *x = n->saved[0], *g, *d = NULL;
    LFL_TRY(lfl_check_float("pow backward", gout[0]));
    if (gout[0]->dtype != x->dtype)
        return lfl_fail(LFL_ERR_ARG, "pow backward: gradient is %s, the input was %s",
                        lfl_dtype_name(gout[0]->dtype), lfl_dtype_name(x->dtype));
    if (p == 0) return lfl_zeros_like(x, &gin[0]);
    lfl_pow_backward_kernel fn;
    LFL_TRY(lfl_dispatch_pow_backward(x->device, NULL, &fn));
    LFL_TRY(lfl_contiguous(gout[0], &g));
    lfl_status st = lfl_empty_like(x, &d);
    if (st == LFL_OK) st = fn(g, x, p, d);
    lfl_tensor_release(g);
    if (st) { lfl_tensor_release(d); return st; }
    gin[0] = d;
    return LFL_OK;
}

lfl_status lfl_pow(lfl_tensor *a, double p, lfl_tensor **out)
{
    LFL_TRY(lfl_check_float("pow", a));
    lfl_pow_kernel fn;
    LFL_TRY(lfl_dispatch_pow(a->device, NULL, &fn));
    lfl_tensor *c, *r = NULL;
    bool prev = lfl_set_grad_enabled(false); /* the copy is ours; pow records its own node */
    lfl_status st = lfl_contiguous(a, &c);
    lfl_set_grad_enabled(prev);
    LFL_TRY(st);
    st = lfl_empty_like(c, &r);
    if (st == LFL_OK) st = fn(c, p, r);
    if (st) { lfl_tensor_release(c); lfl_tensor_release(r); return st; }
    lfl_node *n = lfl_node_begin("pow", pow_backward, 1, &a, 1);
    if (n) {
        n->farg[0] = p;
        lfl_node_save(n, c);
        lfl_node_set_output(n, r, 0);
        lfl_node_release(n);
    }
    lfl_tensor_release(c);
    *out = r;
    return LFL_OK;
}
