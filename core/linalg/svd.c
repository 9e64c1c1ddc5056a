/* Thin QR (modified Gram-Schmidt) and SVD (one-sided Jacobi, and the randomized
 * low-rank SVD built from both), computed in f64. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "../blas.h"
#include "../rng.h"
#include "linalg.h"

static lfl_status to_f64(const char *op, lfl_tensor *a, double **out, int64_t *m, int64_t *n)
{
    if (a->ndim != 2) return lfl_fail(LFL_ERR_ARG, "%s: expected a 2-D matrix, got %d dims", op, a->ndim);
    if (a->dtype != LFL_F32 && a->dtype != LFL_F64)
        return lfl_fail(LFL_ERR_ARG, "%s: expected an f32 or f64 matrix, got %s", op, lfl_dtype_name(a->dtype));
    if (a->device != LFL_CPU) return lfl_fail(LFL_ERR_DEVICE, "%s: the matrix must be on the CPU", op);
    *m = a->shape[0];
    *n = a->shape[1];
    if (*m < 1 || *n < 1) return lfl_fail(LFL_ERR_ARG, "%s: empty matrix", op);
    double *d = malloc(sizeof(double) * (size_t)(*m * *n));
    if (!d) return lfl_fail(LFL_ERR_MEM, "%s: out of memory for a %lldx%lld matrix", op, (long long)*m, (long long)*n);
    for (int64_t i = 0; i < *m; i++)
        for (int64_t j = 0; j < *n; j++) {
            int64_t off = i * a->stride[0] + j * a->stride[1];
            d[i * *n + j] = a->dtype == LFL_F32 ? ((const float *)lfl_data(a))[off] : ((const double *)lfl_data(a))[off];
        }
    *out = d;
    return LFL_OK;
}

/* a new [r, c] tensor of dtype dt from row-major f64 data */
static lfl_status from_f64(const double *d, int64_t r, int64_t c, int ndim, lfl_dtype dt, lfl_tensor **out)
{
    int64_t shape[2] = {r, c};
    if (ndim == 1) shape[0] = c;
    LFL_TRY(lfl_empty(ndim, shape, dt, LFL_CPU, out));
    int64_t n = r * c;
    if (dt == LFL_F64) memcpy(lfl_data(*out), d, sizeof(double) * (size_t)n);
    else {
        float *f = lfl_data(*out);
        for (int64_t i = 0; i < n; i++) f[i] = (float)d[i];
    }
    return LFL_OK;
}

/* Orthonormalizes the k columns of W (column-major, column j at W + j*len) in place
 * against each other; R (k x k, row-major) gets the coefficients when not NULL. */
static void mgs(double *w, int64_t len, int64_t k, double *r)
{
    if (r) memset(r, 0, sizeof(double) * (size_t)(k * k));
    for (int64_t j = 0; j < k; j++) {
        double *cj = w + j * len;
        double norm0 = 0;
        for (int64_t i = 0; i < len; i++) norm0 += cj[i] * cj[i];
        norm0 = sqrt(norm0);
        /* two passes: the second removes what rounding left of the first (Kahan's "twice is enough") */
        for (int pass = 0; pass < 2; pass++)
            for (int64_t p = 0; p < j; p++) {
                const double *cp = w + p * len;
                double d = 0;
                for (int64_t i = 0; i < len; i++) d += cp[i] * cj[i];
                for (int64_t i = 0; i < len; i++) cj[i] -= d * cp[i];
                if (r) r[p * k + j] += d;
            }
        double nrm = 0;
        for (int64_t i = 0; i < len; i++) nrm += cj[i] * cj[i];
        nrm = sqrt(nrm);
        if (nrm > 1e-13 * (norm0 > 0 ? norm0 : 1) && nrm > 1e-300) {
            for (int64_t i = 0; i < len; i++) cj[i] /= nrm;
            if (r) r[j * k + j] = nrm;
            continue;
        }
        /* dependent column: take the unit vector least covered by the previous columns */
        int64_t best = 0;
        double best_res = -1;
        for (int64_t e = 0; e < len; e++) {
            double cov = 0;
            for (int64_t p = 0; p < j; p++) cov += w[p * len + e] * w[p * len + e];
            if (1 - cov > best_res) { best_res = 1 - cov; best = e; }
        }
        memset(cj, 0, sizeof(double) * (size_t)len);
        cj[best] = 1;
        for (int pass = 0; pass < 2; pass++)
            for (int64_t p = 0; p < j; p++) {
                const double *cp = w + p * len;
                double d = 0;
                for (int64_t i = 0; i < len; i++) d += cp[i] * cj[i];
                for (int64_t i = 0; i < len; i++) cj[i] -= d * cp[i];
            }
        nrm = 0;
        for (int64_t i = 0; i < len; i++) nrm += cj[i] * cj[i];
        nrm = sqrt(nrm);
        for (int64_t i = 0; i < len; i++) cj[i] /= nrm;
        if (r) r[j * k + j] = 0;
    }
}

lfl_status lfl_linalg_qr(lfl_tensor *a, lfl_tensor **q, lfl_tensor **r)
{
    double *d;
    int64_t m, n;
    LFL_TRY(to_f64("qr", a, &d, &m, &n));
    if (m < n) {
        free(d);
        return lfl_fail(LFL_ERR_ARG, "qr: the thin QR needs rows >= columns, got %lldx%lld", (long long)m, (long long)n);
    }
    double *w = malloc(sizeof(double) * (size_t)(m * n)), *rr = malloc(sizeof(double) * (size_t)(n * n));
    if (!w || !rr) { free(d); free(w); free(rr); return lfl_fail(LFL_ERR_MEM, "qr: out of memory"); }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) w[j * m + i] = d[i * n + j];
    mgs(w, m, n, rr);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) d[i * n + j] = w[j * m + i];
    lfl_status st = from_f64(d, m, n, 2, a->dtype, q);
    if (st == LFL_OK && r) {
        st = from_f64(rr, n, n, 2, a->dtype, r);
        if (st) { lfl_tensor_release(*q); *q = NULL; }
    }
    free(d); free(w); free(rr);
    return st;
}

/* One-sided Jacobi on the k columns (length len, column-major in w): rotates pairs
 * until every pair is orthogonal to working precision, accumulating the rotations
 * in v (k x k, column-major, starts as I). Afterwards column j of w = sigma_j u_j. */
static void jacobi(double *w, int64_t len, int64_t k, double *v)
{
    memset(v, 0, sizeof(double) * (size_t)(k * k));
    for (int64_t j = 0; j < k; j++) v[j * k + j] = 1;
    for (int sweep = 0; sweep < 80; sweep++) {
        int rotated = 0;
        for (int64_t p = 0; p < k - 1; p++)
            for (int64_t q = p + 1; q < k; q++) {
                double *wp = w + p * len, *wq = w + q * len;
                double alpha = 0, beta = 0, gamma = 0;
                for (int64_t i = 0; i < len; i++) {
                    alpha += wp[i] * wp[i];
                    beta += wq[i] * wq[i];
                    gamma += wp[i] * wq[i];
                }
                if (fabs(gamma) <= 1e-15 * sqrt(alpha * beta) || gamma == 0) continue;
                rotated = 1;
                double zeta = (beta - alpha) / (2 * gamma);
                double t = (zeta >= 0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1 + zeta * zeta));
                double c = 1 / sqrt(1 + t * t), s = c * t;
                for (int64_t i = 0; i < len; i++) {
                    double x = wp[i], y = wq[i];
                    wp[i] = c * x - s * y;
                    wq[i] = s * x + c * y;
                }
                double *vp = v + p * k, *vq = v + q * k;
                for (int64_t i = 0; i < k; i++) {
                    double x = vp[i], y = vq[i];
                    vp[i] = c * x - s * y;
                    vq[i] = s * x + c * y;
                }
            }
        if (!rotated) break;
    }
}

/* SVD of row-major d [m, n] into row-major U [m, k], S [k], Vt [k, n] (f64). */
static lfl_status svd_f64(const double *d, int64_t m, int64_t n, double *u, double *s, double *vt)
{
    /* Work on the columns of A when m >= n, else on the columns of A^T (whose
     * column-major form is A's row-major data): the rotated matrix is len x k. */
    bool tall = m >= n;
    int64_t k = tall ? n : m, len = tall ? m : n;
    double *w = malloc(sizeof(double) * (size_t)(len * k)), *v = malloc(sizeof(double) * (size_t)(k * k));
    double *sig = malloc(sizeof(double) * (size_t)k);
    int64_t *ord = malloc(sizeof(int64_t) * (size_t)k);
    if (!w || !v || !sig || !ord) { free(w); free(v); free(sig); free(ord); return lfl_fail(LFL_ERR_MEM, "svd: out of memory"); }
    if (tall) { for (int64_t i = 0; i < m; i++) for (int64_t j = 0; j < n; j++) w[j * m + i] = d[i * n + j]; }
    else memcpy(w, d, sizeof(double) * (size_t)(m * n));
    jacobi(w, len, k, v);
    for (int64_t j = 0; j < k; j++) {
        double nrm = 0;
        for (int64_t i = 0; i < len; i++) nrm += w[j * len + i] * w[j * len + i];
        sig[j] = sqrt(nrm);
        ord[j] = j;
    }
    /* descending order (insertion sort: k is small next to the sweeps) */
    for (int64_t i = 1; i < k; i++) {
        int64_t x = ord[i], j = i - 1;
        while (j >= 0 && sig[ord[j]] < sig[x]) { ord[j + 1] = ord[j]; j--; }
        ord[j + 1] = x;
    }
    /* left vectors of the rotated side: normalized columns, sorted; zero
     * singular values get orthonormal completions from mgs */
    double *lw = malloc(sizeof(double) * (size_t)(len * k));
    if (!lw) { free(w); free(v); free(sig); free(ord); return lfl_fail(LFL_ERR_MEM, "svd: out of memory"); }
    double smax = k > 0 ? sig[ord[0]] : 0;
    for (int64_t j = 0; j < k; j++) {
        int64_t c = ord[j];
        double sj = sig[c];
        s[j] = sj;
        for (int64_t i = 0; i < len; i++) lw[j * len + i] = sj > 1e-300 && sj > 1e-15 * smax ? w[c * len + i] / sj : 0;
    }
    mgs(lw, len, k, NULL); /* no-op on orthonormal columns; fills the zero ones */
    /* tall: U = lw (m x k), Vt = v^T sorted; wide: A^T = lw S v^T, so U = v, Vt = lw^T */
    for (int64_t j = 0; j < k; j++) {
        int64_t c = ord[j];
        if (tall) {
            for (int64_t i = 0; i < m; i++) u[i * k + j] = lw[j * len + i];
            for (int64_t i = 0; i < n; i++) vt[j * n + i] = v[c * k + i];
        } else {
            for (int64_t i = 0; i < m; i++) u[i * k + j] = v[c * k + i];
            for (int64_t i = 0; i < n; i++) vt[j * n + i] = lw[j * len + i];
        }
    }
    /* a fixed sign per singular pair (the largest |entry| of each U column is
     * positive) so that results, and GaLore states carried across refreshes, are
     * reproducible and comparable with a reference using the same convention */
    for (int64_t j = 0; j < k; j++) {
        int64_t best = 0;
        for (int64_t i = 1; i < m; i++) if (fabs(u[i * k + j]) > fabs(u[best * k + j])) best = i;
        if (u[best * k + j] < 0) {
            for (int64_t i = 0; i < m; i++) u[i * k + j] = -u[i * k + j];
            for (int64_t i = 0; i < n; i++) vt[j * n + i] = -vt[j * n + i];
        }
    }
    free(w); free(v); free(sig); free(ord); free(lw);
    return LFL_OK;
}

static lfl_status emit3(const double *u, int64_t ur, int64_t uc, const double *s, int64_t k, const double *v,
                        int64_t vr, int64_t vc, lfl_dtype dt, lfl_tensor **U, lfl_tensor **S, lfl_tensor **V)
{
    *U = *S = *V = NULL;
    lfl_status st = from_f64(u, ur, uc, 2, dt, U);
    if (!st) st = from_f64(s, 1, k, 1, dt, S);
    if (!st) st = from_f64(v, vr, vc, 2, dt, V);
    if (st) {
        if (*U) lfl_tensor_release(*U);
        if (*S) lfl_tensor_release(*S);
        *U = *S = NULL;
    }
    return st;
}

lfl_status lfl_linalg_svd(lfl_tensor *a, lfl_tensor **u, lfl_tensor **s, lfl_tensor **vt)
{
    double *d;
    int64_t m, n;
    LFL_TRY(to_f64("svd", a, &d, &m, &n));
    int64_t k = m < n ? m : n;
    double *U = malloc(sizeof(double) * (size_t)(m * k)), *S = malloc(sizeof(double) * (size_t)k);
    double *Vt = malloc(sizeof(double) * (size_t)(k * n));
    lfl_status st = (!U || !S || !Vt) ? lfl_fail(LFL_ERR_MEM, "svd: out of memory") : svd_f64(d, m, n, U, S, Vt);
    if (!st) st = emit3(U, m, k, S, k, Vt, k, n, a->dtype, u, s, vt);
    free(d); free(U); free(S); free(Vt);
    return st;
}

/* c [r, c] = op(a) op(b), row-major f64 through BLAS */
static void mm(bool ta, bool tb, int64_t r, int64_t c, int64_t inner, const double *a, int64_t lda, const double *b,
               int64_t ldb, double *out)
{
    lfl_dgemm(ta, tb, (int)r, (int)c, (int)inner, 1.0, a, (int)lda, b, (int)ldb, 0.0, out, (int)c);
}

/* orthonormalize the q columns of row-major x [len, q] in place */
static void orth_rows(double *x, int64_t len, int64_t q, double *tmp)
{
    for (int64_t i = 0; i < len; i++)
        for (int64_t j = 0; j < q; j++) tmp[j * len + i] = x[i * q + j];
    mgs(tmp, len, q, NULL);
    for (int64_t i = 0; i < len; i++)
        for (int64_t j = 0; j < q; j++) x[i * q + j] = tmp[j * len + i];
}

lfl_status lfl_linalg_svd_lowrank(lfl_tensor *a, int64_t q, int niter, lfl_tensor **u, lfl_tensor **s,
                                  lfl_tensor **v)
{
    double *d;
    int64_t m, n;
    LFL_TRY(to_f64("svd_lowrank", a, &d, &m, &n));
    int64_t k = m < n ? m : n;
    if (q < 1 || q > k) {
        free(d);
        return lfl_fail(LFL_ERR_ARG, "svd_lowrank: rank q must be in 1..%lld for a %lldx%lld matrix, got %lld",
                        (long long)k, (long long)m, (long long)n, (long long)q);
    }
    if (niter < 0) { free(d); return lfl_fail(LFL_ERR_ARG, "svd_lowrank: niter must be >= 0"); }
    int64_t big = m > n ? m : n;
    double *G = malloc(sizeof(double) * (size_t)(n * q)), *Qm = malloc(sizeof(double) * (size_t)(m * q));
    double *Qn = malloc(sizeof(double) * (size_t)(n * q)), *tmp = malloc(sizeof(double) * (size_t)(big * q));
    double *B = malloc(sizeof(double) * (size_t)(q * n)), *Ub = malloc(sizeof(double) * (size_t)(q * q));
    double *S = malloc(sizeof(double) * (size_t)q), *Vt = malloc(sizeof(double) * (size_t)(q * n));
    double *U = malloc(sizeof(double) * (size_t)(m * q)), *V = malloc(sizeof(double) * (size_t)(n * q));
    lfl_status st = LFL_OK;
    if (!G || !Qm || !Qn || !tmp || !B || !Ub || !S || !Vt || !U || !V) { st = lfl_fail(LFL_ERR_MEM, "svd_lowrank: out of memory"); goto done; }
    {
        /* Gaussian test matrix from the global stream (reproducible under manual_seed) */
        lfl_tensor *g;
        int64_t gs[2] = {n, q};
        st = lfl_empty(2, gs, LFL_F64, LFL_CPU, &g);
        if (st) goto done;
        st = lfl_randn_(g, 0, 1);
        if (!st) memcpy(G, lfl_data(g), sizeof(double) * (size_t)(n * q));
        lfl_tensor_release(g);
        if (st) goto done;
    }
    mm(false, false, m, q, n, d, n, G, q, Qm);           /* A G   [m, q] */
    orth_rows(Qm, m, q, tmp);
    for (int it = 0; it < niter; it++) {
        mm(true, false, n, q, m, d, n, Qm, q, Qn);        /* A^T Q [n, q] */
        orth_rows(Qn, n, q, tmp);
        mm(false, false, m, q, n, d, n, Qn, q, Qm);       /* A Q   [m, q] */
        orth_rows(Qm, m, q, tmp);
    }
    mm(true, false, q, n, m, Qm, q, d, n, B);             /* Q^T A [q, n] */
    st = svd_f64(B, q, n, Ub, S, Vt);                     /* q <= n: Ub [q, q], Vt [q, n] */
    if (st) goto done;
    mm(false, false, m, q, q, Qm, q, Ub, q, U);           /* U = Q Ub */
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < q; j++) V[i * q + j] = Vt[j * n + i];
    for (int64_t j = 0; j < q; j++) { /* the sign convention on the final U */
        int64_t best = 0;
        for (int64_t i = 1; i < m; i++) if (fabs(U[i * q + j]) > fabs(U[best * q + j])) best = i;
        if (U[best * q + j] < 0) {
            for (int64_t i = 0; i < m; i++) U[i * q + j] = -U[i * q + j];
            for (int64_t i = 0; i < n; i++) V[i * q + j] = -V[i * q + j];
        }
    }
    st = emit3(U, m, q, S, q, V, n, q, a->dtype, u, s, v);
done:
    free(d); free(G); free(Qm); free(Qn); free(tmp); free(B); free(Ub); free(S); free(Vt); free(U); free(V);
    return st;
}
