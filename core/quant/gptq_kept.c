/* GPTQ / AWQ 4-bit weights kept quantized (LFL_GPTQ4, see gptq.h): packing a
 * checkpoint's tensors into the kept layout, the tile dequantizer the GEMM
 * (ops/gptq_gemm.c) reads through, and whole-weight dequantization for merge
 * and export. The tile runs along the outputs, where the codes of one input
 * lie in consecutive words: with AVX-512 16 outputs a step (shift, mask,
 * subtract the zeros, times the scales, rounded to the scales' dtype). */
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#endif
#include "../dtype.h"
#include "../iter.h"
#include "bnb4.h"
#include "gptq.h"

static lfl_status need_i32(const char *who, const char *what, const lfl_tensor *t, int ndim)
{
    if (!t || t->dtype != LFL_I32 || t->ndim != ndim || !lfl_is_contiguous(t) || t->device != LFL_CPU)
        return lfl_fail(LFL_ERR_ARG, "%s: %s must be a contiguous %d-D i32 CPU tensor", who, what, ndim);
    return LFL_OK;
}

static lfl_status need_scales(const char *who, const lfl_tensor *s, int64_t groups, int64_t out)
{
    if (!s || (s->dtype != LFL_F32 && s->dtype != LFL_F16 && s->dtype != LFL_BF16) || s->ndim != 2 ||
        !lfl_is_contiguous(s) || s->device != LFL_CPU || s->shape[0] != groups || s->shape[1] != out)
        return lfl_fail(LFL_ERR_ARG, "%s: scales must be a contiguous float [%lld, %lld] CPU tensor", who,
                        (long long)groups, (long long)out);
    return LFL_OK;
}

/* a heap copy of contiguous t (the checkpoint's mmap is not kept alive by the weight) */
static lfl_status heap_copy(const lfl_tensor *t, lfl_tensor **out)
{
    LFL_TRY(lfl_empty(t->ndim, t->shape, t->dtype, LFL_CPU, out));
    memcpy(lfl_data(*out), lfl_data(t), lfl_dtype_nbytes(t->dtype, lfl_numel(t)));
    return LFL_OK;
}

/* the LFL_GPTQ4 tensor [o, in] with empty codes and a state of `groups` groups */
static lfl_status kept_new(int64_t o, int64_t in, int64_t groups, int64_t group_size, lfl_tensor **out)
{
    struct lfl_qstate *st = calloc(1, sizeof *st);
    if (!st) return lfl_fail(LFL_ERR_MEM, "gptq: out of memory");
    st->refcount = 1;
    st->to_f32 = lfl_gptq_to_f32;
    st->group_size = group_size;
    int64_t shape[2] = {o, in}, zshape[2] = {groups, o};
    lfl_tensor *q = NULL;
    lfl_status s = lfl_empty(2, shape, LFL_GPTQ4, LFL_CPU, &q);
    if (s == LFL_OK) s = lfl_empty(2, zshape, LFL_U8, LFL_CPU, &st->gzeros);
    if (s) { lfl_qstate_release(st); lfl_tensor_release(q); return s; }
    q->quant = st;
    *out = q;
    return LFL_OK;
}

lfl_status lfl_gptq_pack(const lfl_tensor *qweight, const lfl_tensor *qzeros, const lfl_tensor *scales,
                         const lfl_tensor *g_idx, int64_t group_size, bool v1, lfl_tensor **out)
{
    const char *who = "gptq";
    LFL_TRY(need_i32(who, "qweight", qweight, 2));
    LFL_TRY(need_i32(who, "qzeros", qzeros, 2));
    int64_t in = qweight->shape[0] * 8, o = qweight->shape[1], groups = qzeros->shape[0];
    if (qzeros->shape[1] * 8 != o)
        return lfl_fail(LFL_ERR_ARG, "gptq: qzeros [%lld, %lld] packs %lld outputs at 4 bits, qweight has %lld",
                        (long long)groups, (long long)qzeros->shape[1], (long long)qzeros->shape[1] * 8, (long long)o);
    LFL_TRY(need_scales(who, scales, groups, o));
    if (g_idx) {
        LFL_TRY(need_i32(who, "g_idx", g_idx, 1));
        if (g_idx->shape[0] != in)
            return lfl_fail(LFL_ERR_ARG, "gptq: g_idx has %lld rows, qweight unpacks to %lld inputs",
                            (long long)g_idx->shape[0], (long long)in);
    }
    if (!g_idx && (group_size <= 0 || (in + group_size - 1) / group_size != groups))
        return lfl_fail(LFL_ERR_ARG, "gptq: %lld inputs in groups of %lld do not make %lld groups", (long long)in,
                        (long long)group_size, (long long)groups);
    const int32_t *gi = g_idx ? lfl_data(g_idx) : NULL;
    bool plain = group_size > 0 && (in + group_size - 1) / group_size == groups;
    for (int64_t i = 0; gi && i < in; i++) {
        if (gi[i] < 0 || gi[i] >= groups)
            return lfl_fail(LFL_ERR_FORMAT, "gptq: g_idx[%lld] = %d is not a group (0..%lld)", (long long)i, gi[i],
                            (long long)groups - 1);
        if (gi[i] != i / (group_size > 0 ? group_size : 1)) plain = false;
    }
    lfl_tensor *q = NULL;
    LFL_TRY(kept_new(o, in, groups, group_size, &q));
    struct lfl_qstate *st = q->quant;
    memcpy(lfl_data(q), lfl_data(qweight), sizeof(uint32_t) * (size_t)(in / 8 * o));
    const uint32_t *qz = lfl_data(qzeros);
    uint8_t *z = lfl_data(st->gzeros);
    for (int64_t g = 0; g < groups; g++)
        for (int64_t r = 0; r < o; r++) {
            uint32_t v = (qz[g * (o / 8) + r / 8] >> (4 * (r % 8))) & 15u;
            z[g * o + r] = (uint8_t)(v1 ? (v + 1) & 15u : v);
        }
    lfl_status s = heap_copy(scales, &st->gscales);
    if (s == LFL_OK && gi && !plain) s = heap_copy(g_idx, &st->gidx);
    if (s) { lfl_tensor_release(q); return s; }
    *out = q;
    return LFL_OK;
}

/* AutoAWQ's AWQ_ORDER: word nibble k holds output column 8 j + ORDER[k] */
static const int AWQ_ORDER[8] = {0, 2, 4, 6, 1, 3, 5, 7};

lfl_status lfl_awq_pack(const lfl_tensor *qweight, const lfl_tensor *qzeros, const lfl_tensor *scales,
                        int64_t group_size, lfl_tensor **out)
{
    const char *who = "awq";
    LFL_TRY(need_i32(who, "qweight", qweight, 2));
    LFL_TRY(need_i32(who, "qzeros", qzeros, 2));
    int64_t in = qweight->shape[0], o = qweight->shape[1] * 8, groups = qzeros->shape[0], words = o / 8;
    if (qzeros->shape[1] * 8 != o)
        return lfl_fail(LFL_ERR_ARG, "awq: qzeros packs %lld outputs, qweight %lld", (long long)qzeros->shape[1] * 8,
                        (long long)o);
    if (group_size <= 0 || in % group_size || in / group_size != groups)
        return lfl_fail(LFL_ERR_ARG, "awq: %lld inputs in groups of %lld do not make %lld groups", (long long)in,
                        (long long)group_size, (long long)groups);
    if (in % 8)
        return lfl_fail(LFL_ERR_ARG, "awq: %lld inputs: kept quantized, a linear needs a multiple of 8", (long long)in);
    LFL_TRY(need_scales(who, scales, groups, o));
    lfl_tensor *q = NULL;
    LFL_TRY(kept_new(o, in, groups, group_size, &q));
    struct lfl_qstate *st = q->quant;
    const uint32_t *qw = lfl_data(qweight), *qz = lfl_data(qzeros);
    uint32_t *dst = lfl_data(q);
    uint8_t *z = lfl_data(st->gzeros);
#pragma omp parallel for schedule(static) if (in * o > LFL_OMP_MIN)
    for (int64_t i8 = 0; i8 < in / 8; i8++)
        for (int64_t wc = 0; wc < words; wc++) {
            uint32_t acc[8] = {0};
            for (int s = 0; s < 8; s++) {
                uint32_t w = qw[(i8 * 8 + s) * words + wc];
                for (int k = 0; k < 8; k++) acc[AWQ_ORDER[k]] |= ((w >> (4 * k)) & 15u) << (4 * s);
            }
            for (int c = 0; c < 8; c++) dst[i8 * o + wc * 8 + c] = acc[c];
        }
    for (int64_t g = 0; g < groups; g++)
        for (int64_t wc = 0; wc < words; wc++)
            for (int k = 0; k < 8; k++) z[g * o + wc * 8 + AWQ_ORDER[k]] = (uint8_t)((qz[g * words + wc] >> (4 * k)) & 15u);
    lfl_status s = heap_copy(scales, &st->gscales);
    if (s) { lfl_tensor_release(q); return s; }
    *out = q;
    return LFL_OK;
}

lfl_status lfl_gptq_check(const char *op, const lfl_tensor *q)
{
    const struct lfl_qstate *st = q->quant;
    if (q->dtype != LFL_GPTQ4 || !st || !st->gzeros || !st->gscales)
        return lfl_fail(LFL_ERR_ARG, "%s: %s tensor is not a kept GPTQ/AWQ weight (made by gptq_pack / awq_pack)", op,
                        lfl_dtype_name(q->dtype));
    if (q->offset != 0 || q->ndim != 2 || !lfl_is_contiguous(q) || q->shape[0] != st->gzeros->shape[1] ||
        q->device != LFL_CPU)
        return lfl_fail(LFL_ERR_ARG, "%s: a view of a GPTQ/AWQ weight cannot be used; take the whole tensor", op);
    return LFL_OK;
}

static int force_portable;

int lfl_gptq_portable(int on)
{
    int prev = __atomic_load_n(&force_portable, __ATOMIC_RELAXED);
    if (on >= 0) __atomic_store_n(&force_portable, on ? 1 : 0, __ATOMIC_RELAXED);
    return prev;
}

/* one input row of the tile: d[o - o0] = W[o, i] for o in [o0, o0 + no) */
static void row_portable(const uint32_t *w, int sh, const uint8_t *z, const void *sc, lfl_dtype sdt, int64_t no,
                         float *d)
{
    if (sdt == LFL_F16) {
        const uint16_t *s = sc;
        for (int64_t j = 0; j < no; j++)
            d[j] = lfl_f16_to_f32(lfl_f32_to_f16(lfl_f16_to_f32(s[j]) * (float)((int)((w[j] >> sh) & 15u) - z[j])));
    } else if (sdt == LFL_BF16) {
        const uint16_t *s = sc;
        for (int64_t j = 0; j < no; j++)
            d[j] = lfl_bf16_to_f32(lfl_f32_to_bf16(lfl_bf16_to_f32(s[j]) * (float)((int)((w[j] >> sh) & 15u) - z[j])));
    } else {
        const float *s = sc;
        for (int64_t j = 0; j < no; j++) d[j] = s[j] * (float)((int)((w[j] >> sh) & 15u) - z[j]);
    }
}

#ifdef HAVE_X86
static bool have_avx512(void)
{
    static int known = -1;
    if (known < 0) known = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                           __builtin_cpu_supports("avx512vl");
    return known;
}

/* 16 outputs a step; the last < 16 under a mask. The product of an f16/bf16
 * scale and a 5-bit integer is exact in f32, so rounding it once to the
 * scales' dtype gives torch's f16 * int product. */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void row_avx512(const uint32_t *w, int sh, const uint8_t *z,
                                                                   const void *sc, lfl_dtype sdt, int64_t no, float *d)
{
    const __m512i m15 = _mm512_set1_epi32(15), rnd = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1);
    const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
    const __m128i shc = _mm_cvtsi32_si128(sh);
    for (int64_t j = 0; j < no; j += 16) {
        __mmask16 k = no - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (no - j)) - 1u);
        __m512i q = _mm512_and_si512(_mm512_srl_epi32(_mm512_maskz_loadu_epi32(k, w + j), shc), m15);
        __m512i zz = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, z + j));
        __m512 f = _mm512_cvtepi32_ps(_mm512_sub_epi32(q, zz)), v;
        if (sdt == LFL_F32) {
            v = _mm512_mul_ps(f, _mm512_maskz_loadu_ps(k, (const float *)sc + j));
        } else if (sdt == LFL_F16) {
            __m512 s = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, (const uint16_t *)sc + j));
            v = _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_mul_ps(f, s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        } else { /* bf16: widen by a shift, round the product to nearest even on its top 16 bits */
            __m512i s16 = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, (const uint16_t *)sc + j));
            __m512i u = _mm512_castps_si512(_mm512_mul_ps(f, _mm512_castsi512_ps(_mm512_slli_epi32(s16, 16))));
            u = _mm512_add_epi32(u, _mm512_add_epi32(rnd, _mm512_and_si512(_mm512_srli_epi32(u, 16), one)));
            v = _mm512_castsi512_ps(_mm512_and_si512(u, hi));
        }
        _mm512_mask_storeu_ps(d + j, k, v);
    }
}
#endif

static bool use_avx512(void)
{
#ifdef HAVE_X86
    return have_avx512() && !__atomic_load_n(&force_portable, __ATOMIC_RELAXED);
#else
    return false;
#endif
}

const char *lfl_gptq_kernel(void) { return use_avx512() ? "avx512" : "portable"; }

void lfl_gptq_dequant_tile_t(const lfl_tensor *q, int64_t i0, int64_t ni, int64_t o0, int64_t no, float *dst,
                             int64_t ld)
{
    const struct lfl_qstate *st = q->quant;
    int64_t o = q->shape[0], gs = st->group_size;
    const uint32_t *qw = lfl_data(q);
    const uint8_t *z = lfl_data(st->gzeros);
    const int32_t *gi = st->gidx ? lfl_data(st->gidx) : NULL;
    lfl_dtype sdt = st->gscales->dtype;
    const char *sc = lfl_data(st->gscales);
    size_t es = lfl_dtype_size(sdt);
    bool vec = use_avx512();
    for (int64_t r = 0; r < ni; r++) {
        int64_t i = i0 + r, g = gi ? gi[i] : i / gs;
        const uint32_t *w = qw + (i / 8) * o + o0;
        const uint8_t *zr = z + g * o + o0;
        const void *sr = sc + (size_t)(g * o + o0) * es;
        int sh = (int)(4 * (i % 8));
#ifdef HAVE_X86
        if (vec) { row_avx512(w, sh, zr, sr, sdt, no, dst + r * ld); continue; }
#else
        (void)vec;
#endif
        row_portable(w, sh, zr, sr, sdt, no, dst + r * ld);
    }
}

bool lfl_gptq_dequant_rows(const lfl_tensor *q, int64_t r0, int64_t n, float *dst)
{
    int64_t in = q->shape[1];
    float *t = malloc(sizeof(float) * (size_t)(8 * (n > 0 ? n : 1)));
    if (!t) return false;
    for (int64_t i0 = 0; i0 < in; i0 += 8) {
        int64_t ni = in - i0 < 8 ? in - i0 : 8;
        lfl_gptq_dequant_tile_t(q, i0, ni, r0, n, t, n);
        for (int64_t a = 0; a < ni; a++)
            for (int64_t r = 0; r < n; r++) dst[r * in + i0 + a] = t[a * n + r];
    }
    free(t);
    return true;
}

lfl_status lfl_gptq_to_f32(lfl_tensor *q, lfl_tensor **out)
{
    LFL_TRY(lfl_gptq_check("dequantize", q));
    LFL_TRY(lfl_empty(2, q->shape, LFL_F32, LFL_CPU, out));
    int64_t o = q->shape[0], rows = 64, nb = (o + rows - 1) / rows;
    float *w = lfl_data(*out);
    int failed = 0;
#pragma omp parallel for schedule(static) reduction(| : failed) if (lfl_numel(q) > LFL_OMP_MIN)
    for (int64_t b = 0; b < nb; b++) {
        int64_t r0 = b * rows, n = o - r0 < rows ? o - r0 : rows;
        if (!lfl_gptq_dequant_rows(q, r0, n, w + r0 * q->shape[1])) failed = 1;
    }
    if (failed) {
        lfl_tensor_release(*out);
        *out = NULL;
        return lfl_fail(LFL_ERR_MEM, "dequantize (gptq4): out of memory");
    }
    return LFL_OK;
}

size_t lfl_gptq_nbytes(const lfl_tensor *q)
{
    const struct lfl_qstate *st = q->quant;
    size_t n = lfl_dtype_nbytes(q->dtype, lfl_numel(q));
    if (!st) return n;
    if (st->gzeros) n += (size_t)lfl_numel(st->gzeros);
    if (st->gscales) n += lfl_dtype_nbytes(st->gscales->dtype, lfl_numel(st->gscales));
    if (st->gidx) n += sizeof(int32_t) * (size_t)lfl_numel(st->gidx);
    return n;
}
