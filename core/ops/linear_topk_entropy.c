/* linear_topk_entropy: per row of logits = hidden[N, H] @ w[V, H]^T, the
 * entropy of the softmax over the row's k largest logits, -sum p_i log p_i
 * with p = softmax(topk(logits)). This is the token weight of LlamaFactory's
 * EAFT loss (k = 20, taken under no_grad), so the op records no autograd node.
 * Like linear_cross_entropy it never holds the [N, V] logits: V is walked in
 * column chunks of `chunk` (one GEMM each) and every row keeps a min-heap of
 * its k largest values, so the extra memory is one [N, chunk] buffer and
 * [N, k] heap slots. */
#include <math.h>
#include <stdlib.h>
#include "../iter.h"
#include "loss.h"
#include "lowp.h"

/* push x into the min-heap h of n (< cap) or, when full, replace its minimum
 * if x is larger; returns the new size */
static int64_t heap_offer(double *h, int64_t n, int64_t cap, double x)
{
    int64_t i;
    if (n < cap) { /* sift up */
        i = n++;
        while (i > 0 && h[(i - 1) / 2] > x) { h[i] = h[(i - 1) / 2]; i = (i - 1) / 2; }
        h[i] = x;
        return n;
    }
    if (!(x > h[0])) return n;
    i = 0; /* sift down from the root */
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1] < h[c]) c++;
        if (!(h[c] < x)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
    return n;
}

lfl_status lfl_cpu_linear_topk_entropy(lfl_tensor *hidden, lfl_tensor *w, int64_t k, int64_t chunk, lfl_tensor *out)
{
    int64_t H = w->shape[1], V = w->shape[0], N = lfl_numel(hidden) / (H > 0 ? H : 1);
    if (H == 0) N = lfl_numel(out);
    lfl_dtype dt = hidden->dtype;
    int64_t bshape[2] = {N, chunk};
    lfl_tensor *buf = NULL;
    lfl_status st = lfl_empty(2, bshape, dt, LFL_CPU, &buf);
    double *heap = NULL;
    int64_t *fill = NULL;
    if (st == LFL_OK && (!(heap = malloc(sizeof(double) * (size_t)(N * k + 1))) ||
                         !(fill = calloc((size_t)N + 1, sizeof(int64_t)))))
        st = lfl_fail(LFL_ERR_MEM, "linear_topk_entropy: out of memory");
    for (int64_t v0 = 0; st == LFL_OK && N > 0 && v0 < V; v0 += chunk) {
        int64_t cw = V - v0 < chunk ? V - v0 : chunk;
        st = lfl_loss_chunk_logits(dt, lfl_data(hidden), w->dtype, lfl_data(w), lfl_data(buf), N, H, v0, cw);
        if (st) break;
        const void *b = lfl_data(buf);
#pragma omp parallel for schedule(static) if (N * cw > LFL_OMP_MIN)
        for (int64_t r = 0; r < N; r++) {
            double *h = heap + r * k;
            int64_t n = fill[r];
            if (dt == LFL_F32) {
                const float *x = (const float *)b + r * cw;
                for (int64_t j = 0; j < cw; j++) n = heap_offer(h, n, k, x[j]);
            } else {
                const double *x = (const double *)b + r * cw;
                for (int64_t j = 0; j < cw; j++) n = heap_offer(h, n, k, x[j]);
            }
            fill[r] = n;
        }
    }
    if (st == LFL_OK) {
        void *po = lfl_data(out);
        for (int64_t r = 0; r < N; r++) {
            const double *h = heap + r * k;
            double m = -INFINITY, s = 0, e = 0;
            for (int64_t i = 0; i < k; i++) if (h[i] > m) m = h[i];
            for (int64_t i = 0; i < k; i++) s += exp(h[i] - m);
            double lse = m + log(s);
            for (int64_t i = 0; i < k; i++) e -= exp(h[i] - lse) * (h[i] - lse);
            if (dt == LFL_F32) ((float *)po)[r] = (float)e;
            else ((double *)po)[r] = e;
        }
    }
    free(heap);
    free(fill);
    lfl_tensor_release(buf);
    return st;
}

lfl_status lfl_linear_topk_entropy(lfl_tensor *hidden, lfl_tensor *w, int64_t k, int64_t chunk, lfl_tensor **out)
{
    const char *op = "linear_topk_entropy";
    char bh[128], bw[128];
    LFL_TRY(lfl_check_same_device(op, hidden, w));
    if (lfl_is_lowp(w->dtype)) {
        if (hidden->dtype != LFL_F32)
            return lfl_fail(LFL_ERR_ARG, "%s: a %s w takes f32 hidden, got %s", op, lfl_dtype_name(w->dtype),
                            lfl_dtype_name(hidden->dtype));
    } else {
        LFL_TRY(lfl_check_same_dtype(op, hidden, w));
    }
    if (hidden->dtype != LFL_F32 && hidden->dtype != LFL_F64)
        return lfl_fail(LFL_ERR_ARG, "%s: hidden and w must be f32 or f64, got %s", op, lfl_dtype_name(hidden->dtype));
    if (w->ndim != 2 || hidden->ndim < 1 || hidden->shape[hidden->ndim - 1] != w->shape[1])
        return lfl_fail(LFL_ERR_ARG, "%s: hidden %s does not match w %s (want hidden [..., H], w [V, H])", op,
                        lfl_shape_str(hidden, bh, sizeof bh), lfl_shape_str(w, bw, sizeof bw));
    int64_t V = w->shape[0], H = w->shape[1];
    if (k < 1 || k > V)
        return lfl_fail(LFL_ERR_ARG, "%s: k must be in [1, V = %lld] (the row's k largest logits), got %lld", op,
                        (long long)V, (long long)k);
    if (chunk < 0) return lfl_fail(LFL_ERR_ARG, "%s: chunk must be >= 0 (0 picks one), got %lld", op, (long long)chunk);
    int64_t N = 1;
    for (int d = 0; d < hidden->ndim - 1; d++) N *= hidden->shape[d];
    if (N > INT32_MAX || V > INT32_MAX || H > INT32_MAX)
        return lfl_fail(LFL_ERR_ARG, "%s: dims beyond 2^31 are not supported by the GEMM", op);
    if (chunk == 0) chunk = lfl_loss_default_chunk(N, V, lfl_dtype_size(hidden->dtype));
    if (chunk > V) chunk = V;
    lfl_linear_topk_entropy_kernel fn;
    LFL_TRY(lfl_dispatch_linear_topk_entropy(hidden->device, NULL, &fn));
    lfl_tensor *ch = NULL, *cw = NULL, *o = NULL;
    lfl_status st = lfl_contiguous(hidden, &ch);
    if (st == LFL_OK) st = lfl_contiguous(w, &cw);
    if (st == LFL_OK) st = lfl_empty(hidden->ndim - 1, hidden->shape, hidden->dtype, hidden->device, &o);
    if (st == LFL_OK) st = fn(ch, cw, k, chunk, o);
    lfl_tensor_release(ch);
    lfl_tensor_release(cw);
    if (st) { lfl_tensor_release(o); return st; }
    *out = o;
    return LFL_OK;
}
