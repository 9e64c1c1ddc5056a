/* cross_entropy: logits[..., V], labels[...] (0-based ids, -100 ignored) ->
 * -log_softmax(logits)[label] per position, reduced by mean (over the
 * non-ignored positions, NaN when there are none, as torch), sum or none.
 * Forward keeps only the per-row log-sum-exp; backward is
 * (softmax - onehot) * g, zero on ignored rows. */
#include <math.h>
#include <stdlib.h>
#include "loss.h"

lfl_status lfl_cpu_cross_entropy_backward(lfl_tensor *g, lfl_tensor *x, lfl_tensor *lab, lfl_tensor *lse,
                                          lfl_reduction r, int64_t count, lfl_tensor *dx)
{
    int64_t V = x->shape[x->ndim - 1], rows = lfl_numel(lse);
    double *coef = malloc(sizeof(double) * (size_t)(rows ? rows : 1));
    if (!coef) return lfl_fail(LFL_ERR_MEM, "cross_entropy backward: out of memory");
    lfl_status st = lfl_loss_row_coef(g, r, rows, count, 1.0, coef);
    if (st == LFL_OK)
        lfl_loss_softmax_grad(x->dtype, lfl_data(x), lfl_data(dx), rows, V, V, lfl_data(lab), 0, lfl_data(lse), coef);
    free(coef);
    return st;
}

static lfl_status ce_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    lfl_tensor *x = n->saved[0], *lab = n->saved[1], *lse = n->saved[2], *dx = NULL;
    lfl_cross_entropy_backward_kernel fn;
    LFL_TRY(lfl_dispatch_cross_entropy_backward(x->device, NULL, &fn));
    lfl_status st = lfl_empty(x->ndim, x->shape, x->dtype, x->device, &dx);
    if (st == LFL_OK) st = fn(gout[0], x, lab, lse, (lfl_reduction)n->iarg[0], n->iarg[3], dx);
    if (st) { lfl_tensor_release(dx); return st; }
    gin[0] = dx;
    return LFL_OK;
}

lfl_status lfl_cpu_cross_entropy(lfl_tensor *x, lfl_tensor *lab, lfl_reduction r, lfl_tensor *lse, lfl_tensor *o,
                                 int64_t *count)
{
    LFL_TRY(lfl_loss_labels_check("cross_entropy", lab, x->shape[x->ndim - 1]));
    int64_t V = x->shape[x->ndim - 1], rows = lfl_numel(lse);
    double *m = malloc(sizeof(double) * (size_t)(3 * rows + 1));
    if (!m) return lfl_fail(LFL_ERR_MEM, "cross_entropy: out of memory");
    double *s = m + rows, *picked = s + rows, *pl = lfl_data(lse);
    const int64_t *pb = lfl_data(lab);
    for (int64_t i = 0; i < rows; i++) { m[i] = -INFINITY; s[i] = 0; picked[i] = 0; }
    lfl_loss_lse_block(x->dtype, lfl_data(x), rows, V, V, pb, 0, m, s, picked);
    /* per-row loss lse - x[label] in place of `picked`; 0 on ignored rows */
    for (int64_t i = 0; i < rows; i++) {
        pl[i] = m[i] + log(s[i]);
        picked[i] = pb[i] == LFL_IGNORE_INDEX ? 0.0 : pl[i] - picked[i];
    }
    lfl_loss_reduce(picked, pb, rows, r, o, count);
    free(m);
    return LFL_OK;
}

lfl_status lfl_cross_entropy(lfl_tensor *logits, lfl_tensor *labels, lfl_reduction r, lfl_tensor **out)
{
    if (r != LFL_REDUCE_MEAN && r != LFL_REDUCE_SUM && r != LFL_REDUCE_NONE)
        return lfl_fail(LFL_ERR_ARG, "cross_entropy: unknown reduction %d", (int)r);
    lfl_cross_entropy_kernel fn;
    LFL_TRY(lfl_dispatch_cross_entropy(logits->device, NULL, &fn));
    lfl_tensor *x, *lab, *lse = NULL, *o = NULL;
    int64_t rows, V, count = 0;
    LFL_TRY(lfl_loss_prepare("cross_entropy", logits, labels, &x, &lab, &rows, &V));
    lfl_status st = lfl_empty(1, &rows, LFL_F64, x->device, &lse);
    if (st == LFL_OK) st = lfl_loss_output(r, labels, x->dtype, x->device, &o);
    if (st == LFL_OK) st = fn(x, lab, r, lse, o, &count);
    if (st == LFL_OK) {
        lfl_node *n = lfl_node_begin("cross_entropy", ce_backward, 1, &logits, 1);
        if (n) {
            n->iarg[0] = r;
            n->iarg[1] = rows;
            n->iarg[2] = V;
            n->iarg[3] = count;
            lfl_node_save(n, x);
            lfl_node_save(n, lab);
            lfl_node_save(n, lse);
            lfl_node_set_output(n, o, 0);
            lfl_node_release(n);
        }
        *out = o;
    } else {
        lfl_tensor_release(o);
    }
    lfl_tensor_release(x);
    lfl_tensor_release(lab);
    lfl_tensor_release(lse);
    return st;
}
