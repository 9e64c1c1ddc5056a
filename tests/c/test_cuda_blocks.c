/* GGUF block weights and 8-bit AdamW on a CUDA device against the CPU: every
 * block format (Q8_0 .. Q6_K) moved to the device and back byte for byte,
 * dequantized there (lfl_cast, the block_dequant kernel) bit for bit what the
 * CPU gives, the rows helper the GEMM kernels use (f32 and bf16, ranges that
 * start inside a block), the views that cannot move; AdamW8bit steps on both
 * devices from the same state giving the same parameters, codes and absmax.
 * Runs on a GPU or on the emulator (build-emu); skipped without either. */
#include <string.h>
#include "cuda_check.h"
#include "optim/adamw8bit.h"
#include "quant/ggml.h"
#include "quant/ggml_quantize.h"

#ifdef LFL_HAVE_CUDA
/* kernels/blocks.cuh (C linkage) */
lfl_status lfl_cuda_block_dequant_rows(const lfl_tensor *q, int64_t r0, int64_t rows, void *dst, lfl_dtype dt);
#endif

static const lfl_dtype kinds[] = {LFL_Q8_0, LFL_Q4_0, LFL_Q4_1, LFL_Q5_0, LFL_Q5_1, LFL_Q4_K, LFL_Q5_K, LFL_Q6_K};

static uint32_t rnd_state = 12345;
static uint32_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 17;
    rnd_state ^= rnd_state << 5;
    return rnd_state;
}

/* a finite f16 scale: mostly normal (2^-8 .. 2^4), sometimes subnormal or zero */
static uint16_t rnd_scale(void)
{
    uint32_t r = rnd();
    uint16_t sign = (uint16_t)((r & 1) << 15), mant = (uint16_t)((r >> 1) & 0x3ff);
    int pick = (int)((r >> 11) % 16);
    uint16_t e = pick == 0 ? 0 : (uint16_t)(7 + (r >> 16) % 13);
    return (uint16_t)(sign | (e << 10) | (pick == 1 ? 0 : mant));
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

/* a block tensor of random bytes (every code bit pattern) with finite scales */
static lfl_tensor *random_blocks(lfl_dtype dt, int64_t rows, int64_t cols)
{
    int64_t shape[2] = {rows, cols};
    lfl_tensor *q;
    CC_OK(lfl_empty(2, shape, dt, LFL_CPU, &q));
    int64_t nb = rows * cols / lfl_dtypes[dt].block, bb = lfl_dtypes[dt].block_bytes;
    uint8_t *p = lfl_data(q);
    for (int64_t i = 0; i < nb * bb; i++) p[i] = (uint8_t)rnd();
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *blk = p + b * bb;
        switch (dt) {
        case LFL_Q8_0: case LFL_Q4_0: case LFL_Q5_0: put16(blk, rnd_scale()); break;
        case LFL_Q4_1: case LFL_Q5_1: case LFL_Q4_K: case LFL_Q5_K:
            put16(blk, rnd_scale());
            put16(blk + 2, rnd_scale());
            break;
        case LFL_Q6_K: put16(blk + 208, rnd_scale()); break;
        default: break;
        }
    }
    return q;
}

/* a CPU copy of a device tensor */
static lfl_tensor *host(lfl_tensor *t)
{
    lfl_tensor *h;
    CC_OK(lfl_to_device(t, LFL_CPU, &h));
    return h;
}

static void one_weight(const char *origin, lfl_tensor *q)
{
    char what[160];
    const char *name = lfl_dtype_name(q->dtype);
    int64_t n = lfl_numel(q), rows = q->shape[0], cols = q->shape[1];
    lfl_tensor *qd, *f, *fd, *fh, *back;
    CC_OK(lfl_to_device(q, 0, &qd));
    snprintf(what, sizeof what, "%s %s: on cuda:0", name, origin);
    cc_check(qd->device == 0 && qd->dtype == q->dtype && lfl_numel(qd) == n, what);
    CC_OK(lfl_cast(q, LFL_F32, &f));
    CC_OK(lfl_cast(qd, LFL_F32, &fd));
    snprintf(what, sizeof what, "%s %s: dequantized on the device", name, origin);
    cc_check(fd->device == 0 && fd->dtype == LFL_F32, what);
    fh = host(fd);
    snprintf(what, sizeof what, "%s %s: cuda dequantization equals the CPU's bit for bit", name, origin);
    cc_check(memcmp(lfl_data(f), lfl_data(fh), (size_t)n * sizeof(float)) == 0, what);
    cc_close(what, f, fd, 0, 0); /* names the first differing element when not */
    back = host(qd);
    snprintf(what, sizeof what, "%s %s: back on the CPU byte for byte", name, origin);
    cc_check(back->dtype == q->dtype && memcmp(lfl_data(back), lfl_data(q), lfl_dtype_nbytes(q->dtype, n)) == 0, what);
#ifdef LFL_HAVE_CUDA
    /* the rows helper on [n / 48, 48] (a view of the same blocks): rows 3..12
     * start at element 144, inside a block of 32 and of 256 */
    int64_t shape48[2] = {n / 48, 48}, r0 = 3, nr = 10;
    lfl_tensor *v, *dst, *dstb;
    CC_OK(lfl_view(qd, 2, shape48, &v));
    int64_t dshape[1] = {nr * 48};
    CC_OK(lfl_empty(1, dshape, LFL_F32, 0, &dst));
    CC_OK(lfl_empty(1, dshape, LFL_BF16, 0, &dstb));
    CC_OK(lfl_cuda_block_dequant_rows(v, r0, nr, lfl_data(dst), LFL_F32));
    CC_OK(lfl_cuda_block_dequant_rows(v, r0, nr, lfl_data(dstb), LFL_BF16));
    lfl_tensor *dh = host(dst), *dbh = host(dstb);
    const float *want = (const float *)lfl_data(f) + r0 * 48;
    snprintf(what, sizeof what, "%s %s: rows %lld..%lld of 48 as f32", name, origin, (long long)r0, (long long)(r0 + nr));
    cc_check(memcmp(lfl_data(dh), want, (size_t)(nr * 48) * sizeof(float)) == 0, what);
    bool bf_ok = true;
    const uint16_t *gb = lfl_data(dbh);
    for (int64_t i = 0; i < nr * 48; i++) bf_ok &= gb[i] == lfl_f32_to_bf16(want[i]);
    snprintf(what, sizeof what, "%s %s: the same rows as bf16 (rounded to nearest even)", name, origin);
    cc_check(bf_ok, what);
    /* the last row of the [rows, cols] weight alone */
    lfl_tensor *row;
    CC_OK(lfl_empty(1, &cols, LFL_F32, 0, &row));
    CC_OK(lfl_cuda_block_dequant_rows(qd, rows - 1, 1, lfl_data(row), LFL_F32));
    lfl_tensor *lh = host(row);
    snprintf(what, sizeof what, "%s %s: the last row", name, origin);
    cc_check(memcmp(lfl_data(lh), (const float *)lfl_data(f) + (rows - 1) * cols, (size_t)cols * sizeof(float)) == 0,
             what);
    snprintf(what, sizeof what, "%s: rows past the end are refused", name);
    cc_check(lfl_cuda_block_dequant_rows(qd, rows - 1, 2, lfl_data(row), LFL_F32) != LFL_OK &&
                 strstr(lfl_last_error(), "with 5 rows") != NULL,
             what);
    lfl_tensor_release(v), lfl_tensor_release(dst), lfl_tensor_release(dstb), lfl_tensor_release(dh);
    lfl_tensor_release(dbh), lfl_tensor_release(lh), lfl_tensor_release(row);
#endif
    lfl_tensor_release(qd), lfl_tensor_release(f), lfl_tensor_release(fd), lfl_tensor_release(fh);
    lfl_tensor_release(back);
}

static void block_weights(void)
{
    int64_t shape[2] = {5, 768}; /* 3 super-blocks of 256 (24 blocks of 32) per row */
    lfl_tensor *w = cc_randn(2, shape, LFL_F32, 0.05);
    float *pw = lfl_data(w);
    pw[7] = 0.9f, pw[300] = -1.3f; /* a few outliers set the block scales apart */
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        lfl_dtype dt = kinds[k];
        if (lfl_quantize_supported(dt)) { /* lfl's own quantizers: Q8_0, Q5_0, Q4_K */
            lfl_tensor *q;
            CC_OK(lfl_quantize(w, dt, &q));
            one_weight("quantized by lfl", q);
            lfl_tensor_release(q);
        }
        lfl_tensor *r = random_blocks(dt, 5, 768);
        one_weight("random blocks", r);
        lfl_tensor_release(r);
    }
    lfl_tensor_release(w);

    /* an empty weight moves and dequantizes to an empty f32 tensor */
    int64_t none[2] = {0, 256};
    lfl_tensor *e, *ed, *ef;
    CC_OK(lfl_empty(2, none, LFL_Q4_K, LFL_CPU, &e));
    CC_OK(lfl_to_device(e, 0, &ed));
    CC_OK(lfl_cast(ed, LFL_F32, &ef));
    cc_check(ed->device == 0 && ef->device == 0 && lfl_numel(ef) == 0, "an empty q4_k weight on cuda:0");
    lfl_tensor_release(e), lfl_tensor_release(ed), lfl_tensor_release(ef);

    /* views whose bytes are not the tensor's blocks in order are refused */
    lfl_tensor *q = random_blocks(LFL_Q6_K, 4, 512), *t, *out;
    CC_OK(lfl_transpose(q, 0, 1, &t));
    cc_check(lfl_to_device(t, 0, &out) != LFL_OK &&
                 strstr(lfl_last_error(), "a q6_k tensor moves only whole and contiguous, got a view of shape [512,4]"),
             "a transposed block tensor does not move");
    cc_check(lfl_cast(t, LFL_F32, &out) != LFL_OK && strstr(lfl_last_error(), "must be whole and contiguous"),
             "a transposed block tensor does not dequantize");
    cc_check(lfl_select(q, 0, 1, &out) != LFL_OK && strstr(lfl_last_error(), "select: q6_k tensors cannot be indexed"),
             "a row of a block tensor is not selected (its offset would split blocks)");
    lfl_tensor *qd;
    CC_OK(lfl_to_device(q, 0, &qd));
    lfl_tensor *td;
    CC_OK(lfl_transpose(qd, 0, 1, &td));
    cc_check(lfl_cast(td, LFL_F32, &out) != LFL_OK && strstr(lfl_last_error(), "must be whole and contiguous"),
             "a transposed device block tensor does not dequantize");
    lfl_tensor_release(q), lfl_tensor_release(t), lfl_tensor_release(qd), lfl_tensor_release(td);
}

/* AdamW8bit: `steps` steps from zero state on the CPU and on cuda:0 with the
 * same gradients; parameters, both code tensors and both absmax equal */
static void adamw8bit(int64_t n, int64_t block, double wd, int steps)
{
    char what[200];
    int64_t shape[1] = {n}, nb = (n + block - 1) / block, bshape[1] = {nb};
    lfl_tensor *p = cc_randn(1, shape, LFL_F32, 1.0), *mq, *vq, *ma, *va;
    CC_OK(lfl_zeros(1, shape, LFL_U8, LFL_CPU, &mq));
    CC_OK(lfl_zeros(1, shape, LFL_U8, LFL_CPU, &vq));
    CC_OK(lfl_zeros(1, bshape, LFL_F32, LFL_CPU, &ma));
    CC_OK(lfl_zeros(1, bshape, LFL_F32, LFL_CPU, &va));
    lfl_tensor *pd = cc_cuda(p), *mqd = cc_cuda(mq), *vqd = cc_cuda(vq), *mad = cc_cuda(ma), *vad = cc_cuda(va);
    for (int s = 1; s <= steps; s++) {
        lfl_tensor *g = cc_randn(1, shape, LFL_F32, s == 3 ? 10.0 : 0.1), *gd = cc_cuda(g); /* a spike at step 3 */
        lfl_adamw_opts o = {.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = wd, .step = s};
        CC_OK(lfl_adamw8bit_step(p, g, mq, ma, vq, va, block, &o));
        CC_OK(lfl_adamw8bit_step(pd, gd, mqd, mad, vqd, vad, block, &o));
        lfl_tensor_release(g), lfl_tensor_release(gd);
    }
    lfl_tensor *ph = host(pd), *mqh = host(mqd), *vqh = host(vqd), *mah = host(mad), *vah = host(vad);
    snprintf(what, sizeof what, "adamw8bit n=%lld block=%lld wd=%g: parameters after %d steps", (long long)n,
             (long long)block, wd, steps);
    cc_close(what, p, pd, 0, 1e-6);
    int64_t pdiff = 0, d1 = 0, d2 = 0;
    for (int64_t i = 0; i < n; i++) {
        pdiff += ((float *)lfl_data(p))[i] != ((float *)lfl_data(ph))[i];
        d1 += ((uint8_t *)lfl_data(mq))[i] != ((uint8_t *)lfl_data(mqh))[i];
        d2 += ((uint8_t *)lfl_data(vq))[i] != ((uint8_t *)lfl_data(vqh))[i];
    }
    snprintf(what, sizeof what, "adamw8bit n=%lld block=%lld: parameters bit for bit (%lld differ), exp_avg codes "
             "equal (%lld differ), exp_avg_sq codes equal (%lld differ)", (long long)n, (long long)block,
             (long long)pdiff, (long long)d1, (long long)d2);
    cc_check(pdiff == 0 && d1 == 0 && d2 == 0, what);
    snprintf(what, sizeof what, "adamw8bit n=%lld block=%lld: absmax1 and absmax2 equal", (long long)n, (long long)block);
    cc_check(memcmp(lfl_data(ma), lfl_data(mah), (size_t)nb * 4) == 0 &&
                 memcmp(lfl_data(va), lfl_data(vah), (size_t)nb * 4) == 0 && ((float *)lfl_data(va))[0] > 0,
             what);
    lfl_tensor_release(ph), lfl_tensor_release(mqh), lfl_tensor_release(vqh), lfl_tensor_release(mah);
    lfl_tensor_release(vah);
    if (block == 256) { /* state on another device than the parameter is named */
        lfl_adamw_opts o = {.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .step = 1};
        char want[128];
        snprintf(want, sizeof want, "exp_avg (state1) must be a contiguous u8 tensor of %lld elements on cuda:0",
                 (long long)n);
        cc_check(lfl_adamw8bit_step(pd, pd, mq, mad, vqd, vad, block, &o) != LFL_OK &&
                     strstr(lfl_last_error(), want) != NULL,
                 "adamw8bit refuses a state on the CPU for a cuda parameter, naming the device");
    }
    lfl_tensor_release(p), lfl_tensor_release(mq), lfl_tensor_release(vq), lfl_tensor_release(ma);
    lfl_tensor_release(va), lfl_tensor_release(pd), lfl_tensor_release(mqd), lfl_tensor_release(vqd);
    lfl_tensor_release(mad), lfl_tensor_release(vad);
}

int main(void)
{
    if (!cc_begin("test_cuda_blocks")) return 0;
    block_weights();
    adamw8bit(1037, 256, 0.01, 5); /* 4 whole blocks and a tail of 13 */
    adamw8bit(1037, 64, 0.0, 4);   /* blocks smaller than the CUDA block */
    adamw8bit(4500, 2048, 0.1, 3); /* 8 elements a thread, a tail block of 404 */
    adamw8bit(300, 4096, 0.0, 2);  /* one short block */
    return cc_end();
}
