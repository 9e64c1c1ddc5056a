/* The op x device dispatch table (core/ops/optable.h): every entry has a CPU
 * kernel and a unique name, the CUDA coverage (listed; empty without a CUDA
 * build), an op runs the kernel its table slot holds (a fake kernel put there
 * is the one called), a slot emptied on the CPU gives the uniform error in
 * forward and in backward, and a tensor on a CUDA device reaches that error
 * for every op with no CUDA kernel before any device memory is touched. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "lfl.h"
#include "ops/optable.h"

static int failed, passed;

static void check(bool ok, const char *what)
{
    if (ok) { passed++; return; }
    failed++;
    printf("FAIL  %s\n", what);
}

/* st failed with LFL_ERR_UNSUPPORTED and exactly the message want */
static void check_error(lfl_status st, const char *want, const char *what)
{
    bool ok = st == LFL_ERR_UNSUPPORTED && strcmp(lfl_last_error(), want) == 0;
    if (!ok) printf("      got status %d, \"%s\"\n      want \"%s\"\n", (int)st, st ? lfl_last_error() : "", want);
    check(ok, what);
}

static int fake_calls;
static lfl_status fake_affine(lfl_tensor *a, double s, double c, lfl_tensor *out)
{
    (void)a; (void)s; (void)c;
    fake_calls++;
    return lfl_fill_(out, 42.0);
}

static lfl_tensor *randn(int nd, const int64_t *shape)
{
    lfl_tensor *t;
    if (lfl_empty(nd, shape, LFL_F32, LFL_CPU, &t)) return NULL;
    for (int64_t i = 0; i < lfl_numel(t); i++) lfl_set(t, i, sin(1.7 * (double)i) * 2);
    return t;
}

/* a header of a tensor on cuda:0 that owns no memory: enough for the fronts,
 * which check shapes and dtypes and then ask the table */
static lfl_tensor fake_cuda(int nd, const int64_t *shape)
{
    lfl_tensor t;
    memset(&t, 0, sizeof t);
    t.refcount = 1;
    t.ndim = nd;
    int64_t s = 1;
    for (int d = nd - 1; d >= 0; d--) {
        t.shape[d] = shape[d];
        t.stride[d] = s;
        s *= shape[d];
    }
    t.dtype = LFL_F32;
    t.device = 0;
    return t;
}

static void test_table(void)
{
    int n = lfl_op_count(), cpu = 0;
    check(n == LFL_OP_COUNT && n > 40, "the table lists the ops");
    for (int op = 0; op < n; op++) {
        const char *name = lfl_op_name(op);
        check(name && lfl_op_find(name) == op, "each entry has a name that finds it");
        if (!lfl_op_implemented(op, LFL_DEVKIND_CPU)) printf("      no CPU kernel: %s\n", name);
        cpu += lfl_op_implemented(op, LFL_DEVKIND_CPU);
    }
    check(cpu == n, "every op has a CPU kernel");
    check(lfl_op_name(-1) == NULL && lfl_op_name(n) == NULL && lfl_op_find("no_such_op") == -1,
          "names outside the table");
    check(!lfl_op_implemented(0, LFL_DEVKIND_COUNT) && !lfl_op_implemented(n, LFL_DEVKIND_CPU),
          "implemented() outside the table is false");
    const char *backward[] = {"attention_backward", "softmax_backward", "rmsnorm_backward", "linear_backward"};
    for (size_t i = 0; i < sizeof backward / sizeof backward[0]; i++)
        check(lfl_op_find(backward[i]) >= 0, "backward kernels have their own entries");

    char list[2048];
    int ncuda = lfl_op_coverage(LFL_DEVKIND_CUDA, list, sizeof list), k = 0;
    for (int op = 0; op < n; op++) k += lfl_op_implemented(op, LFL_DEVKIND_CUDA);
    printf("CUDA coverage: %d of %d kernels%s%s\n", ncuda, n, ncuda ? ": " : "", list);
    check(k == ncuda, "coverage counts the implemented entries");
#ifdef LFL_HAVE_CUDA
    const char *want[] = {"add", "sub", "mul", "div", "matmul",
                          /* norms, rope, gated activations, losses */
                          "rmsnorm", "rmsnorm_backward", "layernorm", "layernorm_backward", "rope", "rope_backward",
                          "rope_cos_sin", "swiglu", "swiglu_backward", "geglu", "geglu_backward", "cross_entropy",
                          "cross_entropy_backward", "token_logprobs", "token_logprobs_backward",
                          /* elementwise */
                          "copy", "fill", "affine", "pow", "pow_backward", "unary", "unary_backward", "compare",
                          "where", "masked_fill", "dropout", "dropout_backward",
                          /* reduce (cuda-b) */
                          "sum", "max", "min", "argmax", "max_backward", "nonzero", "softmax", "softmax_backward",
                          "log_softmax", "log_softmax_backward", "embedding", "embedding_backward", "index_select",
                          "index_select_backward", "gather", "scatter_add", "cat",
                          /* the gemm group */
                          "linear", "linear_backward", "lora_linear", "lora_linear_backward", "int8_linear_lt",
                          "linear_cross_entropy", "linear_cross_entropy_backward", "linear_kl_div",
                          "linear_kl_div_backward", "linear_topk_entropy"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        check(lfl_op_implemented(lfl_op_find(want[i]), LFL_DEVKIND_CUDA),
              "the CUDA build has its kernels in the table");
#else
    check(ncuda == 0 && list[0] == 0, "a CPU-only build has an empty CUDA column");
#endif
    char small[8];
    check(lfl_op_coverage(LFL_DEVKIND_CPU, small, sizeof small) == n && strlen(small) < sizeof small,
          "coverage names are cut to the buffer");
}

static void test_fake_kernel(void)
{
    int64_t shape[2] = {3, 4};
    lfl_tensor *x = randn(2, shape), *y = NULL;
    lfl_kernel fake;
    memset(&fake, 0, sizeof fake);
    fake.affine = fake_affine;
    lfl_kernel old = lfl_op_set(LFL_OP_affine, LFL_DEVKIND_CPU, fake);
    lfl_status st = lfl_affine(x, 2.0, 1.0, &y);
    check(st == LFL_OK && fake_calls == 1 && lfl_get(y, 5) == 42.0, "an op runs the kernel in its table slot");
    lfl_tensor_release(y);
    lfl_op_set(LFL_OP_affine, LFL_DEVKIND_CPU, old);
    st = lfl_affine(x, 2.0, 1.0, &y);
    check(st == LFL_OK && fake_calls == 1 && fabs(lfl_get(y, 5) - (lfl_get(x, 5) * 2 + 1)) < 1e-6,
          "the original kernel back in its slot runs again");
    lfl_tensor_release(y);
    lfl_tensor_release(x);
}

static void test_missing_cpu(void)
{
    int64_t shape[2] = {2, 5};
    lfl_tensor *x = randn(2, shape), *y = NULL, *s = NULL;
    lfl_kernel none, old;
    memset(&none, 0, sizeof none);

    old = lfl_op_set(LFL_OP_softmax, LFL_DEVKIND_CPU, none);
    check(!lfl_op_implemented(LFL_OP_softmax, LFL_DEVKIND_CPU), "an emptied slot is not implemented");
    check_error(lfl_softmax(x, -1, &y), "softmax: not implemented on cpu (no kernel in the dispatch table)",
                "a missing forward kernel gives the uniform error");
    lfl_op_set(LFL_OP_softmax, LFL_DEVKIND_CPU, old);
    check(lfl_softmax(x, -1, &y) == LFL_OK, "softmax runs again once its kernel is back");
    lfl_tensor_release(y);

    /* an entry shared by several ops names the op that was called */
    old = lfl_op_set(LFL_OP_unary, LFL_DEVKIND_CPU, none);
    check_error(lfl_unary(LFL_U_EXP, x, &y), "exp: not implemented on cpu (no unary kernel in the dispatch table)",
                "the error names the op called and the entry missing");
    lfl_op_set(LFL_OP_unary, LFL_DEVKIND_CPU, old);

    /* backward: the forward records, the backward node finds no kernel */
    x->requires_grad = true;
    old = lfl_op_set(LFL_OP_softmax_backward, LFL_DEVKIND_CPU, none);
    lfl_status st = lfl_softmax(x, -1, &y);
    if (st == LFL_OK) st = lfl_sum(y, 0, NULL, false, &s);
    check(st == LFL_OK, "the forward runs without the backward kernel");
    if (st == LFL_OK)
        check_error(lfl_backward(s, NULL), "softmax_backward: not implemented on cpu (no kernel in the dispatch table)",
                    "a missing backward kernel gives the uniform error");
    lfl_op_set(LFL_OP_softmax_backward, LFL_DEVKIND_CPU, old);
    lfl_tensor_release(s);
    lfl_tensor_release(y);
    lfl_tensor_release(x->grad);
    x->grad = NULL;
    s = y = NULL;
    st = lfl_softmax(x, -1, &y);
    if (st == LFL_OK) st = lfl_sum(y, 0, NULL, false, &s);
    if (st == LFL_OK) st = lfl_backward(s, NULL);
    check(st == LFL_OK && x->grad, "backward runs again once its kernel is back");
    lfl_tensor_release(s);
    lfl_tensor_release(y);
    lfl_tensor_release(x);
}

/* no CUDA device is needed: the fronts stop at the table for ops without a
 * CUDA kernel, before any device memory is allocated or read (an op that has
 * a CUDA kernel in this build has it taken out of the table for the call) */
static void test_missing_cuda(void)
{
    int64_t shape[2] = {2, 8}, wshape[1] = {8}, mshape[2] = {8, 3};
    lfl_tensor x = fake_cuda(2, shape), w = fake_cuda(1, wshape), m = fake_cuda(2, mshape);
    lfl_tensor *y = NULL;
    int dims[1] = {1};
    struct { lfl_op op; const char *want; } cases[] = {
        {LFL_OP_softmax, "softmax: not implemented on cuda:0 (no kernel in the dispatch table)"},
        {LFL_OP_log_softmax, "log_softmax: not implemented on cuda:0 (no kernel in the dispatch table)"},
        {LFL_OP_sum, "sum: not implemented on cuda:0 (no kernel in the dispatch table)"},
        {LFL_OP_rmsnorm, "rmsnorm: not implemented on cuda:0 (no kernel in the dispatch table)"},
        {LFL_OP_unary, "silu: not implemented on cuda:0 (no unary kernel in the dispatch table)"},
        {LFL_OP_pow, "pow: not implemented on cuda:0 (no kernel in the dispatch table)"},
        {LFL_OP_matmul, "matmul: not implemented on cuda:0 (no kernel in the dispatch table)"},
    };
    int tried = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* an op with a CUDA kernel would need a GPU: its entry is taken out for the case */
        lfl_kernel none = {0}, had = lfl_op_set(cases[i].op, LFL_DEVKIND_CUDA, none);
        lfl_status st = LFL_OK;
        switch (cases[i].op) {
        case LFL_OP_softmax: st = lfl_softmax(&x, -1, &y); break;
        case LFL_OP_log_softmax: st = lfl_log_softmax(&x, -1, &y); break;
        case LFL_OP_sum: st = lfl_sum(&x, 1, dims, false, &y); break;
        case LFL_OP_rmsnorm: st = lfl_rmsnorm(&x, &w, 1e-6, &y); break;
        case LFL_OP_unary: st = lfl_unary(LFL_U_SILU, &x, &y); break;
        case LFL_OP_pow: st = lfl_pow(&x, 2.0, &y); break;
        default: st = lfl_matmul(&x, &m, &y); break;
        }
        lfl_op_set(cases[i].op, LFL_DEVKIND_CUDA, had);
        check_error(st, cases[i].want, "a CUDA tensor without a CUDA kernel gives the uniform error");
        tried++;
    }
    check(tried == (int)(sizeof cases / sizeof cases[0]), "the CUDA cases ran");
    check(y == NULL, "nothing was allocated");
    check_error(lfl_op_missing(LFL_OP_attention_backward, 3, NULL),
                "attention_backward: not implemented on cuda:3 (no kernel in the dispatch table)",
                "the error names the device");
}

int main(void)
{
    test_table();
    test_fake_kernel();
    test_missing_cpu();
    test_missing_cuda();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
