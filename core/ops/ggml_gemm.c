/* The GGUF block-weight GEMM (ggml_gemm.h). The tiled path is q4_gemm.c's
 * blocking (lowp.h's plan and per-thread scratch) with tiles that start and
 * end on block boundaries along the weight's rows. The decode path follows
 * llama.cpp's vec_dot: the activation rows are quantized to int8 in blocks of
 * 32 with an f32 scale, and sum(w * x) = sum_g d_g dx_g sum(u * q) +
 * m_g dx_g sum(q) with the weight's unsigned integers u, its scale d and
 * offset m per group: integer products. On AVX512-VNNI the fused kernels
 * (every kind) take u straight from the blocks into vpdpbusd (u8 x s8) in
 * registers, four weight rows at a time for one activation row; the portable
 * C kernel unpacks a weight row first (lfl_ggml_unpack_blocks, one scale and
 * offset per 16) and serves every activation row from it. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#endif
#include "../blas.h"
#include "../gemm_bf16.h"
#include "../quant/ggml.h"
#include "ggml_gemm.h"
#include "lowp.h"

#define VEC_MAX 8    /* activation rows one weight unpacking serves */
#define PREFETCH_AHEAD 8192 /* bytes: how far ahead the decode loops prefetch the weight */
#define VEC_PARALLEL_MIN 2e5 /* multiply-adds below which the dot path stays on one thread */

static int vec_rows = VEC_MAX;

int lfl_ggml_vecdot_rows(int rows)
{
    int prev = __atomic_load_n(&vec_rows, __ATOMIC_RELAXED);
    if (rows >= 0) __atomic_store_n(&vec_rows, rows > VEC_MAX ? VEC_MAX : rows, __ATOMIC_RELAXED);
    return prev;
}

/* the activation rows quantized: q [m, k] int8, and per group of 16 the row
 * block's scale dx and dx * sum(q over the group); db and sb the same per
 * block of 32 (the fused kernels' unit) */
typedef struct {
    int64_t k;
    int8_t *q;
    float *dx, *sx, *db, *sb;
} qact;

static void quantize_row(const float *restrict x, int64_t k, int8_t *restrict q, float *restrict dx,
                         float *restrict sx, float *restrict db, float *restrict sb)
{
    for (int64_t b = 0; b < k; b += 32) {
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[b + i]));
        float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        int s0 = 0, s1 = 0;
        for (int i = 0; i < 32; i++) {
            int v = (int)nearbyintf(x[b + i] * id);
            q[b + i] = (int8_t)v;
            if (i < 16) s0 += v; else s1 += v;
        }
        dx[b / 16] = dx[b / 16 + 1] = d;
        sx[b / 16] = d * (float)s0;
        sx[b / 16 + 1] = d * (float)s1;
        db[b / 32] = d;
        sb[b / 32] = d * (float)(s0 + s1);
    }
}

/* sum over the k elements of row (u, d, m) . (dx q) for one activation row
 * (its q, dx, sx): sum_g d_g dx_g sum(u q) + m_g sx_g */
static float dot_portable(const uint8_t *u, const float *d, const float *m, int64_t k, const int8_t *q,
                          const float *dx, const float *sx)
{
    float acc = 0;
    for (int64_t g = 0; g < k / 16; g++) {
        int32_t s = 0;
        for (int t = 0; t < 16; t++) s += (int32_t)u[16 * g + t] * q[16 * g + t];
        acc += d[g] * dx[g] * (float)s + m[g] * sx[g];
    }
    return acc;
}

#ifdef HAVE_X86
/* The fused kernels (Q6_K's is fused_dot_q6k): the nibbles / bytes go from
 * the blocks straight into the vpdpbusd operand, 64 elements at a time (two
 * blocks of 32, or a 256-block's sub-blocks 2j and 2j+1: their low and high
 * nibbles), with no unpacked copy of the row. The scales d and offsets m of 16
 * blocks of 32 at a time come into registers (group_scales), times the
 * activation row's db and sb; the integer sums of a 64-element step fill 16
 * lanes, 8 per 32-element block. */
#define FUSED_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

static inline float f16at(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return lfl_f16_to_f32(h);
}

/* a K block's 12 scale bytes as its 8 6-bit scales (returned, one a byte)
 * and 8 6-bit mins (*mins): ggml's get_scale_min_k4 for all j at once, as
 * llama.cpp's vec_dot unpacks them */
static inline uint64_t k_scales(const uint8_t *q, uint64_t *mins)
{
    uint32_t u[4];
    memcpy(u, q, 12);
    u[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
    uint32_t aux = u[1] & 0x3f3f3f3fu;
    u[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
    u[2] = aux;
    u[0] &= 0x3f3f3f3fu;
    *mins = u[2] | (uint64_t)u[3] << 32;
    return u[0] | (uint64_t)u[1] << 32;
}

/* two 16-byte nibble runs (blocks 2c, 2c+1) as [lo0 hi0 lo1 hi1]: elements 0..63 */
FUSED_TARGET static inline __m512i nibbles2(const uint8_t *q0, const uint8_t *q1)
{
    __m256i x = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)q0)),
                                        _mm_loadu_si128((const __m128i *)q1), 1);
    /* the low nibbles' and the high nibbles' 16-byte lanes interleaved, one mask for all */
    const __m512i idx = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);
    __m512i w = _mm512_permutex2var_epi64(_mm512_castsi256_si512(x), idx, _mm512_castsi256_si512(_mm256_srli_epi16(x, 4)));
    return _mm512_and_si512(w, _mm512_set1_epi8(0x0F));
}

static inline uint32_t u32at(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* the 64 unsigned weights of step c (elements 64c..64c+63) of a row;
 * one: only the block 2c (the odd last one of a 32-kind row), the upper half 0 */
FUSED_TARGET __attribute__((always_inline)) static inline __m512i weights64(const int dt, const uint8_t *row,
                                                                            int64_t c, bool one)
{
    const __m512i b16 = _mm512_set1_epi8(0x10);
    if (dt == LFL_Q4_K || dt == LFL_Q5_K) {
        bool q5 = dt == LFL_Q5_K;
        const uint8_t *b = row + (c >> 2) * (q5 ? 176 : 144);
        int j = (int)(c & 3);
        __m256i x = _mm256_loadu_si256((const __m256i *)(b + (q5 ? 48 : 16) + 32 * j));
        const __m256i lo4 = _mm256_set1_epi8(0x0F);
        __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(x, lo4)),
                                       _mm256_and_si256(_mm256_srli_epi16(x, 4), lo4), 1);
        if (q5) {
            __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 16));
            uint64_t hb = (uint64_t)_mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(1 << (2 * j)))) |
                          ((uint64_t)_mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(2 << (2 * j)))) << 32);
            w = _mm512_mask_add_epi8(w, hb, w, b16); /* bit 4 is clear: + 16 sets it */
        }
        return w;
    }
    if (dt == LFL_Q8_0) {
        const uint8_t *b = row + 2 * c * 34;
        __m256i lo = _mm256_loadu_si256((const __m256i *)(b + 2));
        __m512i w = one ? _mm512_zextsi256_si512(lo)
                        : _mm512_inserti64x4(_mm512_castsi256_si512(lo), _mm256_loadu_si256((const __m256i *)(b + 36)), 1);
        /* int8 + 128 (the offset -128 d undoes it); the zero half stays 0 */
        return _mm512_xor_si512(w, one ? _mm512_zextsi256_si512(_mm256_set1_epi8((char)0x80)) : _mm512_set1_epi8((char)0x80));
    }
    int64_t bb = dt == LFL_Q4_0 ? 18 : dt == LFL_Q4_1 ? 20 : dt == LFL_Q5_0 ? 22 : 24;
    int qo = dt == LFL_Q4_0 ? 2 : dt == LFL_Q4_1 ? 4 : dt == LFL_Q5_0 ? 6 : 8;
    const uint8_t *b0 = row + 2 * c * bb, *b1 = b0 + bb;
    __m512i w;
    if (one) {
        __m128i x = _mm_loadu_si128((const __m128i *)(b0 + qo)), lo4 = _mm_set1_epi8(0x0F);
        w = _mm512_zextsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(x, lo4)),
                                                           _mm_and_si128(_mm_srli_epi16(x, 4), lo4), 1));
    } else {
        w = nibbles2(b0 + qo, b1 + qo);
    }
    if (dt == LFL_Q5_0 || dt == LFL_Q5_1) {
        int ho = dt == LFL_Q5_0 ? 2 : 4;
        /* the fifth bits straight into mask registers */
        __mmask64 hb = one ? (__mmask64)_load_mask32((__mmask32 *)(b0 + ho))
                           : _mm512_kunpackd((__mmask64)_load_mask32((__mmask32 *)(b1 + ho)),
                                             (__mmask64)_load_mask32((__mmask32 *)(b0 + ho)));
        w = _mm512_mask_add_epi8(w, hb, w, b16); /* bit 4 is clear: + 16 sets it */
    }
    return w;
}

/* the f16 d (and m for Q4_1/Q5_1) of nbg <= 16 consecutive 32-blocks of bb
 * bytes from p, one lane each: word s t (and s t + 1) of the group, s = bb / 2,
 * picked with vpermt2w out of 128-byte windows of it (masked loads: nothing
 * past the group is read; a gather of the 16 words costs more than the
 * products of the blocks' 512 elements) */
FUSED_TARGET __attribute__((always_inline)) static inline void scales32(const int dt, const int bb, const uint8_t *p,
                                                                        const int nbg, __m512 *dv, __m512 *mv)
{
    const int s = bb / 2;
    const bool hasm = dt == LFL_Q4_1 || dt == LFL_Q5_1;
    /* word lanes 0..15: d of block t; 16..31: the word after it */
    const __m512i lane = _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13,
                                          12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i widx = _mm512_add_epi16(_mm512_mullo_epi16(_mm512_and_si512(lane, _mm512_set1_epi16(15)),
                                                             _mm512_set1_epi16((short)s)),
                                          _mm512_srli_epi16(lane, 4));
    const int nw = nbg * s, last = s * (nbg - 1) + (hasm ? 1 : 0);
    __m512i res = _mm512_setzero_si512();
    for (int w = 0; 64 * w <= last; w++) {
        int v0 = nw - 64 * w, v1 = v0 - 32;
        __mmask32 m0 = v0 >= 32 ? 0xFFFFFFFFu : v0 <= 0 ? 0u : (1u << v0) - 1;
        __mmask32 m1 = v1 >= 32 ? 0xFFFFFFFFu : v1 <= 0 ? 0u : (1u << v1) - 1;
        __m512i lo = _mm512_maskz_loadu_epi16(m0, p + 128 * w), hi = _mm512_maskz_loadu_epi16(m1, p + 128 * w + 64);
        __m512i rel = _mm512_sub_epi16(widx, _mm512_set1_epi16((short)(64 * w)));
        __mmask32 in = _mm512_cmplt_epu16_mask(rel, _mm512_set1_epi16(64));
        res = _mm512_mask_mov_epi16(res, in, _mm512_permutex2var_epi16(lo, rel, hi));
    }
    *dv = _mm512_cvtph_ps(_mm512_castsi512_si256(res));
    if (hasm) *mv = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(res, 1));
    else *mv = _mm512_mul_ps(*dv, _mm512_set1_ps(dt == LFL_Q4_0 ? -8.0f : dt == LFL_Q5_0 ? -16.0f : -128.0f));
}

/* the scales d and offsets m of blocks g..g+nbg-1 (nbg <= 16) of a row, one
 * lane each: scales32 for the 32-kinds; for the K kinds (g a multiple of 8) the 6-bit
 * scales and mins of one or two 256-blocks times their f16 d and dmin */
FUSED_TARGET __attribute__((always_inline)) static inline void group_scales(const int dt, const uint8_t *row, int64_t g,
                                                                            int nbg, __m512 *dv, __m512 *mv)
{
    __mmask16 mg = nbg >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nbg) - 1);
    if (dt == LFL_Q4_K || dt == LFL_Q5_K) {
        int64_t bb = dt == LFL_Q4_K ? 144 : 176;
        const uint8_t *b0 = row + g / 8 * bb, *b1 = b0 + bb;
        uint64_t m0, m1 = 0, s0 = k_scales(b0 + 4, &m0), s1 = nbg > 8 ? k_scales(b1 + 4, &m1) : 0;
        float d0 = f16at(b0), n0 = f16at(b0 + 2), d1 = nbg > 8 ? f16at(b1) : 0.0f, n1 = nbg > 8 ? f16at(b1 + 2) : 0.0f;
        __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_set_epi64x((long long)s1, (long long)s0)));
        __m512 mn = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_set_epi64x((long long)m1, (long long)m0)));
        *dv = _mm512_mul_ps(_mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(d0), _mm512_set1_ps(d1)), sc);
        *mv = _mm512_mul_ps(_mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(-n0), _mm512_set1_ps(-n1)), mn);
        return;
    }
    int bb = dt == LFL_Q4_0 ? 18 : dt == LFL_Q4_1 ? 20 : dt == LFL_Q5_0 ? 22 : dt == LFL_Q5_1 ? 24 : 34;
    (void)mg;
    if (nbg == 16) scales32(dt, bb, row + g * bb, 16, dv, mv); /* constant masks */
    else scales32(dt, bb, row + g * bb, nbg, dv, mv);
}

/* out[i] = the row's dot product with activation row i (i < nr), a group of
 * 16 blocks of 32 (8 steps of 64) at a time: the group's scales d * db of
 * each row stay in a register, a step's pair of them spread to its 16 lanes
 * by a permute. */
FUSED_TARGET __attribute__((always_inline)) static inline void fused_dot(const int dt, const uint8_t *row, int64_t k,
                                                                         const int nr, const qact *xa, float *out)
{
    int64_t nb = k / 32;
    __m512 a[VEC_MAX], sdv[VEC_MAX];
#pragma GCC unroll 8
    for (int i = 0; i < nr; i++) a[i] = sdv[i] = _mm512_setzero_ps();
    for (int64_t g = 0; g < nb; g += 16) {
        int nbg = nb - g < 16 ? (int)(nb - g) : 16;
        __mmask16 mg = nbg >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nbg) - 1);
        __m512 dv, mv;
        group_scales(dt, row, g, nbg, &dv, &mv);
#pragma GCC unroll 8
        for (int i = 0; i < nr; i++) {
            sdv[i] = _mm512_mul_ps(dv, _mm512_maskz_loadu_ps(mg, xa->db + i * nb + g));
            a[i] = _mm512_fmadd_ps(mv, _mm512_maskz_loadu_ps(mg, xa->sb + i * nb + g), a[i]);
        }
        __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
        const __m512i two = _mm512_set1_epi32(2);
        int64_t c = g / 2, ce = c + nbg / 2;
        for (; c < ce; c++) {
            __m512i w = weights64(dt, row, c, false);
#pragma GCC unroll 8
            for (int i = 0; i < nr; i++) {
                __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, _mm512_loadu_si512(xa->q + i * k + 64 * c));
                a[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_permutexvar_ps(idx, sdv[i]), a[i]);
            }
            idx = _mm512_add_epi32(idx, two);
        }
        if (nbg & 1) { /* the odd last block of 32 (its upper lanes' products are 0) */
            __m512i w = weights64(dt, row, c, true);
#pragma GCC unroll 8
            for (int i = 0; i < nr; i++) {
                __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w,
                                                _mm512_maskz_loadu_epi8(0xFFFFFFFFULL, xa->q + i * k + 64 * c));
                a[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_permutexvar_ps(idx, sdv[i]), a[i]);
            }
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < nr; i++) out[i] = _mm512_reduce_add_ps(a[i]);
}

/* batch-1 decoding: one activation row against R consecutive weight rows (at
 * rs bytes apart) at once, out[r] their dot products. The rows' sums are
 * independent chains (a single row's fmadds wait on each other), the
 * activation bytes of a step are loaded once for all R, and the R sums reduce
 * together at the end. */
FUSED_TARGET __attribute__((always_inline)) static inline void fused_dot_rows(const int dt, const uint8_t *row,
                                                                              int64_t rs, int64_t k, const int R,
                                                                              const qact *xa, float *out)
{
    int64_t nb = k / 32;
    __m512 a[4], sdv[4];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) a[r] = sdv[r] = _mm512_setzero_ps();
    for (int64_t g = 0; g < nb; g += 16) {
        int nbg = nb - g < 16 ? (int)(nb - g) : 16;
        __mmask16 mg = nbg >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nbg) - 1);
        __m512 xdb = _mm512_maskz_loadu_ps(mg, xa->db + g), xsb = _mm512_maskz_loadu_ps(mg, xa->sb + g);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            __m512 dv, mv;
            group_scales(dt, row + r * rs, g, nbg, &dv, &mv);
            sdv[r] = _mm512_mul_ps(dv, xdb);
            a[r] = _mm512_fmadd_ps(mv, xsb, a[r]);
        }
        __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
        const __m512i two = _mm512_set1_epi32(2);
        int64_t c = g / 2, ce = c + nbg / 2;
        for (; c < ce; c++) {
            __m512i xq = _mm512_loadu_si512(xa->q + 64 * c);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), weights64(dt, row + r * rs, c, false), xq);
                a[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_permutexvar_ps(idx, sdv[r]), a[r]);
            }
            idx = _mm512_add_epi32(idx, two);
        }
        if (nbg & 1) {
            __m512i xq = _mm512_maskz_loadu_epi8(0xFFFFFFFFULL, xa->q + 64 * c);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), weights64(dt, row + r * rs, c, true), xq);
                a[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_permutexvar_ps(idx, sdv[r]), a[r]);
            }
        }
    }
    if (R == 4) { /* the four sums at once: halves added, then horizontal adds across the rows */
        __m256 s[4];
#pragma GCC unroll 8
        for (int r = 0; r < 4; r++)
            s[r] = _mm256_add_ps(_mm512_castps512_ps256(a[r]), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a[r]), 1)));
        __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(s[0], s[1]), _mm256_hadd_ps(s[2], s[3]));
        _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1)));
    } else {
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) out[r] = _mm512_reduce_add_ps(a[r]);
    }
}

/* Q6_K (256-blocks of 210 bytes: ql[128] low nibbles, qh[64] 2-bit highs,
 * 16 int8 scales, f16 d), element e of a half h (128 each) being
 * ql[64h + e % 64]'s low (e < 64) or high nibble with the bits 2 (e / 32) of
 * qh[32h + e % 32] above them, scaled by d sc[e / 16] with an offset of -32:
 * step s of a block (64 elements) is the low or high nibbles of 64 ql bytes
 * and a shift of 32 qh bytes twice over. The scales come one per 16
 * elements, 4 lanes of a step each (xa's dx and sx are per 16). R weight rows
 * (rs bytes apart) times nr activation rows, R * nr <= 8. */
FUSED_TARGET __attribute__((always_inline)) static inline void fused_dot_q6k(const uint8_t *row, int64_t rs, int64_t k,
                                                                             const int R, const int nr,
                                                                             const qact *xa, float *out)
{
    int64_t ng = k / 16;
    __m512 a[8], sdv[8];
#pragma GCC unroll 8
    for (int t = 0; t < R * nr; t++) a[t] = sdv[t] = _mm512_setzero_ps();
    const __m512i lo4 = _mm512_set1_epi8(0x0F), three = _mm512_set1_epi8(0x03);
    for (int64_t blk = 0; blk < k / 256; blk++) {
        int64_t g = 16 * blk;
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const uint8_t *b = row + r * rs + blk * 210;
            __m512 dv = _mm512_mul_ps(_mm512_set1_ps(f16at(b + 208)),
                                      _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 192)))));
            __m512 mv = _mm512_mul_ps(dv, _mm512_set1_ps(-32.0f));
#pragma GCC unroll 8
            for (int i = 0; i < nr; i++) {
                sdv[r * nr + i] = _mm512_mul_ps(dv, _mm512_loadu_ps(xa->dx + i * ng + g));
                a[r * nr + i] = _mm512_fmadd_ps(mv, _mm512_loadu_ps(xa->sx + i * ng + g), a[r * nr + i]);
            }
        }
        for (int st = 0; st < 4; st++) {
            int h = st >> 1, hi = st & 1;
            /* lanes 4j..4j+3 hold group 4 st + j */
            const __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(4 * st),
                                                 _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0));
            const __m512i cnt = _mm512_inserti64x4(_mm512_set1_epi16((short)(4 * hi)),
                                                   _mm256_set1_epi16((short)(4 * hi + 2)), 1);
            __m512i xq[8];
#pragma GCC unroll 8
            for (int i = 0; i < nr; i++) xq[i] = _mm512_loadu_si512(xa->q + i * k + 256 * blk + 64 * st);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                const uint8_t *b = row + r * rs + blk * 210;
                __m512i x = _mm512_loadu_si512(b + 64 * h);
                __m512i w = _mm512_and_si512(hi ? _mm512_srli_epi16(x, 4) : x, lo4);
                __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h));
                __m512i q2 = _mm512_inserti64x4(_mm512_castsi256_si512(qh), qh, 1);
                q2 = _mm512_and_si512(_mm512_srlv_epi16(q2, cnt), three);
                w = _mm512_or_si512(w, _mm512_slli_epi16(q2, 4));
#pragma GCC unroll 8
                for (int i = 0; i < nr; i++) {
                    __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, xq[i]);
                    a[r * nr + i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_permutexvar_ps(idx, sdv[r * nr + i]),
                                                    a[r * nr + i]);
                }
            }
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < R * nr; t++) out[t] = _mm512_reduce_add_ps(a[t]);
}

FUSED_TARGET static void fused_q6_k(const uint8_t *row, int64_t k, int nr, const qact *xa, float *out)
{
    if (nr == 1) fused_dot_q6k(row, 0, k, 1, 1, xa, out);
    else if (nr == 8) fused_dot_q6k(row, 0, k, 1, 8, xa, out);
    else if (nr == 2) fused_dot_q6k(row, 0, k, 1, 2, xa, out);
    else if (nr == 3) fused_dot_q6k(row, 0, k, 1, 3, xa, out);
    else if (nr == 4) fused_dot_q6k(row, 0, k, 1, 4, xa, out);
    else if (nr == 5) fused_dot_q6k(row, 0, k, 1, 5, xa, out);
    else if (nr == 6) fused_dot_q6k(row, 0, k, 1, 6, xa, out);
    else fused_dot_q6k(row, 0, k, 1, 7, xa, out);
}

FUSED_TARGET static void fused4_q6_k(const uint8_t *row, int64_t rs, int64_t k, const qact *xa, float *out)
{
    fused_dot_q6k(row, rs, k, 4, 1, xa, out);
}

typedef void (*fused_fn)(const uint8_t *row, int64_t k, int nr, const qact *xa, float *out);
typedef void (*fused4_fn)(const uint8_t *row, int64_t rs, int64_t k, const qact *xa, float *out);

/* one function per kind, with the row counts of batch-1 and batch-8 decoding
 * as constants (their sums stay in registers) */
#define FUSED_KIND(name, DT)                                                                                      \
    FUSED_TARGET static void name(const uint8_t *row, int64_t k, int nr, const qact *xa, float *out)             \
    {                                                                                                            \
        if (nr == 1) fused_dot(DT, row, k, 1, xa, out);                                                           \
        else if (nr == 8) fused_dot(DT, row, k, 8, xa, out);                                                      \
        else fused_dot(DT, row, k, nr, xa, out);                                                                  \
    }
#define FUSED_KIND4(name, DT)                                                                                     \
    FUSED_TARGET static void name(const uint8_t *row, int64_t rs, int64_t k, const qact *xa, float *out)         \
    {                                                                                                            \
        fused_dot_rows(DT, row, rs, k, 4, xa, out);                                                              \
    }
FUSED_KIND4(fused4_q4_0, LFL_Q4_0)
FUSED_KIND4(fused4_q4_1, LFL_Q4_1)
FUSED_KIND4(fused4_q5_0, LFL_Q5_0)
FUSED_KIND4(fused4_q5_1, LFL_Q5_1)
FUSED_KIND4(fused4_q8_0, LFL_Q8_0)
FUSED_KIND4(fused4_q4_k, LFL_Q4_K)
FUSED_KIND4(fused4_q5_k, LFL_Q5_K)

static fused4_fn fused4_for(lfl_dtype dt)
{
    switch (dt) {
    case LFL_Q4_0: return fused4_q4_0;
    case LFL_Q4_1: return fused4_q4_1;
    case LFL_Q5_0: return fused4_q5_0;
    case LFL_Q5_1: return fused4_q5_1;
    case LFL_Q8_0: return fused4_q8_0;
    case LFL_Q4_K: return fused4_q4_k;
    case LFL_Q5_K: return fused4_q5_k;
    case LFL_Q6_K: return fused4_q6_k;
    default: return NULL;
    }
}

FUSED_KIND(fused_q4_0, LFL_Q4_0)
FUSED_KIND(fused_q4_1, LFL_Q4_1)
FUSED_KIND(fused_q5_0, LFL_Q5_0)
FUSED_KIND(fused_q5_1, LFL_Q5_1)
FUSED_KIND(fused_q8_0, LFL_Q8_0)
FUSED_KIND(fused_q4_k, LFL_Q4_K)
FUSED_KIND(fused_q5_k, LFL_Q5_K)

static fused_fn fused_for(lfl_dtype dt)
{
    switch (dt) {
    case LFL_Q4_0: return fused_q4_0;
    case LFL_Q4_1: return fused_q4_1;
    case LFL_Q5_0: return fused_q5_0;
    case LFL_Q5_1: return fused_q5_1;
    case LFL_Q8_0: return fused_q8_0;
    case LFL_Q4_K: return fused_q4_k;
    case LFL_Q5_K: return fused_q5_k;
    case LFL_Q6_K: return fused_q6_k;
    default: return NULL;
    }
}

/* quantize_row with AVX-512 (the same rounding: to nearest even, as
 * nearbyintf's default mode), 32 elements a step */
FUSED_TARGET static void quantize_row_avx512(const float *restrict x, int64_t k, int8_t *restrict q,
                                             float *restrict dx, float *restrict sx, float *restrict db,
                                             float *restrict sb)
{
    for (int64_t b = 0; b < k; b += 32) {
        __m512 x0 = _mm512_loadu_ps(x + b), x1 = _mm512_loadu_ps(x + b + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
        float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        __m512 vid = _mm512_set1_ps(id);
        __m512i v0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, vid)), v1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, vid));
        _mm_storeu_si128((__m128i *)(q + b), _mm512_cvtepi32_epi8(v0));
        _mm_storeu_si128((__m128i *)(q + b + 16), _mm512_cvtepi32_epi8(v1));
        int s0 = _mm512_reduce_add_epi32(v0), s1 = _mm512_reduce_add_epi32(v1);
        dx[b / 16] = dx[b / 16 + 1] = d;
        sx[b / 16] = d * (float)s0;
        sx[b / 16 + 1] = d * (float)s1;
        db[b / 32] = d;
        sb[b / 32] = d * (float)(s0 + s1);
    }
}

static bool have_vnni(void)
{
    static int known = -1;
    if (known < 0) known = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    return known;
}
#else
static bool have_vnni(void) { return false; }
#endif

static int force_portable;

int lfl_ggml_vecdot_portable(int on)
{
    int prev = __atomic_load_n(&force_portable, __ATOMIC_RELAXED);
    if (on >= 0) __atomic_store_n(&force_portable, on ? 1 : 0, __ATOMIC_RELAXED);
    return prev;
}

static bool use_vnni(void) { return have_vnni() && !__atomic_load_n(&force_portable, __ATOMIC_RELAXED); }

const char *lfl_ggml_vecdot_kernel(void) { return use_vnni() ? "avx512-vnni" : "portable"; }

/* C[i, j] = sum_k A[i, k] W[j, k] (+ beta C) for i < m <= VEC_MAX: the
 * activation rows quantized once, then per weight row the fused kernel (on
 * AVX512-VNNI) or, for Q6_K and the portable kernel, the row unpacked into a
 * per-thread buffer and dotted with every activation row */
static lfl_status gemm_vecdot(int64_t m, int64_t n, int64_t k, const float *a, int lda, const lfl_tensor *w,
                              float beta, float *c, int ldc)
{
    lfl_dtype dt = w->dtype;
    int64_t blk = lfl_dtypes[dt].block, bb = lfl_dtypes[dt].block_bytes, row_bytes = k / blk * bb, ng = k / 16;
    /* one allocation: q [m, k] (rounded to 64 bytes), then dx, sx [m, ng] and db, sb [m, ng / 2] */
    size_t qb = (size_t)(m * k + 63) / 64 * 64;
    uint8_t *abuf = malloc(qb + sizeof(float) * (size_t)(3 * m * ng));
    if (!abuf)
        return lfl_fail(LFL_ERR_MEM, "gemm (GGUF block weight): out of memory for %lld quantized activations",
                        (long long)(m * k));
    float *f = (float *)(abuf + qb);
    qact xa = {k, (int8_t *)abuf, f, f + m * ng, f + 2 * m * ng, f + 2 * m * ng + m * ng / 2};
    bool vnni = use_vnni();
    for (int64_t i = 0; i < m; i++) {
#ifdef HAVE_X86
        if (vnni) {
            quantize_row_avx512(a + i * lda, k, xa.q + i * k, xa.dx + i * ng, xa.sx + i * ng, xa.db + i * ng / 2,
                                xa.sb + i * ng / 2);
            continue;
        }
#endif
        quantize_row(a + i * lda, k, xa.q + i * k, xa.dx + i * ng, xa.sx + i * ng, xa.db + i * ng / 2,
                     xa.sb + i * ng / 2);
    }
    const uint8_t *wp = lfl_data(w);
    bool par = (double)m * n * k > VEC_PARALLEL_MIN;
#ifdef HAVE_X86
    fused_fn fused = vnni ? fused_for(dt) : NULL;
    if (fused && !par) /* the loops' prefetches start PREFETCH_AHEAD in */
        for (int64_t o = 0; o < PREFETCH_AHEAD && o < n * row_bytes; o += 64)
            _mm_prefetch((const char *)(wp + o), _MM_HINT_T0);
    if (fused && m == 1) {
        /* batch 1: four weight rows a call (the last n % 4 one by one) */
        fused4_fn f4 = fused4_for(dt);
        int64_t n4 = n / 4;
#pragma omp parallel for schedule(static) if (par)
        for (int64_t j4 = 0; j4 < n4 + n % 4; j4++) {
            int64_t j = j4 < n4 ? 4 * j4 : 4 * n4 + (j4 - n4);
            int nr = j4 < n4 ? 4 : 1;
            /* the bytes PREFETCH_AHEAD past these rows on their way into L1
             * (one core streaming the weight needs more requests in flight
             * than the hardware prefetcher makes: 2-4x slower without) */
            int64_t p0 = j * row_bytes + PREFETCH_AHEAD, p1 = p0 + nr * row_bytes;
            if (p1 > n * row_bytes) p1 = n * row_bytes;
            for (int64_t o = p0; o < p1; o += 64) _mm_prefetch((const char *)(wp + o), _MM_HINT_T0);
            float out[4];
            if (nr == 4) f4(wp + j * row_bytes, row_bytes, k, &xa, out);
            else fused(wp + j * row_bytes, k, 1, &xa, out);
            for (int r = 0; r < nr; r++) c[j + r] = beta == 0.0f ? out[r] : out[r] + beta * c[j + r];
        }
        free(abuf);
        return LFL_OK;
    }
    if (fused) {
#pragma omp parallel for schedule(static) if (par)
        for (int64_t j = 0; j < n; j++) {
            /* as above, for one row */
            int64_t p0 = j * row_bytes + PREFETCH_AHEAD, p1 = p0 + row_bytes;
            if (p1 > n * row_bytes) p1 = n * row_bytes;
            for (int64_t o = p0; o < p1; o += 64) _mm_prefetch((const char *)(wp + o), _MM_HINT_T0);
            float out[VEC_MAX];
            fused(wp + j * row_bytes, k, (int)m, &xa, out);
            for (int64_t i = 0; i < m; i++) {
                float *ci = c + i * ldc + j;
                *ci = beta == 0.0f ? out[i] : out[i] + beta * *ci;
            }
        }
        free(abuf);
        return LFL_OK;
    }
#endif
    int failed = 0;
#pragma omp parallel if (par) reduction(| : failed)
    {
        /* the unpacked row: u [k] bytes, then d and m (ng floats each) */
        size_t ub = (size_t)(k + 63) / 64 * 64;
        uint8_t *buf = malloc(ub + sizeof(float) * (size_t)(2 * ng));
        if (!buf) failed = 1;
        float *d = buf ? (float *)(buf + ub) : NULL, *mm = d ? d + ng : NULL;
#pragma omp for schedule(static)
        for (int64_t j = 0; j < n; j++) {
            if (!buf) continue;
            float out[VEC_MAX];
            lfl_ggml_unpack_blocks(dt, wp + j * row_bytes, k / blk, buf, d, mm);
            for (int64_t i = 0; i < m; i++)
                out[i] = dot_portable(buf, d, mm, k, xa.q + i * k, xa.dx + i * ng, xa.sx + i * ng);
            for (int64_t i = 0; i < m; i++) {
                float *ci = c + i * ldc + j;
                *ci = beta == 0.0f ? out[i] : out[i] + beta * *ci;
            }
        }
        free(buf);
    }
    free(abuf);
    if (failed) return lfl_fail(LFL_ERR_MEM, "gemm (GGUF block weight): out of memory for a row of %lld", (long long)k);
    return LFL_OK;
}

lfl_status lfl_gemm_f32_ggml(int64_t m, int64_t n, int64_t k, const float *a, int lda, const lfl_tensor *w, bool wt,
                             float beta, float *c, int ldc)
{
    LFL_TRY(lfl_ggml_check("gemm (GGUF block weight)", w));
    LFL_ASSERT(w->shape[0] == (wt ? n : k) && w->shape[1] == (wt ? k : n));
    if (m == 0 || n == 0) return LFL_OK;
    if (k == 0) { lfl_tile_scale_c(m, n, beta, c, ldc); return LFL_OK; }
    if (wt && m <= lfl_ggml_vecdot_rows(-1)) return gemm_vecdot(m, n, k, a, lda, w, beta, c, ldc);
    int64_t blk = lfl_dtypes[w->dtype].block, nb, nblocks, kb;
    int nt = lfl_tile_plan(m, n, k, &nb, &nblocks, &kb);
    /* tiles cut the weight's rows on block boundaries: k slices when W is
     * [n, k], the output blocks when W is [k, n] */
    if (wt && kb < k) kb = kb < blk ? blk : kb / blk * blk;
    if (!wt) {
        nb = (nb + blk - 1) / blk * blk;
        nblocks = (n + nb - 1) / nb;
    }
    /* matmul precision "medium" (bf16: true): each f32 tile goes to the bf16
     * GEMM as bf16-rounded products with f32 sums, as a 16-bit weight's would */
    bool bf16 = lfl_gemm_wants_bf16(m, n, k);
    int failed = 0;
#pragma omp parallel for schedule(static) num_threads(nt) reduction(| : failed)
    for (int64_t bi = 0; bi < nblocks; bi++) {
        float *s = lfl_tile_scratch((size_t)(nb * kb));
        if (!s) { failed = 1; continue; }
        int64_t j0 = bi * nb, wd = n - j0 < nb ? n - j0 : nb;
        for (int64_t k0 = 0; k0 < k; k0 += kb) {
            int64_t kl = k - k0 < kb ? k - k0 : kb;
            float bt = k0 == 0 ? beta : 1.0f;
            if (wt) { /* rows j0.. of W [n, k], columns k0..: S [wd, kl], used transposed */
                lfl_ggml_dequant_tile(w, j0, wd, k0, kl, s);
                if (!bf16 || lfl_gemm_bf16(false, m, wd, kl, 1.0f, a + k0, lda, LFL_F32, s, 1, kl, bt, c + j0, ldc))
                    lfl_sgemm(false, true, (int)m, (int)wd, (int)kl, 1.0f, a + k0, lda, s, (int)kl, bt, c + j0, ldc);
            } else { /* rows k0.. of W [k, n], columns j0..: S [kl, wd] */
                lfl_ggml_dequant_tile(w, k0, kl, j0, wd, s);
                if (!bf16 || lfl_gemm_bf16(false, m, wd, kl, 1.0f, a + k0, lda, LFL_F32, s, wd, 1, bt, c + j0, ldc))
                    lfl_sgemm(false, false, (int)m, (int)wd, (int)kl, 1.0f, a + k0, lda, s, (int)wd, bt, c + j0, ldc);
            }
        }
    }
    if (failed)
        return lfl_fail(LFL_ERR_MEM, "gemm (GGUF block weight): out of memory for a %lld x %lld tile", (long long)nb,
                        (long long)kb);
    return LFL_OK;
}
