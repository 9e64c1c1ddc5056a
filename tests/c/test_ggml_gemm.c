/* core/quant/ggml.c's tiles, unpacking and row unpermute, and core/ops/
 * ggml_gemm.c's GEMMs, on random blocks written in ggml's layout for every
 * block kind (random bytes with f16 scales set to sane values; the existing
 * dequantizer, bit-exact with ggml-quants.c, is the reference):
 * - every tile and the unpacked integers equal the dequantized whole;
 * - the tiled GEMM (forward W^T, input gradient W, beta, 1 and 2 threads, k in
 *   slices) is within 1e-4 relative of a double-precision product of the
 *   dequantized weight, and under matmul precision "medium" (the tiles through
 *   the bf16 GEMM) within 1e-2;
 * - the decode path (<= 8 rows, int8 activations) is within its stated bound:
 *   |error| <= sum_i |w_i| * amax(x's block of i) / 254 (half an int8 step
 *   per activation) + 1e-4 relative; when the CPU has AVX512-VNNI, its fused
 *   kernels (every kind; at 1 row four weight rows a call, the row count's
 *   remainder one by one) agree with the portable ones (forced by
 *   lfl_ggml_vecdot_portable) within 1e-5 of sum |a w| at every row count
 *   1..8, on weights whose row counts leave every remainder mod 4. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "blas.h"
#include "gemm_bf16.h"
#include "ops/ggml_gemm.h"
#include "quant/ggml.h"

static int failed, cases;
static uint32_t seed = 7;

static uint32_t rnd_u32(void)
{
    seed = seed * 1664525u + 1013904223u;
    return seed >> 8;
}
static float rnd(void) { return (float)rnd_u32() / 16777216.0f * 2.0f - 1.0f; }

#define CHECK(cond, ...) do { cases++; if (!(cond)) { failed++; printf("FAIL  " __VA_ARGS__); printf("\n"); } } while (0)

static void put_f16(uint8_t *p, float v)
{
    uint16_t h = lfl_f32_to_f16_soft(v);
    p[0] = (uint8_t)(h & 0xFF);
    p[1] = (uint8_t)(h >> 8);
}

/* a [rows, cols] tensor of kind dt with random quants and scales around 0.01 */
static lfl_tensor *random_blocks(lfl_dtype dt, int64_t rows, int64_t cols)
{
    int64_t shape[2] = {rows, cols};
    lfl_tensor *q = NULL;
    LFL_ASSERT(lfl_empty(2, shape, dt, LFL_CPU, &q) == LFL_OK);
    uint8_t *p = lfl_data(q);
    int64_t bb = lfl_dtypes[dt].block_bytes, nb = rows * cols / lfl_dtypes[dt].block;
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *blk = p + b * bb;
        for (int64_t i = 0; i < bb; i++) blk[i] = (uint8_t)rnd_u32();
        float d = 0.005f + 0.01f * (rnd() + 1.0f), mn = 0.05f * rnd();
        switch (dt) {
        case LFL_Q4_0: case LFL_Q5_0: case LFL_Q8_0: put_f16(blk, d); break;
        case LFL_Q4_1: case LFL_Q5_1: put_f16(blk, d); put_f16(blk + 2, mn); break;
        case LFL_Q4_K: case LFL_Q5_K: put_f16(blk, d * 0.05f); put_f16(blk + 2, fabsf(mn) * 0.05f); break;
        case LFL_Q6_K: put_f16(blk + 208, d * 0.02f); break;
        default: LFL_ASSERT(0);
        }
    }
    return q;
}

static void tiles_and_unpack(lfl_tensor *q, const float *all, const char *what)
{
    lfl_dtype dt = q->dtype;
    int64_t rows = q->shape[0], cols = q->shape[1], blk = lfl_dtypes[dt].block, bb = lfl_dtypes[dt].block_bytes;
    float *buf = malloc(sizeof(float) * (size_t)(rows * cols));
    int bad = 0;
    for (int64_t r0 = 0; r0 < rows; r0 += 3)
        for (int64_t c0 = 0; c0 < cols; c0 += blk) {
            int64_t h = rows - r0 < 5 ? rows - r0 : 5, wd = cols - c0 < 2 * blk ? cols - c0 : 2 * blk;
            lfl_ggml_dequant_tile(q, r0, h, c0, wd, buf);
            for (int64_t r = 0; r < h; r++)
                if (memcmp(buf + r * wd, all + (r0 + r) * cols + c0, sizeof(float) * (size_t)wd)) bad++;
        }
    CHECK(bad == 0, "%s: %d tile rows differ from the whole", what, bad);
    const uint8_t *p = lfl_data(q);
    double worst = 0;
    for (int64_t b = 0; b < rows * cols / blk; b++) {
        uint8_t u[256];
        float d[16], m[16];
        lfl_ggml_unpack(dt, p + b * bb, u, d, m);
        for (int64_t i = 0; i < blk; i++) {
            float v = d[i / 16] * u[i] + m[i / 16], ref = all[b * blk + i];
            worst = fmax(worst, fabs(v - ref) / (1e-3 + fabs(ref)));
        }
    }
    CHECK(worst < 1e-5, "%s: unpacked integers differ from the dequantized block by %g relative", what, worst);
    free(buf);
}

/* C = A @ (wt ? W^T : W) + beta C0 against double sums of the dequantized W */
static double tile_tol = 1e-4;

static void gemm_case(lfl_tensor *q, const float *W, int64_t m, bool wt, float beta, const char *what)
{
    int64_t R = q->shape[0], C = q->shape[1], n = wt ? R : C, k = wt ? C : R;
    float *a = malloc(sizeof(float) * (size_t)(m * k)), *c = malloc(sizeof(float) * (size_t)(m * n));
    double *ref = malloc(sizeof(double) * (size_t)(m * n)), *bound = malloc(sizeof(double) * (size_t)(m * n));
    for (int64_t i = 0; i < m * k; i++) a[i] = rnd() * (i % 53 == 0 ? 3.0f : 1.0f);
    for (int64_t i = 0; i < m * n; i++) { c[i] = rnd(); ref[i] = beta * (double)c[i]; }
    bool vec = wt && m <= lfl_ggml_vecdot_rows(-1);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0, e = 0, mag = 0;
            for (int64_t p = 0; p < k; p++) {
                double w = wt ? W[j * C + p] : W[p * C + j];
                s += (double)a[i * k + p] * w;
                mag += fabs((double)a[i * k + p] * w);
                if (vec) {
                    float amax = 0;
                    for (int64_t t = p / 32 * 32; t < p / 32 * 32 + 32; t++) amax = fmaxf(amax, fabsf(a[i * k + t]));
                    e += fabs(w) * amax / 254.0;
                }
            }
            ref[i * n + j] += s;
            bound[i * n + j] = e * 1.01 + (vec ? 1e-4 : tile_tol) * (1.0 + mag + fabs(ref[i * n + j]));
        }
    lfl_status st = lfl_gemm_f32_ggml(m, n, k, a, (int)k, q, wt, beta, c, (int)n);
    int bad = 0;
    double worst = 0;
    for (int64_t i = 0; i < m * n; i++) {
        double err = fabs(c[i] - ref[i]);
        worst = fmax(worst, err / bound[i]);
        if (!(err <= bound[i])) bad++;
    }
    CHECK(st == LFL_OK && bad == 0, "%s: m %lld %s beta %g (%s): %d outputs past the bound (worst %.3g of it)%s%s",
          what, (long long)m, wt ? "W^T" : "W", beta, vec ? "int8 dot" : "tiles", bad, worst,
          st ? ": " : "", st ? lfl_last_error() : "");
    free(a); free(c); free(ref); free(bound);
}

/* the AVX512-VNNI kernels (fused, or Q6_K's unpacked row) against the
 * portable ones on the same rows: both quantize the activations alike (the
 * same int8 values, checked through the result) and sum integer products
 * exactly, so they differ only in the order of the float sums: within 1e-5 of
 * sum |a w| per output */
static void vnni_vs_portable(lfl_tensor *q, const float *W, int64_t m, const char *what)
{
    int64_t n = q->shape[0], k = q->shape[1];
    float *a = malloc(sizeof(float) * (size_t)(m * k)), *c1 = malloc(sizeof(float) * (size_t)(m * n)),
          *c2 = malloc(sizeof(float) * (size_t)(m * n));
    for (int64_t i = 0; i < m * k; i++) a[i] = rnd() * (i % 29 == 0 ? 4.0f : 1.0f);
    lfl_status s1 = lfl_gemm_f32_ggml(m, n, k, a, (int)k, q, true, 0.0f, c1, (int)n);
    int prev = lfl_ggml_vecdot_portable(1);
    CHECK(strcmp(lfl_ggml_vecdot_kernel(), "portable") == 0, "%s: the portable kernel can be forced", what);
    lfl_status s2 = lfl_gemm_f32_ggml(m, n, k, a, (int)k, q, true, 0.0f, c2, (int)n);
    lfl_ggml_vecdot_portable(prev);
    int bad = 0;
    double worst = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double mag = 0;
            for (int64_t p = 0; p < k; p++) mag += fabs((double)a[i * k + p] * W[j * k + p]);
            double e = fabs((double)c1[i * n + j] - c2[i * n + j]) / (1e-5 * (1.0 + mag));
            worst = fmax(worst, e);
            if (!(e <= 1.0)) bad++;
        }
    CHECK(s1 == LFL_OK && s2 == LFL_OK && bad == 0,
          "%s: m %lld avx512-vnni against portable: %d outputs differ past 1e-5 of sum |a w| (worst %.3g of it)", what,
          (long long)m, bad, worst);
    free(a); free(c1); free(c2);
}

int main(void)
{
    struct { lfl_dtype dt; int64_t r, c; } ws[] = {
        {LFL_Q4_0, 37, 96}, {LFL_Q4_1, 50, 160}, {LFL_Q5_0, 19, 64}, {LFL_Q5_1, 23, 96}, {LFL_Q8_0, 41, 224},
        {LFL_Q4_K, 29, 512}, {LFL_Q5_K, 17, 256}, {LFL_Q6_K, 21, 768},
        {LFL_Q5_0, 26, 576}, /* SmolLM2's width: a group of 16 blocks and one of 2 */
        {LFL_Q4_1, 300, 2304}, /* k in slices (> 2048) and several threads */
        {LFL_Q6_K, 64, 2560},
    };
    printf("decode kernel: %s\n", lfl_ggml_vecdot_kernel());
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "%s %lldx%lld", lfl_dtype_name(ws[i].dt), (long long)ws[i].r, (long long)ws[i].c);
        lfl_tensor *q = random_blocks(ws[i].dt, ws[i].r, ws[i].c), *whole = NULL;
        LFL_ASSERT(lfl_dequantize(q, &whole) == LFL_OK);
        const float *W = lfl_data(whole);
        if (ws[i].r < 100) tiles_and_unpack(q, W, what);
        int64_t ms[] = {1, 3, 8, 9, 40};
        for (int t = 0; t < 2; t++) {
            omp_set_num_threads(t ? 2 : 1);
            for (int j = 0; j < 5; j++) {
                gemm_case(q, W, ms[j], true, j == 1 ? 0.5f : 0.0f, what);
                if (ws[i].r < 100 || j == 4) gemm_case(q, W, ms[j], false, j == 4 ? 1.0f : 0.0f, what);
            }
        }
        /* matmul precision "medium": the tiles go to the bf16 GEMM (bf16-rounded
         * operands: within 1e-2 of the magnitude) */
        if (ws[i].r == 300 && lfl_gemm_bf16_available()) {
            lfl_set_matmul_precision(LFL_PRECISION_MEDIUM);
            tile_tol = 1e-2;
            gemm_case(q, W, 64, true, 0.5f, "medium precision");
            gemm_case(q, W, 64, false, 0.0f, "medium precision");
            int64_t k = ws[i].c, n = ws[i].r;
            float *a = malloc(sizeof(float) * (size_t)(64 * k)), *c1 = malloc(sizeof(float) * (size_t)(64 * n)),
                  *c2 = malloc(sizeof(float) * (size_t)(64 * n));
            for (int64_t e = 0; e < 64 * k; e++) a[e] = rnd();
            lfl_gemm_f32_ggml(64, n, k, a, (int)k, q, true, 0.0f, c2, (int)n);
            lfl_set_matmul_precision(LFL_PRECISION_HIGHEST);
            tile_tol = 1e-4;
            lfl_gemm_f32_ggml(64, n, k, a, (int)k, q, true, 0.0f, c1, (int)n);
            CHECK(memcmp(c1, c2, sizeof(float) * (size_t)(64 * n)) != 0, "medium precision took the bf16 GEMM");
            free(a); free(c1); free(c2);
        }
        if (strcmp(lfl_ggml_vecdot_kernel(), "avx512-vnni") == 0)
            for (int64_t mv = 1; mv <= 8; mv++) vnni_vs_portable(q, W, mv, what);
        /* the portable dot kernel: the same bound (and the tiled path for m <= 8) */
        int prev = lfl_ggml_vecdot_rows(0);
        gemm_case(q, W, 2, true, 0.0f, what);
        lfl_ggml_vecdot_rows(prev);
        /* rows in HF order again: llama.cpp's permute(w, n_head) undone on whole block rows */
        if (ws[i].r % 2 == 0) {
            int64_t heads = ws[i].r % 4 == 0 ? 2 : 1, hd = ws[i].r / heads, C = ws[i].c;
            lfl_tensor *u = NULL, *uw = NULL;
            CHECK(lfl_ggml_unpermute_rows(q, heads, &u) == LFL_OK && lfl_dequantize(u, &uw) == LFL_OK, "%s: unpermute", what);
            int bad = 0;
            for (int64_t h = 0; h < heads && uw; h++)
                for (int64_t a = 0; a < 2; a++)
                    for (int64_t r = 0; r < hd / 2; r++)
                        if (memcmp((float *)lfl_data(uw) + (h * hd + a * hd / 2 + r) * C, W + (h * hd + 2 * r + a) * C,
                                   sizeof(float) * (size_t)C)) bad++;
            CHECK(bad == 0, "%s: %d unpermuted rows are not the HF rows", what, bad);
            lfl_tensor_release(u);
            lfl_tensor_release(uw);
        }
        lfl_tensor_release(whole);
        lfl_tensor_release(q);
    }
    /* bad shapes are refused with the reason */
    int64_t s1[1] = {64}, s2[2] = {3, 64};
    lfl_tensor *v = NULL, *w = NULL, *o = NULL;
    LFL_ASSERT(lfl_empty(1, s1, LFL_Q4_0, LFL_CPU, &v) == LFL_OK && lfl_empty(2, s2, LFL_Q4_0, LFL_CPU, &w) == LFL_OK);
    CHECK(lfl_ggml_check("op", v) != LFL_OK && strstr(lfl_last_error(), "whole 2-D tensor"), "a 1-D block tensor refused");
    CHECK(lfl_ggml_unpermute_rows(w, 2, &o) != LFL_OK && strstr(lfl_last_error(), "heads"), "3 rows in 2 heads refused");
    int64_t s3[2] = {2, 64};
    lfl_tensor *f = NULL;
    LFL_ASSERT(lfl_empty(2, s3, LFL_F32, LFL_CPU, &f) == LFL_OK);
    CHECK(lfl_ggml_check("op", f) != LFL_OK && strstr(lfl_last_error(), "not a GGUF block type"), "f32 refused");
    lfl_tensor_release(v);
    lfl_tensor_release(w);
    lfl_tensor_release(f);
    printf("%d passed, %d failed\n", cases - failed, failed);
    return failed != 0;
}
