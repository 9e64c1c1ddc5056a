/* matmul: a[..., n, k] @ b[..., k, m] with batch broadcasting, through BLAS.
 * Transposed views go to GEMM as transpose flags, not copies. One operand may
 * be bf16/f16 (a stored weight) with the other f32: it is read through its
 * strides and widened to f32 block by block (lowp_gemm.c); the result and its
 * gradients are f32. */
#include "../blas.h"
#include "../iter.h"
#include "../kernels.h"
#include "../ops.h"
#include "lowp.h"

/* How a 2-D slice can be handed to GEMM: (trans, ld), or false if it cannot. */
static bool gemm_layout(const lfl_tensor *t, bool *trans, int *ld)
{
    int64_t r = t->shape[t->ndim - 2], c = t->shape[t->ndim - 1];
    int64_t sr = t->stride[t->ndim - 2], sc = t->stride[t->ndim - 1];
    if ((sc == 1 || c == 1) && sr >= (c > 1 ? c : 1)) { *trans = false; *ld = (int)(sr ? sr : 1); return true; }
    if ((sr == 1 || r == 1) && sc >= (r > 1 ? r : 1)) { *trans = true; *ld = (int)(sc ? sc : 1); return true; }
    return false;
}

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

static lfl_status matmul_raw(lfl_tensor *a, lfl_tensor *b, lfl_tensor **out)
{
    char ba[128], bb[128];
    LFL_TRY(lfl_check_same_device("matmul", a, b));
    bool la = lfl_is_lowp(a->dtype), lb = lfl_is_lowp(b->dtype);
    if (la || lb) {
        if (la == lb || (la ? b : a)->dtype != LFL_F32)
            return lfl_fail(LFL_ERR_ARG, "matmul: a %s operand needs an f32 partner, got %s @ %s",
                            lfl_dtype_name(la ? a->dtype : b->dtype), lfl_dtype_name(a->dtype), lfl_dtype_name(b->dtype));
        if (a->device != LFL_CPU)
            return lfl_fail(LFL_ERR_UNSUPPORTED, "matmul: 16-bit operands are CPU-only for now");
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
    int64_t oshape[LFL_MAX_DIMS];
    for (int d = 0; d < bnd; d++) oshape[d] = bshape[d];
    oshape[bnd] = n;
    oshape[bnd + 1] = m;
    lfl_tensor *ca = lfl_tensor_retain(a), *cb = lfl_tensor_retain(b), *o;
    bool ta = false, tb = false;
    int lda = 1, ldb = 1;
    lfl_status st = LFL_OK;
    /* (a 16-bit operand needs no GEMM layout: its strides are read directly) */
    if (!la && !gemm_layout(ca, &ta, &lda)) { lfl_tensor_release(ca); st = lfl_clone(a, &ca); gemm_layout(ca, &ta, &lda); }
    if (st == LFL_OK && !lb && !gemm_layout(cb, &tb, &ldb)) {
        lfl_tensor_release(cb);
        st = lfl_clone(b, &cb);
        gemm_layout(cb, &tb, &ldb);
    }
    lfl_dtype odt = la ? b->dtype : a->dtype;
    if (st == LFL_OK) st = lfl_empty(bnd + 2, oshape, odt, a->device, &o);
    if (st) { lfl_tensor_release(ca); lfl_tensor_release(cb); return st; }
    int64_t sa[LFL_MAX_DIMS], sb[LFL_MAX_DIMS];
    ha = *ca; hb = *cb;
    ha.ndim -= 2;
    hb.ndim -= 2;
    lfl_broadcast_strides(&ha, bnd, bshape, sa);
    lfl_broadcast_strides(&hb, bnd, bshape, sb);
    int64_t batches = 1;
    for (int d = 0; d < bnd; d++) batches *= bshape[d];
    size_t es = lfl_dtype_size(odt), esa = lfl_dtype_size(a->dtype), esb = lfl_dtype_size(b->dtype);
    for (int64_t bi = 0; bi < batches && st == LFL_OK; bi++) {
        int64_t rem = bi, oa = 0, ob = 0;
        for (int d = bnd - 1; d >= 0; d--) {
            int64_t i = rem % bshape[d];
            rem /= bshape[d];
            oa += i * sa[d];
            ob += i * sb[d];
        }
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
        else if (a->device != LFL_CPU)
            st = lfl_cuda_sgemm(a->device, ta, tb, (int)n, (int)m, (int)k, 1.0f, (const float *)pa, lda,
                                (const float *)pb, ldb, 0.0f, (float *)po, (int)m);
        else if (a->dtype == LFL_F32)
            lfl_sgemm(ta, tb, (int)n, (int)m, (int)k, 1.0f, (const float *)pa, lda, (const float *)pb, ldb,
                      0.0f, (float *)po, (int)m);
        else
            lfl_dgemm(ta, tb, (int)n, (int)m, (int)k, 1.0, (const double *)pa, lda, (const double *)pb, ldb,
                      0.0, (double *)po, (int)m);
    }
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
