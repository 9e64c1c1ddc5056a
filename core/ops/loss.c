/* Shared pieces of the loss ops: label checks, the per-row reduction
 * coefficient, the row kernels (online log-sum-exp, softmax gradient) and
 * the chunk GEMM of the fused head ops.
 * The f32 kernels use a branch-free exp so the row loops vectorise: with
 * V in the tens of thousands the exps cost as much as a small GEMM. */
#include "vmath.h"
#include <math.h>
#include <string.h>
#include "../blas.h"
#include "../iter.h"
#include "loss.h"
#include "lowp.h"

const char *lfl_reduction_name(lfl_reduction r)
{
    return r == LFL_REDUCE_MEAN ? "mean" : r == LFL_REDUCE_SUM ? "sum" : "none";
}

lfl_status lfl_loss_labels(const char *op, lfl_tensor *labels, int device, int nd, const int64_t *shape,
                           lfl_tensor **out)
{
    char bl[128];
    if (labels->dtype != LFL_I64 && labels->dtype != LFL_I32)
        return lfl_fail(LFL_ERR_ARG, "%s: labels must be i64 (or i32) class ids, got %s", op,
                        lfl_dtype_name(labels->dtype));
    if (labels->device != device) return lfl_fail(LFL_ERR_DEVICE, "%s: labels are on another device than the logits", op);
    bool same = labels->ndim == nd;
    for (int d = 0; same && d < nd; d++) same = labels->shape[d] == shape[d];
    if (!same) {
        char want[160];
        int k = snprintf(want, sizeof want, "[");
        for (int d = 0; d < nd && k < (int)sizeof want - 24; d++)
            k += snprintf(want + k, sizeof want - (size_t)k, d ? ",%lld" : "%lld", (long long)shape[d]);
        snprintf(want + k, sizeof want - (size_t)k, "]");
        return lfl_fail(LFL_ERR_ARG, "%s: labels %s do not match the logits' leading dims (want %s)", op,
                        lfl_shape_str(labels, bl, sizeof bl), want);
    }
    lfl_tensor *c;
    LFL_TRY(lfl_contiguous(labels, &c));
    lfl_status st = lfl_cast(c, LFL_I64, out);
    lfl_tensor_release(c);
    return st;
}

lfl_status lfl_loss_labels_check(const char *op, const lfl_tensor *labels, int64_t V)
{
    const int64_t *p = lfl_data(labels);
    int64_t n = lfl_numel(labels);
    int nd = labels->ndim;
    const int64_t *shape = labels->shape;
    for (int64_t i = 0; i < n; i++) {
        if (p[i] == LFL_IGNORE_INDEX || (p[i] >= 0 && p[i] < V)) continue;
        /* name the position as a 0-based multi-index over the labels' shape */
        char pos[160];
        int64_t idx[LFL_MAX_DIMS], rem = i;
        for (int d = nd - 1; d >= 0; d--) { idx[d] = rem % shape[d]; rem /= shape[d]; }
        int k = snprintf(pos, sizeof pos, "[");
        for (int d = 0; d < nd && k < (int)sizeof pos - 24; d++)
            k += snprintf(pos + k, sizeof pos - (size_t)k, d ? ",%lld" : "%lld", (long long)idx[d]);
        snprintf(pos + k, sizeof pos - (size_t)k, "]");
        return lfl_fail(LFL_ERR_ARG, "%s: label %lld at position %s (0-based) is outside [0, %lld) "
                        "(V = %lld classes; -100 marks an ignored position)", op, (long long)p[i], pos,
                        (long long)V, (long long)V);
    }
    return LFL_OK;
}

lfl_status lfl_loss_prepare(const char *op, lfl_tensor *logits, lfl_tensor *labels, lfl_tensor **cx,
                            lfl_tensor **cl, int64_t *rows, int64_t *V)
{
    char bx[128];
    LFL_TRY(lfl_check_float(op, logits));
    if (logits->dtype != LFL_F32 && logits->dtype != LFL_F64)
        return lfl_fail(LFL_ERR_ARG, "%s: logits must be f32 or f64, got %s", op, lfl_dtype_name(logits->dtype));
    if (logits->ndim < 1 || logits->shape[logits->ndim - 1] < 1)
        return lfl_fail(LFL_ERR_ARG, "%s: logits %s need a last dim of at least one class", op,
                        lfl_shape_str(logits, bx, sizeof bx));
    *V = logits->shape[logits->ndim - 1];
    *rows = lfl_numel(logits) / *V;
    LFL_TRY(lfl_loss_labels(op, labels, logits->device, logits->ndim - 1, logits->shape, cl));
    lfl_status st = lfl_contiguous(logits, cx);
    if (st) { lfl_tensor_release(*cl); *cl = NULL; }
    return st;
}

lfl_status lfl_loss_output(lfl_reduction r, const lfl_tensor *labels, lfl_dtype dt, int device, lfl_tensor **out)
{
    if (r == LFL_REDUCE_NONE) return lfl_empty(labels->ndim, labels->shape, dt, device, out);
    return lfl_empty(0, NULL, dt, device, out);
}

void lfl_loss_reduce(const double *row, const int64_t *labels, int64_t rows, lfl_reduction r, lfl_tensor *out,
                     int64_t *count)
{
    int64_t cnt = 0;
    double total = 0;
    for (int64_t i = 0; i < rows; i++) {
        if (labels[i] == LFL_IGNORE_INDEX) continue;
        cnt++;
        total += row[i];
    }
    *count = cnt;
    if (r == LFL_REDUCE_NONE) {
        if (out->dtype == LFL_F32) for (int64_t i = 0; i < rows; i++) ((float *)lfl_data(out))[i] = (float)row[i];
        else for (int64_t i = 0; i < rows; i++) ((double *)lfl_data(out))[i] = row[i];
        return;
    }
    /* torch: the mean over zero targets is 0/0 = NaN */
    double v = r == LFL_REDUCE_SUM ? total : cnt ? total / (double)cnt : NAN;
    lfl_set(out, 0, v);
}

lfl_status lfl_loss_row_coef(lfl_tensor *gout, lfl_reduction r, int64_t rows, int64_t count, double sign,
                             double *coef)
{
    lfl_tensor *g;
    LFL_TRY(lfl_contiguous(gout, &g));
    if (r == LFL_REDUCE_NONE) {
        LFL_ASSERT(lfl_numel(g) == rows);
        for (int64_t i = 0; i < rows; i++) coef[i] = sign * lfl_get(g, i);
    } else {
        /* mean over zero counted rows: every row is ignored, so the value is never used */
        double v = sign * lfl_get(g, 0) / (r == LFL_REDUCE_MEAN && count > 0 ? (double)count : 1.0);
        for (int64_t i = 0; i < rows; i++) coef[i] = v;
    }
    lfl_tensor_release(g);
    return LFL_OK;
}

/* One row of an online log-sum-exp block: updates the running max *m and sum
 * *s and takes the label's logit (label: its column here, or out of range). With
 * keep (a constant at each call, so the exp loop stays branch-free) the row
 * becomes exp(x - new max) in place and *rescale = exp(old max - new max)
 * (0 for a row that had no max yet), what a softmax-weighted sum kept
 * against the old max needs. */
static inline __attribute__((always_inline)) void lse_row_f32(float *xr, int64_t n, int64_t label, double *m,
                                                              double *s, double *picked, double *rescale, bool keep)
{
    if (label >= 0 && label < n) *picked = xr[label];
    float cm = -INFINITY;
#pragma omp simd reduction(max : cm)
    for (int64_t j = 0; j < n; j++) cm = xr[j] > cm ? xr[j] : cm;
    double nm = *m > (double)cm ? *m : (double)cm;
    float fm = (float)nm;
    double acc = 0;
    int64_t j = 0;
    /* 16 float lanes (one zmm), flushed to double every 256 terms so long
     * rows keep double accuracy while the exp loop stays vectorised */
    for (; j + 256 <= n; j += 256) {
        float lane[16] = {0};
        for (int64_t b = 0; b < 256; b += 16)
            for (int k = 0; k < 16; k++) {
                float e = lfl_vexpf(xr[j + b + k] - fm);
                if (keep) xr[j + b + k] = e;
                lane[k] += e;
            }
        float t = 0;
        for (int k = 0; k < 16; k++) t += lane[k];
        acc += t;
    }
    for (; j < n; j++) {
        float e = lfl_vexpf(xr[j] - fm);
        if (keep) xr[j] = e;
        acc += e;
    }
    /* exp(-inf - -inf) is NaN: an all -inf row stays NaN, as in torch */
    double f = *m == -INFINITY ? 0.0 : exp(*m - nm);
    if (keep) *rescale = f;
    *s = *s * f + acc;
    *m = nm;
}

static void lse_row_f64(double *xr, int64_t n, int64_t label, double *m, double *s, double *picked, double *rescale)
{
    if (label >= 0 && label < n) *picked = xr[label];
    double cm = -INFINITY;
    for (int64_t j = 0; j < n; j++) cm = xr[j] > cm ? xr[j] : cm;
    double nm = *m > cm ? *m : cm, acc = 0;
    for (int64_t j = 0; j < n; j++) {
        double e = exp(xr[j] - nm);
        if (rescale) xr[j] = e;
        acc += e;
    }
    double f = *m == -INFINITY ? 0.0 : exp(*m - nm);
    if (rescale) *rescale = f;
    *s = *s * f + acc;
    *m = nm;
}

/* the rows of a block; rescale NULL leaves x as it is (lfl_loss_lse_block) */
static void lse_rows(lfl_dtype dt, void *x, int64_t rows, int64_t n, int64_t ld, const int64_t *labels, int64_t v0,
                     double *m, double *s, double *picked, double *rescale)
{
    float *xf = x;
    double *xd = x;
    /* the label's column in this block, -1 for an ignored row */
#define LSE_COL(r) (labels[r] == LFL_IGNORE_INDEX ? -1 : labels[r] - v0)
    if (dt == LFL_F64) {
#pragma omp parallel for schedule(static) if (rows * n > LFL_OMP_MIN)
        for (int64_t r = 0; r < rows; r++)
            lse_row_f64(xd + r * ld, n, LSE_COL(r), m + r, s + r, picked + r, rescale ? rescale + r : NULL);
    } else if (rescale) {
#pragma omp parallel for schedule(static) if (rows * n > LFL_OMP_MIN)
        for (int64_t r = 0; r < rows; r++)
            lse_row_f32(xf + r * ld, n, LSE_COL(r), m + r, s + r, picked + r, rescale + r, true);
    } else {
#pragma omp parallel for schedule(static) if (rows * n > LFL_OMP_MIN)
        for (int64_t r = 0; r < rows; r++) lse_row_f32(xf + r * ld, n, LSE_COL(r), m + r, s + r, picked + r, NULL, false);
    }
#undef LSE_COL
}

void lfl_loss_lse_block(lfl_dtype dt, const void *x, int64_t rows, int64_t n, int64_t ld,
                        const int64_t *labels, int64_t v0, double *m, double *s, double *picked)
{
    lse_rows(dt, (void *)x, rows, n, ld, labels, v0, m, s, picked, NULL); /* reads x only */
}

void lfl_loss_lse_exp_block(lfl_dtype dt, void *x, int64_t rows, int64_t n, int64_t ld, const int64_t *labels,
                            int64_t v0, double *m, double *s, double *picked, double *rescale)
{
    lse_rows(dt, x, rows, n, ld, labels, v0, m, s, picked, rescale);
}

static void grad_rows_f32(const float *x, float *dx, int64_t rows, int64_t n, int64_t ld,
                          const int64_t *labels, int64_t v0, const double *lse, const double *coef)
{
#pragma omp parallel for schedule(static) if (rows * n > LFL_OMP_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * ld;
        float *dr = dx + r * ld;
        if (labels[r] == LFL_IGNORE_INDEX) {
            for (int64_t j = 0; j < n; j++) dr[j] = 0;
            continue;
        }
        float c = (float)coef[r], l = (float)lse[r];
#pragma omp simd
        for (int64_t j = 0; j < n; j++) dr[j] = lfl_vexpf(xr[j] - l) * c;
        int64_t k = labels[r] - v0;
        if (k >= 0 && k < n) dr[k] -= c;
    }
}

static void grad_rows_f64(const double *x, double *dx, int64_t rows, int64_t n, int64_t ld,
                          const int64_t *labels, int64_t v0, const double *lse, const double *coef)
{
#pragma omp parallel for schedule(static) if (rows * n > LFL_OMP_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const double *xr = x + r * ld;
        double *dr = dx + r * ld;
        if (labels[r] == LFL_IGNORE_INDEX) {
            for (int64_t j = 0; j < n; j++) dr[j] = 0;
            continue;
        }
        for (int64_t j = 0; j < n; j++) dr[j] = exp(xr[j] - lse[r]) * coef[r];
        int64_t k = labels[r] - v0;
        if (k >= 0 && k < n) dr[k] -= coef[r];
    }
}

void lfl_loss_softmax_grad(lfl_dtype dt, const void *x, void *dx, int64_t rows, int64_t n, int64_t ld,
                           const int64_t *labels, int64_t v0, const double *lse, const double *coef)
{
    if (dt == LFL_F32) grad_rows_f32(x, dx, rows, n, ld, labels, v0, lse, coef);
    else grad_rows_f64(x, dx, rows, n, ld, labels, v0, lse, coef);
}

int64_t lfl_loss_default_chunk(int64_t N, int64_t V, size_t es)
{
    int64_t c = (int64_t)((8u << 20) / ((size_t)(N > 0 ? N : 1) * es));
    c = c / 64 * 64;
    if (c < 256) c = 256;
    if (c > 8192) c = 8192;
    return c < V ? c : V;
}

lfl_status lfl_loss_chunk_logits(lfl_dtype dt, const void *h, lfl_dtype wdt, const void *w, void *buf, int64_t N,
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
