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
static void eager_backward(const lfl_tensor *dh, const double *coef, int64_t N, int64_t H, lfl_tensor *out)
{
    void *d = lfl_data(out);
    const void *src = lfl_data(dh);
#pragma omp parallel for schedule(static) if (N * H > LFL_OMP_MIN)
    for (int64_t r = 0; r < N; r++)
        for (int64_t j = 0; j < H; j++) {
            if (dh->dtype == LFL_F32) ((float *)d)[r * H + j] = ((const float *)src)[r * H + j] * (float)coef[r];
            else ((double *)d)[r * H + j] = ((const double *)src)[r * H + j] * coef[r];
        }
}

lfl_status lfl_cpu_linear_cross_entropy_backward(const lfl_lce_args *p, lfl_tensor *g, lfl_tensor *lse, int64_t count,
                                                 lfl_tensor *eager, lfl_tensor *dh, lfl_tensor *dw)
{
    lfl_tensor *h = p->hidden, *w = p->w, *lab = p->labels, *buf = NULL;
    int64_t N = p->N, V = p->V, H = p->H, chunk = p->chunk;
    lfl_dtype dt = h->dtype;
    size_t es = lfl_dtype_size(dt);
    double *coef = malloc(sizeof(double) * (size_t)(N ? N : 1));
    if (!coef) return lfl_fail(LFL_ERR_MEM, "linear_cross_entropy backward: out of memory");
    lfl_status st = lfl_loss_row_coef(g, p->r, N, count, 1.0, coef);
    if (eager) { /* w needs no gradient, dhidden was computed by the forward */
        LFL_ASSERT(!dw);
        if (st == LFL_OK && dh) eager_backward(eager, coef, N, H, dh);
        free(coef);
        return st;
    }
    /* every chunk of dw is written by its GEMM unless there is none */
    if (st == LFL_OK && dw && (N == 0 || H == 0)) lfl_fill_(dw, 0);
    int64_t bshape[2] = {N, chunk};
    if (st == LFL_OK) st = lfl_empty(2, bshape, dt, LFL_CPU, &buf);
    if (st == LFL_OK && N > 0 && H > 0) {
        const char *ph = lfl_data(h), *pw = lfl_data(w);
        void *pb = lfl_data(buf);
        for (int64_t v0 = 0; v0 < V && st == LFL_OK; v0 += chunk) {
            int64_t cw = V - v0 < chunk ? V - v0 : chunk;
            const char *wc = pw + (size_t)(v0 * H) * lfl_dtype_size(w->dtype);
            st = lfl_loss_chunk_logits(dt, ph, w->dtype, pw, pb, N, H, v0, cw);
            if (st) break;
            lfl_loss_softmax_grad(dt, pb, pb, N, cw, cw, lfl_data(lab), v0, lfl_data(lse), coef);
            if (dh) st = chunk_dh(dt, pb, w->dtype, wc, N, H, cw, lfl_data(dh)); /* += dlogits @ w_c */
            if (dw) { /* dw_c[cw, H] = dlogits^T @ hidden */
                char *dwc = (char *)lfl_data(dw) + (size_t)(v0 * H) * es;
                lfl_gemm_typed(dt, true, false, cw, H, N, 1.0, pb, cw, ph, H, 0.0, dwc, H);
            }
        }
    }
    free(coef);
    lfl_tensor_release(buf);
    return st;
}

static lfl_status lce_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    lfl_lce_args p = {n->saved[0], n->saved[1], n->saved[2], n->iarg[1], n->iarg[2], n->iarg[3], n->iarg[5],
                      (lfl_reduction)n->iarg[0]};
    lfl_tensor *lse = n->saved[3], *eager = n->iarg[6] ? n->saved[4] : NULL, *dh = NULL, *dw = NULL;
    lfl_dtype dt = p.hidden->dtype;
    int dev = p.hidden->device;
    lfl_linear_cross_entropy_backward_kernel fn;
    LFL_TRY(lfl_dispatch_linear_cross_entropy_backward(dev, NULL, &fn));
    lfl_status st = LFL_OK;
    if (lfl_node_needs(n, 0)) {
        /* the eager form writes every element; the chunked one accumulates */
        if (eager) st = lfl_empty(n->in[0].ndim, n->in[0].shape, dt, dev, &dh);
        else st = lfl_zeros(n->in[0].ndim, n->in[0].shape, dt, dev, &dh);
    }
    if (st == LFL_OK && lfl_node_needs(n, 1)) st = lfl_empty(2, p.w->shape, dt, dev, &dw);
    if (st == LFL_OK) st = fn(&p, gout[0], lse, n->iarg[4], eager, dh, dw);
    if (st) { lfl_tensor_release(dh); lfl_tensor_release(dw); return st; }
    gin[0] = dh;
    gin[1] = dw;
    return LFL_OK;
}

lfl_status lfl_cpu_linear_cross_entropy(const lfl_lce_args *p, lfl_tensor *lse, lfl_tensor *o, lfl_tensor *dh,
                                        int64_t *count)
{
    LFL_TRY(lfl_loss_labels_check("linear_cross_entropy", p->labels, p->V));
    lfl_tensor *ch = p->hidden, *cw = p->w, *lab = p->labels, *buf = NULL;
    int64_t N = p->N, V = p->V, H = p->H, chunk = p->chunk;
    bool eager = dh != NULL;
    int64_t bshape[2] = {N, chunk};
    lfl_status st = lfl_empty(2, bshape, ch->dtype, LFL_CPU, &buf);
    double *m = NULL;
    if (st == LFL_OK && !(m = malloc(sizeof(double) * (size_t)(4 * N + 1))))
        st = lfl_fail(LFL_ERR_MEM, "linear_cross_entropy: out of memory");
    if (st == LFL_OK) {
        double *s = m + N, *picked = s + N, *rescale = picked + N, *pl = lfl_data(lse);
        const int64_t *pb = lfl_data(lab);
        for (int64_t i = 0; i < N; i++) { m[i] = -INFINITY; s[i] = 0; picked[i] = 0; }
        for (int64_t v0 = 0; N > 0 && v0 < V && st == LFL_OK; v0 += chunk) {
            int64_t cwid = V - v0 < chunk ? V - v0 : chunk;
            st = lfl_loss_chunk_logits(ch->dtype, lfl_data(ch), cw->dtype, lfl_data(cw), lfl_data(buf), N, H, v0,
                                       cwid);
            if (st) break;
            if (!eager) {
                lfl_loss_lse_block(ch->dtype, lfl_data(buf), N, cwid, cwid, pb, v0, m, s, picked);
                continue;
            }
            lfl_loss_lse_exp_block(ch->dtype, lfl_data(buf), N, cwid, cwid, pb, v0, m, s, picked, rescale);
            if (v0 > 0) rescale_rows(ch->dtype, lfl_data(dh), rescale, N, H);
            const char *wc = (const char *)lfl_data(cw) + (size_t)(v0 * H) * lfl_dtype_size(cw->dtype);
            if (H > 0) st = chunk_dh(ch->dtype, lfl_data(buf), cw->dtype, wc, N, H, cwid, lfl_data(dh));
        }
        if (st == LFL_OK && eager && H > 0) eager_finish(ch->dtype, lfl_data(dh), cw->dtype, lfl_data(cw), pb, s, N, H);
        for (int64_t i = 0; i < N && st == LFL_OK; i++) {
            pl[i] = m[i] + log(s[i]);
            picked[i] = pb[i] == LFL_IGNORE_INDEX ? 0.0 : pl[i] - picked[i];
        }
        if (st == LFL_OK) lfl_loss_reduce(picked, pb, N, p->r, o, count);
    }
    free(m);
    lfl_tensor_release(buf); /* freed before backward: the chunk buffer is rebuilt there */
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
    if (chunk == 0) chunk = lfl_loss_default_chunk(N, V, es);
    if (chunk > V) chunk = V;
    lfl_linear_cross_entropy_kernel fn;
    LFL_TRY(lfl_dispatch_linear_cross_entropy(hidden->device, NULL, &fn));

    lfl_tensor *lab, *ch = NULL, *cw = NULL, *lse = NULL, *o = NULL, *dh = NULL;
    bool eager = lfl_grad_enabled() && hidden->requires_grad && !w->requires_grad;
    LFL_TRY(lfl_loss_labels(op, labels, hidden->device, hidden->ndim - 1, hidden->shape, &lab));
    int64_t count = 0, dshape[2] = {N, H};
    lfl_status st = lfl_contiguous(hidden, &ch);
    if (st == LFL_OK) st = lfl_contiguous(w, &cw);
    if (st == LFL_OK) st = lfl_empty(1, &N, LFL_F64, hidden->device, &lse);
    if (st == LFL_OK) st = lfl_loss_output(r, lab, hidden->dtype, hidden->device, &o);
    if (st == LFL_OK && eager) st = lfl_zeros(2, dshape, hidden->dtype, hidden->device, &dh);
    lfl_lce_args p = {ch, cw, lab, N, V, H, chunk, r};
    if (st == LFL_OK) st = fn(&p, lse, o, dh, &count);
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
    } else {
        lfl_tensor_release(o);
    }
    lfl_tensor_release(lab);
    lfl_tensor_release(ch);
    lfl_tensor_release(cw);
    lfl_tensor_release(lse);
    lfl_tensor_release(dh);
    return st;
}
