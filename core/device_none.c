/* Device hooks for builds without CUDA: every device request is an error. */
#include "device.h"

#ifndef LFL_HAVE_CUDA
int lfl_device_count(void) { return 0; }
const char *lfl_device_describe(void) { return "CUDA: not built (CPU-only build)"; }
lfl_status lfl_device_alloc(int device, size_t nbytes, void **ptr)
{
    (void)nbytes; (void)ptr;
    return lfl_fail(LFL_ERR_DEVICE, "cuda:%d requested, but lfl was built without CUDA", device);
}
void lfl_device_free(int device, void *ptr) { (void)device; (void)ptr; }
lfl_status lfl_device_memset(int device, void *ptr, int v, size_t nbytes)
{
    (void)ptr; (void)v; (void)nbytes;
    return lfl_fail(LFL_ERR_DEVICE, "cuda:%d requested, but lfl was built without CUDA", device);
}
lfl_status lfl_device_memcpy(int device, void *dst, const void *src, size_t nbytes, int kind)
{
    (void)dst; (void)src; (void)nbytes; (void)kind;
    return lfl_fail(LFL_ERR_DEVICE, "cuda:%d requested, but lfl was built without CUDA", device);
}
lfl_status lfl_device_memory(int device, lfl_device_mem *m)
{
    (void)m;
    return lfl_fail(LFL_ERR_DEVICE, "cuda:%d requested, but lfl was built without CUDA", device);
}
void lfl_device_reset_peak(int device) { (void)device; }
void lfl_device_empty_cache(int device) { (void)device; }
#endif
