/* Shared by the CUDA backend tests (tests/c/test_cuda_*.c): an op runs on the
 * CPU and on cuda:0 from the same random inputs, and outputs and gradients
 * are compared with per-op tolerances. The tests run wherever a CUDA device
 * is present: a real GPU, or the CUDA emulator of the LFL_CUDA=EMU build
 * (build-emu/, run by tests/all.sh). Without one they print why and pass.
 *
 * Usage in a test:
 *   int main(void) {
 *       if (!cc_begin("test_cuda_norms")) return 0;   // no device: skipped
 *       lfl_tensor *x = cc_randn(2, (int64_t[]){3, 70}, LFL_F32, 1.0);
 *       lfl_tensor *xd = cc_cuda(x);                  // the same values on cuda:0
 *       lfl_tensor *y, *yd;
 *       CC_OK(lfl_rmsnorm(x, w, 1e-6, &y)); CC_OK(lfl_rmsnorm(xd, wd, 1e-6, &yd));
 *       cc_close("rmsnorm f32", y, yd, 1e-5, 1e-5);
 *       ...
 *       return cc_end();
 *   }
 */
#ifndef LFL_TESTS_CUDA_CHECK_H
#define LFL_TESTS_CUDA_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "lfl.h"

static int cc_fails, cc_checks;

#define CC_OK(expr)                                                                                  \
    do {                                                                                             \
        lfl_status st_ = (expr);                                                                     \
        if (st_ != LFL_OK) {                                                                         \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr, lfl_last_error()); \
            exit(1);                                                                                 \
        }                                                                                            \
    } while (0)

static inline void cc_check(bool ok, const char *what)
{
    cc_checks++;
    if (!ok) {
        cc_fails++;
        fprintf(stderr, "FAIL: %s\n", what);
    }
}

/* false (and a printed reason) when there is no CUDA device to test on */
static inline bool cc_begin(const char *name)
{
    if (lfl_device_count() < 1) {
        printf("%s: skipped: no CUDA device (%s)\n", name, lfl_device_describe());
        return false;
    }
    printf("%s on %s\n", name, lfl_device_describe());
    lfl_rng_seed(1234);
    return true;
}

static inline int cc_end(void)
{
    printf("%d checks, %d failed\n", cc_checks, cc_fails);
    return cc_fails ? 1 : 0;
}

/* random normal values (std `scale`) of a float dtype, on the CPU */
static inline lfl_tensor *cc_randn(int nd, const int64_t *shape, lfl_dtype dt, double scale)
{
    lfl_tensor *t, *c;
    CC_OK(lfl_empty(nd, shape, LFL_F32, LFL_CPU, &t));
    CC_OK(lfl_randn_(t, 0, scale));
    if (dt == LFL_F32) return t;
    CC_OK(lfl_cast(t, dt, &c));
    lfl_tensor_release(t);
    return c;
}

/* integers uniform in [lo, hi) of dtype dt (i64, i32, u8, bool), on the CPU */
static inline lfl_tensor *cc_randint(int nd, const int64_t *shape, lfl_dtype dt, int64_t lo, int64_t hi)
{
    lfl_tensor *t;
    CC_OK(lfl_empty(nd, shape, dt, LFL_CPU, &t));
    int64_t n = lfl_numel(t);
    for (int64_t i = 0; i < n; i++) {
        uint32_t w[4];
        lfl_philox(99, (uint64_t)i + (uint64_t)lfl_rng_reserve(1), w);
        int64_t v = lo + (int64_t)(w[0] % (uint64_t)(hi - lo));
        switch (dt) {
        case LFL_I64: ((int64_t *)lfl_data(t))[i] = v; break;
        case LFL_I32: ((int32_t *)lfl_data(t))[i] = (int32_t)v; break;
        case LFL_U8: case LFL_BOOL: ((uint8_t *)lfl_data(t))[i] = (uint8_t)v; break;
        default: fprintf(stderr, "cc_randint: dtype %s\n", lfl_dtype_name(dt)); exit(1);
        }
    }
    return t;
}

/* a copy on cuda:0 (keeps requires_grad off: set it on the copy if needed) */
static inline lfl_tensor *cc_cuda(lfl_tensor *t)
{
    lfl_tensor *d;
    bool g = lfl_set_grad_enabled(false);
    CC_OK(lfl_to_device(t, 0, &d));
    lfl_set_grad_enabled(g);
    return d;
}

/* a CPU copy of t as f64 (any device, any float or integer dtype) */
static inline lfl_tensor *cc_host_f64(lfl_tensor *t)
{
    lfl_tensor *h, *c, *f;
    bool g = lfl_set_grad_enabled(false);
    CC_OK(lfl_contiguous(t, &c));
    CC_OK(lfl_to_device(c, LFL_CPU, &h));
    CC_OK(lfl_cast(h, LFL_F64, &f));
    lfl_tensor_release(c);
    lfl_tensor_release(h);
    lfl_set_grad_enabled(g);
    return f;
}

/* want (CPU) and got (cuda) of one shape, |got - want| <= atol + rtol |want|
 * everywhere (NaN only where want is NaN); prints the worst element */
static inline void cc_close(const char *what, lfl_tensor *want, lfl_tensor *got, double atol, double rtol)
{
    char msg[256];
    if (!want || !got) {
        snprintf(msg, sizeof msg, "%s: missing tensor (want %p, got %p)", what, (void *)want, (void *)got);
        cc_check(false, msg);
        return;
    }
    if (got->device == LFL_CPU && want->device == LFL_CPU && want != got) {
        /* both on the host is allowed (a test may have copied got back), but say so if got never left it */
    }
    bool same = want->ndim == got->ndim;
    for (int d = 0; same && d < want->ndim; d++) same = want->shape[d] == got->shape[d];
    if (!same) {
        snprintf(msg, sizeof msg, "%s: shapes differ (ndim %d vs %d)", what, want->ndim, got->ndim);
        cc_check(false, msg);
        return;
    }
    lfl_tensor *a = cc_host_f64(want), *b = cc_host_f64(got);
    const double *pa = (const double *)lfl_data(a), *pb = (const double *)lfl_data(b);
    int64_t n = lfl_numel(a), worst = -1;
    double worst_excess = 0;
    bool ok = true;
    for (int64_t i = 0; i < n; i++) {
        double x = pa[i], y = pb[i];
        if (isnan(x) || isnan(y)) {
            if (isnan(x) != isnan(y)) { ok = false; worst = i; break; }
            continue;
        }
        if (isinf(x) || isinf(y)) {
            if (x != y) { ok = false; worst = i; break; }
            continue;
        }
        double excess = fabs(x - y) - (atol + rtol * fabs(x));
        if (excess > 0) ok = false;
        if (worst < 0 || excess > worst_excess) { worst = i; worst_excess = excess; }
    }
    if (ok)
        snprintf(msg, sizeof msg, "%s", what);
    else
        snprintf(msg, sizeof msg, "%s: element %lld: cpu %.9g, cuda %.9g (atol %g, rtol %g)", what,
                 (long long)worst, worst >= 0 ? pa[worst] : 0.0, worst >= 0 ? pb[worst] : 0.0, atol, rtol);
    cc_check(ok, msg);
    lfl_tensor_release(a);
    lfl_tensor_release(b);
}

/* Backward of sum(out * weight) with a fixed random weight of out's shape:
 * seeds both graphs with the same upstream gradient. */
static inline void cc_backward(lfl_tensor *out, lfl_tensor *upstream)
{
    CC_OK(lfl_backward(out, upstream));
}

/* the same upstream gradient for a CPU output and its cuda twin */
static inline void cc_backward_pair(lfl_tensor *out_cpu, lfl_tensor *out_cuda, uint64_t seed)
{
    lfl_rng_seed(seed);
    lfl_tensor *g = cc_randn(out_cpu->ndim, out_cpu->shape, out_cpu->dtype, 1.0);
    lfl_tensor *gd = cc_cuda(g);
    cc_backward(out_cpu, g);
    cc_backward(out_cuda, gd);
    lfl_tensor_release(g);
    lfl_tensor_release(gd);
}

/* a leaf that requires grad: the CPU tensor and its cuda twin */
static inline void cc_leaf_pair(lfl_tensor *t, lfl_tensor **cpu, lfl_tensor **cuda)
{
    *cpu = t;
    t->requires_grad = true;
    *cuda = cc_cuda(t);
    (*cuda)->requires_grad = true;
}

#endif
