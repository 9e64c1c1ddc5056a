/* Run-time loading of OpenBLAS with the right kernels for this CPU, and the
 * matmul precision switch that sends large f32 GEMMs to the bf16 GEMM
 * (gemm_path.c). */
#define _GNU_SOURCE
#include <cpuid.h>
#include <dlfcn.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "blas.h"
#include "gemm_bf16.h"

enum { RowMajor = 101, NoTrans = 111, Trans = 112 };
#define LFL_GEMM_PARALLEL_MIN 4e6 /* multiply-adds below which GEMM stays on one thread */
typedef void (*sgemm_t)(int, int, int, int, int, int, float, const float *, int, const float *,
                        int, float, float *, int);
typedef void (*dgemm_t)(int, int, int, int, int, int, double, const double *, int, const double *,
                        int, double, double *, int);

static sgemm_t p_sgemm;
static dgemm_t p_dgemm;
static char *(*p_corename)(void);
static char *(*p_config)(void);
static void (*p_set_threads)(int);
static int (*p_get_threads)(void);
static int (*p_parallel)(void);
static char describe_buf[256];
static const char *chosen = "auto";
static lfl_status init_status = LFL_ERR_UNSUPPORTED;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char init_error[256];

/* The kernel set OpenBLAS should use: SkylakeX on any AVX-512 (F+BW+VL+DQ)
 * CPU, Cooperlake when it also has AVX512_BF16; NULL leaves detection alone. */
static const char *pick_coretype(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return NULL;
    bool f = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30), vl = b & (1u << 31);
    if (!(f && dq && bw && vl)) return NULL;
    /* the OS must save zmm state (XCR0 bits 5-7) */
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xe6) != 0xe6) return NULL;
    unsigned a1 = 0, b1, c1, d1;
    __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1);
    return (a1 & (1u << 5)) ? "COOPERLAKE" : "SKYLAKEX";
}

int lfl_cpu_has_avx512bf16(void)
{
    static atomic_int known = -1;
    int v = atomic_load(&known);
    if (v < 0) {
        const char *ct = pick_coretype();
        v = ct && strcmp(ct, "COOPERLAKE") == 0;
        atomic_store(&known, v);
    }
    return v;
}

int lfl_cpu_has_amx_bf16(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    /* AMX-BF16 (bit 22) and AMX-TILE (bit 24); the OS grants the tile state
     * per process (oneDNN asks for it), so this is what the CPU has */
    return (d & (1u << 22)) && (d & (1u << 24));
}

static atomic_int precision = LFL_PRECISION_HIGHEST;

void lfl_set_matmul_precision(lfl_matmul_precision p) { atomic_store(&precision, (int)p); }

lfl_matmul_precision lfl_get_matmul_precision(void) { return (lfl_matmul_precision)atomic_load(&precision); }

/* Below these sizes packing both operands costs more than the faster products
 * win (decode steps, LoRA's rank-r factors, attention tiles). Every CPU takes
 * the bf16 GEMM: where no bf16 kernel is faster it is the f32 one on
 * bf16-rounded operands (gemm_path.c), so "medium" means the same numbers. */
bool lfl_gemm_wants_bf16(int64_t m, int64_t n, int64_t k)
{
    return atomic_load(&precision) == LFL_PRECISION_MEDIUM && m >= 32 && n >= 32 && k >= 32 &&
           (double)m * (double)n * (double)k >= LFL_GEMM_PARALLEL_MIN;
}

static char note_buf[320];

/* the kernel sets of OpenBLAS 0.3.21 that use AVX-512 */
static bool coretype_is_avx512(const char *ct)
{
    static const char *sets[] = {"skylakex", "cooperlake", "sapphirerapids"};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        if (strcasecmp(ct, sets[i]) == 0) return true;
    return false;
}

static void load(void)
{
    const char *env = getenv("OPENBLAS_CORETYPE");
    if (env && *env) {
        chosen = "set by OPENBLAS_CORETYPE";
        /* honoured, but said: an environment that pins an older set (shells,
         * containers set it for other programs) costs lfl's f32 GEMMs much */
        const char *ct = pick_coretype();
        if (ct && !coretype_is_avx512(env))
            snprintf(note_buf, sizeof note_buf,
                     "OPENBLAS_CORETYPE=%s keeps OpenBLAS off the AVX-512 kernels this CPU has (lfl would pick %s; "
                     "its f32 GEMMs ran 1.8x faster per CPU-second on a Zen 5 EPYC); unset it to let lfl choose",
                     env, ct);
    } else {
        const char *ct = pick_coretype();
        if (ct) { setenv("OPENBLAS_CORETYPE", ct, 1); chosen = "chosen by lfl for AVX-512"; }
    }
    static const char *names[] = {
        "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0",
        "/usr/lib/aarch64-linux-gnu/openblas-openmp/libopenblas.so.0",
        "libopenblas.so.0", "libopenblas.so",
    };
    void *h = NULL;
    const char *env_lib = getenv("LFL_OPENBLAS");
    if (env_lib) h = dlopen(env_lib, RTLD_NOW | RTLD_GLOBAL);
    for (size_t i = 0; !h && i < sizeof names / sizeof names[0]; i++) h = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
        snprintf(init_error, sizeof init_error, "OpenBLAS not found (install libopenblas0-openmp): %s", dlerror());
        return;
    }
    p_sgemm = (sgemm_t)dlsym(h, "cblas_sgemm");
    p_dgemm = (dgemm_t)dlsym(h, "cblas_dgemm");
    p_corename = (char *(*)(void))dlsym(h, "openblas_get_corename");
    p_config = (char *(*)(void))dlsym(h, "openblas_get_config");
    p_set_threads = (void (*)(int))dlsym(h, "openblas_set_num_threads");
    p_get_threads = (int (*)(void))dlsym(h, "openblas_get_num_threads");
    p_parallel = (int (*)(void))dlsym(h, "openblas_get_parallel");
    if (!p_sgemm || !p_dgemm) {
        snprintf(init_error, sizeof init_error, "the loaded BLAS has no cblas_sgemm/cblas_dgemm");
        return;
    }
    int par = p_parallel ? p_parallel() : -1;
    snprintf(describe_buf, sizeof describe_buf, "%s, kernel %s (%s), %d threads",
             p_config ? p_config() : "?", p_corename ? p_corename() : "?", chosen,
             p_get_threads ? p_get_threads() : 0);
    (void)par;
    init_status = LFL_OK;
}

lfl_status lfl_blas_init(void)
{
    pthread_once(&once, load);
    if (init_status != LFL_OK) return lfl_fail(init_status, "%s", init_error);
    return LFL_OK;
}

const char *lfl_blas_describe(void)
{
    if (lfl_blas_init() != LFL_OK) return init_error;
    return describe_buf;
}

const char *lfl_blas_note(void)
{
    (void)lfl_blas_init();
    return note_buf[0] ? note_buf : NULL;
}

const char *lfl_blas_corename(void)
{
    if (lfl_blas_init() != LFL_OK || !p_corename) return "none";
    return p_corename();
}

void lfl_blas_set_threads(int n)
{
    if (lfl_blas_init() == LFL_OK && p_set_threads) p_set_threads(n);
}

void lfl_sgemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc)
{
    if (lfl_gemm_wants_bf16(m, n, k) &&
        lfl_gemm_bf16(ta, m, n, k, alpha, a, lda, LFL_F32, b, tb ? 1 : ldb, tb ? ldb : 1, beta, c, ldc) == LFL_OK)
        return;
    lfl_sgemm_f32(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void lfl_sgemm_f32(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
                   const float *b, int ldb, float beta, float *c, int ldc)
{
    LFL_ASSERT(lfl_blas_init() == LFL_OK);
    /* Small products (LoRA's rank-r factors, short sequences) lose more to
     * waking the thread team than they gain from it: run them on this thread. */
    double work = (double)m * n * k;
    if (work < LFL_GEMM_PARALLEL_MIN && omp_get_max_threads() > 1) {
        int prev = omp_get_max_threads();
        omp_set_num_threads(1);
        p_sgemm(RowMajor, ta ? Trans : NoTrans, tb ? Trans : NoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        omp_set_num_threads(prev);
        return;
    }
    p_sgemm(RowMajor, ta ? Trans : NoTrans, tb ? Trans : NoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void lfl_dgemm(bool ta, bool tb, int m, int n, int k, double alpha, const double *a, int lda,
               const double *b, int ldb, double beta, double *c, int ldc)
{
    LFL_ASSERT(lfl_blas_init() == LFL_OK);
    p_dgemm(RowMajor, ta ? Trans : NoTrans, tb ? Trans : NoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void lfl_gemm_typed(lfl_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const void *a,
                    int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc)
{
    LFL_ASSERT(dt == LFL_F32 || dt == LFL_F64);
    if (m == 0 || n == 0) return;
    if (k == 0) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                if (dt == LFL_F32) { float *p = (float *)c + i * ldc + j; *p = beta == 0 ? 0.0f : *p * (float)beta; }
                else { double *p = (double *)c + i * ldc + j; *p = beta == 0 ? 0.0 : *p * beta; }
            }
        return;
    }
    if (dt == LFL_F32)
        lfl_sgemm(ta, tb, (int)m, (int)n, (int)k, (float)alpha, a, (int)lda, b, (int)ldb, (float)beta, c, (int)ldc);
    else
        lfl_dgemm(ta, tb, (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}
