/* bitsandbytes' 4-bit blockwise quantization (NF4/FP4) and its double
 * quantization, bit for bit as bitsandbytes 0.50 does it on the CPU (goldens:
 * tests/ref/make_nf4_goldens.py): the 4-bit codes as its default backend
 * (scaled = clamp(x * (1 / absmax)), bucketize against the midpoints of the
 * sorted code), the 8-bit absmax codes as its C++ CPU kernel (a 65536-bin
 * lookup table over [-1, 1], quantize_cpu_impl in csrc/cpu_ops.cpp). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "../iter.h"
#include "../autograd.h"
#include "../device.h"
#include "../ops/optable.h"
#include "../optim/adamw8bit.h"
#include "bnb4.h"

/* get_4bit_type("nf4"): create_normal_map(offset=0.9677083, use_extra_value=True) */
static const float NF4[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};
/* get_4bit_type("fp4"): {0, 0.0625, 8, 12, 4, 6, 2, 3, -0, ...} / 12 in f32 (index 8 is +0 too) */
static const float FP4[16] = {
    0.0f, 0.0052083334885537624f, 0.6666666865348816f, 1.0f,
    0.3333333432674408f, 0.5f, 0.1666666716337204f, 0.25f,
    0.0f, -0.0052083334885537624f, -0.6666666865348816f, -1.0f,
    -0.3333333432674408f, -0.5f, -0.1666666716337204f, -0.25f,
};
/* torch.argsort(FP4) as bitsandbytes gets it: the code index of each sorted position
 * (of the two zeros, 0 takes x <= 0 and 8 takes x > 0) */
static const uint8_t FP4_ORDER[16] = {11, 10, 13, 12, 15, 14, 9, 0, 8, 1, 6, 7, 4, 5, 2, 3};
static const uint8_t IDENTITY[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

const float *lfl_q4_code(lfl_dtype kind) { return kind == LFL_FP4 ? FP4 : NF4; }

void lfl_qstate_retain(struct lfl_qstate *s)
{
    if (s) __atomic_add_fetch(&s->refcount, 1, __ATOMIC_RELAXED);
}

void lfl_qstate_release(struct lfl_qstate *s)
{
    if (!s || __atomic_sub_fetch(&s->refcount, 1, __ATOMIC_ACQ_REL) != 0) return;
    lfl_tensor_release(s->absmax);
    lfl_tensor_release(s->qabsmax);
    lfl_tensor_release(s->absmax2);
    lfl_tensor_release(s->scb);
    lfl_tensor_release(s->gzeros);
    lfl_tensor_release(s->gscales);
    lfl_tensor_release(s->gidx);
    free(s);
}

/* x as f32 for the three input dtypes */
static inline float load_f32(lfl_dtype dt, const void *p, int64_t i)
{
    if (dt == LFL_F32) return ((const float *)p)[i];
    if (dt == LFL_BF16) return lfl_bf16_to_f32(((const uint16_t *)p)[i]);
    return lfl_f16_to_f32(((const uint16_t *)p)[i]);
}

/* the 4-bit codes and f32 absmax of one 64-block (bitsandbytes' default backend) */
static void quant_block4(lfl_dtype dt, const void *src, int64_t s, const float *bounds, const uint8_t *order,
                         uint8_t *packed, float *absmax)
{
    float x[LFL_Q4_BLOCK], am = 0;
    for (int i = 0; i < LFL_Q4_BLOCK; i++) {
        x[i] = load_f32(dt, src, s + i);
        am = fmaxf(am, fabsf(x[i]));
    }
    *absmax = am;
    float inv = 1.0f / fmaxf(am, 1e-38f);
    uint8_t q[LFL_Q4_BLOCK];
    for (int i = 0; i < LFL_Q4_BLOCK; i++) {
        float v = fminf(1.0f, fmaxf(-1.0f, x[i] * inv));
        int k = 0; /* torch.bucketize (right=False): the number of bounds below v (sorted) */
        for (int j = 0; j < 15; j++) k += bounds[j] < v;
        q[i] = order[k];
    }
    for (int i = 0; i < LFL_Q4_BLOCK; i += 2) packed[i / 2] = (uint8_t)(q[i] << 4 | q[i + 1]);
}

/* bitsandbytes' CPU quantize_blockwise lookup table: bin i of 65536 over [-1, 1]
 * holds the code index whose midpoint interval contains -1 + 2i / 65535 */
static void build_lut(const float code[256], uint8_t *lut)
{
    float mid[255];
    for (int i = 0; i < 255; i++) mid[i] = 0.5f * (code[i] + code[i + 1]);
    int c = 0;
    for (int i = 0; i < 65536; i++) {
        float v = -1.0f + (2.0f * (float)i) / 65535.0f;
        while (c < 255 && mid[c] < v) c++;
        lut[i] = (uint8_t)c;
    }
}

/* ((v + 1) * 0.5) * 65535 + 0.5, truncated, each step rounded to f32 as the
 * C++ kernel does (the barrier keeps the compiler from fusing into an FMA) */
static inline uint16_t lut_index(float v)
{
    v = fminf(1.0f, fmaxf(-1.0f, v));
    float t = (v + 1.0f) * 0.5f;
    t = t * 65535.0f;
    __asm__("" : "+x"(t));
    t = t + 0.5f;
    return (uint16_t)(uint32_t)t;
}

/* double quantization of absmax[0 .. n): offset = mean, then (absmax - offset)
 * in 256-blocks with the dynamic map */
static lfl_status quantize_absmax(const float *absmax, int64_t n, struct lfl_qstate *st)
{
    /* absmax.mean(): torch sums f32 with a cascade; the sum in double is as close */
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += absmax[i];
    st->offset = (float)(sum / (double)n);
    lfl_qmap_dynamic(true, st->code2);
    int64_t n2 = (n + LFL_Q4_DQ_BLOCK - 1) / LFL_Q4_DQ_BLOCK, s1 = n, s2 = n2;
    LFL_TRY(lfl_empty(1, &s1, LFL_U8, LFL_CPU, &st->qabsmax));
    LFL_TRY(lfl_empty(1, &s2, LFL_F32, LFL_CPU, &st->absmax2));
    uint8_t *lut = malloc(65536), *q = lfl_data(st->qabsmax);
    float *a2 = lfl_data(st->absmax2);
    if (!lut) return lfl_fail(LFL_ERR_MEM, "quantize_4bit: out of memory");
    build_lut(st->code2, lut);
    for (int64_t b = 0; b < n2; b++) {
        int64_t s = b * LFL_Q4_DQ_BLOCK, e = s + LFL_Q4_DQ_BLOCK < n ? s + LFL_Q4_DQ_BLOCK : n;
        float am = 0;
        for (int64_t i = s; i < e; i++) am = fmaxf(am, fabsf(absmax[i] - st->offset));
        a2[b] = am;
        float inv = am == 0.0f ? 0.0f : 1.0f / am;
        for (int64_t i = s; i < e; i++) q[i] = am == 0.0f ? 0 : lut[lut_index((absmax[i] - st->offset) * inv)];
    }
    free(lut);
    return LFL_OK;
}

lfl_status lfl_quantize_4bit(lfl_tensor *w, lfl_dtype kind, bool double_quant, lfl_tensor **out)
{
    char b[128];
    if (!lfl_is_q4(kind)) return lfl_fail(LFL_ERR_ARG, "quantize_4bit: kind must be nf4 or fp4, got %s", lfl_dtype_name(kind));
    if (w->device != LFL_CPU) return lfl_fail(LFL_ERR_UNSUPPORTED, "quantize_4bit: CUDA tensors are not supported yet");
    if (lfl_dtype_is_block(w->dtype) && lfl_dtypes[w->dtype].to_f32) {
        /* a GGUF block tensor: through an f32 copy that goes as soon as it is quantized */
        lfl_tensor *f = NULL;
        LFL_TRY(lfl_cast(w, LFL_F32, &f));
        lfl_status st = lfl_quantize_4bit(f, kind, double_quant, out);
        lfl_tensor_release(f);
        return st;
    }
    if (w->dtype != LFL_F32 && w->dtype != LFL_BF16 && w->dtype != LFL_F16)
        return lfl_fail(LFL_ERR_ARG, "quantize_4bit: takes an f32, bf16, f16 or GGUF block tensor, got %s",
                        lfl_dtype_name(w->dtype));
    int64_t n = lfl_numel(w);
    if (n == 0 || n % LFL_Q4_BLOCK)
        return lfl_fail(LFL_ERR_ARG, "quantize_4bit: a tensor of %s has %lld elements, not a (non-zero) multiple of "
                        "the block of %d", lfl_shape_str(w, b, sizeof b), (long long)n, LFL_Q4_BLOCK);
    lfl_tensor *c = NULL, *q = NULL;
    LFL_TRY(lfl_contiguous(w, &c));
    int64_t nb = n / LFL_Q4_BLOCK;
    struct lfl_qstate *st = calloc(1, sizeof *st);
    lfl_status s = st ? LFL_OK : lfl_fail(LFL_ERR_MEM, "quantize_4bit: out of memory");
    if (s == LFL_OK) {
        st->refcount = 1;
        st->nblocks = nb;
        st->to_f32 = lfl_q4_dequantize;
        s = lfl_empty(w->ndim, w->shape, kind, LFL_CPU, &q);
    }
    if (s == LFL_OK) s = lfl_empty(1, &nb, LFL_F32, LFL_CPU, &st->absmax);
    if (s == LFL_OK) {
        const float *code = lfl_q4_code(kind);
        const uint8_t *order = kind == LFL_FP4 ? FP4_ORDER : IDENTITY;
        float bounds[15];
        for (int i = 0; i < 15; i++) bounds[i] = (code[order[i]] + code[order[i + 1]]) / 2.0f;
        uint8_t *packed = lfl_data(q);
        float *am = lfl_data(st->absmax);
        const void *src = lfl_data(c);
        lfl_dtype dt = c->dtype;
#pragma omp parallel for schedule(static) if (n > LFL_OMP_MIN)
        for (int64_t i = 0; i < nb; i++)
            quant_block4(dt, src, i * LFL_Q4_BLOCK, bounds, order, packed + i * (LFL_Q4_BLOCK / 2), am + i);
    }
    if (s == LFL_OK && double_quant) {
        s = quantize_absmax(lfl_data(st->absmax), nb, st);
        lfl_tensor_release(st->absmax);
        st->absmax = NULL;
    }
    lfl_tensor_release(c);
    if (s) {
        lfl_qstate_release(st);
        lfl_tensor_release(q);
        return s;
    }
    q->quant = st;
    *out = q;
    return LFL_OK;
}

lfl_status lfl_q4_check(const char *op, const lfl_tensor *q)
{
    if (!lfl_is_q4(q->dtype) || !q->quant)
        return lfl_fail(LFL_ERR_ARG, "%s: %s tensor has no 4-bit quantization state (make it with quantize_4bit)", op,
                        lfl_dtype_name(q->dtype));
    if (q->offset != 0 || !lfl_is_contiguous(q) || lfl_numel(q) != q->quant->nblocks * LFL_Q4_BLOCK)
        return lfl_fail(LFL_ERR_ARG, "%s: a view of a %s tensor cannot be used; take the whole tensor", op,
                        lfl_dtype_name(q->dtype));
    return LFL_OK;
}

void lfl_q4_scales(const lfl_tensor *q, int64_t b0, int64_t n, float *dst)
{
    const struct lfl_qstate *st = q->quant;
    if (st->absmax) {
        memcpy(dst, (const float *)lfl_data(st->absmax) + b0, sizeof(float) * (size_t)n);
        return;
    }
    const uint8_t *qa = lfl_data(st->qabsmax);
    const float *a2 = lfl_data(st->absmax2);
    for (int64_t i = 0; i < n; i++) {
        int64_t b = b0 + i;
        float v = st->code2[qa[b]] * a2[b / LFL_Q4_DQ_BLOCK]; /* dequantize_blockwise, then + offset */
        dst[i] = v + st->offset;
    }
}

void lfl_q4_dequant_range(const lfl_tensor *q, int64_t start, int64_t n, float *dst)
{
    const float *code = lfl_q4_code(q->dtype);
    const uint8_t *p = lfl_data(q);
    int64_t e = start, end = start + n;
    while (e < end) {
        int64_t b = e / LFL_Q4_BLOCK, bend = (b + 1) * LFL_Q4_BLOCK < end ? (b + 1) * LFL_Q4_BLOCK : end;
        float s;
        lfl_q4_scales(q, b, 1, &s);
        if (e & 1) { *dst++ = code[p[e >> 1] & 15] * s; e++; }
        for (; e + 1 < bend; e += 2) {
            uint8_t byte = p[e >> 1];
            dst[0] = code[byte >> 4] * s;
            dst[1] = code[byte & 15] * s;
            dst += 2;
        }
        if (e < bend) { *dst++ = code[p[e >> 1] >> 4] * s; e++; }
    }
}

void lfl_q4_dequant_tile(const lfl_tensor *q, int64_t r0, int64_t rows, int64_t c0, int64_t cols, float *dst)
{
    int64_t ld = q->shape[q->ndim - 1];
    for (int64_t r = 0; r < rows; r++) lfl_q4_dequant_range(q, (r0 + r) * ld + c0, cols, dst + r * cols);
}

lfl_status lfl_q4_dequantize(lfl_tensor *q, lfl_tensor **out)
{
    LFL_TRY(lfl_q4_check("dequantize", q));
    lfl_q4_dequant_kernel fn;
    LFL_TRY(lfl_dispatch_q4_dequant(q->device, "dequantize", &fn));
    LFL_TRY(lfl_empty(q->ndim, q->shape, LFL_F32, q->device, out));
    lfl_status st = fn(q, *out);
    if (st) { lfl_tensor_release(*out); *out = NULL; }
    return st;
}

/* A copy of q on `device` (QLoRA's base on a GPU): the packed codes and the
 * state's tensors move, the nested map and offset are copied; no gradient. */
lfl_status lfl_q4_to_device(lfl_tensor *q, int device, lfl_tensor **out)
{
    LFL_TRY(lfl_q4_check("to_device", q));
    const struct lfl_qstate *src = q->quant;
    struct lfl_qstate *st = calloc(1, sizeof *st);
    if (!st) return lfl_fail(LFL_ERR_MEM, "to_device: out of memory");
    *st = *src;
    st->refcount = 1;
    st->absmax = st->qabsmax = st->absmax2 = st->scb = st->gzeros = st->gscales = st->gidx = NULL;
    lfl_tensor *c = NULL;
    bool g = lfl_set_grad_enabled(false);
    lfl_status s = lfl_empty(q->ndim, q->shape, q->dtype, device, &c);
    if (s == LFL_OK)
        s = device == LFL_CPU ? lfl_device_memcpy(q->device, lfl_data(c), lfl_data(q), lfl_q4_packed_bytes(q), 1)
                              : lfl_device_memcpy(device, lfl_data(c), lfl_data(q), lfl_q4_packed_bytes(q),
                                                  q->device == LFL_CPU ? 0 : 2);
    if (s == LFL_OK && src->absmax) s = lfl_to_device(src->absmax, device, &st->absmax);
    if (s == LFL_OK && src->qabsmax) s = lfl_to_device(src->qabsmax, device, &st->qabsmax);
    if (s == LFL_OK && src->absmax2) s = lfl_to_device(src->absmax2, device, &st->absmax2);
    lfl_set_grad_enabled(g);
    if (s) {
        lfl_qstate_release(st);
        lfl_tensor_release(c);
        return s;
    }
    c->quant = st;
    *out = c;
    return LFL_OK;
}

size_t lfl_q4_packed_bytes(const lfl_tensor *q) { return (size_t)(lfl_numel(q) / 2); }

size_t lfl_q4_nbytes(const lfl_tensor *q)
{
    const struct lfl_qstate *st = q->quant;
    size_t n = lfl_dtype_nbytes(q->dtype, lfl_numel(q));
    if (!st) return n;
    if (st->absmax) return n + sizeof(float) * (size_t)st->nblocks;
    return n + (size_t)st->nblocks + sizeof(float) * (size_t)lfl_numel(st->absmax2) + sizeof(float);
}

/* a contiguous CPU copy of t, which must be of dtype dt and hold n elements */
static lfl_status state_copy(const char *what, lfl_tensor *t, lfl_dtype dt, int64_t n, lfl_tensor **out)
{
    if (!t || t->dtype != dt || t->device != LFL_CPU || lfl_numel(t) != n)
        return lfl_fail(LFL_ERR_ARG, "q4_from_state: %s must be a %s CPU tensor of %lld elements, got %s of %lld",
                        what, lfl_dtype_name(dt), (long long)n, t ? lfl_dtype_name(t->dtype) : "nothing",
                        t ? (long long)lfl_numel(t) : 0LL);
    lfl_tensor *c = NULL;
    LFL_TRY(lfl_contiguous(t, &c));
    lfl_status s = lfl_empty(1, &n, dt, LFL_CPU, out);
    if (s == LFL_OK) memcpy(lfl_data(*out), lfl_data(c), lfl_dtype_nbytes(dt, n));
    lfl_tensor_release(c);
    return s;
}

lfl_status lfl_q4_from_state(lfl_dtype kind, int ndim, const int64_t *shape, lfl_tensor *codes, lfl_tensor *quant_map,
                             lfl_tensor *absmax, lfl_tensor *absmax2, lfl_tensor *code2, float offset,
                             lfl_tensor **out)
{
    if (!lfl_is_q4(kind)) return lfl_fail(LFL_ERR_ARG, "q4_from_state: kind must be nf4 or fp4, got %s", lfl_dtype_name(kind));
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    if (ndim < 1 || n == 0 || n % LFL_Q4_BLOCK)
        return lfl_fail(LFL_ERR_ARG, "q4_from_state: a weight of %lld elements is not a (non-zero) multiple of the "
                        "block of %d", (long long)n, LFL_Q4_BLOCK);
    /* the code map: bitsandbytes lets a caller bring its own; lfl's kernels index kind's table */
    lfl_tensor *qm = NULL;
    LFL_TRY(state_copy("quant_map", quant_map, LFL_F32, 16, &qm));
    const float *code = lfl_q4_code(kind), *got = lfl_data(qm);
    for (int i = 0; i < 16; i++)
        if (got[i] != code[i]) {
            float g = got[i];
            lfl_tensor_release(qm);
            return lfl_fail(LFL_ERR_UNSUPPORTED, "q4_from_state: quant_map[%d] is %.9g, not %s's %.9g (a custom "
                            "4-bit code map is not supported)", i, g, lfl_dtype_name(kind), code[i]);
        }
    lfl_tensor_release(qm);
    int64_t nb = n / LFL_Q4_BLOCK, n2 = (nb + LFL_Q4_DQ_BLOCK - 1) / LFL_Q4_DQ_BLOCK;
    lfl_tensor *c = NULL, *q = NULL;
    struct lfl_qstate *st = calloc(1, sizeof *st);
    if (!st) return lfl_fail(LFL_ERR_MEM, "q4_from_state: out of memory");
    st->refcount = 1;
    st->nblocks = nb;
    st->to_f32 = lfl_q4_dequantize;
    lfl_status s = state_copy("the packed codes", codes, LFL_U8, n / 2, &c);
    if (s == LFL_OK) s = lfl_empty(ndim, shape, kind, LFL_CPU, &q);
    if (s == LFL_OK) memcpy(lfl_data(q), lfl_data(c), (size_t)(n / 2));
    if (s == LFL_OK && !absmax2) s = state_copy("absmax", absmax, LFL_F32, nb, &st->absmax);
    if (s == LFL_OK && absmax2) {
        lfl_tensor *m2 = NULL;
        s = state_copy("absmax (8-bit, double quantization)", absmax, LFL_U8, nb, &st->qabsmax);
        if (s == LFL_OK) s = state_copy("nested_absmax", absmax2, LFL_F32, n2, &st->absmax2);
        if (s == LFL_OK) s = state_copy("nested_quant_map", code2, LFL_F32, 256, &m2);
        if (s == LFL_OK) memcpy(st->code2, lfl_data(m2), sizeof st->code2);
        lfl_tensor_release(m2);
        st->offset = offset;
    }
    lfl_tensor_release(c);
    if (s) {
        lfl_qstate_release(st);
        lfl_tensor_release(q);
        return s;
    }
    q->quant = st;
    *out = q;
    return LFL_OK;
}
