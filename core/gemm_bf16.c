/* GEMM with bf16 products and f32 sums on AVX512_BF16 (vdpbf16ps), lfl's own
 * kernel: one of the paths (gemm_path.c) that matmul precision "medium" runs
 * in place of sgemm for large products, as
 * torch.set_float32_matmul_precision("medium") and bf16 autocast do. Both
 * operands are rounded to bf16 (nearest even) while they are packed; a product
 * of two bf16 values is exact in f32, so the only other error is the f32 sum.
 *
 * Layout: A becomes row-major bf16, which is already the instruction's pairs
 * along k (the element at 2p in the low half); B becomes panels of NR = 48
 * columns, each k pair of a column one 32-bit word, [panel][pair][48]. An
 * 8 x 48 tile of C lives in 24 zmm accumulators; per k pair it loads 3 B
 * vectors and broadcasts 8 A words. On Zen 4 one vdpbf16ps retires per cycle
 * per core: 64 flops against 32 for an f32 FMA, so ~2x sgemm's peak.
 *
 * Blocking: C is cut into tiles of MC rows x NCP panels that threads take in
 * turn; inside a tile k runs in slices of KCP pairs so that one B micro-panel
 * (KCP x 48 words = 24 KB) stays in L1 while the tile's 8-row strips of A
 * (MC x KCP words = 64 KB) stream from L2.
 *
 * Low-rank side (LoRA): C = [A | s * A P] [B ; Q] is one GEMM whose k grows by
 * the rank r; A P is computed row by row while A is packed (each row is in L1
 * then), so LoRA's x A^T and its rank-r update of the output cost no pass of
 * their own over [rows, out] memory. */
#include <immintrin.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "blas.h"
#include "dtype.h"
#include "gemm_bf16.h"
#include "iter.h"

#define MR 8
#define NV 3
#define NR (16 * NV)
#define KCP 128
#define MC 128
#define NCP 4

/* One packing buffer kept between calls (a fresh multi-MB malloc is an mmap
 * whose pages fault in every time); a second concurrent caller gets its own. */
static void *cached;
static size_t cached_cap;
static atomic_flag cached_busy = ATOMIC_FLAG_INIT;

static void *buf_get(size_t bytes, bool *shared)
{
    *shared = !atomic_flag_test_and_set(&cached_busy);
    if (!*shared) return malloc(bytes);
    if (bytes > cached_cap) {
        free(cached);
        cached = malloc(bytes);
        cached_cap = cached ? bytes : 0;
    }
    if (!cached) atomic_flag_clear(&cached_busy);
    return cached;
}

static void buf_put(void *p, bool shared)
{
    if (shared) atomic_flag_clear(&cached_busy);
    else free(p);
}

static inline uint16_t to_bf16(lfl_dtype dt, const void *p, int64_t off)
{
    if (dt == LFL_BF16) return ((const uint16_t *)p)[off];
    if (dt == LFL_F16) return lfl_f32_to_bf16(lfl_f16_to_f32(((const uint16_t *)p)[off]));
    return lfl_f32_to_bf16(((const float *)p)[off]);
}

__attribute__((target("avx512f,avx512bw,avx512bf16")))
void lfl_bf16_pack_row(const float *s, int64_t n, uint16_t *d)
{
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        _mm512_storeu_si512(d + i, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + i + 16), _mm512_loadu_ps(s + i)));
    for (; i < n; i++) d[i] = lfl_f32_to_bf16(s[i]);
    if (n & 1) d[n] = 0;
}

typedef float v16f __attribute__((vector_size(64)));

/* out[j] = x . pt[j] for j < r (pt [r, k] row-major): up to 8 dots in one pass
 * over x, each with its own vector sum (one dot at a time waits on the FMA
 * latency of a single accumulator) */
static void side_dots(const float *x, int64_t k, const float *pt, int64_t r, float *out)
{
    for (int64_t j0 = 0; j0 < r; j0 += 8) {
        int jn = (int)(r - j0 < 8 ? r - j0 : 8);
        v16f acc[8];
        memset(acc, 0, sizeof acc);
        int64_t i = 0;
        if (jn == 8) { /* LoRA's usual rank: all 8 sums in registers */
            for (; i + 16 <= k; i += 16) {
                v16f xv;
                memcpy(&xv, x + i, sizeof xv);
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++) {
                    v16f pv;
                    memcpy(&pv, pt + (j0 + j) * k + i, sizeof pv);
                    acc[j] += xv * pv;
                }
            }
        }
        for (; i + 16 <= k; i += 16) {
            v16f xv;
            memcpy(&xv, x + i, sizeof xv);
            for (int j = 0; j < jn; j++) {
                v16f pv;
                memcpy(&pv, pt + (j0 + j) * k + i, sizeof pv);
                acc[j] += xv * pv;
            }
        }
        for (int j = 0; j < jn; j++) {
            float t = 0;
            for (int l = 0; l < 16; l++) t += acc[j][l];
            for (int64_t q = i; q < k; q++) t += x[q] * pt[(j0 + j) * k + q];
            out[j0 + j] = t;
        }
    }
}

void lfl_gemm_side_rows(int64_t m, int64_t k, const float *a, int64_t lda, const float *pt, int64_t r, float *side)
{
#pragma omp parallel for schedule(static) if (m * k * r > LFL_OMP_MIN)
    for (int64_t i = 0; i < m; i++) side_dots(a + i * lda, k, pt, r, side + i * r);
}

/* rows [r0, r1) of A (f32, row-major, lda) into bf16 rows of ldp pairs; with
 * a low-rank side, each row's side = a_row @ pt^T is computed while the row is
 * in L1 and scale * side is packed as the pairs after the first kp1 */
static void pack_a_rows(const float *a, int64_t lda, int64_t k, int64_t r0, int64_t r1, uint32_t *ap, int64_t ldp,
                        const lfl_gemm_lowrank *lr)
{
    int64_t kp1 = (k + 1) / 2;
    float sv[LFL_GEMM_MAX_RANK];
    for (int64_t r = r0; r < r1; r++) {
        const float *s = a + r * lda;
        lfl_bf16_pack_row(s, k, (uint16_t *)(ap + r * ldp));
        if (!lr) continue;
        side_dots(s, k, lr->pt, lr->r, lr->side + r * lr->r);
        for (int64_t j = 0; j < lr->r; j++) sv[j] = lr->side[r * lr->r + j] * lr->scale;
        lfl_bf16_pack_row(sv, lr->r, (uint16_t *)(ap + r * ldp + kp1));
    }
}

/* rows [r0, r1) of A stored transposed (A[r][i] = a[i * lda + r]) */
static void pack_a_cols(const float *a, int64_t lda, int64_t k, int64_t r0, int64_t r1, uint32_t *ap, int64_t ldp)
{
    for (int64_t p = 0; p < ldp; p++) {
        const float *s0 = a + 2 * p * lda, *s1 = 2 * p + 1 < k ? s0 + lda : NULL;
        for (int64_t r = r0; r < r1; r++)
            ap[r * ldp + p] = lfl_f32_to_bf16(s0[r]) | (s1 ? (uint32_t)lfl_f32_to_bf16(s1[r]) << 16 : 0);
    }
}

/* panel j of B (B[i][c] = b[i * sbk + c * sbn], i < k) as pairs [0, kp) of a
 * [.][NR] panel, zero-padded past k and n. The two layouts of a bf16 weight
 * have copy loops of their own (a frozen weight is packed by every GEMM that
 * reads it, three times a step): a linear's w [n, k] holds each column's
 * pairs as 32-bit words already; w used as [k, n] (dx) interleaves two rows. */
static void pack_b_panel(lfl_dtype dt, const void *b, int64_t sbk, int64_t sbn, int64_t k, int64_t n, int64_t j,
                         int64_t kp, uint32_t *bp)
{
    int64_t c0 = j * NR, w = n - c0 < NR ? n - c0 : NR;
    if (w < NR)
        for (int64_t p = 0; p < kp; p++) memset(bp + p * NR + w, 0, (size_t)(NR - w) * 4);
    const uint16_t *h = b;
    if (dt == LFL_BF16 && sbk == 1 && k % 2 == 0) {
        for (int64_t c = 0; c < w; c++) {
            const uint16_t *src = h + (c0 + c) * sbn;
            for (int64_t p = 0; p < kp; p++) {
                uint32_t v;
                memcpy(&v, src + 2 * p, 4); /* a mmapped weight may be only 2-byte aligned */
                bp[p * NR + c] = v;
            }
        }
        return;
    }
    if (dt == LFL_BF16 && sbn == 1) {
        for (int64_t p = 0; p < kp; p++) {
            const uint16_t *r0 = h + 2 * p * sbk + c0, *r1 = r0 + sbk;
            uint32_t *d = bp + p * NR;
            if (2 * p + 1 < k) {
#pragma omp simd
                for (int64_t c = 0; c < w; c++) d[c] = (uint32_t)r0[c] | (uint32_t)r1[c] << 16;
            } else {
                for (int64_t c = 0; c < w; c++) d[c] = r0[c];
            }
        }
        return;
    }
    for (int64_t c = 0; c < w; c++) {
        int64_t base = (c0 + c) * sbn;
        for (int64_t p = 0; p < kp; p++) {
            int64_t i = 2 * p;
            uint32_t lo = to_bf16(dt, b, base + i * sbk);
            uint32_t hi = i + 1 < k ? to_bf16(dt, b, base + (i + 1) * sbk) : 0;
            bp[p * NR + c] = lo | hi << 16;
        }
    }
}

/* C[mv rows, nv cols] (=|+=) alpha * A[8, np pairs] B[np pairs, 48]; `first`
 * applies beta to the old C (beta 0 never reads it), later k slices add. */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void tile_kernel(int64_t np, const uint32_t *a, int64_t lda, const uint32_t *b, float *c, int64_t ldc,
                        int mv, int nv, float alpha, float beta, bool first)
{
    __m512 acc[MR][NV];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 3
        for (int j = 0; j < NV; j++) acc[i][j] = _mm512_setzero_ps();
    for (int64_t p = 0; p < np; p++) {
        __m512bh bv[NV];
#pragma GCC unroll 3
        for (int j = 0; j < NV; j++) bv[j] = (__m512bh)_mm512_loadu_si512(b + p * NR + 16 * j);
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[i * lda + p]);
#pragma GCC unroll 3
            for (int j = 0; j < NV; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], av, bv[j]);
        }
    }
    __mmask16 mk[NV];
    for (int j = 0; j < NV; j++) {
        int left = nv - 16 * j;
        mk[j] = left >= 16 ? 0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int i = 0; i < mv; i++)
        for (int j = 0; j < NV; j++) {
            if (!mk[j]) continue;
            float *cp = c + i * ldc + 16 * j;
            __m512 v = _mm512_mul_ps(acc[i][j], va);
            if (!first) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk[j], cp));
            else if (beta != 0.0f) v = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mk[j], cp), v);
            _mm512_mask_storeu_ps(cp, mk[j], v);
        }
}

/* one tile of C: rows [r0, r1), panels [j0, j1) */
static void run_tile(int64_t r0, int64_t r1, int64_t j0, int64_t j1, int64_t n, int64_t kp, const uint32_t *ap,
                     const uint32_t *bp, float alpha, float beta, float *c, int64_t ldc)
{
    for (int64_t p0 = 0; p0 < kp; p0 += KCP) {
        int64_t np = kp - p0 < KCP ? kp - p0 : KCP;
        for (int64_t j = j0; j < j1; j++) {
            const uint32_t *bj = bp + j * kp * NR + p0 * NR;
            int nv = (int)(n - j * NR < NR ? n - j * NR : NR);
            for (int64_t r = r0; r < r1; r += MR) {
                int mv = (int)(r1 - r < MR ? r1 - r : MR);
                tile_kernel(np, ap + r * kp + p0, kp, bj, c + r * ldc + j * NR, ldc, mv, nv, alpha, beta, p0 == 0);
            }
        }
    }
}


static lfl_status gemm(bool ta, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                       lfl_dtype bdt, const void *b, int64_t sbk, int64_t sbn, const lfl_gemm_lowrank *lr,
                       float beta, float *c, int64_t ldc)
{
    LFL_ASSERT(lfl_cpu_has_avx512bf16() && m > 0 && n > 0 && k > 0);
    LFL_ASSERT(!lr || (!ta && lr->r > 0 && lr->r <= LFL_GEMM_MAX_RANK));
    int64_t kp1 = (k + 1) / 2, kp = kp1 + (lr ? (lr->r + 1) / 2 : 0);
    int64_t mp = (m + MR - 1) / MR * MR, npan = (n + NR - 1) / NR;
    bool shared;
    uint32_t *ap = buf_get((size_t)(mp * kp + npan * kp * NR) * 4, &shared);
    if (!ap) return lfl_fail(LFL_ERR_MEM, "gemm (bf16): out of memory packing %lld x %lld by %lld x %lld",
                             (long long)m, (long long)k, (long long)k, (long long)n);
    uint32_t *bp = ap + mp * kp;
    /* rows past m are zeros, so the kernel always reads 8 whole rows */
    memset(ap + m * kp, 0, (size_t)((mp - m) * kp) * 4);
    int64_t ncp = m <= MC ? 1 : NCP, mtiles = (m + MC - 1) / MC, ntiles = (npan + ncp - 1) / ncp;
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(static)
        for (int64_t r = 0; r < mp; r += MR) {
            int64_t r1 = m - r < MR ? m : r + MR;
            if (r >= m) continue;
            if (ta) pack_a_cols(a, lda, k, r, r1, ap, kp);
            else pack_a_rows(a, lda, k, r, r1, ap, kp, lr);
        }
#pragma omp for schedule(static)
        for (int64_t j = 0; j < npan; j++) {
            uint32_t *panel = bp + j * kp * NR;
            pack_b_panel(bdt, b, sbk, sbn, k, n, j, kp1, panel);
            if (lr) pack_b_panel(LFL_F32, lr->q, lr->sqk, lr->sqn, lr->r, n, j, kp - kp1, panel + kp1 * NR);
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < mtiles * ntiles; t++) {
            int64_t ti = t / ntiles, tj = t % ntiles;
            int64_t r0 = ti * MC, r1 = r0 + MC < m ? r0 + MC : m;
            int64_t j0 = tj * ncp, j1 = j0 + ncp < npan ? j0 + ncp : npan;
            run_tile(r0, r1, j0, j1, n, kp, ap, bp, alpha, beta, c, ldc);
        }
    }
    buf_put(ap, shared);
    return LFL_OK;
}

lfl_status lfl_gemm_bf16_own(bool ta, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                             lfl_dtype bdt, const void *b, int64_t sbk, int64_t sbn, float beta, float *c, int64_t ldc)
{
    return gemm(ta, m, n, k, alpha, a, lda, bdt, b, sbk, sbn, NULL, beta, c, ldc);
}

lfl_status lfl_gemm_bf16_own_lowrank(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, lfl_dtype bdt,
                                     const void *b, int64_t sbk, int64_t sbn, const lfl_gemm_lowrank *lr, float beta,
                                     float *c, int64_t ldc)
{
    return gemm(false, m, n, k, 1.0f, a, lda, bdt, b, sbk, sbn, lr, beta, c, ldc);
}
