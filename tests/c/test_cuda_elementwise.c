/* The CUDA kernels of the elementwise group against the CPU's: copy (every
 * dtype pair, strided, transposed, broadcast sources and strided
 * destinations), fill, and what runs on them (lfl_contiguous, lfl_clone,
 * lfl_cast with its backward); affine, pow, every unary kind, compare, where,
 * masked_fill and dropout, forward and backward (dropout: the CPU's mask from
 * the same RNG state). Conversions, selections and masks must give the CPU's
 * values exactly (NaN only as NaN: its payload may differ on a GPU), math
 * within a few ulp. Runs on a GPU or on the emulator (build-emu); skipped
 * without either. */
#include <string.h>
#include "cuda_check.h"

static const lfl_dtype plain[8] = {LFL_F32, LFL_F64, LFL_F16, LFL_BF16, LFL_I32, LFL_I64, LFL_U8, LFL_BOOL};

static bool is_float(lfl_dtype dt) { return dt <= LFL_BF16; }

/* one element of a contiguous CPU tensor as its bits (floats: NaN as one pattern) */
static uint64_t elem_bits(const lfl_tensor *t, int64_t i)
{
    const char *p = (const char *)lfl_data(t) + i * (int64_t)lfl_dtype_size(t->dtype);
    uint64_t b = 0;
    if (is_float(t->dtype) && isnan(lfl_get(t, i))) return 0x7ff8dead7ff8deadull;
    memcpy(&b, p, lfl_dtype_size(t->dtype));
    return b;
}

/* want (CPU) and got (any device, any strides) hold the same values bit for bit */
static void same_values(const char *what, lfl_tensor *want, lfl_tensor *got)
{
    char msg[256];
    bool shape = want->ndim == got->ndim && want->dtype == got->dtype;
    for (int d = 0; shape && d < want->ndim; d++) shape = want->shape[d] == got->shape[d];
    if (!shape) {
        snprintf(msg, sizeof msg, "%s: shape or dtype differs (%s vs %s)", what, lfl_dtype_name(want->dtype),
                 lfl_dtype_name(got->dtype));
        cc_check(false, msg);
        return;
    }
    lfl_tensor *wc, *gc, *gh;
    bool g = lfl_set_grad_enabled(false);
    CC_OK(lfl_contiguous(want, &wc));
    CC_OK(lfl_contiguous(got, &gc)); /* on got's device: the copy kernel under test */
    CC_OK(lfl_to_device(gc, LFL_CPU, &gh));
    lfl_set_grad_enabled(g);
    int64_t n = lfl_numel(wc), bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++)
        if (elem_bits(wc, i) != elem_bits(gh, i)) bad = i;
    if (bad < 0)
        snprintf(msg, sizeof msg, "%s", what);
    else
        snprintf(msg, sizeof msg, "%s: element %lld: cpu %.17g, cuda %.17g", what, (long long)bad, lfl_get(wc, bad),
                 lfl_get(gh, bad));
    cc_check(bad < 0, msg);
    lfl_tensor_release(wc), lfl_tensor_release(gc), lfl_tensor_release(gh);
}

/* [3, 37] values of dtype dt on the CPU: the conversions' edge cases first
 * (NaN, infinities, -0, halves, out of the integer ranges, 16-bit subnormals
 * and overflow), then normal values scaled to cross the u8 range */
static lfl_tensor *edge_values(lfl_dtype dt)
{
    static const double edges[] = {NAN, INFINITY, -INFINITY, -0.0, 0.5, -0.5, 1.5, 2.5, -1.0, 255.0, 255.9,
                                   256.0, 300.25, -300.0, 65504.0, 65520.0, 1e-7, 3e-8, 1e10, -1e10, 3e38,
                                   2147483647.0, 2147483648.0, -2147483649.0, 9007199254740993.0, 0.1, 1.0 / 3};
    int64_t shape[2] = {3, 37};
    lfl_tensor *f, *t;
    CC_OK(lfl_empty(2, shape, LFL_F64, LFL_CPU, &f));
    CC_OK(lfl_randn_(f, 0, 80));
    int ne = (int)(sizeof edges / sizeof edges[0]);
    for (int i = 0; i < ne; i++) lfl_set(f, i, edges[i]);
    if (dt == LFL_I64 || dt == LFL_I32) { /* no NaN/inf in an integer source (the CPU's cast is undefined there) */
        for (int i = 0; i < 3; i++) lfl_set(f, i, -7 - i);
    }
    CC_OK(lfl_cast(f, dt, &t));
    lfl_tensor_release(f);
    if (dt == LFL_I64) { /* beyond 2^53: i64 -> f64/f32 rounds */
        ((int64_t *)lfl_data(t))[40] = (1ll << 53) + 1;
        ((int64_t *)lfl_data(t))[41] = -(1ll << 62) - 12345;
        ((int64_t *)lfl_data(t))[42] = (1ll << 40) + 3;
    }
    return t;
}

static void cast_pairs(void)
{
    for (int i = 0; i < 8; i++) {
        lfl_tensor *a = edge_values(plain[i]), *ad = cc_cuda(a), *at, *adt;
        CC_OK(lfl_transpose(a, 0, 1, &at));
        CC_OK(lfl_transpose(ad, 0, 1, &adt));
        for (int j = 0; j < 8; j++) {
            if (i == j) continue;
            char what[96];
            lfl_tensor *y, *yd;
            CC_OK(lfl_cast(a, plain[j], &y));
            CC_OK(lfl_cast(ad, plain[j], &yd));
            cc_check(yd->device == 0, "a cast stays on cuda:0");
            snprintf(what, sizeof what, "cast %s -> %s", lfl_dtype_name(plain[i]), lfl_dtype_name(plain[j]));
            same_values(what, y, yd);
            lfl_tensor_release(y), lfl_tensor_release(yd);
            CC_OK(lfl_cast(at, plain[j], &y)); /* a transposed source: the strided conversion */
            CC_OK(lfl_cast(adt, plain[j], &yd));
            snprintf(what, sizeof what, "cast %s^T -> %s", lfl_dtype_name(plain[i]), lfl_dtype_name(plain[j]));
            same_values(what, y, yd);
            lfl_tensor_release(y), lfl_tensor_release(yd);
        }
        lfl_tensor_release(a), lfl_tensor_release(ad), lfl_tensor_release(at), lfl_tensor_release(adt);
    }
}

/* copies of one dtype through views: transposed, permuted, stepped slices,
 * a broadcast source, a strided destination */
static void strided_copies(lfl_dtype dt)
{
    char what[96];
    const char *dn = lfl_dtype_name(dt);
    int64_t shape[3] = {5, 7, 33};
    lfl_tensor *f = cc_randn(3, shape, LFL_F64, 50.0), *a, *ad;
    CC_OK(lfl_cast(f, dt, &a));
    ad = cc_cuda(a);
    lfl_tensor *v, *vd, *y, *yd;
    /* a permuted view made contiguous */
    CC_OK(lfl_permute(a, (int[]){2, 0, 1}, &v));
    CC_OK(lfl_permute(ad, (int[]){2, 0, 1}, &vd));
    CC_OK(lfl_contiguous(v, &y));
    CC_OK(lfl_contiguous(vd, &yd));
    cc_check(lfl_is_contiguous(yd) && yd->device == 0, "contiguous gives a contiguous cuda tensor");
    snprintf(what, sizeof what, "contiguous of a permuted %s [5,7,33]", dn);
    same_values(what, y, yd);
    lfl_tensor_release(v), lfl_tensor_release(vd), lfl_tensor_release(y), lfl_tensor_release(yd);
    /* a stepped slice of a transposed view, cloned */
    lfl_tensor *t, *td;
    CC_OK(lfl_transpose(a, 1, 2, &t));
    CC_OK(lfl_transpose(ad, 1, 2, &td));
    CC_OK(lfl_slice(t, 1, 2, 31, 3, &v));
    CC_OK(lfl_slice(td, 1, 2, 31, 3, &vd));
    CC_OK(lfl_clone(v, &y));
    CC_OK(lfl_clone(vd, &yd));
    snprintf(what, sizeof what, "clone of a stepped slice of a transposed %s", dn);
    same_values(what, y, yd);
    lfl_tensor_release(t), lfl_tensor_release(td), lfl_tensor_release(v), lfl_tensor_release(vd);
    lfl_tensor_release(y), lfl_tensor_release(yd);
    /* copy_ of a broadcast source [7, 1] into [5, 7, 33] */
    lfl_tensor *s, *sd;
    CC_OK(lfl_narrow(a, 0, 1, 1, &v));
    CC_OK(lfl_narrow(ad, 0, 1, 1, &vd));
    CC_OK(lfl_narrow(v, 2, 4, 1, &s));
    CC_OK(lfl_narrow(vd, 2, 4, 1, &sd));
    CC_OK(lfl_reshape(s, 2, (int64_t[]){7, 1}, &t));
    CC_OK(lfl_reshape(sd, 2, (int64_t[]){7, 1}, &td));
    CC_OK(lfl_empty(3, shape, dt, LFL_CPU, &y));
    CC_OK(lfl_empty(3, shape, dt, 0, &yd));
    CC_OK(lfl_copy_(y, t));
    CC_OK(lfl_copy_(yd, td));
    snprintf(what, sizeof what, "copy_ of a broadcast %s [7,1] into [5,7,33]", dn);
    same_values(what, y, yd);
    lfl_tensor_release(v), lfl_tensor_release(vd), lfl_tensor_release(s), lfl_tensor_release(sd);
    lfl_tensor_release(t), lfl_tensor_release(td);
    /* copy_ into a strided destination: every other column of y's transpose, from a (a [5, 7, 17] slice) */
    CC_OK(lfl_transpose(y, 0, 2, &t));  /* [33, 7, 5] */
    CC_OK(lfl_transpose(yd, 0, 2, &td));
    CC_OK(lfl_slice(t, 0, 0, 33, 2, &v)); /* [17, 7, 5] */
    CC_OK(lfl_slice(td, 0, 0, 33, 2, &vd));
    lfl_tensor *src, *srcd;
    CC_OK(lfl_narrow(a, 2, 3, 17, &s)); /* [5, 7, 17] */
    CC_OK(lfl_narrow(ad, 2, 3, 17, &sd));
    CC_OK(lfl_permute(s, (int[]){2, 1, 0}, &src));
    CC_OK(lfl_permute(sd, (int[]){2, 1, 0}, &srcd));
    CC_OK(lfl_copy_(v, src));
    CC_OK(lfl_copy_(vd, srcd));
    snprintf(what, sizeof what, "copy_ into a strided %s destination", dn);
    same_values(what, y, yd);
    lfl_tensor_release(t), lfl_tensor_release(td), lfl_tensor_release(v), lfl_tensor_release(vd);
    lfl_tensor_release(s), lfl_tensor_release(sd), lfl_tensor_release(src), lfl_tensor_release(srcd);
    lfl_tensor_release(y), lfl_tensor_release(yd);
    lfl_tensor_release(f), lfl_tensor_release(a), lfl_tensor_release(ad);
}

/* conversion and broadcast at once, an expanded (stride-0) source, a scalar,
 * an empty tensor, rows longer than one launch's block */
static void mixed_copies(void)
{
    lfl_tensor *a = cc_randn(2, (int64_t[]){1, 300}, LFL_F32, 3.0), *ad = cc_cuda(a), *e, *ed, *y, *yd;
    CC_OK(lfl_expand(a, 3, (int64_t[]){4, 70, 300}, &e));
    CC_OK(lfl_expand(ad, 3, (int64_t[]){4, 70, 300}, &ed));
    CC_OK(lfl_cast(e, LFL_BF16, &y));
    CC_OK(lfl_cast(ed, LFL_BF16, &yd));
    same_values("cast of an expanded f32 [4,70,300] to bf16", y, yd);
    lfl_tensor_release(y), lfl_tensor_release(yd);
    CC_OK(lfl_empty(3, (int64_t[]){2, 5, 300}, LFL_F64, LFL_CPU, &y));
    CC_OK(lfl_empty(3, (int64_t[]){2, 5, 300}, LFL_F64, 0, &yd));
    CC_OK(lfl_copy_(y, a));
    CC_OK(lfl_copy_(yd, ad));
    same_values("copy_ f32 [1,300] -> f64 [2,5,300]", y, yd);
    lfl_tensor_release(y), lfl_tensor_release(yd), lfl_tensor_release(e), lfl_tensor_release(ed);
    /* a 0-dim source and destination */
    lfl_tensor *s, *sd;
    CC_OK(lfl_select(a, 1, 17, &e));
    CC_OK(lfl_select(ad, 1, 17, &ed));
    CC_OK(lfl_select(e, 0, 0, &s));
    CC_OK(lfl_select(ed, 0, 0, &sd));
    CC_OK(lfl_cast(s, LFL_I64, &y));
    CC_OK(lfl_cast(sd, LFL_I64, &yd));
    same_values("cast of a 0-dim f32 to i64", y, yd);
    lfl_tensor_release(y), lfl_tensor_release(yd), lfl_tensor_release(e), lfl_tensor_release(ed);
    lfl_tensor_release(s), lfl_tensor_release(sd);
    /* empty */
    CC_OK(lfl_empty(2, (int64_t[]){0, 5}, LFL_F32, 0, &yd));
    CC_OK(lfl_cast(yd, LFL_F16, &y));
    cc_check(lfl_numel(y) == 0 && y->device == 0 && y->dtype == LFL_F16, "cast of an empty cuda tensor");
    lfl_tensor_release(y), lfl_tensor_release(yd);
    /* a contiguous same-dtype copy of 70000 elements (the device memcpy) and a
     * 2-D transpose of it (more elements than threads per launch row) */
    lfl_tensor *b = cc_randn(2, (int64_t[]){350, 200}, LFL_F32, 1.0), *bd = cc_cuda(b), *bt, *btd;
    CC_OK(lfl_clone(b, &y));
    CC_OK(lfl_clone(bd, &yd));
    same_values("clone of a contiguous f32 [350,200]", y, yd);
    lfl_tensor_release(y), lfl_tensor_release(yd);
    CC_OK(lfl_transpose(b, 0, 1, &bt));
    CC_OK(lfl_transpose(bd, 0, 1, &btd));
    CC_OK(lfl_contiguous(bt, &y));
    CC_OK(lfl_contiguous(btd, &yd));
    same_values("contiguous of a transposed f32 [350,200]", y, yd);
    lfl_tensor_release(y), lfl_tensor_release(yd), lfl_tensor_release(bt), lfl_tensor_release(btd);
    lfl_tensor_release(b), lfl_tensor_release(bd), lfl_tensor_release(a), lfl_tensor_release(ad);
    /* batched transposes (the tiles, several per launch in z): [5, 40, 36] -> [5, 36, 40], f32 and f16 */
    for (int k = 0; k < 2; k++) {
        lfl_dtype dt = k ? LFL_F16 : LFL_F32;
        b = cc_randn(3, (int64_t[]){5, 40, 36}, dt, 1.0), bd = cc_cuda(b);
        CC_OK(lfl_transpose(b, 1, 2, &bt));
        CC_OK(lfl_transpose(bd, 1, 2, &btd));
        CC_OK(lfl_contiguous(bt, &y));
        CC_OK(lfl_contiguous(btd, &yd));
        same_values(k ? "contiguous of a batched transpose, f16" : "contiguous of a batched transpose, f32", y, yd);
        lfl_tensor_release(y), lfl_tensor_release(yd), lfl_tensor_release(bt), lfl_tensor_release(btd);
        lfl_tensor_release(b), lfl_tensor_release(bd);
    }
}

static void fills(void)
{
    static const double values[] = {0.0, -0.0, 1.0, -1.5, 0.1, 300.7, 1e10, NAN, -INFINITY, 65519.0};
    for (int i = 0; i < 8; i++)
        for (int k = 0; k < (int)(sizeof values / sizeof values[0]); k++) {
            if ((plain[i] == LFL_I32 || plain[i] == LFL_I64) && (isnan(values[k]) || isinf(values[k]))) continue;
            char what[96];
            lfl_tensor *y, *yd;
            CC_OK(lfl_full(2, (int64_t[]){3, 45}, values[k], plain[i], LFL_CPU, &y));
            CC_OK(lfl_full(2, (int64_t[]){3, 45}, values[k], plain[i], 0, &yd));
            snprintf(what, sizeof what, "full %s %g", lfl_dtype_name(plain[i]), values[k]);
            same_values(what, y, yd);
            lfl_tensor_release(y), lfl_tensor_release(yd);
        }
    /* fill_ of a strided view leaves the rest alone */
    lfl_tensor *a = cc_randn(3, (int64_t[]){4, 9, 37}, LFL_F32, 1.0), *ad = cc_cuda(a), *v, *vd, *t, *td;
    CC_OK(lfl_transpose(a, 0, 2, &t));
    CC_OK(lfl_transpose(ad, 0, 2, &td));
    CC_OK(lfl_slice(t, 0, 1, 37, 4, &v));
    CC_OK(lfl_slice(td, 0, 1, 37, 4, &vd));
    CC_OK(lfl_fill_(v, -2.25));
    CC_OK(lfl_fill_(vd, -2.25));
    same_values("fill_ of a stepped transposed f32 view", a, ad);
    CC_OK(lfl_fill_(v, 0));
    CC_OK(lfl_fill_(vd, 0));
    same_values("fill_ 0 of a strided view (not a memset)", a, ad);
    lfl_tensor_release(v), lfl_tensor_release(vd), lfl_tensor_release(t), lfl_tensor_release(td);
    lfl_tensor_release(a), lfl_tensor_release(ad);
    /* the zeros of a device tensor and an empty fill */
    CC_OK(lfl_empty(1, (int64_t[]){0}, LFL_BF16, 0, &vd));
    CC_OK(lfl_fill_(vd, 3));
    lfl_tensor_release(vd);
}

/* cast and clone record their backward on the device */
static void cast_backward(void)
{
    lfl_tensor *x, *xd, *y, *yd, *z, *zd;
    cc_leaf_pair(cc_randn(2, (int64_t[]){6, 45}, LFL_F32, 1.0), &x, &xd);
    CC_OK(lfl_cast(x, LFL_F64, &y));
    CC_OK(lfl_cast(xd, LFL_F64, &yd));
    CC_OK(lfl_transpose(y, 0, 1, &z));
    CC_OK(lfl_transpose(yd, 0, 1, &zd));
    lfl_tensor *c, *cd;
    CC_OK(lfl_clone(z, &c));
    CC_OK(lfl_clone(zd, &cd));
    cc_backward_pair(c, cd, 11);
    same_values("cast f32 -> f64 -> clone: the leaf's gradient", x->grad, xd->grad);
    cc_check(xd->grad && xd->grad->device == 0 && xd->grad->dtype == LFL_F32, "the gradient is f32 on cuda:0");
    lfl_tensor_release(y), lfl_tensor_release(yd), lfl_tensor_release(z), lfl_tensor_release(zd);
    lfl_tensor_release(c), lfl_tensor_release(cd);
}

static void copy_errors(void)
{
    lfl_tensor *q, *f, *h, *t;
    CC_OK(lfl_empty(2, (int64_t[]){2, 32}, LFL_Q8_0, 0, &q));
    cc_check(lfl_cast(q, LFL_F32, &f) != LFL_OK && strstr(lfl_last_error(), "needs (de)quantization") &&
                 strstr(lfl_last_error(), "cuda:0"),
             "cast of a block-quantized cuda tensor: a clear error");
    lfl_tensor_release(q);
    /* across devices: still contiguous and of one dtype only */
    CC_OK(lfl_empty(2, (int64_t[]){3, 4}, LFL_F32, LFL_CPU, &h));
    CC_OK(lfl_empty(2, (int64_t[]){4, 3}, LFL_F32, 0, &f));
    CC_OK(lfl_transpose(f, 0, 1, &t));
    cc_check(lfl_copy_(t, h) != LFL_OK && strstr(lfl_last_error(), "across devices"),
             "copy_ to a strided view on another device: an error");
    lfl_tensor_release(h), lfl_tensor_release(f), lfl_tensor_release(t);
}

/* ---- elementwise math -------------------------------------------------- */

static double tol_of(lfl_dtype dt) { return dt == LFL_F64 ? 1e-12 : dt == LFL_F32 ? 1e-5 : 1e-2; }

static void affine(void)
{
    const lfl_dtype dts[7] = {LFL_F32, LFL_F64, LFL_F16, LFL_BF16, LFL_I32, LFL_I64, LFL_U8};
    for (int i = 0; i < 7; i++) {
        lfl_dtype dt = dts[i];
        bool fl = is_float(dt);
        lfl_tensor *a = fl ? cc_randn(2, (int64_t[]){7, 45}, dt, 2.0) : cc_randint(2, (int64_t[]){7, 45}, dt, 0, 100);
        lfl_tensor *ad = cc_cuda(a), *y, *yd;
        double s = fl ? -1.5 : 3, c = fl ? 0.25 : -7; /* u8: below 0 and above 255 wrap as on x86 */
        CC_OK(lfl_affine(a, s, c, &y));
        CC_OK(lfl_affine(ad, s, c, &yd));
        char what[64];
        snprintf(what, sizeof what, "affine %s [7,45]", lfl_dtype_name(dt));
        if (fl) cc_close(what, y, yd, tol_of(dt) * 1e-2, tol_of(dt) * 1e-2);
        else same_values(what, y, yd);
        lfl_tensor_release(y), lfl_tensor_release(yd), lfl_tensor_release(a), lfl_tensor_release(ad);
    }
    /* a transposed input (the front makes it contiguous) and the backward */
    lfl_tensor *x, *xd, *t, *td, *y, *yd;
    cc_leaf_pair(cc_randn(2, (int64_t[]){33, 300}, LFL_F32, 1.0), &x, &xd);
    CC_OK(lfl_transpose(x, 0, 1, &t));
    CC_OK(lfl_transpose(xd, 0, 1, &td));
    CC_OK(lfl_affine(t, 0.75, -3, &y));
    CC_OK(lfl_affine(td, 0.75, -3, &yd));
    cc_close("affine f32 of a transposed [300,33]", y, yd, 1e-6, 1e-6);
    cc_backward_pair(y, yd, 21);
    cc_close("affine backward f32", x->grad, xd->grad, 1e-6, 1e-6);
    lfl_tensor_release(t), lfl_tensor_release(td), lfl_tensor_release(y), lfl_tensor_release(yd);
    lfl_tensor_release(x), lfl_tensor_release(xd);
}

static void powers(lfl_dtype dt)
{
    static const double ps[] = {0, 1, 2, 3, 0.5, -0.5, -1, -2, 1.7, -0.3};
    for (int k = 0; k < (int)(sizeof ps / sizeof ps[0]); k++) {
        lfl_tensor *r = cc_randn(2, (int64_t[]){5, 77}, dt, 1.0), *x, *xd, *ab, *y, *yd;
        CC_OK(lfl_unary(LFL_U_ABS, r, &ab));
        CC_OK(lfl_affine(ab, 1, 0.05, &x)); /* positive: fractional powers are defined */
        lfl_tensor_release(r), lfl_tensor_release(ab);
        cc_leaf_pair(x, &x, &xd); /* made from tensors without grad: a leaf */
        CC_OK(lfl_pow(x, ps[k], &y));
        CC_OK(lfl_pow(xd, ps[k], &yd));
        char what[64];
        snprintf(what, sizeof what, "pow %s p=%g", lfl_dtype_name(dt), ps[k]);
        cc_close(what, y, yd, 0, tol_of(dt));
        cc_backward_pair(y, yd, 30 + k);
        snprintf(what, sizeof what, "pow backward %s p=%g", lfl_dtype_name(dt), ps[k]);
        cc_close(what, x->grad, xd->grad, 0, tol_of(dt));
        lfl_tensor_release(y), lfl_tensor_release(yd), lfl_tensor_release(x), lfl_tensor_release(xd);
    }
}

static void unaries(lfl_dtype dt)
{
    static const char *const names[LFL_U_COUNT] = {"neg", "exp", "log", "sqrt", "rsqrt", "abs", "tanh",
                                                   "sigmoid", "silu", "gelu", "gelu_tanh", "relu"};
    for (int k = 0; k < LFL_U_COUNT; k++) {
        bool positive = k == LFL_U_LOG || k == LFL_U_SQRT || k == LFL_U_RSQRT;
        lfl_tensor *r = cc_randn(2, (int64_t[]){7, 131}, dt, 3.0), *x, *xd, *y, *yd;
        if (positive) {
            lfl_tensor *ab;
            CC_OK(lfl_unary(LFL_U_ABS, r, &ab));
            CC_OK(lfl_affine(ab, 1, 0.05, &x));
            lfl_tensor_release(ab);
        } else {
            x = lfl_tensor_retain(r);
        }
        lfl_tensor_release(r);
        if (k == LFL_U_ABS || k == LFL_U_RELU) lfl_set(x, 3, 0.0); /* the kink: a zero gradient */
        cc_leaf_pair(x, &x, &xd);
        CC_OK(lfl_unary((lfl_unary_kind)k, x, &y));
        CC_OK(lfl_unary((lfl_unary_kind)k, xd, &yd));
        char what[64];
        snprintf(what, sizeof what, "%s %s [7,131]", names[k], lfl_dtype_name(dt));
        cc_close(what, y, yd, tol_of(dt), tol_of(dt));
        cc_backward_pair(y, yd, 50 + k);
        snprintf(what, sizeof what, "%s backward %s", names[k], lfl_dtype_name(dt));
        cc_close(what, x->grad, xd->grad, tol_of(dt), tol_of(dt));
        lfl_tensor_release(y), lfl_tensor_release(yd), lfl_tensor_release(x), lfl_tensor_release(xd);
    }
    /* relu keeps NaN; an empty input */
    lfl_tensor *x = cc_randn(1, (int64_t[]){40}, dt, 1.0), *xd, *y, *yd;
    lfl_set(x, 5, NAN);
    xd = cc_cuda(x);
    CC_OK(lfl_unary(LFL_U_RELU, x, &y));
    CC_OK(lfl_unary(LFL_U_RELU, xd, &yd));
    same_values("relu keeps NaN", y, yd);
    lfl_tensor_release(x), lfl_tensor_release(xd), lfl_tensor_release(y), lfl_tensor_release(yd);
    CC_OK(lfl_empty(2, (int64_t[]){0, 3}, dt, 0, &xd));
    CC_OK(lfl_unary(LFL_U_EXP, xd, &yd));
    cc_check(lfl_numel(yd) == 0 && yd->device == 0, "exp of an empty cuda tensor");
    lfl_tensor_release(xd), lfl_tensor_release(yd);
}

/* ---- masks ------------------------------------------------------------- */

/* small integers of dtype dt (ties for eq/le/ge), NaN in the float ones */
static lfl_tensor *ties(int nd, const int64_t *shape, lfl_dtype dt)
{
    lfl_tensor *i = cc_randint(nd, shape, LFL_I64, 0, dt == LFL_BOOL ? 2 : 5), *t;
    CC_OK(lfl_cast(i, dt, &t));
    lfl_tensor_release(i);
    if (is_float(dt)) lfl_set(t, 2, NAN);
    return t;
}

static void compares(void)
{
    static const char *const names[6] = {"eq", "ne", "lt", "le", "gt", "ge"};
    for (int i = 0; i < 8; i++) {
        lfl_dtype dt = plain[i];
        lfl_tensor *a = ties(3, (int64_t[]){4, 1, 37}, dt), *b = ties(2, (int64_t[]){5, 37}, dt);
        lfl_tensor *c = ties(2, (int64_t[]){37, 5}, dt), *ad = cc_cuda(a), *bd = cc_cuda(b), *cd = cc_cuda(c);
        lfl_tensor *ct, *ctd;
        CC_OK(lfl_transpose(c, 0, 1, &ct));
        CC_OK(lfl_transpose(cd, 0, 1, &ctd));
        for (int k = 0; k < 6; k++) {
            char what[64];
            lfl_tensor *y, *yd;
            CC_OK(lfl_compare((lfl_cmp_kind)k, a, b, &y));
            CC_OK(lfl_compare((lfl_cmp_kind)k, ad, bd, &yd));
            snprintf(what, sizeof what, "%s %s [4,1,37] vs [5,37]", names[k], lfl_dtype_name(dt));
            same_values(what, y, yd);
            lfl_tensor_release(y), lfl_tensor_release(yd);
            CC_OK(lfl_compare((lfl_cmp_kind)k, ct, b, &y));
            CC_OK(lfl_compare((lfl_cmp_kind)k, ctd, bd, &yd));
            snprintf(what, sizeof what, "%s %s transposed vs contiguous", names[k], lfl_dtype_name(dt));
            same_values(what, y, yd);
            lfl_tensor_release(y), lfl_tensor_release(yd);
        }
        lfl_tensor_release(a), lfl_tensor_release(b), lfl_tensor_release(c), lfl_tensor_release(ct);
        lfl_tensor_release(ad), lfl_tensor_release(bd), lfl_tensor_release(cd), lfl_tensor_release(ctd);
    }
    /* i64 beyond 2^53 compares exactly */
    lfl_tensor *a, *b, *y, *yd;
    CC_OK(lfl_zeros(1, (int64_t[]){3}, LFL_I64, LFL_CPU, &a));
    CC_OK(lfl_zeros(1, (int64_t[]){3}, LFL_I64, LFL_CPU, &b));
    for (int i = 0; i < 3; i++) {
        ((int64_t *)lfl_data(a))[i] = (1ll << 60) + i;
        ((int64_t *)lfl_data(b))[i] = (1ll << 60) + 1;
    }
    lfl_tensor *ad = cc_cuda(a), *bd = cc_cuda(b);
    CC_OK(lfl_compare(LFL_CMP_LT, ad, bd, &yd));
    CC_OK(lfl_compare(LFL_CMP_LT, a, b, &y));
    same_values("lt i64 near 2^60", y, yd);
    cc_check(((uint8_t *)lfl_data(y))[0] == 1 && ((uint8_t *)lfl_data(y))[1] == 0, "the CPU reference is exact");
    lfl_tensor_release(a), lfl_tensor_release(b), lfl_tensor_release(ad), lfl_tensor_release(bd);
    lfl_tensor_release(y), lfl_tensor_release(yd);
}

static void wheres(void)
{
    const lfl_dtype dts[6] = {LFL_F32, LFL_F64, LFL_F16, LFL_I64, LFL_U8, LFL_BOOL};
    for (int i = 0; i < 6; i++) {
        lfl_dtype dt = dts[i];
        lfl_tensor *cond = cc_randint(3, (int64_t[]){4, 1, 37}, i % 2 ? LFL_U8 : LFL_BOOL, 0, 2);
        lfl_tensor *a = ties(2, (int64_t[]){5, 37}, dt), *b = ties(3, (int64_t[]){4, 5, 1}, dt);
        lfl_tensor *condd = cc_cuda(cond), *ad = cc_cuda(a), *bd = cc_cuda(b), *y, *yd;
        CC_OK(lfl_where(cond, a, b, &y));
        CC_OK(lfl_where(condd, ad, bd, &yd));
        char what[64];
        snprintf(what, sizeof what, "where %s, three broadcasts", lfl_dtype_name(dt));
        same_values(what, y, yd);
        lfl_tensor_release(y), lfl_tensor_release(yd);
        lfl_tensor_release(cond), lfl_tensor_release(a), lfl_tensor_release(b);
        lfl_tensor_release(condd), lfl_tensor_release(ad), lfl_tensor_release(bd);
    }
    /* contiguous operands (the flat kernel), a transposed one, and the backward */
    lfl_tensor *cond = cc_randint(2, (int64_t[]){9, 70}, LFL_BOOL, 0, 2), *condd = cc_cuda(cond);
    lfl_tensor *a, *ad, *b, *bd, *bt, *btd, *y, *yd;
    cc_leaf_pair(cc_randn(2, (int64_t[]){9, 70}, LFL_F32, 1.0), &a, &ad);
    cc_leaf_pair(cc_randn(2, (int64_t[]){70, 9}, LFL_F32, 1.0), &b, &bd);
    CC_OK(lfl_where(cond, a, a, &y));
    CC_OK(lfl_where(condd, ad, ad, &yd));
    same_values("where f32, all contiguous", y, yd);
    lfl_tensor_release(y), lfl_tensor_release(yd);
    CC_OK(lfl_transpose(b, 0, 1, &bt));
    CC_OK(lfl_transpose(bd, 0, 1, &btd));
    CC_OK(lfl_where(cond, a, bt, &y));
    CC_OK(lfl_where(condd, ad, btd, &yd));
    same_values("where f32, b transposed", y, yd);
    cc_backward_pair(y, yd, 77);
    same_values("where backward: a's gradient", a->grad, ad->grad);
    same_values("where backward: b's gradient", b->grad, bd->grad);
    lfl_tensor_release(y), lfl_tensor_release(yd), lfl_tensor_release(bt), lfl_tensor_release(btd);
    lfl_tensor_release(a), lfl_tensor_release(ad), lfl_tensor_release(b), lfl_tensor_release(bd);
    lfl_tensor_release(cond), lfl_tensor_release(condd);
}

static void masked_fills(void)
{
    for (int i = 0; i < 8; i++) {
        lfl_dtype dt = plain[i];
        double v = is_float(dt) ? -INFINITY : dt == LFL_BOOL ? 1 : 7;
        lfl_tensor *a = ties(2, (int64_t[]){6, 45}, dt), *ad = cc_cuda(a);
        lfl_tensor *masks[3] = {cc_randint(1, (int64_t[]){45}, LFL_BOOL, 0, 2),
                                cc_randint(2, (int64_t[]){6, 1}, LFL_U8, 0, 2),
                                cc_randint(2, (int64_t[]){45, 6}, LFL_BOOL, 0, 2)};
        for (int m = 0; m < 3; m++) {
            lfl_tensor *mk = masks[m], *mkd, *y, *yd;
            if (m == 2) CC_OK(lfl_transpose(masks[2], 0, 1, &mk)); /* a strided [6, 45] mask */
            else lfl_tensor_retain(mk);
            mkd = cc_cuda(masks[m]);
            if (m == 2) {
                lfl_tensor *t;
                CC_OK(lfl_transpose(mkd, 0, 1, &t));
                lfl_tensor_release(mkd);
                mkd = t;
            }
            CC_OK(lfl_masked_fill(a, mk, v, &y));
            CC_OK(lfl_masked_fill(ad, mkd, v, &yd));
            char what[80];
            snprintf(what, sizeof what, "masked_fill %s, mask %s", lfl_dtype_name(dt),
                     m == 0 ? "[45]" : m == 1 ? "u8 [6,1]" : "transposed [6,45]");
            same_values(what, y, yd);
            lfl_tensor_release(y), lfl_tensor_release(yd), lfl_tensor_release(mk), lfl_tensor_release(mkd);
        }
        for (int m = 0; m < 3; m++) lfl_tensor_release(masks[m]);
        lfl_tensor_release(a), lfl_tensor_release(ad);
    }
    /* the backward, and a value the dtype cannot hold: the CPU's error on both */
    lfl_tensor *x, *xd, *mk = cc_randint(2, (int64_t[]){1, 300}, LFL_BOOL, 0, 2), *mkd = cc_cuda(mk), *y, *yd;
    cc_leaf_pair(cc_randn(2, (int64_t[]){3, 300}, LFL_F64, 1.0), &x, &xd);
    CC_OK(lfl_masked_fill(x, mk, 2.5, &y));
    CC_OK(lfl_masked_fill(xd, mkd, 2.5, &yd));
    cc_backward_pair(y, yd, 88);
    same_values("masked_fill backward f64", x->grad, xd->grad);
    lfl_tensor_release(y), lfl_tensor_release(yd), lfl_tensor_release(x), lfl_tensor_release(xd);
    lfl_tensor *i = cc_randint(1, (int64_t[]){300}, LFL_I32, 0, 9), *id = cc_cuda(i);
    char want[256];
    cc_check(lfl_masked_fill(i, mk, 0.5, &y) != LFL_OK, "masked_fill 0.5 into i32 fails on the CPU");
    snprintf(want, sizeof want, "%s", lfl_last_error());
    cc_check(lfl_masked_fill(id, mkd, 0.5, &yd) != LFL_OK && strcmp(want, lfl_last_error()) == 0,
             "masked_fill 0.5 into i32 on cuda: the CPU's error");
    lfl_tensor_release(i), lfl_tensor_release(id), lfl_tensor_release(mk), lfl_tensor_release(mkd);
}

/* ---- dropout ------------------------------------------------------------- */

static void dropouts(lfl_dtype dt)
{
    static const double ps[] = {0.1, 0.5, 0.9, 1.0};
    for (int k = 0; k < 4; k++) {
        /* ones: the output is the mask times the scale; then random values */
        for (int ones = 1; ones >= 0; ones--) {
            lfl_tensor *x, *xd, *y, *yd, *y2, *y2d;
            if (ones) {
                CC_OK(lfl_full(2, (int64_t[]){7, 143}, 1.0, dt, LFL_CPU, &x));
                cc_leaf_pair(x, &x, &xd);
            } else {
                cc_leaf_pair(cc_randn(2, (int64_t[]){7, 143}, dt, 1.0), &x, &xd);
            }
            lfl_rng_seed(4321 + k);
            CC_OK(lfl_dropout(x, ps[k], &y));
            CC_OK(lfl_dropout(x, ps[k], &y2)); /* a second draw further down the stream */
            lfl_rng_state after = lfl_rng_get();
            lfl_rng_seed(4321 + k);
            CC_OK(lfl_dropout(xd, ps[k], &yd));
            CC_OK(lfl_dropout(xd, ps[k], &y2d));
            lfl_rng_state after_d = lfl_rng_get();
            char what[80];
            snprintf(what, sizeof what, "dropout %s p=%g%s: the CPU's mask", lfl_dtype_name(dt), ps[k],
                     ones ? " of ones" : "");
            same_values(what, y, yd);
            snprintf(what, sizeof what, "dropout %s p=%g%s: the second draw", lfl_dtype_name(dt), ps[k],
                     ones ? " of ones" : "");
            same_values(what, y2, y2d);
            cc_check(after.offset == after_d.offset && after.seed == after_d.seed,
                     "dropout on cuda moves the RNG stream as the CPU does");
            cc_backward_pair(y2, y2d, 99 + k); /* one path (a device gradient does not accumulate yet) */
            snprintf(what, sizeof what, "dropout backward %s p=%g", lfl_dtype_name(dt), ps[k]);
            same_values(what, x->grad, xd->grad);
            lfl_tensor_release(y), lfl_tensor_release(yd), lfl_tensor_release(y2), lfl_tensor_release(y2d);
            lfl_tensor_release(x), lfl_tensor_release(xd);
        }
    }
    /* a transposed input, several blocks of groups and a tail group of 3 */
    lfl_tensor *x = cc_randn(2, (int64_t[]){83, 101}, dt, 1.0), *xd = cc_cuda(x), *t, *td, *y, *yd;
    CC_OK(lfl_transpose(x, 0, 1, &t));
    CC_OK(lfl_transpose(xd, 0, 1, &td));
    lfl_rng_seed(5);
    CC_OK(lfl_dropout(t, 0.3, &y));
    lfl_rng_seed(5);
    CC_OK(lfl_dropout(td, 0.3, &yd));
    same_values("dropout of a transposed [101,83]", y, yd);
    lfl_tensor_release(x), lfl_tensor_release(xd), lfl_tensor_release(t), lfl_tensor_release(td);
    lfl_tensor_release(y), lfl_tensor_release(yd);
}

int main(void)
{
    if (!cc_begin("test_cuda_elementwise")) return 0;
    cast_pairs();
    for (int i = 0; i < 8; i++) strided_copies(plain[i]);
    mixed_copies();
    fills();
    cast_backward();
    copy_errors();
    affine();
    powers(LFL_F32);
    powers(LFL_F64);
    unaries(LFL_F32);
    unaries(LFL_F64);
    compares();
    wheres();
    masked_fills();
    dropouts(LFL_F32);
    dropouts(LFL_F64);
    return cc_end();
}
