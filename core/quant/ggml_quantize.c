/* ggml block quantizers: Q8_0 and Q5_0 (absmax, one f16 scale per 32) and Q4_K
 * (super-blocks of 256: eight 6-bit scale/min pairs found by make_qkx2_quants'
 * weighted search, then requantized against the f16-rounded super-block scales).
 * Follows ggml-quants.c's quantize_row_*_ref step for step, nearest_int's
 * round-half-to-even and float operation order included (built without FMA
 * contraction: CMakeLists.txt), so the bytes are ggml's. */
#include <math.h>
#include <string.h>
#include "../iter.h"
#include "ggml_quantize.h"

static inline void put_f16(uint8_t *p, float f)
{
    uint16_t h = lfl_f32_to_f16(f);
    p[0] = (uint8_t)(h & 0xFF);
    p[1] = (uint8_t)(h >> 8);
}

static inline float get_f16(const uint8_t *p) { return lfl_f16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

/* ggml's nearest_int: adding 1.5*2^23 leaves the rounded integer in the low
 * mantissa bits (ties to even, as the FPU rounds) */
static inline int nearest_int(float f)
{
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

static void q8_0(const float *x, uint8_t *y)
{
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
    float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
    put_f16(y, d);
    for (int j = 0; j < 32; j++) y[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
}

static void q5_0(const float *x, uint8_t *y)
{
    /* the signed value of largest magnitude maps to -16, so the full 5-bit
     * range [-16, 15] is used on the side where it matters */
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++)
        if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
    float d = max / -16, id = d ? 1.0f / d : 0.0f;
    put_f16(y, d);
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        int a = (int)(int8_t)(x[j] * id + 16.5f), b = (int)(int8_t)(x[16 + j] * id + 16.5f);
        uint8_t xi0 = (uint8_t)(a < 31 ? a : 31), xi1 = (uint8_t)(b < 31 ? b : 31);
        y[6 + j] = (uint8_t)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
        qh |= (uint32_t)((xi0 & 0x10u) >> 4) << j;
        qh |= (uint32_t)((xi1 & 0x10u) >> 4) << (j + 16);
    }
    for (int i = 0; i < 4; i++) y[2 + i] = (uint8_t)(qh >> (8 * i));
}

/* make_qkx2_quants: levels 0..nmax with an affine map scale*l + min (min <= 0)
 * minimising the weighted squared error; starts from the min/max fit, then
 * tries nstep+1 scales around it, each refit by weighted least squares */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *w, uint8_t *L, float *the_min,
                              uint8_t *Laux, float rmin, float rdelta, int nstep)
{
    float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min), scale = 1 / iscale, best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)(l < 0 ? 0 : l > nmax ? nmax : l);
        float diff = scale * L[i] + min - x[i];
        diff = diff * diff; /* ggml's order: w * (diff * diff) */
        best_error += w[i] * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * (x[i] - min));
            l = l < 0 ? 0 : l > nmax ? nmax : l;
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = diff * diff;
                cur_error += w[i] * diff;
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

static void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

/* block_q4_K: f16 d, f16 dmin, u8 scales[12], u8 qs[128] */
static void q4_k(const float *x, uint8_t *y)
{
    uint8_t L[256], Laux[32];
    float weights[32], mins[8], scales[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -1.f, 0.1f, 20);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    uint8_t *sc = y + 4, *q = y + 16;
    memset(sc, 0, 12);
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f, inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; j++) {
        int ls = nearest_int(inv_scale * scales[j]), lm = nearest_int(inv_min * mins[j]);
        /* ggml stores these as uint8_t before the clamp to 63 */
        ls = (uint8_t)ls;
        lm = (uint8_t)lm;
        ls = ls < 63 ? ls : 63;
        lm = lm < 63 ? lm : 63;
        if (j < 4) {
            sc[j] = (uint8_t)ls;
            sc[j + 4] = (uint8_t)lm;
        } else {
            sc[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            sc[j - 4] |= (uint8_t)((ls >> 4) << 6);
            sc[j - 0] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    put_f16(y, max_scale / 63.f);
    put_f16(y + 2, max_min / 63.f);
    /* requantize against the scales as they will be read back (f16 x 6 bits) */
    float dd = get_f16(y), dmin = get_f16(y + 2);
    for (int j = 0; j < 8; j++) {
        uint8_t s, m;
        get_scale_min_k4(j, sc, &s, &m);
        float d = dd * s;
        if (!d) continue;
        float dm = dmin * m;
        for (int ii = 0; ii < 32; ii++) {
            int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)(l < 0 ? 0 : l > 15 ? 15 : l);
        }
    }
    for (int j = 0; j < 256; j += 64) {
        for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
        q += 32;
    }
}

bool lfl_quantize_supported(lfl_dtype dt) { return dt == LFL_Q8_0 || dt == LFL_Q5_0 || dt == LFL_Q4_K; }

lfl_status lfl_quantize_rows(lfl_dtype dt, const float *src, int64_t n, void *dst)
{
    const lfl_dtype_traits *tr = &lfl_dtypes[dt];
    if (!lfl_quantize_supported(dt))
        return lfl_fail(LFL_ERR_UNSUPPORTED, "quantize: no quantizer for %s (q8_0, q5_0, q4_k have one)", tr->name);
    if (n % tr->block)
        return lfl_fail(LFL_ERR_ARG, "quantize: %lld elements is not a multiple of the %s block (%d)", (long long)n,
                        tr->name, tr->block);
    int64_t nb = n / tr->block;
    uint8_t *d = dst;
    void (*fn)(const float *, uint8_t *) = dt == LFL_Q8_0 ? q8_0 : dt == LFL_Q5_0 ? q5_0 : q4_k;
#pragma omp parallel for if (n > LFL_OMP_MIN)
    for (int64_t i = 0; i < nb; i++) fn(src + i * tr->block, d + i * tr->block_bytes);
    return LFL_OK;
}

lfl_status lfl_quantize(lfl_tensor *t, lfl_dtype dt, lfl_tensor **out)
{
    *out = NULL;
    const lfl_dtype_traits *tr = &lfl_dtypes[dt];
    if (!lfl_quantize_supported(dt))
        return lfl_fail(LFL_ERR_UNSUPPORTED, "quantize: no quantizer for %s (q8_0, q5_0, q4_k have one)", tr->name);
    if (t->device != LFL_CPU) return lfl_fail(LFL_ERR_UNSUPPORTED, "quantize: CUDA tensors are not supported yet");
    if (t->ndim < 1 || t->shape[t->ndim - 1] % tr->block)
        return lfl_fail(LFL_ERR_ARG, "quantize: a %s tensor's last dimension (%lld) must be a multiple of its block (%d)",
                        tr->name, (long long)(t->ndim ? t->shape[t->ndim - 1] : 0), tr->block);
    lfl_tensor *f = NULL, *c = NULL;
    LFL_TRY(lfl_cast(t, LFL_F32, &f));
    lfl_status st = lfl_contiguous(f, &c);
    lfl_tensor_release(f);
    if (st) return st;
    st = lfl_empty(t->ndim, t->shape, dt, LFL_CPU, out);
    if (st == LFL_OK) st = lfl_quantize_rows(dt, lfl_data(c), lfl_numel(c), lfl_data(*out));
    lfl_tensor_release(c);
    if (st) { lfl_tensor_release(*out); *out = NULL; }
    return st;
}
