/* The gemm group's CUDA kernels against the CPU: matmul with a bf16/f16
 * operand, linear and lora_linear forward and backward (f32, f64, a bf16/f16
 * weight with f32 input, an NF4/FP4 QLoRA base moved with its state), the
 * 16-bit and 4-bit weights in one block and in many (a test hook shrinks the
 * scratch), the fused head losses linear_cross_entropy (every reduction,
 * ignored rows, the eager dhidden form, chunks with tails), linear_kl_div and
 * linear_topk_entropy (ties at the k-th value), LLM.int8's int8_linear_lt bit
 * for bit, and the label errors with the CPU's message. Runs on a GPU or on
 * the emulator (build-emu); skipped without either. */
#include <string.h>
#include "cuda_check.h"
#include "quant/bnb4.h"
#include "quant/bnb8.h"

#ifdef LFL_HAVE_CUDA
long long lfl_cuda_lowp_block_elems(long long n); /* kernels/lowp_gemm.cuh's test hook */
#endif

static double tol_of(lfl_dtype dt) { return dt == LFL_F64 ? 1e-12 : 1e-5; }

static void rel(lfl_tensor **t) { lfl_tensor_release(*t); *t = NULL; }

/* ---- matmul with a 16-bit operand ------------------------------------------ */
static void matmul_lowp(lfl_dtype wdt)
{
    char what[96];
    const char *wn = lfl_dtype_name(wdt);
    /* f32 [2, 37, 45] @ w16 [45, 33]; w16 stored [33, 45] and viewed transposed; w16 [3, 37, 45] @ f32 [45, 20] */
    lfl_tensor *a = cc_randn(3, (int64_t[]){2, 37, 45}, LFL_F32, 1.0), *ad = cc_cuda(a);
    lfl_tensor *b = cc_randn(2, (int64_t[]){45, 33}, wdt, 1.0), *bd = cc_cuda(b);
    lfl_tensor *c = cc_randn(2, (int64_t[]){33, 45}, wdt, 1.0), *cd = cc_cuda(c);
    lfl_tensor *e = cc_randn(3, (int64_t[]){3, 37, 45}, wdt, 1.0), *ed = cc_cuda(e);
    lfl_tensor *f = cc_randn(2, (int64_t[]){45, 20}, LFL_F32, 1.0), *fd = cc_cuda(f);
    lfl_tensor *y, *yd, *ct, *ctd;
    CC_OK(lfl_matmul(a, b, &y));
    CC_OK(lfl_matmul(ad, bd, &yd));
    snprintf(what, sizeof what, "matmul f32 @ %s", wn);
    cc_check(yd->dtype == LFL_F32 && yd->device == 0, "matmul with a 16-bit operand: f32 on cuda:0");
    cc_close(what, y, yd, 1e-5, 1e-5);
    rel(&y), rel(&yd);
    CC_OK(lfl_transpose(c, 0, 1, &ct));
    CC_OK(lfl_transpose(cd, 0, 1, &ctd));
    CC_OK(lfl_matmul(a, ct, &y));
    CC_OK(lfl_matmul(ad, ctd, &yd));
    snprintf(what, sizeof what, "matmul f32 @ %s^T (a strided view)", wn);
    cc_close(what, y, yd, 1e-5, 1e-5);
    rel(&y), rel(&yd);
    CC_OK(lfl_matmul(e, f, &y));
    CC_OK(lfl_matmul(ed, fd, &yd));
    snprintf(what, sizeof what, "matmul %s [3,37,45] @ f32", wn);
    cc_close(what, y, yd, 1e-5, 1e-5);
    rel(&y), rel(&yd);
    lfl_tensor *et, *etd; /* a 16-bit left operand read transposed: [3, 45, 37]^T */
    lfl_tensor *e2 = cc_randn(3, (int64_t[]){3, 45, 37}, wdt, 1.0), *e2d = cc_cuda(e2);
    CC_OK(lfl_transpose(e2, 1, 2, &et));
    CC_OK(lfl_transpose(e2d, 1, 2, &etd));
    CC_OK(lfl_matmul(et, f, &y));
    CC_OK(lfl_matmul(etd, fd, &yd));
    snprintf(what, sizeof what, "matmul %s^T @ f32", wn);
    cc_close(what, y, yd, 1e-5, 1e-5);
    rel(&y), rel(&yd);
    /* backward through the f32 side (the 16-bit side is a frozen weight) */
    lfl_tensor *x, *xd;
    cc_leaf_pair(cc_randn(2, (int64_t[]){7, 45}, LFL_F32, 1.0), &x, &xd);
    CC_OK(lfl_matmul(x, ct, &y));
    CC_OK(lfl_matmul(xd, ctd, &yd));
    cc_backward_pair(y, yd, 11);
    snprintf(what, sizeof what, "matmul f32 @ %s^T: dx", wn);
    cc_close(what, x->grad, xd->grad, 1e-5, 1e-5);
    rel(&y), rel(&yd), rel(&x), rel(&xd);
    rel(&a), rel(&ad), rel(&b), rel(&bd), rel(&c), rel(&cd), rel(&e), rel(&ed), rel(&f), rel(&fd);
    rel(&ct), rel(&ctd), rel(&et), rel(&etd), rel(&e2), rel(&e2d);
}

/* ---- linear ---------------------------------------------------------------- */
/* x [lead..., in] (xdt) with w [out, in] (wdt); bias forward-only (its gradient is a sum, another group's kernel) */
static void linear_case(lfl_dtype xdt, lfl_dtype wdt, int nd, const int64_t *xshape, int64_t fout, bool bias,
                        bool w_grad)
{
    char what[128], base[96];
    int64_t fin = xshape[nd - 1];
    snprintf(base, sizeof base, "linear %s x %s w [%lld -> %lld]%s", lfl_dtype_name(xdt), lfl_dtype_name(wdt),
             (long long)fin, (long long)fout, bias ? " +bias" : "");
    double tol = tol_of(xdt);
    lfl_tensor *x, *xd, *w, *wd, *b = NULL, *bd = NULL, *y, *yd;
    cc_leaf_pair(cc_randn(nd, xshape, xdt, 1.0), &x, &xd);
    w = cc_randn(2, (int64_t[]){fout, fin}, wdt, 0.5);
    wd = cc_cuda(w);
    if (w_grad) w->requires_grad = wd->requires_grad = true;
    if (bias) { b = cc_randn(1, &fout, xdt, 1.0); bd = cc_cuda(b); }
    CC_OK(lfl_linear(x, w, b, &y));
    CC_OK(lfl_linear(xd, wd, bd, &yd));
    cc_close(base, y, yd, tol, tol);
    if (!bias) {
        cc_backward_pair(y, yd, 21);
        snprintf(what, sizeof what, "%s: dx", base);
        cc_close(what, x->grad, xd->grad, tol, tol);
        if (w_grad) {
            snprintf(what, sizeof what, "%s: dw", base);
            cc_close(what, w->grad, wd->grad, tol, tol);
        }
    }
    rel(&x), rel(&xd), rel(&w), rel(&wd), rel(&y), rel(&yd);
    if (b) rel(&b), rel(&bd);
}

static void linear_strided_w(lfl_dtype wdt)
{
    /* a 16-bit w read through its strides: [in, out] stored, used as its transpose */
    lfl_tensor *x = cc_randn(2, (int64_t[]){9, 40}, LFL_F32, 1.0), *xd = cc_cuda(x);
    lfl_tensor *ws = cc_randn(2, (int64_t[]){40, 35}, wdt, 1.0), *wsd = cc_cuda(ws), *w, *wd, *y, *yd;
    CC_OK(lfl_transpose(ws, 0, 1, &w));
    CC_OK(lfl_transpose(wsd, 0, 1, &wd));
    CC_OK(lfl_linear(x, w, NULL, &y));
    CC_OK(lfl_linear(xd, wd, NULL, &yd));
    char what[80];
    snprintf(what, sizeof what, "linear with a transposed %s w view", lfl_dtype_name(wdt));
    cc_close(what, y, yd, 1e-5, 1e-5);
    rel(&x), rel(&xd), rel(&ws), rel(&wsd), rel(&w), rel(&wd), rel(&y), rel(&yd);
}

static void linear_strided_bias(void)
{
    /* a bias that is a strided view (every other element of a [2 * out] vector): the front passes it as it is */
    lfl_tensor *x = cc_randn(2, (int64_t[]){6, 30}, LFL_F32, 1.0), *xd = cc_cuda(x);
    lfl_tensor *w = cc_randn(2, (int64_t[]){17, 30}, LFL_F32, 1.0), *wd = cc_cuda(w);
    lfl_tensor *bb = cc_randn(2, (int64_t[]){17, 2}, LFL_F32, 1.0), *bbd = cc_cuda(bb), *b, *bd, *y, *yd;
    CC_OK(lfl_select(bb, 1, 1, &b));
    CC_OK(lfl_select(bbd, 1, 1, &bd));
    cc_check(b->stride[0] == 2 && bd->stride[0] == 2, "the bias view is strided");
    CC_OK(lfl_linear(x, w, b, &y));
    CC_OK(lfl_linear(xd, wd, bd, &yd));
    cc_close("linear with a strided bias view", y, yd, 1e-5, 1e-5);
    rel(&x), rel(&xd), rel(&w), rel(&wd), rel(&bb), rel(&bbd), rel(&b), rel(&bd), rel(&y), rel(&yd);
}

static void linears(void)
{
    linear_strided_bias();
    lfl_dtype dts[2] = {LFL_F32, LFL_F64};
    for (int i = 0; i < 2; i++) {
        linear_case(dts[i], dts[i], 3, (int64_t[]){2, 19, 45}, 33, false, true);
        linear_case(dts[i], dts[i], 2, (int64_t[]){1, 70}, 5, false, true); /* one row */
        linear_case(dts[i], dts[i], 2, (int64_t[]){13, 45}, 33, true, false);
        linear_case(dts[i], dts[i], 2, (int64_t[]){0, 45}, 33, false, true); /* no rows: dw is zeros */
    }
    lfl_dtype lp[2] = {LFL_BF16, LFL_F16};
    for (int i = 0; i < 2; i++) {
        linear_case(LFL_F32, lp[i], 3, (int64_t[]){3, 11, 67}, 29, false, false);
        linear_case(LFL_F32, lp[i], 3, (int64_t[]){3, 11, 67}, 29, false, true); /* an f32 dw of a 16-bit w */
        linear_case(LFL_F32, lp[i], 2, (int64_t[]){5, 67}, 29, true, false);
        linear_strided_w(lp[i]);
    }
}

/* ---- lora_linear ------------------------------------------------------------ */
static void lora_case(lfl_dtype xdt, lfl_dtype wdt, int64_t rows, int64_t fin, int64_t fout, int64_t r, bool bias,
                      double scaling)
{
    char what[160], base[128];
    snprintf(base, sizeof base, "lora_linear %s x %s w [%lld -> %lld] r %lld%s", lfl_dtype_name(xdt),
             lfl_dtype_name(wdt), (long long)fin, (long long)fout, (long long)r, bias ? " +bias" : "");
    double tol = tol_of(xdt);
    lfl_tensor *x, *xd, *w, *wd, *A, *Ad, *B, *Bd, *b = NULL, *bd = NULL, *y, *yd;
    cc_leaf_pair(cc_randn(2, (int64_t[]){rows, fin}, xdt, 1.0), &x, &xd);
    w = cc_randn(2, (int64_t[]){fout, fin}, wdt, 0.5);
    wd = cc_cuda(w);
    bool wg = wdt == xdt; /* a 16-bit base is frozen; a full-precision one also trains here */
    if (wg) w->requires_grad = wd->requires_grad = true;
    cc_leaf_pair(cc_randn(2, (int64_t[]){r, fin}, xdt, 0.3), &A, &Ad);
    cc_leaf_pair(cc_randn(2, (int64_t[]){fout, r}, xdt, 0.3), &B, &Bd);
    if (bias) { b = cc_randn(1, &fout, xdt, 1.0); bd = cc_cuda(b); }
    CC_OK(lfl_lora_linear(x, w, b, A, B, scaling, &y));
    CC_OK(lfl_lora_linear(xd, wd, bd, Ad, Bd, scaling, &yd));
    cc_close(base, y, yd, tol, tol);
    cc_backward_pair(y, yd, 31);
    lfl_tensor *gs[4][2] = {{x->grad, xd->grad}, {w->grad, wd->grad}, {A->grad, Ad->grad}, {B->grad, Bd->grad}};
    const char *names[4] = {"dx", "dw", "dA", "dB"};
    for (int i = 0; i < 4; i++) {
        if (i == 1 && !wg) continue;
        snprintf(what, sizeof what, "%s: %s", base, names[i]);
        cc_close(what, gs[i][0], gs[i][1], tol, tol);
    }
    /* the side product alone (a replay) */
    lfl_tensor *side = NULL, *sided = NULL, *y2 = NULL, *y2d = NULL, *gy = lfl_detach(y), *gyd = lfl_detach(yd);
    bool g = lfl_set_grad_enabled(false);
    CC_OK(lfl_lora_linear_given(x, w, b, A, B, scaling, gy, NULL, &y2, &side));
    CC_OK(lfl_lora_linear_given(xd, wd, bd, Ad, Bd, scaling, gyd, NULL, &y2d, &sided));
    lfl_set_grad_enabled(g);
    rel(&gy), rel(&gyd);
    snprintf(what, sizeof what, "%s: side product x A^T", base);
    cc_close(what, side, sided, tol, tol);
    rel(&side), rel(&sided), rel(&y2), rel(&y2d);
    rel(&x), rel(&xd), rel(&w), rel(&wd), rel(&A), rel(&Ad), rel(&B), rel(&Bd), rel(&y), rel(&yd);
    if (b) rel(&b), rel(&bd);
}

static void loras(void)
{
    lora_case(LFL_F32, LFL_F32, 37, 45, 33, 8, false, 2.0);
    lora_case(LFL_F64, LFL_F64, 37, 45, 33, 5, false, 16.0 / 3.0); /* a scaling f32 cannot hold */
    lora_case(LFL_F32, LFL_F32, 1, 70, 9, 3, true, 0.5);
    lora_case(LFL_F32, LFL_BF16, 21, 67, 40, 4, false, 2.0);
    lora_case(LFL_F32, LFL_F16, 21, 67, 40, 4, true, 2.0);
}

/* ---- the fused head losses -------------------------------------------------- */
/* labels [n] in [0, V) with every 5th position ignored (-100) */
static lfl_tensor *labels_of(int64_t n, int64_t V, int ignore_every)
{
    lfl_tensor *l = cc_randint(1, &n, LFL_I64, 0, V);
    for (int64_t i = 0; ignore_every && i < n; i += ignore_every) ((int64_t *)lfl_data(l))[i] = -100;
    return l;
}

static const char *red_name(lfl_reduction r)
{
    return r == LFL_REDUCE_MEAN ? "mean" : r == LFL_REDUCE_SUM ? "sum" : "none";
}

/* hidden [N, H] (hdt) @ w [V, H] (wdt); which of the two take a gradient picks
 * the chunked (w trains) or the eager (w frozen) form */
static void lce_case(lfl_dtype hdt, lfl_dtype wdt, int64_t N, int64_t H, int64_t V, int64_t chunk, lfl_reduction r,
                     bool h_grad, bool w_grad, int ignore_every)
{
    char what[200], base[160];
    snprintf(base, sizeof base, "linear_cross_entropy %s x %s w N %lld H %lld V %lld chunk %lld %s%s%s",
             lfl_dtype_name(hdt), lfl_dtype_name(wdt), (long long)N, (long long)H, (long long)V, (long long)chunk,
             red_name(r), h_grad && !w_grad ? " (eager)" : "", ignore_every ? " ignored rows" : "");
    double tol = hdt == LFL_F64 ? 1e-11 : 1e-5;
    lfl_tensor *h = cc_randn(2, (int64_t[]){N, H}, hdt, 1.0), *hd = cc_cuda(h);
    lfl_tensor *w = cc_randn(2, (int64_t[]){V, H}, wdt, 0.3), *wd = cc_cuda(w);
    lfl_tensor *l = labels_of(N, V, ignore_every), *ld = cc_cuda(l), *y, *yd;
    if (h_grad) h->requires_grad = hd->requires_grad = true;
    if (w_grad) w->requires_grad = wd->requires_grad = true;
    CC_OK(lfl_linear_cross_entropy(h, w, l, r, chunk, &y));
    CC_OK(lfl_linear_cross_entropy(hd, wd, ld, r, chunk, &yd));
    cc_close(base, y, yd, tol, tol);
    if (h_grad || w_grad) {
        cc_backward_pair(y, yd, 41);
        if (h_grad) {
            snprintf(what, sizeof what, "%s: dhidden", base);
            cc_close(what, h->grad, hd->grad, tol, tol);
        }
        if (w_grad) {
            snprintf(what, sizeof what, "%s: dw", base);
            cc_close(what, w->grad, wd->grad, tol, tol);
        }
    }
    rel(&h), rel(&hd), rel(&w), rel(&wd), rel(&l), rel(&ld), rel(&y), rel(&yd);
}

static void lces(void)
{
    lfl_reduction reds[3] = {LFL_REDUCE_MEAN, LFL_REDUCE_SUM, LFL_REDUCE_NONE};
    lfl_dtype dts[2] = {LFL_F32, LFL_F64};
    for (int d = 0; d < 2; d++)
        for (int i = 0; i < 3; i++) {
            lce_case(dts[d], dts[d], 37, 45, 300, 64, reds[i], true, true, 5);  /* chunks with a 44-column tail */
            lce_case(dts[d], dts[d], 37, 45, 300, 64, reds[i], true, false, 5); /* eager dhidden */
        }
    lce_case(LFL_F32, LFL_F32, 1, 70, 1000, 0, LFL_REDUCE_MEAN, true, true, 0); /* one row longer than a block */
    lce_case(LFL_F32, LFL_F32, 3, 33, 700, 700, LFL_REDUCE_SUM, false, true, 0);   /* one chunk, only dw */
    lce_case(LFL_F32, LFL_F32, 6, 20, 50, 16, LFL_REDUCE_MEAN, true, true, 1);    /* every row ignored: NaN */
    lce_case(LFL_F32, LFL_F32, 0, 20, 50, 16, LFL_REDUCE_SUM, true, true, 0);     /* no rows */
    lfl_dtype lp[2] = {LFL_BF16, LFL_F16};
    for (int i = 0; i < 2; i++) {
        lce_case(LFL_F32, lp[i], 29, 40, 260, 96, LFL_REDUCE_MEAN, true, false, 4); /* a frozen 16-bit head: eager */
        lce_case(LFL_F32, lp[i], 29, 40, 260, 96, LFL_REDUCE_NONE, true, true, 4);  /* its f32 dw */
    }
    /* a label out of range: the CPU's message */
    lfl_tensor *h = cc_randn(2, (int64_t[]){4, 8}, LFL_F32, 1.0), *hd = cc_cuda(h);
    lfl_tensor *w = cc_randn(2, (int64_t[]){10, 8}, LFL_F32, 1.0), *wd = cc_cuda(w);
    lfl_tensor *l = labels_of(4, 10, 0), *y = NULL;
    ((int64_t *)lfl_data(l))[2] = 10;
    lfl_tensor *ld = cc_cuda(l);
    lfl_status s1 = lfl_linear_cross_entropy(h, w, l, LFL_REDUCE_MEAN, 0, &y);
    char cpu_msg[512];
    snprintf(cpu_msg, sizeof cpu_msg, "%s", lfl_last_error());
    lfl_status s2 = lfl_linear_cross_entropy(hd, wd, ld, LFL_REDUCE_MEAN, 0, &y);
    cc_check(s1 != LFL_OK && s2 == s1 && strcmp(cpu_msg, lfl_last_error()) == 0 && strstr(cpu_msg, "label 10"),
             "linear_cross_entropy: a label out of range gives the CPU's error on cuda:0");
    rel(&h), rel(&hd), rel(&w), rel(&wd), rel(&l), rel(&ld);
}

/* policy hidden [N, H] @ w [V, H] (wdt) against a reference [N, Hr] @ [V, Hr] (rwdt) */
static void lkl_case(lfl_dtype hdt, lfl_dtype wdt, lfl_dtype rwdt, int64_t N, int64_t H, int64_t Hr, int64_t V,
                     int64_t chunk, bool h_grad, bool w_grad, int ignore_every)
{
    char what[200], base[160];
    snprintf(base, sizeof base, "linear_kl_div %s x %s w (ref %s) N %lld H %lld Hr %lld V %lld chunk %lld",
             lfl_dtype_name(hdt), lfl_dtype_name(wdt), lfl_dtype_name(rwdt), (long long)N, (long long)H,
             (long long)Hr, (long long)V, (long long)chunk);
    double tol = hdt == LFL_F64 ? 1e-11 : 1e-5;
    lfl_tensor *h = cc_randn(2, (int64_t[]){N, H}, hdt, 1.0), *hd = cc_cuda(h);
    lfl_tensor *w = cc_randn(2, (int64_t[]){V, H}, wdt, 0.3), *wd = cc_cuda(w);
    lfl_tensor *rh = cc_randn(2, (int64_t[]){N, Hr}, hdt, 1.0), *rhd = cc_cuda(rh);
    lfl_tensor *rw = cc_randn(2, (int64_t[]){V, Hr}, rwdt, 0.3), *rwd = cc_cuda(rw);
    lfl_tensor *l = labels_of(N, V, ignore_every), *ld = cc_cuda(l), *y, *yd;
    if (h_grad) h->requires_grad = hd->requires_grad = true;
    if (w_grad) w->requires_grad = wd->requires_grad = true;
    CC_OK(lfl_linear_kl_div(h, w, rh, rw, l, chunk, &y));
    CC_OK(lfl_linear_kl_div(hd, wd, rhd, rwd, ld, chunk, &yd));
    cc_close(base, y, yd, tol, tol);
    if (h_grad || w_grad) {
        cc_backward_pair(y, yd, 51);
        if (h_grad) {
            snprintf(what, sizeof what, "%s: dhidden", base);
            cc_close(what, h->grad, hd->grad, tol, tol);
        }
        if (w_grad) {
            snprintf(what, sizeof what, "%s: dw", base);
            cc_close(what, w->grad, wd->grad, tol, tol);
        }
    }
    rel(&h), rel(&hd), rel(&w), rel(&wd), rel(&rh), rel(&rhd), rel(&rw), rel(&rwd), rel(&l), rel(&ld);
    rel(&y), rel(&yd);
}

static void lkls(void)
{
    lkl_case(LFL_F32, LFL_F32, LFL_F32, 37, 45, 30, 300, 64, true, true, 5);
    lkl_case(LFL_F64, LFL_F64, LFL_F64, 37, 45, 30, 300, 64, true, true, 5);
    lkl_case(LFL_F64, LFL_F64, LFL_F64, 1, 70, 70, 600, 0, true, false, 0); /* one row, one chunk longer than a block */
    lkl_case(LFL_F32, LFL_F32, LFL_F32, 9, 20, 20, 50, 16, false, true, 0);
    lkl_case(LFL_F32, LFL_BF16, LFL_BF16, 21, 40, 24, 260, 96, true, false, 3); /* frozen 16-bit heads */
    lkl_case(LFL_F32, LFL_F16, LFL_F32, 21, 40, 24, 260, 96, true, true, 3);
    lkl_case(LFL_F32, LFL_F32, LFL_F32, 0, 20, 20, 50, 16, true, true, 0); /* no rows */
    /* a label out of range: the CPU's message */
    lfl_tensor *h = cc_randn(2, (int64_t[]){3, 8}, LFL_F32, 1.0), *hd = cc_cuda(h);
    lfl_tensor *w = cc_randn(2, (int64_t[]){10, 8}, LFL_F32, 1.0), *wd = cc_cuda(w);
    lfl_tensor *l = labels_of(3, 10, 0), *y = NULL;
    ((int64_t *)lfl_data(l))[1] = -7;
    lfl_tensor *ld = cc_cuda(l);
    lfl_status s1 = lfl_linear_kl_div(h, w, h, w, l, 0, &y);
    char cpu_msg[512];
    snprintf(cpu_msg, sizeof cpu_msg, "%s", lfl_last_error());
    lfl_status s2 = lfl_linear_kl_div(hd, wd, hd, wd, ld, 0, &y);
    cc_check(s1 != LFL_OK && s2 == s1 && strcmp(cpu_msg, lfl_last_error()) == 0 && strstr(cpu_msg, "label -7"),
             "linear_kl_div: a label out of range gives the CPU's error on cuda:0");
    rel(&h), rel(&hd), rel(&w), rel(&wd), rel(&l), rel(&ld);
}

/* w's rows repeat with period `period` (0: none) so logits tie across chunks */
static void topk_case(lfl_dtype hdt, lfl_dtype wdt, int64_t N, int64_t H, int64_t V, int64_t k, int64_t chunk,
                      int64_t period)
{
    char base[160];
    snprintf(base, sizeof base, "linear_topk_entropy %s x %s w N %lld H %lld V %lld k %lld chunk %lld%s",
             lfl_dtype_name(hdt), lfl_dtype_name(wdt), (long long)N, (long long)H, (long long)V, (long long)k,
             (long long)chunk, period ? " tied logits" : "");
    double tol = hdt == LFL_F64 ? 1e-12 : 1e-5;
    lfl_tensor *h = cc_randn(2, (int64_t[]){N, H}, hdt, 1.0), *w = cc_randn(2, (int64_t[]){V, H}, wdt, 0.5);
    if (period) {
        size_t es = lfl_dtype_size(wdt);
        for (int64_t v = period; v < V; v++)
            memcpy((char *)lfl_data(w) + (size_t)(v * H) * es, (char *)lfl_data(w) + (size_t)((v % period) * H) * es,
                   (size_t)H * es);
    }
    lfl_tensor *hd = cc_cuda(h), *wd = cc_cuda(w), *y, *yd;
    CC_OK(lfl_linear_topk_entropy(h, w, k, chunk, &y));
    CC_OK(lfl_linear_topk_entropy(hd, wd, k, chunk, &yd));
    cc_close(base, y, yd, tol, tol);
    rel(&h), rel(&hd), rel(&w), rel(&wd), rel(&y), rel(&yd);
}

static void topks(void)
{
    lfl_dtype dts[2] = {LFL_F32, LFL_F64};
    for (int d = 0; d < 2; d++) {
        topk_case(dts[d], dts[d], 37, 45, 300, 20, 64, 0);
        topk_case(dts[d], dts[d], 37, 45, 300, 1, 64, 0);
        topk_case(dts[d], dts[d], 5, 45, 300, 300, 64, 0);  /* k = V: every logit */
        topk_case(dts[d], dts[d], 9, 30, 300, 100, 32, 0);  /* k wider than a chunk */
        topk_case(dts[d], dts[d], 1, 30, 1000, 257, 0, 0);  /* one row, k and a chunk wider than a block */
    }
    topk_case(LFL_F64, LFL_F64, 13, 20, 200, 21, 48, 50); /* each logit four times: ties at the k-th */
    topk_case(LFL_F64, LFL_F64, 13, 20, 200, 7, 200, 1);  /* a whole row tied */
    topk_case(LFL_F32, LFL_BF16, 17, 40, 260, 20, 96, 0);
    topk_case(LFL_F32, LFL_F16, 17, 40, 260, 20, 96, 0);
    topk_case(LFL_F32, LFL_F32, 0, 40, 260, 20, 96, 0);   /* no rows */
}

/* ---- LLM.int8 ------------------------------------------------------------------ */
/* An int8 weight on cuda:0: its codes copied to the device, its row scales
 * (quant->scb) left on the CPU as to_device would leave them; the kernel
 * moves them per call. */
static lfl_tensor *int8_on_device(lfl_tensor *q)
{
    lfl_tensor *qd;
    CC_OK(lfl_empty(2, q->shape, LFL_INT8, 0, &qd));
    CC_OK(lfl_device_memcpy(0, lfl_data(qd), lfl_data(q), (size_t)lfl_numel(q), 0));
    lfl_qstate_retain(q->quant);
    qd->quant = q->quant;
    return qd;
}

static void int8_case(int64_t m, int64_t k, int64_t n, double threshold, bool bias, bool zero_row)
{
    char base[160];
    snprintf(base, sizeof base, "int8_linear_lt [%lld, %lld] @ int8 [%lld, %lld]^T threshold %g%s%s", (long long)m,
             (long long)k, (long long)n, (long long)k, threshold, bias ? " +bias" : "", zero_row ? " a zero row" : "");
    lfl_tensor *wf = cc_randn(2, (int64_t[]){n, k}, LFL_F32, 1.0), *q, *qd;
    CC_OK(lfl_quantize_8bit(wf, &q));
    qd = int8_on_device(q);
    lfl_tensor *x = cc_randn(2, (int64_t[]){m, k}, LFL_F32, 2.5); /* |x| >= 6 here and there: outliers */
    if (zero_row) memset(lfl_data(x), 0, sizeof(float) * (size_t)k);
    lfl_tensor *xd = cc_cuda(x), *b = NULL, *bd = NULL, *y, *yd;
    if (bias) { b = cc_randn(1, &n, LFL_F32, 1.0); bd = cc_cuda(b); }
    CC_OK(lfl_int8_linear_lt(x, q, b, threshold, &y));
    CC_OK(lfl_int8_linear_lt(xd, qd, bd, threshold, &yd));
    cc_close(base, y, yd, 0, 0); /* the CPU's roundings one by one: bit for bit */
    rel(&wf), rel(&q), rel(&qd), rel(&x), rel(&xd), rel(&y), rel(&yd);
    if (b) rel(&b), rel(&bd);
}

static void int8s(void)
{
    int8_case(37, 70, 45, 6.0, false, false); /* tiles and k slices with tails, outlier columns */
    int8_case(37, 70, 45, 6.0, true, true);
    int8_case(37, 130, 20, 0.0, true, false); /* no decomposition */
    int8_case(1, 200, 33, 6.0, false, false); /* one row: its outliers are zeroed elements only */
    int8_case(0, 16, 8, 6.0, false, false);   /* no rows */
}

/* ---- a QLoRA base: an NF4/FP4 weight moved to the device with its state ---------- */
static void q4_case(lfl_dtype kind, bool dq, int64_t rows, int64_t fin, int64_t fout, bool lora, bool bias)
{
    char what[200], base[160];
    snprintf(base, sizeof base, "%s %s%s w [%lld -> %lld] rows %lld%s", lora ? "lora_linear" : "linear",
             lfl_dtype_name(kind), dq ? " (double quant)" : "", (long long)fin, (long long)fout, (long long)rows,
             bias ? " +bias" : "");
    lfl_tensor *wf = cc_randn(2, (int64_t[]){fout, fin}, LFL_F32, 0.5), *w, *wd;
    CC_OK(lfl_quantize_4bit(wf, kind, dq, &w));
    wd = cc_cuda(w);
    cc_check(wd->device == 0 && wd->dtype == kind, "the 4-bit weight is on cuda:0");
    lfl_tensor *x, *xd, *A = NULL, *Ad = NULL, *B = NULL, *Bd = NULL, *b = NULL, *bd = NULL, *y, *yd;
    cc_leaf_pair(cc_randn(2, (int64_t[]){rows, fin}, LFL_F32, 1.0), &x, &xd);
    if (bias) { b = cc_randn(1, &fout, LFL_F32, 1.0); bd = cc_cuda(b); }
    if (lora) {
        cc_leaf_pair(cc_randn(2, (int64_t[]){4, fin}, LFL_F32, 0.3), &A, &Ad);
        cc_leaf_pair(cc_randn(2, (int64_t[]){fout, 4}, LFL_F32, 0.3), &B, &Bd);
        CC_OK(lfl_lora_linear(x, w, b, A, B, 2.0, &y));
        CC_OK(lfl_lora_linear(xd, wd, bd, Ad, Bd, 2.0, &yd));
    } else {
        CC_OK(lfl_linear(x, w, b, &y));
        CC_OK(lfl_linear(xd, wd, bd, &yd));
    }
    cc_close(base, y, yd, 1e-5, 1e-5);
    if (!bias) {
        cc_backward_pair(y, yd, 61);
        snprintf(what, sizeof what, "%s: dx", base);
        cc_close(what, x->grad, xd->grad, 1e-5, 1e-5);
        if (lora) {
            snprintf(what, sizeof what, "%s: dA", base);
            cc_close(what, A->grad, Ad->grad, 1e-5, 1e-5);
            snprintf(what, sizeof what, "%s: dB", base);
            cc_close(what, B->grad, Bd->grad, 1e-5, 1e-5);
        }
    }
    rel(&wf), rel(&w), rel(&wd), rel(&x), rel(&xd), rel(&y), rel(&yd);
    if (A) rel(&A), rel(&Ad), rel(&B), rel(&Bd);
    if (b) rel(&b), rel(&bd);
}

static void q4s(void)
{
    q4_case(LFL_NF4, true, 13, 64, 40, false, false);
    q4_case(LFL_FP4, false, 13, 64, 40, false, true);
    q4_case(LFL_NF4, false, 9, 96, 34, true, false);
    q4_case(LFL_FP4, true, 1, 128, 20, true, true);
#ifdef LFL_HAVE_CUDA
    long long prev = lfl_cuda_lowp_block_elems(1000); /* dequantized in blocks of rows */
    q4_case(LFL_NF4, true, 13, 64, 40, true, false);
    q4_case(LFL_FP4, false, 7, 96, 46, false, false);
    q4_case(LFL_NF4, true, 5, 33, 64, false, false); /* rows of an odd length: blocks of an even row count */
    lfl_cuda_lowp_block_elems(prev);
#endif
}

int main(void)
{
    if (!cc_begin("test_cuda_gemm")) return 0;
    matmul_lowp(LFL_BF16);
    matmul_lowp(LFL_F16);
    linears();
#ifdef LFL_HAVE_CUDA
    /* the 16-bit weight widened in many blocks (and one row or column at a time where k > the block) */
    long long prev = lfl_cuda_lowp_block_elems(1000);
    matmul_lowp(LFL_BF16);
    linear_case(LFL_F32, LFL_F16, 3, (int64_t[]){3, 11, 67}, 29, false, true);
    linear_case(LFL_F32, LFL_BF16, 2, (int64_t[]){4, 1500}, 7, true, false);
    linear_strided_w(LFL_BF16);
    lfl_cuda_lowp_block_elems(prev);
#endif
    loras();
    q4s();
    lces();
    lkls();
    topks();
    int8s();
    return cc_end();
}
