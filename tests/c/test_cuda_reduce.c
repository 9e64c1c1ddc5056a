/* The CUDA kernels of the reduction and indexing ops against the CPU's: sum
 * (every layout of reduced dims, split reductions, empty inputs, the gradient
 * of a broadcast through sum_to), max / min / argmax (ties, NaN, integer
 * dtypes, their backward), nonzero, softmax / log_softmax and their backward,
 * embedding, index_select, gather, scatter_add and cat, forward and backward,
 * with tails (sizes that are not multiples of 32 or of a block), single rows,
 * empty tensors, more rows than the emulator's capped grids, every dtype the
 * CPU kernel takes, the index range errors (the CPU's message, word for
 * word), and device inputs the fronts first copy (strided views, i32
 * indices; sum's, cat's and scatter_add's backward through copies). Runs on
 * a GPU or on the emulator (build-emu); skipped without either. */
#include <string.h>
#include "cuda_check.h"

static const char *dtn(lfl_dtype dt) { return lfl_dtype_name(dt); }

static double tol_of(lfl_dtype dt) { return dt == LFL_F32 ? 1e-5 : 1e-12; }

/* shape as "[a,b,c]" into buf */
static const char *shp(int nd, const int64_t *s, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < nd && k < n; d++) k += (size_t)snprintf(buf + k, n - k, d ? ",%lld" : "%lld", (long long)s[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

static void release(int n, lfl_tensor **ts)
{
    for (int i = 0; i < n; i++) lfl_tensor_release(ts[i]);
}

/* the CPU call failed and the CUDA call failed with the same message */
static void same_error(const char *what, lfl_status cpu, const char *cpu_msg, lfl_status cuda)
{
    char msg[512];
    bool ok = cpu != LFL_OK && cuda != LFL_OK && strcmp(cpu_msg, lfl_last_error()) == 0;
    snprintf(msg, sizeof msg, "%s: cpu \"%s\" (%d), cuda \"%s\" (%d)", what, cpu_msg, (int)cpu,
             cuda ? lfl_last_error() : "", (int)cuda);
    cc_check(ok, ok ? what : msg);
}

/* a CPU tensor of dtype dt with values in [lo, hi) (integers; floats hold integers, so ties occur) */
static lfl_tensor *ints_as(int nd, const int64_t *shape, lfl_dtype dt, int64_t lo, int64_t hi)
{
    lfl_tensor *t = cc_randint(nd, shape, LFL_I64, lo, hi), *c;
    if (dt == LFL_I64) return t;
    CC_OK(lfl_cast(t, dt, &c));
    lfl_tensor_release(t);
    return c;
}

/* ---- sum ---------------------------------------------------------------------------------- */

static void sum_case(lfl_dtype dt, int nd, const int64_t *shape, int ndims, const int *dims, bool keepdim)
{
    char what[160], b[64];
    lfl_tensor *x = cc_randn(nd, shape, dt, 1.0), *xd = cc_cuda(x), *y, *yd;
    CC_OK(lfl_sum(x, ndims, dims, keepdim, &y));
    CC_OK(lfl_sum(xd, ndims, dims, keepdim, &yd));
    int64_t mask = 0;
    for (int i = 0; i < ndims; i++) mask |= (int64_t)1 << dims[i];
    if (ndims == 0) mask = ((int64_t)1 << nd) - 1;
    snprintf(what, sizeof what, "sum %s %s mask 0x%llx%s", dtn(dt), shp(nd, shape, b, sizeof b), (long long)mask,
             keepdim ? " keepdim" : "");
    /* both accumulate in f64: f32 results differ at most in the last rounding */
    cc_close(what, y, yd, dt == LFL_F32 ? 1e-6 : 1e-12, dt == LFL_F32 ? 1e-6 : 1e-12);
    cc_check(yd->device == 0, "sum: the result stays on cuda:0");
    lfl_tensor *ts[4] = {x, xd, y, yd};
    release(4, ts);
}

static void sums(lfl_dtype dt)
{
    int d0[1] = {0}, d1[1] = {1}, d2[1] = {2}, d02[2] = {0, 2}, d13[2] = {1, 3};
    sum_case(dt, 1, (int64_t[]){37}, 0, NULL, false);                  /* full, one short row */
    sum_case(dt, 2, (int64_t[]){5, 300}, 1, d1, false);                /* rows, a warp each */
    sum_case(dt, 2, (int64_t[]){3, 2100}, 1, d1, true);                /* rows, a block each, split */
    sum_case(dt, 2, (int64_t[]){1, 45}, 1, d1, false);                 /* a single row */
    sum_case(dt, 2, (int64_t[]){2, 1000}, 1, d1, false);               /* rows, a warp each, split */
    sum_case(dt, 2, (int64_t[]){50, 40}, 1, d1, false);                /* more warp rows than the grid */
    sum_case(dt, 2, (int64_t[]){3, 200}, 1, d0, false);                /* more columns than the grid */
    sum_case(dt, 2, (int64_t[]){45, 37}, 1, d0, false);                /* columns */
    sum_case(dt, 2, (int64_t[]){3000, 3}, 1, d0, true);                /* columns, few: split */
    sum_case(dt, 3, (int64_t[]){4, 33, 5}, 2, d02, false);             /* reduced, kept, reduced */
    sum_case(dt, 3, (int64_t[]){4, 33, 5}, 1, d1, false);              /* kept, reduced, kept */
    sum_case(dt, 3, (int64_t[]){6, 1, 70}, 1, d2, true);               /* a size-1 dim in between */
    sum_case(dt, 4, (int64_t[]){3, 5, 2, 7}, 2, d13, false);           /* K R K R */
    sum_case(dt, 3, (int64_t[]){3, 70, 9}, 0, NULL, true);             /* full, keepdim */
    sum_case(dt, 1, (int64_t[]){20000}, 0, NULL, false);               /* full, split over many blocks */
    sum_case(dt, 0, NULL, 0, NULL, false);                             /* a scalar */
    sum_case(dt, 2, (int64_t[]){0, 5}, 1, d0, false);                  /* an empty reduction: zeros */
    sum_case(dt, 2, (int64_t[]){5, 0}, 1, d0, false);                  /* no output */
}

/* The gradient of a broadcast operand goes through sum_to, i.e. the sum
 * kernel: y = x * s with s [7] and t [6, 1] against x [6, 7]. */
static void broadcast_grad(lfl_dtype dt)
{
    lfl_tensor *x, *xd, *s, *sd, *t, *td;
    cc_leaf_pair(cc_randn(2, (int64_t[]){6, 7}, dt, 1.0), &x, &xd);
    cc_leaf_pair(cc_randn(1, (int64_t[]){7}, dt, 1.0), &s, &sd);
    cc_leaf_pair(cc_randn(2, (int64_t[]){6, 1}, dt, 1.0), &t, &td);
    lfl_tensor *p, *pd, *y, *yd;
    CC_OK(lfl_mul(x, s, &p));
    CC_OK(lfl_mul(xd, sd, &pd));
    CC_OK(lfl_add(p, t, &y));
    CC_OK(lfl_add(pd, td, &yd));
    cc_backward_pair(y, yd, 11);
    char what[64];
    snprintf(what, sizeof what, "broadcast mul %s: ds [7] (sum over dim 0)", dtn(dt));
    cc_close(what, s->grad, sd->grad, tol_of(dt), tol_of(dt));
    snprintf(what, sizeof what, "broadcast add %s: dt [6,1] (sum over dim 1)", dtn(dt));
    cc_close(what, t->grad, td->grad, tol_of(dt), tol_of(dt));
    snprintf(what, sizeof what, "broadcast mul %s: dx", dtn(dt));
    cc_close(what, x->grad, xd->grad, tol_of(dt), tol_of(dt));
    cc_check(sd->grad && sd->grad->device == 0, "the broadcast operand's gradient is on the device");
    lfl_tensor *ts[10] = {x, xd, s, sd, t, td, p, pd, y, yd};
    release(10, ts);
}

/* ---- max, min, argmax ------------------------------------------------------------------------ */

typedef lfl_status (*ext_fn)(lfl_tensor *, int, bool, lfl_tensor **, lfl_tensor **);

static void ext_case(const char *name, ext_fn fn, lfl_dtype dt, int nd, const int64_t *shape, int dim, bool keepdim,
                     bool nans)
{
    char what[160], b[64];
    bool fl = dt == LFL_F32 || dt == LFL_F64;
    lfl_tensor *x = ints_as(nd, shape, dt, -4, 5);
    if (nans) { /* row 0: NaN at 3 and 10 (the first wins); row 1: at 0; the last element */
        int64_t n = lfl_numel(x), len = shape[nd - 1];
        int64_t at[4] = {3, 10, len, n - 1};
        for (int i = 0; i < 4; i++) {
            if (at[i] >= n) continue;
            if (dt == LFL_F32) ((float *)lfl_data(x))[at[i]] = NAN;
            else ((double *)lfl_data(x))[at[i]] = NAN;
        }
    }
    lfl_tensor *xl, *xd;
    if (fl) cc_leaf_pair(x, &xl, &xd);
    else xl = x, xd = cc_cuda(x);
    lfl_tensor *v, *i, *vd, *id;
    CC_OK(fn(xl, dim, keepdim, &v, &i));
    CC_OK(fn(xd, dim, keepdim, &vd, &id));
    snprintf(what, sizeof what, "%s %s %s dim %d%s%s: values", name, dtn(dt), shp(nd, shape, b, sizeof b), dim,
             keepdim ? " keepdim" : "", nans ? " NaN" : "");
    cc_close(what, v, vd, 0, 0);
    snprintf(what, sizeof what, "%s %s %s dim %d%s%s: indices", name, dtn(dt), shp(nd, shape, b, sizeof b), dim,
             keepdim ? " keepdim" : "", nans ? " NaN" : "");
    cc_close(what, i, id, 0, 0);
    if (fl && strcmp(name, "argmax") != 0) { /* argmax records nothing */
        cc_backward_pair(v, vd, 21);
        snprintf(what, sizeof what, "%s %s %s dim %d: backward", name, dtn(dt), shp(nd, shape, b, sizeof b), dim);
        cc_close(what, xl->grad, xd->grad, 0, 0);
    }
    lfl_tensor *ts[6] = {xl, xd, v, i, vd, id};
    release(6, ts);
}

static lfl_status argmax_as_ext(lfl_tensor *a, int dim, bool keepdim, lfl_tensor **v, lfl_tensor **i)
{
    /* argmax has no values: the max's stand in so ext_case can compare both */
    LFL_TRY(lfl_argmax(a, dim, keepdim, i));
    bool g = lfl_set_grad_enabled(false);
    lfl_status st = lfl_max(a, dim, keepdim, v, NULL);
    lfl_set_grad_enabled(g);
    return st;
}

static void extrema(void)
{
    const lfl_dtype dts[4] = {LFL_F32, LFL_F64, LFL_I32, LFL_I64};
    for (int t = 0; t < 4; t++) {
        lfl_dtype dt = dts[t];
        bool fl = dt == LFL_F32 || dt == LFL_F64;
        ext_case("max", lfl_max, dt, 2, (int64_t[]){7, 45}, 1, false, false);     /* rows, a warp each */
        ext_case("min", lfl_min, dt, 2, (int64_t[]){7, 45}, -1, true, false);
        ext_case("max", lfl_max, dt, 2, (int64_t[]){3, 1500}, 1, false, fl);      /* rows, a block each */
        ext_case("min", lfl_min, dt, 2, (int64_t[]){3, 1500}, 1, false, fl);
        ext_case("max", lfl_max, dt, 2, (int64_t[]){9, 45}, 1, false, fl);        /* NaN in a warp row */
        ext_case("max", lfl_max, dt, 3, (int64_t[]){40, 6, 3}, 1, false, false); /* columns */
        ext_case("min", lfl_min, dt, 2, (int64_t[]){50, 9}, 0, true, fl);         /* columns, NaN */
        ext_case("max", lfl_max, dt, 1, (int64_t[]){1}, 0, false, false);         /* one element */
        ext_case("max", lfl_max, dt, 2, (int64_t[]){0, 5}, 1, false, false);      /* no rows */
        ext_case("max", lfl_max, dt, 2, (int64_t[]){45, 20}, 1, false, false);    /* rows past the grid */
        ext_case("min", lfl_min, dt, 3, (int64_t[]){4, 5, 50}, 1, false, false);  /* columns past the grid */
        ext_case("max", lfl_max, dt, 3, (int64_t[]){2, 3, 700}, 1, false, false); /* backward past the grid */
    }
    ext_case("argmax", argmax_as_ext, LFL_F32, 3, (int64_t[]){2, 3, 1100}, 2, false, false);
    ext_case("argmax", argmax_as_ext, LFL_F64, 3, (int64_t[]){5, 37, 4}, 1, true, true);
    ext_case("argmax", argmax_as_ext, LFL_I64, 2, (int64_t[]){33, 70}, 1, false, false);
}

/* ---- nonzero --------------------------------------------------------------------------------- */

static void nonzero_case(const char *what, lfl_tensor *m)
{
    lfl_tensor *md = cc_cuda(m), *o, *od;
    CC_OK(lfl_nonzero(m, &o));
    CC_OK(lfl_nonzero(md, &od));
    cc_check(od->device == 0 && od->dtype == LFL_I64, "nonzero: an i64 result on cuda:0");
    cc_close(what, o, od, 0, 0);
    lfl_tensor *ts[3] = {md, o, od};
    release(3, ts);
}

static void nonzeros(void)
{
    lfl_tensor *m = cc_randint(1, (int64_t[]){5000}, LFL_BOOL, 0, 2); /* three tiles, the last short */
    nonzero_case("nonzero 5000 random", m);
    memset(lfl_data(m), 0, 5000);
    nonzero_case("nonzero 5000 none", m);
    memset(lfl_data(m), 1, 5000);
    nonzero_case("nonzero 5000 all", m);
    lfl_tensor_release(m);
    m = cc_randint(1, (int64_t[]){37}, LFL_BOOL, 0, 2);
    nonzero_case("nonzero 37", m);
    lfl_tensor_release(m);
    m = cc_randint(1, (int64_t[]){12000}, LFL_BOOL, 0, 2); /* more tiles than the grid */
    nonzero_case("nonzero 12000 random", m);
    lfl_tensor_release(m);
    m = cc_randint(1, (int64_t[]){0}, LFL_BOOL, 0, 2);
    nonzero_case("nonzero empty", m);
    lfl_tensor_release(m);
    /* a strided mask: column 1 of [3000, 2] */
    lfl_tensor *m2 = cc_randint(2, (int64_t[]){3000, 2}, LFL_BOOL, 0, 2), *m2d = cc_cuda(m2), *c, *cd, *o, *od;
    CC_OK(lfl_select(m2, 1, 1, &c));
    CC_OK(lfl_select(m2d, 1, 1, &cd));
    CC_OK(lfl_nonzero(c, &o));
    CC_OK(lfl_nonzero(cd, &od));
    cc_check(cd->stride[0] == 2, "nonzero: the mask view has stride 2");
    cc_close("nonzero strided", o, od, 0, 0);
    lfl_tensor *ts[6] = {m2, m2d, c, cd, o, od};
    release(6, ts);
}

/* ---- softmax, log_softmax ------------------------------------------------------------------- */

/* infs: 1 -> row 0 all -inf, row 1 partly -inf; 2 -> a NaN in row 0, a +inf in row 1 (rows along the last dim) */
static void set_at(lfl_tensor *x, int64_t i, double v)
{
    if (i >= lfl_numel(x)) return;
    if (x->dtype == LFL_F32) ((float *)lfl_data(x))[i] = (float)v;
    else ((double *)lfl_data(x))[i] = v;
}

static void softmax_case(bool is_log, lfl_dtype dt, int nd, const int64_t *shape, int dim, int infs)
{
    char what[160], b[64];
    const char *name = is_log ? "log_softmax" : "softmax";
    lfl_tensor *x = cc_randn(nd, shape, dt, 3.0);
    int64_t len = nd ? shape[nd - 1] : 1;
    if (infs == 1) { /* row 0 all -inf (NaN out, like the CPU), row 1 partly -inf */
        for (int64_t k = 0; k < len; k++) set_at(x, k, -INFINITY);
        for (int64_t k = len; k < 2 * len; k += 2) set_at(x, k, -INFINITY);
    } else if (infs == 2) { /* both rows NaN out, like the CPU */
        set_at(x, 3, NAN);
        set_at(x, len + 5, INFINITY);
    }
    lfl_tensor *xl, *xd, *y, *yd;
    cc_leaf_pair(x, &xl, &xd);
    CC_OK((is_log ? lfl_log_softmax : lfl_softmax)(xl, dim, &y));
    CC_OK((is_log ? lfl_log_softmax : lfl_softmax)(xd, dim, &yd));
    snprintf(what, sizeof what, "%s %s %s dim %d%s", name, dtn(dt), shp(nd, shape, b, sizeof b), dim,
             infs == 1 ? " -inf rows" : infs == 2 ? " NaN, +inf rows" : "");
    double tol = dt == LFL_F32 ? 2e-6 : 1e-13;
    cc_close(what, y, yd, tol, tol);
    if (!infs) { /* the all -inf row's NaN would make every gradient NaN */
        cc_backward_pair(y, yd, 31);
        snprintf(what, sizeof what, "%s %s %s dim %d: backward", name, dtn(dt), shp(nd, shape, b, sizeof b), dim);
        cc_close(what, xl->grad, xd->grad, tol, dt == LFL_F32 ? 1e-5 : 1e-12);
    }
    lfl_tensor *ts[4] = {xl, xd, y, yd};
    release(4, ts);
}

static void softmaxes(void)
{
    for (int lg = 0; lg < 2; lg++)
        for (int t = 0; t < 2; t++) {
            lfl_dtype dt = t ? LFL_F64 : LFL_F32;
            softmax_case(lg, dt, 2, (int64_t[]){5, 37}, -1, 0);          /* rows, a warp each */
            softmax_case(lg, dt, 2, (int64_t[]){3, 1500}, 1, 0);         /* rows, a block each */
            softmax_case(lg, dt, 2, (int64_t[]){1, 7}, 1, 0);            /* a single short row */
            softmax_case(lg, dt, 3, (int64_t[]){4, 7, 5}, 1, 0);         /* columns */
            softmax_case(lg, dt, 3, (int64_t[]){4, 7, 5}, 0, 0);         /* columns, the outermost dim */
            softmax_case(lg, dt, 2, (int64_t[]){4, 40}, 1, 1);           /* -inf, warp rows */
            softmax_case(lg, dt, 2, (int64_t[]){3, 1100}, 1, 1);         /* -inf, block rows */
            softmax_case(lg, dt, 2, (int64_t[]){3, 40}, 1, 2);           /* NaN, +inf, warp rows */
            softmax_case(lg, dt, 2, (int64_t[]){3, 1100}, 1, 2);         /* NaN, +inf, block rows */
            softmax_case(lg, dt, 2, (int64_t[]){2, 40}, 0, 1);           /* -inf, columns (even ones all -inf) */
            softmax_case(lg, dt, 2, (int64_t[]){3, 40}, 0, 2);           /* NaN, +inf, columns */
            softmax_case(lg, dt, 2, (int64_t[]){0, 9}, 1, 0);            /* empty */
            softmax_case(lg, dt, 2, (int64_t[]){50, 33}, 1, 0);          /* warp rows past the grid */
            softmax_case(lg, dt, 2, (int64_t[]){7, 1030}, 1, 0);         /* block rows past the grid */
            softmax_case(lg, dt, 3, (int64_t[]){2, 3, 700}, 1, 0);       /* columns past the grid */
        }
}

/* ---- embedding ------------------------------------------------------------------------------- */

static void embeddings(void)
{
    for (int t = 0; t < 4; t++) {
        lfl_dtype dt = t & 1 ? LFL_F64 : LFL_F32;
        int64_t h = t < 2 ? 37 : 300; /* rows shorter and longer than a block */
        char what[96];
        lfl_tensor *w, *wd, *ids = cc_randint(2, (int64_t[]){3, 7}, LFL_I64, 0, 12), *idsd = cc_cuda(ids), *y, *yd;
        cc_leaf_pair(cc_randn(2, (int64_t[]){50, h}, dt, 1.0), &w, &wd); /* ids in [0, 12): repeats */
        CC_OK(lfl_embedding(w, ids, &y));
        CC_OK(lfl_embedding(wd, idsd, &yd));
        snprintf(what, sizeof what, "embedding %s [50,%lld] ids [3,7]", dtn(dt), (long long)h);
        cc_close(what, y, yd, 0, 0);
        cc_backward_pair(y, yd, 41);
        snprintf(what, sizeof what, "embedding %s backward (repeated ids)", dtn(dt));
        cc_close(what, w->grad, wd->grad, tol_of(dt), tol_of(dt));
        lfl_tensor *ts[6] = {w, wd, ids, idsd, y, yd};
        release(6, ts);
    }
    /* bf16 / f16 tables gather into f32 rows */
    const lfl_dtype lows[2] = {LFL_BF16, LFL_F16};
    for (int t = 0; t < 2; t++) {
        char what[96];
        lfl_tensor *w = cc_randn(2, (int64_t[]){20, 70}, lows[t], 1.0), *wd = cc_cuda(w);
        lfl_tensor *ids = cc_randint(1, (int64_t[]){9}, LFL_I64, 0, 20), *idsd = cc_cuda(ids), *y, *yd;
        CC_OK(lfl_embedding(w, ids, &y));
        CC_OK(lfl_embedding(wd, idsd, &yd));
        snprintf(what, sizeof what, "embedding %s table -> f32 rows", dtn(lows[t]));
        cc_check(yd->dtype == LFL_F32, "embedding: a 16-bit table gives f32 rows");
        cc_close(what, y, yd, 0, 0);
        lfl_tensor *ts[6] = {w, wd, ids, idsd, y, yd};
        release(6, ts);
    }
    /* an id out of range (the first bad one reported), and an empty ids tensor */
    lfl_tensor *w = cc_randn(2, (int64_t[]){10, 33}, LFL_F32, 1.0), *wd = cc_cuda(w), *y = NULL, *yd = NULL;
    lfl_tensor *ids = cc_randint(1, (int64_t[]){40}, LFL_I64, 0, 10);
    ((int64_t *)lfl_data(ids))[23] = 10;
    ((int64_t *)lfl_data(ids))[31] = -1;
    lfl_tensor *idsd = cc_cuda(ids);
    char msg[512];
    lfl_status a = lfl_embedding(w, ids, &y);
    snprintf(msg, sizeof msg, "%s", lfl_last_error());
    same_error("embedding: id out of range", a, msg, lfl_embedding(wd, idsd, &yd));
    lfl_tensor *w0 = cc_randn(2, (int64_t[]){10, 0}, LFL_F32, 1.0), *w0d = cc_cuda(w0);
    a = lfl_embedding(w0, ids, &y);
    snprintf(msg, sizeof msg, "%s", lfl_last_error());
    same_error("embedding: id out of range, H = 0", a, msg, lfl_embedding(w0d, idsd, &yd));
    lfl_tensor *e = cc_randint(1, (int64_t[]){0}, LFL_I64, 0, 10), *ed = cc_cuda(e);
    CC_OK(lfl_embedding(w, e, &y));
    CC_OK(lfl_embedding(wd, ed, &yd));
    cc_close("embedding: no ids", y, yd, 0, 0);
    lfl_tensor *ts[10] = {w, wd, ids, idsd, w0, w0d, e, ed, y, yd};
    release(10, ts);
}

/* ---- index_select ------------------------------------------------------------------------- */

static void index_select_case(lfl_dtype dt, int nd, const int64_t *shape, int dim, int64_t nidx)
{
    char what[160], b[64];
    bool fl = dt == LFL_F32 || dt == LFL_F64;
    int d = dim < 0 ? dim + nd : dim;
    lfl_tensor *x = fl || dt == LFL_BF16 ? cc_randn(nd, shape, dt, 1.0) : ints_as(nd, shape, dt, 0, 2), *xl, *xd;
    if (fl) cc_leaf_pair(x, &xl, &xd);
    else xl = x, xd = cc_cuda(x);
    lfl_tensor *ix = cc_randint(1, &nidx, LFL_I64, 0, shape[d]), *ixd = cc_cuda(ix), *y, *yd;
    CC_OK(lfl_index_select(xl, dim, ix, &y));
    CC_OK(lfl_index_select(xd, dim, ixd, &yd));
    snprintf(what, sizeof what, "index_select %s %s dim %d, %lld indices", dtn(dt), shp(nd, shape, b, sizeof b), dim,
             (long long)nidx);
    cc_close(what, y, yd, 0, 0);
    if (fl) {
        cc_backward_pair(y, yd, 51);
        snprintf(what, sizeof what, "index_select %s %s dim %d: backward", dtn(dt), shp(nd, shape, b, sizeof b), dim);
        cc_close(what, xl->grad, xd->grad, tol_of(dt), tol_of(dt));
    }
    lfl_tensor *ts[6] = {xl, xd, ix, ixd, y, yd};
    release(6, ts);
}

static void index_selects(void)
{
    for (int t = 0; t < 2; t++) {
        lfl_dtype dt = t ? LFL_F64 : LFL_F32;
        index_select_case(dt, 2, (int64_t[]){30, 37}, 0, 50);     /* rows (an embedding), repeats */
        index_select_case(dt, 3, (int64_t[]){4, 9, 5}, 1, 13);
        index_select_case(dt, 2, (int64_t[]){6, 70}, -1, 33);     /* the last dim */
        index_select_case(dt, 2, (int64_t[]){6, 70}, 1, 0);       /* no index */
        index_select_case(dt, 2, (int64_t[]){9, 300}, 0, 12);     /* slices longer than a block */
    }
    index_select_case(LFL_I64, 2, (int64_t[]){6, 11}, 1, 7);
    index_select_case(LFL_I32, 2, (int64_t[]){6, 11}, 0, 9);
    index_select_case(LFL_BF16, 3, (int64_t[]){3, 5, 7}, 2, 4);
    index_select_case(LFL_BOOL, 2, (int64_t[]){6, 11}, 1, 7);
    /* an index out of range: with data to move, and with none (inner size 0) */
    lfl_tensor *x = cc_randn(2, (int64_t[]){6, 11}, LFL_F32, 1.0), *xd = cc_cuda(x), *y = NULL, *yd = NULL;
    lfl_tensor *ix = cc_randint(1, (int64_t[]){20}, LFL_I64, 0, 6);
    ((int64_t *)lfl_data(ix))[17] = 6;
    ((int64_t *)lfl_data(ix))[19] = -3;
    lfl_tensor *ixd = cc_cuda(ix);
    char msg[512];
    lfl_status a = lfl_index_select(x, 0, ix, &y);
    snprintf(msg, sizeof msg, "%s", lfl_last_error());
    same_error("index_select: index out of range", a, msg, lfl_index_select(xd, 0, ixd, &yd));
    lfl_tensor *z = cc_randn(2, (int64_t[]){6, 0}, LFL_F32, 1.0), *zd = cc_cuda(z);
    a = lfl_index_select(z, 0, ix, &y);
    snprintf(msg, sizeof msg, "%s", lfl_last_error());
    same_error("index_select: index out of range, no data", a, msg, lfl_index_select(zd, 0, ixd, &yd));
    lfl_tensor *ts[6] = {x, xd, ix, ixd, z, zd};
    release(6, ts);
}

/* ---- gather, scatter_add --------------------------------------------------------------------- */

/* x [..] on both devices, optionally read through a transposed view */
static void pair_view(lfl_tensor *x, bool transposed, lfl_tensor **c, lfl_tensor **d)
{
    lfl_tensor *xd = cc_cuda(x);
    if (!transposed) { *c = x; *d = xd; return; }
    CC_OK(lfl_transpose(x, 0, 1, c));
    CC_OK(lfl_transpose(xd, 0, 1, d));
    lfl_tensor_release(x);
    lfl_tensor_release(xd);
}

static void gather_case(lfl_dtype dt, int nd, const int64_t *shape, int dim, const int64_t *ishape, bool transposed)
{
    char what[192], b[64], b2[64];
    bool fl = dt == LFL_F32 || dt == LFL_F64;
    int d = dim < 0 ? dim + nd : dim;
    lfl_tensor *x = fl || dt == LFL_BF16 ? cc_randn(nd, shape, dt, 1.0) : ints_as(nd, shape, dt, 0, 2), *a, *ad;
    /* transposed: a is x's view with dims 0 and 1 swapped (forward only) */
    bool grad = fl && !transposed;
    x->requires_grad = grad;
    pair_view(x, transposed, &a, &ad);
    ad->requires_grad = grad;
    lfl_tensor *ix = cc_randint(nd, ishape, LFL_I64, 0, a->shape[d]), *ixd = cc_cuda(ix), *y, *yd;
    CC_OK(lfl_gather(a, dim, ix, &y));
    CC_OK(lfl_gather(ad, dim, ixd, &yd));
    snprintf(what, sizeof what, "gather %s %s%s dim %d index %s", dtn(dt), shp(nd, a->shape, b, sizeof b),
             transposed ? " (transposed view)" : "", dim, shp(nd, ishape, b2, sizeof b2));
    cc_close(what, y, yd, 0, 0);
    if (grad) {
        cc_backward_pair(y, yd, 61);
        snprintf(what, sizeof what, "gather %s %s dim %d: backward (scatter_add)", dtn(dt), shp(nd, a->shape, b,
                 sizeof b), dim);
        cc_close(what, a->grad, ad->grad, tol_of(dt), tol_of(dt));
    }
    lfl_tensor *ts[6] = {a, ad, ix, ixd, y, yd};
    release(6, ts);
}

static void scatter_case(lfl_dtype dt, int nd, const int64_t *shape, int dim, const int64_t *ishape,
                         const int64_t *sshape, bool src_transposed)
{
    char what[192], b[64], b2[64], b3[64];
    int d = dim < 0 ? dim + nd : dim;
    lfl_tensor *a, *ad, *s, *sd;
    cc_leaf_pair(cc_randn(nd, shape, dt, 1.0), &a, &ad);
    /* src_transposed: src is the view of a tensor made with dims 0 and 1 swapped */
    int64_t mk[LFL_MAX_DIMS];
    for (int k = 0; k < nd; k++) mk[k] = sshape[k];
    if (src_transposed) { mk[0] = sshape[1]; mk[1] = sshape[0]; }
    lfl_tensor *sx = cc_randn(nd, mk, dt, 1.0);
    pair_view(sx, src_transposed, &s, &sd);
    bool same = !src_transposed;
    for (int k = 0; k < nd; k++) same = same && sshape[k] == ishape[k];
    /* the gradient of a larger src needs a copy into a strided corner (not on CUDA yet): forward only */
    s->requires_grad = sd->requires_grad = same;
    lfl_tensor *ix = cc_randint(nd, ishape, LFL_I64, 0, shape[d]), *ixd = cc_cuda(ix), *y, *yd;
    CC_OK(lfl_scatter_add(a, dim, ix, s, &y));
    CC_OK(lfl_scatter_add(ad, dim, ixd, sd, &yd));
    snprintf(what, sizeof what, "scatter_add %s %s dim %d index %s src %s%s", dtn(dt), shp(nd, shape, b, sizeof b),
             dim, shp(nd, ishape, b2, sizeof b2), shp(nd, sshape, b3, sizeof b3), src_transposed ? " (strided)" : "");
    cc_close(what, y, yd, tol_of(dt), tol_of(dt));
    cc_backward_pair(y, yd, 71);
    snprintf(what, sizeof what, "scatter_add %s dim %d: backward da", dtn(dt), dim);
    cc_close(what, a->grad, ad->grad, 0, 0);
    if (same) {
        snprintf(what, sizeof what, "scatter_add %s dim %d: backward dsrc (gather)", dtn(dt), dim);
        cc_close(what, s->grad, sd->grad, 0, 0);
    }
    lfl_tensor *ts[8] = {a, ad, s, sd, ix, ixd, y, yd};
    release(8, ts);
}

static void gathers_scatters(void)
{
    for (int t = 0; t < 2; t++) {
        lfl_dtype dt = t ? LFL_F64 : LFL_F32;
        gather_case(dt, 2, (int64_t[]){9, 70}, -1, (int64_t[]){9, 1}, false);     /* token log-probs' shape */
        gather_case(dt, 3, (int64_t[]){4, 6, 5}, 1, (int64_t[]){3, 11, 5}, false); /* repeats, a corner */
        gather_case(dt, 2, (int64_t[]){37, 6}, 0, (int64_t[]){40, 6}, false);
        gather_case(dt, 2, (int64_t[]){8, 5}, 1, (int64_t[]){5, 9}, true);          /* a strided input */
        gather_case(dt, 2, (int64_t[]){5, 300}, 0, (int64_t[]){7, 300}, false);     /* rows longer than a block */
        gather_case(dt, 2, (int64_t[]){37, 6}, 0, (int64_t[]){200, 6}, false);      /* rows past the grid */
        scatter_case(dt, 2, (int64_t[]){5, 8}, 0, (int64_t[]){200, 8}, (int64_t[]){200, 8}, false);
        scatter_case(dt, 2, (int64_t[]){5, 300}, 0, (int64_t[]){12, 300}, (int64_t[]){12, 300}, false); /* MoE's */
        scatter_case(dt, 2, (int64_t[]){9, 70}, 1, (int64_t[]){9, 33}, (int64_t[]){9, 33}, false);
        scatter_case(dt, 3, (int64_t[]){4, 6, 5}, 1, (int64_t[]){3, 20, 5}, (int64_t[]){3, 20, 5}, false);
        scatter_case(dt, 2, (int64_t[]){5, 8}, 0, (int64_t[]){30, 8}, (int64_t[]){30, 8}, false); /* collisions */
        scatter_case(dt, 2, (int64_t[]){6, 8}, 0, (int64_t[]){5, 7}, (int64_t[]){9, 8}, false);   /* src larger */
        scatter_case(dt, 2, (int64_t[]){6, 8}, 1, (int64_t[]){6, 5}, (int64_t[]){7, 6}, true);    /* src strided */
    }
    gather_case(LFL_I64, 2, (int64_t[]){7, 13}, 1, (int64_t[]){7, 20}, false);
    gather_case(LFL_BF16, 2, (int64_t[]){7, 13}, 0, (int64_t[]){9, 13}, false);
    gather_case(LFL_BOOL, 2, (int64_t[]){7, 13}, 1, (int64_t[]){5, 4}, false);
    gather_case(LFL_I32, 2, (int64_t[]){7, 13}, 1, (int64_t[]){7, 0}, false);     /* empty index */
    /* an index out of range, for both */
    lfl_tensor *x = cc_randn(2, (int64_t[]){6, 11}, LFL_F32, 1.0), *xd = cc_cuda(x), *y = NULL, *yd = NULL;
    lfl_tensor *ix = cc_randint(2, (int64_t[]){6, 4}, LFL_I64, 0, 11);
    ((int64_t *)lfl_data(ix))[13] = 11;
    ((int64_t *)lfl_data(ix))[22] = -1;
    lfl_tensor *ixd = cc_cuda(ix), *src = cc_randn(2, (int64_t[]){6, 4}, LFL_F32, 1.0), *srcd = cc_cuda(src);
    char msg[512];
    lfl_status a = lfl_gather(x, 1, ix, &y);
    snprintf(msg, sizeof msg, "%s", lfl_last_error());
    same_error("gather: index out of range", a, msg, lfl_gather(xd, 1, ixd, &yd));
    a = lfl_scatter_add(x, 1, ix, src, &y);
    snprintf(msg, sizeof msg, "%s", lfl_last_error());
    same_error("scatter_add: index out of range", a, msg, lfl_scatter_add(xd, 1, ixd, srcd, &yd));
    lfl_tensor *ts[6] = {x, xd, ix, ixd, src, srcd};
    release(6, ts);
}

/* ---- cat ------------------------------------------------------------------------------------ */

/* n inputs of `shape` but lens[j] along dim; `strided`: every other one a transposed view */
static void cat_case(lfl_dtype dt, int nd, const int64_t *shape, int dim, int n, const int64_t *lens, bool strided,
                     bool grad)
{
    char what[160], b[64];
    bool fl = dt == LFL_F32 || dt == LFL_F64;
    lfl_tensor *cs[16], *ds[16];
    for (int j = 0; j < n; j++) {
        int64_t s[LFL_MAX_DIMS];
        for (int k = 0; k < nd; k++) s[k] = k == dim ? lens[j] : shape[k];
        bool tr = strided && (j & 1);
        if (tr) { int64_t t = s[0]; s[0] = s[1]; s[1] = t; }
        lfl_tensor *x = fl || dt == LFL_BF16 ? cc_randn(nd, s, dt, 1.0) : ints_as(nd, s, dt, 0, 100);
        if (grad) cc_leaf_pair(x, &cs[j], &ds[j]);
        else pair_view(x, tr, &cs[j], &ds[j]);
    }
    lfl_tensor *y, *yd;
    CC_OK(lfl_cat(n, cs, dim, &y));
    CC_OK(lfl_cat(n, ds, dim, &yd));
    snprintf(what, sizeof what, "cat %s %d inputs -> %s dim %d%s", dtn(dt), n, shp(nd, y->shape, b, sizeof b), dim,
             strided ? " (strided inputs)" : "");
    cc_close(what, y, yd, 0, 0);
    if (grad) {
        cc_backward_pair(y, yd, 81);
        for (int j = 0; j < n; j++) {
            snprintf(what, sizeof what, "cat %s dim %d: backward of input %d", dtn(dt), dim, j + 1);
            cc_close(what, cs[j]->grad, ds[j]->grad, 0, 0);
        }
    }
    release(n, cs);
    release(n, ds);
    lfl_tensor_release(y);
    lfl_tensor_release(yd);
}

static void cats(void)
{
    for (int t = 0; t < 2; t++) {
        lfl_dtype dt = t ? LFL_F64 : LFL_F32;
        /* dim 0: the backward's slices are contiguous (other dims need a strided copy: not on CUDA yet) */
        cat_case(dt, 2, (int64_t[]){0, 37}, 0, 3, (int64_t[]){5, 1, 9}, false, true);
        cat_case(dt, 3, (int64_t[]){0, 4, 33}, 2, 3, (int64_t[]){7, 0, 40}, false, false);
        cat_case(dt, 3, (int64_t[]){5, 6, 3}, 1, 4, (int64_t[]){2, 3, 1, 5}, true, false);
    }
    /* more inputs than one launch takes, and other element sizes */
    cat_case(LFL_F32, 2, (int64_t[]){3, 0}, 1, 11, (int64_t[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, false, false);
    cat_case(LFL_I64, 2, (int64_t[]){0, 7}, 0, 3, (int64_t[]){2, 5, 1}, true, false);
    cat_case(LFL_I32, 2, (int64_t[]){4, 0}, 1, 2, (int64_t[]){3, 6}, false, false);
    cat_case(LFL_BF16, 2, (int64_t[]){4, 0}, 1, 3, (int64_t[]){3, 6, 2}, true, false);
    cat_case(LFL_U8, 2, (int64_t[]){0, 5}, 0, 2, (int64_t[]){3, 4}, false, false);
    cat_case(LFL_F32, 2, (int64_t[]){0, 5}, 0, 2, (int64_t[]){0, 0}, false, false); /* empty */
    cat_case(LFL_F32, 2, (int64_t[]){300, 0}, 1, 3, (int64_t[]){2, 5, 1}, true, false); /* rows past the grid */
}

/* ---- inputs that need a device copy first ------------------------------------------------------- */

/* Fronts that make an input contiguous (or an index i64), and backward
 * functions that expand, narrow or convert: they copy on the device (the copy
 * entry's CUDA kernel) before these kernels run. */
/* a [rows, cols] leaf on both devices and its transposed view [cols, rows] */
static void transposed_pair(lfl_dtype dt, int64_t rows, int64_t cols, lfl_tensor **x, lfl_tensor **xd, lfl_tensor **v,
                            lfl_tensor **vd)
{
    cc_leaf_pair(cc_randn(2, (int64_t[]){rows, cols}, dt, 1.0), x, xd);
    CC_OK(lfl_transpose(*x, 0, 1, v));
    CC_OK(lfl_transpose(*xd, 0, 1, vd));
}

static void strided_inputs(lfl_dtype dt)
{
    char what[128];
    double tol = tol_of(dt);
    lfl_tensor *x, *xd, *v, *vd, *y, *yd;
    /* sum of a transposed view, and sum's backward (an expand made contiguous) */
    int d1[1] = {1};
    transposed_pair(dt, 37, 6, &x, &xd, &v, &vd);
    CC_OK(lfl_sum(v, 1, d1, false, &y));
    CC_OK(lfl_sum(vd, 1, d1, false, &yd));
    snprintf(what, sizeof what, "sum %s of a transposed view", dtn(dt));
    cc_close(what, y, yd, tol, tol);
    cc_backward_pair(y, yd, 91);
    snprintf(what, sizeof what, "sum %s: backward", dtn(dt));
    cc_close(what, x->grad, xd->grad, 0, 0);
    lfl_tensor *t1[6] = {x, xd, v, vd, y, yd};
    release(6, t1);
    /* max and softmax of a transposed view, with backward */
    lfl_tensor *i, *id;
    transposed_pair(dt, 45, 5, &x, &xd, &v, &vd);
    CC_OK(lfl_max(v, 1, false, &y, &i));
    CC_OK(lfl_max(vd, 1, false, &yd, &id));
    snprintf(what, sizeof what, "max %s of a transposed view", dtn(dt));
    cc_close(what, i, id, 0, 0);
    cc_backward_pair(y, yd, 92);
    snprintf(what, sizeof what, "max %s of a transposed view: backward", dtn(dt));
    cc_close(what, x->grad, xd->grad, 0, 0);
    lfl_tensor *t2[8] = {x, xd, v, vd, y, yd, i, id};
    release(8, t2);
    transposed_pair(dt, 33, 4, &x, &xd, &v, &vd);
    CC_OK(lfl_log_softmax(v, 1, &y));
    CC_OK(lfl_log_softmax(vd, 1, &yd));
    snprintf(what, sizeof what, "log_softmax %s of a transposed view", dtn(dt));
    cc_close(what, y, yd, tol, tol);
    cc_backward_pair(y, yd, 93);
    snprintf(what, sizeof what, "log_softmax %s of a transposed view: backward", dtn(dt));
    cc_close(what, x->grad, xd->grad, tol, tol);
    lfl_tensor *t3[6] = {x, xd, v, vd, y, yd};
    release(6, t3);
    /* an i32 index (made i64 on the device), a transposed table */
    lfl_tensor *ix = cc_randint(1, (int64_t[]){14}, LFL_I32, 0, 9), *ixd = cc_cuda(ix);
    transposed_pair(dt, 6, 9, &x, &xd, &v, &vd); /* v: [9, 6] */
    CC_OK(lfl_index_select(v, 0, ix, &y));
    CC_OK(lfl_index_select(vd, 0, ixd, &yd));
    snprintf(what, sizeof what, "index_select %s, i32 index, transposed input", dtn(dt));
    cc_close(what, y, yd, 0, 0);
    cc_backward_pair(y, yd, 94);
    snprintf(what, sizeof what, "index_select %s, i32 index: backward", dtn(dt));
    cc_close(what, x->grad, xd->grad, tol, tol);
    lfl_tensor_release(y), lfl_tensor_release(yd);
    CC_OK(lfl_embedding(v, ix, &y));
    CC_OK(lfl_embedding(vd, ixd, &yd));
    snprintf(what, sizeof what, "embedding %s, i32 ids, transposed table", dtn(dt));
    cc_close(what, y, yd, 0, 0);
    lfl_tensor *t4[8] = {x, xd, v, vd, y, yd, ix, ixd};
    release(8, t4);
    /* cat along dim 1: its backward narrows the gradient into strided slices */
    lfl_tensor *a, *ad, *b, *bd;
    cc_leaf_pair(cc_randn(2, (int64_t[]){5, 3}, dt, 1.0), &a, &ad);
    cc_leaf_pair(cc_randn(2, (int64_t[]){5, 8}, dt, 1.0), &b, &bd);
    lfl_tensor *cs[2] = {a, b}, *ds[2] = {ad, bd};
    CC_OK(lfl_cat(2, cs, 1, &y));
    CC_OK(lfl_cat(2, ds, 1, &yd));
    cc_backward_pair(y, yd, 95);
    snprintf(what, sizeof what, "cat %s dim 1: backward", dtn(dt));
    cc_close(what, a->grad, ad->grad, 0, 0);
    cc_close(what, b->grad, bd->grad, 0, 0);
    lfl_tensor *t5[6] = {a, ad, b, bd, y, yd};
    release(6, t5);
    /* scatter_add with a src larger than the index: its gradient is the gathered corner, zeros elsewhere */
    lfl_tensor *s, *sd;
    cc_leaf_pair(cc_randn(2, (int64_t[]){6, 8}, dt, 1.0), &a, &ad);
    cc_leaf_pair(cc_randn(2, (int64_t[]){9, 8}, dt, 1.0), &s, &sd);
    ix = cc_randint(2, (int64_t[]){5, 7}, LFL_I64, 0, 6), ixd = cc_cuda(ix);
    CC_OK(lfl_scatter_add(a, 0, ix, s, &y));
    CC_OK(lfl_scatter_add(ad, 0, ixd, sd, &yd));
    cc_backward_pair(y, yd, 96);
    snprintf(what, sizeof what, "scatter_add %s, src larger than the index: backward dsrc", dtn(dt));
    cc_close(what, s->grad, sd->grad, 0, 0);
    lfl_tensor *t6[8] = {a, ad, s, sd, ix, ixd, y, yd};
    release(8, t6);
}

int main(void)
{
    if (!cc_begin("test_cuda_reduce")) return 0;
    sums(LFL_F32);
    sums(LFL_F64);
    broadcast_grad(LFL_F32);
    broadcast_grad(LFL_F64);
    extrema();
    nonzeros();
    softmaxes();
    embeddings();
    index_selects();
    gathers_scatters();
    cats();
    strided_inputs(LFL_F32);
    strided_inputs(LFL_F64);
    return cc_end();
}
