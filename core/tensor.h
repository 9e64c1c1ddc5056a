/* Tensors: refcounted storage (heap, mmap, device) and strided views.
 * All dims here are 0-based; the Lua bridge converts from 1-based. */
#ifndef LFL_TENSOR_H
#define LFL_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dtype.h"
#include "status.h"

#define LFL_MAX_DIMS 8
#define LFL_CPU (-1) /* device id of the host; CUDA devices are 0, 1, ... */

typedef enum { LFL_STORAGE_HEAP, LFL_STORAGE_MMAP, LFL_STORAGE_DEVICE,
               LFL_STORAGE_EXTERNAL } lfl_storage_kind;

typedef struct lfl_storage {
    int refcount;
    lfl_storage_kind kind;
    int device;
    void *data;
    size_t nbytes;
    void *map_base;    /* mmap: what to munmap */
    size_t map_len;
    void (*release)(void *ctx); /* external: called when the last ref goes */
    void *release_ctx;
} lfl_storage;

typedef struct lfl_node lfl_node;
typedef struct lfl_tensor lfl_tensor;

struct lfl_tensor {
    int refcount;
    lfl_storage *storage;
    size_t offset;                  /* in bytes, from storage->data */
    int ndim;
    int64_t shape[LFL_MAX_DIMS];
    int64_t stride[LFL_MAX_DIMS];   /* in elements */
    lfl_dtype dtype;
    int device;
    bool requires_grad;
    struct lfl_tensor *grad;        /* accumulated gradient (leaves) */
    lfl_node *grad_fn;              /* producing node (non-leaves) */
    int grad_index;                 /* which output of grad_fn */
    struct lfl_qstate *quant;       /* NF4/FP4, int8, gptq4: the quantization state (quant/bnb4.h), else NULL */
};

/* storage */
lfl_storage *lfl_storage_new(size_t nbytes, int device);
lfl_storage *lfl_storage_mmap(const char *path, size_t offset, size_t len, lfl_status *st);
lfl_storage *lfl_storage_external(void *data, size_t nbytes, void (*release)(void *), void *ctx);
void lfl_storage_retain(lfl_storage *s);
void lfl_storage_release(lfl_storage *s);
/* Bytes held by heap storages now, and the high-water mark. */
size_t lfl_mem_current(void);
size_t lfl_mem_peak(void);
/* Gives the heap's free pages back to the kernel: malloc_trim. */
void lfl_mem_trim(void);

/* lifetime: every function returning lfl_tensor* returns a new reference */
lfl_tensor *lfl_tensor_retain(lfl_tensor *t);
void lfl_tensor_release(lfl_tensor *t);
/* drops a reference to a 4-bit quantization state (quant/bnb4.c) */
void lfl_qstate_release(struct lfl_qstate *s);

/* creation (CPU; uninitialised memory for _empty) */
lfl_status lfl_empty(int ndim, const int64_t *shape, lfl_dtype dt, int device, lfl_tensor **out);
lfl_status lfl_zeros(int ndim, const int64_t *shape, lfl_dtype dt, int device, lfl_tensor **out);
lfl_status lfl_full(int ndim, const int64_t *shape, double v, lfl_dtype dt, int device, lfl_tensor **out);
lfl_status lfl_arange(double start, double end, double step, lfl_dtype dt, lfl_tensor **out);
lfl_status lfl_eye(int64_t n, int64_t m, lfl_dtype dt, lfl_tensor **out);
lfl_status lfl_empty_like(const lfl_tensor *t, lfl_tensor **out);
lfl_status lfl_zeros_like(const lfl_tensor *t, lfl_tensor **out);
/* A tensor over existing storage (used by loaders): retains `s`. The shape
 * is checked (lfl_shape_nbytes) and must fit in the storage from `offset`;
 * `op` names the caller in the error. */
lfl_status lfl_tensor_from_storage(const char *op, lfl_storage *s, size_t offset, int ndim,
                                   const int64_t *shape, lfl_dtype dt, lfl_tensor **out);

/* ZeRO-3's partitioned parameters, in place on a CPU leaf: drop_data leaves an
 * empty [0] tensor (its storage released); realloc gives it new, uninitialised,
 * contiguous storage of `shape` (the data to be filled by the caller). */
lfl_status lfl_tensor_drop_data(lfl_tensor *t);
lfl_status lfl_tensor_realloc(lfl_tensor *t, int ndim, const int64_t *shape);

/* Checked size arithmetic: every tensor's shape passes through these, so a
 * numel or byte count never wraps. A negative size, an element count past
 * INT64_MAX or a byte count past SIZE_MAX is an error naming `op` and the
 * shape. (Dims of size 0 give 0 elements, but the other dims' product must
 * still fit, as strides are computed from it.) */
lfl_status lfl_shape_numel(const char *op, int ndim, const int64_t *shape, int64_t *out);
lfl_status lfl_shape_nbytes(const char *op, int ndim, const int64_t *shape, lfl_dtype dt, size_t *out);
/* "[2,3]" for a raw shape */
const char *lfl_shape_fmt(int ndim, const int64_t *shape, char *buf, size_t n);

/* queries */
int64_t lfl_numel(const lfl_tensor *t);
bool lfl_is_contiguous(const lfl_tensor *t);
/* (an empty tensor's storage has no data: NULL, with no arithmetic on it) */
static inline void *lfl_data(const lfl_tensor *t)
{
    return t->storage->data ? (char *)t->storage->data + t->offset : NULL;
}
/* Element as double, by linear (row-major logical) index. */
double lfl_get(const lfl_tensor *t, int64_t i);
void lfl_set(lfl_tensor *t, int64_t i, double v);
/* "[2,3]" into buf */
const char *lfl_shape_str(const lfl_tensor *t, char *buf, size_t n);
bool lfl_same_shape(const lfl_tensor *a, const lfl_tensor *b);

/* views (share storage; differentiable) */
lfl_status lfl_view(lfl_tensor *t, int ndim, const int64_t *shape, lfl_tensor **out);
lfl_status lfl_reshape(lfl_tensor *t, int ndim, const int64_t *shape, lfl_tensor **out);
lfl_status lfl_permute(lfl_tensor *t, const int *perm, lfl_tensor **out);
lfl_status lfl_transpose(lfl_tensor *t, int d0, int d1, lfl_tensor **out);
lfl_status lfl_narrow(lfl_tensor *t, int dim, int64_t start, int64_t len, lfl_tensor **out);
lfl_status lfl_slice(lfl_tensor *t, int dim, int64_t start, int64_t end, int64_t step, lfl_tensor **out);
lfl_status lfl_select(lfl_tensor *t, int dim, int64_t index, lfl_tensor **out);
lfl_status lfl_expand(lfl_tensor *t, int ndim, const int64_t *shape, lfl_tensor **out);
lfl_status lfl_unsqueeze(lfl_tensor *t, int dim, lfl_tensor **out);
lfl_status lfl_squeeze(lfl_tensor *t, int dim, lfl_tensor **out); /* no-op unless size 1 */
lfl_status lfl_squeeze_all(lfl_tensor *t, lfl_tensor **out);
/* A new header over the same data, without grad history. */
lfl_tensor *lfl_detach(lfl_tensor *t);

/* copies */
lfl_status lfl_contiguous(lfl_tensor *t, lfl_tensor **out);  /* retains t if already contiguous */
lfl_status lfl_clone(lfl_tensor *t, lfl_tensor **out);
lfl_status lfl_cast(lfl_tensor *t, lfl_dtype dt, lfl_tensor **out);
lfl_status lfl_to_device(lfl_tensor *t, int device, lfl_tensor **out);
/* dst[...] = src[...] with broadcasting of src and dtype conversion; no grad. */
lfl_status lfl_copy_(lfl_tensor *dst, const lfl_tensor *src);
/* lfl_copy_ once dst and src are on one device, shapes and dtypes checked:
 * the copy op's kernel for that device (core/ops/copy.c) */
lfl_status lfl_copy_same_device(lfl_tensor *dst, const lfl_tensor *src);
/* dst += src on a device (autograd's gradient accumulation): dst contiguous,
 * src of dst's shape on its device; through the add kernel of that device
 * (core/ops/add.c), src cast to dst's dtype first when they differ */
lfl_status lfl_accumulate_same_device(lfl_tensor *dst, lfl_tensor *src);
lfl_status lfl_fill_(lfl_tensor *t, double v); /* core/ops/fill.c: the fill op */

/* broadcasting helpers for ops */
lfl_status lfl_broadcast_shape(const char *op, const lfl_tensor *a, const lfl_tensor *b,
                               int *ndim, int64_t *shape);
/* Sum `g` down to `ndim/shape` (undoing a broadcast); new reference. */
lfl_status lfl_sum_to(lfl_tensor *g, int ndim, const int64_t *shape, lfl_tensor **out);
/* Checks shared by ops: same device, float dtype. */
lfl_status lfl_check_same_device(const char *op, const lfl_tensor *a, const lfl_tensor *b);
lfl_status lfl_check_float(const char *op, const lfl_tensor *t);
lfl_status lfl_check_same_dtype(const char *op, const lfl_tensor *a, const lfl_tensor *b);
/* Normalise a possibly negative 0-based dim; error names the op. */
lfl_status lfl_norm_dim(const char *op, int dim, int ndim, int *out);

#endif
