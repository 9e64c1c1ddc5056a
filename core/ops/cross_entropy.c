/* cross_entropy: logits[..., V], labels[...] (0-based ids, -100 ignored) ->
 * -log_softmax(logits)[label] per position, reduced by mean (over the
 * non-ignored positions, NaN when there are none, as torch), sum or none.
 * Forward keeps only the per-row log-sum-exp; backward is
 * (softmax - onehot) * g, zero on ignored rows. */
#include <math.h>
#include <stdlib.h>
#include "loss.h"

static lfl_status ce_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    lfl_tensor *x = n->saved[0], *lab = n->saved[1], *lse = n->saved[2];
    int64_t rows = n->iarg[1], V = n->iarg[2];
    double *coef = malloc(sizeof(double) * (size_t)(rows ? rows : 1));
    if (!coef) return lfl_fail(LFL_ERR_MEM, "cross_entropy backward: out of memory");
    lfl_status st = lfl_loss_row_coef(gout[0], (lfl_reduction)n->iarg[0], rows, n->iarg[3], 1.0, coef);
    if (st == LFL_OK) st = lfl_empty(x->ndim, x->shape, x->dtype, LFL_CPU, &gin[0]);
    if (st == LFL_OK)
        lfl_loss_softmax_grad(x->dtype, lfl_data(x), lfl_data(gin[0]), rows, V, V, lfl_data(lab), 0,
                              lfl_data(lse), coef);
    free(coef);
    return st;
}

lfl_status lfl_cross_entropy(lfl_tensor *logits, lfl_tensor *labels, lfl_reduction r, lfl_tensor **out)
{
    if (r != LFL_REDUCE_MEAN && r != LFL_REDUCE_SUM && r != LFL_REDUCE_NONE)
        return lfl_fail(LFL_ERR_ARG, "cross_entropy: unknown reduction %d", (int)r);
    lfl_tensor *x, *lab, *lse = NULL, *o = NULL;
    int64_t rows, V;
    LFL_TRY(lfl_loss_prepare("cross_entropy", logits, labels, &x, &lab, &rows, &V));
    double *m = malloc(sizeof(double) * (size_t)(3 * rows + 1));
    lfl_status st = m ? lfl_empty(1, &rows, LFL_F64, LFL_CPU, &lse)
                      : lfl_fail(LFL_ERR_MEM, "cross_entropy: out of memory");
    int64_t count = 0;
    if (st == LFL_OK) {
        double *s = m + rows, *picked = s + rows, *pl = lfl_data(lse);
        const int64_t *pb = lfl_data(lab);
        for (int64_t i = 0; i < rows; i++) { m[i] = -INFINITY; s[i] = 0; picked[i] = 0; }
        lfl_loss_lse_block(x->dtype, lfl_data(x), rows, V, V, pb, 0, m, s, picked);
        /* per-row loss lse - x[label] in place of `picked`; 0 on ignored rows */
        for (int64_t i = 0; i < rows; i++) {
            pl[i] = m[i] + log(s[i]);
            picked[i] = pb[i] == LFL_IGNORE_INDEX ? 0.0 : pl[i] - picked[i];
        }
        st = lfl_loss_reduce(picked, pb, rows, r, labels->ndim, labels->shape, x->dtype, &o, &count);
    }
    free(m);
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
    }
    lfl_tensor_release(x);
    lfl_tensor_release(lab);
    lfl_tensor_release(lse);
    return st;
}
