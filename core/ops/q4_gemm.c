/* The bitsandbytes weight GEMM (q4_gemm.h): lowp_gemm.c's blocking with the
 * 16-bit widening replaced by NF4/FP4 or LLM.int8 row-scale dequantization. Output columns split into
 * blocks, a multiple of the thread count; each thread dequantizes its block's
 * tile of W (all of k, or k in slices when a slice of 128 columns would not fit
 * the scratch) and multiplies it with single-threaded sgemm. The products are
 * f32 products of exactly bitsandbytes' dequantized values, so the result is
 * dequantize-then-GEMM up to the GEMM's summation order. */
#include <omp.h>
#include <stdlib.h>
#include "../blas.h"
#include "../quant/bnb8.h"
#include "lowp.h"
#include "q4_gemm.h"

lfl_status lfl_gemm_f32_q4(int64_t m, int64_t n, int64_t k, const float *a, int lda, const lfl_tensor *w, bool wt,
                           float beta, float *c, int ldc)
{
    LFL_TRY(lfl_bnb_check("gemm (bitsandbytes weight)", w));
    LFL_ASSERT(w->ndim == 2 && w->shape[0] == (wt ? n : k) && w->shape[1] == (wt ? k : n));
    if (m == 0 || n == 0) return LFL_OK;
    if (k == 0) { lfl_tile_scale_c(m, n, beta, c, ldc); return LFL_OK; }
    int64_t nb, nblocks, kb;
    int nt = lfl_tile_plan(m, n, k, &nb, &nblocks, &kb);
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
                lfl_bnb_dequant_tile(w, j0, wd, k0, kl, s);
                lfl_sgemm(false, true, (int)m, (int)wd, (int)kl, 1.0f, a + k0, lda, s, (int)kl, bt, c + j0, ldc);
            } else { /* rows k0.. of W [k, n], columns j0..: S [kl, wd] */
                lfl_bnb_dequant_tile(w, k0, kl, j0, wd, s);
                lfl_sgemm(false, false, (int)m, (int)wd, (int)kl, 1.0f, a + k0, lda, s, (int)wd, bt, c + j0, ldc);
            }
        }
    }
    if (failed)
        return lfl_fail(LFL_ERR_MEM, "gemm (bitsandbytes weight): out of memory for a %lld x %lld tile", (long long)nb,
                        (long long)kb);
    return LFL_OK;
}
