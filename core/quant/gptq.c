/* GPTQ (2/4/8-bit) / AWQ 4-bit dequantization (see gptq.h for the layouts). One output
 * row of W at a time, OpenMP over rows; the codes are read straight from the
 * packed words. */
#include "gptq.h"

#include <string.h>
#include "../dtype.h"

static float scale_at(const lfl_tensor *s, int64_t i)
{
    const void *p = lfl_data(s);
    if (s->dtype == LFL_F32) return ((const float *)p)[i];
    if (s->dtype == LFL_F16) return lfl_f16_to_f32(((const uint16_t *)p)[i]);
    return lfl_bf16_to_f32(((const uint16_t *)p)[i]);
}

/* scale * (q - z) as the reference libraries compute it: in the scales' own
 * dtype (f16 * int -> f16 in torch), so the weight is that product rounded */
static float scaled(const lfl_tensor *s, int64_t i, int d)
{
    float v = scale_at(s, i) * (float)d;
    if (s->dtype == LFL_F16) return lfl_f16_to_f32(lfl_f32_to_f16(v));
    if (s->dtype == LFL_BF16) return lfl_bf16_to_f32(lfl_f32_to_bf16(v));
    return v;
}

static lfl_status check_i32(const char *who, const char *what, const lfl_tensor *t, int ndim)
{
    if (!t || t->dtype != LFL_I32 || t->ndim != ndim || !lfl_is_contiguous(t) || t->device != LFL_CPU)
        return lfl_fail(LFL_ERR_ARG, "%s: %s must be a contiguous %d-D i32 CPU tensor", who, what, ndim);
    return LFL_OK;
}

static lfl_status check_scales(const char *who, const lfl_tensor *s, int64_t groups, int64_t out)
{
    if (!s || (s->dtype != LFL_F32 && s->dtype != LFL_F16 && s->dtype != LFL_BF16) || s->ndim != 2 ||
        !lfl_is_contiguous(s) || s->shape[0] != groups || s->shape[1] != out)
        return lfl_fail(LFL_ERR_ARG, "%s: scales must be a contiguous float [%lld, %lld] tensor", who,
                        (long long)groups, (long long)out);
    return LFL_OK;
}

lfl_status lfl_gptq_dequantize(const lfl_tensor *qweight, const lfl_tensor *qzeros, const lfl_tensor *scales,
                               const lfl_tensor *g_idx, int64_t group_size, int bits, bool v1, lfl_tensor **out)
{
    const char *who = "gptq";
    if (bits != 2 && bits != 4 && bits != 8)
        return lfl_fail(LFL_ERR_ARG, "gptq: %d bits cannot be unpacked (2, 4 or 8 bits)", bits);
    LFL_TRY(check_i32(who, "qweight", qweight, 2));
    LFL_TRY(check_i32(who, "qzeros", qzeros, 2));
    const int per = 32 / bits;
    const uint32_t mask = (1u << bits) - 1u;
    int64_t in = qweight->shape[0] * per, o = qweight->shape[1], groups = qzeros->shape[0];
    if (qzeros->shape[1] * per != o)
        return lfl_fail(LFL_ERR_ARG, "gptq: qzeros [%lld, %lld] packs %lld outputs at %d bits, qweight has %lld",
                        (long long)groups, (long long)qzeros->shape[1], (long long)qzeros->shape[1] * per, bits,
                        (long long)o);
    LFL_TRY(check_scales(who, scales, groups, o));
    if (g_idx) {
        LFL_TRY(check_i32(who, "g_idx", g_idx, 1));
        if (g_idx->shape[0] != in)
            return lfl_fail(LFL_ERR_ARG, "gptq: g_idx has %lld rows, qweight unpacks to %lld inputs",
                            (long long)g_idx->shape[0], (long long)in);
    } else if (group_size <= 0 || (in + group_size - 1) / group_size != groups) {
        return lfl_fail(LFL_ERR_ARG, "gptq: %lld inputs in groups of %lld do not make %lld groups", (long long)in,
                        (long long)group_size, (long long)groups);
    }
    const int32_t *gi = g_idx ? lfl_data(g_idx) : NULL;
    for (int64_t i = 0; gi && i < in; i++)
        if (gi[i] < 0 || gi[i] >= groups)
            return lfl_fail(LFL_ERR_FORMAT, "gptq: g_idx[%lld] = %d is not a group (0..%lld)", (long long)i, gi[i],
                            (long long)groups - 1);
    int64_t shape[2] = {o, in};
    LFL_TRY(lfl_empty(2, shape, LFL_F32, LFL_CPU, out));
    float *w = lfl_data(*out);
    const uint32_t *qw = lfl_data(qweight), *qz = lfl_data(qzeros);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < o; r++) {
        float *row = w + r * in;
        for (int64_t i = 0; i < in; i++) {
            int64_t g = gi ? gi[i] : i / group_size;
            int q = (int)((qw[(i / per) * o + r] >> (bits * (i % per))) & mask);
            int z = (int)((qz[g * (o / per) + r / per] >> (bits * (r % per))) & mask);
            if (v1) z = (int)((uint32_t)(z + 1) & mask);
            row[i] = scaled(scales, g * o + r, q - z);
        }
    }
    return LFL_OK;
}

/* AutoAWQ's AWQ_ORDER: word nibble k holds output column 8 j + ORDER[k] */
static const int AWQ_ORDER[8] = {0, 2, 4, 6, 1, 3, 5, 7};

lfl_status lfl_awq_dequantize(const lfl_tensor *qweight, const lfl_tensor *qzeros, const lfl_tensor *scales,
                              int64_t group_size, lfl_tensor **out)
{
    const char *who = "awq";
    LFL_TRY(check_i32(who, "qweight", qweight, 2));
    LFL_TRY(check_i32(who, "qzeros", qzeros, 2));
    int64_t in = qweight->shape[0], o = qweight->shape[1] * 8, groups = qzeros->shape[0];
    if (qzeros->shape[1] * 8 != o)
        return lfl_fail(LFL_ERR_ARG, "awq: qzeros packs %lld outputs, qweight %lld", (long long)qzeros->shape[1] * 8,
                        (long long)o);
    if (group_size <= 0 || in % group_size || in / group_size != groups)
        return lfl_fail(LFL_ERR_ARG, "awq: %lld inputs in groups of %lld do not make %lld groups", (long long)in,
                        (long long)group_size, (long long)groups);
    LFL_TRY(check_scales(who, scales, groups, o));
    /* the nibble that holds column c of a word */
    int nib[8];
    for (int k = 0; k < 8; k++) nib[AWQ_ORDER[k]] = k;
    int64_t shape[2] = {o, in};
    LFL_TRY(lfl_empty(2, shape, LFL_F32, LFL_CPU, out));
    float *w = lfl_data(*out);
    const uint32_t *qw = lfl_data(qweight), *qz = lfl_data(qzeros);
    int64_t words = o / 8;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < o; r++) {
        int sh = 4 * nib[r % 8];
        int64_t wcol = r / 8;
        float *row = w + r * in;
        for (int64_t i = 0; i < in; i++) {
            int64_t g = i / group_size;
            int q = (int)((qw[i * words + wcol] >> sh) & 15u);
            int z = (int)((qz[g * words + wcol] >> sh) & 15u);
            row[i] = scaled(scales, g * o + r, q - z);
        }
    }
    return LFL_OK;
}
