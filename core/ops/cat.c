/* cat: n tensors joined along one dim (same ndim and dtype; every other dim
 * equal). Backward hands each input its slice of the gradient. */
#include "dimwise.h"

/* ctx: the n + 1 offsets of the inputs along the dim */
static lfl_status cat_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    const int64_t *off = n->ctx;
    int d = (int)n->iarg[0];
    for (int j = 0; j < n->n_in; j++) {
        if (!lfl_node_needs(n, j)) continue;
        lfl_tensor *v;
        LFL_TRY(lfl_narrow(gout[0], d, off[j], off[j + 1] - off[j], &v));
        lfl_status st = lfl_contiguous(v, &gin[j]);
        lfl_tensor_release(v);
        LFL_TRY(st);
    }
    return LFL_OK;
}

static lfl_status check_inputs(int n, lfl_tensor **ts, int d)
{
    char b1[128], b2[128];
    lfl_tensor *a = ts[0];
    for (int j = 1; j < n; j++) {
        lfl_tensor *t = ts[j];
        if (t->dtype != a->dtype)
            return lfl_fail(LFL_ERR_ARG, "cat: tensor %d is %s but tensor 1 is %s", j + 1, lfl_dtype_name(t->dtype),
                            lfl_dtype_name(a->dtype));
        if (t->device != a->device)
            return lfl_fail(LFL_ERR_DEVICE, "cat: tensor %d is on another device than tensor 1", j + 1);
        bool ok = t->ndim == a->ndim;
        for (int k = 0; ok && k < a->ndim; k++) ok = k == d || t->shape[k] == a->shape[k];
        if (!ok)
            return lfl_fail(LFL_ERR_ARG, "cat: tensor %d has shape %s but tensor 1 has %s (all dims but dim %d "
                                         "must match)",
                            j + 1, lfl_shape_str(t, b1, sizeof b1), lfl_shape_str(a, b2, sizeof b2), d + 1);
    }
    return LFL_OK;
}

lfl_status lfl_cpu_cat(int n, lfl_tensor **ts, int d, lfl_tensor *o)
{
    int64_t outer, len, inner, off = 0;
    lfl_dim_split(o->ndim, o->shape, d, &outer, &len, &inner);
    /* each input fills a run of len_j * inner elements in every outer row */
    size_t es = lfl_dtype_size(o->dtype);
    char *po = lfl_data(o);
    lfl_status st = LFL_OK;
    for (int j = 0; j < n && st == LFL_OK; j++) {
        lfl_tensor *c;
        st = lfl_contiguous_nograd(ts[j], &c);
        if (st) break;
        int64_t lj = ts[j]->shape[d];
        size_t run = (size_t)(lj * inner) * es;
        const char *pc = lfl_data(c);
        if (run) {
#pragma omp parallel for if (outer * (int64_t)run > 4 * LFL_OMP_MIN)
            for (int64_t r = 0; r < outer; r++)
                memcpy(po + ((size_t)(r * len + off) * (size_t)inner) * es, pc + (size_t)r * run, run);
        }
        off += lj;
        lfl_tensor_release(c);
    }
    return st;
}

lfl_status lfl_cat(int n, lfl_tensor **ts, int dim, lfl_tensor **out)
{
    if (n < 1) return lfl_fail(LFL_ERR_ARG, "cat: needs at least one tensor");
    lfl_tensor *a = ts[0];
    if (lfl_dtype_is_block(a->dtype))
        return lfl_fail(LFL_ERR_ARG, "cat: %s tensors cannot be concatenated", lfl_dtype_name(a->dtype));
    int d;
    LFL_TRY(lfl_norm_dim("cat", dim, a->ndim, &d));
    LFL_TRY(check_inputs(n, ts, d));
    lfl_cat_kernel fn;
    LFL_TRY(lfl_dispatch_cat(a->device, NULL, &fn));
    int64_t *off = malloc(sizeof *off * (size_t)(n + 1));
    if (!off) return lfl_fail(LFL_ERR_MEM, "cat: out of memory");
    off[0] = 0;
    for (int j = 0; j < n; j++) off[j + 1] = off[j] + ts[j]->shape[d];
    int64_t oshape[LFL_MAX_DIMS];
    for (int k = 0; k < a->ndim; k++) oshape[k] = k == d ? off[n] : a->shape[k];
    lfl_tensor *o = NULL;
    lfl_status st = lfl_empty(a->ndim, oshape, a->dtype, a->device, &o);
    if (st == LFL_OK) st = fn(n, ts, d, o);
    if (st) { lfl_tensor_release(o); free(off); return st; }
    lfl_node *nd = lfl_node_begin("cat", cat_backward, n, ts, 1);
    if (nd) {
        nd->iarg[0] = d;
        nd->ctx = off;
        nd->ctx_free = free;
        lfl_node_set_output(nd, o, 0);
        lfl_node_release(nd);
    } else {
        free(off);
    }
    *out = o;
    return LFL_OK;
}
