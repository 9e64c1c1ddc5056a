/* dropout: inverted dropout. Each element is kept with probability 1 - p and
 * scaled by 1/(1-p), dropped ones are zero; the u8 keep-mask is saved for the
 * backward (g * mask / (1-p)). Draws come from the Philox stream: n words are
 * reserved and element i uses word i%4 of counter base + i/4 (as lfl_rand_
 * does), so the mask depends only on the seed and position, never on the
 * thread count. p = 0 returns the input itself, p = 1 zeros (neither draws). */
#include <math.h>
#include <string.h>
#include "../iter.h"
#include "optable.h"
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

lfl_status lfl_cpu_dropout_backward(lfl_tensor *g, lfl_tensor *mask, double scale, lfl_tensor *dx)
{
    apply_mask(g->dtype, lfl_data(g), lfl_data(mask), scale, lfl_data(dx), lfl_numel(g));
    return LFL_OK;
}

static lfl_status dropout_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    lfl_tensor *mask = n->saved[0], *g, *o = NULL;
    LFL_TRY(lfl_check_float("dropout backward", gout[0]));
    lfl_dropout_backward_kernel fn;
    LFL_TRY(lfl_dispatch_dropout_backward(gout[0]->device, NULL, &fn));
    LFL_TRY(lfl_contiguous(gout[0], &g));
    lfl_status st = lfl_empty_like(g, &o);
    if (st == LFL_OK) st = fn(g, mask, n->farg[0], o);
    lfl_tensor_release(g);
    if (st) { lfl_tensor_release(o); return st; }
    gin[0] = o;
    return LFL_OK;
}

lfl_status lfl_cpu_dropout(lfl_tensor *c, double p, lfl_tensor *mask, lfl_tensor *r)
{
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
    apply_mask(c->dtype, lfl_data(c), m, p < 1 ? 1.0 / (1.0 - p) : 0.0, lfl_data(r), n);
    return LFL_OK;
}

lfl_status lfl_dropout(lfl_tensor *a, double p, lfl_tensor **out)
{
    LFL_TRY(lfl_check_float("dropout", a));
    if (!(p >= 0 && p <= 1)) return lfl_fail(LFL_ERR_ARG, "dropout: p must be in [0, 1], got %g", p);
    if (p == 0) { *out = lfl_tensor_retain(a); return LFL_OK; }
    lfl_dropout_kernel fn;
    LFL_TRY(lfl_dispatch_dropout(a->device, NULL, &fn));
    lfl_tensor *c, *mask = NULL, *r = NULL;
    bool prev = lfl_set_grad_enabled(false); /* our own copy: no clone node */
    lfl_status st = lfl_contiguous(a, &c);
    lfl_set_grad_enabled(prev);
    LFL_TRY(st);
    st = lfl_empty(c->ndim, c->shape, LFL_U8, c->device, &mask);
    if (st == LFL_OK) st = lfl_empty_like(c, &r);
    if (st == LFL_OK) st = fn(c, p, mask, r);
    lfl_tensor_release(c);
    if (st) {
        lfl_tensor_release(mask);
        lfl_tensor_release(r);
        return st;
    }
    double scale = p < 1 ? 1.0 / (1.0 - p) : 0.0;
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
