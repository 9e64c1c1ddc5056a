/* dropout: inverted dropout. Each element is kept with probability 1 - p and
 * scaled by 1/(1-p), dropped ones are zero; the u8 keep-mask is saved for the
 * backward (g * mask / (1-p)). Draws come from the Philox stream: n words are
 * reserved and element i uses word i%4 of counter base + i/4 (as lfl_rand_
 * does), so the mask depends only on the seed and position, never on the
 * thread count. p = 0 returns the input itself, p = 1 zeros (neither draws). */
#include <math.h>
#include <string.h>
#include "../iter.h"
#include "../ops.h"
#include "../rng.h"

/* out = x * (m ? scale : 0): multiplying (not selecting) lets NaN/inf in a
 * dropped element give NaN, as x * mask * scale does in torch */
static void apply_mask(lfl_dtype dt, const void *x, const uint8_t *m, double scale, void *y, int64_t n)
{
    if (dt == LFL_F32) {
        const float *px = x;
        float *py = y, s = (float)scale;
#pragma omp parallel for simd if (n > LFL_OMP_MIN)
        for (int64_t i = 0; i < n; i++) py[i] = px[i] * (m[i] ? s : 0.0f);
    } else {
        const double *px = x;
        double *py = y;
#pragma omp parallel for simd if (n > LFL_OMP_MIN)
        for (int64_t i = 0; i < n; i++) py[i] = px[i] * (m[i] ? scale : 0.0);
    }
}

static lfl_status dropout_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    lfl_tensor *mask = n->saved[0], *g, *o;
    LFL_TRY(lfl_check_float("dropout backward", gout[0]));
    LFL_TRY(lfl_contiguous(gout[0], &g));
    lfl_status st = lfl_empty_like(g, &o);
    if (st) { lfl_tensor_release(g); return st; }
    apply_mask(g->dtype, lfl_data(g), lfl_data(mask), n->farg[0], lfl_data(o), lfl_numel(g));
    lfl_tensor_release(g);
    gin[0] = o;
    return LFL_OK;
}

lfl_status lfl_dropout(lfl_tensor *a, double p, lfl_tensor **out)
{
    LFL_TRY(lfl_check_float("dropout", a));
    if (a->device != LFL_CPU) return lfl_fail(LFL_ERR_UNSUPPORTED, "dropout: CUDA tensors are not supported yet");
    if (!(p >= 0 && p <= 1)) return lfl_fail(LFL_ERR_ARG, "dropout: p must be in [0, 1], got %g", p);
    if (p == 0) { *out = lfl_tensor_retain(a); return LFL_OK; }
    lfl_tensor *c, *mask = NULL, *r = NULL;
    bool prev = lfl_set_grad_enabled(false); /* our own copy: no clone node */
    lfl_status st = lfl_contiguous(a, &c);
    lfl_set_grad_enabled(prev);
    LFL_TRY(st);
    st = lfl_empty(c->ndim, c->shape, LFL_U8, LFL_CPU, &mask);
    if (st == LFL_OK) st = lfl_empty_like(c, &r);
    if (st) {
        lfl_tensor_release(c);
        lfl_tensor_release(mask);
        return st;
    }
    int64_t n = lfl_numel(c);
    uint8_t *m = lfl_data(mask);
    if (p < 1) {
        uint64_t base = lfl_rng_reserve((uint64_t)n), seed = lfl_rng_get().seed;
        /* keep when the 24-bit uniform k / 2^24 >= p, i.e. k >= ceil(p 2^24) */
        uint32_t thr = (uint32_t)ceil(p * 16777216.0);
        int64_t groups = (n + 3) / 4;
#pragma omp parallel for if (n > LFL_OMP_MIN)
        for (int64_t q = 0; q < groups; q++) {
            uint32_t w[4];
            lfl_philox(seed, base + (uint64_t)q, w);
            int64_t i0 = q * 4;
            for (int k = 0; k < 4 && i0 + k < n; k++) m[i0 + k] = (w[k] >> 8) >= thr;
        }
    } else {
        memset(m, 0, (size_t)n);
    }
    double scale = p < 1 ? 1.0 / (1.0 - p) : 0.0;
    apply_mask(c->dtype, lfl_data(c), m, scale, lfl_data(r), n);
    lfl_tensor_release(c);
    lfl_node *nd = lfl_node_begin("dropout", dropout_backward, 1, &a, 1);
    if (nd) {
        nd->farg[0] = scale;
        lfl_node_save(nd, mask);
        lfl_node_set_output(nd, r, 0);
        lfl_node_release(nd);
    }
    lfl_tensor_release(mask);
    *out = r;
    return LFL_OK;
}
