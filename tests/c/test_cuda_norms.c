/* The CUDA kernels of the norms, rope, the gated activations and the losses
 * against their CPU kernels: rmsnorm, layernorm (with and without weight and
 * bias), rope (shared and per-batch cos/sin, a transposed input),
 * rope_cos_sin (i64/i32 positions, f32/f64 inv_freq and output, scaling),
 * swiglu, geglu (tanh and erf), cross_entropy (mean/sum/none, ignored rows,
 * -inf logits, a bad label), token_logprobs; forward and, through
 * lfl_backward, the leaves' gradients; f32 and f64 (the dtypes these fronts
 * take); rows not a multiple of 32 or of the block, longer than one block,
 * a single row, no rows. Runs on a GPU or on the emulator (build-emu). */
#include <string.h>
#include "cuda_check.h"

/* an op over n inputs; ctx: the case's options */
typedef lfl_status (*op_fn)(lfl_tensor **in, const void *ctx, lfl_tensor **out);

static void release_all(int n, lfl_tensor **t)
{
    for (int i = 0; i < n; i++) lfl_tensor_release(t[i]);
}

/* Runs f on the CPU inputs and on their cuda:0 twins (devin, or copies when
 * NULL), compares the outputs (atol/rtol), then (any grad[i]) backpropagates
 * one random upstream gradient through both and compares the gradients of
 * the inputs with grad[i] set (gatol/grtol). Takes the inputs. */
static void run_pair_on(const char *what, int n, lfl_tensor **in, lfl_tensor **devin, const bool *grad, op_fn f,
                        const void *ctx, double atol, double rtol, double gatol, double grtol, uint64_t seed)
{
    lfl_tensor *dev[8], *y = NULL, *yd = NULL;
    bool any = false;
    for (int i = 0; i < n; i++) {
        dev[i] = devin ? devin[i] : cc_cuda(in[i]);
        if (grad && grad[i]) {
            in[i]->requires_grad = dev[i]->requires_grad = true;
            any = true;
        }
    }
    char msg[200];
    CC_OK(f(in, ctx, &y));
    lfl_status st = f(dev, ctx, &yd);
    snprintf(msg, sizeof msg, "%s: runs on cuda:0 (%s)", what, st ? lfl_last_error() : "ok");
    cc_check(st == LFL_OK, msg);
    if (st == LFL_OK) {
        snprintf(msg, sizeof msg, "%s: forward", what);
        cc_close(msg, y, yd, atol, rtol);
        cc_check(yd->device == 0, "the output stays on cuda:0");
        if (any) {
            lfl_rng_seed(seed);
            lfl_tensor *g = cc_randn(y->ndim, y->shape, y->dtype, 1.0), *gd = cc_cuda(g);
            CC_OK(lfl_backward(y, g));
            st = lfl_backward(yd, gd);
            snprintf(msg, sizeof msg, "%s: backward runs on cuda:0 (%s)", what, st ? lfl_last_error() : "ok");
            cc_check(st == LFL_OK, msg);
            for (int i = 0; st == LFL_OK && i < n; i++) {
                if (!grad[i]) continue;
                snprintf(msg, sizeof msg, "%s: grad of input %d", what, i);
                cc_close(msg, in[i]->grad, dev[i]->grad, gatol, grtol);
                if (dev[i]->grad) cc_check(dev[i]->grad->device == 0, "a device leaf's gradient is on the device");
            }
            lfl_tensor_release(g);
            lfl_tensor_release(gd);
        }
    }
    lfl_tensor_release(y);
    lfl_tensor_release(yd);
    release_all(n, in);
    release_all(n, dev);
}

static void run_pair(const char *what, int n, lfl_tensor **in, const bool *grad, op_fn f, const void *ctx,
                     double atol, double rtol, double gatol, double grtol, uint64_t seed)
{
    run_pair_on(what, n, in, NULL, grad, f, ctx, atol, rtol, gatol, grtol, seed);
}

/* t (a new CPU tensor) and its cuda:0 twin as views transposed over dims d0, d1:
 * leaves whose rows are not row-major (the last dim stays unit-stride) */
static void view_pair(lfl_tensor *t, int d0, int d1, lfl_tensor **cpu, lfl_tensor **cuda)
{
    lfl_tensor *td = cc_cuda(t);
    bool g = lfl_set_grad_enabled(false);
    CC_OK(lfl_transpose(t, d0, d1, cpu));
    CC_OK(lfl_transpose(td, d0, d1, cuda));
    lfl_set_grad_enabled(g);
    lfl_tensor_release(t);
    lfl_tensor_release(td);
}

static double tol(lfl_dtype dt, double f32, double f64) { return dt == LFL_F32 ? f32 : f64; }

/* ---- rmsnorm ----------------------------------------------------------------- */
struct norm_ctx { double eps; bool has_w, has_b; };

static lfl_status rms_op(lfl_tensor **in, const void *c, lfl_tensor **out)
{
    const struct norm_ctx *p = c;
    return lfl_rmsnorm(in[0], in[1], p->eps, out);
}

static void rmsnorm_case(lfl_dtype dt, int nd, const int64_t *shape, bool view, bool wgrad)
{
    char what[128];
    int64_t H = shape[nd - 1];
    snprintf(what, sizeof what, "rmsnorm %s [%lld..%lld] H=%lld%s", lfl_dtype_name(dt), (long long)shape[0],
             (long long)shape[nd - 2], (long long)H, view ? " (transposed rows)" : "");
    lfl_tensor *in[2] = {cc_randn(nd, shape, dt, 1.0), cc_randn(1, &H, dt, 1.0)}, *dev[2] = {NULL, cc_cuda(in[1])};
    if (view) view_pair(in[0], 0, 1, &in[0], &dev[0]); /* shape is the base's: the view swaps its first two dims */
    else dev[0] = cc_cuda(in[0]);
    bool grad[2] = {true, wgrad};
    struct norm_ctx c = {1e-6, true, false};
    run_pair_on(what, 2, in, dev, grad, rms_op, &c, tol(dt, 1e-6, 1e-13), tol(dt, 1e-5, 1e-12), tol(dt, 1e-5, 1e-12),
             tol(dt, 1e-5, 1e-12), 11);
}

static void rmsnorm_tests(lfl_dtype dt)
{
    rmsnorm_case(dt, 2, (int64_t[]){1, 70}, false, true);         /* one row, H not a multiple of 32 */
    rmsnorm_case(dt, 2, (int64_t[]){200, 70}, false, true);       /* dw over several chunks with a tail */
    rmsnorm_case(dt, 3, (int64_t[]){2, 3, 1500}, false, true);    /* a row of 384 threads */
    rmsnorm_case(dt, 2, (int64_t[]){3, 3000}, false, true);       /* longer than the largest block (512 x 4) */
    rmsnorm_case(dt, 3, (int64_t[]){5, 7, 33}, true, true);       /* transposed leading dims */
    rmsnorm_case(dt, 2, (int64_t[]){9, 40}, false, false);        /* no dw wanted */
    rmsnorm_case(dt, 2, (int64_t[]){0, 40}, false, true);         /* no rows: dw is zeros */
}

/* ---- layernorm ---------------------------------------------------------------- */
static lfl_status ln_op(lfl_tensor **in, const void *c, lfl_tensor **out)
{
    const struct norm_ctx *p = c;
    return lfl_layernorm(in[0], p->has_w ? in[1] : NULL, p->has_b ? in[2] : NULL, p->eps, out);
}

static void layernorm_case(lfl_dtype dt, int nd, const int64_t *shape, bool view, bool has_w, bool has_b)
{
    char what[160];
    int64_t H = shape[nd - 1];
    snprintf(what, sizeof what, "layernorm %s [%lld..%lld] H=%lld%s%s%s", lfl_dtype_name(dt), (long long)shape[0],
             (long long)shape[nd - 2], (long long)H, has_w ? " w" : "", has_b ? " b" : "",
             view ? " (transposed rows)" : "");
    lfl_tensor *x = cc_randn(nd, shape, dt, 2.0);
    for (int64_t i = 0; i < lfl_numel(x); i++) lfl_set(x, i, lfl_get(x, i) + 0.5); /* a mean away from 0 */
    lfl_tensor *in[3] = {x, cc_randn(1, &H, dt, 1.0), cc_randn(1, &H, dt, 1.0)};
    lfl_tensor *dev[3] = {NULL, cc_cuda(in[1]), cc_cuda(in[2])};
    if (view) view_pair(in[0], 0, 1, &in[0], &dev[0]);
    else dev[0] = cc_cuda(in[0]);
    bool grad[3] = {true, has_w, has_b};
    struct norm_ctx c = {1e-5, has_w, has_b};
    run_pair_on(what, 3, in, dev, grad, ln_op, &c, tol(dt, 1e-5, 1e-12), tol(dt, 1e-5, 1e-12), tol(dt, 1e-5, 1e-12),
             tol(dt, 1e-5, 1e-12), 12);
}

static void layernorm_tests(lfl_dtype dt)
{
    layernorm_case(dt, 2, (int64_t[]){1, 70}, false, true, true);
    layernorm_case(dt, 2, (int64_t[]){200, 70}, false, true, true);
    layernorm_case(dt, 3, (int64_t[]){2, 3, 1500}, false, true, false);
    layernorm_case(dt, 2, (int64_t[]){3, 3000}, false, false, true);
    layernorm_case(dt, 2, (int64_t[]){17, 45}, false, false, false);
    layernorm_case(dt, 3, (int64_t[]){5, 7, 33}, true, true, true);
    layernorm_case(dt, 2, (int64_t[]){0, 40}, false, true, true);
}

/* ---- rope ---------------------------------------------------------------------------- */
/* in: x [B, H, T, D], cos, sin */
static lfl_status rope_op(lfl_tensor **in, const void *c, lfl_tensor **out)
{
    (void)c;
    return lfl_rope(in[0], in[1], in[2], out);
}

/* cos/sin of shape [Bc, T, D] (Bc 0: [T, D]) from positions on the CPU */
static void cos_sin(int64_t Bc, int64_t T, int64_t D, lfl_dtype dt, lfl_tensor **c, lfl_tensor **s)
{
    int64_t h = D / 2, n = Bc ? Bc : 1, shape[2] = {n, T};
    lfl_tensor *pos = cc_randint(2, shape, LFL_I64, 0, 4096), *inv, *c3, *s3;
    CC_OK(lfl_empty(1, &h, LFL_F32, LFL_CPU, &inv));
    for (int64_t k = 0; k < h; k++) lfl_set(inv, k, pow(10000.0, -2.0 * (double)k / (double)D));
    CC_OK(lfl_rope_cos_sin(pos, inv, 1.0, dt, &c3, &s3));
    if (Bc) {
        *c = c3;
        *s = s3;
    } else {
        int64_t s2[2] = {T, D};
        CC_OK(lfl_reshape(c3, 2, s2, c));
        CC_OK(lfl_reshape(s3, 2, s2, s));
        lfl_tensor_release(c3);
        lfl_tensor_release(s3);
    }
    lfl_tensor_release(pos);
    lfl_tensor_release(inv);
}

static void rope_case(lfl_dtype dt, int64_t B, int64_t H, int64_t T, int64_t D, int64_t Bc, bool view)
{
    char what[128];
    snprintf(what, sizeof what, "rope %s [%lld,%lld,%lld,%lld] cos batch %lld%s", lfl_dtype_name(dt), (long long)B,
             (long long)H, (long long)T, (long long)D, (long long)Bc, view ? " (transposed input)" : "");
    int64_t shape[4] = {B, view ? T : H, view ? H : T, D};
    lfl_tensor *in[3];
    in[0] = cc_randn(4, shape, dt, 1.0);
    cos_sin(Bc, T, D, dt, &in[1], &in[2]);
    lfl_tensor *dev[3] = {NULL, cc_cuda(in[1]), cc_cuda(in[2])};
    if (view) view_pair(in[0], 1, 2, &in[0], &dev[0]); /* [B, T, H, D] -> [B, H, T, D] */
    else dev[0] = cc_cuda(in[0]);
    bool grad[3] = {true, false, false};
    run_pair_on(what, 3, in, dev, grad, rope_op, NULL, tol(dt, 1e-6, 1e-14), tol(dt, 1e-6, 1e-14), tol(dt, 1e-6, 1e-14),
             tol(dt, 1e-6, 1e-14), 13);
}

static void rope_tests(lfl_dtype dt)
{
    rope_case(dt, 2, 3, 5, 10, 2, false);   /* per-batch cos/sin, 5 pairs per row */
    rope_case(dt, 2, 3, 5, 70, 1, false);   /* shared [1, T, D], 35 pairs */
    rope_case(dt, 1, 2, 3, 300, 0, false);  /* [T, D] cos/sin, 150 pairs: more than one x-block */
    rope_case(dt, 2, 4, 9, 64, 2, true);    /* q as a transposed [B, T, H, D] projection */
    rope_case(dt, 1, 1, 1, 2, 1, false);    /* one pair */
    rope_case(dt, 2, 0, 5, 10, 2, false);   /* no heads */
}

/* ---- rope_cos_sin ------------------------------------------------------------------- */
static void cos_sin_case(lfl_dtype pdt, bool pos2d, bool pos_view, lfl_dtype fdt, lfl_dtype odt, double scaling,
                         int64_t B, int64_t T, int64_t h)
{
    char what[160];
    snprintf(what, sizeof what, "rope_cos_sin pos %s %s%s inv_freq %s out %s scaling %g h=%lld",
             lfl_dtype_name(pdt), pos2d ? "[B,T]" : "[T]", pos_view ? " (transposed)" : "", lfl_dtype_name(fdt),
             lfl_dtype_name(odt), scaling, (long long)h);
    lfl_tensor *pos, *pv, *inv, *c, *s, *cd = NULL, *sd = NULL;
    if (pos2d) pos = cc_randint(2, pos_view ? (int64_t[]){T, B} : (int64_t[]){B, T}, pdt, 0, 8192);
    else pos = cc_randint(1, &T, pdt, 0, 8192);
    CC_OK(lfl_empty(1, &h, fdt, LFL_CPU, &inv));
    for (int64_t k = 0; k < h; k++) lfl_set(inv, k, pow(500000.0, -(double)k / (double)h) * (k % 3 ? 1.0 : 0.25));
    lfl_tensor *posd = cc_cuda(pos), *invd = cc_cuda(inv), *pvd;
    if (pos_view) {
        CC_OK(lfl_transpose(pos, 0, 1, &pv));
        CC_OK(lfl_transpose(posd, 0, 1, &pvd));
    } else {
        pv = lfl_tensor_retain(pos);
        pvd = lfl_tensor_retain(posd);
    }
    CC_OK(lfl_rope_cos_sin(pv, inv, scaling, odt, &c, &s));
    lfl_status st = lfl_rope_cos_sin(pvd, invd, scaling, odt, &cd, &sd);
    char msg[220];
    snprintf(msg, sizeof msg, "%s: runs on cuda:0 (%s)", what, st ? lfl_last_error() : "ok");
    cc_check(st == LFL_OK, msg);
    if (st == LFL_OK) {
        /* in f32 on both sides: the GPU's cosf/sinf are within 2 ulp of libm's */
        snprintf(msg, sizeof msg, "%s: cos", what);
        cc_close(msg, c, cd, 1e-6, 0);
        snprintf(msg, sizeof msg, "%s: sin", what);
        cc_close(msg, s, sd, 1e-6, 0);
        cc_check(cd->device == 0 && sd->device == 0, "cos/sin are made on cuda:0");
    }
    lfl_tensor *all[10] = {pos, pv, inv, c, s, cd, sd, posd, invd, pvd};
    release_all(10, all);
}

static void cos_sin_tests(void)
{
    cos_sin_case(LFL_I64, true, false, LFL_F32, LFL_F32, 1.0, 2, 37, 35);
    cos_sin_case(LFL_I32, false, false, LFL_F32, LFL_F64, 0.7, 1, 50, 64);
    cos_sin_case(LFL_I64, true, true, LFL_F64, LFL_F32, 1.3, 3, 11, 150);
    cos_sin_case(LFL_I32, true, false, LFL_F64, LFL_F64, 1.0, 2, 1, 1);
}

/* ---- swiglu, geglu ------------------------------------------------------------------- */
struct glu_ctx { int kind; bool fused; }; /* kind 0 swiglu, 1 geglu tanh, 2 geglu erf */

/* in: gate and up, or (fused) one [..., 2F] leaf split into its halves */
static lfl_status glu_op(lfl_tensor **in, const void *c, lfl_tensor **out)
{
    const struct glu_ctx *p = c;
    lfl_tensor *g, *u;
    if (p->fused) {
        int d = in[0]->ndim - 1;
        int64_t F = in[0]->shape[d] / 2;
        LFL_TRY(lfl_narrow(in[0], d, 0, F, &g));
        LFL_TRY(lfl_narrow(in[0], d, F, F, &u));
    } else {
        g = lfl_tensor_retain(in[0]);
        u = lfl_tensor_retain(in[1]);
    }
    lfl_status st = p->kind == 0 ? lfl_swiglu(g, u, out) : lfl_geglu(g, u, p->kind == 1, out);
    lfl_tensor_release(g);
    lfl_tensor_release(u);
    return st;
}

static void glu_case(int kind, lfl_dtype dt, int nd, const int64_t *shape, bool fused, bool ggrad, bool ugrad)
{
    static const char *names[3] = {"swiglu", "geglu tanh", "geglu erf"};
    char what[160];
    snprintf(what, sizeof what, "%s %s [%lld..%lld]%s%s%s", names[kind], lfl_dtype_name(dt), (long long)shape[0],
             (long long)shape[nd - 1], fused ? " (halves of a fused tensor)" : "", ggrad ? " dgate" : "",
             ugrad ? " dup" : "");
    struct glu_ctx c = {kind, fused};
    double t = tol(dt, 1e-5, 1e-13);
    if (fused) {
        int64_t s2[LFL_MAX_DIMS];
        memcpy(s2, shape, sizeof(int64_t) * (size_t)nd);
        s2[nd - 1] *= 2;
        lfl_tensor *in[1] = {cc_randn(nd, s2, dt, 3.0)};
        bool grad[1] = {ggrad};
        run_pair(what, 1, in, grad, glu_op, &c, t, t, t, t, 14);
    } else {
        lfl_tensor *in[2] = {cc_randn(nd, shape, dt, 3.0), cc_randn(nd, shape, dt, 1.0)};
        bool grad[2] = {ggrad, ugrad};
        run_pair(what, 2, in, grad, glu_op, &c, t, t, t, t, 14);
    }
}

static void glu_tests(lfl_dtype dt)
{
    for (int kind = 0; kind < 3; kind++) {
        glu_case(kind, dt, 2, (int64_t[]){37, 70}, false, true, true);
        glu_case(kind, dt, 3, (int64_t[]){3, 4, 300}, false, true, false); /* only dgate */
        glu_case(kind, dt, 2, (int64_t[]){5, 33}, false, false, true);     /* only dup */
        glu_case(kind, dt, 1, (int64_t[]){1}, false, true, true);
        glu_case(kind, dt, 2, (int64_t[]){9, 45}, true, false, false);     /* strided rows, forward */
        glu_case(kind, dt, 2, (int64_t[]){0, 16}, false, true, true);      /* empty */
    }
}

/* ---- cross_entropy, token_logprobs ------------------------------------------------------ */
struct loss_ctx { int kind; lfl_reduction r; }; /* kind 0 cross_entropy, 1 token_logprobs */

static lfl_status loss_op(lfl_tensor **in, const void *c, lfl_tensor **out)
{
    const struct loss_ctx *p = c;
    return p->kind ? lfl_token_logprobs(in[0], in[1], out) : lfl_cross_entropy(in[0], in[1], p->r, out);
}

/* labels for logits [..., V]: uniform in [0, V), every `ignore`-th -100 (0: none, 1: all) */
static lfl_tensor *labels_for(int nd, const int64_t *shape, int64_t V, int ignore)
{
    lfl_tensor *l = cc_randint(nd - 1, shape, LFL_I64, 0, V);
    int64_t *p = lfl_data(l), n = lfl_numel(l);
    for (int64_t i = 0; ignore && i < n; i++)
        if (i % ignore == 0) p[i] = -100;
    return l;
}

/* ninf: -inf logits at every 7th column of every row but the last, and (all_ninf) a last row all -inf */
static void loss_case(int kind, lfl_reduction r, lfl_dtype dt, int nd, const int64_t *shape, int ignore, bool ninf,
                      bool all_ninf)
{
    static const char *rn[3] = {"mean", "sum", "none"};
    char what[160];
    int64_t V = shape[nd - 1];
    snprintf(what, sizeof what, "%s%s%s %s [%lld..%lld]%s%s%s", kind ? "token_logprobs" : "cross_entropy",
             kind ? "" : " ", kind ? "" : rn[r], lfl_dtype_name(dt), (long long)shape[0], (long long)V,
             ignore == 1 ? " all ignored" : ignore ? " some ignored" : "", ninf ? " -inf logits" : "",
             all_ninf ? " an all -inf row" : "");
    lfl_tensor *x = cc_randn(nd, shape, dt, 3.0);
    int64_t n = lfl_numel(x), rows = V ? n / V : 0;
    if (ninf)
        for (int64_t i = 0; i < (rows - 1) * V; i++)
            if (i % V % 7 == 3) lfl_set(x, i, -INFINITY);
    if (all_ninf)
        for (int64_t j = 0; j < V; j++) lfl_set(x, (rows - 1) * V + j, -INFINITY);
    lfl_tensor *lab = labels_for(nd, shape, V, ignore);
    if (ninf) /* labels on finite logits */
        for (int64_t i = 0; i < rows; i++) {
            int64_t *p = (int64_t *)lfl_data(lab) + i;
            if (*p >= 0 && *p % 7 == 3) *p = *p ? *p - 1 : 1;
        }
    lfl_tensor *in[2] = {x, lab};
    bool grad[2] = {!all_ninf, false}; /* an all -inf row's gradient is NaN on both sides: nothing to compare */
    struct loss_ctx c = {kind, kind ? LFL_REDUCE_NONE : r};
    run_pair(what, 2, in, grad, loss_op, &c, tol(dt, 1e-6, 1e-12), tol(dt, 1e-5, 1e-12), tol(dt, 1e-7, 1e-14),
             tol(dt, 1e-5, 1e-12), 15);
}

static void loss_tests(lfl_dtype dt)
{
    for (int kind = 0; kind < 2; kind++)
        for (int r = 0; r < (kind ? 1 : 3); r++) {
            lfl_reduction red = (lfl_reduction)r;
            loss_case(kind, red, dt, 2, (int64_t[]){37, 70}, 5, false, false);
            loss_case(kind, red, dt, 3, (int64_t[]){4, 3, 1500}, 0, false, false);
            loss_case(kind, red, dt, 2, (int64_t[]){1, 5000}, 0, false, false); /* a row beyond 512 x 4 */
            loss_case(kind, red, dt, 2, (int64_t[]){9, 100}, 4, true, false);
            loss_case(kind, red, dt, 2, (int64_t[]){6, 40}, 1, false, false);   /* mean over no rows: NaN */
            loss_case(kind, red, dt, 2, (int64_t[]){0, 10}, 0, false, false);   /* no rows */
            loss_case(kind, red, dt, 2, (int64_t[]){3, 1}, 0, false, false);    /* one class */
            loss_case(kind, red, dt, 2, (int64_t[]){5, 64}, 0, true, true);
        }
}

/* a label out of range (and, later, another: then the first is named): the
 * device gives the CPU's message */
static void bad_label(int kind, int64_t bad, int64_t later)
{
    int64_t shape[3] = {3, 4, 50};
    lfl_tensor *x = cc_randn(3, shape, LFL_F32, 1.0), *lab = labels_for(3, shape, 50, 3);
    ((int64_t *)lfl_data(lab))[6] = bad;  /* position [1,2] */
    if (later) ((int64_t *)lfl_data(lab))[10] = later;
    lfl_tensor *xd = cc_cuda(x), *ld = cc_cuda(lab), *y = NULL, *yd = NULL;
    const char *name = kind ? "token_logprobs" : "cross_entropy";
    lfl_status a = kind ? lfl_token_logprobs(x, lab, &y) : lfl_cross_entropy(x, lab, LFL_REDUCE_MEAN, &y);
    char want[300], what[120];
    snprintf(want, sizeof want, "%s", a ? lfl_last_error() : "");
    lfl_status b = kind ? lfl_token_logprobs(xd, ld, &yd) : lfl_cross_entropy(xd, ld, LFL_REDUCE_MEAN, &yd);
    snprintf(what, sizeof what, "%s label %lld: the CPU fails", name, (long long)bad);
    cc_check(a == LFL_ERR_ARG && strstr(want, "position [1,2]") != NULL, what);
    snprintf(what, sizeof what, "%s label %lld: cuda:0 fails with the CPU's message (got: %s)", name, (long long)bad,
             b ? lfl_last_error() : "no error");
    cc_check(b == a && strcmp(lfl_last_error(), want) == 0, what);
    cc_check(y == NULL && yd == NULL, "no output on a bad label");
    lfl_tensor *all[4] = {x, lab, xd, ld};
    release_all(4, all);
}

int main(void)
{
    if (!cc_begin("test_cuda_norms")) return 0;
    lfl_dtype dts[2] = {LFL_F32, LFL_F64};
    for (int i = 0; i < 2; i++) {
        rmsnorm_tests(dts[i]);
        layernorm_tests(dts[i]);
        rope_tests(dts[i]);
        glu_tests(dts[i]);
        loss_tests(dts[i]);
    }
    cos_sin_tests();
    for (int kind = 0; kind < 2; kind++) {
        bad_label(kind, 50, 0); /* V itself, alone */
        bad_label(kind, -3, 77);
    }
    return cc_end();
}
