/* 8-bit AdamW: bitsandbytes' dynamic quantization maps, blockwise quantization
 * of the optimizer states and the front of the fused dequantize -> step ->
 * requantize update (its kernels: core/ops/adamw8bit_step.c on the CPU, the
 * dispatch table's adamw8bit_step elsewhere). */
#include <math.h>
#include <stdlib.h>
#include "../iter.h"
#include "../ops/optable.h"
#include "adamw8bit.h"

/* torch.linspace(0.1, 1, steps) in f32: the first half counts up from start, the
 * second half down from end (ATen's RangeFactories kernel), so it is exact at both ends. */
static void linspace_f32(float start, float end, int steps, float *out)
{
    float step = (end - start) / (float)(steps - 1);
    int half = steps / 2;
    for (int i = 0; i < steps; i++) out[i] = i < half ? start + step * (float)i : end - step * (float)(steps - i - 1);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void lfl_qmap_dynamic(bool is_signed, float code[256])
{
    /* create_dynamic_map(signed, max_exponent_bits=7, total_bits=8): for each decimal
     * exponent 10^-6 .. 10^0, 2^i (signed) or 2^(i+1) (unsigned) linearly spaced
     * fraction values (midpoints of linspace(0.1, 1)), then 0 and 1. With 8 bits
     * the "additional items" branch is empty. */
    int n = 0;
    float bounds[130];
    for (int i = 0; i < 7; i++) {
        int items = is_signed ? (1 << i) + 1 : (1 << (i + 1)) + 1;
        linspace_f32(0.1f, 1.0f, items, bounds);
        float scale = (float)pow(10.0, (double)(-6 + i));
        for (int k = 0; k + 1 < items; k++) {
            float mean = (bounds[k] + bounds[k + 1]) / 2.0f;
            code[n++] = scale * mean;
            if (is_signed) code[n++] = -(scale * mean);
        }
    }
    code[n++] = 0.0f;
    code[n++] = 1.0f;
    while (n < 256) code[n++] = 0.0f;
    qsort(code, 256, sizeof(float), cmp_float);
}

/* index of the first midpoint >= x (torch.bucketize, right=False), i.e. the nearest
 * code with ties going to the lower index */
static inline uint8_t bucket(const float *mid, float x)
{
    int lo = 0, hi = 255; /* answer in [0, 255] */
    while (lo < hi) {
        int m = (lo + hi) >> 1;
        if (mid[m] < x) lo = m + 1; else hi = m;
    }
    return (uint8_t)lo;
}

void lfl_qmap_midpoints(const float code[256], float mid[255])
{
    for (int i = 0; i < 255; i++) mid[i] = (code[i] + code[i + 1]) / 2.0f;
}

static lfl_status check_on(const char *op, lfl_tensor *t, lfl_dtype dt, int64_t n, int device, const char *what)
{
    if (t->dtype != dt || !lfl_is_contiguous(t) || lfl_numel(t) != n || t->device != device) {
        char dev[32];
        return lfl_fail(LFL_ERR_ARG, "%s: %s must be a contiguous %s tensor of %lld elements on %s", op, what,
                        lfl_dtype_name(dt), (long long)n, lfl_device_str(device, dev, sizeof dev));
    }
    return LFL_OK;
}

static lfl_status check(const char *op, lfl_tensor *t, lfl_dtype dt, int64_t n, const char *what)
{
    return check_on(op, t, dt, n, LFL_CPU, what);
}

static inline int64_t nblocks(int64_t n, int64_t block) { return (n + block - 1) / block; }

float lfl_quantize_block(const float *x, int64_t len, const float mid[255], uint8_t *q)
{
    float am = 0;
    for (int64_t i = 0; i < len; i++) am = fmaxf(am, fabsf(x[i]));
    float inv = 1.0f / fmaxf(am, 1e-38f);
    for (int64_t i = 0; i < len; i++) {
        float s = fminf(1.0f, fmaxf(-1.0f, x[i] * inv));
        q[i] = bucket(mid, s);
    }
    return am;
}

lfl_status lfl_quantize_blockwise(lfl_tensor *x, const float code[256], int64_t block, lfl_tensor *q,
                                  lfl_tensor *absmax)
{
    if (block < 1) return lfl_fail(LFL_ERR_ARG, "quantize_blockwise: block size must be positive, got %lld", (long long)block);
    int64_t n = lfl_numel(x);
    LFL_TRY(check("quantize_blockwise", x, LFL_F32, n, "the input"));
    LFL_TRY(check("quantize_blockwise", q, LFL_U8, n, "the code tensor"));
    LFL_TRY(check("quantize_blockwise", absmax, LFL_F32, nblocks(n, block), "absmax"));
    float mid[255];
    lfl_qmap_midpoints(code, mid);
    const float *xx = lfl_data(x);
    uint8_t *qq = lfl_data(q);
    float *am = lfl_data(absmax);
    int64_t nb = nblocks(n, block);
#pragma omp parallel for if (n > LFL_OMP_MIN)
    for (int64_t b = 0; b < nb; b++) {
        int64_t s = b * block, len = n - s < block ? n - s : block;
        am[b] = lfl_quantize_block(xx + s, len, mid, qq + s);
    }
    return LFL_OK;
}

lfl_status lfl_dequantize_blockwise(lfl_tensor *q, lfl_tensor *absmax, const float code[256], int64_t block,
                                    lfl_tensor *out)
{
    if (block < 1) return lfl_fail(LFL_ERR_ARG, "dequantize_blockwise: block size must be positive");
    int64_t n = lfl_numel(q);
    LFL_TRY(check("dequantize_blockwise", q, LFL_U8, n, "the code tensor"));
    LFL_TRY(check("dequantize_blockwise", absmax, LFL_F32, nblocks(n, block), "absmax"));
    LFL_TRY(check("dequantize_blockwise", out, LFL_F32, n, "the output"));
    const uint8_t *qq = lfl_data(q);
    const float *am = lfl_data(absmax);
    float *o = lfl_data(out);
#pragma omp parallel for if (n > LFL_OMP_MIN)
    for (int64_t i = 0; i < n; i++) o[i] = code[qq[i]] * am[i / block];
    return LFL_OK;
}

lfl_status lfl_adamw8bit_step(lfl_tensor *p, lfl_tensor *g, lfl_tensor *mq, lfl_tensor *mabs, lfl_tensor *vq,
                              lfl_tensor *vabs, int64_t block, const lfl_adamw_opts *o)
{
    /* bitsandbytes allows blocks of 32..4096; the f32 states of one block live on the stack */
    if (block < 1 || block > 4096)
        return lfl_fail(LFL_ERR_ARG, "adamw8bit: block size must be in 1..4096, got %lld", (long long)block);
    if (o->step < 1) return lfl_fail(LFL_ERR_ARG, "adamw8bit: step must start at 1");
    int64_t n = lfl_numel(p), nb = nblocks(n, block);
    int dev = p->device;
    LFL_TRY(check_on("adamw8bit", p, LFL_F32, n, dev, "the parameter"));
    LFL_TRY(check_on("adamw8bit", g, LFL_F32, n, dev, "the gradient"));
    LFL_TRY(check_on("adamw8bit", mq, LFL_U8, n, dev, "exp_avg (state1)"));
    LFL_TRY(check_on("adamw8bit", vq, LFL_U8, n, dev, "exp_avg_sq (state2)"));
    LFL_TRY(check_on("adamw8bit", mabs, LFL_F32, nb, dev, "absmax1"));
    LFL_TRY(check_on("adamw8bit", vabs, LFL_F32, nb, dev, "absmax2"));
    if (p->storage->kind == LFL_STORAGE_MMAP)
        return lfl_fail(LFL_ERR_ARG, "adamw8bit: the parameter is a read-only mapping of a checkpoint file; train a "
                        "copy (clone)");
    if (n == 0) return LFL_OK;
    lfl_adamw8bit_step_kernel fn;
    LFL_TRY(lfl_dispatch_adamw8bit_step(dev, "adamw8bit", &fn));
    return fn(p, g, mq, mabs, vq, vabs, block, o);
}
