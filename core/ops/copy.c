/* copy: dst[...] = src[...] between two tensors of one device, any strides,
 * src broadcast to dst, with dtype conversion (f32/f64/f16/bf16/i32/i64/u8/
 * bool). lfl_copy_ (tensor_copy.c) checks the shapes and the dtypes and moves
 * data across devices itself; a same-device copy comes here and runs the copy
 * kernel of that device. The CPU kernel converts through double, one value at
 * a time, except on its fast paths: a flat memmove, the vectorised f32 <->
 * 16-bit conversions (dtype_convert.c), and rows of f32 or of one dtype. */
#include <string.h>
#include "../iter.h"
#include "optable.h"

typedef double (*load_fn)(const char *p);
typedef void (*store_fn)(char *p, double v);

static double ld_f32(const char *p) { return *(const float *)p; }
static double ld_f64(const char *p) { return *(const double *)p; }
static double ld_f16(const char *p) { return lfl_f16_to_f32(*(const uint16_t *)p); }
static double ld_bf16(const char *p) { return lfl_bf16_to_f32(*(const uint16_t *)p); }
static double ld_i32(const char *p) { return *(const int32_t *)p; }
static double ld_i64(const char *p) { return (double)*(const int64_t *)p; }
static double ld_u8(const char *p) { return *(const uint8_t *)p; }
static void st_f32(char *p, double v) { *(float *)p = (float)v; }
static void st_f64(char *p, double v) { *(double *)p = v; }
static void st_f16(char *p, double v) { *(uint16_t *)p = lfl_f32_to_f16((float)v); }
static void st_bf16(char *p, double v) { *(uint16_t *)p = lfl_f32_to_bf16((float)v); }
static void st_i32(char *p, double v) { *(int32_t *)p = (int32_t)v; }
static void st_i64(char *p, double v) { *(int64_t *)p = (int64_t)v; }
static void st_u8(char *p, double v) { *(uint8_t *)p = (uint8_t)v; }
static void st_bool(char *p, double v) { *(uint8_t *)p = v != 0; }

static const load_fn loads[] = {ld_f32, ld_f64, ld_f16, ld_bf16, ld_i32, ld_i64, ld_u8, ld_u8};
static const store_fn stores[] = {st_f32, st_f64, st_f16, st_bf16, st_i32, st_i64, st_u8, st_bool};

lfl_status lfl_cpu_copy(lfl_tensor *dst, const lfl_tensor *src)
{
    if (lfl_dtype_is_block(dst->dtype) || (dst->dtype == src->dtype && lfl_is_contiguous(dst) &&
                                           lfl_is_contiguous(src) && lfl_numel(dst) == lfl_numel(src))) {
        memmove(lfl_data(dst), lfl_data(src), lfl_dtype_nbytes(dst->dtype, lfl_numel(dst)));
        return LFL_OK;
    }
    /* f32 <-> bf16/f16 between contiguous tensors: vectorised (dtype_convert.c) */
    if (lfl_is_contiguous(dst) && lfl_is_contiguous(src) && lfl_numel(dst) == lfl_numel(src) &&
        lfl_convert_contiguous(dst->dtype, lfl_data(dst), src->dtype, lfl_data(src), lfl_numel(dst)))
        return LFL_OK;
    int64_t sst[LFL_MAX_DIMS];
    lfl_broadcast_strides(src, dst->ndim, dst->shape, sst);
    int64_t strides[2][LFL_MAX_DIMS];
    for (int d = 0; d < dst->ndim; d++) { strides[0][d] = dst->stride[d]; strides[1][d] = sst[d]; }
    int64_t rows, len;
    lfl_rows(dst->ndim, dst->shape, &rows, &len);
    size_t es_d = lfl_dtype_size(dst->dtype), es_s = lfl_dtype_size(src->dtype);
    char *pd = lfl_data(dst);
    const char *ps = lfl_data(src);
    int64_t ds = dst->ndim ? strides[0][dst->ndim - 1] : 1, ss = dst->ndim ? strides[1][dst->ndim - 1] : 1;
    bool same = dst->dtype == src->dtype;
    /* int8 copies only to itself (lfl_copy_ checked): the tables cover the plain dtypes */
    load_fn ld = same ? NULL : loads[src->dtype];
    store_fn stf = same ? NULL : stores[dst->dtype];
    bool f32 = same && dst->dtype == LFL_F32;
#pragma omp parallel for if (rows * len > LFL_OMP_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t o[2];
        lfl_row_offsets(dst->ndim, dst->shape, r, 2, strides, o);
        if (f32) {
            float *d = (float *)pd + o[0];
            const float *s = (const float *)ps + o[1];
            for (int64_t j = 0; j < len; j++) d[j * ds] = s[j * ss];
        } else if (same) {
            for (int64_t j = 0; j < len; j++)
                memcpy(pd + (o[0] + j * ds) * (int64_t)es_d, ps + (o[1] + j * ss) * (int64_t)es_s, es_d);
        } else {
            for (int64_t j = 0; j < len; j++)
                stf(pd + (o[0] + j * ds) * (int64_t)es_d, ld(ps + (o[1] + j * ss) * (int64_t)es_s));
        }
    }
    return LFL_OK;
}

lfl_status lfl_copy_same_device(lfl_tensor *dst, const lfl_tensor *src)
{
    LFL_ASSERT(dst->device == src->device);
    lfl_copy_kernel fn;
    LFL_TRY(lfl_dispatch_copy(dst->device, NULL, &fn));
    return fn(dst, src);
}
