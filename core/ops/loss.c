/* Shared pieces of the loss ops: label checks, the per-row reduction
 * coefficient, and the row kernels (online log-sum-exp, softmax gradient).
 * The f32 kernels use a branch-free exp so the row loops vectorise: with
 * V in the tens of thousands the exps cost as much as a small GEMM. */
#include "vexp.h"
#include <math.h>
#include "../iter.h"
#include "loss.h"

const char *lfl_reduction_name(lfl_reduction r)
{
    return r == LFL_REDUCE_MEAN ? "mean" : r == LFL_REDUCE_SUM ? "sum" : "none";
}

lfl_status lfl_loss_labels(const char *op, lfl_tensor *labels, int nd, const int64_t *shape, int64_t V,
                           lfl_tensor **out)
{
    char bl[128];
    if (labels->dtype != LFL_I64 && labels->dtype != LFL_I32)
        return lfl_fail(LFL_ERR_ARG, "%s: labels must be i64 (or i32) class ids, got %s", op,
                        lfl_dtype_name(labels->dtype));
    if (labels->device != LFL_CPU)
        return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: CUDA tensors are not supported yet", op);
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
    lfl_tensor *c, *c64;
    LFL_TRY(lfl_contiguous(labels, &c));
    lfl_status st = lfl_cast(c, LFL_I64, &c64);
    lfl_tensor_release(c);
    LFL_TRY(st);
    const int64_t *p = lfl_data(c64);
    int64_t n = lfl_numel(c64);
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
        lfl_tensor_release(c64);
        return lfl_fail(LFL_ERR_ARG, "%s: label %lld at position %s (0-based) is outside [0, %lld) "
                        "(V = %lld classes; -100 marks an ignored position)", op, (long long)p[i], pos,
                        (long long)V, (long long)V);
    }
    *out = c64;
    return LFL_OK;
}

lfl_status lfl_loss_prepare(const char *op, lfl_tensor *logits, lfl_tensor *labels, lfl_tensor **cx,
                            lfl_tensor **cl, int64_t *rows, int64_t *V)
{
    char bx[128];
    LFL_TRY(lfl_check_float(op, logits));
    if (logits->dtype != LFL_F32 && logits->dtype != LFL_F64)
        return lfl_fail(LFL_ERR_ARG, "%s: logits must be f32 or f64, got %s", op, lfl_dtype_name(logits->dtype));
    if (logits->device != LFL_CPU) return lfl_fail(LFL_ERR_UNSUPPORTED, "%s: CUDA tensors are not supported yet", op);
    if (logits->ndim < 1 || logits->shape[logits->ndim - 1] < 1)
        return lfl_fail(LFL_ERR_ARG, "%s: logits %s need a last dim of at least one class", op,
                        lfl_shape_str(logits, bx, sizeof bx));
    *V = logits->shape[logits->ndim - 1];
    *rows = lfl_numel(logits) / *V;
    LFL_TRY(lfl_loss_labels(op, labels, logits->ndim - 1, logits->shape, *V, cl));
    lfl_status st = lfl_contiguous(logits, cx);
    if (st) { lfl_tensor_release(*cl); *cl = NULL; }
    return st;
}

lfl_status lfl_loss_reduce(const double *row, const int64_t *labels, int64_t rows, lfl_reduction r,
                           int nd, const int64_t *shape, lfl_dtype dt, lfl_tensor **out, int64_t *count)
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
        LFL_TRY(lfl_empty(nd, shape, dt, LFL_CPU, out));
        if (dt == LFL_F32) for (int64_t i = 0; i < rows; i++) ((float *)lfl_data(*out))[i] = (float)row[i];
        else for (int64_t i = 0; i < rows; i++) ((double *)lfl_data(*out))[i] = row[i];
        return LFL_OK;
    }
    /* torch: the mean over zero targets is 0/0 = NaN */
    double v = r == LFL_REDUCE_SUM ? total : cnt ? total / (double)cnt : NAN;
    return lfl_full(0, NULL, v, dt, LFL_CPU, out);
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

static void lse_rows_f32(const float *x, int64_t rows, int64_t n, int64_t ld, const int64_t *labels,
                         int64_t v0, double *m, double *s, double *picked)
{
#pragma omp parallel for schedule(static) if (rows * n > LFL_OMP_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * ld;
        float cm = -INFINITY;
#pragma omp simd reduction(max : cm)
        for (int64_t j = 0; j < n; j++) cm = xr[j] > cm ? xr[j] : cm;
        double nm = m[r] > (double)cm ? m[r] : (double)cm;
        float fm = (float)nm;
        double acc = 0;
        int64_t j = 0;
        /* 16 float lanes (one zmm), flushed to double every 256 terms so long
         * rows keep double accuracy while the exp loop stays vectorised */
        for (; j + 256 <= n; j += 256) {
            float lane[16] = {0};
            for (int64_t b = 0; b < 256; b += 16)
                for (int k = 0; k < 16; k++) lane[k] += lfl_vexpf(xr[j + b + k] - fm);
            float t = 0;
            for (int k = 0; k < 16; k++) t += lane[k];
            acc += t;
        }
        for (; j < n; j++) acc += lfl_vexpf(xr[j] - fm);
        /* exp(-inf - -inf) is NaN: an all -inf row stays NaN, as in torch */
        s[r] = (m[r] == -INFINITY ? 0.0 : s[r] * exp(m[r] - nm)) + acc;
        m[r] = nm;
        int64_t l = labels[r] - v0;
        if (labels[r] != LFL_IGNORE_INDEX && l >= 0 && l < n) picked[r] = xr[l];
    }
}

static void lse_rows_f64(const double *x, int64_t rows, int64_t n, int64_t ld, const int64_t *labels,
                         int64_t v0, double *m, double *s, double *picked)
{
#pragma omp parallel for schedule(static) if (rows * n > LFL_OMP_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const double *xr = x + r * ld;
        double cm = -INFINITY;
        for (int64_t j = 0; j < n; j++) cm = xr[j] > cm ? xr[j] : cm;
        double nm = m[r] > cm ? m[r] : cm;
        double acc = 0;
        for (int64_t j = 0; j < n; j++) acc += exp(xr[j] - nm);
        s[r] = (m[r] == -INFINITY ? 0.0 : s[r] * exp(m[r] - nm)) + acc;
        m[r] = nm;
        int64_t l = labels[r] - v0;
        if (labels[r] != LFL_IGNORE_INDEX && l >= 0 && l < n) picked[r] = xr[l];
    }
}

void lfl_loss_lse_block(lfl_dtype dt, const void *x, int64_t rows, int64_t n, int64_t ld,
                        const int64_t *labels, int64_t v0, double *m, double *s, double *picked)
{
    if (dt == LFL_F32) lse_rows_f32(x, rows, n, ld, labels, v0, m, s, picked);
    else lse_rows_f64(x, rows, n, ld, labels, v0, m, s, picked);
}

/* lse_rows_* that also leaves exp(x - new max) in the block (in place) and
 * the factor exp(old max - new max) that rescales sums kept against the old
 * max (0 for a row that had none). The label's logit is taken first. */
static void lse_exp_rows_f32(float *x, int64_t rows, int64_t n, int64_t ld, const int64_t *labels, int64_t v0,
                             double *m, double *s, double *picked, double *rescale)
{
#pragma omp parallel for schedule(static) if (rows * n > LFL_OMP_MIN)
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * ld;
        int64_t l = labels[r] - v0;
        if (labels[r] != LFL_IGNORE_INDEX && l >= 0 && l < n) picked[r] = xr[l];
        float cm = -INFINITY;
#pragma omp simd reduction(max : cm)
        for (int64_t j = 0; j < n; j++) cm = xr[j] > cm ? xr[j] : cm;
        double nm = m[r] > (double)cm ? m[r] : (double)cm;
        float fm = (float)nm;
        double acc = 0;
        int64_t j = 0;
        for (; j + 256 <= n; j += 256) { /* float lanes flushed to double, as lse_rows_f32 */
            float lane[16] = {0};
            for (int64_t b = 0; b < 256; b += 16)
                for (int k = 0; k < 16; k++) {
                    float e = lfl_vexpf(xr[j + b + k] - fm);
                    xr[j + b + k] = e;
                    lane[k] += e;
                }
            float t = 0;
            for (int k = 0; k < 16; k++) t += lane[k];
            acc += t;
        }
        for (; j < n; j++) { xr[j] = lfl_vexpf(xr[j] - fm); acc += xr[j]; }
        rescale[r] = m[r] == -INFINITY ? 0.0 : exp(m[r] - nm);
        s[r] = s[r] * rescale[r] + acc;
        m[r] = nm;
    }
}

static void lse_exp_rows_f64(double *x, int64_t rows, int64_t n, int64_t ld, const int64_t *labels, int64_t v0,
                             double *m, double *s, double *picked, double *rescale)
{
#pragma omp parallel for schedule(static) if (rows * n > LFL_OMP_MIN)
    for (int64_t r = 0; r < rows; r++) {
        double *xr = x + r * ld;
        int64_t l = labels[r] - v0;
        if (labels[r] != LFL_IGNORE_INDEX && l >= 0 && l < n) picked[r] = xr[l];
        double cm = -INFINITY;
        for (int64_t j = 0; j < n; j++) cm = xr[j] > cm ? xr[j] : cm;
        double nm = m[r] > cm ? m[r] : cm, acc = 0;
        for (int64_t j = 0; j < n; j++) { xr[j] = exp(xr[j] - nm); acc += xr[j]; }
        rescale[r] = m[r] == -INFINITY ? 0.0 : exp(m[r] - nm);
        s[r] = s[r] * rescale[r] + acc;
        m[r] = nm;
    }
}

void lfl_loss_lse_exp_block(lfl_dtype dt, void *x, int64_t rows, int64_t n, int64_t ld, const int64_t *labels,
                            int64_t v0, double *m, double *s, double *picked, double *rescale)
{
    if (dt == LFL_F32) lse_exp_rows_f32(x, rows, n, ld, labels, v0, m, s, picked, rescale);
    else lse_exp_rows_f64(x, rows, n, ld, labels, v0, m, s, picked, rescale);
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
