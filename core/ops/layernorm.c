/* layernorm over the last dim, as torch.nn.functional.layer_norm: biased
 * variance, y = (x - mean) * rstd * w + b, with w and b optional (NULL).
 * Row stats are accumulated in double; mean and rstd are saved per row.
 * Backward, with xh = (x - mean) * rstd and gh = g * w:
 *   dx = rstd * (gh - mean(gh) - xh * mean(gh * xh)),  dw = sum g * xh,  db = sum g */
#include "rows.h"

#define LN_FORWARD(T)                                                               \
    do {                                                                            \
        const T *pw = wc ? lfl_data(wc) : NULL, *pb = bc ? lfl_data(bc) : NULL;     \
        T *po = lfl_data(o), *pm = lfl_data(mean), *pr = lfl_data(rstd);            \
        const T *xbase = lfl_data(xr);                                              \
        _Pragma("omp parallel for if (rows * H > LFL_OMP_MIN)")                     \
        for (int64_t r = 0; r < rows; r++) {                                        \
            const T *px = xbase + lfl_row_offset(xr, r);                            \
            T *py = po + r * H;                                                     \
            double s = 0, ss = 0;                                                   \
            for (int64_t j = 0; j < H; j++) s += px[j];                             \
            double mu = s / (double)H;                                              \
            for (int64_t j = 0; j < H; j++) ss += (px[j] - mu) * (px[j] - mu);      \
            T m = (T)mu, rs = (T)(1.0 / sqrt(ss / (double)H + eps));                \
            pm[r] = m;                                                              \
            pr[r] = rs;                                                             \
            for (int64_t j = 0; j < H; j++) {                                       \
                T v = (px[j] - m) * rs;                                             \
                if (pw) v *= pw[j];                                                 \
                if (pb) v += pb[j];                                                 \
                py[j] = v;                                                          \
            }                                                                       \
        }                                                                           \
    } while (0)

#define LN_BACKWARD(T)                                                              \
    do {                                                                            \
        const T *pw = w ? lfl_data(w) : NULL, *pm = lfl_data(mean), *pr = lfl_data(rstd); \
        const T *pg = lfl_data(g), *xbase = lfl_data(x);                            \
        T *pdx = dx ? lfl_data(dx) : NULL;                                          \
        _Pragma("omp parallel for schedule(static) if (rows * H > LFL_OMP_MIN)")    \
        for (int64_t c = 0; c < nch; c++) {                                         \
            int64_t r0 = c * per, r1 = r0 + per < rows ? r0 + per : rows;           \
            double *aw = pw_part ? pw_part + c * H : NULL;                          \
            double *ab = pb_part ? pb_part + c * H : NULL;                          \
            for (int64_t r = r0; r < r1; r++) {                                     \
                const T *px = xbase + lfl_row_offset(x, r), *gr = pg + r * H;       \
                T m = pm[r], rs = pr[r];                                            \
                if (pdx) {                                                          \
                    double s1 = 0, s2 = 0;                                          \
                    for (int64_t j = 0; j < H; j++) {                               \
                        double gh = pw ? (double)gr[j] * pw[j] : (double)gr[j];     \
                        s1 += gh;                                                   \
                        s2 += gh * (double)((px[j] - m) * rs);                      \
                    }                                                               \
                    T k1 = (T)(s1 / (double)H), k2 = (T)(s2 / (double)H);           \
                    T *d = pdx + r * H;                                             \
                    for (int64_t j = 0; j < H; j++) {                               \
                        T gh = pw ? gr[j] * pw[j] : gr[j];                          \
                        d[j] = rs * (gh - k1 - (px[j] - m) * rs * k2);              \
                    }                                                               \
                }                                                                   \
                if (aw)                                                             \
                    for (int64_t j = 0; j < H; j++) aw[j] += (double)(gr[j] * ((px[j] - m) * rs)); \
                if (ab)                                                             \
                    for (int64_t j = 0; j < H; j++) ab[j] += gr[j];                 \
            }                                                                       \
        }                                                                           \
        for (int k = 0; k < 2; k++) {                                               \
            double *part = k ? pb_part : pw_part;                                   \
            if (!part) continue;                                                    \
            T *pd = lfl_data(k ? db : dw);                                          \
            for (int64_t j = 0; j < H; j++) {                                       \
                double s = 0;                                                       \
                for (int64_t c = 0; c < nch; c++) s += part[c * H + j];             \
                pd[j] = (T)s;                                                       \
            }                                                                       \
        }                                                                           \
    } while (0)

lfl_status lfl_cpu_layernorm_backward(lfl_tensor *g, lfl_tensor *x, lfl_tensor *w, lfl_tensor *mean, lfl_tensor *rstd,
                                      lfl_tensor *dx, lfl_tensor *dw, lfl_tensor *db)
{
    int64_t rows = lfl_numel(rstd), H = x->ndim ? x->shape[x->ndim - 1] : 1;
    int64_t nch = lfl_row_chunks(rows), per = (rows + nch - 1) / nch;
    double *pw_part = NULL, *pb_part = NULL;
    lfl_status st = LFL_OK;
    if (dw && !(pw_part = calloc((size_t)(nch * H) + 1, sizeof *pw_part)))
        st = lfl_fail(LFL_ERR_MEM, "layernorm backward: out of memory");
    if (st == LFL_OK && db && !(pb_part = calloc((size_t)(nch * H) + 1, sizeof *pb_part)))
        st = lfl_fail(LFL_ERR_MEM, "layernorm backward: out of memory");
    if (st == LFL_OK && rows > 0 && H > 0) {
        if (x->dtype == LFL_F32) LN_BACKWARD(float);
        else LN_BACKWARD(double);
    }
    free(pw_part);
    free(pb_part);
    return st;
}

static lfl_status layernorm_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    lfl_tensor *x = n->saved[0], *w = n->saved[1], *mean = n->saved[2], *rstd = n->saved[3];
    lfl_tensor *g = NULL, *dx = NULL, *dw = NULL, *db = NULL;
    int64_t H = n->iarg[1];
    lfl_layernorm_backward_kernel fn;
    LFL_TRY(lfl_dispatch_layernorm_backward(x->device, NULL, &fn));
    LFL_TRY(lfl_contiguous(gout[0], &g));
    lfl_status st = LFL_OK;
    if (lfl_node_needs(n, 0)) st = lfl_empty(n->in[0].ndim, n->in[0].shape, x->dtype, x->device, &dx);
    if (st == LFL_OK && lfl_node_needs(n, 1)) st = lfl_zeros(1, &H, x->dtype, x->device, &dw);
    if (st == LFL_OK && lfl_node_needs(n, 2)) st = lfl_zeros(1, &H, x->dtype, x->device, &db);
    if (st == LFL_OK) st = fn(g, x, w, mean, rstd, dx, dw, db);
    lfl_tensor_release(g);
    if (st) {
        lfl_tensor_release(dx);
        lfl_tensor_release(dw);
        lfl_tensor_release(db);
        return st;
    }
    gin[0] = dx;
    gin[1] = dw;
    gin[2] = db;
    return LFL_OK;
}

static lfl_status check_param(const lfl_tensor *x, const lfl_tensor *p, const char *what)
{
    char bx[128], bp[128];
    if (!p) return LFL_OK;
    LFL_TRY(lfl_nn_check("layernorm", p, what, x));
    if (p->ndim != 1 || p->shape[0] != x->shape[x->ndim - 1])
        return lfl_fail(LFL_ERR_ARG, "layernorm: %s %s does not match input %s (want [H] with H the last dim)", what,
                        lfl_shape_str(p, bp, sizeof bp), lfl_shape_str(x, bx, sizeof bx));
    if (p->dtype != x->dtype)
        return lfl_fail(LFL_ERR_ARG, "layernorm: %s is %s but input is %s (cast one of them)", what,
                        lfl_dtype_name(p->dtype), lfl_dtype_name(x->dtype));
    return LFL_OK;
}

lfl_status lfl_cpu_layernorm(lfl_tensor *xr, lfl_tensor *wc, lfl_tensor *bc, double eps, lfl_tensor *o,
                             lfl_tensor *mean, lfl_tensor *rstd)
{
    int64_t rows = lfl_numel(rstd), H = xr->ndim ? xr->shape[xr->ndim - 1] : 1;
    if (rows > 0) {
        if (xr->dtype == LFL_F32) LN_FORWARD(float);
        else LN_FORWARD(double);
    }
    return LFL_OK;
}

lfl_status lfl_layernorm(lfl_tensor *x, lfl_tensor *w, lfl_tensor *b, double eps, lfl_tensor **out)
{
    LFL_TRY(lfl_nn_check("layernorm", x, "input", NULL));
    if (x->ndim < 1) return lfl_fail(LFL_ERR_ARG, "layernorm: input must have at least one dim");
    LFL_TRY(check_param(x, w, "weight"));
    LFL_TRY(check_param(x, b, "bias"));
    if (!(eps >= 0)) return lfl_fail(LFL_ERR_ARG, "layernorm: eps must be >= 0, got %g", eps);
    lfl_layernorm_kernel fn;
    LFL_TRY(lfl_dispatch_layernorm(x->device, NULL, &fn));
    int64_t H = x->shape[x->ndim - 1], rows = H ? lfl_numel(x) / H : 0;
    lfl_tensor *xr = NULL, *wc = NULL, *bc = NULL, *o = NULL, *mean = NULL, *rstd = NULL;
    lfl_status st = lfl_rows_ready(x, &xr);
    if (st == LFL_OK && w) st = lfl_contiguous(w, &wc);
    if (st == LFL_OK && b) st = lfl_contiguous(b, &bc);
    if (st == LFL_OK) st = lfl_empty(x->ndim, x->shape, x->dtype, x->device, &o);
    if (st == LFL_OK) st = lfl_empty(1, &rows, x->dtype, x->device, &mean);
    if (st == LFL_OK) st = lfl_empty(1, &rows, x->dtype, x->device, &rstd);
    if (st == LFL_OK) st = fn(xr, wc, bc, eps, o, mean, rstd);
    if (st == LFL_OK) {
        lfl_tensor *in[3] = {x, w, b};
        lfl_node *n = lfl_node_begin("layernorm", layernorm_backward, 3, in, 1);
        if (n) {
            n->iarg[0] = rows;
            n->iarg[1] = H;
            n->farg[0] = eps;
            lfl_node_save(n, xr);
            lfl_node_save(n, wc);
            lfl_node_save(n, mean);
            lfl_node_save(n, rstd);
            lfl_node_set_output(n, o, 0);
            lfl_node_release(n);
        }
        *out = o;
        o = NULL;
    }
    lfl_tensor_release(xr);
    lfl_tensor_release(wc);
    lfl_tensor_release(bc);
    lfl_tensor_release(mean);
    lfl_tensor_release(rstd);
    lfl_tensor_release(o);
    return st;
}
