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
#endif

#ifndef LFL_HAVE_CUDA
#include "kernels.h"
lfl_status lfl_cuda_binary(int kind, const lfl_tensor *a, const lfl_tensor *b, lfl_tensor *o)
{
    (void)kind; (void)b; (void)o;
    return lfl_fail(LFL_ERR_DEVICE, "cuda:%d tensor, but lfl was built without CUDA", a->device);
}
lfl_status lfl_cuda_sgemm(int device, bool ta, bool tb, int m, int n, int k, float alpha,
                          const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    (void)ta; (void)tb; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda; (void)b;
    (void)ldb; (void)beta; (void)c; (void)ldc;
    return lfl_fail(LFL_ERR_DEVICE, "cuda:%d tensor, but lfl was built without CUDA", device);
}
#endif
