/* lfl_gemm_bf16 on every kernel this build and CPU have (core/gemm_path.c:
 * oneDNN, the own vdpbf16ps kernel, sgemm on rounded copies) against a
 * double-precision product of the bf16-rounded operands, over edge shapes (m,
 * n, k not multiples of the 8 x 48 tile or of the 128-pair k slice, odd k, 1,
 * 63, 65, 129, 513), A plain and transposed, B f32 / bf16 / f16 in both
 * layouts, alpha and beta 0 / 1; the low-rank side segment (LoRA's x A^T and
 * rank-r update); calls from inside a parallel region (attention's tiles, two
 * threads at once: oneDNN's cache and per-thread scratchpads); and lfl_sgemm
 * under matmul precision "medium" against "highest". bf16 products are exact
 * in f32, so the bound is the f32 summation error only, whatever the order.
 * ctest runs it also under LFL_GEMM=onednn / own / f32, where the kernel
 * chosen on first use must be the one asked for (or the reason it is not). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "blas.h"
#include "gemm_bf16.h"
#include "gemm_onednn.h"

static int failed, cases;
static uint32_t seed = 7;

static float rnd(void)
{
    seed = seed * 1664525u + 1013904223u;
    return (float)(seed >> 8) / 16777216.0f * 2.0f - 1.0f;
}

static double as_bf16(float x) { return (double)lfl_bf16_to_f32(lfl_f32_to_bf16(x)); }

static const char *path_now(void) { return lfl_gemm_path_name(lfl_gemm_bf16_path()); }

static void check_case(int m, int n, int k, bool ta, lfl_dtype bdt, bool b_rows_of_n, float alpha, float beta)
{
    float *a = malloc(sizeof(float) * (size_t)(m * k)), *bf = malloc(sizeof(float) * (size_t)(k * n));
    uint16_t *bh = malloc(2 * (size_t)(k * n));
    float *c = malloc(sizeof(float) * (size_t)(m * n)), *c0 = malloc(sizeof(float) * (size_t)(m * n));
    for (int i = 0; i < m * k; i++) a[i] = rnd();
    for (int i = 0; i < k * n; i++) {
        bf[i] = rnd();
        if (bdt == LFL_BF16) { bh[i] = lfl_f32_to_bf16(bf[i]); bf[i] = lfl_bf16_to_f32(bh[i]); }
        if (bdt == LFL_F16) { _Float16 h = (_Float16)bf[i]; memcpy(&bh[i], &h, 2); bf[i] = (float)h; }
    }
    for (int i = 0; i < m * n; i++) c0[i] = c[i] = rnd();
    /* B[i][j] at b[i * sbk + j * sbn] */
    int64_t sbk = b_rows_of_n ? 1 : n, sbn = b_rows_of_n ? k : 1;
    int lda = ta ? m : k;
    const void *b = bdt == LFL_F32 ? (const void *)bf : (const void *)bh;
    lfl_status st = lfl_gemm_bf16(ta, m, n, k, alpha, a, lda, bdt, b, sbk, sbn, beta, c, n);
    double worst = 0;
    for (int i = 0; i < m && st == LFL_OK; i++)
        for (int j = 0; j < n; j++) {
            double s = 0, mag = 0;
            for (int p = 0; p < k; p++) {
                double x = as_bf16(ta ? a[p * lda + i] : a[i * lda + p]) * as_bf16(bf[p * sbk + j * sbn]);
                s += x;
                mag += fabs(x);
            }
            double want = alpha * s + (beta != 0.0f ? beta * (double)c0[i * n + j] : 0.0);
            double err = fabs((double)c[i * n + j] - want) / (fabs(alpha) * mag + fabs(beta * c0[i * n + j]) + 1e-30);
            if (err > worst) worst = err;
        }
    cases++;
    /* k f32 additions: relative to the sum of magnitudes, <= k * 2^-24 */
    if (st != LFL_OK || !(worst <= (k + 2) * 6e-8)) {
        failed++;
        printf("FAIL  [%s] m %d n %d k %d ta %d b %s %s alpha %g beta %g: %s worst rel err %.3g\n", path_now(), m, n, k, ta,
               lfl_dtype_name(bdt), b_rows_of_n ? "[n,k]" : "[k,n]", alpha, beta,
               st ? lfl_last_error() : "", worst);
    }
    free(a); free(bf); free(bh); free(c); free(c0);
}

/* the low-rank side: C = [A | s S] [B ; Q] + beta C with S = A pt^T returned in side */
static void check_lowrank(int m, int n, int k, int r, lfl_dtype bdt, float s, float beta)
{
    float *a = malloc(sizeof(float) * (size_t)(m * k)), *b = malloc(sizeof(float) * (size_t)(k * n));
    float *pt = malloc(sizeof(float) * (size_t)(r * k)), *q = malloc(sizeof(float) * (size_t)(r * n));
    float *side = malloc(sizeof(float) * (size_t)(m * r));
    float *c = malloc(sizeof(float) * (size_t)(m * n)), *c0 = malloc(sizeof(float) * (size_t)(m * n));
    uint16_t *bh = malloc(2 * (size_t)(k * n));
    for (int i = 0; i < m * k; i++) a[i] = rnd();
    for (int i = 0; i < k * n; i++) { bh[i] = lfl_f32_to_bf16(rnd()); b[i] = lfl_bf16_to_f32(bh[i]); }
    for (int i = 0; i < r * k; i++) pt[i] = rnd();
    for (int i = 0; i < r * n; i++) q[i] = rnd();
    for (int i = 0; i < m * n; i++) c0[i] = c[i] = rnd();
    /* B as a linear's weight [n, k] (sbk 1, sbn k); Q as LoRA's B^T: q[c * r + j] (sqk 1, sqn r) */
    lfl_gemm_lowrank lr = {r, pt, side, s, q, 1, r};
    const void *bp = bdt == LFL_F32 ? (const void *)b : (const void *)bh;
    lfl_status st = lfl_gemm_bf16_lowrank(m, n, k, a, k, bdt, bp, 1, k, &lr, beta, c, n);
    double worst = 0, worst_side = 0;
    for (int i = 0; i < m && st == LFL_OK; i++) {
        for (int j = 0; j < r; j++) {
            double sd = 0, mag = 0;
            for (int p = 0; p < k; p++) { sd += (double)a[i * k + p] * pt[j * k + p]; mag += fabs((double)a[i * k + p] * pt[j * k + p]); }
            double e = fabs(side[i * r + j] - sd) / (mag + 1e-30);
            if (e > worst_side) worst_side = e;
        }
        for (int j = 0; j < n; j++) {
            double acc = 0, mag = 0;
            for (int p = 0; p < k; p++) {
                double x = as_bf16(a[i * k + p]) * as_bf16(b[j * k + p]);
                acc += x; mag += fabs(x);
            }
            for (int p = 0; p < r; p++) {
                double x = as_bf16(s * side[i * r + p]) * as_bf16(q[j * r + p]);
                acc += x; mag += fabs(x);
            }
            double want = acc + beta * (double)c0[i * n + j];
            double e = fabs(c[i * n + j] - want) / (mag + fabs(beta * c0[i * n + j]) + 1e-30);
            if (e > worst) worst = e;
        }
    }
    cases++;
    if (st != LFL_OK || !(worst <= (k + r + 2) * 6e-8) || !(worst_side <= (k + 2) * 6e-8)) {
        failed++;
        printf("FAIL  [%s] low-rank m %d n %d k %d r %d b %s s %g beta %g: %s worst rel err %.3g, side %.3g\n", path_now(), m, n, k,
               r, lfl_dtype_name(bdt), s, beta, st ? lfl_last_error() : "", worst, worst_side);
    }
    free(a); free(b); free(pt); free(q); free(side); free(c); free(c0); free(bh);
}

/* Two threads at once, each running GEMMs from inside the parallel region
 * (one oneDNN thread each, per-thread scratchpads), against the reference. */
static void check_parallel(void)
{
    enum { M = 64, N = 96, K = 130, JOBS = 8 };
    float *a = malloc(sizeof(float) * M * K * JOBS), *b = malloc(sizeof(float) * K * N * JOBS);
    float *c = malloc(sizeof(float) * M * N * JOBS);
    for (int i = 0; i < M * K * JOBS; i++) a[i] = rnd();
    for (int i = 0; i < K * N * JOBS; i++) b[i] = rnd();
    int bad = 0;
#pragma omp parallel for num_threads(2) schedule(static, 1) reduction(+ : bad)
    for (int j = 0; j < JOBS; j++) {
        /* jobs differ in m so that both threads also create primitives concurrently */
        int m = M - j;
        bad += lfl_gemm_bf16(j % 2, m, N, K, 1.0f, a + j * M * K, j % 2 ? m : K, LFL_F32, b + j * K * N, N, 1, 0.0f,
                             c + j * M * N, N) != LFL_OK;
    }
    double worst = 0;
    for (int j = 0; j < JOBS; j++) {
        int m = M - j, lda = j % 2 ? m : K;
        const float *aj = a + j * M * K, *bj = b + j * K * N;
        for (int i = 0; i < m; i++)
            for (int q = 0; q < N; q++) {
                double s = 0, mag = 0;
                for (int p = 0; p < K; p++) {
                    double x = as_bf16(j % 2 ? aj[p * lda + i] : aj[i * lda + p]) * as_bf16(bj[p * N + q]);
                    s += x;
                    mag += fabs(x);
                }
                double e = fabs(c[j * M * N + i * N + q] - s) / (mag + 1e-30);
                if (e > worst) worst = e;
            }
    }
    cases++;
    if (bad || !(worst <= (K + 2) * 6e-8)) {
        failed++;
        printf("FAIL  [%s] GEMMs from two threads of a parallel region: %d errors (%s), worst rel err %.3g\n",
               path_now(), bad, bad ? lfl_last_error() : "", worst);
    }
    free(a); free(b); free(c);
}

static void check_path(void)
{
    static const int ms[] = {1, 7, 8, 9, 33, 130, 257}, ns[] = {1, 16, 47, 48, 49, 100, 200}, ks[] = {1, 2, 3, 31, 256, 257, 300};
    for (int im = 0; im < 7; im++)
        for (int in = 0; in < 7; in++)
            for (int ik = 0; ik < 7; ik++) {
                int v = (im + in + ik) % 6;
                lfl_dtype bdt = v % 3 == 0 ? LFL_F32 : v % 3 == 1 ? LFL_BF16 : LFL_F16;
                check_case(ms[im], ns[in], ks[ik], v >= 3, bdt, (im + ik) % 2, 1.0f, 0.0f);
            }
    /* every transpose pair, beta 0 and 1, on the sizes around powers of two */
    static const int odd[][3] = {{63, 65, 129}, {65, 129, 63}, {129, 63, 65}, {513, 65, 63}, {7, 513, 129}, {65, 63, 513}};
    for (int s = 0; s < 6; s++)
        for (int t = 0; t < 4; t++)
            check_case(odd[s][0], odd[s][1], odd[s][2], t & 1, s % 2 ? LFL_F32 : LFL_BF16, t >> 1, 1.0f, (float)(s % 2 ^ t % 2));
    check_case(40, 60, 70, false, LFL_BF16, true, 0.5f, 1.0f);
    check_case(40, 60, 70, true, LFL_F32, false, -2.0f, 0.25f);
    check_case(300, 500, 600, false, LFL_BF16, true, 1.0f, 1.0f);
    check_case(300, 500, 600, false, LFL_F32, false, 1.0f, 0.0f);
    check_lowrank(9, 50, 33, 1, LFL_BF16, 2.0f, 0.0f);
    check_lowrank(130, 100, 300, 8, LFL_BF16, 0.5f, 1.0f);
    check_lowrank(64, 49, 64, 7, LFL_F32, 1.0f, 0.0f);
    check_lowrank(257, 200, 257, 16, LFL_BF16, 4.0f, 0.0f);
    check_parallel();
    /* lfl_sgemm routes a large product here under "medium", and not under "highest" */
    int m = 256, n = 192, k = 320;
    float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n);
    float *c1 = malloc(sizeof(float) * m * n), *c2 = malloc(sizeof(float) * m * n), *c3 = malloc(sizeof(float) * m * n);
    for (int i = 0; i < m * k; i++) a[i] = rnd();
    for (int i = 0; i < k * n; i++) b[i] = rnd();
    lfl_set_matmul_precision(LFL_PRECISION_MEDIUM);
    lfl_sgemm(false, true, m, n, k, 1.0f, a, k, b, k, 0.0f, c1, n);
    lfl_gemm_bf16(false, m, n, k, 1.0f, a, k, LFL_F32, b, 1, k, 0.0f, c2, n);
    lfl_set_matmul_precision(LFL_PRECISION_HIGHEST);
    lfl_sgemm(false, true, m, n, k, 1.0f, a, k, b, k, 0.0f, c3, n);
    cases++;
    if (memcmp(c1, c2, sizeof(float) * m * n) != 0 || memcmp(c1, c3, sizeof(float) * m * n) == 0) {
        failed++;
        printf("FAIL  [%s] lfl_sgemm under medium precision should equal lfl_gemm_bf16 and differ from highest\n",
               path_now());
    }
    free(a); free(b); free(c1); free(c2); free(c3);
}

int main(void)
{
    /* LFL_GEMM, read on first use: the kernel asked for, when this build and CPU have it */
    const char *env = getenv("LFL_GEMM");
    lfl_gemm_path first = lfl_gemm_bf16_path();
    const char *desc = lfl_gemm_bf16_describe();
    printf("bf16 GEMM: %s\n", desc);
    if (env && *env && strcmp(env, "auto") != 0) {
        bool known = strcmp(env, "onednn") == 0 || strcmp(env, "own") == 0 || strcmp(env, "f32") == 0;
        lfl_gemm_path want = strcmp(env, "onednn") == 0 ? LFL_GEMM_PATH_ONEDNN
                             : strcmp(env, "own") == 0  ? LFL_GEMM_PATH_OWN
                                                        : LFL_GEMM_PATH_F32;
        bool ok = !known                          ? strstr(desc, "is not onednn, own, f32 or auto") != NULL
                  : lfl_gemm_path_available(want) ? first == want && strstr(desc, "LFL_GEMM=") != NULL
                                                  : strstr(desc, "unavailable") != NULL;
        cases++;
        if (!ok) {
            failed++;
            printf("FAIL  LFL_GEMM=%s: the first use chose %s (%s)\n", env, lfl_gemm_path_name(first), desc);
        }
    }
    /* an unavailable kernel is refused, the path stays */
    for (int p = 0; p <= LFL_GEMM_PATH_ONEDNN; p++)
        if (!lfl_gemm_path_available((lfl_gemm_path)p)) {
            cases++;
            if (lfl_gemm_bf16_set_path((lfl_gemm_path)p) == LFL_OK || lfl_gemm_bf16_path() != first) {
                failed++;
                printf("FAIL  setting the unavailable %s kernel was accepted\n", lfl_gemm_path_name((lfl_gemm_path)p));
            }
        }
    /* the forced kernel first (when ctest set one), then every other one */
    lfl_gemm_path order[3] = {first, first == LFL_GEMM_PATH_F32 ? LFL_GEMM_PATH_OWN : LFL_GEMM_PATH_F32,
                              first == LFL_GEMM_PATH_ONEDNN ? LFL_GEMM_PATH_OWN : LFL_GEMM_PATH_ONEDNN};
    if (first == LFL_GEMM_PATH_OWN) order[2] = LFL_GEMM_PATH_ONEDNN;
    bool seen[3] = {false, false, false};
    for (int i = 0; i < 3; i++) {
        lfl_gemm_path p = order[i];
        if (seen[p]) continue;
        seen[p] = true;
        if (!lfl_gemm_path_available(p)) { printf("SKIP  the %s kernel: not available on this build / CPU\n", lfl_gemm_path_name(p)); continue; }
        if (lfl_gemm_bf16_set_path(p) != LFL_OK) { failed++; printf("FAIL  set %s: %s\n", lfl_gemm_path_name(p), lfl_last_error()); continue; }
        int f0 = failed, c0 = cases;
        int64_t made = lfl_onednn_created();
        check_path();
        printf("%s  [%s] %d of %d cases\n", failed > f0 ? "FAIL" : "ok  ", lfl_gemm_path_name(p), cases - c0 - (failed - f0), cases - c0);
        /* more shapes than the primitive cache holds: entries were evicted and made again */
        if (p == LFL_GEMM_PATH_ONEDNN) {
            cases++;
            if (lfl_onednn_created() - made < 300) {
                failed++;
                printf("FAIL  oneDNN made %lld primitives for ~400 shapes\n", (long long)(lfl_onednn_created() - made));
            }
        }
    }
    printf("%s  %d of %d bf16 GEMM cases\n", failed ? "FAIL" : "PASS", cases - failed, cases);
    return failed != 0;
}
