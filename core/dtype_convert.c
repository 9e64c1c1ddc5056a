/* Bulk bf16/f16 <-> f32 conversions: vectorised loops for the ops that widen
 * stored 16-bit weights (embedding, the 16-bit GEMMs) and, threaded, the fast
 * path of lfl_copy_ between f32 and a 16-bit float. */
#include "iter.h"

void lfl_lowp_to_f32(lfl_dtype dt, const void *src, int64_t n, float *dst)
{
    const uint16_t *s = src;
    if (dt == LFL_BF16) {
        uint32_t *d = (uint32_t *)(void *)dst; /* bf16 is the top half of an f32 */
#pragma omp simd
        for (int64_t i = 0; i < n; i++) d[i] = (uint32_t)s[i] << 16;
    } else {
#ifdef __FLT16_MAX__
        const _Float16 *h = src;
#pragma omp simd
        for (int64_t i = 0; i < n; i++) dst[i] = (float)h[i];
#else
        for (int64_t i = 0; i < n; i++) dst[i] = lfl_f16_to_f32(s[i]);
#endif
    }
}

void lfl_f32_to_lowp(lfl_dtype dt, const float *src, int64_t n, void *dst)
{
    uint16_t *d = dst;
    if (dt == LFL_BF16) {
        for (int64_t i = 0; i < n; i++) d[i] = lfl_f32_to_bf16(src[i]);
    } else {
#ifdef __FLT16_MAX__
        _Float16 *h = dst;
        for (int64_t i = 0; i < n; i++) h[i] = (_Float16)src[i];
#else
        for (int64_t i = 0; i < n; i++) d[i] = lfl_f32_to_f16(src[i]);
#endif
    }
}

bool lfl_convert_contiguous(lfl_dtype ddt, void *dst, lfl_dtype sdt, const void *src, int64_t n)
{
    bool widen = ddt == LFL_F32 && lfl_is_lowp(sdt), narrow = sdt == LFL_F32 && lfl_is_lowp(ddt);
    if (!widen && !narrow) return false;
    const int64_t chunk = 1 << 16;
    int64_t nchunks = (n + chunk - 1) / chunk;
#pragma omp parallel for if (n > LFL_OMP_MIN)
    for (int64_t c = 0; c < nchunks; c++) {
        int64_t i0 = c * chunk, len = n - i0 < chunk ? n - i0 : chunk;
        if (widen) lfl_lowp_to_f32(sdt, (const uint16_t *)src + i0, len, (float *)dst + i0);
        else lfl_f32_to_lowp(ddt, (const float *)src + i0, len, (uint16_t *)dst + i0);
    }
    return true;
}

