/* rmsnorm: x[..., H] * rsqrt(mean(x^2) + eps) * w[H], as HF's LlamaRMSNorm
 * computes it in f32 (here in the input's dtype, f32 or f64; the sum of squares
 * is accumulated in double). Gemma's (1 + w) is the caller passing w + 1.
 * Backward, with r = rsqrt(mean(x^2) + eps) saved per row:
 *   dx = r * g * w - x * r^3 / H * sum(g * w * x),   dw = sum_rows g * x * r */
#include "rows.h"

/* Row sums in double over 8 independent lanes: one running sum waits on the
 * add latency at every element, which made the norm cost a tenth of a GEMM. */
#define ROW_SUMS(T)                                                                 \
    static double sumsq_##T(const T *x, int64_t n)                                  \
    {                                                                               \
        double a[8] = {0};                                                          \
        int64_t j = 0;                                                              \
        for (; j + 8 <= n; j += 8)                                                  \
            for (int l = 0; l < 8; l++) a[l] += (double)x[j + l] * (double)x[j + l]; \
        double s = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7])); \
        for (; j < n; j++) s += (double)x[j] * (double)x[j];                        \
        return s;                                                                   \
    }                                                                               \
    static double dot3_##T(const T *g, const T *w, const T *x, int64_t n)           \
    {                                                                               \
        double a[8] = {0};                                                          \
        int64_t j = 0;                                                              \
        for (; j + 8 <= n; j += 8)                                                  \
            for (int l = 0; l < 8; l++) a[l] += (double)g[j + l] * w[j + l] * x[j + l]; \
        double s = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7])); \
        for (; j < n; j++) s += (double)g[j] * w[j] * x[j];                         \
        return s;                                                                   \
    }
ROW_SUMS(float)
ROW_SUMS(double)

#define RMS_FORWARD(T)                                                              \
    do {                                                                            \
        const T *pw = lfl_data(wc);                                                 \
        T *po = lfl_data(o), *pr = lfl_data(rstd);                                  \
        const T *xbase = lfl_data(xr);                                              \
        _Pragma("omp parallel for if (rows * H > LFL_OMP_MIN)")                     \
        for (int64_t r = 0; r < rows; r++) {                                        \
            const T *px = xbase + lfl_row_offset(xr, r);                            \
            T *py = po + r * H;                                                     \
            double ss = sumsq_##T(px, H);                                           \
            T var = (T)(ss / (double)H);                                            \
            T rs = (T)1 / (T)sqrt((double)(var + (T)eps));                          \
            pr[r] = rs;                                                             \
            for (int64_t j = 0; j < H; j++) py[j] = pw[j] * (px[j] * rs);           \
        }                                                                           \
    } while (0)

#define RMS_BACKWARD(T)                                                             \
    do {                                                                            \
        const T *pw = lfl_data(w), *pr = lfl_data(rstd), *pg = lfl_data(g);         \
        const T *xbase = lfl_data(x);                                               \
        T *pdx = dx ? lfl_data(dx) : NULL;                                          \
        _Pragma("omp parallel for schedule(static) if (rows * H > LFL_OMP_MIN)")    \
        for (int64_t c = 0; c < nch; c++) {                                         \
            int64_t r0 = c * per, r1 = r0 + per < rows ? r0 + per : rows;           \
            double *acc = part ? part + c * H : NULL;                               \
            for (int64_t r = r0; r < r1; r++) {                                     \
                const T *px = xbase + lfl_row_offset(x, r), *gr = pg + r * H;       \
                T rs = pr[r];                                                       \
                if (pdx) {                                                          \
                    double dot = dot3_##T(gr, pw, px, H);                           \
                    T k = (T)((double)rs * rs * rs * dot / (double)H);              \
                    T *d = pdx + r * H;                                             \
                    for (int64_t j = 0; j < H; j++) d[j] = rs * gr[j] * pw[j] - px[j] * k; \
                }                                                                   \
                if (acc)                                                            \
                    for (int64_t j = 0; j < H; j++) acc[j] += (double)(gr[j] * px[j] * rs); \
            }                                                                       \
        }                                                                           \
        if (part) {                                                                 \
            T *pdw = lfl_data(dw);                                                  \
            for (int64_t j = 0; j < H; j++) {                                       \
                double s = 0;                                                       \
                for (int64_t c = 0; c < nch; c++) s += part[c * H + j];             \
                pdw[j] = (T)s;                                                      \
            }                                                                       \
        }                                                                           \
    } while (0)

lfl_status lfl_cpu_rmsnorm_backward(lfl_tensor *g, lfl_tensor *x, lfl_tensor *w, lfl_tensor *rstd, lfl_tensor *dx,
                                    lfl_tensor *dw)
{
    int64_t H = w->shape[0], rows = lfl_numel(rstd);
    int64_t nch = lfl_row_chunks(rows), per = (rows + nch - 1) / nch;
    double *part = NULL;
    if (dw && !(part = calloc((size_t)(nch * H) + 1, sizeof *part)))
        return lfl_fail(LFL_ERR_MEM, "rmsnorm backward: out of memory for %lld partial sums", (long long)(nch * H));
    if (rows > 0 && H > 0) {
        if (x->dtype == LFL_F32) RMS_BACKWARD(float);
        else RMS_BACKWARD(double);
    } else if (dw) {
        lfl_fill_(dw, 0);
    }
    free(part);
    return LFL_OK;
}

static lfl_status rmsnorm_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    lfl_tensor *x = n->saved[0], *w = n->saved[1], *rstd = n->saved[2], *g = NULL, *dx = NULL, *dw = NULL;
    int64_t H = n->iarg[1];
    lfl_rmsnorm_backward_kernel fn;
    LFL_TRY(lfl_dispatch_rmsnorm_backward(x->device, NULL, &fn));
    LFL_TRY(lfl_contiguous(gout[0], &g));
    lfl_status st = LFL_OK;
    if (lfl_node_needs(n, 0)) st = lfl_empty(n->in[0].ndim, n->in[0].shape, x->dtype, x->device, &dx);
    if (st == LFL_OK && lfl_node_needs(n, 1)) st = lfl_empty(1, &H, x->dtype, x->device, &dw);
    if (st == LFL_OK) st = fn(g, x, w, rstd, dx, dw);
    lfl_tensor_release(g);
    if (st) { lfl_tensor_release(dx); lfl_tensor_release(dw); return st; }
    gin[0] = dx;
    gin[1] = dw;
    return LFL_OK;
}

lfl_status lfl_cpu_rmsnorm(lfl_tensor *xr, lfl_tensor *wc, double eps, lfl_tensor *o, lfl_tensor *rstd)
{
    int64_t H = wc->shape[0], rows = lfl_numel(rstd);
    if (rows > 0) {
        if (xr->dtype == LFL_F32) RMS_FORWARD(float);
        else RMS_FORWARD(double);
    }
    return LFL_OK;
}

lfl_status lfl_rmsnorm(lfl_tensor *x, lfl_tensor *w, double eps, lfl_tensor **out)
{
    char bx[128], bw[128];
    LFL_TRY(lfl_nn_check("rmsnorm", x, "input", NULL));
    LFL_TRY(lfl_nn_check("rmsnorm", w, "weight", x));
    if (x->ndim < 1 || w->ndim != 1 || w->shape[0] != x->shape[x->ndim - 1])
        return lfl_fail(LFL_ERR_ARG, "rmsnorm: weight %s does not match input %s (want [H] with H the last dim)",
                        lfl_shape_str(w, bw, sizeof bw), lfl_shape_str(x, bx, sizeof bx));
    if (w->dtype != x->dtype)
        return lfl_fail(LFL_ERR_ARG, "rmsnorm: weight is %s but input is %s (cast one of them)",
                        lfl_dtype_name(w->dtype), lfl_dtype_name(x->dtype));
    if (!(eps >= 0)) return lfl_fail(LFL_ERR_ARG, "rmsnorm: eps must be >= 0, got %g", eps);
    lfl_rmsnorm_kernel fn;
    LFL_TRY(lfl_dispatch_rmsnorm(x->device, NULL, &fn));
    int64_t H = x->shape[x->ndim - 1], rows = H ? lfl_numel(x) / H : 0;
    lfl_tensor *xr = NULL, *wc = NULL, *o = NULL, *rstd = NULL;
    lfl_status st = lfl_rows_ready(x, &xr);
    if (st == LFL_OK) st = lfl_contiguous(w, &wc);
    if (st == LFL_OK) st = lfl_empty(x->ndim, x->shape, x->dtype, x->device, &o);
    if (st == LFL_OK) st = lfl_empty(1, &rows, x->dtype, x->device, &rstd);
    if (st == LFL_OK) st = fn(xr, wc, eps, o, rstd);
    if (st == LFL_OK) {
        lfl_tensor *in[2] = {x, w};
        lfl_node *n = lfl_node_begin("rmsnorm", rmsnorm_backward, 2, in, 1);
        if (n) {
            n->iarg[0] = rows;
            n->iarg[1] = H;
            n->farg[0] = eps;
            lfl_node_save(n, xr);
            lfl_node_save(n, wc);
            lfl_node_save(n, rstd);
            lfl_node_set_output(n, o, 0);
            lfl_node_release(n);
        }
        *out = o;
        o = NULL;
    }
    lfl_tensor_release(xr);
    lfl_tensor_release(wc);
    lfl_tensor_release(rstd);
    lfl_tensor_release(o);
    return st;
}
