/* linear_cross_entropy: cross_entropy(hidden[N, H] @ w[V, H]^T, labels[N])
 * without ever holding the [N, V] logits. V is walked in column chunks of
 * `chunk`: forward runs one GEMM per chunk and folds it into an online
 * log-sum-exp per row, keeping only the [N] lse and the label logits; backward
 * recomputes each chunk's logits, turns them in place into
 * dlogits = (softmax - onehot) * g_row and accumulates dhidden += dlogits @ w_c
 * and dw_c = dlogits^T @ hidden. The only extra memory is one [N, chunk] buffer.
 * hidden[..., H] with labels[...] are flattened to rows. A bf16/f16 w with f32
 * hidden (a frozen tied embedding) is widened block by block (lowp_gemm.c).
 *
 * When hidden needs a gradient and w does not (LoRA, freeze: a frozen head),
 * the forward computes dhidden too, in the same pass, and backward only
 * scales it: each chunk's logits become exp(logit - running max) in place and
 * are multiplied into an [N, H] sum by the second GEMM, whose rows are rescaled
 * whenever a row's max grows (online softmax); at the end dhidden = sum / s -
 * w[label]. Two GEMMs per chunk instead of three (no recompute in backward). */
#include <math.h>
#include <stdlib.h>
#include "../blas.h"
#include "../iter.h"
#include "loss.h"
#include "lowp.h"

/* ~8 MB of chunk logits, at least 256 columns so the GEMMs keep their speed */
static int64_t default_chunk(int64_t N, int64_t V, size_t es)
{
    int64_t c = (int64_t)((8u << 20) / ((size_t)(N > 0 ? N : 1) * es));
    c = c / 64 * 64;
    if (c < 256) c = 256;
    if (c > 8192) c = 8192;
    return c < V ? c : V;
}

/* buf[N, cw] = hidden[N, H] @ w[v0 : v0 + cw, H]^T (row-major, ld = cw) */
static lfl_status chunk_logits(lfl_dtype dt, const void *h, lfl_dtype wdt, const void *w, void *buf, int64_t N,
                               int64_t H, int64_t v0, int64_t cw)
{
    size_t es = lfl_dtype_size(dt);
    if (H == 0) { memset(buf, 0, (size_t)(N * cw) * es); return LFL_OK; }
    const char *wc = (const char *)w + (size_t)(v0 * H) * lfl_dtype_size(wdt);
    if (lfl_is_lowp(wdt))
        return lfl_gemm_f32_lowp(false, N, cw, H, h, (int)H, wdt, wc, 1, H, 0.0f, buf, (int)cw);
    lfl_gemm_typed(dt, false, true, N, cw, H, 1.0, h, H, wc, H, 0.0, buf, cw);
    return LFL_OK;
}

/* dst[N, H] += p[N, cw] @ w_c[cw, H] */
static lfl_status chunk_dh(lfl_dtype dt, const void *p, lfl_dtype wdt, const void *wc, int64_t N, int64_t H,
                           int64_t cw, void *dst)
{
    if (lfl_is_lowp(wdt))
        return lfl_gemm_f32_lowp(false, N, H, cw, p, (int)cw, wdt, wc, H, 1, 1.0f, dst, (int)H);
    lfl_gemm_typed(dt, false, false, N, H, cw, 1.0, p, cw, wc, H, 1.0, dst, H);
    return LFL_OK;
}

static double w_at(lfl_dtype wdt, const void *w, int64_t i)
{
    switch (wdt) {
    case LFL_BF16: return lfl_bf16_to_f32(((const uint16_t *)w)[i]);
    case LFL_F16: return lfl_f16_to_f32(((const uint16_t *)w)[i]);
    case LFL_F32: return ((const float *)w)[i];
    default: return ((const double *)w)[i];
    }
}

/* acc[r, :] *= f[r] where a row's max grew (f = 1 leaves it) */
static void rescale_rows(lfl_dtype dt, void *acc, const double *f, int64_t N, int64_t H)
{
#pragma omp parallel for schedule(static) if (N * H > LFL_OMP_MIN)
    for (int64_t r = 0; r < N; r++) {
        if (f[r] == 1.0) continue;
        if (dt == LFL_F32) { float *a = (float *)acc + r * H, g = (float)f[r]; for (int64_t j = 0; j < H; j++) a[j] *= g; }
        else { double *a = (double *)acc + r * H; for (int64_t j = 0; j < H; j++) a[j] *= f[r]; }
    }
}

/* acc[r, :] = acc[r, :] / s[r] - w[label r, :]: the gradient of row r's loss
 * w.r.t. its hidden state; 0 on ignored rows */
static void eager_finish(lfl_dtype dt, void *acc, lfl_dtype wdt, const void *w, const int64_t *lab, const double *s,
                         int64_t N, int64_t H)
{
#pragma omp parallel for schedule(static) if (N * H > LFL_OMP_MIN)
    for (int64_t r = 0; r < N; r++) {
        bool ign = lab[r] == LFL_IGNORE_INDEX;
        double inv = ign ? 0.0 : 1.0 / s[r];
        for (int64_t j = 0; j < H; j++) {
            double a = dt == LFL_F32 ? ((float *)acc)[r * H + j] : ((double *)acc)[r * H + j];
            double v = ign ? 0.0 : a * inv - w_at(wdt, w, lab[r] * H + j);
            if (dt == LFL_F32) ((float *)acc)[r * H + j] = (float)v;
            else ((double *)acc)[r * H + j] = v;
        }
    }
}

/* backward of the eager form: dhidden = coef[r] * the forward's gradient rows */
static lfl_status eager_backward(lfl_node *n, const double *coef, lfl_tensor **gin)
{
    lfl_tensor *dh = n->saved[4];
    int64_t N = n->iarg[1], H = n->iarg[3];
    LFL_TRY(lfl_empty(n->in[0].ndim, n->in[0].shape, dh->dtype, LFL_CPU, &gin[0]));
    void *d = lfl_data(gin[0]);
    const void *src = lfl_data(dh);
#pragma omp parallel for schedule(static) if (N * H > LFL_OMP_MIN)
    for (int64_t r = 0; r < N; r++)
        for (int64_t j = 0; j < H; j++) {
            if (dh->dtype == LFL_F32) ((float *)d)[r * H + j] = ((const float *)src)[r * H + j] * (float)coef[r];
            else ((double *)d)[r * H + j] = ((const double *)src)[r * H + j] * coef[r];
        }
    return LFL_OK;
}

static lfl_status lce_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    lfl_tensor *h = n->saved[0], *w = n->saved[1], *lab = n->saved[2], *lse = n->saved[3], *buf = NULL;
    int64_t N = n->iarg[1], V = n->iarg[2], H = n->iarg[3], chunk = n->iarg[5];
    lfl_dtype dt = h->dtype;
    size_t es = lfl_dtype_size(dt);
    bool need_h = lfl_node_needs(n, 0), need_w = lfl_node_needs(n, 1);
    double *coef = malloc(sizeof(double) * (size_t)(N ? N : 1));
    if (!coef) return lfl_fail(LFL_ERR_MEM, "linear_cross_entropy backward: out of memory");
    lfl_status st = lfl_loss_row_coef(gout[0], (lfl_reduction)n->iarg[0], N, n->iarg[4], 1.0, coef);
    if (n->iarg[6]) { /* eager: w needs no gradient, dhidden was computed by the forward */
        LFL_ASSERT(!need_w);
        if (st == LFL_OK && need_h) st = eager_backward(n, coef, gin);
        free(coef);
        return st;
    }
    if (st == LFL_OK && need_h) st = lfl_zeros(n->in[0].ndim, n->in[0].shape, dt, LFL_CPU, &gin[0]);
    if (st == LFL_OK && need_w) { /* every chunk of dw is written by its GEMM unless there is none */
        st = lfl_empty(2, w->shape, dt, LFL_CPU, &gin[1]);
        if (st == LFL_OK && (N == 0 || H == 0)) lfl_fill_(gin[1], 0);
    }
    int64_t bshape[2] = {N, chunk};
    if (st == LFL_OK) st = lfl_empty(2, bshape, dt, LFL_CPU, &buf);
    if (st == LFL_OK && N > 0 && H > 0) {
        const char *ph = lfl_data(h), *pw = lfl_data(w);
        void *pb = lfl_data(buf);
        for (int64_t v0 = 0; v0 < V && st == LFL_OK; v0 += chunk) {
            int64_t cw = V - v0 < chunk ? V - v0 : chunk;
            const char *wc = pw + (size_t)(v0 * H) * lfl_dtype_size(w->dtype);
            st = chunk_logits(dt, ph, w->dtype, pw, pb, N, H, v0, cw);
            if (st) break;
            lfl_loss_softmax_grad(dt, pb, pb, N, cw, cw, lfl_data(lab), v0, lfl_data(lse), coef);
            if (need_h) st = chunk_dh(dt, pb, w->dtype, wc, N, H, cw, lfl_data(gin[0])); /* += dlogits @ w_c */
            if (need_w) { /* dw_c[cw, H] = dlogits^T @ hidden */
                char *dwc = (char *)lfl_data(gin[1]) + (size_t)(v0 * H) * es;
                lfl_gemm_typed(dt, true, false, cw, H, N, 1.0, pb, cw, ph, H, 0.0, dwc, H);
            }
        }
    }
    free(coef);
    lfl_tensor_release(buf);
    return st;
}

lfl_status lfl_linear_cross_entropy(lfl_tensor *hidden, lfl_tensor *w, lfl_tensor *labels,
                                    lfl_reduction r, int64_t chunk, lfl_tensor **out)
{
    const char *op = "linear_cross_entropy";
    char bh[128], bw[128];
    if (r != LFL_REDUCE_MEAN && r != LFL_REDUCE_SUM && r != LFL_REDUCE_NONE)
        return lfl_fail(LFL_ERR_ARG, "%s: unknown reduction %d", op, (int)r);
    LFL_TRY(lfl_check_same_device(op, hidden, w));
    if (lfl_is_lowp(w->dtype)) {
        if (hidden->dtype != LFL_F32)
            return lfl_fail(LFL_ERR_ARG, "%s: a %s w takes f32 hidden, got %s", op, lfl_dtype_name(w->dtype),
                            lfl_dtype_name(hidden->dtype));
    } else {
        LFL_TRY(lfl_check_same_dtype(op, hidden, w));
    }
    LFL_TRY(lfl_check_float(op, hidden));
    if (hidden->dtype != LFL_F32 && hidden->dtype != LFL_F64)
        return lfl_fail(LFL_ERR_ARG, "%s: hidden and w must be f32 or f64, got %s", op, lfl_dtype_name(hidden->dtype));
    if (hidden->device != LFL_CPU) return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: CUDA tensors are not supported yet", op);
    if (w->ndim != 2 || hidden->ndim < 1 || hidden->shape[hidden->ndim - 1] != w->shape[1])
        return lfl_fail(LFL_ERR_ARG, "%s: hidden %s does not match w %s (want hidden [..., H], w [V, H])", op,
                        lfl_shape_str(hidden, bh, sizeof bh), lfl_shape_str(w, bw, sizeof bw));
    int64_t V = w->shape[0], H = w->shape[1];
    if (V < 1) return lfl_fail(LFL_ERR_ARG, "%s: w %s has no classes", op, lfl_shape_str(w, bw, sizeof bw));
    if (chunk < 0) return lfl_fail(LFL_ERR_ARG, "%s: chunk must be >= 0 (0 picks one), got %lld", op, (long long)chunk);
    int64_t N = 1;
    for (int d = 0; d < hidden->ndim - 1; d++) N *= hidden->shape[d];
    if (N > INT32_MAX || V > INT32_MAX || H > INT32_MAX)
        return lfl_fail(LFL_ERR_ARG, "%s: dims beyond 2^31 are not supported by the GEMM", op);
    size_t es = lfl_dtype_size(hidden->dtype);
    if (chunk == 0) chunk = default_chunk(N, V, es);
    if (chunk > V) chunk = V;

    lfl_tensor *lab, *ch = NULL, *cw = NULL, *lse = NULL, *buf = NULL, *o = NULL, *dh = NULL;
    bool eager = lfl_grad_enabled() && hidden->requires_grad && !w->requires_grad;
    LFL_TRY(lfl_loss_labels(op, labels, hidden->ndim - 1, hidden->shape, V, &lab));
    lfl_status st = lfl_contiguous(hidden, &ch);
    if (st == LFL_OK) st = lfl_contiguous(w, &cw);
    if (st == LFL_OK) st = lfl_empty(1, &N, LFL_F64, LFL_CPU, &lse);
    int64_t bshape[2] = {N, chunk}, count = 0;
    if (st == LFL_OK) st = lfl_empty(2, bshape, hidden->dtype, LFL_CPU, &buf);
    double *m = NULL;
    int64_t dshape[2] = {N, H};
    if (st == LFL_OK && eager) st = lfl_zeros(2, dshape, hidden->dtype, LFL_CPU, &dh);
    if (st == LFL_OK && !(m = malloc(sizeof(double) * (size_t)(4 * N + 1))))
        st = lfl_fail(LFL_ERR_MEM, "%s: out of memory", op);
    if (st == LFL_OK) {
        double *s = m + N, *picked = s + N, *rescale = picked + N, *pl = lfl_data(lse);
        const int64_t *pb = lfl_data(lab);
        for (int64_t i = 0; i < N; i++) { m[i] = -INFINITY; s[i] = 0; picked[i] = 0; }
        for (int64_t v0 = 0; N > 0 && v0 < V && st == LFL_OK; v0 += chunk) {
            int64_t cwid = V - v0 < chunk ? V - v0 : chunk;
            st = chunk_logits(hidden->dtype, lfl_data(ch), cw->dtype, lfl_data(cw), lfl_data(buf), N, H, v0, cwid);
            if (st) break;
            if (!eager) {
                lfl_loss_lse_block(hidden->dtype, lfl_data(buf), N, cwid, cwid, pb, v0, m, s, picked);
                continue;
            }
            lfl_loss_lse_exp_block(hidden->dtype, lfl_data(buf), N, cwid, cwid, pb, v0, m, s, picked, rescale);
            if (v0 > 0) rescale_rows(hidden->dtype, lfl_data(dh), rescale, N, H);
            const char *wc = (const char *)lfl_data(cw) + (size_t)(v0 * H) * lfl_dtype_size(cw->dtype);
            if (H > 0) st = chunk_dh(hidden->dtype, lfl_data(buf), cw->dtype, wc, N, H, cwid, lfl_data(dh));
        }
        if (st == LFL_OK && eager && H > 0) eager_finish(hidden->dtype, lfl_data(dh), cw->dtype, lfl_data(cw), pb, s, N, H);
        for (int64_t i = 0; i < N && st == LFL_OK; i++) {
            pl[i] = m[i] + log(s[i]);
            picked[i] = pb[i] == LFL_IGNORE_INDEX ? 0.0 : pl[i] - picked[i];
        }
        if (st == LFL_OK) st = lfl_loss_reduce(picked, pb, N, r, lab->ndim, lab->shape, hidden->dtype, &o, &count);
    }
    free(m);
    lfl_tensor_release(buf); /* freed before backward: the chunk buffer is rebuilt there */
    if (st == LFL_OK) {
        lfl_tensor *in[2] = {hidden, w};
        lfl_node *n = lfl_node_begin(op, lce_backward, 2, in, 1);
        if (n) {
            n->iarg[0] = r;
            n->iarg[1] = N;
            n->iarg[2] = V;
            n->iarg[3] = H;
            n->iarg[4] = count;
            n->iarg[5] = chunk;
            n->iarg[6] = eager;
            lfl_node_save(n, ch);
            lfl_node_save(n, cw);
            lfl_node_save(n, lab);
            lfl_node_save(n, lse);
            if (eager) lfl_node_save(n, dh);
            lfl_node_set_output(n, o, 0);
            lfl_node_release(n);
        }
        *out = o;
    }
    lfl_tensor_release(lab);
    lfl_tensor_release(ch);
    lfl_tensor_release(cw);
    lfl_tensor_release(lse);
    lfl_tensor_release(dh);
    return st;
}
