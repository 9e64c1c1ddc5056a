/* The CUDA kernels of the elementwise group against the CPU's: copy (every
 * dtype pair, strided, transposed, broadcast sources and strided
 * destinations), fill, and what runs on them (lfl_contiguous, lfl_clone,
 * lfl_cast with its backward). Conversions must give the CPU's values exactly
 * (NaN only as NaN: its payload may differ on a GPU). Runs on a GPU or on the
 * emulator (build-emu); skipped without either. */
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

int main(void)
{
    if (!cc_begin("test_cuda_elementwise")) return 0;
    cast_pairs();
    for (int i = 0; i < 8; i++) strided_copies(plain[i]);
    mixed_copies();
    fills();
    cast_backward();
    copy_errors();
    return cc_end();
}
