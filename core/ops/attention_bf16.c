/* The f32 attention's tile GEMMs with bf16 products and f32 sums
 * (AVX512_BF16), for matmul precision "medium": scores S = Q K^T, O += P V
 * and the backward's dV, dP, dK, dQ products on 64-key tiles. Softmax, its
 * running max and sums stay f32; P and dS are rounded to bf16 as they enter a
 * product, as under torch's bf16 autocast. Each call packs its two small f32
 * operands (one tile each, in L1) into the instruction's pair layout and runs
 * 4 x 64 register tiles (16 zmm accumulators). A CPU without AVX512_BF16
 * (or LFL_GEMM=f32) gets the same numbers from sgemm on rounded copies. */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include "../blas.h"
#include "../dtype.h"
#include "../gemm_bf16.h"
#include "attention_bf16.h"

/* per-thread packing buffers, kept between calls (thousands of tiles a step) */
static _Thread_local uint32_t *bufa, *bufb;
static _Thread_local size_t capa, capb;

static uint32_t *grow(uint32_t **p, size_t *cap, size_t n)
{
    if (n > *cap) {
        uint32_t *q = aligned_alloc(64, (n * 4 + 63) & ~(size_t)63);
        if (!q) return NULL;
        free(*p);
        *p = q;
        *cap = n;
    }
    return *p;
}

/* rows 2p and 2p + 1 of B [K, ncols] interleaved: out[p][c] = (B[2p][c], B[2p+1][c]) */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void pack_rows_interleaved(const float *b, int64_t ldb, int64_t K, int64_t ncols, uint32_t *out)
{
    static const uint16_t idx_lo[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                        8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const __m512i perm = _mm512_loadu_si512(idx_lo);
    for (int64_t p = 0; 2 * p < K; p++) {
        const float *r0 = b + 2 * p * ldb, *r1 = 2 * p + 1 < K ? r0 + ldb : NULL;
        uint32_t *d = out + p * ncols;
        for (int64_t c = 0; c < ncols; c += 16) {
            __m512 x0 = _mm512_loadu_ps(r0 + c), x1 = r1 ? _mm512_loadu_ps(r1 + c) : _mm512_setzero_ps();
            /* [x0 as bf16 | x1 as bf16] -> (x0[c], x1[c]) pairs */
            __m512i v = (__m512i)_mm512_cvtne2ps_pbh(x1, x0);
            _mm512_storeu_si512(d + c, _mm512_permutexvar_epi16(perm, v));
        }
    }
}

/* C[i][cb .. cb + 16 nv) (=|+=) sum_p a[i * sai + p * sap] . b[p][...] for 4 rows */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void kernel4(int64_t kp, const uint32_t *a, int64_t sai, int64_t sap, const uint32_t *b, int64_t ldb, int nv,
                    float *c, int64_t ldc, bool acc)
{
    __m512 s[4][4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) s[i][v] = _mm512_setzero_ps();
    if (nv == 4) {
        for (int64_t p = 0; p < kp; p++) {
            const uint32_t *bp = b + p * ldb;
            __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp), b1 = (__m512bh)_mm512_loadu_si512(bp + 16);
            __m512bh b2 = (__m512bh)_mm512_loadu_si512(bp + 32), b3 = (__m512bh)_mm512_loadu_si512(bp + 48);
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[i * sai + p * sap]);
                s[i][0] = _mm512_dpbf16_ps(s[i][0], av, b0);
                s[i][1] = _mm512_dpbf16_ps(s[i][1], av, b1);
                s[i][2] = _mm512_dpbf16_ps(s[i][2], av, b2);
                s[i][3] = _mm512_dpbf16_ps(s[i][3], av, b3);
            }
        }
    } else {
        for (int64_t p = 0; p < kp; p++)
            for (int v = 0; v < nv; v++) {
                __m512bh bv = (__m512bh)_mm512_loadu_si512(b + p * ldb + 16 * v);
                for (int i = 0; i < 4; i++)
                    s[i][v] = _mm512_dpbf16_ps(s[i][v], (__m512bh)_mm512_set1_epi32((int)a[i * sai + p * sap]), bv);
            }
    }
    for (int i = 0; i < 4; i++)
        for (int v = 0; v < nv; v++) {
            float *cp = c + i * ldc + 16 * v;
            _mm512_storeu_ps(cp, acc ? _mm512_add_ps(s[i][v], _mm512_loadu_ps(cp)) : s[i][v]);
        }
}

/* per-thread f32 copies of the two tiles for CPUs without AVX512_BF16 */
static _Thread_local float *bufr;
static _Thread_local size_t capr;

static inline float round_bf16(float x) { return lfl_bf16_to_f32(lfl_f32_to_bf16(x)); }

/* the same product as sgemm on bf16-rounded copies of the tiles: the numbers
 * the vdpbf16ps kernel gives, on any CPU */
static bool tile_rounded(int64_t nI, int64_t ncols, int64_t K, const float *a, int64_t sa, int64_t sk,
                         const float *b, int64_t ldb, float *c, int64_t ldc, bool acc)
{
    size_t need = (size_t)(nI * K + K * ncols);
    if (need > capr) {
        float *q = malloc(need * sizeof(float));
        if (!q) return false;
        free(bufr);
        bufr = q;
        capr = need;
    }
    float *ar = bufr, *br = bufr + nI * K;
    for (int64_t i = 0; i < nI; i++)
        for (int64_t k = 0; k < K; k++) ar[i * K + k] = round_bf16(a[i * sa + k * sk]);
    for (int64_t k = 0; k < K; k++)
        for (int64_t j = 0; j < ncols; j++) br[k * ncols + j] = round_bf16(b[k * ldb + j]);
    lfl_sgemm_f32(false, false, (int)nI, (int)ncols, (int)K, 1.0f, ar, (int)K, br, (int)ncols, acc ? 1.0f : 0.0f, c,
                  (int)ldc);
    return true;
}

bool lfl_att_gemm_bf16(int64_t nI, int64_t ncols, int64_t K, const float *a, int64_t sa, int64_t sk, const float *b,
                       int64_t ldb, float *c, int64_t ldc, bool acc)
{
    if (K < 1 || (sa != 1 && sk != 1)) return false;
    /* the tiles follow the GEMMs' kernel: "f32" (forced, or no AVX512_BF16)
     * rounds copies for sgemm; "own" and "onednn" run vdpbf16ps here, as a
     * oneDNN call per 64 x 64 tile would cost more than the tile */
    if (lfl_gemm_bf16_path() == LFL_GEMM_PATH_F32 || !lfl_cpu_has_avx512bf16())
        return tile_rounded(nI, ncols, K, a, sa, sk, b, ldb, c, ldc, acc);
    if (nI % 4 || ncols % 16) return false;
    int64_t kp = (K + 1) / 2;
    uint32_t *A2 = grow(&bufa, &capa, (size_t)(nI * kp)), *B2 = grow(&bufb, &capb, (size_t)(kp * ncols));
    if (!A2 || !B2) return false;
    pack_rows_interleaved(b, ldb, K, ncols, B2);
    int64_t sai, sap;
    if (sk == 1) { /* A row-major: A2[i][p] */
        for (int64_t i = 0; i < nI; i++) lfl_bf16_pack_row(a + i * sa, K, (uint16_t *)(A2 + i * kp));
        sai = kp, sap = 1;
    } else { /* A^T row-major (A[i][k] = a[k * sk + i]): rows 2p, 2p + 1 interleave to A2[p][i] */
        if (nI % 16) return false;
        pack_rows_interleaved(a, sk, K, nI, A2);
        sai = 1, sap = nI;
    }
    for (int64_t cb = 0; cb < ncols; cb += 64) {
        int nv = (int)((ncols - cb) / 16 < 4 ? (ncols - cb) / 16 : 4);
        for (int64_t i = 0; i < nI; i += 4)
            kernel4(kp, A2 + i * sai, sai, sap, B2 + cb, ncols, nv, c + i * ldc + cb, ldc, acc);
    }
    return true;
}
