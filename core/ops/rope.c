/* rope: rotary position embedding in Hugging Face's rotate-half convention,
 * out = x * cos + rotate_half(x) * sin with rotate_half(x) = cat(-x2, x1) for
 * x = cat(x1, x2) halves of D. x[B, H, T, D]; cos/sin[B or 1, T, D] (or [T, D])
 * come from the caller, usually lfl_rope_cos_sin below, so packed rows with
 * position ids restarting at 0 are just other cos/sin rows.
 * Backward (to x only): rotate_half is the linear map R, so dx = g * cos + R^T (g * sin)
 * with (R^T y)[j] = y[j + D/2] for j < D/2 and -y[j - D/2] above. */
#include "rows.h"

/* over (batch, head) pairs, then positions by x's strides: a row offset
 * decoded per row (divisions through every dim) cost more than the row */
#define ROPE_FORWARD(T)                                                             \
    do {                                                                            \
        const T *xb = lfl_data(xr), *pc = lfl_data(cc), *ps = lfl_data(sc);         \
        T *po = lfl_data(o);                                                        \
        int64_t sxb = xr->stride[0], sxh = xr->stride[1], sxt = xr->stride[2];      \
        _Pragma("omp parallel for if (rows * D > LFL_OMP_MIN)")                     \
        for (int64_t bh = 0; bh < B * Hh; bh++) {                                   \
            int64_t b = bh / Hh, hh = bh % Hh;                                      \
            const T *cb = pc + (Bc == 1 ? 0 : b) * Tt * D, *sb = ps + (Bc == 1 ? 0 : b) * Tt * D; \
            for (int64_t t = 0; t < Tt; t++) {                                      \
                const T *restrict x = xb + b * sxb + hh * sxh + t * sxt;            \
                const T *restrict c = cb + t * D, *restrict s = sb + t * D;         \
                T *restrict y = po + (bh * Tt + t) * D;                             \
                _Pragma("omp simd") for (int64_t j = 0; j < h; j++) y[j] = x[j] * c[j] - x[j + h] * s[j]; \
                _Pragma("omp simd") for (int64_t j = h; j < D; j++) y[j] = x[j] * c[j] + x[j - h] * s[j]; \
            }                                                                       \
        }                                                                           \
    } while (0)

#define ROPE_BACKWARD(T)                                                            \
    do {                                                                            \
        const T *pg = lfl_data(g), *pc = lfl_data(cc), *ps = lfl_data(sc);          \
        T *pd = lfl_data(dx);                                                       \
        _Pragma("omp parallel for if (rows * D > LFL_OMP_MIN)")                     \
        for (int64_t r = 0; r < rows; r++) {                                        \
            const T *gr = pg + r * D;                                               \
            int64_t b = r / (Hh * Tt), t = r % Tt;                                  \
            const T *c = pc + ((Bc == 1 ? 0 : b) * Tt + t) * D, *s = ps + ((Bc == 1 ? 0 : b) * Tt + t) * D; \
            T *d = pd + r * D;                                                      \
            _Pragma("omp simd") for (int64_t j = 0; j < h; j++) d[j] = gr[j] * c[j] + gr[j + h] * s[j + h]; \
            _Pragma("omp simd") for (int64_t j = h; j < D; j++) d[j] = gr[j] * c[j] - gr[j - h] * s[j - h]; \
        }                                                                           \
    } while (0)

lfl_status lfl_cpu_rope_backward(lfl_tensor *g, lfl_tensor *cc, lfl_tensor *sc, lfl_tensor *dx)
{
    int64_t Bc = cc->ndim == 3 ? cc->shape[0] : 1, Hh = dx->shape[1], Tt = dx->shape[2], D = dx->shape[3], h = D / 2;
    int64_t rows = dx->shape[0] * Hh * Tt;
    if (rows > 0 && D > 0) {
        if (g->dtype == LFL_F32) ROPE_BACKWARD(float);
        else ROPE_BACKWARD(double);
    }
    return LFL_OK;
}

static lfl_status rope_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    if (!lfl_node_needs(n, 0)) return LFL_OK;
    lfl_tensor *cc = n->saved[0], *sc = n->saved[1], *g = NULL, *dx = NULL;
    lfl_rope_backward_kernel fn;
    LFL_TRY(lfl_dispatch_rope_backward(cc->device, NULL, &fn));
    LFL_TRY(lfl_contiguous(gout[0], &g));
    lfl_status st = lfl_empty(4, n->in[0].shape, g->dtype, g->device, &dx);
    if (st == LFL_OK) st = fn(g, cc, sc, dx);
    lfl_tensor_release(g);
    if (st) { lfl_tensor_release(dx); return st; }
    gin[0] = dx;
    return LFL_OK;
}

lfl_status lfl_cpu_rope(lfl_tensor *xr, lfl_tensor *cc, lfl_tensor *sc, lfl_tensor *o)
{
    int64_t B = xr->shape[0], Hh = xr->shape[1], Tt = xr->shape[2], D = xr->shape[3], h = D / 2;
    int64_t Bc = cc->ndim == 3 ? cc->shape[0] : 1, rows = B * Hh * Tt;
    if (rows > 0 && D > 0) {
        if (xr->dtype == LFL_F32) ROPE_FORWARD(float);
        else ROPE_FORWARD(double);
    }
    return LFL_OK;
}

lfl_status lfl_rope(lfl_tensor *x, lfl_tensor *cos, lfl_tensor *sin, lfl_tensor **out)
{
    char bx[128], bc[128], bs[128];
    LFL_TRY(lfl_nn_check("rope", x, "input", NULL));
    LFL_TRY(lfl_nn_check("rope", cos, "cos", x));
    LFL_TRY(lfl_nn_check("rope", sin, "sin", x));
    if (x->ndim != 4)
        return lfl_fail(LFL_ERR_ARG, "rope: input %s should be [B, H, T, D]", lfl_shape_str(x, bx, sizeof bx));
    int64_t B = x->shape[0], Tt = x->shape[2], D = x->shape[3];
    if (D % 2) return lfl_fail(LFL_ERR_ARG, "rope: head dim D = %lld must be even", (long long)D);
    int cnd = cos->ndim;
    int64_t Bc = cnd == 3 ? cos->shape[0] : 1;
    bool ok = lfl_same_shape(cos, sin) && (cnd == 2 || cnd == 3) && cos->shape[cnd - 1] == D &&
              cos->shape[cnd - 2] == Tt && (Bc == 1 || Bc == B);
    if (!ok)
        return lfl_fail(LFL_ERR_ARG, "rope: cos %s / sin %s should be [%lld or 1, %lld, %lld] for input %s",
                        lfl_shape_str(cos, bc, sizeof bc), lfl_shape_str(sin, bs, sizeof bs), (long long)B,
                        (long long)Tt, (long long)D, lfl_shape_str(x, bx, sizeof bx));
    if (cos->dtype != x->dtype || sin->dtype != x->dtype)
        return lfl_fail(LFL_ERR_ARG, "rope: cos/sin are %s/%s but input is %s (cast them)", lfl_dtype_name(cos->dtype),
                        lfl_dtype_name(sin->dtype), lfl_dtype_name(x->dtype));
    lfl_rope_kernel fn;
    LFL_TRY(lfl_dispatch_rope(x->device, NULL, &fn));
    lfl_tensor *xr = NULL, *cc = NULL, *sc = NULL, *o = NULL;
    lfl_status st = lfl_rows_ready(x, &xr);
    if (st == LFL_OK) st = lfl_contiguous(cos, &cc);
    if (st == LFL_OK) st = lfl_contiguous(sin, &sc);
    if (st == LFL_OK) st = lfl_empty(4, x->shape, x->dtype, x->device, &o);
    if (st == LFL_OK) st = fn(xr, cc, sc, o);
    if (st == LFL_OK) {
        /* cos/sin get no gradient: they are a function of integer positions */
        lfl_node *n = lfl_node_begin("rope", rope_backward, 1, &x, 1);
        if (n) {
            lfl_node_save(n, cc);
            lfl_node_save(n, sc);
            lfl_node_set_output(n, o, 0);
            lfl_node_release(n);
        }
        *out = o;
        o = NULL;
    }
    lfl_tensor_release(xr);
    lfl_tensor_release(cc);
    lfl_tensor_release(sc);
    lfl_tensor_release(o);
    return st;
}

/* cos/sin[B, T, D] from position ids [B, T] (or [T] -> [1, T, D]) and
 * inv_freq[D/2], exactly as HF's LlamaRotaryEmbedding.forward: in f32,
 * freqs = float(pos) * inv_freq, emb = cat(freqs, freqs), cos(emb) * scaling,
 * then cast to `dt` (HF casts to the activations' dtype). */
lfl_status lfl_cpu_rope_cos_sin(lfl_tensor *pos, lfl_tensor *inv_freq, double scaling, lfl_tensor *c, lfl_tensor *s)
{
    int64_t B = c->shape[0], Tt = c->shape[1], h = inv_freq->shape[0];
    lfl_dtype dt = c->dtype;
    lfl_tensor *pc = NULL, *fc = NULL;
    lfl_status st = lfl_empty(pos->ndim, pos->shape, LFL_I64, LFL_CPU, &pc);
    if (st == LFL_OK) st = lfl_copy_(pc, pos); /* contiguous i64, no grad */
    if (st == LFL_OK) st = lfl_empty(1, &h, LFL_F32, LFL_CPU, &fc);
    if (st == LFL_OK) st = lfl_copy_(fc, inv_freq);
    if (st == LFL_OK) {
        const int64_t *pp = lfl_data(pc);
        const float *pf = lfl_data(fc);
        float sc = (float)scaling;
        int64_t n = B * Tt;
#pragma omp parallel for if (n * h > LFL_OMP_MIN)
        for (int64_t r = 0; r < n; r++) {
            float p = (float)pp[r];
            for (int64_t k = 0; k < h; k++) {
                float f = p * pf[k];
                float cv = cosf(f) * sc, sv = sinf(f) * sc;
                if (dt == LFL_F32) {
                    float *cr = (float *)lfl_data(c) + r * 2 * h, *sr = (float *)lfl_data(s) + r * 2 * h;
                    cr[k] = cr[k + h] = cv;
                    sr[k] = sr[k + h] = sv;
                } else {
                    double *cr = (double *)lfl_data(c) + r * 2 * h, *sr = (double *)lfl_data(s) + r * 2 * h;
                    cr[k] = cr[k + h] = cv;
                    sr[k] = sr[k + h] = sv;
                }
            }
        }
    }
    lfl_tensor_release(pc);
    lfl_tensor_release(fc);
    return st;
}

lfl_status lfl_rope_cos_sin(lfl_tensor *pos, lfl_tensor *inv_freq, double scaling, lfl_dtype dt,
                            lfl_tensor **cos_out, lfl_tensor **sin_out)
{
    char bp[128], bi[128];
    LFL_TRY(lfl_check_same_device("rope_cos_sin", pos, inv_freq));
    if (pos->dtype != LFL_I64 && pos->dtype != LFL_I32)
        return lfl_fail(LFL_ERR_ARG, "rope_cos_sin: position ids have dtype %s, expected i64 (or i32)",
                        lfl_dtype_name(pos->dtype));
    if (pos->ndim != 1 && pos->ndim != 2)
        return lfl_fail(LFL_ERR_ARG, "rope_cos_sin: position ids %s should be [B, T] or [T]",
                        lfl_shape_str(pos, bp, sizeof bp));
    if (inv_freq->ndim != 1 || (inv_freq->dtype != LFL_F32 && inv_freq->dtype != LFL_F64))
        return lfl_fail(LFL_ERR_ARG, "rope_cos_sin: inv_freq %s of %s should be a 1-D f32 (or f64) [D/2]",
                        lfl_shape_str(inv_freq, bi, sizeof bi), lfl_dtype_name(inv_freq->dtype));
    if (dt != LFL_F32 && dt != LFL_F64)
        return lfl_fail(LFL_ERR_ARG, "rope_cos_sin: output dtype %s is not supported (f32, f64)", lfl_dtype_name(dt));
    lfl_rope_cos_sin_kernel fn;
    LFL_TRY(lfl_dispatch_rope_cos_sin(pos->device, NULL, &fn));
    int64_t B = pos->ndim == 2 ? pos->shape[0] : 1, Tt = pos->shape[pos->ndim - 1], h = inv_freq->shape[0];
    int64_t shape[3] = {B, Tt, 2 * h};
    lfl_tensor *c = NULL, *s = NULL;
    lfl_status st = lfl_empty(3, shape, dt, pos->device, &c);
    if (st == LFL_OK) st = lfl_empty(3, shape, dt, pos->device, &s);
    if (st == LFL_OK) st = fn(pos, inv_freq, scaling, c, s);
    if (st) {
        lfl_tensor_release(c);
        lfl_tensor_release(s);
        return st;
    }
    *cos_out = c;
    *sin_out = s;
    return LFL_OK;
}
