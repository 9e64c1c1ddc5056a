// geglu (gelu(gate) * up, exact erf GELU or the tanh approximation) and its
// backward on CUDA (f32, f64), as core/ops/geglu.c computes them: the f32
// exact path through erfc (keeps its relative accuracy in the negative tail).
// Elementwise over a grid-stride loop, gate and up read through their row maps.
#include "rows.cuh"

#define GELU_K 0.7978845608028654 // sqrt(2/pi)
#define GELU_C 0.044715
#define INV_SQRT_2PI 0.3989422804014327
#define SQRT1_2 0.70710678118654752440

// gelu(x) and, with d set, gelu'(x) into *d
__device__ static inline float gelu(float x, bool th, float *d)
{
    if (th) {
        float t = tanhf((float)GELU_K * (x + (float)GELU_C * x * x * x));
        if (d)
            *d = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * (float)GELU_K * (1.0f + 3.0f * (float)GELU_C * x * x);
        return 0.5f * x * (1.0f + t);
    }
    float cdf = 0.5f * erfcf(x * -(float)SQRT1_2);
    if (d) *d = cdf + x * (float)INV_SQRT_2PI * expf(-0.5f * x * x);
    return x * cdf;
}

__device__ static inline double gelu(double x, bool th, double *d)
{
    if (th) {
        double t = tanh(GELU_K * (x + GELU_C * x * x * x));
        if (d) *d = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_K * (1.0 + 3.0 * GELU_C * x * x);
        return 0.5 * x * (1.0 + t);
    }
    double cdf = 0.5 * (1.0 + erf(x * SQRT1_2));
    if (d) *d = cdf + x * INV_SQRT_2PI * exp(-0.5 * x * x);
    return x * cdf;
}

template <typename T>
__global__ void geglu_fwd(const T *gate, lfl_row_map gm, const T *up, lfl_row_map um, bool th, T *y, long long n,
                          long long F)
{
    LFL_GRID_STRIDE(i, n)
        y[i] = gelu(gate[lfl_elem_off(gm, i, F)], th, (T *)0) * up[lfl_elem_off(um, i, F)];
}

// dgate = go * up * gelu'(gate), dup = go * gelu(gate); either may be NULL
template <typename T>
__global__ void geglu_bwd(const T *go, const T *gate, lfl_row_map gm, const T *up, lfl_row_map um, bool th, T *dg,
                          T *du, long long n, long long F)
{
    LFL_GRID_STRIDE(i, n) {
        T d, v = gelu(gate[lfl_elem_off(gm, i, F)], th, &d), o = go[i];
        if (dg) dg[i] = o * up[lfl_elem_off(um, i, F)] * d;
        if (du) du[i] = o * v;
    }
}

template <typename T> static lfl_status geglu_launch(lfl_tensor *gate, lfl_tensor *up, bool th, lfl_tensor *out)
{
    long long n = lfl_numel(out), F = gate->shape[gate->ndim - 1];
    LFL_LAUNCH(lfl_elem_blocks(n), 256, 0, geglu_fwd<T>)((const T *)lfl_data(gate), lfl_row_map_of(gate),
                                                         (const T *)lfl_data(up), lfl_row_map_of(up), th,
                                                         (T *)lfl_data(out), n, F);
    return lfl_cuda_launched("geglu");
}

template <typename T>
static lfl_status geglu_backward_launch(lfl_tensor *go, lfl_tensor *gate, lfl_tensor *up, bool th, lfl_tensor *dg,
                                        lfl_tensor *du)
{
    long long n = lfl_numel(gate), F = gate->shape[gate->ndim - 1];
    LFL_LAUNCH(lfl_elem_blocks(n), 256, 0, geglu_bwd<T>)((const T *)lfl_data(go), (const T *)lfl_data(gate),
                                                         lfl_row_map_of(gate), (const T *)lfl_data(up),
                                                         lfl_row_map_of(up), th, dg ? (T *)lfl_data(dg) : (T *)0,
                                                         du ? (T *)lfl_data(du) : (T *)0, n, F);
    return lfl_cuda_launched("geglu backward");
}

extern "C" lfl_status lfl_cuda_geglu(lfl_tensor *gate, lfl_tensor *up, bool tanh_approx, lfl_tensor *out)
{
    if (lfl_numel(out) == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(out->device, "geglu"));
    LFL_F32_F64_SWITCH(gate->dtype, "geglu", T, return geglu_launch<T>(gate, up, tanh_approx, out));
    return LFL_OK;
}

extern "C" lfl_status lfl_cuda_geglu_backward(lfl_tensor *go, lfl_tensor *gate, lfl_tensor *up, bool tanh_approx,
                                              lfl_tensor *dg, lfl_tensor *du)
{
    if (lfl_numel(gate) == 0 || (!dg && !du)) return LFL_OK;
    LFL_TRY(lfl_cuda_use(gate->device, "geglu backward"));
    LFL_F32_F64_SWITCH(gate->dtype, "geglu backward", T,
                       return geglu_backward_launch<T>(go, gate, up, tanh_approx, dg, du));
    return LFL_OK;
}
