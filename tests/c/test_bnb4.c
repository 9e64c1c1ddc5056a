/* core/quant/bnb4.c and core/ops/q4_gemm.c below the bridge: any range and
 * any tile of a 4-bit weight dequantize to the same values as the whole (odd
 * starts, blocks across rows, double-quantized scales), the 4-bit GEMM in both
 * orientations with beta against a double-precision product of the dequantized
 * weight (one thread and several, k = 0), and the state's checks and size.
 * Bitsandbytes conformance itself is tests/lua/test_qlora.lua (goldens). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ops/q4_gemm.h"
#include "quant/bnb4.h"

static int failed, cases;
static uint32_t seed = 11;

static float rnd(void)
{
    seed = seed * 1664525u + 1013904223u;
    return (float)(seed >> 8) / 16777216.0f * 2.0f - 1.0f;
}

#define CHECK(cond, ...) do { cases++; if (!(cond)) { failed++; printf("FAIL  " __VA_ARGS__); printf("\n"); } } while (0)

static lfl_tensor *weight(int64_t rows, int64_t cols, lfl_dtype kind, bool dq)
{
    int64_t shape[2] = {rows, cols};
    lfl_tensor *w = NULL, *q = NULL;
    LFL_ASSERT(lfl_empty(2, shape, LFL_F32, LFL_CPU, &w) == LFL_OK);
    float *p = lfl_data(w);
    for (int64_t i = 0; i < rows * cols; i++) p[i] = rnd() * (i % 97 == 0 ? 4.0f : 0.1f);
    LFL_ASSERT(lfl_quantize_4bit(w, kind, dq, &q) == LFL_OK);
    lfl_tensor_release(w);
    return q;
}

static void ranges_and_tiles(lfl_tensor *q, const char *what)
{
    lfl_tensor *whole = NULL;
    LFL_ASSERT(lfl_q4_dequantize(q, &whole) == LFL_OK);
    const float *all = lfl_data(whole);
    int64_t rows = q->shape[0], cols = q->shape[1], n = rows * cols;
    float *buf = malloc(sizeof(float) * (size_t)n);
    int bad = 0;
    for (int64_t start = 0; start < n; start += 37)
        for (int64_t len = 0; len <= 131 && start + len <= n; len += 13) {
            lfl_q4_dequant_range(q, start, len, buf);
            if (memcmp(buf, all + start, sizeof(float) * (size_t)len)) bad++;
        }
    CHECK(bad == 0, "%s: %d ranges differ from the whole", what, bad);
    bad = 0;
    for (int64_t r0 = 0; r0 < rows; r0 += 5)
        for (int64_t c0 = 0; c0 < cols; c0 += 19) {
            int64_t h = rows - r0 < 7 ? rows - r0 : 7, wd = cols - c0 < 45 ? cols - c0 : 45;
            lfl_q4_dequant_tile(q, r0, h, c0, wd, buf);
            for (int64_t r = 0; r < h; r++)
                if (memcmp(buf + r * wd, all + (r0 + r) * cols + c0, sizeof(float) * (size_t)wd)) bad++;
        }
    CHECK(bad == 0, "%s: %d tile rows differ from the whole", what, bad);
    free(buf);
    lfl_tensor_release(whole);
}

/* C = A @ (wt ? W^T : W) + beta C0, against double sums of the dequantized W */
static void gemm_case(lfl_tensor *q, int64_t m, bool wt, float beta, const char *what)
{
    lfl_tensor *whole = NULL;
    LFL_ASSERT(lfl_q4_dequantize(q, &whole) == LFL_OK);
    const float *W = lfl_data(whole);
    int64_t R = q->shape[0], C = q->shape[1], n = wt ? R : C, k = wt ? C : R;
    float *a = malloc(sizeof(float) * (size_t)(m * k)), *c = malloc(sizeof(float) * (size_t)(m * n));
    double *ref = malloc(sizeof(double) * (size_t)(m * n));
    for (int64_t i = 0; i < m * k; i++) a[i] = rnd();
    for (int64_t i = 0; i < m * n; i++) { c[i] = rnd(); ref[i] = beta * (double)c[i]; }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++) s += (double)a[i * k + p] * (wt ? W[j * C + p] : W[p * C + j]);
            ref[i * n + j] += s;
        }
    lfl_status st = lfl_gemm_f32_q4(m, n, k, a, (int)k, q, wt, beta, c, (int)n);
    double worst = 0;
    for (int64_t i = 0; i < m * n; i++) worst = fmax(worst, fabs(c[i] - ref[i]) / (1.0 + fabs(ref[i])));
    CHECK(st == LFL_OK && worst < 1e-4, "%s: m %lld %s beta %g: worst relative error %g", what, (long long)m,
          wt ? "W^T" : "W", beta, worst);
    free(a); free(c); free(ref);
    lfl_tensor_release(whole);
}

int main(void)
{
    struct { int64_t r, c; lfl_dtype kind; bool dq; const char *what; } ws[] = {
        {37, 128, LFL_NF4, true, "nf4+dq 37x128"},
        {50, 96, LFL_FP4, false, "fp4 50x96 (blocks across rows)"},
        {600, 2304, LFL_NF4, true, "nf4+dq 600x2304 (k in slices, >256 blocks)"},
    };
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) {
        lfl_tensor *q = weight(ws[i].r, ws[i].c, ws[i].kind, ws[i].dq);
        if (i < 2) ranges_and_tiles(q, ws[i].what);
        int64_t n = ws[i].r * ws[i].c, nb = n / 64;
        size_t want = (size_t)(n / 2) + (ws[i].dq ? (size_t)nb + 4 * (size_t)((nb + 255) / 256) + 4 : 4 * (size_t)nb);
        CHECK(lfl_q4_nbytes(q) == want, "%s: %zu bytes held, expected %zu", ws[i].what, lfl_q4_nbytes(q), want);
        int64_t ms[] = {1, 9, i == 2 ? 12 : 70};
        for (int t = 0; t < 2; t++) {
            omp_set_num_threads(t ? 2 : 1);
            for (int j = 0; j < 3; j++) {
                gemm_case(q, ms[j], true, j == 1 ? 0.5f : 0.0f, ws[i].what);
                gemm_case(q, ms[j], false, j == 2 ? 1.0f : 0.0f, ws[i].what);
            }
        }
        lfl_tensor_release(q);
    }
    /* a clone keeps the bytes but not the scales; a bad kind and a bad length are refused */
    lfl_tensor *q = weight(4, 64, LFL_NF4, false), *c = NULL, *bad = NULL;
    CHECK(lfl_clone(q, &c) == LFL_OK && lfl_q4_check("op", c) != LFL_OK &&
          strstr(lfl_last_error(), "no 4-bit quantization state"), "a clone without state is refused");
    int64_t s3[1] = {65};
    lfl_tensor *w65 = NULL;
    LFL_ASSERT(lfl_empty(1, s3, LFL_F32, LFL_CPU, &w65) == LFL_OK);
    CHECK(lfl_quantize_4bit(w65, LFL_NF4, true, &bad) != LFL_OK && strstr(lfl_last_error(), "multiple of the block"),
          "65 elements refused");
    CHECK(lfl_quantize_4bit(q, LFL_Q4_0, true, &bad) != LFL_OK && strstr(lfl_last_error(), "must be nf4 or fp4"),
          "a non-4-bit kind refused");
    lfl_tensor_release(w65);
    lfl_tensor_release(c);
    lfl_tensor_release(q);
    printf("%d passed, %d failed\n", cases - failed, failed);
    return failed != 0;
}
