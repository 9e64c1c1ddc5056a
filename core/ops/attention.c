/* attention: softmax(q k^T * scale) v, flash style on the CPU: q[B, Hq, T, D],
 * k/v[B, Hkv, S, D] with grouped-query heads (q head h reads kv head
 * h / (Hq / Hkv)). Query i may see key j when (with off = S - T, the number of
 * cached keys before the first query):
 *   causal:   j <= i + off
 *   window w: j >  i + off - w   (only with causal: the key is one of the last w
 *             positions including the query's own; transformers' masking_utils
 *             sliding_window_overlay is `kv_idx > q_idx - sliding_window` on
 *             absolute positions, used by Mistral, Gemma2/3, Qwen2 ...)
 *   segments: seg[b, i] == seg[b, j]  (packed rows, S == T; for the packed
 *             sequences of one row this matches transformers' packed-sequence
 *             mask, positions restarting at 0 in each)
 *   kv_start: j >= kv_start[b]  (batched generation with left padding: row b's
 *             first kv_start[b] keys are padding; as they sit before every real
 *             key of the row, causal and window distances are unchanged)
 * Gemma2's soft-capping replaces a scaled score s by cap * tanh(s / cap) before
 * masking. Sinks (GPT-OSS): a per-head logit s_h joins every row's softmax
 * as one more key without a value, so the row's output is scaled by
 * exp(lse - lse') with lse' = log(exp(lse) + exp(s_h)), and lse' is the row's
 * log-sum-exp. Backward is then the same FlashAttention-2 pass on lse' (the
 * sink column's dP is 0, so rowsum(dO * O) still is sum_j P_ij dP_ij), and
 * d s_h = -sum over rows of exp(s_h - lse') * rowsum(dO * O).
 * A query that sees no key at all gets a zero output (torch's SDPA
 * gives NaN there). A NaN score (a NaN in q, or in a key the query sees)
 * makes the query's whole output row and its log-sum-exp NaN, as torch's
 * softmax does: the row max keeps NaN, exp keeps it, and NaN sums are never
 * mistaken for the empty row.
 *
 * Forward: per (batch, q head, query tile), an online softmax over key tiles
 * (running max m and sum l per row); the T x S score matrix never exists, only
 * one tile of it per thread, and the per-row log-sum-exp is kept for backward.
 * Tiles no query of the tile can see (causal, window, segments) are skipped;
 * fully visible ones skip the per-element mask. Backward is FlashAttention-2's:
 * recompute S per tile from q, k and the LSE, P = exp(S - lse), dV += P^T dO,
 * dP = dO V^T, dS = P * (dP - rowsum(dO * O)), dK += dS^T q, dQ += dS k.
 * The output is returned as a [B, Hq, T, D] view of [B, T, Hq, D] storage, so
 * the usual transpose + reshape before o_proj costs nothing.
 *
 * f32 runs 64 x 64 tiles, their GEMMs through lfl_sgemm (measured faster
 * than hand-written vector kernels, see below) and the softmax through the
 * vectorised exp of vmath.h; f64 (for gradient checks) runs the same driver
 * on 8 x 8 tiles with plain loops, so small gradchecks cross tile boundaries.
 * Under matmul precision "medium" the f32 tiles multiply in bf16
 * (attention_bf16.c); the softmax stays f32. */
#include <string.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif
#include "vmath.h"
#include "rows.h"
#include "../blas.h"
#include "../gemm_bf16.h"
#include "attention_bf16.h"

#define ATT_PAR_MIN (1 << 18) /* q.k multiply-adds below which one thread runs */
#define ATT_TASKS_MIN 32      /* backward: key-tile partitions until this many tasks */
#define ATT_PARTS_MAX 16
#define ATT_DQ_BYTES_MAX ((int64_t)1 << 30)

typedef struct {
    int64_t B, Hq, Hkv, G, T, S, D, Dp, off, window;
    int64_t tile, nqb, nkb, Tp, Sp, parts, work;
    bool causal;
    double scale, softcap;
    const int64_t *seg; /* [B, T] segment ids, or NULL */
    const int64_t *kvs; /* [B] first visible key per row, or NULL */
    int64_t *segr;      /* [B][nqb] {min, max} segment id per tile (S == T, shared by q and k tiles) */
} att_geo;

/* keys [lo, hi) of query i before segments */
static inline int64_t att_row_hi(const att_geo *g, int64_t i)
{
    if (!g->causal) return g->S;
    int64_t h = i + g->off + 1;
    return h < 0 ? 0 : h < g->S ? h : g->S;
}

static inline int64_t att_row_lo(const att_geo *g, int64_t b, int64_t i)
{
    int64_t l = g->window > 0 ? i + g->off - g->window + 1 : 0, s = g->kvs ? g->kvs[b] : 0;
    l = l > s ? l : s;
    return l < 0 ? 0 : l;
}

/* 0: no query of tile qb sees a key of tile kb; 1: some do (mask per element);
 * 2: every query sees every key (and no key is padding). */
static int att_tile_kind(const att_geo *g, int64_t b, int64_t qb, int64_t kb)
{
    int64_t i0 = qb * g->tile, i1 = (i0 + g->tile < g->T ? i0 + g->tile : g->T) - 1;
    int64_t j0 = kb * g->tile, j1 = j0 + g->tile;
    int64_t lo0 = att_row_lo(g, b, i0), lo1 = att_row_lo(g, b, i1), hi0 = att_row_hi(g, i0), hi1 = att_row_hi(g, i1);
    if (j0 >= hi1 || (j1 < g->S ? j1 : g->S) <= lo0) return 0;
    if (g->segr) {
        const int64_t *a = g->segr + (b * g->nqb + qb) * 2, *c = g->segr + (b * g->nqb + kb) * 2;
        if (a[1] < c[0] || c[1] < a[0]) return 0;
        if (!(a[0] == a[1] && c[0] == c[1] && a[0] == c[0])) return 1;
    }
    return j1 <= hi0 && j0 >= lo1 ? 2 : 1;
}

static void *att_alloc(size_t n)
{
    return aligned_alloc(64, n ? (n + 63) & ~(size_t)63 : 64);
}

/* ---- f32 tile kernels: OpenBLAS on 64 x 64 tiles ----
 * Inside the parallel region OpenBLAS (OpenMP build) runs single-threaded.
 * Measured on the 2-core dev VM (tests/bench/bench_attention.lua, one thread,
 * CPU time): per-tile lfl_sgemm was 10-20% faster, forward and backward, than
 * register-blocked 4 x 64 kernels written with GCC vector extensions. */

/* Under matmul precision "medium" the tile products take bf16 operands
 * (attention_bf16.c, on any CPU); checked per tile, it is one atomic load. */
static bool tiles_bf16(void)
{
    return lfl_get_matmul_precision() == LFL_PRECISION_MEDIUM;
}

/* S[r][0..64) = sum_{d < D} A[r][d] * Bt[d][0..64) for r < nr */
static void k_abt_f32(const float *A, int64_t lda, int64_t nr, const float *Bt, int64_t ldb, int64_t D, float *S)
{
    if (tiles_bf16() && lfl_att_gemm_bf16(nr, 64, D, A, lda, 1, Bt, ldb, S, 64, false)) return;
    lfl_sgemm(false, false, (int)nr, 64, (int)D, 1.0f, A, (int)lda, Bt, (int)ldb, 0.0f, S, 64);
}

/* Y[i][0..Dp) += sum_{k < nK} A[i * sa + k * sk] * X[k][0..Dp) for i < nI;
 * A is row-major (sk == 1) or its transpose is (sa == 1) */
static void k_acc_f32(float *Y, int64_t ldy, int64_t nI, const float *A, int64_t sa, int64_t sk, int64_t nK,
                      const float *X, int64_t ldx, int64_t Dp)
{
    if (tiles_bf16() && lfl_att_gemm_bf16(nI, Dp, nK, A, sa, sk, X, ldx, Y, ldy, true)) return;
    if (sk == 1)
        lfl_sgemm(false, false, (int)nI, (int)Dp, (int)nK, 1.0f, A, (int)sa, X, (int)ldx, 1.0f, Y, (int)ldy);
    else
        lfl_sgemm(true, false, (int)nI, (int)Dp, (int)nK, 1.0f, A, (int)sk, X, (int)ldx, 1.0f, Y, (int)ldy);
}

typedef float v16f __attribute__((vector_size(64)));

/* Row reductions over one 64-wide f32 score row: a lane-wise pass, then a
 * shuffle tree (GCC's own epilogue for `omp simd reduction` adds the 16
 * lanes one after another, which cost as much as a tile GEMM here). */
typedef int32_t v16i __attribute__((vector_size(64)));
#if defined(__clang__)
#define ATT_SHUF(v, ...) __builtin_shufflevector(v, v, __VA_ARGS__)
#else
#define ATT_SHUF(v, ...) __builtin_shuffle(v, (v16i){__VA_ARGS__})
#endif

/* lane-wise max that keeps a NaN from either side (a NaN score must reach the
 * row's softmax, as in torch; a plain a > b select drops a NaN in a) */
static inline v16f vmax_f32(v16f a, v16f b)
{
    v16i m = (a > b) | (a != a);
    return (v16f)(((v16i)a & m) | ((v16i)b & ~m));
}

static inline float hmax_f32(v16f v)
{
    v = vmax_f32(v, ATT_SHUF(v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7));
    v = vmax_f32(v, ATT_SHUF(v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11));
    v = vmax_f32(v, ATT_SHUF(v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13));
    v = vmax_f32(v, ATT_SHUF(v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14));
    return v[0];
}

static inline float hsum_f32(v16f v)
{
    v += ATT_SHUF(v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
    v += ATT_SHUF(v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
    v += ATT_SHUF(v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    v += ATT_SHUF(v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
    return v[0];
}

static inline float row_max_f32(const float *s)
{
    const v16f *p = (const v16f *)s;
    return hmax_f32(vmax_f32(vmax_f32(p[0], p[1]), vmax_f32(p[2], p[3])));
}

/* s[c] = exp(s[c] - m); returns the sum */
static inline float row_exp_sum_f32(float *s, float m)
{
#pragma omp simd
    for (int c = 0; c < 64; c++) s[c] = lfl_vexpf(s[c] - m);
    const v16f *p = (const v16f *)s;
    return hsum_f32((p[0] + p[1]) + (p[2] + p[3]));
}

/* ---- f64 tile kernels: plain loops over 8 x 8 tiles (gradient checks) ---- */

static inline double row_max_f64(const double *s)
{
    double m = -INFINITY;
    for (int c = 0; c < 8; c++) m = s[c] > m || s[c] != s[c] ? s[c] : m; /* a NaN sticks, as above */
    return m;
}

static inline double row_exp_sum_f64(double *s, double m)
{
    double sum = 0;
    for (int c = 0; c < 8; c++) sum += s[c] = exp(s[c] - m);
    return sum;
}

static void k_abt_f64(const double *A, int64_t lda, int64_t nr, const double *Bt, int64_t ldb, int64_t D, double *S)
{
    for (int64_t r = 0; r < nr; r++)
        for (int64_t c = 0; c < 8; c++) {
            double acc = 0;
            for (int64_t d = 0; d < D; d++) acc += A[r * lda + d] * Bt[d * ldb + c];
            S[r * 8 + c] = acc;
        }
}

static void k_acc_f64(double *Y, int64_t ldy, int64_t nI, const double *A, int64_t sa, int64_t sk, int64_t nK,
                      const double *X, int64_t ldx, int64_t Dp)
{
    for (int64_t i = 0; i < nI; i++)
        for (int64_t k = 0; k < nK; k++) {
            double a = A[i * sa + k * sk];
            for (int64_t d = 0; d < Dp; d++) Y[i * ldy + d] += a * X[k * ldx + d];
        }
}

#define AT float
#define AS f32
#define ATILE 64
#define AEXP(x) lfl_vexpf(x)
#define ATANH(x) lfl_vtanhf(x)
#include "attention_impl.h"
#undef AT
#undef AS
#undef ATILE
#undef AEXP
#undef ATANH

#define AT double
#define AS f64
#define ATILE 8
#define AEXP(x) exp(x)
#define ATANH(x) tanh(x)
#include "attention_impl.h"
#undef AT
#undef AS
#undef ATILE
#undef AEXP
#undef ATANH

/* Geometry from the (already checked) shapes; seg is [B, T] contiguous i64 or
 * NULL, kvs [B] contiguous i64 or NULL. */
static lfl_status att_geo_init(att_geo *g, const lfl_tensor *q, const lfl_tensor *k, double scale, double softcap,
                               int64_t window, bool causal, const lfl_tensor *seg, const lfl_tensor *kvs)
{
    memset(g, 0, sizeof *g);
    g->kvs = kvs ? lfl_data(kvs) : NULL;
    g->B = q->shape[0];
    g->Hq = q->shape[1];
    g->T = q->shape[2];
    g->D = q->shape[3];
    g->Hkv = k->shape[1];
    g->S = k->shape[2];
    g->G = g->Hq / g->Hkv;
    g->Dp = (g->D + 15) & ~(int64_t)15;
    g->off = g->S - g->T;
    g->window = window;
    g->causal = causal;
    g->scale = scale > 0 ? scale : 1.0 / sqrt((double)(g->D ? g->D : 1));
    g->softcap = softcap;
    g->tile = q->dtype == LFL_F32 ? 64 : 8;
    g->Tp = (g->T + g->tile - 1) / g->tile * g->tile;
    g->Sp = (g->S + g->tile - 1) / g->tile * g->tile;
    g->nqb = g->Tp / g->tile;
    g->nkb = g->Sp / g->tile;
    g->work = g->B * g->Hq * g->T * g->S * (g->D ? g->D : 1);
    /* backward partitions: depend on shapes only, so results do not depend on threads */
    int64_t nkv = g->B * g->Hkv, parts = 1;
    if (nkv > 0 && nkv < ATT_TASKS_MIN) parts = (ATT_TASKS_MIN + nkv - 1) / nkv;
    if (parts > ATT_PARTS_MAX) parts = ATT_PARTS_MAX;
    if (parts > g->nkb) parts = g->nkb > 0 ? g->nkb : 1;
    int64_t qbytes = g->B * g->Hq * g->Tp * g->Dp * (int64_t)lfl_dtype_size(q->dtype);
    while (parts > 1 && parts * qbytes > ATT_DQ_BYTES_MAX) parts--;
    g->parts = parts;
    if (seg) {
        g->seg = lfl_data(seg);
        g->segr = malloc(sizeof *g->segr * (size_t)(2 * g->B * g->nqb + 1));
        if (!g->segr) return lfl_fail(LFL_ERR_MEM, "attention: out of memory");
        for (int64_t b = 0; b < g->B; b++)
            for (int64_t qb = 0; qb < g->nqb; qb++) {
                int64_t i0 = qb * g->tile, i1 = i0 + g->tile < g->T ? i0 + g->tile : g->T;
                int64_t mn = INT64_MAX, mx = INT64_MIN;
                for (int64_t i = i0; i < i1; i++) {
                    int64_t s = g->seg[b * g->T + i];
                    mn = s < mn ? s : mn;
                    mx = s > mx ? s : mx;
                }
                g->segr[(b * g->nqb + qb) * 2] = mn;
                g->segr[(b * g->nqb + qb) * 2 + 1] = mx;
            }
    }
    return LFL_OK;
}

/* sum a[d] b[d]: with AVX-512 two vector sums and one horizontal add (an
 * `omp simd` reduction ends in a scalar chain over the 16 lanes, which was
 * most of a decoding step's attention) */
static inline float dot_f32(const float *a, const float *b, int64_t D)
{
    int64_t d = 0;
    float x = 0;
#ifdef __AVX512F__
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    for (; d + 32 <= D; d += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + d), _mm512_loadu_ps(b + d), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + d + 16), _mm512_loadu_ps(b + d + 16), s1);
    }
    if (d + 16 <= D) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + d), _mm512_loadu_ps(b + d), s0);
        d += 16;
    }
    x = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
#endif
    for (; d < D; d++) x += a[d] * b[d];
    return x;
}

#ifdef __AVX512F__
/* dst[e, :] = sum_j p[e n + j] v[j, :] for ne <= 4 heads over n value rows
 * (stride vs, D a multiple of 64), 64 columns at a time: the ne x 4 sums stay
 * in registers over all n rows, each row of V loaded once for the heads */
__attribute__((always_inline)) static inline void pv_rows(const float *p, int64_t n, const int ne, const float *v,
                                                          int64_t vs, int64_t D, float *dst)
{
    for (int64_t d0 = 0; d0 < D; d0 += 64) {
        __m512 acc[4][4];
#pragma GCC unroll 4
        for (int e = 0; e < ne; e++)
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) acc[e][i] = _mm512_setzero_ps();
        for (int64_t j = 0; j < n; j++) {
            const float *vj = v + j * vs + d0;
            __m512 x[4];
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) x[i] = _mm512_loadu_ps(vj + 16 * i);
#pragma GCC unroll 4
            for (int e = 0; e < ne; e++) {
                __m512 pe = _mm512_set1_ps(p[e * n + j]);
#pragma GCC unroll 4
                for (int i = 0; i < 4; i++) acc[e][i] = _mm512_fmadd_ps(pe, x[i], acc[e][i]);
            }
        }
#pragma GCC unroll 4
        for (int e = 0; e < ne; e++)
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) _mm512_storeu_ps(dst + e * D + d0 + 16 * i, acc[e][i]);
    }
}
#endif

/* One query per (batch, head) in f32 without segments (decoding: T == 1):
 * per (batch, kv head) its G query heads together, each key and value row
 * read once for all of them in place through their strides; the visible
 * keys' scores in one buffer, an exact softmax over them (the vectorised exp
 * and tanh of vmath.h, as the tiles use) and the weighted sum of values. The
 * tiled forward would copy all of K and V into tiles and pad the query to 64
 * rows for each token. The same out / lse as the tiles, NaN and empty rows
 * included. */
static lfl_status att_decode_f32(const att_geo *g, const lfl_tensor *q, const lfl_tensor *k, const lfl_tensor *v,
                                 float *out, float *lse)
{
    const int64_t D = g->D, Hq = g->Hq, G = g->G, ntask = g->B * g->Hkv;
    const int64_t qs3 = q->stride[3], ks2 = k->stride[2], ks3 = k->stride[3], vs2 = v->stride[2], vs3 = v->stride[3];
    const float scale = (float)g->scale, cap = (float)g->softcap, icap = cap > 0 ? 1.0f / cap : 0.0f;
    const float *qd = lfl_data(q), *kd = lfl_data(k), *vd = lfl_data(v);
    int failed = 0;
#pragma omp parallel if (g->B * Hq * g->S * D > ATT_PAR_MIN) reduction(| : failed)
    {
        float *qs = att_alloc(sizeof(float) * (size_t)(G * (D + g->S + 1))), *sc = qs ? qs + G * D : NULL;
        if (!qs) failed = 1;
#pragma omp for schedule(static)
        for (int64_t t = 0; t < ntask; t++) {
            if (!qs) continue;
            int64_t b = t / g->Hkv, hk = t % g->Hkv, h0 = hk * G;
            int64_t lo = att_row_lo(g, b, 0), hi = att_row_hi(g, 0), n = hi > lo ? hi - lo : 0;
            const float *kb = kd + b * k->stride[0] + hk * k->stride[1], *vb = vd + b * v->stride[0] + hk * v->stride[1];
            for (int64_t e = 0; e < G; e++) {
                const float *qp = qd + b * q->stride[0] + (h0 + e) * q->stride[1];
                for (int64_t d = 0; d < D; d++) qs[e * D + d] = qp[d * qs3] * scale;
            }
            for (int64_t j = 0; j < n; j++) {
                const float *kj = kb + (lo + j) * ks2;
                for (int64_t e = 0; e < G; e++) {
                    const float *qe = qs + e * D;
                    float x = 0;
                    if (ks3 == 1) {
                        x = dot_f32(qe, kj, D);
                    } else {
                        for (int64_t d = 0; d < D; d++) x += qe[d] * kj[d * ks3];
                    }
                    sc[e * n + j] = x;
                }
            }
            if (cap > 0) {
#pragma omp simd
                for (int64_t i = 0; i < G * n; i++) sc[i] = cap * lfl_vtanhf(sc[i] * icap);
            }
            for (int64_t e = 0; e < G; e++) {
                float *se = sc + e * n, *dst = out + (b * Hq + h0 + e) * D, mx = -INFINITY, l = 0;
                int nan = 0;
#pragma omp simd reduction(max : mx) reduction(| : nan)
                for (int64_t j = 0; j < n; j++) {
                    mx = se[j] > mx ? se[j] : mx; /* a NaN is caught by nan */
                    nan |= se[j] != se[j];
                }
                if (n == 0 || nan) { /* no key visible: zeros; a NaN score: the row NaN */
                    for (int64_t d = 0; d < D; d++) dst[d] = nan ? NAN : 0.0f;
                    lse[b * Hq + h0 + e] = nan ? NAN : -INFINITY;
                    se[0] = NAN; /* marks the head done */
                    continue;
                }
#pragma omp simd reduction(+ : l)
                for (int64_t j = 0; j < n; j++) {
                    se[j] = lfl_vexpf(se[j] - mx);
                    l += se[j];
                }
                lse[b * Hq + h0 + e] = mx + logf(l);
                float inv = 1.0f / l;
#pragma omp simd
                for (int64_t j = 0; j < n; j++) se[j] *= inv;
                for (int64_t d = 0; d < D; d++) dst[d] = 0;
            }
#ifdef __AVX512F__
            if (vs3 == 1 && D % 64 == 0) {
                float *o0 = out + (b * Hq + h0) * D;
                for (int64_t e = 0; e < G; e += 4) {
                    int ne = G - e < 4 ? (int)(G - e) : 4;
                    if (ne == 4) pv_rows(sc + e * n, n, 4, vb + lo * vs2, vs2, D, o0 + e * D);
                    else if (ne == 3) pv_rows(sc + e * n, n, 3, vb + lo * vs2, vs2, D, o0 + e * D);
                    else if (ne == 2) pv_rows(sc + e * n, n, 2, vb + lo * vs2, vs2, D, o0 + e * D);
                    else pv_rows(sc + e * n, n, 1, vb + lo * vs2, vs2, D, o0 + e * D);
                }
                for (int64_t e = 0; e < G; e++) /* the heads done above: their zeros or NaN again */
                    if (sc[e * n] != sc[e * n])
                        for (int64_t d = 0; d < D; d++) o0[e * D + d] = lse[b * Hq + h0 + e] != lse[b * Hq + h0 + e] ? NAN : 0.0f;
                continue;
            }
#endif
            for (int64_t j = 0; j < n; j++) {
                const float *vj = vb + (lo + j) * vs2;
                for (int64_t e = 0; e < G; e++) {
                    float p = sc[e * n + j], *dst = out + (b * Hq + h0 + e) * D;
                    if (sc[e * n] != sc[e * n]) continue; /* done above */
                    if (vs3 == 1) {
#pragma omp simd
                        for (int64_t d = 0; d < D; d++) dst[d] += p * vj[d];
                    } else {
                        for (int64_t d = 0; d < D; d++) dst[d] += p * vj[d * vs3];
                    }
                }
            }
        }
        free(qs);
    }
    if (failed) return lfl_fail(LFL_ERR_MEM, "attention: out of memory for the scores of %lld keys", (long long)g->S);
    return LFL_OK;
}

/* folds the sinks into a forward's rows (see the header): store [B, T, Hq, D]
 * and lse [B, Hq, T], both contiguous, sinks [Hq] contiguous. A NaN row or sink stays NaN; a row
 * that sees no key keeps its zero output with lse' = s_h. */
#define ATT_SINKS_APPLY(T_, store, lse, sk)                                                                     \
    do {                                                                                                        \
        int64_t B_ = (store)->shape[0], T2 = (store)->shape[1], H_ = (store)->shape[2], D_ = (store)->shape[3]; \
        T_ *op = lfl_data(store), *lp = lfl_data(lse);                                                          \
        const T_ *sp = lfl_data(sk);                                                                            \
        for (int64_t b = 0; b < B_; b++)                                                                        \
            for (int64_t h = 0; h < H_; h++)                                                                    \
                for (int64_t t = 0; t < T2; t++) {                                                              \
                    double l = lp[(b * H_ + h) * T2 + t], s = sp[h], m = l > s ? l : s, nl, f;                  \
                    if (isnan(l) || isnan(s)) nl = f = NAN;                                                     \
                    else if (m == -INFINITY) continue;                                                          \
                    else {                                                                                      \
                        nl = m + log(exp(l - m) + exp(s - m));                                                  \
                        f = exp(l - nl);                                                                        \
                    }                                                                                           \
                    T_ *row = op + ((b * T2 + t) * H_ + h) * D_;                                                \
                    for (int64_t d = 0; d < D_; d++) row[d] = (T_)(row[d] * f);                                 \
                    lp[(b * H_ + h) * T2 + t] = (T_)nl;                                                         \
                }                                                                                               \
    } while (0)

static void att_sinks_apply(lfl_tensor *store, lfl_tensor *lse, lfl_tensor *sinks)
{
    if (store->dtype == LFL_F32) ATT_SINKS_APPLY(float, store, lse, sinks);
    else ATT_SINKS_APPLY(double, store, lse, sinks);
}

/* the sinks' gradient (see the header): go contiguous [B, Hq, T, D], o any
 * strides, lse' [B, Hq, T] contiguous, sinks and ds [Hq] contiguous */
#define ATT_SINKS_GRAD(T_, o, go, lse, sk, ds)                                                                  \
    do {                                                                                                        \
        int64_t B_ = (o)->shape[0], H_ = (o)->shape[1], T2 = (o)->shape[2], D_ = (o)->shape[3];                 \
        const T_ *op = lfl_data(o), *gp = lfl_data(go), *lp = lfl_data(lse), *sp = lfl_data(sk);                \
        T_ *dp = lfl_data(ds);                                                                                  \
        for (int64_t h = 0; h < H_; h++) {                                                                      \
            double acc = 0;                                                                                     \
            for (int64_t b = 0; b < B_; b++)                                                                    \
                for (int64_t t = 0; t < T2; t++) {                                                              \
                    double l = lp[(b * H_ + h) * T2 + t];                                                       \
                    if (l == -INFINITY) continue; /* nothing seen, sink -inf too: no gradient */                \
                    const T_ *orow = op + b * (o)->stride[0] + h * (o)->stride[1] + t * (o)->stride[2];         \
                    const T_ *grow = gp + ((b * H_ + h) * T2 + t) * D_;                                         \
                    double dd = 0;                                                                              \
                    for (int64_t d = 0; d < D_; d++) dd += (double)grow[d] * (double)orow[d * (o)->stride[3]];  \
                    acc -= exp((double)sp[h] - l) * dd;                                                         \
                }                                                                                               \
            dp[h] = (T_)acc;                                                                                    \
        }                                                                                                       \
    } while (0)

static void att_sinks_grad(lfl_tensor *o, lfl_tensor *go, lfl_tensor *lse, lfl_tensor *sinks, lfl_tensor *ds)
{
    if (o->dtype == LFL_F32) ATT_SINKS_GRAD(float, o, go, lse, sinks, ds);
    else ATT_SINKS_GRAD(double, o, go, lse, sinks, ds);
}

lfl_status lfl_cpu_attention_backward(const lfl_attn_args *p, lfl_tensor *o, lfl_tensor *lse, lfl_tensor *go,
                                      lfl_tensor *dq, lfl_tensor *dk, lfl_tensor *dv, lfl_tensor *dsinks)
{
    att_geo g;
    lfl_tensor *q = p->q;
    lfl_status st = att_geo_init(&g, q, p->k, p->scale, p->softcap, p->window, p->causal, p->segments, p->kv_start);
    if (st == LFL_OK && q->dtype == LFL_F32)
        st = att_backward_f32(&g, q, p->k, p->v, o, lfl_data(lse), lfl_data(go), lfl_data(dq), lfl_data(dk),
                              lfl_data(dv));
    else if (st == LFL_OK)
        st = att_backward_f64(&g, q, p->k, p->v, o, lfl_data(lse), lfl_data(go), lfl_data(dq), lfl_data(dk),
                              lfl_data(dv));
    if (st == LFL_OK && dsinks) att_sinks_grad(o, go, lse, p->sinks, dsinks);
    free(g.segr);
    return st;
}

static lfl_status attention_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    bool sinks = n->n_in == 4;
    lfl_attn_args p = {n->saved[0], n->saved[1], n->saved[2], n->saved[5], n->saved[6],
                       n->farg[0], n->farg[1], n->iarg[0], n->iarg[1] != 0, sinks ? n->saved[7] : NULL};
    lfl_tensor *q = p.q, *k = p.k, *v = p.v, *o = n->saved[3], *lse = n->saved[4];
    lfl_tensor *go = NULL, *dq = NULL, *dk = NULL, *dv = NULL, *ds = NULL;
    lfl_attention_backward_kernel fn;
    LFL_TRY(lfl_dispatch_attention_backward(q->device, NULL, &fn));
    lfl_status st = lfl_contiguous(gout[0], &go);
    if (st == LFL_OK) st = lfl_empty(4, q->shape, q->dtype, q->device, &dq);
    if (st == LFL_OK) st = lfl_empty(4, k->shape, q->dtype, q->device, &dk);
    if (st == LFL_OK) st = lfl_empty(4, v->shape, q->dtype, q->device, &dv);
    if (st == LFL_OK && sinks && lfl_node_needs(n, 3)) st = lfl_empty(1, p.sinks->shape, q->dtype, q->device, &ds);
    if (st == LFL_OK && q->shape[2] == 0) { /* no query: no gradient reaches k, v or the sinks */
        st = lfl_fill_(dk, 0);
        if (st == LFL_OK) st = lfl_fill_(dv, 0);
        if (st == LFL_OK && ds) st = lfl_fill_(ds, 0);
    } else if (st == LFL_OK) {
        st = fn(&p, o, lse, go, dq, dk, dv, ds);
    }
    lfl_tensor_release(go);
    lfl_tensor *res[4] = {dq, dk, dv, ds};
    for (int i = 0; i < 4; i++) {
        if (st == LFL_OK && res[i] && lfl_node_needs(n, i)) gin[i] = res[i];
        else lfl_tensor_release(res[i]);
    }
    return st;
}

/* a replay's given output [B, Hq, T, D] and log-sum-exps [B, Hq, T] (contiguous) */
static lfl_status given_check(const lfl_attn_opts *o, lfl_dtype dt, int dev, int64_t B, int64_t Hq, int64_t T,
                              int64_t D)
{
    const lfl_tensor *go = o->given_out, *gl = o->given_lse;
    int64_t os[4] = {B, Hq, T, D};
    bool ok = go && gl && go->dtype == dt && gl->dtype == dt && go->ndim == 4 && gl->ndim == 3 &&
              go->device == dev && gl->device == dev && !memcmp(go->shape, os, sizeof os) &&
              !memcmp(gl->shape, os, sizeof(int64_t) * 3) && lfl_is_contiguous(gl);
    if (!ok)
        return lfl_fail(LFL_ERR_ARG, "attention: a replay needs the output [%lld, %lld, %lld, %lld] and log-sum-exps "
                                     "[%lld, %lld, %lld] of a forward run on the same inputs (%s, on q's device)",
                        (long long)B, (long long)Hq, (long long)T, (long long)D, (long long)B, (long long)Hq,
                        (long long)T, lfl_dtype_name(dt));
    if (go->grad_fn || go->requires_grad || gl->grad_fn || gl->requires_grad)
        return lfl_fail(LFL_ERR_ARG, "attention: a replay's given tensors must be plain, not part of a graph");
    return LFL_OK;
}

lfl_status lfl_cpu_attention(const lfl_attn_args *p, lfl_tensor *store, lfl_tensor *lse)
{
    const lfl_tensor *kvs = p->kv_start;
    for (int64_t b = 0; kvs && b < p->q->shape[0]; b++) {
        int64_t x = ((const int64_t *)lfl_data(kvs))[b];
        if (x < 0 || x > p->k->shape[2])
            return lfl_fail(LFL_ERR_ARG, "attention: kv_start[%lld] = %lld is outside [0, %lld] (the key count)",
                            (long long)b, (long long)x, (long long)p->k->shape[2]);
    }
    att_geo g;
    lfl_status st = p->q->dtype == LFL_F32 ? lfl_blas_init() : LFL_OK;
    if (st == LFL_OK) st = att_geo_init(&g, p->q, p->k, p->scale, p->softcap, p->window, p->causal, p->segments, kvs);
    else memset(&g, 0, sizeof g);
    if (st == LFL_OK && p->q->dtype == LFL_F32 && g.T == 1 && !g.seg)
        st = att_decode_f32(&g, p->q, p->k, p->v, lfl_data(store), lfl_data(lse));
    else if (st == LFL_OK && p->q->dtype == LFL_F32) st = att_forward_f32(&g, p->q, p->k, p->v, lfl_data(store), lfl_data(lse));
    else if (st == LFL_OK) st = att_forward_f64(&g, p->q, p->k, p->v, lfl_data(store), lfl_data(lse));
    if (st == LFL_OK && p->sinks) att_sinks_apply(store, lse, p->sinks);
    free(g.segr);
    return st;
}

/* q, k, v's shapes as text, for an error only (formatting them costs more than
 * a decoding step's attention checks) */
static void shape_strs(const lfl_tensor *q, const lfl_tensor *k, const lfl_tensor *v, char *bq, char *bk, char *bv)
{
    lfl_shape_str(q, bq, 128);
    lfl_shape_str(k, bk, 128);
    lfl_shape_str(v, bv, 128);
}

lfl_status lfl_attention(lfl_tensor *q, lfl_tensor *k, lfl_tensor *v, const lfl_attn_opts *opts, lfl_tensor **out)
{
    char bq[128], bk[128], bv[128];
    static const lfl_attn_opts none = {0};
    const lfl_attn_opts *o = opts ? opts : &none;
    LFL_TRY(lfl_nn_check("attention", q, "q", NULL));
    LFL_TRY(lfl_nn_check("attention", k, "k", q));
    LFL_TRY(lfl_nn_check("attention", v, "v", q));
    if (k->dtype != q->dtype || v->dtype != q->dtype)
        return lfl_fail(LFL_ERR_ARG, "attention: q, k, v dtypes differ (%s, %s, %s)", lfl_dtype_name(q->dtype),
                        lfl_dtype_name(k->dtype), lfl_dtype_name(v->dtype));
    if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4) {
        shape_strs(q, k, v, bq, bk, bv);
        return lfl_fail(LFL_ERR_ARG, "attention: q %s, k %s, v %s should be [B, Hq, T, D], [B, Hkv, S, D], [B, Hkv, S, D]",
                        bq, bk, bv);
    }
    if (!lfl_same_shape(k, v) || k->shape[0] != q->shape[0] || k->shape[3] != q->shape[3]) {
        shape_strs(q, k, v, bq, bk, bv);
        return lfl_fail(LFL_ERR_ARG, "attention: k %s and v %s should both be [%lld, Hkv, S, %lld] to match q %s", bk, bv,
                        (long long)q->shape[0], (long long)q->shape[3], bq);
    }
    if (k->shape[1] == 0 || q->shape[1] % k->shape[1]) {
        shape_strs(q, k, v, bq, bk, bv);
        return lfl_fail(LFL_ERR_ARG, "attention: %lld query heads are not a multiple of %lld kv heads (q %s, k %s)",
                        (long long)q->shape[1], (long long)k->shape[1], bq, bk);
    }
    if (o->window < 0) return lfl_fail(LFL_ERR_ARG, "attention: window must be >= 0, got %lld", (long long)o->window);
    if (o->window > 0 && !o->causal)
        return lfl_fail(LFL_ERR_ARG, "attention: a sliding window needs causal = true "
                                     "(the bidirectional window of encoder models is not supported)");
    if (!(o->softcap >= 0)) return lfl_fail(LFL_ERR_ARG, "attention: softcap must be >= 0, got %g", o->softcap);
    if (!(o->scale >= 0) || isinf(o->scale))
        return lfl_fail(LFL_ERR_ARG, "attention: scale must be a finite number >= 0 (0 = 1/sqrt(D)), got %g", o->scale);
    if (o->segments) {
        char bs[128];
        const lfl_tensor *s = o->segments;
        if (s->dtype != LFL_I64 || s->ndim != 2 || s->shape[0] != q->shape[0] || s->shape[1] != q->shape[2])
            return lfl_fail(LFL_ERR_ARG, "attention: segments %s of %s should be i64 [%lld, %lld] (batch, query length)",
                            lfl_shape_str(s, bs, sizeof bs), lfl_dtype_name(s->dtype), (long long)q->shape[0],
                            (long long)q->shape[2]);
        if (s->device != q->device) return lfl_fail(LFL_ERR_DEVICE, "attention: segments are on another device than q");
        if (k->shape[2] != q->shape[2]) {
            shape_strs(q, k, v, bq, bk, bv);
            return lfl_fail(LFL_ERR_ARG, "attention: segments need as many keys as queries (S == T), got q %s, k %s",
                            bq, bk);
        }
    }
    if (o->kv_start) {
        char bs[128];
        const lfl_tensor *s = o->kv_start;
        if (s->dtype != LFL_I64 || s->ndim != 1 || s->shape[0] != q->shape[0])
            return lfl_fail(LFL_ERR_ARG, "attention: kv_start %s of %s should be i64 [%lld] (one first key per batch row)",
                            lfl_shape_str(s, bs, sizeof bs), lfl_dtype_name(s->dtype), (long long)q->shape[0]);
        if (s->device != q->device) return lfl_fail(LFL_ERR_DEVICE, "attention: kv_start is on another device than q");
    }
    if (o->sinks) {
        char bs[128];
        const lfl_tensor *s = o->sinks;
        if (s->dtype != q->dtype || s->ndim != 1 || s->shape[0] != q->shape[1])
            return lfl_fail(LFL_ERR_ARG, "attention: sinks %s of %s should be %s [%lld] (one logit per query head)",
                            lfl_shape_str(s, bs, sizeof bs), lfl_dtype_name(s->dtype), lfl_dtype_name(q->dtype),
                            (long long)q->shape[1]);
        if (s->device != q->device) return lfl_fail(LFL_ERR_DEVICE, "attention: sinks are on another device than q");
    }
    lfl_attention_kernel fn;
    LFL_TRY(lfl_dispatch_attention(q->device, NULL, &fn));
    int64_t B = q->shape[0], Hq = q->shape[1], T = q->shape[2], D = q->shape[3];
    lfl_attn_args p = {q, k, v, NULL, NULL, o->scale > 0 ? o->scale : 1.0 / sqrt((double)(D ? D : 1)), o->softcap,
                       o->window, o->causal};
    int64_t sshape[4] = {B, T, Hq, D}, lshape[3] = {B, Hq, T};
    lfl_tensor *store = NULL, *res = NULL, *lse = NULL;
    lfl_status st = o->segments ? lfl_contiguous(o->segments, &p.segments) : LFL_OK;
    if (st == LFL_OK && o->kv_start) st = lfl_contiguous(o->kv_start, &p.kv_start);
    if (st == LFL_OK && o->sinks) st = lfl_contiguous(o->sinks, &p.sinks);
    if (st == LFL_OK && (o->given_out || o->given_lse)) {
        st = given_check(o, q->dtype, q->device, B, Hq, T, D);
        if (st == LFL_OK) {
            res = lfl_tensor_retain(o->given_out);
            lse = lfl_tensor_retain(o->given_lse);
        }
    } else {
        if (st == LFL_OK) st = lfl_empty(4, sshape, q->dtype, q->device, &store);
        if (st == LFL_OK) st = lfl_empty(3, lshape, q->dtype, q->device, &lse);
    }
    if (st == LFL_OK && res) {
        /* replayed */
    } else if (st == LFL_OK && B * Hq * T * D > 0) {
        st = fn(&p, store, lse);
    } else if (st == LFL_OK) {
        st = lfl_fill_(lse, -INFINITY);
    }
    if (st == LFL_OK && !res) st = lfl_transpose(store, 1, 2, &res);
    lfl_tensor_release(store);
    if (st == LFL_OK) {
        lfl_tensor *in[4] = {q, k, v, o->sinks};
        lfl_node *n = lfl_node_begin("attention", attention_backward, o->sinks ? 4 : 3, in, 1);
        if (n) {
            n->farg[0] = p.scale;
            n->farg[1] = o->softcap;
            n->iarg[0] = o->window;
            n->iarg[1] = o->causal;
            lfl_node_save(n, q);
            lfl_node_save(n, k);
            lfl_node_save(n, v);
            lfl_node_save(n, res);
            lfl_node_save(n, lse);
            lfl_node_save(n, p.segments);
            lfl_node_save(n, p.kv_start);
            if (p.sinks) lfl_node_save(n, p.sinks);
            lfl_node_set_output(n, res, 0);
            lfl_node_release(n);
        }
        *out = res;
        res = NULL;
        if (o->lse_out) *o->lse_out = lfl_tensor_retain(lse);
    }
    lfl_tensor_release(res);
    lfl_tensor_release(lse);
    lfl_tensor_release(p.segments);
    lfl_tensor_release(p.kv_start);
    lfl_tensor_release(p.sinks);
    return st;
}
