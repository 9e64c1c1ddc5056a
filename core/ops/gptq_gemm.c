/* The GPTQ / AWQ kept-weight GEMM (gptq_gemm.h): q4_gemm.c's blocking with
 * the tile taken as W^T, inputs down and outputs across, which is how the
 * codes lie (lfl_gptq_dequant_tile_t). Forward: S [k slice, n block] = W^T
 * tile, C += A S. Input gradient: S [n block, k slice] is the W^T tile of
 * those inputs and outputs, C += A S^T. With matmul precision "medium"
 * (bf16: true) each f32 tile goes to the bf16 GEMM as ggml_gemm.c's do. */
#include <omp.h>
#include "../blas.h"
#include "../gemm_bf16.h"
#include "../quant/gptq.h"
#include "gptq_gemm.h"
#include "lowp.h"

lfl_status lfl_gemm_f32_gptq(int64_t m, int64_t n, int64_t k, const float *a, int lda, const lfl_tensor *w, bool wt,
                             float beta, float *c, int ldc)
{
    LFL_TRY(lfl_gptq_check("gemm (GPTQ/AWQ weight)", w));
    LFL_ASSERT(w->ndim == 2 && w->shape[0] == (wt ? n : k) && w->shape[1] == (wt ? k : n));
    if (m == 0 || n == 0) return LFL_OK;
    if (k == 0) { lfl_tile_scale_c(m, n, beta, c, ldc); return LFL_OK; }
    int64_t nb, nblocks, kb;
    int nt = lfl_tile_plan(m, n, k, &nb, &nblocks, &kb);
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
            if (wt) { /* inputs k0.., outputs j0..: S [kl, wd] */
                lfl_gptq_dequant_tile_t(w, k0, kl, j0, wd, s, wd);
                if (!bf16 || lfl_gemm_bf16(false, m, wd, kl, 1.0f, a + k0, lda, LFL_F32, s, wd, 1, bt, c + j0, ldc))
                    lfl_sgemm(false, false, (int)m, (int)wd, (int)kl, 1.0f, a + k0, lda, s, (int)wd, bt, c + j0, ldc);
            } else { /* inputs j0.., outputs k0..: S [wd, kl], used transposed */
                lfl_gptq_dequant_tile_t(w, j0, wd, k0, kl, s, kl);
                if (!bf16 || lfl_gemm_bf16(false, m, wd, kl, 1.0f, a + k0, lda, LFL_F32, s, 1, kl, bt, c + j0, ldc))
                    lfl_sgemm(false, true, (int)m, (int)wd, (int)kl, 1.0f, a + k0, lda, s, (int)kl, bt, c + j0, ldc);
            }
        }
    }
    if (failed)
        return lfl_fail(LFL_ERR_MEM, "gemm (GPTQ/AWQ weight): out of memory for a %lld x %lld tile", (long long)nb,
                        (long long)kb);
    return LFL_OK;
}
