/* geglu: gelu(gate) * up over [..., F] (Gemma's MLP), exact (erf) GELU or, with
 * tanh_approx, torch's approximate='tanh' / HF's gelu_pytorch_tanh:
 *   exact: gelu(g) = g * Phi(g),         gelu'(g) = Phi(g) + g * phi(g)
 *   tanh:  gelu(g) = g/2 * (1 + t), t = tanh(k (g + c g^3)), k = sqrt(2/pi), c = 0.044715
 *          gelu'(g) = (1 + t)/2 + g/2 * (1 - t^2) * k * (1 + 3 c g^2)
 * Backward: dgate = go * up * gelu'(gate), dup = go * gelu(gate).
 * The f32 path uses the vectorisable tanh and erfc of vmath.h; f64 uses libm. */
#include "vmath.h"
#include "rows.h"

#define GELU_K 0.7978845608028654 /* sqrt(2/pi) */
#define GELU_C 0.044715
#define INV_SQRT_2PI 0.3989422804014327

/* Phi(x) = 0.5 erfc(-x / sqrt 2): keeps its relative accuracy in the negative tail */
static inline float norm_cdf(float x) { return 0.5f * lfl_verfcf(x * -(float)M_SQRT1_2); }

static void fwd_f32(const float *g, const float *u, float *y, int64_t n, bool th)
{
    if (th) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            float x = g[i], t = lfl_vtanhf((float)GELU_K * (x + (float)GELU_C * x * x * x));
            y[i] = 0.5f * x * (1.0f + t) * u[i];
        }
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) y[i] = g[i] * norm_cdf(g[i]) * u[i];
    }
}

static void fwd_f64(const double *g, const double *u, double *y, int64_t n, bool th)
{
    for (int64_t i = 0; i < n; i++) {
        double x = g[i];
        double v = th ? 0.5 * x * (1.0 + tanh(GELU_K * (x + GELU_C * x * x * x))) : 0.5 * x * (1.0 + erf(x * M_SQRT1_2));
        y[i] = v * u[i];
    }
}

static void bwd_f32(const float *g, const float *u, const float *go, float *dg, float *du, int64_t n, bool th)
{
    if (th) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            float x = g[i], t = lfl_vtanhf((float)GELU_K * (x + (float)GELU_C * x * x * x));
            float gelu = 0.5f * x * (1.0f + t);
            float d = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * (float)GELU_K * (1.0f + 3.0f * (float)GELU_C * x * x);
            if (dg) dg[i] = go[i] * u[i] * d;
            if (du) du[i] = go[i] * gelu;
        }
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            float x = g[i], cdf = norm_cdf(x);
            float d = cdf + x * (float)INV_SQRT_2PI * lfl_vexpf(-0.5f * x * x);
            if (dg) dg[i] = go[i] * u[i] * d;
            if (du) du[i] = go[i] * x * cdf;
        }
    }
}

static void bwd_f64(const double *g, const double *u, const double *go, double *dg, double *du, int64_t n, bool th)
{
    for (int64_t i = 0; i < n; i++) {
        double x = g[i], gelu, d;
        if (th) {
            double t = tanh(GELU_K * (x + GELU_C * x * x * x));
            gelu = 0.5 * x * (1.0 + t);
            d = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_K * (1.0 + 3.0 * GELU_C * x * x);
        } else {
            double cdf = 0.5 * (1.0 + erf(x * M_SQRT1_2));
            gelu = x * cdf;
            d = cdf + x * INV_SQRT_2PI * exp(-0.5 * x * x);
        }
        if (dg) dg[i] = go[i] * u[i] * d;
        if (du) du[i] = go[i] * gelu;
    }
}

lfl_status lfl_cpu_geglu_backward(lfl_tensor *go, lfl_tensor *gate, lfl_tensor *up, bool th, lfl_tensor *dg,
                                  lfl_tensor *du)
{
    int64_t F = gate->ndim ? gate->shape[gate->ndim - 1] : 1, rows = F ? lfl_numel(gate) / F : 0;
    if (rows > 0 && F > 0) {
        bool f32 = gate->dtype == LFL_F32;
        size_t es = f32 ? 4 : 8;
        char *pg = lfl_data(gate), *pu = lfl_data(up), *pgo = lfl_data(go);
        char *pdg = dg ? lfl_data(dg) : NULL, *pdu = du ? lfl_data(du) : NULL;
#pragma omp parallel for if (rows * F > LFL_OMP_MIN)
        for (int64_t r = 0; r < rows; r++) {
            void *g = pg + lfl_row_offset(gate, r) * es, *u = pu + lfl_row_offset(up, r) * es;
            void *o = pgo + r * F * es, *a = pdg ? pdg + r * F * es : NULL, *b = pdu ? pdu + r * F * es : NULL;
            if (f32) bwd_f32(g, u, o, a, b, F, th);
            else bwd_f64(g, u, o, a, b, F, th);
        }
    }
    return LFL_OK;
}

static lfl_status geglu_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    lfl_tensor *gate = n->saved[0], *up = n->saved[1], *go = NULL, *dg = NULL, *du = NULL;
    lfl_geglu_backward_kernel fn;
    LFL_TRY(lfl_dispatch_geglu_backward(gate->device, NULL, &fn));
    LFL_TRY(lfl_contiguous(gout[0], &go));
    lfl_status st = LFL_OK;
    if (lfl_node_needs(n, 0)) st = lfl_empty(n->in[0].ndim, n->in[0].shape, gate->dtype, gate->device, &dg);
    if (st == LFL_OK && lfl_node_needs(n, 1))
        st = lfl_empty(n->in[1].ndim, n->in[1].shape, gate->dtype, gate->device, &du);
    if (st == LFL_OK) st = fn(go, gate, up, n->iarg[2] != 0, dg, du);
    lfl_tensor_release(go);
    if (st) { lfl_tensor_release(dg); lfl_tensor_release(du); return st; }
    gin[0] = dg;
    gin[1] = du;
    return LFL_OK;
}

lfl_status lfl_cpu_geglu(lfl_tensor *gr, lfl_tensor *ur, bool th, lfl_tensor *o)
{
    int64_t F = gr->ndim ? gr->shape[gr->ndim - 1] : 1, rows = F ? lfl_numel(gr) / F : 0;
    if (rows > 0) {
        bool f32 = gr->dtype == LFL_F32;
        size_t es = f32 ? 4 : 8;
        char *pg = lfl_data(gr), *pu = lfl_data(ur), *po = lfl_data(o);
#pragma omp parallel for if (rows * F > LFL_OMP_MIN)
        for (int64_t r = 0; r < rows; r++) {
            void *g = pg + lfl_row_offset(gr, r) * es, *u = pu + lfl_row_offset(ur, r) * es, *y = po + r * F * es;
            if (f32) fwd_f32(g, u, y, F, th);
            else fwd_f64(g, u, y, F, th);
        }
    }
    return LFL_OK;
}

lfl_status lfl_geglu(lfl_tensor *gate, lfl_tensor *up, bool tanh_approx, lfl_tensor **out)
{
    char bg[128], bu[128];
    LFL_TRY(lfl_nn_check("geglu", gate, "gate", NULL));
    LFL_TRY(lfl_nn_check("geglu", up, "up", gate));
    if (!lfl_same_shape(gate, up) || gate->ndim < 1)
        return lfl_fail(LFL_ERR_ARG, "geglu: gate %s and up %s should have the same shape [..., F]",
                        lfl_shape_str(gate, bg, sizeof bg), lfl_shape_str(up, bu, sizeof bu));
    if (gate->dtype != up->dtype)
        return lfl_fail(LFL_ERR_ARG, "geglu: gate is %s but up is %s", lfl_dtype_name(gate->dtype),
                        lfl_dtype_name(up->dtype));
    lfl_geglu_kernel fn;
    LFL_TRY(lfl_dispatch_geglu(gate->device, NULL, &fn));
    int64_t F = gate->shape[gate->ndim - 1], rows = F ? lfl_numel(gate) / F : 0;
    lfl_tensor *gr = NULL, *ur = NULL, *o = NULL;
    lfl_status st = lfl_rows_ready(gate, &gr);
    if (st == LFL_OK) st = lfl_rows_ready(up, &ur);
    if (st == LFL_OK) st = lfl_empty(gate->ndim, gate->shape, gate->dtype, gate->device, &o);
    if (st == LFL_OK) st = fn(gr, ur, tanh_approx, o);
    if (st == LFL_OK) {
        lfl_tensor *in[2] = {gate, up};
        lfl_node *n = lfl_node_begin("geglu", geglu_backward, 2, in, 1);
        if (n) {
            n->iarg[0] = F;
            n->iarg[1] = rows;
            n->iarg[2] = tanh_approx;
            lfl_node_save(n, gr);
            lfl_node_save(n, ur);
            lfl_node_set_output(n, o, 0);
            lfl_node_release(n);
        }
        *out = o;
        o = NULL;
    }
    lfl_tensor_release(gr);
    lfl_tensor_release(ur);
    lfl_tensor_release(o);
    return st;
}
