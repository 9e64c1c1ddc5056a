/* Element types: the dtype enum, its traits table (with each type's widening
 * to f32) and f16/bf16 conversions, scalar and in bulk. */
#ifndef LFL_DTYPE_H
#define LFL_DTYPE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "status.h"

typedef enum {
    LFL_F32 = 0, LFL_F64, LFL_F16, LFL_BF16, LFL_I32, LFL_I64, LFL_U8, LFL_BOOL,
    /* block-quantized kinds: stored in blocks, never strided */
    LFL_Q8_0, LFL_Q4_0, LFL_Q4_1, LFL_Q5_0, LFL_Q5_1, LFL_Q4_K, LFL_Q5_K,
    LFL_Q6_K, LFL_NF4, LFL_FP4,
    /* bitsandbytes' LLM.int8 weight: int8 per element, f32 row scales in tensor->quant */
    LFL_INT8,
    /* a GPTQ / AWQ 4-bit weight kept quantized: 8 codes a 32-bit word along
     * the input, group zeros and scales in tensor->quant (quant/gptq.h) */
    LFL_GPTQ4,
    LFL_DTYPE_COUNT
} lfl_dtype;

struct lfl_tensor;

typedef struct {
    const char *name;   /* "f32", "bf16", "q4_k", ... */
    int block;          /* elements per block (1 for plain types) */
    int block_bytes;    /* bytes per block */
    bool is_float;      /* plain floating type */
    bool is_int;        /* plain integer or bool type */
    /* n contiguous elements (a multiple of the block) -> f32: set for the
     * 16-bit floats and the ggml block kinds (their decoders live in
     * core/quant/), NULL where there is no such widening (NF4/FP4 keep their
     * absmax outside the data, in tensor->quant: lfl_cast dequantizes them
     * through quant/bnb4.h) or it is a plain load (f32, f64, ints) */
    lfl_status (*to_f32)(lfl_dtype dt, const void *src, int64_t n, float *dst);
    /* a whole contiguous block tensor on any device -> out, f32 of its shape
     * on its device (the GGUF kinds: quant/ggml.c's lfl_block_dequant, which
     * dispatches on the device); NULL elsewhere */
    lfl_status (*dequant)(struct lfl_tensor *q, struct lfl_tensor *out);
} lfl_dtype_traits;

extern const lfl_dtype_traits lfl_dtypes[LFL_DTYPE_COUNT];

static inline size_t lfl_dtype_size(lfl_dtype d) { return (size_t)lfl_dtypes[d].block_bytes; }
static inline bool lfl_dtype_is_block(lfl_dtype d) { return lfl_dtypes[d].block > 1; }
static inline const char *lfl_dtype_name(lfl_dtype d) { return lfl_dtypes[d].name; }
/* Returns -1 for an unknown name. */
int lfl_dtype_from_name(const char *name);
/* Bytes needed for n elements (n must be a multiple of the block). */
static inline size_t lfl_dtype_nbytes(lfl_dtype d, int64_t n)
{
    return (size_t)(n / lfl_dtypes[d].block) * (size_t)lfl_dtypes[d].block_bytes;
}

/* Widens n contiguous elements of dt to f32 through its to_f32 hook; an error
 * names a dtype that has none. */
lfl_status lfl_dtype_to_f32(lfl_dtype dt, const void *src, int64_t n, float *dst);

static inline bool lfl_is_lowp(lfl_dtype d) { return d == LFL_BF16 || d == LFL_F16; }
/* dst[i] = src[i] for n contiguous bf16/f16 values (vectorised, one thread) */
void lfl_lowp_to_f32(lfl_dtype dt, const void *src, int64_t n, float *dst);
/* dst[i] = round-to-nearest-even(src[i]) for n contiguous f32 values */
void lfl_f32_to_lowp(lfl_dtype dt, const float *src, int64_t n, void *dst);
/* Contiguous f32 <-> bf16/f16 conversion of n elements (lfl_copy_'s fast
 * path; OpenMP-parallel when large). Returns false for any other dtype pair. */
bool lfl_convert_contiguous(lfl_dtype ddt, void *dst, lfl_dtype sdt, const void *src, int64_t n);

static inline float lfl_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Round to nearest even, as torch does; NaN stays NaN. */
static inline uint16_t lfl_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* IEEE half <-> f32 in integer arithmetic, bit for bit what the hardware
 * conversions give (round to nearest even, NaN kept quiet with its top
 * payload bits): for compilers without _Float16 (clang before 15 on x86-64,
 * which builds the fuzz targets), and tested against _Float16 where it exists. */
static inline float lfl_f16_to_f32_soft(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, u;
    if (e == 0x1f) {
        u = sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0);
    } else if (e) {
        u = sign | ((e + 112) << 23) | (m << 13);
    } else if (m) { /* subnormal: normalise */
        int shift = 0;
        while (!(m & 0x400u)) { m <<= 1; shift++; }
        u = sign | ((uint32_t)(113 - shift) << 23) | ((m & 0x3ffu) << 13);
    } else {
        u = sign;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t lfl_f32_to_f16_soft(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds past 65504: inf */
    int e = (int)(a >> 23) - 127;
    if (e >= -14) { /* normal half: drop 13 bits, ties to even */
        uint32_t r = a - (112u << 23);
        r += 0xfffu + ((r >> 13) & 1u);
        return (uint16_t)(sign | (r >> 13));
    }
    if (e < -25) return sign; /* below half the smallest subnormal */
    uint32_t m = (a & 0x7fffffu) | 0x800000u;
    int shift = -e - 1; /* 14..24: bits dropped to the 2^-24 grid, plus 13 */
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (uint16_t)(sign | q);
}

#ifdef __FLT16_MAX__
static inline float lfl_f16_to_f32(uint16_t h)
{
    _Float16 v;
    memcpy(&v, &h, 2);
    return (float)v;
}

static inline uint16_t lfl_f32_to_f16(float f)
{
    _Float16 v = (_Float16)f;
    uint16_t h;
    memcpy(&h, &v, 2);
    return h;
}
#else
static inline float lfl_f16_to_f32(uint16_t h) { return lfl_f16_to_f32_soft(h); }
static inline uint16_t lfl_f32_to_f16(float f) { return lfl_f32_to_f16_soft(f); }
#endif

#endif
