/* split: pieces of `sizes` along one dim. The pieces are views of the input
 * (no copy) and the outputs of ONE node, so backward writes every piece's
 * gradient into a single input-shaped tensor: O(numel) whatever the number of
 * pieces (n narrow views would each build an input-sized gradient). */
#include "dimwise.h"

/* ctx: the n + 1 offsets of the pieces along the dim */
static lfl_status split_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    const lfl_edge *e = &n->in[0];
    const int64_t *off = n->ctx;
    int d = (int)n->iarg[0];
    lfl_tensor *g;
    LFL_TRY(lfl_empty(e->ndim, e->shape, gout[0]->dtype, gout[0]->device, &g));
    lfl_status st = LFL_OK;
    for (int j = 0; j < n->n_out && st == LFL_OK; j++) {
        lfl_tensor *v;
        st = lfl_narrow(g, d, off[j], off[j + 1] - off[j], &v);
        if (st == LFL_OK) st = lfl_copy_(v, gout[j]);
        lfl_tensor_release(v);
    }
    if (st) { lfl_tensor_release(g); return st; }
    gin[0] = g;
    return LFL_OK;
}

lfl_status lfl_split(lfl_tensor *a, int dim, int n, const int64_t *sizes, lfl_tensor **outs)
{
    int d;
    LFL_TRY(lfl_norm_dim("split", dim, a->ndim, &d));
    if (n < 1) return lfl_fail(LFL_ERR_ARG, "split: needs at least one piece");
    int64_t total = 0;
    for (int j = 0; j < n; j++) {
        if (sizes[j] < 0)
            return lfl_fail(LFL_ERR_ARG, "split: piece %d has negative size %lld", j + 1, (long long)sizes[j]);
        total += sizes[j];
    }
    if (total != a->shape[d])
        return lfl_fail(LFL_ERR_ARG, "split: sizes sum to %lld but dim %d has size %lld", (long long)total, d + 1,
                        (long long)a->shape[d]);
    int64_t *off = malloc(sizeof *off * (size_t)(n + 1));
    if (!off) return lfl_fail(LFL_ERR_MEM, "split: out of memory");
    off[0] = 0;
    for (int j = 0; j < n; j++) off[j + 1] = off[j] + sizes[j];
    /* plain views first (recording nothing), then one node owns them all */
    lfl_status st = LFL_OK;
    bool prev = lfl_set_grad_enabled(false);
    int made = 0;
    for (; made < n && st == LFL_OK; made++) st = lfl_narrow(a, d, off[made], sizes[made], &outs[made]);
    lfl_set_grad_enabled(prev);
    if (st) {
        for (int j = 0; j < made - 1; j++) { lfl_tensor_release(outs[j]); outs[j] = NULL; }
        free(off);
        return st;
    }
    bool diff = a->dtype == LFL_F32 || a->dtype == LFL_F64;
    lfl_node *nd = diff ? lfl_node_begin("split", split_backward, 1, &a, n) : NULL;
    if (nd) {
        nd->iarg[0] = d;
        nd->ctx = off;
        nd->ctx_free = free;
        for (int j = 0; j < n; j++) lfl_node_set_output(nd, outs[j], j);
        lfl_node_release(nd);
    } else {
        free(off);
    }
    return LFL_OK;
}
