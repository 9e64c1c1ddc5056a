/* token_logprobs: logits[..., V], labels[...] -> log p(label) = x[label] - lse
 * per position (0 where the label is -100), the per-token term of DPO, KTO
 * and PPO. Gradient w.r.t. logits: g * (onehot - softmax), 0 on ignored rows. */
#include <math.h>
#include <stdlib.h>
#include "loss.h"

lfl_status lfl_cpu_token_logprobs_backward(lfl_tensor *g, lfl_tensor *x, lfl_tensor *lab, lfl_tensor *lse,
                                           lfl_tensor *dx)
{
    int64_t V = x->shape[x->ndim - 1], rows = lfl_numel(lse);
    double *coef = malloc(sizeof(double) * (size_t)(rows ? rows : 1));
    if (!coef) return lfl_fail(LFL_ERR_MEM, "token_logprobs backward: out of memory");
    /* coef = -g turns (softmax - onehot) * coef into g * (onehot - softmax) */
    lfl_status st = lfl_loss_row_coef(g, LFL_REDUCE_NONE, rows, 0, -1.0, coef);
    if (st == LFL_OK)
        lfl_loss_softmax_grad(x->dtype, lfl_data(x), lfl_data(dx), rows, V, V, lfl_data(lab), 0, lfl_data(lse), coef);
    free(coef);
    return st;
}

static lfl_status tlp_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    lfl_tensor *x = n->saved[0], *lab = n->saved[1], *lse = n->saved[2], *dx = NULL;
    lfl_token_logprobs_backward_kernel fn;
    LFL_TRY(lfl_dispatch_token_logprobs_backward(x->device, NULL, &fn));
    lfl_status st = lfl_empty(x->ndim, x->shape, x->dtype, x->device, &dx);
    if (st == LFL_OK) st = fn(gout[0], x, lab, lse, dx);
    if (st) { lfl_tensor_release(dx); return st; }
    gin[0] = dx;
    return LFL_OK;
}

lfl_status lfl_cpu_token_logprobs(lfl_tensor *x, lfl_tensor *lab, lfl_tensor *lse, lfl_tensor *o)
{
    LFL_TRY(lfl_loss_labels_check("token_logprobs", lab, x->shape[x->ndim - 1]));
    int64_t V = x->shape[x->ndim - 1], rows = lfl_numel(lse), count;
    double *m = malloc(sizeof(double) * (size_t)(3 * rows + 1));
    if (!m) return lfl_fail(LFL_ERR_MEM, "token_logprobs: out of memory");
    double *s = m + rows, *picked = s + rows, *pl = lfl_data(lse);
    const int64_t *pb = lfl_data(lab);
    for (int64_t i = 0; i < rows; i++) { m[i] = -INFINITY; s[i] = 0; picked[i] = 0; }
    lfl_loss_lse_block(x->dtype, lfl_data(x), rows, V, V, pb, 0, m, s, picked);
    for (int64_t i = 0; i < rows; i++) {
        pl[i] = m[i] + log(s[i]);
        picked[i] = pb[i] == LFL_IGNORE_INDEX ? 0.0 : picked[i] - pl[i];
    }
    lfl_loss_reduce(picked, pb, rows, LFL_REDUCE_NONE, o, &count);
    free(m);
    return LFL_OK;
}

lfl_status lfl_token_logprobs(lfl_tensor *logits, lfl_tensor *labels, lfl_tensor **out)
{
    lfl_token_logprobs_kernel fn;
    LFL_TRY(lfl_dispatch_token_logprobs(logits->device, NULL, &fn));
    lfl_tensor *x, *lab, *lse = NULL, *o = NULL;
    int64_t rows, V;
    LFL_TRY(lfl_loss_prepare("token_logprobs", logits, labels, &x, &lab, &rows, &V));
    lfl_status st = lfl_empty(1, &rows, LFL_F64, x->device, &lse);
    if (st == LFL_OK) st = lfl_loss_output(LFL_REDUCE_NONE, lab, x->dtype, x->device, &o);
    if (st == LFL_OK) st = fn(x, lab, lse, o);
    if (st == LFL_OK) {
        lfl_node *n = lfl_node_begin("token_logprobs", tlp_backward, 1, &logits, 1);
        if (n) {
            n->iarg[0] = rows;
            n->iarg[1] = V;
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
