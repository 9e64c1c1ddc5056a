/* Views that share storage: view/reshape, permute/transpose, narrow/slice,
 * select, expand, squeeze/unsqueeze; each differentiable. */
#include "autograd.h"
#include "tensor.h"
#include "quant/bnb4.h"

enum { V_VIEW, V_PERMUTE, V_SLICE, V_SELECT, V_EXPAND };

static lfl_tensor *header_like(lfl_tensor *t)
{
    lfl_tensor *v = calloc(1, sizeof *v);
    v->refcount = 1;
    v->storage = t->storage;
    lfl_storage_retain(t->storage);
    v->offset = t->offset;
    v->ndim = t->ndim;
    for (int d = 0; d < t->ndim; d++) { v->shape[d] = t->shape[d]; v->stride[d] = t->stride[d]; }
    v->dtype = t->dtype;
    v->device = t->device;
    v->quant = t->quant; /* a view of a 4-bit tensor keeps its scales (ops refuse views: lfl_q4_check) */
    lfl_qstate_retain(v->quant);
    return v;
}

lfl_tensor *lfl_detach(lfl_tensor *t) { return header_like(t); }

static lfl_status view_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin);

/* Records the view node: iarg[0] = kind, iarg[1..] = parameters. */
static void record(lfl_tensor *in, lfl_tensor *out, int kind, const int64_t *args, int nargs)
{
    lfl_node *n = lfl_node_begin("view", view_backward, 1, &in, 1);
    if (!n) return;
    n->iarg[0] = kind;
    for (int i = 0; i < nargs; i++) n->iarg[1 + i] = args[i];
    lfl_node_set_output(n, out, 0);
    lfl_node_release(n);
}

static lfl_status do_view(const char *op, lfl_tensor *t, int ndim, const int64_t *shape_in, lfl_tensor **out)
{
    if (ndim > LFL_MAX_DIMS) return lfl_fail(LFL_ERR_ARG, "%s: %d dims (at most %d)", op, ndim, LFL_MAX_DIMS);
    if (ndim < 0) return lfl_fail(LFL_ERR_ARG, "%s: %d dims", op, ndim);
    int64_t shape[LFL_MAX_DIMS], n = lfl_numel(t), known = 1;
    int infer = -1;
    for (int d = 0; d < ndim; d++) {
        shape[d] = shape_in[d];
        if (shape[d] == -1) {
            if (infer >= 0) return lfl_fail(LFL_ERR_ARG, "%s: only one dim may be -1", op);
            infer = d;
        } else if (shape[d] < 0) {
            return lfl_fail(LFL_ERR_ARG, "%s: negative size %lld", op, (long long)shape[d]);
        }
    }
    /* the known dims (the -1 counted as 1) must have a product that fits */
    if (infer >= 0) shape[infer] = 1;
    LFL_TRY(lfl_shape_numel(op, ndim, shape, &known));
    if (infer >= 0) {
        if (known == 0 || n % known) goto mismatch;
        shape[infer] = n / known;
    } else if (known != n) {
        goto mismatch;
    }
    if (!lfl_is_contiguous(t))
        return lfl_fail(LFL_ERR_ARG, "%s: tensor is not contiguous (use reshape or contiguous)", op);
    lfl_tensor *v = header_like(t);
    v->ndim = ndim;
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) { v->shape[d] = shape[d]; v->stride[d] = s; s *= shape[d]; }
    int64_t args[LFL_MAX_DIMS] = {0};
    args[0] = t->ndim;
    record(t, v, V_VIEW, args, 1);
    *out = v;
    return LFL_OK;
mismatch:;
    char b[128];
    return lfl_fail(LFL_ERR_ARG, "%s: cannot view %s (%lld elements) as the requested shape",
                    op, lfl_shape_str(t, b, sizeof b), (long long)n);
}

lfl_status lfl_view(lfl_tensor *t, int ndim, const int64_t *shape, lfl_tensor **out)
{
    return do_view("view", t, ndim, shape, out);
}

lfl_status lfl_reshape(lfl_tensor *t, int ndim, const int64_t *shape, lfl_tensor **out)
{
    lfl_tensor *c;
    LFL_TRY(lfl_contiguous(t, &c));
    lfl_status st = do_view("reshape", c, ndim, shape, out);
    lfl_tensor_release(c);
    return st;
}

lfl_status lfl_permute(lfl_tensor *t, const int *perm, lfl_tensor **out)
{
    int seen[LFL_MAX_DIMS] = {0};
    int64_t args[LFL_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) {
        int p;
        LFL_TRY(lfl_norm_dim("permute", perm[d], t->ndim, &p));
        if (seen[p]++) return lfl_fail(LFL_ERR_ARG, "permute: dim %d repeated", p + 1);
        args[d] = p;
    }
    lfl_tensor *v = header_like(t);
    for (int d = 0; d < t->ndim; d++) { v->shape[d] = t->shape[args[d]]; v->stride[d] = t->stride[args[d]]; }
    record(t, v, V_PERMUTE, args, t->ndim);
    *out = v;
    return LFL_OK;
}

lfl_status lfl_transpose(lfl_tensor *t, int d0, int d1, lfl_tensor **out)
{
    int a, b, perm[LFL_MAX_DIMS];
    LFL_TRY(lfl_norm_dim("transpose", d0, t->ndim, &a));
    LFL_TRY(lfl_norm_dim("transpose", d1, t->ndim, &b));
    for (int d = 0; d < t->ndim; d++) perm[d] = d;
    perm[a] = b;
    perm[b] = a;
    return lfl_permute(t, perm, out);
}

lfl_status lfl_slice(lfl_tensor *t, int dim, int64_t start, int64_t end, int64_t step, lfl_tensor **out)
{
    int d;
    LFL_TRY(lfl_norm_dim("slice", dim, t->ndim, &d));
    if (lfl_dtype_is_block(t->dtype)) return lfl_fail(LFL_ERR_ARG, "slice: %s tensors cannot be sliced", lfl_dtype_name(t->dtype));
    int64_t size = t->shape[d];
    if (step <= 0) return lfl_fail(LFL_ERR_ARG, "slice: step must be positive, got %lld", (long long)step);
    if (start < 0) start += size;
    if (end < 0) end += size;
    if (start < 0 || start > size || end < start || end > size)
        return lfl_fail(LFL_ERR_ARG, "slice: range [%lld, %lld) out of bounds for dim %d of size %lld",
                        (long long)start, (long long)end, d + 1, (long long)size);
    lfl_tensor *v = header_like(t);
    v->offset += (size_t)(start * t->stride[d]) * lfl_dtype_size(t->dtype);
    v->shape[d] = (end - start + step - 1) / step;
    v->stride[d] = t->stride[d] * step;
    int64_t args[4] = {d, start, end, step};
    record(t, v, V_SLICE, args, 4);
    *out = v;
    return LFL_OK;
}

lfl_status lfl_narrow(lfl_tensor *t, int dim, int64_t start, int64_t len, lfl_tensor **out)
{
    if (len < 0) return lfl_fail(LFL_ERR_ARG, "narrow: negative length %lld", (long long)len);
    int d;
    LFL_TRY(lfl_norm_dim("narrow", dim, t->ndim, &d));
    if (start < 0) start += t->shape[d];
    return lfl_slice(t, d, start, start + len, 1, out);
}

lfl_status lfl_select(lfl_tensor *t, int dim, int64_t index, lfl_tensor **out)
{
    int d;
    if (lfl_dtype_is_block(t->dtype)) return lfl_fail(LFL_ERR_ARG, "select: %s tensors cannot be indexed", lfl_dtype_name(t->dtype));
    LFL_TRY(lfl_norm_dim("select", dim, t->ndim, &d));
    int64_t size = t->shape[d];
    int64_t i = index < 0 ? index + size : index;
    if (i < 0 || i >= size)
        return lfl_fail(LFL_ERR_ARG, "select: index %lld out of range for dim %d of size %lld",
                        (long long)(index < 0 ? index : index + 1), d + 1, (long long)size);
    lfl_tensor *v = header_like(t);
    v->offset += (size_t)(i * t->stride[d]) * lfl_dtype_size(t->dtype);
    for (int k = d; k < t->ndim - 1; k++) { v->shape[k] = t->shape[k + 1]; v->stride[k] = t->stride[k + 1]; }
    v->ndim = t->ndim - 1;
    int64_t args[2] = {d, i};
    record(t, v, V_SELECT, args, 2);
    *out = v;
    return LFL_OK;
}

lfl_status lfl_expand(lfl_tensor *t, int ndim, const int64_t *shape, lfl_tensor **out)
{
    if (ndim < t->ndim || ndim > LFL_MAX_DIMS)
        return lfl_fail(LFL_ERR_ARG, "expand: cannot expand %d dims to %d", t->ndim, ndim);
    lfl_tensor *v = header_like(t);
    v->ndim = ndim;
    int lead = ndim - t->ndim;
    for (int d = ndim - 1; d >= 0; d--) {
        int64_t want = shape[d];
        int64_t have = d >= lead ? t->shape[d - lead] : 1;
        int64_t st = d >= lead ? t->stride[d - lead] : 0;
        if (want == -1) want = have;
        if (have != want) {
            if (have != 1) {
                lfl_tensor_release(v);
                char b[128];
                return lfl_fail(LFL_ERR_ARG, "expand: cannot expand %s: dim %d has size %lld, wanted %lld",
                                lfl_shape_str(t, b, sizeof b), d - lead + 1, (long long)have, (long long)want);
            }
            st = 0;
        }
        v->shape[d] = want;
        v->stride[d] = st;
    }
    /* a broadcast view allocates nothing, but whatever is computed from it will */
    int64_t n;
    lfl_status ok = lfl_shape_numel("expand", v->ndim, v->shape, &n);
    if (ok) { lfl_tensor_release(v); return ok; }
    record(t, v, V_EXPAND, NULL, 0);
    *out = v;
    return LFL_OK;
}

lfl_status lfl_unsqueeze(lfl_tensor *t, int dim, lfl_tensor **out)
{
    int d;
    LFL_TRY(lfl_norm_dim("unsqueeze", dim, t->ndim + 1, &d));
    if (t->ndim >= LFL_MAX_DIMS) return lfl_fail(LFL_ERR_ARG, "unsqueeze: already %d dims", t->ndim);
    int64_t shape[LFL_MAX_DIMS];
    for (int k = 0, j = 0; k <= t->ndim; k++) shape[k] = k == d ? 1 : t->shape[j++];
    lfl_tensor *c;
    LFL_TRY(lfl_contiguous(t, &c));
    lfl_status st = lfl_view(c, t->ndim + 1, shape, out);
    lfl_tensor_release(c);
    return st;
}

static lfl_status squeeze_mask(lfl_tensor *t, int only, lfl_tensor **out)
{
    int64_t shape[LFL_MAX_DIMS];
    int n = 0;
    for (int k = 0; k < t->ndim; k++)
        if (!(t->shape[k] == 1 && (only < 0 || only == k))) shape[n++] = t->shape[k];
    lfl_tensor *c;
    LFL_TRY(lfl_contiguous(t, &c));
    lfl_status st = lfl_view(c, n, shape, out);
    lfl_tensor_release(c);
    return st;
}

lfl_status lfl_squeeze(lfl_tensor *t, int dim, lfl_tensor **out)
{
    int d;
    LFL_TRY(lfl_norm_dim("squeeze", dim, t->ndim, &d));
    return squeeze_mask(t, d, out);
}

lfl_status lfl_squeeze_all(lfl_tensor *t, lfl_tensor **out) { return squeeze_mask(t, -1, out); }

/* Each view's gradient: the same view taken on a zero tensor of the input's
 * shape receives the incoming gradient (expand sums it instead). */
static lfl_status view_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    const lfl_edge *e = &n->in[0];
    lfl_tensor *g = gout[0], *z = NULL, *v = NULL;
    lfl_status st = LFL_OK;
    switch (n->iarg[0]) {
    case V_VIEW:
        return lfl_reshape(g, e->ndim, e->shape, &gin[0]);
    case V_EXPAND:
        return lfl_sum_to(g, e->ndim, e->shape, &gin[0]);
    default:
        break;
    }
    LFL_TRY(lfl_zeros(e->ndim, e->shape, g->dtype, g->device, &z));
    switch (n->iarg[0]) {
    case V_PERMUTE: {
        int perm[LFL_MAX_DIMS];
        for (int d = 0; d < e->ndim; d++) perm[d] = (int)n->iarg[1 + d];
        st = lfl_permute(z, perm, &v);
        break;
    }
    case V_SLICE: st = lfl_slice(z, (int)n->iarg[1], n->iarg[2], n->iarg[3], n->iarg[4], &v); break;
    case V_SELECT: st = lfl_select(z, (int)n->iarg[1], n->iarg[2], &v); break;
    default: LFL_ASSERT(0);
    }
    if (st == LFL_OK) st = lfl_copy_(v, g);
    lfl_tensor_release(v);
    if (st) { lfl_tensor_release(z); return st; }
    gin[0] = z;
    return LFL_OK;
}
