// CUDA device memory: the lfl_device_* hooks of core/device.h, behind a
// caching allocator. Freed blocks are kept per device in size classes and
// handed out again, so a training step allocates nothing from the driver once
// its shapes repeat (cudaMalloc/cudaFree synchronise the device and cost tens
// of microseconds each). When the driver runs out, the cache is released and
// the allocation retried once. In-use, peak and reserved bytes are the
// figures benchmarks report.
#include <pthread.h>
#include <stdio.h>
#include <map>
#include <vector>
#include "common.cuh"
extern "C" {
#include "device.h"
}

static lfl_status cuda_fail(const char *what, cudaError_t e)
{
    return lfl_fail(LFL_ERR_DEVICE, "%s: %s", what, cudaGetErrorString(e));
}

extern "C" int lfl_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
    return n;
}

extern "C" const char *lfl_device_describe(void)
{
    static char buf[512];
    int rt = 0, n = 0;
    cudaRuntimeGetVersion(&rt);
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        snprintf(buf, sizeof buf, "CUDA %d.%d built, no usable device (%s)", rt / 1000, (rt % 1000) / 10,
                 cudaGetErrorString(e));
        return buf;
    }
    cudaDeviceProp p;
    cudaGetDeviceProperties(&p, 0);
    snprintf(buf, sizeof buf, "CUDA %d.%d, %d device(s): %s (sm_%d%d, %.0f GiB)", rt / 1000, (rt % 1000) / 10, n,
             p.name, p.major, p.minor, p.totalGlobalMem / 1073741824.0);
    return buf;
}

// ---- the cache ----------------------------------------------------------------
enum { MAX_DEVICES = 16 };
struct DeviceCache {
    std::multimap<size_t, void *> free_blocks; // class size -> block
    std::map<void *, size_t> live;             // block -> class size
    size_t in_use, peak, reserved;
};
static DeviceCache caches[MAX_DEVICES];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

// Size classes: multiples of 512 B up to 1 MiB, then steps of 1/8 of the
// power of two below (at most 12.5% waste), so blocks of nearby sizes are
// shared between steps whose shapes differ a little (packed sequences).
static size_t size_class(size_t n)
{
    if (n <= ((size_t)1 << 20)) return (n + 511) & ~(size_t)511;
    size_t p = (size_t)1 << (63 - __builtin_clzll(n)), step = p / 8;
    return (n + step - 1) / step * step;
}

static void release_cached(int device)
{
    DeviceCache &c = caches[device];
    for (auto &kv : c.free_blocks) {
        cudaFree(kv.second);
        c.reserved -= kv.first;
    }
    c.free_blocks.clear();
}

extern "C" lfl_status lfl_device_alloc(int device, size_t nbytes, void **ptr)
{
    if (device < 0 || device >= MAX_DEVICES) return lfl_fail(LFL_ERR_DEVICE, "cuda:%d: no such device", device);
    cudaError_t e = cudaSetDevice(device);
    if (e != cudaSuccess) return cuda_fail("cudaSetDevice", e);
    size_t cls = size_class(nbytes ? nbytes : 1);
    pthread_mutex_lock(&cache_lock);
    DeviceCache &c = caches[device];
    // the smallest cached block of this class or up to one class step larger
    auto it = c.free_blocks.lower_bound(cls);
    if (it != c.free_blocks.end() && it->first <= cls + cls / 8) {
        cls = it->first;
        *ptr = it->second;
        c.free_blocks.erase(it);
    } else {
        e = cudaMalloc(ptr, cls);
        if (e == cudaErrorMemoryAllocation) {
            cudaGetLastError(); // clear it: the retry decides
            release_cached(device);
            e = cudaMalloc(ptr, cls);
        }
        if (e != cudaSuccess) {
            size_t used = c.in_use, held = c.reserved;
            pthread_mutex_unlock(&cache_lock);
            return lfl_fail(LFL_ERR_DEVICE, "cuda:%d: out of memory allocating %.1f MiB (%.1f MiB in use by lfl, %.1f "
                            "MiB reserved): %s", device, nbytes / 1048576.0, used / 1048576.0, held / 1048576.0,
                            cudaGetErrorString(e));
        }
        c.reserved += cls;
    }
    c.live[*ptr] = cls;
    c.in_use += cls;
    if (c.in_use > c.peak) c.peak = c.in_use;
    pthread_mutex_unlock(&cache_lock);
    return LFL_OK;
}

extern "C" void lfl_device_free(int device, void *ptr)
{
    if (!ptr || device < 0 || device >= MAX_DEVICES) return;
    pthread_mutex_lock(&cache_lock);
    DeviceCache &c = caches[device];
    auto it = c.live.find(ptr);
    if (it != c.live.end()) {
        c.in_use -= it->second;
        c.free_blocks.insert(std::make_pair(it->second, ptr));
        c.live.erase(it);
    }
    pthread_mutex_unlock(&cache_lock);
}

extern "C" lfl_status lfl_device_memory(int device, lfl_device_mem *m)
{
    if (device < 0 || device >= MAX_DEVICES) return lfl_fail(LFL_ERR_DEVICE, "cuda:%d: no such device", device);
    pthread_mutex_lock(&cache_lock);
    DeviceCache &c = caches[device];
    m->in_use = c.in_use, m->peak = c.peak, m->reserved = c.reserved;
    pthread_mutex_unlock(&cache_lock);
    m->total = m->free = 0;
    if (cudaSetDevice(device) == cudaSuccess) {
        size_t f = 0, t = 0;
        if (cudaMemGetInfo(&f, &t) == cudaSuccess) m->free = f, m->total = t;
        else cudaGetLastError();
    }
    return LFL_OK;
}

extern "C" void lfl_device_reset_peak(int device)
{
    if (device < 0 || device >= MAX_DEVICES) return;
    pthread_mutex_lock(&cache_lock);
    caches[device].peak = caches[device].in_use;
    pthread_mutex_unlock(&cache_lock);
}

extern "C" void lfl_device_empty_cache(int device)
{
    if (device < 0 || device >= MAX_DEVICES) return;
    pthread_mutex_lock(&cache_lock);
    if (cudaSetDevice(device) == cudaSuccess) release_cached(device);
    pthread_mutex_unlock(&cache_lock);
}

extern "C" lfl_status lfl_device_memset(int device, void *ptr, int v, size_t nbytes)
{
    cudaSetDevice(device);
    cudaError_t e = cudaMemset(ptr, v, nbytes);
    return e == cudaSuccess ? LFL_OK : cuda_fail("cudaMemset", e);
}

extern "C" lfl_status lfl_device_memcpy(int device, void *dst, const void *src, size_t nbytes, int kind)
{
    static const cudaMemcpyKind kinds[] = {cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice};
    cudaSetDevice(device);
    cudaError_t e = cudaMemcpy(dst, src, nbytes, kinds[kind]);
    return e == cudaSuccess ? LFL_OK : cuda_fail("cudaMemcpy", e);
}
