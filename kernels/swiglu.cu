// swiglu (silu(gate) * up) and its backward on CUDA (f32, f64), as
// core/ops/swiglu.c computes them. Elementwise over a grid-stride loop; gate
// and up are read in place through their row maps (unit-stride rows of any
// leading strides), with a direct path when both are contiguous.
#include "rows.cuh"

// 1 + exp(-g): silu(g) = g / that, sigmoid(g) = 1 / that
__device__ static inline float exp_den(float g) { return 1.0f + expf(-g); }
__device__ static inline double exp_den(double g) { return 1.0 + exp(-g); }

template <typename T>
__global__ void swiglu_fwd(const T *gate, lfl_row_map gm, const T *up, lfl_row_map um, T *y, long long n, long long F)
{
    LFL_GRID_STRIDE(i, n) {
        T g = gate[lfl_elem_off(gm, i, F)], u = up[lfl_elem_off(um, i, F)];
        y[i] = g / exp_den(g) * u;
    }
}

// dgate = go * up * s * (1 + g * (1 - s)), dup = go * g * s; either may be NULL
template <typename T>
__global__ void swiglu_bwd(const T *go, const T *gate, lfl_row_map gm, const T *up, lfl_row_map um, T *dg, T *du,
                           long long n, long long F)
{
    LFL_GRID_STRIDE(i, n) {
        T g = gate[lfl_elem_off(gm, i, F)], s = (T)1 / exp_den(g), o = go[i];
        if (dg) dg[i] = o * up[lfl_elem_off(um, i, F)] * s * ((T)1 + g * ((T)1 - s));
        if (du) du[i] = o * g * s;
    }
}

template <typename T> static lfl_status swiglu_launch(lfl_tensor *gate, lfl_tensor *up, lfl_tensor *out)
{
    long long n = lfl_numel(out), F = gate->shape[gate->ndim - 1];
    LFL_LAUNCH(lfl_elem_blocks(n), 256, 0, swiglu_fwd<T>)((const T *)lfl_data(gate), lfl_row_map_of(gate),
                                                      (const T *)lfl_data(up), lfl_row_map_of(up),
                                                      (T *)lfl_data(out), n, F);
    return lfl_cuda_launched("swiglu");
}

template <typename T>
static lfl_status swiglu_backward_launch(lfl_tensor *go, lfl_tensor *gate, lfl_tensor *up, lfl_tensor *dg,
                                         lfl_tensor *du)
{
    long long n = lfl_numel(gate), F = gate->shape[gate->ndim - 1];
    LFL_LAUNCH(lfl_elem_blocks(n), 256, 0, swiglu_bwd<T>)((const T *)lfl_data(go), (const T *)lfl_data(gate),
                                                      lfl_row_map_of(gate), (const T *)lfl_data(up),
                                                      lfl_row_map_of(up), dg ? (T *)lfl_data(dg) : (T *)0,
                                                      du ? (T *)lfl_data(du) : (T *)0, n, F);
    return lfl_cuda_launched("swiglu backward");
}

extern "C" lfl_status lfl_cuda_swiglu(lfl_tensor *gate, lfl_tensor *up, lfl_tensor *out)
{
    if (lfl_numel(out) == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(out->device, "swiglu"));
    LFL_F32_F64_SWITCH(gate->dtype, "swiglu", T, return swiglu_launch<T>(gate, up, out));
    return LFL_OK;
}

extern "C" lfl_status lfl_cuda_swiglu_backward(lfl_tensor *go, lfl_tensor *gate, lfl_tensor *up, lfl_tensor *dg,
                                               lfl_tensor *du)
{
    if (lfl_numel(gate) == 0 || (!dg && !du)) return LFL_OK;
    LFL_TRY(lfl_cuda_use(gate->device, "swiglu backward"));
    LFL_F32_F64_SWITCH(gate->dtype, "swiglu backward", T, return swiglu_backward_launch<T>(go, gate, up, dg, du));
    return LFL_OK;
}
