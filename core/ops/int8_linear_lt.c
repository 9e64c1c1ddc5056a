/* LLM.int8's inference matmul (bitsandbytes' MatMul8bitLt, what Linear8bitLt
 * runs in eval mode): the input is quantized row-wise to int8 as well, the
 * int8 x int8 product is summed exactly in int32, and input columns holding
 * an outlier (|x| >= threshold, transformers' llm_int8_threshold 6.0) go
 * through an f32 product with those weight columns dequantized instead
 * (the mixed-precision decomposition). Every rounding follows bitsandbytes
 * 0.50's default CPU kernels (goldens: tests/ref/make_int8_goldens.py):
 *   x16 = f16(x); outlier elements of x16 set to 0; SCA = max|x16| per row;
 *   CA = round_half_even(x16 * (f32(1 / SCA) * 127)), outlier columns 0;
 *   y = (f32(CA CB^T) * (SCA SCB^T)) * 6.200124e-05 + bias
 *       + x[:, outliers] @ ((CB * SCB) * 7.874015718698502e-3)[:, outliers]^T.
 * No gradient: training takes lfl_linear (MatMul8bitFp: dequantize, f32 GEMM). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
#include <immintrin.h>
#endif
#include "../autograd.h"
#include "../iter.h"
#include "../quant/bnb8.h"
#include "optable.h"

/* sum of a[i] * b[i] over n int8 pairs, exactly. With AVX512-VNNI: vpdpbusd
 * multiplies unsigned by signed bytes, so a + 128 goes in and 128 * sum(b)
 * (summed by a second vpdpbusd against ones) comes off. */
static int32_t dot_i8(const int8_t *a, const int8_t *b, int64_t n)
{
    int64_t i = 0;
    int32_t acc = 0;
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
    __m512i v = _mm512_setzero_si512(), vb = _mm512_setzero_si512();
    const __m512i flip = _mm512_set1_epi8((char)0x80), ones = _mm512_set1_epi8(1);
    for (; i + 64 <= n; i += 64) {
        __m512i sb = _mm512_loadu_si512(b + i);
        v = _mm512_dpbusd_epi32(v, _mm512_xor_si512(_mm512_loadu_si512(a + i), flip), sb); /* (a + 128) b */
        vb = _mm512_dpbusd_epi32(vb, ones, sb);
    }
    acc = _mm512_reduce_add_epi32(v) - 128 * _mm512_reduce_add_epi32(vb);
#endif
    for (; i < n; i++) acc += (int32_t)a[i] * (int32_t)b[i];
    return acc;
}

lfl_status lfl_int8_linear_lt(lfl_tensor *x, lfl_tensor *w, lfl_tensor *bias, double threshold, lfl_tensor **out)
{
    char bx[128];
    LFL_TRY(lfl_i8_check("int8_linear_lt", w));
    LFL_TRY(lfl_check_same_device("int8_linear_lt", x, w));
    if (x->dtype != LFL_F32)
        return lfl_fail(LFL_ERR_ARG, "int8_linear_lt: takes an f32 input, got %s", lfl_dtype_name(x->dtype));
    int64_t k = w->shape[1], n = w->shape[0];
    if (x->ndim < 1 || x->shape[x->ndim - 1] != k)
        return lfl_fail(LFL_ERR_ARG, "int8_linear_lt: input %s does not match the int8 weight [%lld, %lld]",
                        lfl_shape_str(x, bx, sizeof bx), (long long)n, (long long)k);
    if (bias && (bias->ndim != 1 || bias->shape[0] != n || bias->dtype != LFL_F32))
        return lfl_fail(LFL_ERR_ARG, "int8_linear_lt: bias should be an f32 [%lld]", (long long)n);
    if (bias) LFL_TRY(lfl_check_same_device("int8_linear_lt", x, bias));
    if (!(threshold >= 0))
        return lfl_fail(LFL_ERR_ARG, "int8_linear_lt: threshold must be >= 0 (0: no outlier decomposition), got %g",
                        threshold);
    if (lfl_grad_enabled() && (x->requires_grad || (bias && bias->requires_grad)))
        return lfl_fail(LFL_ERR_ARG, "int8_linear_lt: bitsandbytes' inference path takes no gradient; training goes "
                        "through linear (its MatMul8bitFp)");
    lfl_int8_linear_lt_kernel fn;
    LFL_TRY(lfl_dispatch_int8_linear_lt(x->device, NULL, &fn));
    lfl_tensor *cx = NULL, *cb = NULL, *o = NULL;
    LFL_TRY(lfl_contiguous(x, &cx));
    lfl_status st = bias ? lfl_contiguous(bias, &cb) : LFL_OK;
    int64_t oshape[LFL_MAX_DIMS];
    for (int d = 0; d < x->ndim - 1; d++) oshape[d] = x->shape[d];
    oshape[x->ndim - 1] = n;
    if (st == LFL_OK) st = lfl_empty(x->ndim, oshape, LFL_F32, x->device, &o);
    if (st == LFL_OK) st = fn(cx, w, cb, threshold, o);
    lfl_tensor_release(cx);
    lfl_tensor_release(cb);
    if (st) { lfl_tensor_release(o); return st; }
    *out = o;
    return LFL_OK;
}

lfl_status lfl_cpu_int8_linear_lt(lfl_tensor *cx, lfl_tensor *w, lfl_tensor *cb, double threshold, lfl_tensor *o)
{
    int64_t k = w->shape[1], n = w->shape[0], m = k ? lfl_numel(cx) / k : 0;
    lfl_status st = LFL_OK;
    float *xs = NULL, *sca = NULL;
    int8_t *ca = NULL;
    unsigned char *outlier = NULL;
    {
        xs = malloc(sizeof(float) * (size_t)(m * k) + 1);
        sca = malloc(sizeof(float) * (size_t)m + 1);
        ca = malloc((size_t)(m * k) + 1);
        outlier = calloc((size_t)k + 1, 1);
        if (!xs || !sca || !ca || !outlier) st = lfl_fail(LFL_ERR_MEM, "int8_linear_lt: out of memory");
    }
    if (st == LFL_OK && m && n) {
        const float *px = lfl_data(cx);
        const int8_t *pw = lfl_data(w);
        const float *scb = lfl_data(w->quant->scb);
        float thr = (float)threshold;
        /* x16, with the outlier elements zeroed and their columns marked */
        for (int64_t i = 0; i < m * k; i++) {
            float v = lfl_f16_to_f32(lfl_f32_to_f16(px[i]));
            if (thr > 0 && fabsf(v) >= thr) { outlier[i % k] = 1; v = 0; }
            xs[i] = v;
        }
        for (int64_t r = 0; r < m; r++) {
            const float *row = xs + r * k;
            float am = 0;
            for (int64_t c = 0; c < k; c++) if (fabsf(row[c]) > am || row[c] != row[c]) am = fabsf(row[c]);
            sca[r] = am;
            float inv = 1.0f / am; /* 127 / SCA as torch's scalar / tensor: a reciprocal, then a product */
            inv = inv * 127.0f;
            for (int64_t c = 0; c < k; c++) /* a zero row: 0 * inf is NaN, which becomes int8 0 */
                ca[r * k + c] = am == 0.0f || (m > 1 && outlier[c]) ? 0 : lfl_i8_round(row[c] * inv);
        }
        float *po = lfl_data(o);
        const float *pb = cb ? lfl_data(cb) : NULL;
        const float c1 = 6.200124e-05f, c2 = (float)7.874015718698502e-3;
        int nout = 0;
        for (int64_t c = 0; c < k; c++) nout += outlier[c];
#pragma omp parallel for schedule(static) if (m * n * k > LFL_OMP_MIN)
        for (int64_t j = 0; j < n; j++) {
            const int8_t *wj = pw + j * k;
            float sw = scb[j];
            for (int64_t r = 0; r < m; r++) {
                int32_t acc = dot_i8(ca + r * k, wj, k);
                float v = ((float)acc * (sca[r] * sw)) * c1;
                __asm__("" : "+x"(v)); /* rounded before the bias (no FMA), as torch's separate += */
                if (pb) v += pb[j];
                if (nout) { /* addmm: + x[:, outliers] @ the dequantized weight columns, summed
                             * first, each product rounded (no FMA), as torch's CPU addmm does */
                    float add = 0;
                    for (int64_t c = 0; c < k; c++) {
                        if (!outlier[c]) continue;
                        float p = px[r * k + c] * (((float)wj[c] * sw) * c2);
                        __asm__("" : "+x"(p));
                        add += p;
                    }
                    v += add;
                }
                po[r * n + j] = v;
            }
        }
    }
    free(xs); free(sca); free(ca); free(outlier);
    return st;
}
