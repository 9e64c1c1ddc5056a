/* The CUDA backend's first kernels against the CPU: broadcast add/sub/mul/div
 * (f32, f64), matmul through cuBLAS with every GEMM layout and batch
 * broadcasting, copies to the device and back, and the autograd of a small
 * graph run on the device. Runs on a GPU or on the emulator (build-emu);
 * skipped without either. */
#include "cuda_check.h"
#include "optim/optim.h"
#include "quant/bnb4.h"

static void binary_ops(lfl_dtype dt)
{
    int64_t sa[3] = {4, 1, 37}, sb[2] = {5, 37};
    lfl_tensor *a = cc_randn(3, sa, dt, 1.0), *b = cc_randn(2, sb, dt, 1.0);
    lfl_tensor *ad = cc_cuda(a), *bd = cc_cuda(b);
    lfl_status (*fns[4])(lfl_tensor *, lfl_tensor *, lfl_tensor **) = {lfl_add, lfl_sub, lfl_mul, lfl_div};
    const char *names[4] = {"add", "sub", "mul", "div"};
    for (int i = 0; i < 4; i++) {
        lfl_tensor *y, *yd;
        CC_OK(fns[i](a, b, &y));
        CC_OK(fns[i](ad, bd, &yd));
        char what[64];
        snprintf(what, sizeof what, "%s %s broadcast", names[i], lfl_dtype_name(dt));
        cc_check(yd->device == 0, "the result stays on cuda:0");
        cc_close(what, y, yd, 0, dt == LFL_F32 ? 1e-6 : 1e-15);
        lfl_tensor_release(y);
        lfl_tensor_release(yd);
    }
    lfl_tensor_release(a), lfl_tensor_release(b), lfl_tensor_release(ad), lfl_tensor_release(bd);
}

static void matmuls(lfl_dtype dt)
{
    /* [2, 3, 17, 9] @ [9, 13], a transposed view, a batch broadcast */
    int64_t sa[4] = {2, 3, 17, 9}, sb[2] = {9, 13}, sc[3] = {3, 13, 9};
    lfl_tensor *a = cc_randn(4, sa, dt, 1.0), *b = cc_randn(2, sb, dt, 1.0), *c = cc_randn(3, sc, dt, 1.0);
    lfl_tensor *ad = cc_cuda(a), *bd = cc_cuda(b), *cd = cc_cuda(c);
    double tol = dt == LFL_F32 ? 1e-5 : 1e-12;
    lfl_tensor *y, *yd;
    CC_OK(lfl_matmul(a, b, &y));
    CC_OK(lfl_matmul(ad, bd, &yd));
    cc_close("matmul [2,3,17,9] @ [9,13]", y, yd, tol, tol);
    lfl_tensor_release(y), lfl_tensor_release(yd);
    lfl_tensor *ct, *ctd; /* [3, 9, 13]: a transposed operand */
    CC_OK(lfl_transpose(c, 1, 2, &ct));
    CC_OK(lfl_transpose(cd, 1, 2, &ctd));
    CC_OK(lfl_matmul(a, ct, &y));
    CC_OK(lfl_matmul(ad, ctd, &yd));
    cc_close("matmul [2,3,17,9] @ [3,13,9]^T", y, yd, tol, tol);
    lfl_tensor_release(y), lfl_tensor_release(yd), lfl_tensor_release(ct), lfl_tensor_release(ctd);
    lfl_tensor_release(a), lfl_tensor_release(b), lfl_tensor_release(c);
    lfl_tensor_release(ad), lfl_tensor_release(bd), lfl_tensor_release(cd);
}

static void graph_backward(void)
{
    /* y = (x @ w) * s + b: gradients of x, w, s, b on both devices */
    int64_t sx[2] = {6, 10}, sw[2] = {10, 7}, ss[2] = {6, 7}; /* no broadcast: that needs the sum kernel */
    lfl_tensor *x, *xd, *w, *wd, *s, *sd, *b, *bd;
    cc_leaf_pair(cc_randn(2, sx, LFL_F32, 1.0), &x, &xd);
    cc_leaf_pair(cc_randn(2, sw, LFL_F32, 1.0), &w, &wd);
    cc_leaf_pair(cc_randn(2, ss, LFL_F32, 1.0), &s, &sd);
    cc_leaf_pair(cc_randn(2, (int64_t[]){6, 7}, LFL_F32, 1.0), &b, &bd);
    lfl_tensor *m, *md, *p, *pd, *y, *yd;
    CC_OK(lfl_matmul(x, w, &m));
    CC_OK(lfl_matmul(xd, wd, &md));
    CC_OK(lfl_mul(m, s, &p));
    CC_OK(lfl_mul(md, sd, &pd));
    CC_OK(lfl_add(p, b, &y));
    CC_OK(lfl_add(pd, bd, &yd));
    cc_close("graph forward", y, yd, 1e-5, 1e-5);
    cc_backward_pair(y, yd, 7);
    cc_close("graph dx", x->grad, xd->grad, 1e-5, 1e-5);
    cc_close("graph dw", w->grad, wd->grad, 1e-5, 1e-5);
    cc_close("graph ds", s->grad, sd->grad, 1e-5, 1e-5);
    cc_close("graph db", b->grad, bd->grad, 1e-6, 1e-6);
    cc_check(xd->grad && xd->grad->device == 0, "the gradient of a device leaf is on the device");
}

/* AdamW and SGD steps, and clipping's sum of squares and scaling: 3 steps on
 * each device from the same state, 1000 + 37 elements (a grid-stride tail) */
static void optimizers(void)
{
    int64_t n[1] = {1037};
    lfl_tensor *p = cc_randn(1, n, LFL_F32, 1.0), *m, *v, *g = cc_randn(1, n, LFL_F32, 0.1);
    CC_OK(lfl_zeros(1, n, LFL_F32, LFL_CPU, &m));
    CC_OK(lfl_zeros(1, n, LFL_F32, LFL_CPU, &v));
    lfl_tensor *pd = cc_cuda(p), *md = cc_cuda(m), *vd = cc_cuda(v), *gd = cc_cuda(g);
    for (int step = 1; step <= 3; step++) {
        lfl_adamw_opts o = {.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01, .step = step};
        CC_OK(lfl_adamw_step(p, g, m, v, &o));
        CC_OK(lfl_adamw_step(pd, gd, md, vd, &o));
    }
    cc_close("adamw p after 3 steps", p, pd, 1e-6, 1e-6);
    cc_close("adamw exp_avg", m, md, 1e-7, 1e-6);
    cc_close("adamw exp_avg_sq", v, vd, 1e-9, 1e-6);
    lfl_tensor *b, *bd;
    CC_OK(lfl_zeros(1, n, LFL_F32, LFL_CPU, &b));
    bd = cc_cuda(b);
    for (int step = 0; step < 2; step++) {
        CC_OK(lfl_sgd_step(p, g, b, 0.1, 0.9, 0.01, step == 0));
        CC_OK(lfl_sgd_step(pd, gd, bd, 0.1, 0.9, 0.01, step == 0));
    }
    cc_close("sgd p", p, pd, 1e-6, 1e-6);
    cc_close("sgd momentum buffer", b, bd, 1e-6, 1e-6);
    double s = 0, sd = 0;
    CC_OK(lfl_sum_squares(g, &s));
    CC_OK(lfl_sum_squares(gd, &sd));
    cc_check(fabs(s - sd) <= 1e-12 * s && s > 0, "sum_squares equal (f64 accumulation on both)");
    CC_OK(lfl_scale_(g, 0.25));
    CC_OK(lfl_scale_(gd, 0.25));
    cc_close("scale_", g, gd, 0, 0);
    cc_check(lfl_adamw_step(pd, gd, m, vd, &(lfl_adamw_opts){.lr = 1, .step = 1}) != LFL_OK &&
                 strstr(lfl_last_error(), "exp_avg must be a contiguous f32 tensor of 1037 elements on cuda:0"),
             "adamw refuses state on another device, naming it");
}

/* the caching allocator: a freed block is handed out again for the same size
 * class, and in-use / peak follow the tensors */
static void allocator(void)
{
    lfl_device_mem m0, m1, m2;
    CC_OK(lfl_device_memory(0, &m0));
    lfl_device_reset_peak(0);
    int64_t n[1] = {300000};
    lfl_tensor *a;
    CC_OK(lfl_empty(1, n, LFL_F32, 0, &a));
    void *pa = lfl_data(a);
    CC_OK(lfl_device_memory(0, &m1));
    cc_check(m1.in_use >= m0.in_use + 1200000 && m1.peak >= m1.in_use, "in_use and peak count a new tensor");
    lfl_tensor_release(a);
    CC_OK(lfl_device_memory(0, &m2));
    cc_check(m2.in_use == m0.in_use && m2.reserved == m1.reserved, "a freed block stays cached, not in use");
    n[0] = 299000; /* same size class */
    CC_OK(lfl_empty(1, n, LFL_F32, 0, &a));
    cc_check(lfl_data(a) == pa, "the cached block is reused");
    lfl_tensor_release(a);
    lfl_device_empty_cache(0);
    CC_OK(lfl_device_memory(0, &m2));
    cc_check(m2.reserved == m2.in_use, "empty_cache gives the cached blocks back");
}

/* QLoRA's base on the device: an NF4 (double quantization) and an FP4 weight
 * move with their state, dequantize there as on the CPU, and come back equal */
static void q4_weights(void)
{
    int64_t shape[2] = {96, 80}; /* 120 blocks of 64: the nested blocks of 256 end in a tail */
    lfl_tensor *w = cc_randn(2, shape, LFL_F32, 0.05);
    for (int k = 0; k < 2; k++) {
        lfl_tensor *q, *qd, *f, *fd, *back;
        CC_OK(lfl_quantize_4bit(w, k ? LFL_FP4 : LFL_NF4, k == 0, &q));
        CC_OK(lfl_to_device(q, 0, &qd));
        cc_check(qd->device == 0 && qd->quant && qd->quant != q->quant, "the 4-bit copy has its own state on the device");
        CC_OK(lfl_cast(q, LFL_F32, &f));
        CC_OK(lfl_cast(qd, LFL_F32, &fd));
        cc_check(fd->device == 0, "dequantized on the device");
        cc_close(k ? "fp4 dequantized on cuda" : "nf4 + double quantization dequantized on cuda", f, fd, 0, 1e-6);
        CC_OK(lfl_to_device(qd, LFL_CPU, &back));
        lfl_tensor *fb;
        CC_OK(lfl_cast(back, LFL_F32, &fb));
        cc_close("4-bit weight back on the CPU", f, fb, 0, 0);
        cc_check(memcmp(lfl_data(back), lfl_data(q), lfl_q4_packed_bytes(q)) == 0, "codes come back bit for bit");
        lfl_tensor_release(q), lfl_tensor_release(qd), lfl_tensor_release(f), lfl_tensor_release(fd);
        lfl_tensor_release(back), lfl_tensor_release(fb);
    }
    lfl_tensor_release(w);
}

/* gradients that meet: x used twice in one graph, and two backward passes
 * into the same leaf (gradient accumulation over micro-batches) */
static void accumulation(void)
{
    int64_t sx[2] = {5, 33};
    lfl_tensor *x, *xd;
    cc_leaf_pair(cc_randn(2, sx, LFL_F32, 1.0), &x, &xd);
    for (int pass = 0; pass < 2; pass++) {
        lfl_tensor *a, *ad, *y, *yd;
        CC_OK(lfl_mul(x, x, &a));
        CC_OK(lfl_mul(xd, xd, &ad));
        CC_OK(lfl_add(a, x, &y));
        CC_OK(lfl_add(ad, xd, &yd));
        cc_backward_pair(y, yd, 11 + pass);
        lfl_tensor_release(a), lfl_tensor_release(ad), lfl_tensor_release(y), lfl_tensor_release(yd);
    }
    cc_close("a gradient accumulated in one graph and over two backward passes", x->grad, xd->grad, 1e-6, 1e-6);
    cc_check(xd->grad->device == 0, "the accumulated gradient stays on the device");
}

int main(void)
{
    if (!cc_begin("test_cuda_basics")) return 0;
    int64_t shape[2] = {3, 5};
    lfl_tensor *t = cc_randn(2, shape, LFL_F32, 1.0), *d = cc_cuda(t), *back;
    CC_OK(lfl_to_device(d, LFL_CPU, &back));
    cc_check(memcmp(lfl_data(t), lfl_data(back), 15 * sizeof(float)) == 0, "to cuda:0 and back is bit for bit");
    binary_ops(LFL_F32);
    binary_ops(LFL_F64);
    matmuls(LFL_F32);
    matmuls(LFL_F64);
    graph_backward();
    optimizers();
    allocator();
    q4_weights();
    accumulation();
    return cc_end();
}
