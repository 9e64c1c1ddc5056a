/* GPTQ quantization of one linear (see gptq.h): the damped Hessian's inverse
 * as an upper Cholesky factor, then the column-by-column rounding with error
 * feedback, rows in parallel (each output row is independent given Hinv). */
#include "gptq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "../blas.h"
#include "../dtype.h"

#define GPTQ_BLOCK 128
#define CHOL_BLOCK 64

/* In-place lower Cholesky of a [n, n] (row-major, f64), blocked: each diagonal
 * block factored by hand, the panel below solved row by row, the trailing
 * matrix updated with one GEMM. The upper triangle is zeroed. */
static lfl_status cholesky_lower(double *a, int64_t n)
{
    for (int64_t k0 = 0; k0 < n; k0 += CHOL_BLOCK) {
        int64_t kb = n - k0 < CHOL_BLOCK ? n - k0 : CHOL_BLOCK, k1 = k0 + kb;
        for (int64_t j = k0; j < k1; j++) {
            double d = a[j * n + j];
            for (int64_t k = k0; k < j; k++) d -= a[j * n + k] * a[j * n + k];
            if (!(d > 0))
                return lfl_fail(LFL_ERR_ARG, "gptq: the damped Hessian is not positive definite (pivot %lld is %g); "
                                "raise damp_percent or give more calibration data", (long long)j, d);
            d = sqrt(d);
            a[j * n + j] = d;
            for (int64_t i = j + 1; i < k1; i++) {
                double s = a[i * n + j];
                for (int64_t k = k0; k < j; k++) s -= a[i * n + k] * a[j * n + k];
                a[i * n + j] = s / d;
            }
        }
#pragma omp parallel for schedule(static)
        for (int64_t i = k1; i < n; i++) {
            for (int64_t j = k0; j < k1; j++) {
                double s = a[i * n + j];
                for (int64_t k = k0; k < j; k++) s -= a[i * n + k] * a[j * n + k];
                a[i * n + j] = s / a[j * n + j];
            }
        }
        if (k1 < n)
            lfl_dgemm(false, true, (int)(n - k1), (int)(n - k1), (int)kb, -1.0, a + k1 * n + k0, (int)n,
                      a + k1 * n + k0, (int)n, 1.0, a + k1 * n + k1, (int)n);
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++) a[i * n + j] = 0;
    return LFL_OK;
}

/* The upper U with U^T U = h^-1 (torch: cholesky(cholesky_inverse(cholesky(h)),
 * upper=True)), without forming h^-1: with J the reversal, chol(J h J) = Lr
 * gives h = R R^T for the upper R = J Lr J, so h^-1 = R^-T R^-1 and U = R^-1
 * = J Lr^-1 J. h [n, n] is overwritten by U. */
static lfl_status upper_chol_of_inverse(double *h, int64_t n)
{
    double *r = malloc((size_t)(n * n) * sizeof *r), *x = malloc((size_t)(n * n) * sizeof *x);
    if (!r || !x) {
        free(r);
        free(x);
        return lfl_fail(LFL_ERR_MEM, "gptq: no memory for a %lld x %lld Hessian", (long long)n, (long long)n);
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) r[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)];
    lfl_status st = cholesky_lower(r, n);
    if (st == LFL_OK) {
        /* x = Lr^-1 (lower) by block rows: a block row's right side
         * I - L[b, :b0] x[:b0, :] with one GEMM, then the diagonal block's
         * forward substitution column by column */
        memset(x, 0, (size_t)(n * n) * sizeof *x);
        for (int64_t b0 = 0; b0 < n; b0 += CHOL_BLOCK) {
            int64_t b1 = n - b0 < CHOL_BLOCK ? n : b0 + CHOL_BLOCK;
            for (int64_t i = b0; i < b1; i++) x[i * n + i] = 1;
            if (b0 > 0)
                lfl_dgemm(false, false, (int)(b1 - b0), (int)b0, (int)b0, -1.0, r + b0 * n, (int)n, x, (int)n, 1.0,
                          x + b0 * n, (int)n);
#pragma omp parallel for schedule(static)
            for (int64_t c = 0; c < b1; c++) {
                for (int64_t i = b0; i < b1; i++) {
                    double s = x[i * n + c];
                    for (int64_t k = b0; k < i; k++) s -= r[i * n + k] * x[k * n + c];
                    x[i * n + c] = s / r[i * n + i];
                }
            }
        }
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) h[i * n + j] = x[(n - 1 - i) * n + (n - 1 - j)];
    }
    free(r);
    free(x);
    return st;
}

/* Quantizer.find_params (sym, perchannel) for one row's group of columns */
static void find_params(const double *x, int64_t n, int maxq, double *scale, double *zero)
{
    double xmin = 0, xmax = 0;
    for (int64_t i = 0; i < n; i++) {
        if (x[i] < xmin) xmin = x[i];
        if (x[i] > xmax) xmax = x[i];
    }
    if (-xmin > xmax) xmax = -xmin;
    if (xmin < 0) xmin = -xmax;
    if (xmin == 0 && xmax == 0) xmin = -1, xmax = 1;
    *scale = (xmax - xmin) / maxq;
    *zero = (maxq + 1) / 2;
}

static double quant_code(double w, double scale, double zero, int maxq)
{
    double q = nearbyint(w / scale) + zero;
    return q < 0 ? 0 : q > maxq ? maxq : q;
}

static lfl_status check_float2(const char *what, const lfl_tensor *t, int64_t r, int64_t c, bool f64_ok)
{
    if (!t || t->ndim != 2 || !lfl_is_contiguous(t) || t->device != LFL_CPU || t->shape[0] != r ||
        t->shape[1] != c || !(t->dtype == LFL_F32 || (f64_ok && t->dtype == LFL_F64)))
        return lfl_fail(LFL_ERR_ARG, "gptq_quantize: %s must be a contiguous %s CPU tensor [%lld, %lld]", what,
                        f64_ok ? "f32/f64" : "f32", (long long)r, (long long)c);
    return LFL_OK;
}

lfl_status lfl_gptq_quantize(const lfl_tensor *w, const lfl_tensor *h, int bits, int64_t group_size,
                             double damp_percent, lfl_tensor **qweight, lfl_tensor **qzeros, lfl_tensor **scales,
                             lfl_tensor **g_idx, lfl_tensor **wq)
{
    if (bits != 2 && bits != 4 && bits != 8)
        return lfl_fail(LFL_ERR_ARG, "gptq_quantize: %d bits are not supported (2, 4 or 8; 3-bit packing is not "
                        "implemented)", bits);
    if (!w || w->ndim != 2)
        return lfl_fail(LFL_ERR_ARG, "gptq_quantize: the weight must be 2-D [out, in]");
    const int64_t out = w->shape[0], in = w->shape[1], per = 32 / bits;
    LFL_TRY(check_float2("the weight", w, out, in, false));
    if (h) LFL_TRY(check_float2("the Hessian", h, in, in, true));
    if (group_size <= 0)
        return lfl_fail(LFL_ERR_ARG, "gptq_quantize: group_size %lld is not supported (a positive group size; "
                        "per-column -1 is not)", (long long)group_size);
    if (in % per || out % per)
        return lfl_fail(LFL_ERR_ARG, "gptq_quantize: [%lld, %lld] does not pack at %d bits (both sizes must be "
                        "multiples of %lld)", (long long)out, (long long)in, bits, (long long)per);
    if (!(damp_percent >= 0))
        return lfl_fail(LFL_ERR_ARG, "gptq_quantize: damp_percent %g is negative", damp_percent);
    const int maxq = (1 << bits) - 1;
    const int64_t groups = (in + group_size - 1) / group_size;
    double *W = malloc((size_t)(out * in) * sizeof *W);
    double *Hi = h ? malloc((size_t)(in * in) * sizeof *Hi) : NULL;
    double *sc = malloc((size_t)(groups * out) * sizeof *sc), *ze = malloc((size_t)(groups * out) * sizeof *ze);
    uint8_t *codes = malloc((size_t)(out * in));
    double *err = malloc((size_t)(out * GPTQ_BLOCK) * sizeof *err);
    lfl_status st = LFL_OK;
    *qweight = *qzeros = *scales = *g_idx = *wq = NULL;
    if (!W || (h && !Hi) || !sc || !ze || !codes || !err) {
        st = lfl_fail(LFL_ERR_MEM, "gptq_quantize: no memory for a [%lld, %lld] linear", (long long)out,
                      (long long)in);
        goto done;
    }
    const float *wf = lfl_data(w);
    for (int64_t i = 0; i < out * in; i++) W[i] = wf[i];
    if (h) {
        if (h->dtype == LFL_F64) memcpy(Hi, lfl_data(h), (size_t)(in * in) * sizeof *Hi);
        else {
            const float *hf = lfl_data(h);
            for (int64_t i = 0; i < in * in; i++) Hi[i] = hf[i];
        }
        double mean = 0;
        for (int64_t i = 0; i < in; i++) {
            if (Hi[i * in + i] == 0) {
                Hi[i * in + i] = 1;
                for (int64_t r = 0; r < out; r++) W[r * in + i] = 0;
            }
            mean += Hi[i * in + i];
        }
        mean /= (double)in;
        for (int64_t i = 0; i < in; i++) Hi[i * in + i] += damp_percent * mean;
        if ((st = upper_chol_of_inverse(Hi, in)) != LFL_OK) goto done;
    }
    for (int64_t i1 = 0; i1 < in; i1 += GPTQ_BLOCK) {
        const int64_t i2 = i1 + GPTQ_BLOCK < in ? i1 + GPTQ_BLOCK : in, cnt = i2 - i1;
        /* W holds the block's columns as they stood at its start (the
         * reference's W, where groups find their scale); the rows' working
         * copy W1 takes the in-block updates */
#pragma omp parallel
        {
            double *w1 = malloc((size_t)cnt * sizeof *w1);
#pragma omp for schedule(static)
            for (int64_t r = 0; r < out; r++) {
                double *row = W + r * in, *e = err + r * GPTQ_BLOCK;
                if (w1) memcpy(w1, row + i1, (size_t)cnt * sizeof *w1);
                for (int64_t i = 0; i < cnt && w1; i++) {
                    const int64_t c = i1 + i, g = c / group_size;
                    if (c % group_size == 0) {
                        int64_t n = in - c < group_size ? in - c : group_size;
                        find_params(row + c, n, maxq, sc + g * out + r, ze + g * out + r);
                    }
                    const double s = sc[g * out + r], z = ze[g * out + r];
                    const double q = quant_code(w1[i], s, z, maxq);
                    codes[r * in + c] = (uint8_t)q;
                    if (!h) continue;
                    const double *hrow = Hi + c * in;
                    const double e1 = (w1[i] - s * (q - z)) / hrow[c];
                    for (int64_t j = i + 1; j < cnt; j++) w1[j] -= e1 * hrow[i1 + j];
                    e[i] = e1;
                }
                if (w1) memcpy(row + i1, w1, (size_t)cnt * sizeof *w1);
            }
            if (!w1) {
#pragma omp critical
                st = lfl_fail(LFL_ERR_MEM, "gptq_quantize: no memory for a block row");
            }
            free(w1);
        }
        if (st != LFL_OK) goto done;
        if (h && i2 < in)
            lfl_dgemm(false, false, (int)out, (int)(in - i2), (int)cnt, -1.0, err, GPTQ_BLOCK, Hi + i1 * in + i2,
                      (int)in, 1.0, W + i2, (int)in);
    }
    {
        int64_t s_qw[2] = {in / per, out}, s_qz[2] = {groups, out / per}, s_sc[2] = {groups, out}, s_g[1] = {in},
                s_w[2] = {out, in};
        if ((st = lfl_empty(2, s_qw, LFL_I32, LFL_CPU, qweight)) != LFL_OK) goto done;
        if ((st = lfl_empty(2, s_qz, LFL_I32, LFL_CPU, qzeros)) != LFL_OK) goto done;
        if ((st = lfl_empty(2, s_sc, LFL_F16, LFL_CPU, scales)) != LFL_OK) goto done;
        if ((st = lfl_empty(1, s_g, LFL_I32, LFL_CPU, g_idx)) != LFL_OK) goto done;
        if ((st = lfl_empty(2, s_w, LFL_F32, LFL_CPU, wq)) != LFL_OK) goto done;
        uint32_t *qw = lfl_data(*qweight), *qz = lfl_data(*qzeros);
        uint16_t *sh = lfl_data(*scales);
        int32_t *gi = lfl_data(*g_idx);
        float *wo = lfl_data(*wq);
        memset(qw, 0, (size_t)(in / per * out) * sizeof *qw);
        memset(qz, 0, (size_t)(groups * out / per) * sizeof *qz);
        for (int64_t i = 0; i < in; i++) gi[i] = (int32_t)(i / group_size);
        for (int64_t k = 0; k < groups * out; k++) {
            sh[k] = lfl_f32_to_f16((float)sc[k]);
            /* v1: the zero minus one (sym zeros are 2^(bits-1) >= 1, never wraps) */
            qz[(k / out) * (out / per) + (k % out) / per] |= ((uint32_t)ze[k] - 1u) << (bits * ((k % out) % per));
        }
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < out; r++) {
            for (int64_t i = 0; i < in; i++) {
                const int64_t g = i / group_size;
                const int q = codes[r * in + i];
                wo[r * in + i] = (float)(sc[g * out + r] * (q - ze[g * out + r]));
            }
        }
        /* qweight words pack consecutive inputs of one output column */
#pragma omp parallel for schedule(static)
        for (int64_t wr = 0; wr < in / per; wr++) {
            for (int64_t r = 0; r < out; r++) {
                uint32_t v = 0;
                for (int64_t k = 0; k < per; k++) v |= (uint32_t)codes[r * in + wr * per + k] << (bits * k);
                qw[wr * out + r] = v;
            }
        }
    }
done:
    if (st != LFL_OK) {
        lfl_tensor **outs[5] = {qweight, qzeros, scales, g_idx, wq};
        for (int k = 0; k < 5; k++) {
            if (*outs[k]) lfl_tensor_release(*outs[k]);
            *outs[k] = NULL;
        }
    }
    free(W);
    free(Hi);
    free(sc);
    free(ze);
    free(codes);
    free(err);
    return st;
}
