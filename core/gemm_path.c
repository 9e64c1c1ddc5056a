/* Which kernel runs lfl_gemm_bf16 (matmul precision "medium", `bf16: true`),
 * chosen once per process, and the f32 kernel on bf16-rounded operands for
 * CPUs where no bf16 kernel beats OpenBLAS's sgemm.
 *
 * Auto choice: oneDNN when it runs AMX tiles (brg:avx512_core_amx_bf16, about
 * 20x the own kernel per thread on a Sapphire Rapids Xeon); else the own
 * vdpbf16ps kernel on AVX512_BF16 (measured against oneDNN 2.6's
 * brg:avx512_core_bf16 on Zen 4 for SmolLM2's LoRA shapes: see
 * tests/bench/README.md); else sgemm on rounded copies, so "medium" gives the
 * same numbers everywhere and is never slower than it must be. LFL_GEMM
 * forces one (tests, users who measured otherwise). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "blas.h"
#include "dtype.h"
#include "gemm_bf16.h"
#include "gemm_onednn.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_int path = LFL_GEMM_PATH_F32;
static char why[160];
static char describe_buf[448];

const char *lfl_gemm_path_name(lfl_gemm_path p)
{
    return p == LFL_GEMM_PATH_ONEDNN ? "onednn" : p == LFL_GEMM_PATH_OWN ? "own" : "f32";
}

bool lfl_gemm_path_available(lfl_gemm_path p)
{
    if (p == LFL_GEMM_PATH_ONEDNN) return lfl_onednn_available();
    if (p == LFL_GEMM_PATH_OWN) return lfl_cpu_has_avx512bf16();
    return true;
}

static lfl_gemm_path auto_path(void)
{
    if (lfl_onednn_has_amx()) return LFL_GEMM_PATH_ONEDNN;
    if (lfl_cpu_has_avx512bf16()) return LFL_GEMM_PATH_OWN;
    return LFL_GEMM_PATH_F32;
}

static const char *auto_reason(lfl_gemm_path p)
{
    if (p == LFL_GEMM_PATH_ONEDNN) return "auto: AMX";
    if (p == LFL_GEMM_PATH_OWN) return "auto: AVX512_BF16, no AMX";
    return "auto: no AVX512_BF16";
}

static void choose(void)
{
    const char *env = getenv("LFL_GEMM");
    lfl_gemm_path p = auto_path();
    snprintf(why, sizeof why, "%s", auto_reason(p));
    if (env && *env && strcmp(env, "auto") != 0) {
        lfl_gemm_path want = LFL_GEMM_PATH_F32;
        bool known = true;
        if (strcmp(env, "onednn") == 0) want = LFL_GEMM_PATH_ONEDNN;
        else if (strcmp(env, "own") == 0) want = LFL_GEMM_PATH_OWN;
        else if (strcmp(env, "f32") != 0) known = false;
        if (!known)
            snprintf(why, sizeof why, "LFL_GEMM=%.32s is not onednn, own, f32 or auto; %s", env, auto_reason(p));
        else if (!lfl_gemm_path_available(want))
            snprintf(why, sizeof why, "LFL_GEMM=%s unavailable (%s); %s", env,
                     want == LFL_GEMM_PATH_ONEDNN ? lfl_onednn_describe() : "no AVX512_BF16 on this CPU",
                     auto_reason(p));
        else {
            p = want;
            snprintf(why, sizeof why, "LFL_GEMM=%s", env);
        }
    }
    atomic_store(&path, (int)p);
}

lfl_gemm_path lfl_gemm_bf16_path(void)
{
    pthread_once(&once, choose);
    return (lfl_gemm_path)atomic_load(&path);
}

bool lfl_gemm_bf16_available(void) { return lfl_gemm_bf16_path() != LFL_GEMM_PATH_F32; }

lfl_status lfl_gemm_bf16_set_path(lfl_gemm_path p)
{
    pthread_once(&once, choose);
    if (!lfl_gemm_path_available(p))
        return lfl_fail(LFL_ERR_UNSUPPORTED, "bf16 GEMM: the %s kernel is not available here (%s)", lfl_gemm_path_name(p),
                        p == LFL_GEMM_PATH_ONEDNN ? lfl_onednn_describe() : "no AVX512_BF16 on this CPU");
    atomic_store(&path, (int)p);
    snprintf(why, sizeof why, "set by the program");
    return LFL_OK;
}

const char *lfl_gemm_bf16_describe(void)
{
    lfl_gemm_path p = lfl_gemm_bf16_path();
    const char *what = p == LFL_GEMM_PATH_ONEDNN ? lfl_onednn_describe()
                       : p == LFL_GEMM_PATH_OWN  ? "lfl's vdpbf16ps kernel"
                                                 : "OpenBLAS sgemm on bf16-rounded operands";
    snprintf(describe_buf, sizeof describe_buf, "%s: %s (%s); CPU: %s, %s; oneDNN: %s", lfl_gemm_path_name(p), what,
             why, lfl_cpu_has_avx512bf16() ? "avx512_bf16" : "no avx512_bf16",
             lfl_cpu_has_amx_bf16() ? "AMX-BF16" : "no AMX", lfl_onednn_describe());
    return describe_buf;
}

/* ---- f32 kernel on bf16-rounded copies ----
 * One buffer kept between calls (as gemm_bf16.c does: a fresh multi-MB
 * malloc faults its pages in on every call); a concurrent caller gets its own. */
static float *kept;
static size_t kept_cap;
static atomic_flag kept_busy = ATOMIC_FLAG_INIT;

static float *f32_buf(size_t n, bool *shared)
{
    *shared = !atomic_flag_test_and_set(&kept_busy);
    if (!*shared) return malloc(n * sizeof(float));
    if (n > kept_cap) {
        free(kept);
        kept = malloc(n * sizeof(float));
        kept_cap = kept ? n : 0;
    }
    if (!kept) atomic_flag_clear(&kept_busy);
    return kept;
}

static void f32_put(float *p, bool shared)
{
    if (!shared) { free(p); return; }
    /* a vocab-sized copy is not kept */
    if (kept_cap > ((size_t)16 << 20)) { free(kept); kept = NULL; kept_cap = 0; }
    atomic_flag_clear(&kept_busy);
}

static inline float round_f(float x) { return lfl_bf16_to_f32(lfl_f32_to_bf16(x)); }

static inline float elem_rounded(lfl_dtype dt, const void *p, int64_t off)
{
    if (dt == LFL_BF16) return lfl_bf16_to_f32(((const uint16_t *)p)[off]);
    if (dt == LFL_F16) return round_f(lfl_f16_to_f32(((const uint16_t *)p)[off]));
    return round_f(((const float *)p)[off]);
}

lfl_status lfl_gemm_bf16_f32(bool ta, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                             lfl_dtype bdt, const void *b, int64_t sbk, int64_t sbn, float beta, float *c, int64_t ldc)
{
    LFL_ASSERT(m > 0 && n > 0 && k > 0);
    bool shared;
    float *ar = f32_buf((size_t)(m * k + k * n), &shared);
    if (!ar) return lfl_fail(LFL_ERR_MEM, "gemm (bf16 on f32): out of memory rounding %lld x %lld by %lld x %lld",
                             (long long)m, (long long)k, (long long)k, (long long)n);
    float *br = ar + m * k;
    /* A keeps its orientation ([m, k] or [k, m]), packed to the row length */
    int64_t rows = ta ? k : m, cols = ta ? m : k;
#pragma omp parallel for schedule(static) if (m * k > (1 << 16))
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) ar[i * cols + j] = round_f(a[i * lda + j]);
    /* B as [n, k] used transposed when k is its faster dim, else [k, n] */
    bool rows_n = (sbk < 0 ? -sbk : sbk) <= (sbn < 0 ? -sbn : sbn);
    int64_t outer = rows_n ? n : k, inner = rows_n ? k : n, so = rows_n ? sbn : sbk, si = rows_n ? sbk : sbn;
#pragma omp parallel for schedule(static) if (n * k > (1 << 16))
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) br[o * inner + i] = elem_rounded(bdt, b, o * so + i * si);
    lfl_sgemm_f32(ta, rows_n, (int)m, (int)n, (int)k, alpha, ar, (int)cols, br, (int)inner, beta, c, (int)ldc);
    f32_put(ar, shared);
    return LFL_OK;
}

lfl_status lfl_gemm_bf16(bool ta, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                         lfl_dtype bdt, const void *b, int64_t sbk, int64_t sbn, float beta, float *c, int64_t ldc)
{
    switch (lfl_gemm_bf16_path()) {
    case LFL_GEMM_PATH_ONEDNN: {
        /* a shape oneDNN has no kernel for runs on rounded copies: the same numbers */
        lfl_status st = lfl_gemm_onednn(ta, m, n, k, alpha, a, lda, bdt, b, sbk, sbn, beta, c, ldc);
        if (st != LFL_ERR_UNSUPPORTED) return st;
        return lfl_gemm_bf16_f32(ta, m, n, k, alpha, a, lda, bdt, b, sbk, sbn, beta, c, ldc);
    }
    case LFL_GEMM_PATH_OWN: return lfl_gemm_bf16_own(ta, m, n, k, alpha, a, lda, bdt, b, sbk, sbn, beta, c, ldc);
    default: return lfl_gemm_bf16_f32(ta, m, n, k, alpha, a, lda, bdt, b, sbk, sbn, beta, c, ldc);
    }
}

lfl_status lfl_gemm_bf16_lowrank(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, lfl_dtype bdt,
                                 const void *b, int64_t sbk, int64_t sbn, const lfl_gemm_lowrank *lr, float beta,
                                 float *c, int64_t ldc)
{
    if (lfl_gemm_bf16_path() == LFL_GEMM_PATH_OWN)
        return lfl_gemm_bf16_own_lowrank(m, n, k, a, lda, bdt, b, sbk, sbn, lr, beta, c, ldc);
    LFL_ASSERT(lr && lr->r > 0 && lr->r <= LFL_GEMM_MAX_RANK);
    /* the side product summed as the own kernel sums it (lora_linear's
     * checkpoint replay recomputes it with lfl_gemm_side_rows, bit for bit) */
    lfl_gemm_side_rows(m, k, a, lda, lr->pt, lr->r, lr->side);
    lfl_status st = lfl_gemm_bf16(false, m, n, k, 1.0f, a, lda, bdt, b, sbk, sbn, beta, c, ldc);
    if (st != LFL_OK) return st;
    int64_t r = lr->r;
    float *s = malloc((size_t)(m * r + r * n) * sizeof(float));
    if (!s) return lfl_fail(LFL_ERR_MEM, "gemm (bf16, low rank): out of memory for a rank-%lld side", (long long)r);
    float *q = s + m * r;
    for (int64_t i = 0; i < m * r; i++) s[i] = round_f(lr->side[i] * lr->scale);
    for (int64_t j = 0; j < r; j++)
        for (int64_t c0 = 0; c0 < n; c0++) q[j * n + c0] = round_f(lr->q[j * lr->sqk + c0 * lr->sqn]);
    lfl_sgemm_f32(false, false, (int)m, (int)n, (int)r, 1.0f, s, (int)r, q, (int)n, 1.0f, c, (int)ldc);
    free(s);
    return LFL_OK;
}
