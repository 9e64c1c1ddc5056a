/* unary: the one-input elementwise ops (neg exp log sqrt rsqrt abs tanh
 * sigmoid silu gelu gelu_tanh relu) as one op driven by a kind table, with
 * the forward and backward of every kind for f32 (vectorised, threaded) and
 * f64 (libm, for the finite-difference gradient checks). */
#include <math.h>
#include "../iter.h"
#include "optable.h"
#include "vmath.h"

/* what the backward needs: nothing, the input, or the output */
enum { SAVE_NONE, SAVE_IN, SAVE_OUT };

static const struct {
    const char *name;
    int save;
} kinds[LFL_U_COUNT] = {
    [LFL_U_NEG] = {"neg", SAVE_NONE},
    [LFL_U_EXP] = {"exp", SAVE_OUT},
    [LFL_U_LOG] = {"log", SAVE_IN},
    [LFL_U_SQRT] = {"sqrt", SAVE_OUT},
    [LFL_U_RSQRT] = {"rsqrt", SAVE_OUT},
    [LFL_U_ABS] = {"abs", SAVE_IN},
    [LFL_U_TANH] = {"tanh", SAVE_OUT},
    [LFL_U_SIGMOID] = {"sigmoid", SAVE_OUT},
    [LFL_U_SILU] = {"silu", SAVE_IN},
    [LFL_U_GELU] = {"gelu", SAVE_IN},
    [LFL_U_GELU_TANH] = {"gelu_tanh", SAVE_IN},
    [LFL_U_RELU] = {"relu", SAVE_OUT},
};

#define SQRT1_2 0.70710678118654752440      /* 1/sqrt(2) */
#define INV_SQRT_2PI 0.39894228040143267794 /* 1/sqrt(2 pi) */
#define GELU_K0 0.79788456080286535588      /* sqrt(2/pi) */
#define GELU_K1 0.044715

/* One `omp simd` loop over a chunk: v is x[i] (forward) or the saved value
 * (backward), gv the incoming gradient. */
#define MAP(expr)                                                                 \
    _Pragma("omp simd") for (int64_t i = 0; i < n; i++)                           \
    {                                                                             \
        __typeof__(x[0]) v = x[i];                                                \
        y[i] = (expr);                                                            \
    }                                                                             \
    break
#define MAP_G(expr)                                                               \
    _Pragma("omp simd") for (int64_t i = 0; i < n; i++)                           \
    {                                                                             \
        __typeof__(g[0]) gv = g[i], v = s[i];                                     \
        y[i] = (expr);                                                            \
    }                                                                             \
    break

/* Forward and backward kernels of one dtype over a contiguous chunk.
 * GELU is 0.5 x erfc(-x/sqrt2) (no cancellation for negative x); the tanh
 * form is x sigmoid(2u) = 0.5 x (1 + tanh u), u = sqrt(2/pi)(x + 0.044715 x^3),
 * which likewise keeps its relative accuracy in the negative tail. */
#define KERNELS(T, SFX, EXP, LOG, SQRT, TANH, ERFC, ABS)                              \
    static void fwd_##SFX(lfl_unary_kind k, const T *restrict x, T *restrict y, int64_t n) \
    {                                                                             \
        switch (k) {                                                              \
        case LFL_U_NEG: MAP(-v);                                                  \
        case LFL_U_EXP: MAP(EXP(v));                                              \
        case LFL_U_LOG: MAP(LOG(v));                                              \
        case LFL_U_SQRT: MAP(SQRT(v));                                            \
        case LFL_U_RSQRT: MAP((T)1 / SQRT(v));                                    \
        case LFL_U_ABS: MAP(ABS(v));                                              \
        case LFL_U_TANH: MAP(TANH(v));                                            \
        case LFL_U_SIGMOID: MAP((T)1 / ((T)1 + EXP(-v)));                         \
        case LFL_U_SILU: MAP(v / ((T)1 + EXP(-v)));                               \
        case LFL_U_GELU: MAP((T)0.5 * v * ERFC(v * (T)-SQRT1_2));                 \
        case LFL_U_GELU_TANH:                                                     \
            MAP(v / ((T)1 + EXP((T)(-2 * GELU_K0) * (v + (T)GELU_K1 * v * v * v)))); \
        case LFL_U_RELU: MAP(v < 0 ? (T)0 : v); /* NaN stays NaN */               \
        default: break;                                                           \
        }                                                                         \
    }                                                                             \
    /* y = dL/dx from g = dL/dout and the saved input or output s */              \
    static void bwd_##SFX(lfl_unary_kind k, const T *restrict g, const T *restrict s, \
                          T *restrict y, int64_t n)                               \
    {                                                                             \
        switch (k) {                                                              \
        case LFL_U_NEG:                                                           \
            _Pragma("omp simd") for (int64_t i = 0; i < n; i++) y[i] = -g[i];     \
            break;                                                                \
        case LFL_U_EXP: MAP_G(gv * v);                                            \
        case LFL_U_LOG: MAP_G(gv / v);                                            \
        case LFL_U_SQRT: MAP_G((T)0.5 * gv / v);                                  \
        case LFL_U_RSQRT: MAP_G((T)-0.5 * gv * v * v * v);                        \
        case LFL_U_ABS: MAP_G(v > 0 ? gv : v < 0 ? -gv : (T)0);                  \
        case LFL_U_TANH: MAP_G(gv * ((T)1 - v * v));                              \
        case LFL_U_SIGMOID: MAP_G(gv * v * ((T)1 - v));                           \
        case LFL_U_SILU: {                                                        \
            _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {                 \
                T v = s[i], e = (T)1 / ((T)1 + EXP(-v));                          \
                y[i] = g[i] * e * ((T)1 + v * ((T)1 - e));                        \
            }                                                                     \
            break;                                                                \
        }                                                                         \
        case LFL_U_GELU: {                                                        \
            _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {                 \
                T v = s[i];                                                       \
                T cdf = (T)0.5 * ERFC(v * (T)-SQRT1_2);                           \
                T pdf = EXP((T)-0.5 * v * v) * (T)INV_SQRT_2PI;                   \
                y[i] = g[i] * (cdf + v * pdf);                                    \
            }                                                                     \
            break;                                                                \
        }                                                                         \
        case LFL_U_GELU_TANH: {                                                   \
            _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {                 \
                T v = s[i], v2 = v * v;                                           \
                T u = (T)GELU_K0 * (v + (T)GELU_K1 * v2 * v);                     \
                T e = (T)1 / ((T)1 + EXP((T)-2 * u));                             \
                T du = (T)GELU_K0 * ((T)1 + (T)(3 * GELU_K1) * v2);               \
                y[i] = g[i] * (e + (T)2 * v * e * ((T)1 - e) * du);               \
            }                                                                     \
            break;                                                                \
        }                                                                         \
        case LFL_U_RELU: MAP_G(v > 0 ? gv : (T)0);                                \
        default: break;                                                           \
        }                                                                         \
    }

/* f32: the inlined vector math; sqrt stays a (scalar) libm call, which GCC
 * will not vectorise while -fmath-errno is on. */
KERNELS(float, f32, lfl_vexpf, lfl_vlogf, sqrtf, lfl_vtanhf, lfl_verfcf, fabsf)
KERNELS(double, f64, exp, log, sqrt, tanh, erfc, fabs)

/* Work is split into chunks of whole cache lines; a static schedule gives
 * each thread one contiguous span. */
#define CHUNK 16384

static void run(lfl_unary_kind k, bool backward, lfl_dtype dt, const void *g, const void *x,
                void *y, int64_t n)
{
    int64_t nc = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (n > LFL_OMP_MIN)
    for (int64_t c = 0; c < nc; c++) {
        int64_t lo = c * CHUNK, len = n - lo < CHUNK ? n - lo : CHUNK;
        if (dt == LFL_F32) {
            const float *xs = x ? (const float *)x + lo : NULL;
            if (backward) bwd_f32(k, (const float *)g + lo, xs, (float *)y + lo, len);
            else fwd_f32(k, xs, (float *)y + lo, len);
        } else {
            const double *xs = x ? (const double *)x + lo : NULL;
            if (backward) bwd_f64(k, (const double *)g + lo, xs, (double *)y + lo, len);
            else fwd_f64(k, xs, (double *)y + lo, len);
        }
    }
}

/* lfl_contiguous without recording a clone node: the op records its own. */
static lfl_status contiguous_nograd(lfl_tensor *t, lfl_tensor **out)
{
    bool prev = lfl_set_grad_enabled(false);
    lfl_status st = lfl_contiguous(t, out);
    lfl_set_grad_enabled(prev);
    return st;
}

lfl_status lfl_cpu_unary(lfl_unary_kind k, lfl_tensor *a, lfl_tensor *out)
{
    run(k, false, a->dtype, NULL, lfl_data(a), lfl_data(out), lfl_numel(a));
    return LFL_OK;
}

lfl_status lfl_cpu_unary_backward(lfl_unary_kind k, lfl_tensor *g, lfl_tensor *s, lfl_tensor *dx)
{
    run(k, true, g->dtype, lfl_data(g), s ? lfl_data(s) : NULL, lfl_data(dx), lfl_numel(g));
    return LFL_OK;
}

static lfl_status unary_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    lfl_unary_kind k = (lfl_unary_kind)n->iarg[0];
    char name[48];
    snprintf(name, sizeof name, "%s backward", kinds[k].name);
    lfl_tensor *s = kinds[k].save != SAVE_NONE ? n->saved[0] : NULL;
    LFL_TRY(lfl_check_float(name, gout[0]));
    if (gout[0]->dtype != n->in[0].dtype)
        return lfl_fail(LFL_ERR_ARG, "%s: gradient is %s, the input was %s", name,
                        lfl_dtype_name(gout[0]->dtype), lfl_dtype_name(n->in[0].dtype));
    LFL_ASSERT(!s || (lfl_is_contiguous(s) && s->dtype == gout[0]->dtype));
    lfl_unary_backward_kernel fn;
    LFL_TRY(lfl_dispatch_unary_backward(gout[0]->device, name, &fn));
    lfl_tensor *g, *o = NULL;
    LFL_TRY(lfl_contiguous(gout[0], &g));
    lfl_status st = lfl_empty_like(g, &o);
    if (st == LFL_OK) st = fn(k, g, s, o);
    lfl_tensor_release(g);
    if (st) { lfl_tensor_release(o); return st; }
    gin[0] = o;
    return LFL_OK;
}

lfl_status lfl_unary(lfl_unary_kind k, lfl_tensor *a, lfl_tensor **out)
{
    if ((unsigned)k >= LFL_U_COUNT) return lfl_fail(LFL_ERR_ARG, "unary: unknown kind %d", (int)k);
    const char *op = kinds[k].name;
    LFL_TRY(lfl_check_float(op, a));
    lfl_unary_kernel fn;
    LFL_TRY(lfl_dispatch_unary(a->device, op, &fn));
    lfl_tensor *c, *r = NULL;
    LFL_TRY(contiguous_nograd(a, &c));
    lfl_status st = lfl_empty_like(c, &r);
    if (st == LFL_OK) st = fn(k, c, r);
    if (st) { lfl_tensor_release(c); lfl_tensor_release(r); return st; }
    lfl_node *n = lfl_node_begin(op, unary_backward, 1, &a, 1);
    if (n) {
        n->iarg[0] = k;
        if (kinds[k].save == SAVE_IN) lfl_node_save(n, c);
        if (kinds[k].save == SAVE_OUT) lfl_node_save(n, r);
        lfl_node_set_output(n, r, 0);
        lfl_node_release(n);
    }
    lfl_tensor_release(c);
    *out = r;
    return LFL_OK;
}
