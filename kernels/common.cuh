// What every kernel file shares: the launch macro, the element types and their
// conversions, warp/block reductions, grid sizing and the launch check.
//
// Every .cu file in kernels/ is compiled twice: by nvcc for the GPU (the CUDA
// build), and as plain C++ against the CUDA emulator (kernels/emu/, the
// LFL_CUDA=EMU build that CI runs), where each block's threads are fibers on
// the host. So a kernel file uses only what both understand:
//   - launches through LFL_LAUNCH(grid, block, smem_bytes, kernel)(args...),
//     never <<<...>>>; dynamic shared memory through LFL_SMEM(type, name);
//   - this header (never <cuda_runtime.h> or <cuda_bf16.h> directly); 16-bit
//     values as uint16_t with the conversions below (bit for bit what core's
//     lfl_f32_to_bf16 / lfl_f32_to_f16 give);
//   - full-warp shuffles (mask 0xffffffff, every live lane of the warp taking
//     part), __syncthreads reached by every live thread of the block;
//   - cuBLAS only through kernels/blas.cuh (the emulator has its own GEMMs).
#ifndef LFL_KERNELS_COMMON_CUH
#define LFL_KERNELS_COMMON_CUH

#include <stdint.h>
#ifdef LFL_CUDA_EMU
#include "emu/cuda_emu.h"
#else
#include <cuda_runtime.h>
#endif
extern "C" {
#include "ops/optable.h"
}

#ifdef LFL_CUDA_EMU
#define LFL_LAUNCH(grid, block, smem, ...) lfl_emu::launcher(__VA_ARGS__, dim3(grid), dim3(block), (size_t)(smem))
#define LFL_SMEM(type, name) type *name = reinterpret_cast<type *>(lfl_emu::dyn_smem())
#else
#define LFL_LAUNCH(grid, block, smem, ...) __VA_ARGS__<<<(grid), (block), (smem), lfl_cuda_stream()>>>
#define LFL_SMEM(type, name)                                   \
    extern __shared__ __align__(16) unsigned char lfl_smem_[]; \
    type *name = reinterpret_cast<type *>(lfl_smem_)
#endif

// the stream every kernel and cuBLAS call runs on (the legacy default stream
// for now: one place to change when lfl gets its own streams)
static inline cudaStream_t lfl_cuda_stream(void) { return (cudaStream_t)0; }

// blocks of `threads` covering n items, at least 1
static inline unsigned lfl_cuda_blocks(long long n, int threads)
{
    long long b = (n + threads - 1) / threads;
    return (unsigned)(b < 1 ? 1 : b);
}

// after a launch: LFL_OK, or the launch error named with the op
static inline lfl_status lfl_cuda_launched(const char *op)
{
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return lfl_fail(LFL_ERR_DEVICE, "%s: CUDA: %s", op, cudaGetErrorString(e));
    return LFL_OK;
}

// makes `device` current: LFL_OK or a message naming the op
static inline lfl_status lfl_cuda_use(int device, const char *op)
{
    cudaError_t e = cudaSetDevice(device);
    if (e != cudaSuccess) return lfl_fail(LFL_ERR_DEVICE, "%s: cuda:%d: %s", op, device, cudaGetErrorString(e));
    return LFL_OK;
}

// ---- element types ---------------------------------------------------------
// Storage tags for 16-bit floats; kernels template on the storage type S
// (float, double, bf16_t, f16_t) and compute in acc_t<S> (float for 16-bit).
struct bf16_t { uint16_t bits; };
struct f16_t { uint16_t bits; };

__host__ __device__ static inline float lfl_dev_bits_f32(uint32_t u)
{
    union { uint32_t u; float f; } v;
    v.u = u;
    return v.f;
}
__host__ __device__ static inline uint32_t lfl_dev_f32_bits(float f)
{
    union { uint32_t u; float f; } v;
    v.f = f;
    return v.u;
}
__host__ __device__ static inline float lfl_dev_bf16_to_f32(uint16_t h) { return lfl_dev_bits_f32((uint32_t)h << 16); }
// round to nearest even, NaN stays NaN (core/dtype.h's lfl_f32_to_bf16)
__host__ __device__ static inline uint16_t lfl_dev_f32_to_bf16(float f)
{
    uint32_t u = lfl_dev_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
// IEEE half in integer arithmetic (core/dtype.h's *_soft: what the hardware gives)
__host__ __device__ static inline float lfl_dev_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, u;
    if (e == 0x1f) {
        u = sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0);
    } else if (e) {
        u = sign | ((e + 112) << 23) | (m << 13);
    } else if (m) {
        int shift = 0;
        while (!(m & 0x400u)) { m <<= 1; shift++; }
        u = sign | ((uint32_t)(113 - shift) << 23) | ((m & 0x3ffu) << 13);
    } else {
        u = sign;
    }
    return lfl_dev_bits_f32(u);
}
__host__ __device__ static inline uint16_t lfl_dev_f32_to_f16(float f)
{
    uint32_t u = lfl_dev_f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
    int e = (int)(a >> 23) - 127;
    if (e >= -14) {
        uint32_t r = a - (112u << 23);
        r += 0xfffu + ((r >> 13) & 1u);
        return (uint16_t)(sign | (r >> 13));
    }
    if (e < -25) return sign;
    uint32_t m = (a & 0x7fffffu) | 0x800000u;
    int shift = -e - 1;
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (uint16_t)(sign | q);
}

template <typename S> struct acc_type { typedef S type; };
template <> struct acc_type<bf16_t> { typedef float type; };
template <> struct acc_type<f16_t> { typedef float type; };
template <typename S> using acc_t = typename acc_type<S>::type;

// load/store through the accumulation type
__host__ __device__ static inline float lfl_ld(const float *p) { return *p; }
__host__ __device__ static inline double lfl_ld(const double *p) { return *p; }
__host__ __device__ static inline float lfl_ld(const bf16_t *p) { return lfl_dev_bf16_to_f32(p->bits); }
__host__ __device__ static inline float lfl_ld(const f16_t *p) { return lfl_dev_f16_to_f32(p->bits); }
__host__ __device__ static inline void lfl_st(float *p, float v) { *p = v; }
__host__ __device__ static inline void lfl_st(double *p, double v) { *p = v; }
__host__ __device__ static inline void lfl_st(bf16_t *p, float v) { p->bits = lfl_dev_f32_to_bf16(v); }
__host__ __device__ static inline void lfl_st(f16_t *p, float v) { p->bits = lfl_dev_f32_to_f16(v); }

// Calls FN<S>(args...) for a float dtype: LFL_FLOAT_SWITCH(dt, op, S, body)
// runs `body` with S the storage type of dt, or fails naming the op.
#define LFL_FLOAT_SWITCH(dt, op, S, ...)                                                                 \
    switch (dt) {                                                                                        \
    case LFL_F32: { typedef float S; __VA_ARGS__; } break;                                               \
    case LFL_F64: { typedef double S; __VA_ARGS__; } break;                                              \
    case LFL_BF16: { typedef bf16_t S; __VA_ARGS__; } break;                                             \
    case LFL_F16: { typedef f16_t S; __VA_ARGS__; } break;                                               \
    default: return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: dtype %s is not implemented on CUDA", op,          \
                             lfl_dtype_name(dt));                                                        \
    }

// ---- reductions --------------------------------------------------------------
template <typename T> __device__ static inline T lfl_warp_sum(T v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
template <typename T> __device__ static inline T lfl_warp_max(T v)
{
    for (int o = 16; o > 0; o >>= 1) {
        T w = __shfl_xor_sync(0xffffffffu, v, o);
        v = w > v ? w : v;
    }
    return v;
}
// Sum over the block (blockDim.x a multiple of 32, at most 1024; every thread
// calls it); every thread gets the total. scratch: 32 values of shared memory,
// reusable after the call returns.
template <typename T> __device__ static inline T lfl_block_sum(T v, T *scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = lfl_warp_sum(v);
    __syncthreads(); // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    T t = lane < nw ? scratch[lane] : (T)0;
    return lfl_warp_sum(t);
}
template <typename T> __device__ static inline T lfl_block_max(T v, T *scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = lfl_warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    T t = lane < nw ? scratch[lane] : scratch[0];
    return lfl_warp_max(t);
}

#endif
