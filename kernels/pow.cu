// pow on CUDA: y = x ^ p and its backward dx = x^(p-1) * (p g) for contiguous
// f32/f64, with the CPU's exact paths for the common exponents (0, 1, 2, 3,
// 1/2, -1/2, -1, -2: multiplies and a correctly rounded sqrt) and pow()
// otherwise (core/ops/pow.c).
#include <math.h>
#include "elementwise.cuh"

enum { P_ZERO, P_ONE, P_SQR, P_CUBE, P_SQRT, P_RSQRT, P_RECIP, P_RSQR, P_GENERAL };

static int mode_of(double p)
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

__device__ static inline float dev_sqrt(float v) { return sqrtf(v); }
__device__ static inline double dev_sqrt(double v) { return sqrt(v); }
__device__ static inline float dev_pow(float v, float p) { return powf(v, p); }
__device__ static inline double dev_pow(double v, double p) { return pow(v, p); }

template <typename T> __device__ static inline T pow_mode(int m, T v, T p)
{
    switch (m) {
    case P_ZERO: return (T)1;
    case P_ONE: return v;
    case P_SQR: return v * v;
    case P_CUBE: return v * v * v;
    case P_SQRT: return dev_sqrt(v);
    case P_RSQRT: return (T)1 / dev_sqrt(v);
    case P_RECIP: return (T)1 / v;
    case P_RSQR: return (T)1 / (v * v);
    default: return dev_pow(v, p);
    }
}

// g NULL: the forward; else dx = x^(p-1) * (p g)
template <typename T> __global__ void pow_kernel(int m, T q, T p, const T *x, const T *g, T *y, long long n)
{
    LFL_GRID_LOOP(long long, i, n) {
        T v = pow_mode(m, x[i], q);
        y[i] = g ? v * (p * g[i]) : v;
    }
}

static lfl_status run(const char *op, lfl_tensor *x, lfl_tensor *g, double p, lfl_tensor *y)
{
    long long n = lfl_numel(x);
    if (n == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(x->device, op));
    double q = g ? p - 1 : p; // the exponent computed
    int m = mode_of(q);
    unsigned blocks = lfl_ew_blocks(n);
    if (x->dtype == LFL_F32)
        LFL_LAUNCH(blocks, lfl_ew_threads, 0, pow_kernel<float>)(m, (float)q, (float)p, (const float *)lfl_data(x),
                                                                 g ? (const float *)lfl_data(g) : NULL,
                                                                 (float *)lfl_data(y), n);
    else if (x->dtype == LFL_F64)
        LFL_LAUNCH(blocks, lfl_ew_threads, 0, pow_kernel<double>)(m, q, p, (const double *)lfl_data(x),
                                                                  g ? (const double *)lfl_data(g) : NULL,
                                                                  (double *)lfl_data(y), n);
    else
        return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: dtype %s is not implemented on CUDA", op, lfl_dtype_name(x->dtype));
    return lfl_cuda_launched(op);
}

extern "C" lfl_status lfl_cuda_pow(lfl_tensor *a, double p, lfl_tensor *out) { return run("pow", a, NULL, p, out); }

extern "C" lfl_status lfl_cuda_pow_backward(lfl_tensor *g, lfl_tensor *x, double p, lfl_tensor *dx)
{
    return run("pow backward", x, g, p, dx);
}
