/* Dequantization of ggml block formats, bit-exact with ggml-quants.c
 * (f16 scales widened to f32, products in f32, none fused: CMakeLists.txt
 * compiles this file with -ffp-contract=off, so kernels/block_dequant.cu can
 * give the same bits). Below io/ and ops/: the dtype traits (core/dtype.c)
 * point their to_f32 and dequant hooks here, which is how a cast of a block
 * tensor widens it without core/tensor_copy.c knowing any format; dequant
 * (lfl_block_dequant) goes on through the dispatch table to the tensor's
 * device. */
#include <string.h>
#include "../iter.h"
#include "../ops/optable.h"
#include "ggml.h"

static inline float h2f(const uint8_t *p) { return lfl_f16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

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

static void block(lfl_dtype dt, const uint8_t *b, float *y)
{
    switch (dt) {
    case LFL_Q4_0: {
        float d = h2f(b);
        const uint8_t *qs = b + 2;
        for (int j = 0; j < 16; j++) {
            y[j] = ((qs[j] & 0x0F) - 8) * d;
            y[j + 16] = ((qs[j] >> 4) - 8) * d;
        }
        break;
    }
    case LFL_Q4_1: {
        float d = h2f(b), m = h2f(b + 2);
        const uint8_t *qs = b + 4;
        for (int j = 0; j < 16; j++) {
            y[j] = (qs[j] & 0x0F) * d + m;
            y[j + 16] = (qs[j] >> 4) * d + m;
        }
        break;
    }
    case LFL_Q5_0: {
        float d = h2f(b);
        uint32_t qh = (uint32_t)b[2] | ((uint32_t)b[3] << 8) | ((uint32_t)b[4] << 16) | ((uint32_t)b[5] << 24);
        const uint8_t *qs = b + 6;
        for (int j = 0; j < 16; j++) {
            uint8_t xh0 = (uint8_t)(((qh >> j) << 4) & 0x10), xh1 = (uint8_t)((qh >> (j + 12)) & 0x10);
            y[j] = (((qs[j] & 0x0F) | xh0) - 16) * d;
            y[j + 16] = (((qs[j] >> 4) | xh1) - 16) * d;
        }
        break;
    }
    case LFL_Q5_1: {
        float d = h2f(b), m = h2f(b + 2);
        uint32_t qh = (uint32_t)b[4] | ((uint32_t)b[5] << 8) | ((uint32_t)b[6] << 16) | ((uint32_t)b[7] << 24);
        const uint8_t *qs = b + 8;
        for (int j = 0; j < 16; j++) {
            uint8_t xh0 = (uint8_t)(((qh >> j) << 4) & 0x10), xh1 = (uint8_t)((qh >> (j + 12)) & 0x10);
            y[j] = ((qs[j] & 0x0F) | xh0) * d + m;
            y[j + 16] = ((qs[j] >> 4) | xh1) * d + m;
        }
        break;
    }
    case LFL_Q8_0: {
        float d = h2f(b);
        const int8_t *qs = (const int8_t *)(b + 2);
        for (int j = 0; j < 32; j++) y[j] = qs[j] * d;
        break;
    }
    case LFL_Q4_K: {
        float d = h2f(b), min = h2f(b + 2);
        const uint8_t *scales = b + 4, *q = b + 16;
        int is = 0;
        uint8_t sc, m;
        for (int j = 0; j < 256; j += 64) {
            get_scale_min_k4(is + 0, scales, &sc, &m);
            float d1 = d * sc, m1 = min * m;
            get_scale_min_k4(is + 1, scales, &sc, &m);
            float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
            q += 32;
            is += 2;
        }
        break;
    }
    case LFL_Q5_K: {
        float d = h2f(b), min = h2f(b + 2);
        const uint8_t *scales = b + 4, *qh = b + 16, *ql = b + 48;
        int is = 0;
        uint8_t sc, m, u1 = 1, u2 = 2;
        for (int j = 0; j < 256; j += 64) {
            get_scale_min_k4(is + 0, scales, &sc, &m);
            float d1 = d * sc, m1 = min * m;
            get_scale_min_k4(is + 1, scales, &sc, &m);
            float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            ql += 32;
            is += 2;
            u1 = (uint8_t)(u1 << 2);
            u2 = (uint8_t)(u2 << 2);
        }
        break;
    }
    case LFL_Q6_K: {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        float d = h2f(b + 208);
        for (int n = 0; n < 256; n += 128) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int8_t q1 = (int8_t)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int8_t q2 = (int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int8_t q3 = (int8_t)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int8_t q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l + 0] = d * sc[is + 0] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
        break;
    }
    default: LFL_ASSERT(0);
    }
}

lfl_status lfl_dequantize_rows(lfl_dtype dt, const void *src, int64_t n, float *dst)
{
    const lfl_dtype_traits *tr = &lfl_dtypes[dt];
    if (!lfl_is_ggml(dt))
        return lfl_fail(LFL_ERR_UNSUPPORTED, "dequantize: %s is not a ggml block type", tr->name);
    if (n % tr->block) return lfl_fail(LFL_ERR_ARG, "dequantize: %lld elements is not a multiple of the %s block (%d)",
                                       (long long)n, tr->name, tr->block);
    int64_t nb = n / tr->block;
    const uint8_t *s = src;
#pragma omp parallel for if (n > LFL_OMP_MIN)
    for (int64_t i = 0; i < nb; i++) block(dt, s + i * tr->block_bytes, dst + i * tr->block);
    return LFL_OK;
}

lfl_status lfl_dequantize(lfl_tensor *q, lfl_tensor **out)
{
    LFL_TRY(lfl_empty(q->ndim, q->shape, LFL_F32, q->device, out));
    lfl_status st = lfl_block_dequant(q, *out);
    if (st) { lfl_tensor_release(*out); *out = NULL; }
    return st;
}

lfl_status lfl_block_dequant(lfl_tensor *q, lfl_tensor *out)
{
    char b[128];
    if (!lfl_is_ggml(q->dtype))
        return lfl_fail(LFL_ERR_ARG, "dequantize: %s is not a GGUF block type", lfl_dtype_name(q->dtype));
    /* a permuted or expanded view would need a gather of whole blocks */
    if (!lfl_is_contiguous(q))
        return lfl_fail(LFL_ERR_ARG, "dequantize: a %s tensor must be whole and contiguous, got a view of shape %s",
                        lfl_dtype_name(q->dtype), lfl_shape_str(q, b, sizeof b));
    if (out->dtype != LFL_F32 || !lfl_is_contiguous(out) || lfl_numel(out) != lfl_numel(q) || out->device != q->device)
        return lfl_fail(LFL_ERR_ARG, "dequantize: the output must be a contiguous f32 tensor of %lld elements on "
                        "the %s tensor's device", (long long)lfl_numel(q), lfl_dtype_name(q->dtype));
    if (lfl_numel(q) == 0) return LFL_OK;
    lfl_block_dequant_kernel fn;
    LFL_TRY(lfl_dispatch_block_dequant(q->device, "dequantize", &fn));
    return fn(q, out);
}

lfl_status lfl_ggml_check(const char *op, const lfl_tensor *q)
{
    char b[128];
    if (!lfl_is_ggml(q->dtype))
        return lfl_fail(LFL_ERR_ARG, "%s: %s is not a GGUF block type", op, lfl_dtype_name(q->dtype));
    if (q->device != LFL_CPU) return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: CUDA block tensors are not supported yet", op);
    int blk = lfl_dtypes[q->dtype].block;
    if (q->ndim != 2 || q->shape[1] % blk || !lfl_is_contiguous(q))
        return lfl_fail(LFL_ERR_ARG, "%s: a %s weight must be a whole 2-D tensor of rows of %d-element blocks, got %s",
                        op, lfl_dtype_name(q->dtype), blk, lfl_shape_str(q, b, sizeof b));
    return LFL_OK;
}

void lfl_ggml_dequant_tile(const lfl_tensor *q, int64_t r0, int64_t rows, int64_t c0, int64_t cols, float *dst)
{
    const lfl_dtype_traits *tr = &lfl_dtypes[q->dtype];
    int64_t blk = tr->block, bb = tr->block_bytes, row_bytes = q->shape[1] / blk * bb;
    LFL_ASSERT(c0 % blk == 0 && cols % blk == 0);
    const uint8_t *base = (const uint8_t *)lfl_data(q) + (c0 / blk) * bb;
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *p = base + (r0 + r) * row_bytes;
        for (int64_t c = 0; c < cols; c += blk, p += bb) block(q->dtype, p, dst + r * cols + c);
    }
}

/* the 32-element kinds, n consecutive blocks: one loop per kind so that the
 * nibble / byte loops vectorize */
static void unpack32(lfl_dtype dt, const uint8_t *restrict b, int64_t n, uint8_t *restrict u, float *restrict d,
                     float *restrict m)
{
    int64_t bb = lfl_dtypes[dt].block_bytes;
    switch (dt) {
    case LFL_Q4_0: case LFL_Q4_1: {
        bool offs = dt == LFL_Q4_1;
        for (int64_t i = 0; i < n; i++, b += bb, u += 32) {
            float s = h2f(b), mn = offs ? h2f(b + 2) : -8.0f * s;
            const uint8_t *restrict qs = b + (offs ? 4 : 2);
            for (int j = 0; j < 16; j++) {
                u[j] = (uint8_t)(qs[j] & 0x0F);
                u[j + 16] = (uint8_t)(qs[j] >> 4);
            }
            d[2 * i] = d[2 * i + 1] = s;
            m[2 * i] = m[2 * i + 1] = mn;
        }
        break;
    }
    case LFL_Q5_0: case LFL_Q5_1: {
        bool offs = dt == LFL_Q5_1;
        for (int64_t i = 0; i < n; i++, b += bb, u += 32) {
            float s = h2f(b), mn = offs ? h2f(b + 2) : -16.0f * s;
            const uint8_t *p = b + (offs ? 4 : 2), *qs = p + 4;
            uint32_t qh = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
            for (int j = 0; j < 16; j++) {
                u[j] = (uint8_t)((qs[j] & 0x0F) | (((qh >> j) << 4) & 0x10));
                u[j + 16] = (uint8_t)((qs[j] >> 4) | ((qh >> (j + 12)) & 0x10));
            }
            d[2 * i] = d[2 * i + 1] = s;
            m[2 * i] = m[2 * i + 1] = mn;
        }
        break;
    }
    case LFL_Q8_0:
        for (int64_t i = 0; i < n; i++, b += bb, u += 32) {
            float s = h2f(b);
            for (int j = 0; j < 32; j++) u[j] = (uint8_t)(b[2 + j] ^ 0x80); /* int8 + 128 */
            d[2 * i] = d[2 * i + 1] = s;
            m[2 * i] = m[2 * i + 1] = -128.0f * s;
        }
        break;
    default: LFL_ASSERT(0);
    }
}

static void unpack_k(lfl_dtype dt, const uint8_t *restrict b, uint8_t *restrict u, float *restrict d,
                     float *restrict m)
{
    switch (dt) {
    case LFL_Q4_K: case LFL_Q5_K: {
        bool q5 = dt == LFL_Q5_K;
        float s = h2f(b), min = h2f(b + 2);
        const uint8_t *scales = b + 4, *qh = b + 16, *q = b + (q5 ? 48 : 16);
        uint8_t sc, mn, u1 = 1, u2 = 2;
        for (int j = 0; j < 4; j++) { /* 64 elements: the low nibbles of 32 bytes, then the high ones */
            get_scale_min_k4(2 * j, scales, &sc, &mn);
            d[4 * j] = d[4 * j + 1] = s * sc;
            m[4 * j] = m[4 * j + 1] = -(min * mn);
            get_scale_min_k4(2 * j + 1, scales, &sc, &mn);
            d[4 * j + 2] = d[4 * j + 3] = s * sc;
            m[4 * j + 2] = m[4 * j + 3] = -(min * mn);
            if (q5) {
                for (int l = 0; l < 32; l++) {
                    u[64 * j + l] = (uint8_t)((q[l] & 0xF) + (qh[l] & u1 ? 16 : 0));
                    u[64 * j + 32 + l] = (uint8_t)((q[l] >> 4) + (qh[l] & u2 ? 16 : 0));
                }
            } else {
                for (int l = 0; l < 32; l++) {
                    u[64 * j + l] = (uint8_t)(q[l] & 0xF);
                    u[64 * j + 32 + l] = (uint8_t)(q[l] >> 4);
                }
            }
            q += 32;
            u1 = (uint8_t)(u1 << 2);
            u2 = (uint8_t)(u2 << 2);
        }
        break;
    }
    case LFL_Q6_K: {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        float s = h2f(b + 208);
        for (int n = 0; n < 2; n++) { /* two halves of 128: groups of 16 use sc[0..7] in order */
            for (int l = 0; l < 32; l++) {
                u[l + 0] = (uint8_t)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4));
                u[l + 32] = (uint8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
                u[l + 64] = (uint8_t)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4));
                u[l + 96] = (uint8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
            }
            for (int g = 0; g < 8; g++) {
                d[8 * n + g] = s * sc[g];
                m[8 * n + g] = -32.0f * d[8 * n + g];
            }
            u += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
        break;
    }
    default: LFL_ASSERT(0);
    }
}

void lfl_ggml_unpack_blocks(lfl_dtype dt, const uint8_t *b, int64_t n, uint8_t *u, float *d, float *m)
{
    if (lfl_dtypes[dt].block == 32) { unpack32(dt, b, n, u, d, m); return; }
    int64_t bb = lfl_dtypes[dt].block_bytes;
    for (int64_t i = 0; i < n; i++) unpack_k(dt, b + i * bb, u + 256 * i, d + 16 * i, m + 16 * i);
}

void lfl_ggml_unpack(lfl_dtype dt, const uint8_t *b, uint8_t *u, float *d, float *m)
{
    lfl_ggml_unpack_blocks(dt, b, 1, u, d, m);
}

lfl_status lfl_ggml_unpermute_rows(const lfl_tensor *q, int64_t n_head, lfl_tensor **out)
{
    char b[128];
    LFL_TRY(lfl_ggml_check("unpermute", q));
    int64_t rows = q->shape[0];
    if (n_head < 1 || rows % n_head || (rows / n_head) % 2)
        return lfl_fail(LFL_ERR_ARG, "unpermute: %s rows of %s do not split into %lld heads of an even size",
                        lfl_dtype_name(q->dtype), lfl_shape_str(q, b, sizeof b), (long long)n_head);
    LFL_TRY(lfl_empty(2, q->shape, q->dtype, LFL_CPU, out));
    int64_t hd = rows / n_head, half = hd / 2;
    size_t rb = lfl_dtype_nbytes(q->dtype, q->shape[1]);
    const char *src = lfl_data(q);
    char *dst = lfl_data(*out);
    /* HF row h*hd + a*half + i is llama.cpp's row h*hd + 2*i + a */
    for (int64_t h = 0; h < n_head; h++)
        for (int64_t a = 0; a < 2; a++)
            for (int64_t i = 0; i < half; i++)
                memcpy(dst + (h * hd + a * half + i) * (int64_t)rb, src + (h * hd + 2 * i + a) * (int64_t)rb, rb);
    return LFL_OK;
}
