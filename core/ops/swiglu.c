/* swiglu: silu(gate) * up over [..., F], the gated MLP of Llama-family models.
 * silu(g) = g * s with s = sigmoid(g); backward:
 *   dgate = go * up * s * (1 + g * (1 - s)),   dup = go * g * s
 * The f32 path uses the vectorisable exp of vmath.h; f64 uses libm. */
#include "vmath.h"
#include "rows.h"

static void fwd_f32(const float *g, const float *u, float *y, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = g[i] / (1.0f + lfl_vexpf(-g[i])) * u[i];
}

static void fwd_f64(const double *g, const double *u, double *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = g[i] / (1.0 + exp(-g[i])) * u[i];
}

static void bwd_f32(const float *g, const float *u, const float *go, float *dg, float *du, int64_t n)
{
    if (dg && du) { /* both: one exp per element, one pass */
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            float s = 1.0f / (1.0f + lfl_vexpf(-g[i]));
            dg[i] = go[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
            du[i] = go[i] * g[i] * s;
        }
        return;
    }
    if (dg) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            float s = 1.0f / (1.0f + lfl_vexpf(-g[i]));
            dg[i] = go[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
        }
    }
    if (du) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) du[i] = go[i] * g[i] / (1.0f + lfl_vexpf(-g[i]));
    }
}

static void bwd_f64(const double *g, const double *u, const double *go, double *dg, double *du, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double s = 1.0 / (1.0 + exp(-g[i]));
        if (dg) dg[i] = go[i] * u[i] * s * (1.0 + g[i] * (1.0 - s));
        if (du) du[i] = go[i] * g[i] * s;
    }
}

lfl_status lfl_cpu_swiglu_backward(lfl_tensor *go, lfl_tensor *gate, lfl_tensor *up, lfl_tensor *dg,
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
            if (f32) bwd_f32(g, u, o, a, b, F);
            else bwd_f64(g, u, o, a, b, F);
        }
    }
    return LFL_OK;
}

static lfl_status swiglu_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    lfl_tensor *gate = n->saved[0], *up = n->saved[1], *go = NULL, *dg = NULL, *du = NULL;
    lfl_swiglu_backward_kernel fn;
    LFL_TRY(lfl_dispatch_swiglu_backward(gate->device, NULL, &fn));
    LFL_TRY(lfl_contiguous(gout[0], &go));
    lfl_status st = LFL_OK;
    if (lfl_node_needs(n, 0)) st = lfl_empty(n->in[0].ndim, n->in[0].shape, gate->dtype, gate->device, &dg);
    if (st == LFL_OK && lfl_node_needs(n, 1))
        st = lfl_empty(n->in[1].ndim, n->in[1].shape, gate->dtype, gate->device, &du);
    if (st == LFL_OK) st = fn(go, gate, up, dg, du);
    lfl_tensor_release(go);
    if (st) { lfl_tensor_release(dg); lfl_tensor_release(du); return st; }
    gin[0] = dg;
    gin[1] = du;
    return LFL_OK;
}

lfl_status lfl_cpu_swiglu(lfl_tensor *gr, lfl_tensor *ur, lfl_tensor *o)
{
    int64_t F = gr->ndim ? gr->shape[gr->ndim - 1] : 1, rows = F ? lfl_numel(gr) / F : 0;
    if (rows > 0) {
        bool f32 = gr->dtype == LFL_F32;
        size_t es = f32 ? 4 : 8;
        char *pg = lfl_data(gr), *pu = lfl_data(ur), *po = lfl_data(o);
#pragma omp parallel for if (rows * F > LFL_OMP_MIN)
        for (int64_t r = 0; r < rows; r++) {
            void *g = pg + lfl_row_offset(gr, r) * es, *u = pu + lfl_row_offset(ur, r) * es, *y = po + r * F * es;
            if (f32) fwd_f32(g, u, y, F);
            else fwd_f64(g, u, y, F);
        }
    }
    return LFL_OK;
}

lfl_status lfl_swiglu(lfl_tensor *gate, lfl_tensor *up, lfl_tensor **out)
{
    char bg[128], bu[128];
    LFL_TRY(lfl_nn_check("swiglu", gate, "gate", NULL));
    LFL_TRY(lfl_nn_check("swiglu", up, "up", gate));
    if (!lfl_same_shape(gate, up) || gate->ndim < 1)
        return lfl_fail(LFL_ERR_ARG, "swiglu: gate %s and up %s should have the same shape [..., F]",
                        lfl_shape_str(gate, bg, sizeof bg), lfl_shape_str(up, bu, sizeof bu));
    if (gate->dtype != up->dtype)
        return lfl_fail(LFL_ERR_ARG, "swiglu: gate is %s but up is %s", lfl_dtype_name(gate->dtype),
                        lfl_dtype_name(up->dtype));
    lfl_swiglu_kernel fn;
    LFL_TRY(lfl_dispatch_swiglu(gate->device, NULL, &fn));
    int64_t F = gate->shape[gate->ndim - 1], rows = F ? lfl_numel(gate) / F : 0;
    lfl_tensor *gr = NULL, *ur = NULL, *o = NULL;
    lfl_status st = lfl_rows_ready(gate, &gr);
    if (st == LFL_OK) st = lfl_rows_ready(up, &ur);
    if (st == LFL_OK) st = lfl_empty(gate->ndim, gate->shape, gate->dtype, gate->device, &o);
    if (st == LFL_OK) st = fn(gr, ur, o);
    if (st == LFL_OK) {
        lfl_tensor *in[2] = {gate, up};
        lfl_node *n = lfl_node_begin("swiglu", swiglu_backward, 2, in, 1);
        if (n) {
            n->iarg[0] = F;
            n->iarg[1] = rows;
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
