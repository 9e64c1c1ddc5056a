// Element conversions of the plain dtypes as the CPU makes them (core/ops/
// copy.c's tables, lfl_get/lfl_set): a value goes through f64, or through f32
// where both dtypes fit in one (the same bits); a 16-bit float is rounded
// from f32, an integer truncated (out of range: what x86 gives, the type's
// minimum; u8 through i32), bool is v != 0. Storage types: float, double,
// f16_t, bf16_t, int32_t, long long (i64), uint8_t, bool_t.
#ifndef LFL_KERNELS_CONVERT_CUH
#define LFL_KERNELS_CONVERT_CUH

#include <limits.h>
#include <string.h>
#include <type_traits>
#include "common.cuh"

struct bool_t { uint8_t v; };

template <typename T> struct lfl_cv_narrow { static const bool value = false; };
template <> struct lfl_cv_narrow<float> { static const bool value = true; };
template <> struct lfl_cv_narrow<bf16_t> { static const bool value = true; };
template <> struct lfl_cv_narrow<f16_t> { static const bool value = true; };
template <> struct lfl_cv_narrow<uint8_t> { static const bool value = true; };
template <> struct lfl_cv_narrow<bool_t> { static const bool value = true; };
// the type a D <- S conversion goes through
template <typename D, typename S>
using lfl_wide_t = typename std::conditional<lfl_cv_narrow<D>::value && lfl_cv_narrow<S>::value, float, double>::type;

template <typename W, typename S> __host__ __device__ static inline W lfl_cv_load(const S *p)
{
    if constexpr (std::is_same<S, f16_t>::value) return (W)lfl_dev_f16_to_f32(p->bits);
    else if constexpr (std::is_same<S, bf16_t>::value) return (W)lfl_dev_bf16_to_f32(p->bits);
    else if constexpr (std::is_same<S, bool_t>::value) return (W)p->v;
    else return (W)*p;
}

// C leaves out-of-range float -> int undefined; x86 (where the CPU kernels
// run) gives the type's minimum, a GPU would saturate: match x86
template <typename W> __host__ __device__ static inline int lfl_cv_i32(W v)
{
    return (v > (W)-2147483649.0 && v < (W)2147483648.0) ? (int)v : INT_MIN;
}
template <typename W> __host__ __device__ static inline long long lfl_cv_i64(W v)
{
    return (v >= (W)-9223372036854775808.0 && v < (W)9223372036854775808.0) ? (long long)v : LLONG_MIN;
}

template <typename D, typename W> __host__ __device__ static inline void lfl_cv_store(D *p, W v)
{
    if constexpr (std::is_same<D, f16_t>::value) p->bits = lfl_dev_f32_to_f16((float)v);
    else if constexpr (std::is_same<D, bf16_t>::value) p->bits = lfl_dev_f32_to_bf16((float)v);
    else if constexpr (std::is_same<D, bool_t>::value) p->v = v != (W)0;
    else if constexpr (std::is_same<D, int32_t>::value) *p = lfl_cv_i32(v);
    else if constexpr (std::is_same<D, long long>::value) *p = lfl_cv_i64(v);
    else if constexpr (std::is_same<D, uint8_t>::value) *p = (uint8_t)lfl_cv_i32(v);
    else *p = (D)v;
}

// runs the body with T the storage type of a plain dtype dt, or fails naming op
#define LFL_PLAIN_SWITCH(dt, op, T, ...)                                                                \
    switch (dt) {                                                                                      \
    case LFL_F32: { typedef float T; __VA_ARGS__; } break;                                             \
    case LFL_F64: { typedef double T; __VA_ARGS__; } break;                                            \
    case LFL_F16: { typedef f16_t T; __VA_ARGS__; } break;                                             \
    case LFL_BF16: { typedef bf16_t T; __VA_ARGS__; } break;                                           \
    case LFL_I32: { typedef int32_t T; __VA_ARGS__; } break;                                           \
    case LFL_I64: { typedef long long T; __VA_ARGS__; } break;                                         \
    case LFL_U8: { typedef uint8_t T; __VA_ARGS__; } break;                                            \
    case LFL_BOOL: { typedef bool_t T; __VA_ARGS__; } break;                                           \
    default: return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: dtype %s is not implemented on CUDA", op,        \
                             lfl_dtype_name(dt));                                                       \
    }

// runs the body with R the unsigned type of an element size (1, 2, 4, 8)
#define LFL_BITS_SWITCH(size, op, dt, R, ...)                                                           \
    switch (size) {                                                                                    \
    case 1: { typedef uint8_t R; __VA_ARGS__; } break;                                                 \
    case 2: { typedef uint16_t R; __VA_ARGS__; } break;                                                \
    case 4: { typedef uint32_t R; __VA_ARGS__; } break;                                                \
    case 8: { typedef unsigned long long R; __VA_ARGS__; } break;                                      \
    default: return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: dtype %s is not implemented on CUDA", op,        \
                             lfl_dtype_name(dt));                                                       \
    }

// v stored in dtype dt's bits by lfl_set (the CPU's conversion), into bits[8]
static inline lfl_status lfl_cv_host_bits(lfl_dtype dt, double v, void *bits)
{
    lfl_tensor *one;
    LFL_TRY(lfl_empty(0, NULL, dt, LFL_CPU, &one));
    lfl_set(one, 0, v);
    memcpy(bits, lfl_data(one), lfl_dtype_size(dt));
    lfl_tensor_release(one);
    return LFL_OK;
}

#endif
