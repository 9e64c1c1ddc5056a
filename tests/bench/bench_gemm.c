/* bench_gemm: GFLOP/s of raw row-major SGEMM through lfl_sgemm (so the
 * OpenBLAS kernel lfl_blas_init picks for this CPU applies) for the matmul
 * shapes of a SmolLM2-135M / Llama block at seq 512, plus the SGEMM peak at
 * 2048^3. A figure, not a test: it is built by CMake but not run by ctest.
 *
 *   ./build/bench_gemm [threads]       (default: OpenBLAS's own thread count)
 *
 * Every figure is given on 1 thread and on `threads`, first with f32 products
 * (matmul precision "highest", OpenBLAS), then with bf16 products and f32 sums
 * ("medium") on each bf16 kernel this build and CPU have: sgemm on rounded
 * copies ("f32"), the own vdpbf16ps kernel ("own", AVX512_BF16) and oneDNN's
 * matmul ("onednn"), the choices of LFL_GEMM (core/gemm_path.c); with a
 * column for the frozen bf16 weight of LoRA (forward + dx). The 1-thread
 * figures are per CPU-second (steady on a loaded VM), the others wall time.
 *
 * Shapes are written M x K x N for y[M, N] = x[M, K] @ w[N, K]^T, the layout of
 * lfl.linear. "fwd+bwd" times the three GEMMs of a linear layer's forward and
 * backward (y = x w^T, dx = g w, dw = g^T x), the figure bench_matmul.lua
 * compares against. Each figure is the best of 3 batches of >= 0.2 s. */
#include <omp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "blas.h"
#include "dtype.h"
#include "gemm_bf16.h"
#include "gemm_onednn.h"

/* 1-thread figures count this process's CPU time, not wall time: on a VM
 * that other sessions load, a descheduled thread then costs nothing (the
 * figure is what one core does while it runs this); threaded figures are
 * wall time and move with the load */
static bool cpu_clock;

static double now(void)
{
    struct timespec ts;
    clock_gettime(cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *randbuf(size_t n)
{
    float *p = malloc(n * sizeof(float));
    if (!p) { fprintf(stderr, "bench_gemm: out of memory\n"); exit(1); }
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) { s = s * 1664525u + 1013904223u; p[i] = (float)(s >> 8) / 16777216.0f - 0.5f; }
    return p;
}

typedef struct { float *x, *w, *y, *g, *dx, *dw; int m, k, n; } bufs;

static void step(const bufs *b, bool bwd)
{
    lfl_sgemm(false, true, b->m, b->n, b->k, 1.0f, b->x, b->k, b->w, b->k, 0.0f, b->y, b->n);
    if (!bwd) return;
    lfl_sgemm(false, false, b->m, b->k, b->n, 1.0f, b->g, b->n, b->w, b->k, 0.0f, b->dx, b->k);
    lfl_sgemm(true, false, b->n, b->k, b->m, 1.0f, b->g, b->n, b->x, b->k, 0.0f, b->dw, b->k);
}

/* y = x w^T and dx = g w with w [n, k] stored bf16 (lfl_gemm_bf16 reads it
 * as it is; the linear's frozen-base path) */
static void step_lowp(const bufs *b, const uint16_t *wh, bool fwd_only)
{
    lfl_gemm_bf16(false, b->m, b->n, b->k, 1.0f, b->x, b->k, LFL_BF16, wh, 1, b->k, 0.0f, b->y, b->n);
    if (!fwd_only) lfl_gemm_bf16(false, b->m, b->k, b->n, 1.0f, b->g, b->n, LFL_BF16, wh, b->k, 1, 0.0f, b->dx, b->k);
}

static double measure_lowp(const bufs *b, const uint16_t *wh, bool fwd_only)
{
    double flop = 2.0 * b->m * b->n * b->k * (fwd_only ? 1 : 2), best = 0;
    step_lowp(b, wh, fwd_only);
    for (int trial = 0; trial < 3; trial++) {
        int reps = 0;
        double t0 = now(), dt;
        do { step_lowp(b, wh, fwd_only); reps++; } while ((dt = now() - t0) < 0.2);
        double gf = flop * reps / dt / 1e9;
        if (gf > best) best = gf;
    }
    return best;
}

/* best GFLOP/s over 3 batches, each repeated until it lasts >= 0.2 s */
static double measure(const bufs *b, bool bwd)
{
    double flop = 2.0 * b->m * b->n * b->k * (bwd ? 3 : 1), best = 0;
    step(b, bwd); /* warm-up: thread pool, page faults */
    for (int trial = 0; trial < 3; trial++) {
        int reps = 0;
        double t0 = now(), dt;
        do { step(b, bwd); reps++; } while ((dt = now() - t0) < 0.2);
        double gf = flop * reps / dt / 1e9;
        if (gf > best) best = gf;
    }
    return best;
}

static int nt_all = 1;

/* one thread for OpenBLAS and OpenMP (the own kernel, oneDNN) alike */
static void one_thread(bool one)
{
    lfl_blas_set_threads(one ? 1 : nt_all);
    omp_set_num_threads(one ? 1 : nt_all);
    cpu_clock = one;
}

int main(int argc, char **argv)
{
    if (lfl_blas_init() != LFL_OK) { fprintf(stderr, "bench_gemm: %s\n", lfl_last_error()); return 1; }
    /* threads: the count given, else what OpenBLAS starts with; 1 thread is
     * measured too, as it barely suffers from other load on a shared VM */
    int nt = argc > 1 ? atoi(argv[1]) : 0;
    if (nt > 0) lfl_blas_set_threads(nt);
    printf("%s\n", lfl_blas_describe());
    printf("OpenBLAS kernel: %s\n\n", lfl_blas_corename());
    const char *d = strstr(lfl_blas_describe(), "threads");
    if (nt <= 0) { /* parse "..., N threads" back */
        const char *p = d;
        while (p && p > lfl_blas_describe() && p[-1] == ' ') p--;
        while (p && p > lfl_blas_describe() && p[-1] >= '0' && p[-1] <= '9') p--;
        nt = p ? atoi(p) : 1;
        if (nt < 1) nt = 1;
    }
    static const struct { const char *name; int m, k, n; } shapes[] = {
        {"q / o proj", 512, 576, 576},
        {"q (batch 4)", 2048, 576, 576},
        {"down (batch 4)", 2048, 1536, 576},
        {"lm_head chunk", 2048, 576, 1024},
        {"k / v proj", 512, 576, 192},
        {"gate / up", 512, 576, 1536},
        {"down", 512, 1536, 576},
        {"LoRA A (r=8)", 512, 576, 8},
        {"LoRA B (r=8)", 512, 8, 576},
        {"lm_head (full)", 512, 576, 49152},
    };
    /* f32 products (OpenBLAS), then bf16 products on each kernel this build
     * and CPU have (LFL_GEMM's choices, switched with lfl_gemm_bf16_set_path) */
    nt_all = nt;
    static const lfl_gemm_path paths[] = {LFL_GEMM_PATH_F32, LFL_GEMM_PATH_OWN, LFL_GEMM_PATH_ONEDNN};
    printf("bf16 GEMM by default: %s\n\n", lfl_gemm_bf16_describe());
    for (int prec = 0; prec < 4; prec++) {
    lfl_gemm_path path = prec ? paths[prec - 1] : LFL_GEMM_PATH_F32;
    if (prec && lfl_gemm_bf16_set_path(path) != LFL_OK) {
        printf("\nbf16 products, %s kernel: %s\n", lfl_gemm_path_name(path), lfl_last_error());
        continue;
    }
    lfl_set_matmul_precision(prec ? LFL_PRECISION_MEDIUM : LFL_PRECISION_HIGHEST);
    if (prec) printf("\nGFLOP/s, bf16 products (precision medium), %s kernel%s\n", lfl_gemm_path_name(path),
                     path == LFL_GEMM_PATH_F32 ? " (sgemm on bf16-rounded copies)" : "");
    else printf("GFLOP/s, f32 (OpenBLAS, precision highest)\n");
    printf("                %-16s %9s %9s %11s %11s %11s %11s\n", "M x K x N", "fwd 1T", "fwd", "fwd+bwd 1T", "fwd+bwd",
           prec ? "bf16w 1T" : "", prec ? "bf16w" : "");
    printf("(1T: one thread, per CPU-second; else %d threads, wall time; bf16w: y = x w^T and dx = g w with w stored\n"
           " bf16, LoRA's frozen base)\n", nt);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int m = shapes[i].m, k = shapes[i].k, n = shapes[i].n;
        bufs b = {randbuf((size_t)m * k), randbuf((size_t)n * k), randbuf((size_t)m * n), randbuf((size_t)m * n),
                  randbuf((size_t)m * k), randbuf((size_t)n * k), m, k, n};
        char dims[32];
        snprintf(dims, sizeof dims, "%dx%dx%d", m, k, n);
        bool big = (double)m * k * n > 1e10; /* the whole LM head: forward only */
        uint16_t *wh = malloc(2 * (size_t)n * k);
        for (size_t q = 0; q < (size_t)n * k; q++) wh[q] = lfl_f32_to_bf16(b.w[q]);
        one_thread(true);
        double f1 = measure(&b, false), fb1 = big ? 0 : measure(&b, true), lw1 = prec ? measure_lowp(&b, wh, big) : 0;
        one_thread(false);
        double f = measure(&b, false), fb = big ? 0 : measure(&b, true), lw = prec ? measure_lowp(&b, wh, big) : 0;
        free(wh);
        printf("%-15s %-16s %9.1f %9.1f %11.1f %11.1f %11.1f %11.1f\n", shapes[i].name, dims, f1, f, fb1, fb, lw1, lw);
        free(b.x); free(b.w); free(b.y); free(b.g); free(b.dx); free(b.dw);
    }
    int m = 2048;
    bufs b = {randbuf((size_t)m * m), randbuf((size_t)m * m), randbuf((size_t)m * m), NULL, NULL, NULL, m, m, m};
    one_thread(true);
    double p1 = measure(&b, false);
    one_thread(false);
    printf("%s 2048^3 (x @ w^T): %.1f GFLOP/s on 1 thread, %.1f GFLOP/s on %d threads\n",
           prec ? "bf16 GEMM" : "SGEMM", p1, measure(&b, false), nt);
    if (path == LFL_GEMM_PATH_ONEDNN && prec) printf("oneDNN implementation: %s\n", lfl_onednn_last_impl());
    free(b.x); free(b.w); free(b.y);
    }
    return 0;
}
