/* matmul: a[..., n, k] @ b[..., k, m] with batch broadcasting, through BLAS.
 * Transposed views go to GEMM as transpose flags, not copies. One operand may
 * be bf16/f16 (a stored weight) with the other f32: it is read through its
 * strides and widened to f32 block by block (lowp_gemm.c); the result and its
 * gradients are f32. */
#include "../blas.h"
#include "lowp.h"
#include "matmul.h"
#include "optable.h"

static lfl_status matmul_raw(lfl_tensor *a, lfl_tensor *b, lfl_tensor **out);

static lfl_status matmul_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    lfl_tensor *a = n->saved[0], *b = n->saved[1], *g = gout[0];
    for (int i = 0; i < 2; i++) {
        if (!lfl_node_needs(n, i)) continue;
        lfl_tensor *other = n->saved[1 - i], *ot, *p;
        LFL_TRY(lfl_transpose(other, -1, -2, &ot));
        /* dA = g @ B^T ; dB = A^T @ g */
        lfl_status st = i == 0 ? matmul_raw(g, ot, &p) : matmul_raw(ot, g, &p);
        lfl_tensor_release(ot);
        LFL_TRY(st);
        st = lfl_sum_to(p, n->in[i].ndim, n->in[i].shape, &gin[i]);
        lfl_tensor_release(p);
        LFL_TRY(st);
    }
    (void)a; (void)b;
    return LFL_OK;
}

lfl_status lfl_cpu_matmul(lfl_tensor *ca, lfl_tensor *cb, lfl_tensor *o)
{
    bool la = lfl_is_lowp(ca->dtype), lb = lfl_is_lowp(cb->dtype), ta = false, tb = false;
    int lda = 1, ldb = 1;
    if (!la) lfl_matmul_layout(ca, &ta, &lda);
    if (!lb) lfl_matmul_layout(cb, &tb, &ldb);
    int64_t n = o->shape[o->ndim - 2], m = o->shape[o->ndim - 1], k = ca->shape[ca->ndim - 1];
    int64_t sa[LFL_MAX_DIMS], sb[LFL_MAX_DIMS], batches;
    lfl_matmul_batch_strides(ca, cb, o, sa, sb, &batches);
    size_t es = lfl_dtype_size(o->dtype), esa = lfl_dtype_size(ca->dtype), esb = lfl_dtype_size(cb->dtype);
    lfl_status st = LFL_OK;
    for (int64_t bi = 0; bi < batches && st == LFL_OK; bi++) {
        int64_t oa, ob;
        lfl_matmul_batch_offsets(o, sa, sb, bi, &oa, &ob);
        const char *pa = (const char *)lfl_data(ca) + oa * (int64_t)esa;
        const char *pb = (const char *)lfl_data(cb) + ob * (int64_t)esb;
        char *po = (char *)lfl_data(o) + bi * n * m * (int64_t)es;
        if (n == 0 || m == 0) continue;
        if (k == 0) { memset(po, 0, (size_t)(n * m) * es); continue; }
        if (la)
            st = lfl_gemm_lowp_f32(n, m, k, ca->dtype, pa, ca->stride[ca->ndim - 2], ca->stride[ca->ndim - 1], tb,
                                   (const float *)pb, ldb, 0.0f, (float *)po, (int)m);
        else if (lb)
            st = lfl_gemm_f32_lowp(ta, n, m, k, (const float *)pa, lda, cb->dtype, pb, cb->stride[cb->ndim - 2],
                                   cb->stride[cb->ndim - 1], 0.0f, (float *)po, (int)m);
        else if (ca->dtype == LFL_F32)
            lfl_sgemm(ta, tb, (int)n, (int)m, (int)k, 1.0f, (const float *)pa, lda, (const float *)pb, ldb,
                      0.0f, (float *)po, (int)m);
        else
            lfl_dgemm(ta, tb, (int)n, (int)m, (int)k, 1.0, (const double *)pa, lda, (const double *)pb, ldb,
                      0.0, (double *)po, (int)m);
    }
    return st;
}

static lfl_status matmul_raw(lfl_tensor *a, lfl_tensor *b, lfl_tensor **out)
{
    char ba[128], bb[128];
    LFL_TRY(lfl_check_same_device("matmul", a, b));
    bool la = lfl_is_lowp(a->dtype), lb = lfl_is_lowp(b->dtype);
    if (la || lb) {
        if (la == lb || (la ? b : a)->dtype != LFL_F32)
            return lfl_fail(LFL_ERR_ARG, "matmul: a %s operand needs an f32 partner, got %s @ %s",
                            lfl_dtype_name(la ? a->dtype : b->dtype), lfl_dtype_name(a->dtype), lfl_dtype_name(b->dtype));
    } else {
        LFL_TRY(lfl_check_same_dtype("matmul", a, b));
    }
    LFL_TRY(lfl_check_float("matmul", la ? b : a));
    if (a->ndim < 2 || b->ndim < 2)
        return lfl_fail(LFL_ERR_ARG, "matmul: operands need at least 2 dims, got %s @ %s",
                        lfl_shape_str(a, ba, sizeof ba), lfl_shape_str(b, bb, sizeof bb));
    int64_t n = a->shape[a->ndim - 2], k = a->shape[a->ndim - 1], m = b->shape[b->ndim - 1];
    if (b->shape[b->ndim - 2] != k)
        return lfl_fail(LFL_ERR_ARG, "matmul: inner dimensions differ: %s @ %s (%lld != %lld)",
                        lfl_shape_str(a, ba, sizeof ba), lfl_shape_str(b, bb, sizeof bb),
                        (long long)k, (long long)b->shape[b->ndim - 2]);
    /* broadcast batch dims */
    lfl_tensor ha = *a, hb = *b;
    ha.ndim -= 2;
    hb.ndim -= 2;
    int bnd;
    int64_t bshape[LFL_MAX_DIMS];
    LFL_TRY(lfl_broadcast_shape("matmul", &ha, &hb, &bnd, bshape));
    lfl_matmul_kernel fn;
    LFL_TRY(lfl_dispatch_matmul(a->device, NULL, &fn));
    int64_t oshape[LFL_MAX_DIMS];
    for (int d = 0; d < bnd; d++) oshape[d] = bshape[d];
    oshape[bnd] = n;
    oshape[bnd + 1] = m;
    lfl_tensor *ca = lfl_tensor_retain(a), *cb = lfl_tensor_retain(b), *o = NULL;
    bool trans;
    int ld;
    lfl_status st = LFL_OK;
    /* an operand with no GEMM layout is copied; a 16-bit one needs none (its strides are read directly) */
    if (!la && !lfl_matmul_layout(ca, &trans, &ld)) { lfl_tensor_release(ca); st = lfl_clone(a, &ca); }
    if (st == LFL_OK && !lb && !lfl_matmul_layout(cb, &trans, &ld)) { lfl_tensor_release(cb); st = lfl_clone(b, &cb); }
    if (st == LFL_OK) st = lfl_empty(bnd + 2, oshape, la ? b->dtype : a->dtype, a->device, &o);
    if (st == LFL_OK) st = fn(ca, cb, o);
    lfl_tensor_release(ca);
    lfl_tensor_release(cb);
    if (st) { lfl_tensor_release(o); return st; }
    *out = o;
    return LFL_OK;
}

lfl_status lfl_matmul(lfl_tensor *a, lfl_tensor *b, lfl_tensor **out)
{
    /* 1-D operands as in torch: a vector on the left is a row, on the right a column */
    if (a->ndim == 1 || b->ndim == 1) {
        lfl_tensor *ua = NULL, *ub = NULL, *r = NULL;
        lfl_status st = a->ndim == 1 ? lfl_unsqueeze(a, 0, &ua) : (ua = lfl_tensor_retain(a), LFL_OK);
        if (st == LFL_OK) st = b->ndim == 1 ? lfl_unsqueeze(b, -1, &ub) : (ub = lfl_tensor_retain(b), LFL_OK);
        if (st == LFL_OK) st = lfl_matmul(ua, ub, &r);
        lfl_tensor *s1 = NULL;
        if (st == LFL_OK) st = a->ndim == 1 ? lfl_squeeze(r, -2, &s1) : (s1 = lfl_tensor_retain(r), LFL_OK);
        if (st == LFL_OK) st = b->ndim == 1 ? lfl_squeeze(s1, -1, out) : (*out = lfl_tensor_retain(s1), LFL_OK);
        lfl_tensor_release(ua);
        lfl_tensor_release(ub);
        lfl_tensor_release(r);
        lfl_tensor_release(s1);
        return st;
    }
    LFL_TRY(matmul_raw(a, b, out));
    lfl_tensor *in[2] = {a, b};
    lfl_node *n = lfl_node_begin("matmul", matmul_backward, 2, in, 1);
    if (n) {
        lfl_node_save(n, a);
        lfl_node_save(n, b);
        lfl_node_set_output(n, *out, 0);
        lfl_node_release(n);
    }
    return LFL_OK;
}
