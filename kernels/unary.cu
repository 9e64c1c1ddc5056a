// unary on CUDA: the forward and backward of every lfl_unary_kind for
// contiguous f32/f64, with the CPU's formulas (core/ops/unary.c): GELU as
// 0.5 x erfc(-x/sqrt2), its tanh form as x sigmoid(2u), relu keeping NaN.
// f32 uses CUDA's f32 math (within a few ulp of the CPU's vector math).
#include <math.h>
#include "elementwise.cuh"

#define SQRT1_2 0.70710678118654752440      // 1/sqrt(2)
#define INV_SQRT_2PI 0.39894228040143267794 // 1/sqrt(2 pi)
#define GELU_K0 0.79788456080286535588      // sqrt(2/pi)
#define GELU_K1 0.044715

__device__ static inline float m_exp(float v) { return expf(v); }
__device__ static inline double m_exp(double v) { return exp(v); }
__device__ static inline float m_log(float v) { return logf(v); }
__device__ static inline double m_log(double v) { return log(v); }
__device__ static inline float m_sqrt(float v) { return sqrtf(v); }
__device__ static inline double m_sqrt(double v) { return sqrt(v); }
__device__ static inline float m_tanh(float v) { return tanhf(v); }
__device__ static inline double m_tanh(double v) { return tanh(v); }
__device__ static inline float m_erfc(float v) { return erfcf(v); }
__device__ static inline double m_erfc(double v) { return erfc(v); }
__device__ static inline float m_abs(float v) { return fabsf(v); }
__device__ static inline double m_abs(double v) { return fabs(v); }

template <typename T> __device__ static inline T forward(int k, T v)
{
    switch (k) {
    case LFL_U_NEG: return -v;
    case LFL_U_EXP: return m_exp(v);
    case LFL_U_LOG: return m_log(v);
    case LFL_U_SQRT: return m_sqrt(v);
    case LFL_U_RSQRT: return (T)1 / m_sqrt(v);
    case LFL_U_ABS: return m_abs(v);
    case LFL_U_TANH: return m_tanh(v);
    case LFL_U_SIGMOID: return (T)1 / ((T)1 + m_exp(-v));
    case LFL_U_SILU: return v / ((T)1 + m_exp(-v));
    case LFL_U_GELU: return (T)0.5 * v * m_erfc(v * (T)-SQRT1_2);
    case LFL_U_GELU_TANH: return v / ((T)1 + m_exp((T)(-2 * GELU_K0) * (v + (T)GELU_K1 * v * v * v)));
    default: return v < 0 ? (T)0 : v; // relu: NaN stays NaN
    }
}

// dL/dx from gv = dL/dout and v, the saved input or output (kind's choice)
template <typename T> __device__ static inline T backward(int k, T gv, T v)
{
    switch (k) {
    case LFL_U_NEG: return -gv;
    case LFL_U_EXP: return gv * v;
    case LFL_U_LOG: return gv / v;
    case LFL_U_SQRT: return (T)0.5 * gv / v;
    case LFL_U_RSQRT: return (T)-0.5 * gv * v * v * v;
    case LFL_U_ABS: return v > 0 ? gv : v < 0 ? -gv : (T)0;
    case LFL_U_TANH: return gv * ((T)1 - v * v);
    case LFL_U_SIGMOID: return gv * v * ((T)1 - v);
    case LFL_U_SILU: {
        T e = (T)1 / ((T)1 + m_exp(-v));
        return gv * e * ((T)1 + v * ((T)1 - e));
    }
    case LFL_U_GELU: {
        T cdf = (T)0.5 * m_erfc(v * (T)-SQRT1_2);
        T pdf = m_exp((T)-0.5 * v * v) * (T)INV_SQRT_2PI;
        return gv * (cdf + v * pdf);
    }
    case LFL_U_GELU_TANH: {
        T v2 = v * v;
        T u = (T)GELU_K0 * (v + (T)GELU_K1 * v2 * v);
        T e = (T)1 / ((T)1 + m_exp((T)-2 * u));
        T du = (T)GELU_K0 * ((T)1 + (T)(3 * GELU_K1) * v2);
        return gv * (e + (T)2 * v * e * ((T)1 - e) * du);
    }
    default: return v > 0 ? gv : (T)0; // relu
    }
}

// the kind is a template parameter: one branch-free loop per kind
template <typename T, int K> __global__ void unary_fwd(const T *x, T *y, long long n)
{
    LFL_GRID_LOOP(long long, i, n) y[i] = forward<T>(K, x[i]);
}

template <typename T, int K> __global__ void unary_bwd(const T *g, const T *s, T *y, long long n)
{
    LFL_GRID_LOOP(long long, i, n) y[i] = backward<T>(K, g[i], s ? s[i] : (T)0);
}

template <typename T, int K> static void launch_kind(bool bwd, const void *g, const void *x, void *y, long long n)
{
    unsigned blocks = lfl_ew_blocks(n);
    if (bwd)
        LFL_LAUNCH(blocks, lfl_ew_threads, 0, unary_bwd<T, K>)((const T *)g, (const T *)x, (T *)y, n);
    else
        LFL_LAUNCH(blocks, lfl_ew_threads, 0, unary_fwd<T, K>)((const T *)x, (T *)y, n);
}

template <typename T>
static lfl_status launch(lfl_unary_kind k, bool bwd, const void *g, const void *x, void *y, long long n)
{
    switch (k) {
#define KIND_(K) case K: launch_kind<T, K>(bwd, g, x, y, n); break;
        KIND_(LFL_U_NEG) KIND_(LFL_U_EXP) KIND_(LFL_U_LOG) KIND_(LFL_U_SQRT) KIND_(LFL_U_RSQRT) KIND_(LFL_U_ABS)
        KIND_(LFL_U_TANH) KIND_(LFL_U_SIGMOID) KIND_(LFL_U_SILU) KIND_(LFL_U_GELU) KIND_(LFL_U_GELU_TANH)
        KIND_(LFL_U_RELU)
#undef KIND_
    default: return lfl_fail(LFL_ERR_ARG, "unary: unknown kind %d", (int)k);
    }
    return LFL_OK;
}

static lfl_status run(lfl_unary_kind k, bool bwd, lfl_dtype dt, int device, const void *g, const void *x, void *y,
                      long long n)
{
    const char *op = bwd ? "unary backward" : "unary";
    if (n == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(device, op));
    if (dt == LFL_F32) LFL_TRY(launch<float>(k, bwd, g, x, y, n));
    else if (dt == LFL_F64) LFL_TRY(launch<double>(k, bwd, g, x, y, n));
    else return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: dtype %s is not implemented on CUDA", op, lfl_dtype_name(dt));
    return lfl_cuda_launched(op);
}

extern "C" lfl_status lfl_cuda_unary(lfl_unary_kind k, lfl_tensor *a, lfl_tensor *out)
{
    return run(k, false, a->dtype, a->device, NULL, lfl_data(a), lfl_data(out), lfl_numel(a));
}

extern "C" lfl_status lfl_cuda_unary_backward(lfl_unary_kind k, lfl_tensor *g, lfl_tensor *saved, lfl_tensor *dx)
{
    return run(k, true, g->dtype, g->device, lfl_data(g), saved ? lfl_data(saved) : NULL, lfl_data(dx),
               lfl_numel(g));
}
