/* linear_kl_div: per row r, KL(q_r || p_r) = sum_v q_rv (log q_rv - log p_rv)
 * with p = softmax(hidden[N, H] @ w[V, H]^T) and the reference
 * q = softmax(ref_hidden[N, Hr] @ ref_w[V, Hr]^T), 0 on rows whose label is
 * -100: the KL term of LlamaFactory's ASFT loss (F.kl_div(log_softmax(policy),
 * softmax(ref)).sum(-1)). Neither logit matrix is ever whole: V is walked in
 * column chunks, two GEMMs each, and every row keeps online log-sum-exps of
 * both and A = sum_v exp(zr_v - mr) (zr_v - zp_v), rescaled when the
 * reference's running max mr grows; then KL = A / sr - lse_r + lse_p. The
 * reference is a constant (no gradient). Backward recomputes each chunk's
 * logits: dz = g_r (softmax(zp) - softmax(zr)), dhidden += dz @ w_c and
 * dw_c = dz^T @ hidden. */
#include <math.h>
#include <stdlib.h>
#include "../blas.h"
#include "../iter.h"
#include "loss.h"
#include "lowp.h"

static double at(lfl_dtype dt, const void *x, int64_t i)
{
    return dt == LFL_F32 ? ((const float *)x)[i] : ((const double *)x)[i];
}

/* the two chunk GEMMs: bp[N, cw] = policy logits, br[N, cw] = reference logits */
static lfl_status both_chunks(const lfl_lkl_args *p, void *bp, void *br, int64_t v0, int64_t cw)
{
    lfl_dtype dt = p->hidden->dtype;
    LFL_TRY(lfl_loss_chunk_logits(dt, lfl_data(p->hidden), p->w->dtype, lfl_data(p->w), bp, p->N, p->H, v0, cw));
    return lfl_loss_chunk_logits(dt, lfl_data(p->ref_hidden), p->ref_w->dtype, lfl_data(p->ref_w), br, p->N,
                                 p->Hr, v0, cw);
}

lfl_status lfl_cpu_linear_kl_div(const lfl_lkl_args *p, lfl_tensor *lse, lfl_tensor *out)
{
    LFL_TRY(lfl_loss_labels_check("linear_kl_div", p->labels, p->V));
    int64_t N = p->N, V = p->V, chunk = p->chunk;
    lfl_dtype dt = p->hidden->dtype;
    int64_t bshape[2] = {N, chunk};
    lfl_tensor *bp = NULL, *br = NULL;
    lfl_status st = lfl_empty(2, bshape, dt, LFL_CPU, &bp);
    if (st == LFL_OK) st = lfl_empty(2, bshape, dt, LFL_CPU, &br);
    double *m = NULL;
    if (st == LFL_OK && !(m = malloc(sizeof(double) * (size_t)(5 * N + 1))))
        st = lfl_fail(LFL_ERR_MEM, "linear_kl_div: out of memory");
    if (st == LFL_OK) {
        double *sp = m + N, *mr = sp + N, *sr = mr + N, *acc = sr + N;
        const int64_t *lab = lfl_data(p->labels);
        for (int64_t i = 0; i < N; i++) { m[i] = -INFINITY; sp[i] = 0; mr[i] = -INFINITY; sr[i] = 0; acc[i] = 0; }
        for (int64_t v0 = 0; N > 0 && v0 < V && st == LFL_OK; v0 += chunk) {
            int64_t cw = V - v0 < chunk ? V - v0 : chunk;
            st = both_chunks(p, lfl_data(bp), lfl_data(br), v0, cw);
            if (st) break;
            const void *xp = lfl_data(bp), *xr = lfl_data(br);
#pragma omp parallel for schedule(static) if (N * cw > LFL_OMP_MIN)
            for (int64_t r = 0; r < N; r++) {
                if (lab[r] == LFL_IGNORE_INDEX) continue;
                double cmp = m[r], cmr = mr[r];
                for (int64_t j = 0; j < cw; j++) {
                    double a = at(dt, xp, r * cw + j), b = at(dt, xr, r * cw + j);
                    if (a > cmp) cmp = a;
                    if (b > cmr) cmr = b;
                }
                /* fold the old sums onto the new maxima (nothing to fold while a sum is still 0) */
                double s1 = sp[r] > 0 ? sp[r] * exp(m[r] - cmp) : 0, f = sr[r] > 0 ? exp(mr[r] - cmr) : 0;
                double s2 = sr[r] * f, a2 = acc[r] * f;
                for (int64_t j = 0; j < cw; j++) {
                    double a = at(dt, xp, r * cw + j), b = at(dt, xr, r * cw + j), e = exp(b - cmr);
                    s1 += exp(a - cmp);
                    s2 += e;
                    a2 += e * (b - a);
                }
                m[r] = cmp, sp[r] = s1, mr[r] = cmr, sr[r] = s2, acc[r] = a2;
            }
        }
        double *pl = lfl_data(lse); /* [2, N]: lse_p, then lse_r */
        void *po = lfl_data(out);
        for (int64_t r = 0; r < N && st == LFL_OK; r++) {
            bool ign = lab[r] == LFL_IGNORE_INDEX;
            double lp = ign ? 0 : m[r] + log(sp[r]), lr = ign ? 0 : mr[r] + log(sr[r]);
            double kl = ign ? 0 : acc[r] / sr[r] - lr + lp;
            pl[r] = lp;
            pl[N + r] = lr;
            if (dt == LFL_F32) ((float *)po)[r] = (float)kl;
            else ((double *)po)[r] = kl;
        }
    }
    free(m);
    lfl_tensor_release(bp);
    lfl_tensor_release(br);
    return st;
}

lfl_status lfl_cpu_linear_kl_div_backward(const lfl_lkl_args *p, lfl_tensor *g, lfl_tensor *lse, lfl_tensor *dh,
                                          lfl_tensor *dw)
{
    int64_t N = p->N, V = p->V, H = p->H, chunk = p->chunk;
    lfl_dtype dt = p->hidden->dtype;
    size_t es = lfl_dtype_size(dt);
    int64_t bshape[2] = {N, chunk};
    lfl_tensor *bp = NULL, *br = NULL;
    lfl_status st = lfl_empty(2, bshape, dt, LFL_CPU, &bp);
    if (st == LFL_OK) st = lfl_empty(2, bshape, dt, LFL_CPU, &br);
    double *coef = NULL;
    if (st == LFL_OK && !(coef = malloc(sizeof(double) * (size_t)(N + 1))))
        st = lfl_fail(LFL_ERR_MEM, "linear_kl_div backward: out of memory");
    if (st == LFL_OK) st = lfl_loss_row_coef(g, LFL_REDUCE_NONE, N, 0, 1.0, coef);
    if (st == LFL_OK && dw && (N == 0 || H == 0)) lfl_fill_(dw, 0);
    const int64_t *lab = lfl_data(p->labels);
    const double *pl = lfl_data(lse);
    for (int64_t v0 = 0; st == LFL_OK && N > 0 && H > 0 && v0 < V; v0 += chunk) {
        int64_t cw = V - v0 < chunk ? V - v0 : chunk;
        st = both_chunks(p, lfl_data(bp), lfl_data(br), v0, cw);
        if (st) break;
        void *xp = lfl_data(bp);
        const void *xr = lfl_data(br);
#pragma omp parallel for schedule(static) if (N * cw > LFL_OMP_MIN)
        for (int64_t r = 0; r < N; r++) {
            bool ign = lab[r] == LFL_IGNORE_INDEX;
            for (int64_t j = 0; j < cw; j++) {
                int64_t i = r * cw + j;
                double d = ign ? 0 : coef[r] * (exp(at(dt, xp, i) - pl[r]) - exp(at(dt, xr, i) - pl[N + r]));
                if (dt == LFL_F32) ((float *)xp)[i] = (float)d;
                else ((double *)xp)[i] = d;
            }
        }
        const char *wc = (const char *)lfl_data(p->w) + (size_t)(v0 * H) * lfl_dtype_size(p->w->dtype);
        if (dh) { /* dh += dz @ w_c */
            if (lfl_is_lowp(p->w->dtype))
                st = lfl_gemm_f32_lowp(false, N, H, cw, xp, (int)cw, p->w->dtype, wc, H, 1, 1.0f, lfl_data(dh), (int)H);
            else
                lfl_gemm_typed(dt, false, false, N, H, cw, 1.0, xp, cw, wc, H, 1.0, lfl_data(dh), H);
        }
        if (dw) { /* dw_c = dz^T @ hidden */
            char *dwc = (char *)lfl_data(dw) + (size_t)(v0 * H) * es;
            lfl_gemm_typed(dt, true, false, cw, H, N, 1.0, xp, cw, lfl_data(p->hidden), H, 0.0, dwc, H);
        }
    }
    free(coef);
    lfl_tensor_release(bp);
    lfl_tensor_release(br);
    return st;
}

static lfl_status lkl_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    lfl_lkl_args p = {n->saved[0], n->saved[1], n->saved[2], n->saved[3], n->saved[4],
                      n->iarg[0], n->iarg[1], n->iarg[2], n->iarg[3], n->iarg[4]};
    lfl_tensor *lse = n->saved[5], *dh = NULL, *dw = NULL, *g = NULL;
    lfl_dtype dt = p.hidden->dtype;
    int dev = p.hidden->device;
    lfl_linear_kl_div_backward_kernel fn;
    LFL_TRY(lfl_dispatch_linear_kl_div_backward(dev, NULL, &fn));
    lfl_status st = lfl_contiguous(gout[0], &g);
    if (st == LFL_OK && lfl_node_needs(n, 0)) st = lfl_zeros(n->in[0].ndim, n->in[0].shape, dt, dev, &dh);
    if (st == LFL_OK && lfl_node_needs(n, 1)) st = lfl_empty(2, p.w->shape, dt, dev, &dw);
    if (st == LFL_OK) st = fn(&p, g, lse, dh, dw);
    lfl_tensor_release(g);
    if (st) { lfl_tensor_release(dh); lfl_tensor_release(dw); return st; }
    gin[0] = dh;
    gin[1] = dw;
    return LFL_OK;
}

/* hidden and its w, or the reference's pair: f32/f64 hidden[..., H] with a w
 * [V, H] of its dtype, or a bf16/f16 w with f32 hidden */
static lfl_status check_pair(const char *op, const char *what, lfl_tensor *h, lfl_tensor *w)
{
    char bh[128], bw[128];
    if (lfl_is_lowp(w->dtype)) {
        if (h->dtype != LFL_F32)
            return lfl_fail(LFL_ERR_ARG, "%s: a %s %s w takes f32 hidden, got %s", op, what, lfl_dtype_name(w->dtype),
                            lfl_dtype_name(h->dtype));
    } else if (w->dtype != h->dtype) {
        return lfl_fail(LFL_ERR_ARG, "%s: %s hidden is %s but its w is %s", op, what, lfl_dtype_name(h->dtype),
                        lfl_dtype_name(w->dtype));
    }
    if (h->dtype != LFL_F32 && h->dtype != LFL_F64)
        return lfl_fail(LFL_ERR_ARG, "%s: %s hidden must be f32 or f64, got %s", op, what, lfl_dtype_name(h->dtype));
    if (w->ndim != 2 || h->ndim < 1 || h->shape[h->ndim - 1] != w->shape[1])
        return lfl_fail(LFL_ERR_ARG, "%s: %s hidden %s does not match its w %s (want hidden [..., H], w [V, H])", op,
                        what, lfl_shape_str(h, bh, sizeof bh), lfl_shape_str(w, bw, sizeof bw));
    if (w->shape[0] < 1) return lfl_fail(LFL_ERR_ARG, "%s: %s w has no classes", op, what);
    return LFL_OK;
}

lfl_status lfl_linear_kl_div(lfl_tensor *hidden, lfl_tensor *w, lfl_tensor *ref_hidden, lfl_tensor *ref_w,
                             lfl_tensor *labels, int64_t chunk, lfl_tensor **out)
{
    const char *op = "linear_kl_div";
    char b1[128], b2[128];
    LFL_TRY(lfl_check_same_device(op, hidden, w));
    LFL_TRY(lfl_check_same_device(op, hidden, ref_hidden));
    LFL_TRY(lfl_check_same_device(op, hidden, ref_w));
    LFL_TRY(check_pair(op, "policy", hidden, w));
    LFL_TRY(check_pair(op, "reference", ref_hidden, ref_w));
    if (ref_hidden->dtype != hidden->dtype)
        return lfl_fail(LFL_ERR_ARG, "%s: reference hidden is %s but hidden is %s", op,
                        lfl_dtype_name(ref_hidden->dtype), lfl_dtype_name(hidden->dtype));
    if (ref_w->shape[0] != w->shape[0])
        return lfl_fail(LFL_ERR_ARG, "%s: the reference's vocabulary (%lld) differs from the policy's (%lld)", op,
                        (long long)ref_w->shape[0], (long long)w->shape[0]);
    bool same = ref_hidden->ndim == hidden->ndim;
    for (int d = 0; same && d < hidden->ndim - 1; d++) same = ref_hidden->shape[d] == hidden->shape[d];
    if (!same)
        return lfl_fail(LFL_ERR_ARG, "%s: reference hidden %s and hidden %s differ in their rows", op,
                        lfl_shape_str(ref_hidden, b1, sizeof b1), lfl_shape_str(hidden, b2, sizeof b2));
    int64_t V = w->shape[0], H = w->shape[1], Hr = ref_w->shape[1];
    if (chunk < 0) return lfl_fail(LFL_ERR_ARG, "%s: chunk must be >= 0 (0 picks one), got %lld", op, (long long)chunk);
    int64_t N = 1;
    for (int d = 0; d < hidden->ndim - 1; d++) N *= hidden->shape[d];
    if (N > INT32_MAX || V > INT32_MAX || H > INT32_MAX || Hr > INT32_MAX)
        return lfl_fail(LFL_ERR_ARG, "%s: dims beyond 2^31 are not supported by the GEMM", op);
    if (chunk == 0) chunk = lfl_loss_default_chunk(N, V, lfl_dtype_size(hidden->dtype));
    if (chunk > V) chunk = V;
    lfl_linear_kl_div_kernel fn;
    LFL_TRY(lfl_dispatch_linear_kl_div(hidden->device, NULL, &fn));

    lfl_tensor *lab, *ch = NULL, *cw = NULL, *crh = NULL, *crw = NULL, *lse = NULL, *o = NULL;
    LFL_TRY(lfl_loss_labels(op, labels, hidden->device, hidden->ndim - 1, hidden->shape, &lab));
    int64_t lshape[2] = {2, N};
    lfl_status st = lfl_contiguous(hidden, &ch);
    if (st == LFL_OK) st = lfl_contiguous(w, &cw);
    if (st == LFL_OK) st = lfl_contiguous(ref_hidden, &crh);
    if (st == LFL_OK) st = lfl_contiguous(ref_w, &crw);
    if (st == LFL_OK) st = lfl_empty(2, lshape, LFL_F64, hidden->device, &lse);
    if (st == LFL_OK) st = lfl_empty(hidden->ndim - 1, hidden->shape, hidden->dtype, hidden->device, &o);
    lfl_lkl_args p = {ch, cw, crh, crw, lab, N, V, H, Hr, chunk};
    if (st == LFL_OK) st = fn(&p, lse, o);
    if (st == LFL_OK) {
        lfl_tensor *in[2] = {hidden, w};
        lfl_node *n = lfl_node_begin(op, lkl_backward, 2, in, 1);
        if (n) {
            n->iarg[0] = N;
            n->iarg[1] = V;
            n->iarg[2] = H;
            n->iarg[3] = Hr;
            n->iarg[4] = chunk;
            lfl_node_save(n, ch);
            lfl_node_save(n, cw);
            lfl_node_save(n, crh);
            lfl_node_save(n, crw);
            lfl_node_save(n, lab);
            lfl_node_save(n, lse);
            lfl_node_set_output(n, o, 0);
            lfl_node_release(n);
        }
        *out = o;
    } else {
        lfl_tensor_release(o);
    }
    lfl_tensor_release(lab);
    lfl_tensor_release(ch);
    lfl_tensor_release(cw);
    lfl_tensor_release(crh);
    lfl_tensor_release(crw);
    lfl_tensor_release(lse);
    return st;
}
