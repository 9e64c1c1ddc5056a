/* bench_gemm: GFLOP/s of raw row-major SGEMM through lfl_sgemm (so the
 * OpenBLAS kernel lfl_blas_init picks for this CPU applies) for the matmul
 * shapes of a SmolLM2-135M / Llama block at seq 512, plus the SGEMM peak at
 * 2048^3. A figure, not a test: it is built by CMake but not run by ctest.
 *
 *   ./build/bench_gemm [threads]       (default: OpenBLAS's own thread count)
 *
 * Every figure is given on 1 thread and on `threads`, first with f32 products
 * (matmul precision "highest", OpenBLAS), then with bf16 products and f32 sums
 * ("medium": core/gemm_bf16.c) where the CPU has AVX512_BF16.
 *
 * Shapes are written M x K x N for y[M, N] = x[M, K] @ w[N, K]^T, the layout of
 * lfl.linear. "fwd+bwd" times the three GEMMs of a linear layer's forward and
 * backward (y = x w^T, dx = g w, dw = g^T x), the figure bench_matmul.lua
 * compares against. Each figure is the best of 3 batches of >= 0.2 s. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "blas.h"
#include "gemm_bf16.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
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
    };
    for (int prec = 0; prec < 2; prec++) {
    if (prec == 1 && !lfl_gemm_bf16_available()) {
        printf("\nno AVX512_BF16 on this CPU: matmul precision \"medium\" keeps f32 GEMMs\n");
        break;
    }
    lfl_set_matmul_precision(prec ? LFL_PRECISION_MEDIUM : LFL_PRECISION_HIGHEST);
    printf("%sGFLOP/s, %s\n", prec ? "\n" : "", prec ? "bf16 products (precision medium)" : "f32 (OpenBLAS)");
    printf("                %-14s %9s %9s %11s %11s\n", "M x K x N", "fwd 1T", "fwd", "fwd+bwd 1T", "fwd+bwd");
    printf("(%d threads where not marked 1T)\n", nt);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int m = shapes[i].m, k = shapes[i].k, n = shapes[i].n;
        bufs b = {randbuf((size_t)m * k), randbuf((size_t)n * k), randbuf((size_t)m * n), randbuf((size_t)m * n),
                  randbuf((size_t)m * k), randbuf((size_t)n * k), m, k, n};
        char dims[32];
        snprintf(dims, sizeof dims, "%dx%dx%d", m, k, n);
        lfl_blas_set_threads(1);
        double f1 = measure(&b, false), fb1 = measure(&b, true);
        lfl_blas_set_threads(nt);
        double f = measure(&b, false), fb = measure(&b, true);
        printf("%-15s %-14s %9.1f %9.1f %11.1f %11.1f\n", shapes[i].name, dims, f1, f, fb1, fb);
        free(b.x); free(b.w); free(b.y); free(b.g); free(b.dx); free(b.dw);
    }
    int m = 2048;
    bufs b = {randbuf((size_t)m * m), randbuf((size_t)m * m), randbuf((size_t)m * m), NULL, NULL, NULL, m, m, m};
    lfl_blas_set_threads(1);
    double p1 = measure(&b, false);
    lfl_blas_set_threads(nt);
    printf("\n%s 2048^3 (x @ w^T): %.1f GFLOP/s on 1 thread, %.1f GFLOP/s on %d threads\n",
           prec ? "bf16 GEMM" : "SGEMM", p1, measure(&b, false), nt);
    free(b.x); free(b.w); free(b.y);
    }
    return 0;
}
