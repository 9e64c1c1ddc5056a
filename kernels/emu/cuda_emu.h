// The CUDA emulator's header: what kernels/common.cuh takes instead of
// <cuda_runtime.h> in the LFL_CUDA=EMU build. It gives the kernel files the
// subset of CUDA they use (qualifiers, dim3, threadIdx & co., barriers, warp
// shuffles, atomics, intrinsics, the runtime calls, cuBLAS's types), so the
// same source that nvcc compiles for the GPU runs on the host: each block's
// threads are fibers, switched at barriers and shuffles (cuda_emu.cc).
//
// What it checks beyond running the code: launch bounds (threads per block,
// grid size, shared memory), barriers that not every live thread reaches
// (reported as a deadlock naming the kernel's launch), host code that touches
// device memory (device memory is an arena the host may not read outside
// launches and copies: a SIGSEGV instead of a silent CPU fallback), and code
// that needs a barrier it lacks (threads of a block run in forward order on
// even launches and in reverse on odd ones, so a missing __syncthreads shows).
// What it cannot show: speed, memory-model races within a phase, bank
// conflicts, register pressure. Those need a real GPU.
#ifndef LFL_KERNELS_EMU_CUDA_EMU_H
#define LFL_KERNELS_EMU_CUDA_EMU_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- qualifiers -------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

// ---- types ----------------------------------------------------------------------
struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
typedef enum {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevice = 101,
    cudaErrorNotReady = 600,
    cudaErrorLaunchFailure = 719,
} cudaError_t;
typedef struct lfl_emu_stream *cudaStream_t;
// events: every launch and copy is done when its call returns, so an event is
// complete as soon as it is recorded (cudaEventQuery never says not ready)
typedef struct lfl_emu_event *cudaEvent_t;
enum { cudaEventDefault = 0, cudaEventDisableTiming = 2 };
typedef enum { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice,
               cudaMemcpyDefault } cudaMemcpyKind;
typedef enum { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 } cudaFuncAttribute;
struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem, sharedMemPerBlock, sharedMemPerBlockOptin;
    int major, minor, multiProcessorCount, warpSize, maxThreadsPerBlock;
};

// ---- the runtime (cuda_emu.cc) ----------------------------------------------------
cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDevice(int *d);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d);
cudaError_t cudaRuntimeGetVersion(int *v);
cudaError_t cudaDriverGetVersion(int *v);
cudaError_t cudaMalloc(void **p, size_t n);
cudaError_t cudaFree(void *p);
cudaError_t cudaMallocHost(void **p, size_t n);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b);
cudaError_t cudaMemset(void *p, int v, size_t n);
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s = 0);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind k);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind k, cudaStream_t s = 0);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = 0);
cudaError_t cudaEventQuery(cudaEvent_t e);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char *cudaGetErrorString(cudaError_t e);

namespace lfl_emu {
struct Thread {
    uint3 tid;
    int linear, lane, warp, state;
};
extern Thread *g_cur;
extern uint3 g_block;
extern dim3 g_bdim, g_gdim;
void *dyn_smem(void);
void block_barrier(void);
void warp_barrier(void);
uint64_t *warp_slots(void); // this warp's 32 exchange slots
cudaError_t set_max_smem(const void *fn, int bytes);
// runs body(ctx) for every thread of every block; sets the last error on a bad launch
void run_grid(const void *fn, dim3 g, dim3 b, size_t smem, void (*body)(void *), void *ctx);
// device memory readable by the host while alive (the GEMMs, copies)
struct Access {
    Access();
    ~Access();
};
} // namespace lfl_emu

template <typename T> static inline cudaError_t cudaFuncSetAttribute(T *fn, cudaFuncAttribute, int v)
{
    return lfl_emu::set_max_smem((const void *)fn, v);
}

// ---- built-in variables --------------------------------------------------------------
#define threadIdx (lfl_emu::g_cur->tid)
#define blockIdx (lfl_emu::g_block)
#define blockDim (lfl_emu::g_bdim)
#define gridDim (lfl_emu::g_gdim)
static const int warpSize = 32;

// ---- barriers and warp exchange ---------------------------------------------------------
static inline void __syncthreads(void) { lfl_emu::block_barrier(); }
static inline void __syncwarp(unsigned mask = 0xffffffffu) { (void)mask; lfl_emu::warp_barrier(); }
static inline void __threadfence(void) {}
static inline void __threadfence_block(void) {}

namespace lfl_emu {
// every live lane writes v, then reads lane src's value
template <typename T> static inline T exchange(T v, int src)
{
    static_assert(sizeof(T) <= 8, "warp shuffles of at most 8 bytes");
    uint64_t *s = warp_slots();
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof v);
    s[g_cur->lane] = bits;
    warp_barrier();
    bits = s[src & 31];
    warp_barrier();
    T r;
    memcpy(&r, &bits, sizeof r);
    return r;
}
} // namespace lfl_emu
template <typename T> static inline T __shfl_sync(unsigned, T v, int src, int width = 32)
{
    int lane = lfl_emu::g_cur->lane;
    return lfl_emu::exchange(v, (lane & ~(width - 1)) + (src & (width - 1)));
}
template <typename T> static inline T __shfl_xor_sync(unsigned, T v, int m, int width = 32)
{
    int lane = lfl_emu::g_cur->lane, src = lane ^ m;
    if ((src & ~(width - 1)) != (lane & ~(width - 1))) src = lane;
    return lfl_emu::exchange(v, src);
}
template <typename T> static inline T __shfl_down_sync(unsigned, T v, unsigned d, int width = 32)
{
    int lane = lfl_emu::g_cur->lane, src = lane + (int)d;
    if ((src & ~(width - 1)) != (lane & ~(width - 1))) src = lane;
    return lfl_emu::exchange(v, src);
}
template <typename T> static inline T __shfl_up_sync(unsigned, T v, unsigned d, int width = 32)
{
    int lane = lfl_emu::g_cur->lane, src = lane - (int)d;
    if (src < 0 || (src & ~(width - 1)) != (lane & ~(width - 1))) src = lane;
    return lfl_emu::exchange(v, src);
}
static inline unsigned __ballot_sync(unsigned, int pred)
{
    uint64_t *s = lfl_emu::warp_slots();
    s[lfl_emu::g_cur->lane] = pred ? 1 : 0;
    lfl_emu::warp_barrier();
    unsigned r = 0;
    for (int i = 0; i < 32; i++) r |= (s[i] == 1 ? 1u : 0u) << i;
    lfl_emu::warp_barrier();
    return r;
}
static inline int __any_sync(unsigned m, int pred) { return __ballot_sync(m, pred) != 0; }
static inline int __all_sync(unsigned m, int pred)
{
    return __ballot_sync(m, !pred) == 0;
}

// ---- atomics (threads switch only at barriers: plain read-modify-write is atomic) -------
template <typename T> static inline T atomicAdd(T *p, T v) { T o = *p; *p = o + v; return o; }
template <typename T> static inline T atomicSub(T *p, T v) { T o = *p; *p = o - v; return o; }
template <typename T> static inline T atomicMax(T *p, T v) { T o = *p; if (v > o) *p = v; return o; }
template <typename T> static inline T atomicMin(T *p, T v) { T o = *p; if (v < o) *p = v; return o; }
template <typename T> static inline T atomicExch(T *p, T v) { T o = *p; *p = v; return o; }
template <typename T> static inline T atomicCAS(T *p, T cmp, T v) { T o = *p; if (o == cmp) *p = v; return o; }

// ---- intrinsics and math ---------------------------------------------------------------
// glibc declares these names itself: they map to the libm functions
#define __expf expf
#define __logf logf
#define __sinf sinf
#define __cosf cosf
#define __powf powf
#define __tanhf tanhf
static inline float __fdividef(float a, float b) { return a / b; }
static inline float __frcp_rn(float x) { return 1.0f / x; }
static inline float __saturatef(float x) { return x < 0 ? 0.0f : x > 1 ? 1.0f : x; }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
// the _rn forms are never contracted into an fma (the emulator's build keeps them apart too)
static inline float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
static inline float __fadd_rn(float a, float b) { volatile float r = a + b; return r; }
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
static inline float __int_as_float(int x) { float f; memcpy(&f, &x, 4); return f; }
static inline int __float_as_int(float f) { int x; memcpy(&x, &f, 4); return x; }
static inline float __uint_as_float(unsigned x) { float f; memcpy(&f, &x, 4); return f; }
static inline unsigned __float_as_uint(float f) { unsigned x; memcpy(&x, &f, 4); return x; }
static inline double __longlong_as_double(long long x) { double d; memcpy(&d, &x, 8); return d; }
static inline long long __double_as_longlong(double d) { long long x; memcpy(&x, &d, 8); return x; }
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
static inline int __ffs(int x) { return __builtin_ffs(x); }
template <typename T> static inline T __ldg(const T *p) { return *p; }
template <typename A, typename B> static inline typename std::common_type<A, B>::type min(A a, B b)
{
    return a < b ? a : b;
}
template <typename A, typename B> static inline typename std::common_type<A, B>::type max(A a, B b)
{
    return a > b ? a : b;
}

// ---- launching -----------------------------------------------------------------
namespace lfl_emu {
template <typename... P> struct Launch {
    void (*fn)(P...);
    dim3 g, b;
    size_t smem;
    template <typename... A> void operator()(A &&...a) const
    {
        static_assert(sizeof...(A) == sizeof...(P), "kernel launched with the wrong number of arguments");
        std::tuple<typename std::decay<P>::type...> args(static_cast<typename std::decay<P>::type>(a)...);
        struct Ctx {
            void (*fn)(P...);
            std::tuple<typename std::decay<P>::type...> *args;
        } ctx = {fn, &args};
        run_grid((const void *)fn, g, b, smem,
                 [](void *p) {
                     Ctx *c = (Ctx *)p;
                     std::apply(c->fn, *c->args); // each thread gets its own copies of the parameters
                 },
                 &ctx);
    }
};
template <typename... P> static inline Launch<P...> launcher(void (*fn)(P...), dim3 g, dim3 b, size_t smem)
{
    return Launch<P...>{fn, g, b, smem};
}
} // namespace lfl_emu

// ---- cuBLAS's types and the emulator's GEMMs ---------------------------------------------
typedef struct lfl_emu_cublas *cublasHandle_t;
typedef enum { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_INVALID_VALUE = 7, CUBLAS_STATUS_NOT_SUPPORTED = 15 }
    cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum { CUDA_R_32F = 0, CUDA_R_64F = 1, CUDA_R_16F = 2, CUDA_R_8I = 3, CUDA_R_32I = 10, CUDA_R_16BF = 14 }
    cudaDataType;
typedef enum { CUBLAS_COMPUTE_32F = 68, CUBLAS_COMPUTE_32F_FAST_TF32 = 77, CUBLAS_COMPUTE_64F = 70,
               CUBLAS_COMPUTE_32I = 72 } cublasComputeType_t;
typedef enum { CUBLAS_GEMM_DEFAULT = -1 } cublasGemmAlgo_t;

namespace lfl_emu {
cublasStatus_t cublas_create(cublasHandle_t *h);
cublasStatus_t cublas_set_stream(cublasHandle_t h, cudaStream_t s);
cublasStatus_t cublas_sgemm(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const float *,
                            const float *, int, const float *, int, const float *, float *, int);
cublasStatus_t cublas_dgemm(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const double *,
                            const double *, int, const double *, int, const double *, double *, int);
cublasStatus_t cublas_gemm_ex(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                              const void *, cudaDataType, int, const void *, cudaDataType, int, const void *, void *,
                              cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
cublasStatus_t cublas_gemm_strided_batched_ex(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                              const void *, const void *, cudaDataType, int, long long,
                                              const void *, cudaDataType, int, long long, const void *, void *,
                                              cudaDataType, int, long long, int, cublasComputeType_t,
                                              cublasGemmAlgo_t);
// fills kernels/blas.cuh's table (a template so this header need not know it)
template <typename Api> static inline Api cublas_api(void)
{
    Api a;
    a.create = cublas_create;
    a.set_stream = cublas_set_stream;
    a.sgemm = cublas_sgemm;
    a.dgemm = cublas_dgemm;
    a.gemm_ex = cublas_gemm_ex;
    a.gemm_strided_batched_ex = cublas_gemm_strided_batched_ex;
    return a;
}
} // namespace lfl_emu

#endif
