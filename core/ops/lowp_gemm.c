/* GEMMs with one bf16/f16 operand (a stored weight) and one f32 operand: the
 * 16-bit operand is widened to f32 one block of output columns (or rows) at a
 * time into a per-thread scratch, and each block goes to lfl_sgemm. The
 * products are exact f32 products of the widened weights, so a bf16-weight
 * linear equals the f32 linear on weight:to("bf16"):to("f32") up to the GEMM's
 * own summation order. Used by linear, matmul and linear_cross_entropy. Under
 * matmul precision "medium" large products go to gemm_bf16.c instead. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "../blas.h"
#include "../gemm_bf16.h"
#include "../iter.h"
#include "lowp.h"

/* ~1 MB of f32 per block: big enough that sgemm runs near its full speed on
 * the block (>= 256 columns for K <= 1024), small enough to stay in L2. */
#define SCRATCH_ELEMS (256 * 1024)
#define MIN_BLOCK 16
#define MIN_COLS 128 /* narrowest block worth a GEMM call when K is sliced */
/* multiply-adds below which one thread does it all: lfl_sgemm's threshold
 * (LFL_GEMM_PARALLEL_MIN in core/blas.c), so both paths wake threads alike */
#define GEMM_PARALLEL_MIN 4e6

/* One scratch per thread, kept between calls: a fresh 1 MB malloc is an mmap
 * whose pages fault in on every call, which costs as much as a small GEMM. It
 * is never freed (one per thread that ever ran a 16-bit or 4-bit GEMM; the
 * two never nest: both hand f32 tiles to lfl_sgemm, which takes no scratch). */
static _Thread_local float *scratch;
static _Thread_local size_t scratch_cap;

float *lfl_tile_scratch(size_t n)
{
    if (n > scratch_cap) {
        float *p = malloc(n * sizeof(float));
        if (!p) return NULL;
        free(scratch);
        scratch = p;
        scratch_cap = n;
    }
    return scratch;
}

/* dst[rows, cols] (contiguous f32) = src[r * sr + c * sc] (16-bit) */
static void convert_block(lfl_dtype dt, const uint16_t *src, int64_t rows, int64_t cols, int64_t sr, int64_t sc,
                          float *dst)
{
    for (int64_t r = 0; r < rows; r++) {
        const uint16_t *sp = src + r * sr;
        float *d = dst + r * cols;
        if (sc == 1) {
            lfl_lowp_to_f32(dt, sp, cols, d);
        } else if (dt == LFL_BF16) {
            for (int64_t c = 0; c < cols; c++) d[c] = lfl_bf16_to_f32(sp[c * sc]);
        } else {
            for (int64_t c = 0; c < cols; c++) d[c] = lfl_f16_to_f32(sp[c * sc]);
        }
    }
}

/* How the work splits: the reduction dim k in slices of kb (all of k unless a
 * slice of MIN_COLS columns would overflow the scratch; then C accumulates
 * over the slices), and the `total` output columns (or rows) in blocks of at
 * most SCRATCH_ELEMS / kb, a multiple of the thread count, so that each thread
 * widens and multiplies its own blocks (one parallel region per call; BLAS
 * runs single-threaded inside it). Small products stay on one thread, at the
 * same threshold as lfl_sgemm. */
int lfl_tile_plan(int64_t m, int64_t total, int64_t k, int64_t *nb_out, int64_t *nblocks_out, int64_t *kb_out)
{
    int nt = omp_get_max_threads();
    if (nt < 1 || (double)m * (double)total * (double)k < GEMM_PARALLEL_MIN) nt = 1;
    int64_t kb = k * MIN_COLS > SCRATCH_ELEMS ? SCRATCH_ELEMS / MIN_COLS : k;
    int64_t cap = SCRATCH_ELEMS / kb;
    int64_t nblocks = (total + cap - 1) / cap;
    if (total < (int64_t)nt * MIN_BLOCK) nt = (int)(total / MIN_BLOCK > 1 ? total / MIN_BLOCK : 1);
    nblocks = (nblocks + nt - 1) / nt * nt;
    int64_t nb = (total + nblocks - 1) / nblocks;
    *nb_out = nb;
    *nblocks_out = (total + nb - 1) / nb;
    *kb_out = kb;
    return nt;
}

void lfl_tile_scale_c(int64_t m, int64_t n, float beta, float *c, int ldc)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : c[i * ldc + j] * beta;
}

lfl_status lfl_gemm_f32_lowp(bool ta, int64_t m, int64_t n, int64_t k, const float *a, int lda,
                             lfl_dtype bdt, const void *b, int64_t sbk, int64_t sbn,
                             float beta, float *c, int ldc)
{
    LFL_ASSERT(lfl_is_lowp(bdt));
    if (m == 0 || n == 0) return LFL_OK;
    if (k == 0) { lfl_tile_scale_c(m, n, beta, c, ldc); return LFL_OK; }
    /* matmul precision "medium": the weight is packed as bf16 as it is, no widening */
    if (lfl_gemm_wants_bf16(m, n, k) &&
        lfl_gemm_bf16(ta, m, n, k, 1.0f, a, lda, bdt, b, sbk, sbn, beta, c, ldc) == LFL_OK)
        return LFL_OK;
    int64_t nb, nblocks, kb;
    int nt = lfl_tile_plan(m, n, k, &nb, &nblocks, &kb);
    /* keep the weight's fast dim contiguous in the scratch: W[n, k] rows (a
     * linear's weight) become S[nb, kb] used transposed; B[k, n] rows become S[kb, nb] */
    bool rows_of_n = (sbk < 0 ? -sbk : sbk) <= (sbn < 0 ? -sbn : sbn);
    const uint16_t *pb = b;
    int failed = 0;
#pragma omp parallel for schedule(static) num_threads(nt) reduction(| : failed)
    for (int64_t bi = 0; bi < nblocks; bi++) {
        float *s = lfl_tile_scratch((size_t)(nb * kb));
        if (!s) { failed = 1; continue; }
        int64_t j0 = bi * nb, w = n - j0 < nb ? n - j0 : nb;
        for (int64_t k0 = 0; k0 < k; k0 += kb) {
            int64_t kl = k - k0 < kb ? k - k0 : kb;
            const uint16_t *src = pb + j0 * sbn + k0 * sbk;
            const float *ak = a + (ta ? k0 * (int64_t)lda : k0); /* A's columns k0 .. k0 + kl */
            float bt = k0 == 0 ? beta : 1.0f;
            if (rows_of_n) {
                convert_block(bdt, src, w, kl, sbn, sbk, s);
                lfl_sgemm(ta, true, (int)m, (int)w, (int)kl, 1.0f, ak, lda, s, (int)kl, bt, c + j0, ldc);
            } else {
                convert_block(bdt, src, kl, w, sbk, sbn, s);
                lfl_sgemm(ta, false, (int)m, (int)w, (int)kl, 1.0f, ak, lda, s, (int)w, bt, c + j0, ldc);
            }
        }
    }
    if (failed)
        return lfl_fail(LFL_ERR_MEM, "gemm (16-bit weight): out of memory for a %lld x %lld block",
                        (long long)nb, (long long)k);
    return LFL_OK;
}

lfl_status lfl_gemm_lowp_f32(int64_t m, int64_t n, int64_t k, lfl_dtype adt, const void *a, int64_t sam,
                             int64_t sak, bool tb, const float *b, int ldb, float beta, float *c, int ldc)
{
    LFL_ASSERT(lfl_is_lowp(adt));
    if (m == 0 || n == 0) return LFL_OK;
    if (k == 0) { lfl_tile_scale_c(m, n, beta, c, ldc); return LFL_OK; }
    int64_t mb, nblocks, kb;
    int nt = lfl_tile_plan(n, m, k, &mb, &nblocks, &kb);
    bool rows_of_m = (sak < 0 ? -sak : sak) <= (sam < 0 ? -sam : sam);
    const uint16_t *pa = a;
    int failed = 0;
#pragma omp parallel for schedule(static) num_threads(nt) reduction(| : failed)
    for (int64_t bi = 0; bi < nblocks; bi++) {
        float *s = lfl_tile_scratch((size_t)(mb * kb));
        if (!s) { failed = 1; continue; }
        int64_t i0 = bi * mb, h = m - i0 < mb ? m - i0 : mb;
        for (int64_t k0 = 0; k0 < k; k0 += kb) {
            int64_t kl = k - k0 < kb ? k - k0 : kb;
            const uint16_t *src = pa + i0 * sam + k0 * sak;
            const float *bk = b + (tb ? k0 : k0 * (int64_t)ldb); /* B's rows k0 .. k0 + kl */
            float bt = k0 == 0 ? beta : 1.0f;
            if (rows_of_m) {
                convert_block(adt, src, h, kl, sam, sak, s);
                lfl_sgemm(false, tb, (int)h, (int)n, (int)kl, 1.0f, s, (int)kl, bk, ldb, bt, c + i0 * ldc, ldc);
            } else {
                convert_block(adt, src, kl, h, sak, sam, s);
                lfl_sgemm(true, tb, (int)h, (int)n, (int)kl, 1.0f, s, (int)h, bk, ldb, bt, c + i0 * ldc, ldc);
            }
        }
    }
    if (failed)
        return lfl_fail(LFL_ERR_MEM, "gemm (16-bit operand): out of memory for a %lld x %lld block",
                        (long long)mb, (long long)k);
    return LFL_OK;
}
