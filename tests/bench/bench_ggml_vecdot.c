/* The decode path of core/ops/ggml_gemm.c (figures, not pass/fail): one or
 * eight activation rows times a GGUF block weight, per weight kind, on the
 * shapes SmolLM2-135M decodes with (576 wide; 1536 for down_proj; the 49152-
 * row tied head), in as many copies as its 30 layers, so that the weights
 * stream from memory as in a real decoding step. Prints microseconds per
 * matrix-vector product and the weight bytes read per second.
 *   OMP_NUM_THREADS=1 ./build/bench_ggml_vecdot [REPS] */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ops/ggml_gemm.h"
#include "quant/ggml.h"

static uint32_t seed = 11;
static uint32_t rnd_u32(void)
{
    seed = seed * 1664525u + 1013904223u;
    return seed >> 8;
}

static void put_f16(uint8_t *p, float v)
{
    uint16_t h = lfl_f32_to_f16_soft(v);
    memcpy(p, &h, 2);
}

/* random quants, scales around 0.01 (as tests/c/test_ggml_gemm.c) */
static lfl_tensor *random_blocks(lfl_dtype dt, int64_t rows, int64_t cols)
{
    int64_t shape[2] = {rows, cols};
    lfl_tensor *q = NULL;
    if (lfl_empty(2, shape, dt, LFL_CPU, &q) != LFL_OK) return NULL;
    uint8_t *p = lfl_data(q);
    int64_t bb = lfl_dtypes[dt].block_bytes, nb = rows * cols / lfl_dtypes[dt].block;
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *blk = p + b * bb;
        for (int64_t i = 0; i < bb; i++) blk[i] = (uint8_t)rnd_u32();
        switch (dt) {
        case LFL_Q4_0: case LFL_Q5_0: case LFL_Q8_0: put_f16(blk, 0.01f); break;
        case LFL_Q4_1: case LFL_Q5_1: put_f16(blk, 0.01f); put_f16(blk + 2, -0.05f); break;
        case LFL_Q4_K: case LFL_Q5_K: put_f16(blk, 0.0005f); put_f16(blk + 2, 0.001f); break;
        case LFL_Q6_K: put_f16(blk + 208, 0.0002f); break;
        default: break;
        }
    }
    return q;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 20;
    struct { lfl_dtype dt; int64_t n, k, copies; const char *what; } cs[] = {
        {LFL_Q4_1, 576, 576, 60, "q/o 576x576"},    {LFL_Q4_1, 1536, 576, 60, "gate/up 1536x576"},
        {LFL_Q4_1, 576, 1536, 30, "down 576x1536"}, {LFL_Q5_0, 576, 576, 60, "q/o 576x576"},
        {LFL_Q5_0, 192, 576, 60, "k/v 192x576"},    {LFL_Q5_0, 1536, 576, 60, "gate/up 1536x576"},
        {LFL_Q5_1, 192, 576, 60, "k/v 192x576"},    {LFL_Q4_K, 576, 1536, 30, "down 576x1536"},
        {LFL_Q5_K, 576, 1536, 30, "down 576x1536"}, {LFL_Q6_K, 576, 1536, 30, "down 576x1536"},
        {LFL_Q8_0, 49152, 576, 1, "head 49152x576"}, {LFL_Q8_0, 576, 576, 60, "q/o 576x576"},
    };
    printf("kernel %s, %d threads, %d reps; us per product (GB/s of weight bytes)\n", lfl_ggml_vecdot_kernel(),
           omp_get_max_threads(), reps);
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        int64_t n = cs[c].n, k = cs[c].k, L = cs[c].copies;
        lfl_tensor **w = malloc(sizeof(lfl_tensor *) * (size_t)L);
        for (int64_t l = 0; l < L; l++) w[l] = random_blocks(cs[c].dt, n, k);
        float *a = malloc(sizeof(float) * (size_t)(8 * k)), *out = malloc(sizeof(float) * (size_t)(8 * n));
        for (int64_t i = 0; i < 8 * k; i++) a[i] = (float)(rnd_u32() % 2001) / 1000.0f - 1.0f;
        double bytes = (double)n * k / lfl_dtypes[cs[c].dt].block * lfl_dtypes[cs[c].dt].block_bytes;
        printf("%-5s %-17s", lfl_dtype_name(cs[c].dt), cs[c].what);
        for (int m = 1; m <= 8; m += 7) {
            double best = 1e30;
            for (int r = 0; r < reps; r++) {
                double t0 = omp_get_wtime();
                for (int64_t l = 0; l < L; l++)
                    if (lfl_gemm_f32_ggml(m, n, k, a, (int)k, w[l], true, 0.0f, out, (int)n) != LFL_OK) return 1;
                double t = (omp_get_wtime() - t0) / (double)L;
                if (t < best) best = t;
            }
            printf("  m=%d %8.2f us (%5.1f GB/s)", m, best * 1e6, bytes / best * 1e-9);
        }
        printf("\n");
        for (int64_t l = 0; l < L; l++) lfl_tensor_release(w[l]);
        free(w); free(a); free(out);
    }
    return 0;
}
