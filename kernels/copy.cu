// copy on CUDA: dst[...] = src[...] within one device, any strides, src
// broadcast to dst, with the CPU's dtype conversions (core/ops/copy.c): a
// value goes through f64 (through f32 where both dtypes fit in one, which
// gives the same bits), a 16-bit float is rounded from f32, an integer is
// truncated (out of range: what x86 gives, the minimum; u8 through i32), bool
// is v != 0. One dtype: a flat copy is a device memcpy, a strided one moves
// raw 1/2/4/8-byte words.
#include <limits.h>
#include <type_traits>
#include "strided.cuh"

struct bool_t { uint8_t v; };

template <typename T> struct narrow_type { static const bool value = false; };
template <> struct narrow_type<float> { static const bool value = true; };
template <> struct narrow_type<bf16_t> { static const bool value = true; };
template <> struct narrow_type<f16_t> { static const bool value = true; };
template <> struct narrow_type<uint8_t> { static const bool value = true; };
template <> struct narrow_type<bool_t> { static const bool value = true; };

template <typename W, typename S> __device__ static inline W cv_load(const S *p)
{
    if constexpr (std::is_same<S, f16_t>::value) return (W)lfl_dev_f16_to_f32(p->bits);
    else if constexpr (std::is_same<S, bf16_t>::value) return (W)lfl_dev_bf16_to_f32(p->bits);
    else if constexpr (std::is_same<S, bool_t>::value) return (W)p->v;
    else return (W)*p;
}

// C leaves out-of-range float -> int undefined; x86 (where the CPU kernel
// runs) gives the type's minimum, the GPU would saturate: match x86
template <typename W> __device__ static inline int cv_i32(W v)
{
    return (v > (W)-2147483649.0 && v < (W)2147483648.0) ? (int)v : INT_MIN;
}
template <typename W> __device__ static inline long long cv_i64(W v)
{
    return (v >= (W)-9223372036854775808.0 && v < (W)9223372036854775808.0) ? (long long)v : LLONG_MIN;
}

template <typename D, typename W> __device__ static inline void cv_store(D *p, W v)
{
    if constexpr (std::is_same<D, f16_t>::value) p->bits = lfl_dev_f32_to_f16((float)v);
    else if constexpr (std::is_same<D, bf16_t>::value) p->bits = lfl_dev_f32_to_bf16((float)v);
    else if constexpr (std::is_same<D, bool_t>::value) p->v = v != (W)0;
    else if constexpr (std::is_same<D, int32_t>::value) *p = cv_i32(v);
    else if constexpr (std::is_same<D, long long>::value) *p = cv_i64(v);
    else if constexpr (std::is_same<D, uint8_t>::value) *p = (uint8_t)cv_i32(v);
    else *p = (D)v;
}

template <typename D, typename S, typename W>
__global__ void convert_flat(D *d, const S *s, long long n)
{
    long long step = (long long)gridDim.x * blockDim.x;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += step)
        cv_store<D, W>(d + i, cv_load<W>(s + i));
}

template <typename D, typename S, typename W, typename I>
__global__ void convert_walk(D *d, const S *s, I n, lfl_walk w)
{
    I step = (I)gridDim.x * (I)blockDim.x;
    for (I i = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; i < n; i += step) {
        I od, os;
        lfl_walk_at(w, i, &od, &os);
        cv_store<D, W>(d + od, cv_load<W>(s + os));
    }
}

template <typename R, typename I> __global__ void copy_walk(R *d, const R *s, I n, lfl_walk w)
{
    I step = (I)gridDim.x * (I)blockDim.x;
    for (I i = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; i < n; i += step) {
        I od, os;
        lfl_walk_at(w, i, &od, &os);
        d[od] = s[os];
    }
}

static const int threads = 256;

template <typename R> static void launch_raw(void *d, const void *s, long long n, const lfl_walk &w)
{
    unsigned blocks = lfl_walk_blocks(n, threads);
    if (lfl_walk_fits_int(&w, n))
        LFL_LAUNCH(blocks, threads, 0, copy_walk<R, int>)((R *)d, (const R *)s, (int)n, w);
    else
        LFL_LAUNCH(blocks, threads, 0, copy_walk<R, long long>)((R *)d, (const R *)s, n, w);
}

template <typename D, typename S> static void launch_convert(void *d, const void *s, long long n, const lfl_walk &w)
{
    typedef typename std::conditional<narrow_type<D>::value && narrow_type<S>::value, float, double>::type W;
    unsigned blocks = lfl_walk_blocks(n, threads);
    if (w.nd == 1 && w.s0[0] == 1 && w.s1[0] == 1)
        LFL_LAUNCH(blocks, threads, 0, convert_flat<D, S, W>)((D *)d, (const S *)s, n);
    else if (lfl_walk_fits_int(&w, n))
        LFL_LAUNCH(blocks, threads, 0, convert_walk<D, S, W, int>)((D *)d, (const S *)s, (int)n, w);
    else
        LFL_LAUNCH(blocks, threads, 0, convert_walk<D, S, W, long long>)((D *)d, (const S *)s, n, w);
}

#define COPY_DTYPE_SWITCH(dt, T, ...)                                                                   \
    switch (dt) {                                                                                      \
    case LFL_F32: { typedef float T; __VA_ARGS__; } break;                                             \
    case LFL_F64: { typedef double T; __VA_ARGS__; } break;                                            \
    case LFL_F16: { typedef f16_t T; __VA_ARGS__; } break;                                             \
    case LFL_BF16: { typedef bf16_t T; __VA_ARGS__; } break;                                           \
    case LFL_I32: { typedef int32_t T; __VA_ARGS__; } break;                                           \
    case LFL_I64: { typedef long long T; __VA_ARGS__; } break;                                         \
    case LFL_U8: { typedef uint8_t T; __VA_ARGS__; } break;                                            \
    case LFL_BOOL: { typedef bool_t T; __VA_ARGS__; } break;                                           \
    default: return lfl_fail(LFL_ERR_UNSUPPORTED, "copy: %s -> %s is not implemented on CUDA",         \
                             lfl_dtype_name(src->dtype), lfl_dtype_name(dst->dtype));                  \
    }

extern "C" lfl_status lfl_cuda_copy(lfl_tensor *dst, const lfl_tensor *src)
{
    long long n = lfl_numel(dst);
    if (n == 0) return LFL_OK;
    LFL_TRY(lfl_cuda_use(dst->device, "copy"));
    bool flat = lfl_is_contiguous(dst) && lfl_is_contiguous(src) && lfl_numel(src) == n;
    if (dst->dtype == src->dtype && (flat || lfl_dtype_is_block(dst->dtype))) {
        if (!flat)
            return lfl_fail(LFL_ERR_UNSUPPORTED, "copy: a %s tensor copies on CUDA only between contiguous tensors",
                            lfl_dtype_name(dst->dtype));
        cudaError_t e = cudaMemcpyAsync(lfl_data(dst), lfl_data(src), lfl_dtype_nbytes(dst->dtype, n),
                                        cudaMemcpyDeviceToDevice, lfl_cuda_stream());
        if (e != cudaSuccess) return lfl_fail(LFL_ERR_DEVICE, "copy: CUDA: %s", cudaGetErrorString(e));
        return LFL_OK;
    }
    int64_t sst[LFL_MAX_DIMS];
    int lead = dst->ndim - src->ndim;
    for (int d = 0; d < dst->ndim; d++)
        sst[d] = d < lead || src->shape[d - lead] == 1 ? 0 : src->stride[d - lead];
    lfl_walk w;
    lfl_walk_init(&w, dst->ndim, dst->shape, dst->stride, sst);
    if (w.nd == 0) { // one element
        w.nd = 1;
        w.shape[0] = 1;
        w.s0[0] = w.s1[0] = 1;
    }
    if (dst->dtype == src->dtype) {
        switch (lfl_dtype_size(dst->dtype)) {
        case 1: launch_raw<uint8_t>(lfl_data(dst), lfl_data(src), n, w); break;
        case 2: launch_raw<uint16_t>(lfl_data(dst), lfl_data(src), n, w); break;
        case 4: launch_raw<uint32_t>(lfl_data(dst), lfl_data(src), n, w); break;
        case 8: launch_raw<unsigned long long>(lfl_data(dst), lfl_data(src), n, w); break;
        default:
            return lfl_fail(LFL_ERR_UNSUPPORTED, "copy: %s is not implemented on CUDA", lfl_dtype_name(dst->dtype));
        }
        return lfl_cuda_launched("copy");
    }
    COPY_DTYPE_SWITCH(dst->dtype, D,
                      COPY_DTYPE_SWITCH(src->dtype, S, launch_convert<D, S>(lfl_data(dst), lfl_data(src), n, w)));
    return lfl_cuda_launched("copy");
}
