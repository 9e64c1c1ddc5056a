/* Storage lifetime, tensor creation and element access. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "autograd.h"
#include "device.h"
#include "tensor.h"

static atomic_size_t mem_current, mem_peak;

size_t lfl_mem_current(void) { return atomic_load(&mem_current); }
size_t lfl_mem_peak(void) { return atomic_load(&mem_peak); }

/* The heap keeps what is freed (tune_malloc below); after a one-off release of
 * much memory (ZeRO-3 partitioning the model it loaded whole) the free pages go
 * back to the system, so that the rank's resident size is what it holds. */
void lfl_mem_trim(void) { malloc_trim(0); }

static void mem_add(size_t n)
{
    size_t now = atomic_fetch_add(&mem_current, n) + n;
    size_t peak = atomic_load(&mem_peak);
    while (now > peak && !atomic_compare_exchange_weak(&mem_peak, &peak, now)) {}
}

/* Activations of the same sizes come and go every step. glibc serves big
 * blocks with fresh mmaps (page faults on every touch) and trims freed heap;
 * keeping them in the heap lets the next step reuse warm pages. Trimming is
 * off altogether (-1): a threshold, even 1 GB, is passed whenever a step
 * without gradient checkpointing frees its ~2 GB of activations, and then the
 * next step faulted every page in again (2 M faults in 3 LoRA steps of
 * SmolLM2, 8% of the time in the kernel's page clearing). The process keeps
 * its peak; that is the figure we report anyway. */
static void tune_malloc(void)
{
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, -1);
}

lfl_storage *lfl_storage_new(size_t nbytes, int device)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, tune_malloc);
    lfl_storage *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->refcount = 1;
    s->device = device;
    s->nbytes = nbytes;
    if (nbytes > SIZE_MAX - 63) { free(s); return NULL; } /* the rounding below would wrap */
    if (device == LFL_CPU) {
        s->kind = LFL_STORAGE_HEAP;
        /* 64-byte alignment keeps AVX-512 loads aligned at offset 0 */
        size_t n = (nbytes + 63) & ~(size_t)63;
        s->data = n ? aligned_alloc(64, n) : NULL;
        if (n && !s->data) { free(s); return NULL; }
        mem_add(n);
    } else {
        s->kind = LFL_STORAGE_DEVICE;
        if (lfl_device_alloc(device, nbytes, &s->data) != LFL_OK) { free(s); return NULL; }
    }
    return s;
}

lfl_storage *lfl_storage_mmap(const char *path, size_t offset, size_t len, lfl_status *st)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) { *st = lfl_fail(LFL_ERR_IO, "%s: cannot open: %m", path); return NULL; }
    struct stat sb;
    if (fstat(fd, &sb) != 0) { close(fd); *st = lfl_fail(LFL_ERR_IO, "%s: cannot stat: %m", path); return NULL; }
    if (len == (size_t)-1) len = offset <= (size_t)sb.st_size ? (size_t)sb.st_size - offset : 0;
    if (offset + len > (size_t)sb.st_size) {
        close(fd);
        *st = lfl_fail(LFL_ERR_FORMAT, "%s: region [%zu, %zu) lies past the end of the file (%lld bytes)",
                       path, offset, offset + len, (long long)sb.st_size);
        return NULL;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t start = offset & ~(page - 1);
    size_t maplen = len + (offset - start);
    /* private and writable: pages stay shared with the page cache until an
     * in-place op writes one, which then gets its own copy (the file is never
     * written); read-only pages would turn such a write into a crash */
    void *base = maplen ? mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, (off_t)start) : NULL;
    close(fd);
    if (base == MAP_FAILED) { *st = lfl_fail(LFL_ERR_IO, "%s: mmap failed: %m", path); return NULL; }
    lfl_storage *s = calloc(1, sizeof *s);
    s->refcount = 1;
    s->kind = LFL_STORAGE_MMAP;
    s->device = LFL_CPU;
    s->map_base = base;
    s->map_len = maplen;
    s->data = base ? (char *)base + (offset - start) : NULL;
    s->nbytes = len;
    *st = LFL_OK;
    return s;
}

lfl_storage *lfl_storage_external(void *data, size_t nbytes, void (*release)(void *), void *ctx)
{
    lfl_storage *s = calloc(1, sizeof *s);
    s->refcount = 1;
    s->kind = LFL_STORAGE_EXTERNAL;
    s->device = LFL_CPU;
    s->data = data;
    s->nbytes = nbytes;
    s->release = release;
    s->release_ctx = ctx;
    return s;
}

void lfl_storage_retain(lfl_storage *s) { __atomic_add_fetch(&s->refcount, 1, __ATOMIC_RELAXED); }

void lfl_storage_release(lfl_storage *s)
{
    if (!s || __atomic_sub_fetch(&s->refcount, 1, __ATOMIC_ACQ_REL) != 0) return;
    switch (s->kind) {
    case LFL_STORAGE_HEAP:
        free(s->data);
        atomic_fetch_sub(&mem_current, (s->nbytes + 63) & ~(size_t)63);
        break;
    case LFL_STORAGE_MMAP:
        if (s->map_base) munmap(s->map_base, s->map_len);
        break;
    case LFL_STORAGE_DEVICE:
        lfl_device_free(s->device, s->data);
        break;
    case LFL_STORAGE_EXTERNAL:
        if (s->release) s->release(s->release_ctx);
        break;
    }
    free(s);
}

lfl_tensor *lfl_tensor_retain(lfl_tensor *t)
{
    if (t) __atomic_add_fetch(&t->refcount, 1, __ATOMIC_RELAXED);
    return t;
}

void lfl_tensor_release(lfl_tensor *t)
{
    if (!t || __atomic_sub_fetch(&t->refcount, 1, __ATOMIC_ACQ_REL) != 0) return;
    lfl_storage_release(t->storage);
    lfl_qstate_release(t->quant);
    lfl_tensor_release(t->grad);
    if (t->grad_fn) lfl_node_release(t->grad_fn);
    free(t);
}

static void set_contiguous_strides(lfl_tensor *t)
{
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) { t->stride[d] = s; s *= t->shape[d]; }
}

const char *lfl_shape_fmt(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, d ? ",%lld" : "%lld", (long long)shape[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

lfl_status lfl_shape_numel(const char *op, int ndim, const int64_t *shape, int64_t *out)
{
    char b[256];
    if (ndim < 0 || ndim > LFL_MAX_DIMS)
        return lfl_fail(LFL_ERR_ARG, "%s: %d dims (at most %d)", op, ndim, LFL_MAX_DIMS);
    int64_t n = 1;
    bool empty = false;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return lfl_fail(LFL_ERR_ARG, "%s: negative size %lld in dim %d of shape %s", op, (long long)shape[d], d + 1,
                            lfl_shape_fmt(ndim, shape, b, sizeof b));
        if (shape[d] == 0) empty = true;
        else if (__builtin_mul_overflow(n, shape[d], &n))
            return lfl_fail(LFL_ERR_ARG, "%s: shape %s: element count overflows (more than %lld)", op,
                            lfl_shape_fmt(ndim, shape, b, sizeof b), (long long)INT64_MAX);
    }
    *out = empty ? 0 : n;
    return LFL_OK;
}

lfl_status lfl_shape_nbytes(const char *op, int ndim, const int64_t *shape, lfl_dtype dt, size_t *out)
{
    int64_t n;
    LFL_TRY(lfl_shape_numel(op, ndim, shape, &n));
    if (n % lfl_dtypes[dt].block)
        return lfl_fail(LFL_ERR_ARG, "%s: %lld elements is not a multiple of the %s block (%d)", op,
                        (long long)n, lfl_dtype_name(dt), lfl_dtypes[dt].block);
    size_t bytes;
    /* SIZE_MAX - 63 leaves room for the allocator's 64-byte rounding */
    if (__builtin_mul_overflow((size_t)(n / lfl_dtypes[dt].block), (size_t)lfl_dtypes[dt].block_bytes, &bytes) ||
        bytes > SIZE_MAX - 63) {
        char b[256];
        return lfl_fail(LFL_ERR_ARG, "%s: shape %s of %s: byte count overflows", op,
                        lfl_shape_fmt(ndim, shape, b, sizeof b), lfl_dtype_name(dt));
    }
    *out = bytes;
    return LFL_OK;
}

/* the header over checked shape: no stride product can wrap */
static lfl_tensor *header_over(lfl_storage *s, size_t offset, int ndim, const int64_t *shape, lfl_dtype dt)
{
    lfl_tensor *t = calloc(1, sizeof *t);
    LFL_ASSERT(t);
    t->refcount = 1;
    t->storage = s;
    lfl_storage_retain(s);
    t->offset = offset;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    t->dtype = dt;
    t->device = s->device;
    set_contiguous_strides(t);
    return t;
}

lfl_status lfl_tensor_from_storage(const char *op, lfl_storage *s, size_t offset, int ndim,
                                   const int64_t *shape, lfl_dtype dt, lfl_tensor **out)
{
    size_t nbytes;
    LFL_TRY(lfl_shape_nbytes(op, ndim, shape, dt, &nbytes));
    if (offset > s->nbytes || nbytes > s->nbytes - offset) {
        char b[256];
        return lfl_fail(LFL_ERR_ARG, "%s: shape %s of %s needs %zu bytes from byte %zu, but the storage holds %zu",
                        op, lfl_shape_fmt(ndim, shape, b, sizeof b), lfl_dtype_name(dt), nbytes, offset, s->nbytes);
    }
    *out = header_over(s, offset, ndim, shape, dt);
    return LFL_OK;
}

lfl_status lfl_empty(int ndim, const int64_t *shape, lfl_dtype dt, int device, lfl_tensor **out)
{
    size_t nbytes;
    LFL_TRY(lfl_shape_nbytes("tensor", ndim, shape, dt, &nbytes));
    lfl_storage *s = lfl_storage_new(nbytes, device);
    if (!s && device != LFL_CPU) return LFL_ERR_DEVICE; /* lfl_device_alloc said why */
    if (!s) return lfl_fail(LFL_ERR_MEM, "tensor: cannot allocate %zu bytes", nbytes);
    *out = header_over(s, 0, ndim, shape, dt);
    lfl_storage_release(s);
    return LFL_OK;
}

/* ZeRO-3 partitions a parameter in place: the tensor object stays the one the
 * model, the optimizer's groups and the adapters hold, only its data goes (an
 * empty [0] tensor, so that a read before the next gather is a shape error,
 * never a read of freed memory) and comes back as fresh storage. */
lfl_status lfl_tensor_drop_data(lfl_tensor *t)
{
    if (t->grad_fn) return lfl_fail(LFL_ERR_ARG, "tensor: drop_data: only a leaf (a parameter) can give up its data");
    if (t->device != LFL_CPU) return lfl_fail(LFL_ERR_ARG, "tensor: drop_data: a CPU tensor is needed");
    lfl_storage *s = lfl_storage_new(0, LFL_CPU);
    if (!s) return lfl_fail(LFL_ERR_MEM, "tensor: out of memory");
    lfl_storage_release(t->storage);
    t->storage = s;
    t->offset = 0;
    t->ndim = 1;
    t->shape[0] = 0;
    t->stride[0] = 1;
    return LFL_OK;
}

lfl_status lfl_tensor_realloc(lfl_tensor *t, int ndim, const int64_t *shape)
{
    if (t->grad_fn) return lfl_fail(LFL_ERR_ARG, "tensor: realloc: only a leaf (a parameter) can take new data");
    if (t->device != LFL_CPU) return lfl_fail(LFL_ERR_ARG, "tensor: realloc: a CPU tensor is needed");
    size_t nbytes;
    LFL_TRY(lfl_shape_nbytes("tensor realloc", ndim, shape, t->dtype, &nbytes));
    lfl_storage *s = lfl_storage_new(nbytes, LFL_CPU);
    if (!s) return lfl_fail(LFL_ERR_MEM, "tensor: realloc: cannot allocate %zu bytes", nbytes);
    lfl_storage_release(t->storage);
    t->storage = s;
    t->offset = 0;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    set_contiguous_strides(t);
    return LFL_OK;
}

lfl_status lfl_zeros(int ndim, const int64_t *shape, lfl_dtype dt, int device, lfl_tensor **out)
{
    LFL_TRY(lfl_empty(ndim, shape, dt, device, out));
    if ((*out)->storage->nbytes == 0) return LFL_OK;
    if (device == LFL_CPU) memset(lfl_data(*out), 0, (*out)->storage->nbytes);
    else LFL_TRY(lfl_device_memset(device, lfl_data(*out), 0, (*out)->storage->nbytes));
    return LFL_OK;
}

lfl_status lfl_full(int ndim, const int64_t *shape, double v, lfl_dtype dt, int device, lfl_tensor **out)
{
    LFL_TRY(lfl_empty(ndim, shape, dt, device, out));
    lfl_status st = lfl_fill_(*out, v);
    if (st) { lfl_tensor_release(*out); *out = NULL; }
    return st;
}

lfl_status lfl_empty_like(const lfl_tensor *t, lfl_tensor **out)
{
    return lfl_empty(t->ndim, t->shape, t->dtype, t->device, out);
}

lfl_status lfl_zeros_like(const lfl_tensor *t, lfl_tensor **out)
{
    return lfl_zeros(t->ndim, t->shape, t->dtype, t->device, out);
}

lfl_status lfl_arange(double start, double end, double step, lfl_dtype dt, lfl_tensor **out)
{
    if (step == 0) return lfl_fail(LFL_ERR_ARG, "arange: step is 0");
    double span = (end - start) / step;
    if (!(span < 9.2e18)) /* also NaN: a bound that is NaN or inf */
        return lfl_fail(LFL_ERR_ARG, "arange: [%g, %g) in steps of %g has too many elements", start, end, step);
    int64_t n = span > 0 ? (int64_t)ceil(span - 1e-9) : 0;
    LFL_TRY(lfl_empty(1, &n, dt, LFL_CPU, out));
    for (int64_t i = 0; i < n; i++) lfl_set(*out, i, start + (double)i * step);
    return LFL_OK;
}

lfl_status lfl_eye(int64_t n, int64_t m, lfl_dtype dt, lfl_tensor **out)
{
    int64_t shape[2] = {n, m};
    LFL_TRY(lfl_zeros(2, shape, dt, LFL_CPU, out));
    for (int64_t i = 0; i < n && i < m; i++) lfl_set(*out, i * m + i, 1.0);
    return LFL_OK;
}

int64_t lfl_numel(const lfl_tensor *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

bool lfl_is_contiguous(const lfl_tensor *t)
{
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != s) return false;
        s *= t->shape[d];
    }
    return true;
}

bool lfl_same_shape(const lfl_tensor *a, const lfl_tensor *b)
{
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return false;
    return true;
}

/* Storage element offset of the i-th element in row-major logical order. */
static int64_t elem_offset(const lfl_tensor *t, int64_t i)
{
    int64_t off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t sz = t->shape[d];
        off += (i % sz) * t->stride[d];
        i /= sz;
    }
    return off;
}

double lfl_get(const lfl_tensor *t, int64_t i)
{
    LFL_ASSERT(t->device == LFL_CPU && !lfl_dtype_is_block(t->dtype));
    const char *p = (const char *)lfl_data(t) + elem_offset(t, i) * (int64_t)lfl_dtype_size(t->dtype);
    switch (t->dtype) {
    case LFL_F32: return *(const float *)p;
    case LFL_F64: return *(const double *)p;
    case LFL_F16: return lfl_f16_to_f32(*(const uint16_t *)p);
    case LFL_BF16: return lfl_bf16_to_f32(*(const uint16_t *)p);
    case LFL_I32: return *(const int32_t *)p;
    case LFL_I64: return (double)*(const int64_t *)p;
    case LFL_U8: case LFL_BOOL: return *(const uint8_t *)p;
    default: LFL_ASSERT(0); return 0;
    }
}

void lfl_set(lfl_tensor *t, int64_t i, double v)
{
    LFL_ASSERT(t->device == LFL_CPU && !lfl_dtype_is_block(t->dtype));
    char *p = (char *)lfl_data(t) + elem_offset(t, i) * (int64_t)lfl_dtype_size(t->dtype);
    switch (t->dtype) {
    case LFL_F32: *(float *)p = (float)v; break;
    case LFL_F64: *(double *)p = v; break;
    case LFL_F16: *(uint16_t *)p = lfl_f32_to_f16((float)v); break;
    case LFL_BF16: *(uint16_t *)p = lfl_f32_to_bf16((float)v); break;
    case LFL_I32: *(int32_t *)p = (int32_t)v; break;
    case LFL_I64: *(int64_t *)p = (int64_t)v; break;
    case LFL_U8: *(uint8_t *)p = (uint8_t)v; break;
    case LFL_BOOL: *(uint8_t *)p = v != 0; break;
    default: LFL_ASSERT(0);
    }
}

const char *lfl_shape_str(const lfl_tensor *t, char *buf, size_t n)
{
    return lfl_shape_fmt(t->ndim, t->shape, buf, n);
}

lfl_status lfl_norm_dim(const char *op, int dim, int ndim, int *out)
{
    int d = dim < 0 ? dim + ndim : dim;
    if (d < 0 || d >= ndim)
        return lfl_fail(LFL_ERR_ARG, "%s: dim %d out of range for a %d-dim tensor", op,
                        dim < 0 ? dim : dim + 1, ndim);
    *out = d;
    return LFL_OK;
}

lfl_status lfl_check_same_device(const char *op, const lfl_tensor *a, const lfl_tensor *b)
{
    if (a->device != b->device)
        return lfl_fail(LFL_ERR_DEVICE, "%s: tensors on different devices (%s vs %s)", op,
                        a->device == LFL_CPU ? "cpu" : "cuda", b->device == LFL_CPU ? "cpu" : "cuda");
    return LFL_OK;
}

lfl_status lfl_check_float(const char *op, const lfl_tensor *t)
{
    if (t->dtype != LFL_F32 && t->dtype != LFL_F64)
        return lfl_fail(LFL_ERR_ARG, "%s: expected an f32 or f64 tensor, got %s", op, lfl_dtype_name(t->dtype));
    return LFL_OK;
}

lfl_status lfl_check_same_dtype(const char *op, const lfl_tensor *a, const lfl_tensor *b)
{
    if (a->dtype != b->dtype)
        return lfl_fail(LFL_ERR_ARG, "%s: dtypes differ (%s vs %s)", op, lfl_dtype_name(a->dtype), lfl_dtype_name(b->dtype));
    return LFL_OK;
}
