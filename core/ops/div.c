/* div: a / b with broadcasting; d/da = g / b, d/db = -g * a / b^2. */
#include "binary.h"

static lfl_status div_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    lfl_tensor *a = n->saved[0], *b = n->saved[1], *q = NULL, *p = NULL, *r = NULL;
    lfl_status st = lfl_binary_raw("div backward", LFL_B_DIV, gout[0], b, &q); /* g / b */
    if (st == LFL_OK && lfl_node_needs(n, 0)) st = lfl_sum_to(q, n->in[0].ndim, n->in[0].shape, &gin[0]);
    if (st == LFL_OK && lfl_node_needs(n, 1)) {
        st = lfl_binary_raw("div backward", LFL_B_MUL, q, a, &p);                /* g a / b */
        if (st == LFL_OK) st = lfl_binary_raw("div backward", LFL_B_DIV, p, b, &r); /* g a / b^2 */
        lfl_tensor *s = NULL;
        if (st == LFL_OK) st = lfl_sum_to(r, n->in[1].ndim, n->in[1].shape, &s);
        if (st == LFL_OK) st = lfl_affine(s, -1, 0, &gin[1]);
        lfl_tensor_release(s);
    }
    lfl_tensor_release(q);
    lfl_tensor_release(p);
    lfl_tensor_release(r);
    return st;
}

/* the CPU kernel: binary.c's broadcasting loop */
lfl_status lfl_cpu_div(lfl_tensor *a, lfl_tensor *b, lfl_tensor *out) { return lfl_binary_cpu(LFL_B_DIV, a, b, out); }

lfl_status lfl_div(lfl_tensor *a, lfl_tensor *b, lfl_tensor **out)
{
    LFL_TRY(lfl_binary_raw("div", LFL_B_DIV, a, b, out));
    lfl_tensor *in[2] = {a, b};
    lfl_node *n = lfl_node_begin("div", div_backward, 2, in, 1);
    if (n) {
        lfl_node_save(n, a);
        lfl_node_save(n, b);
        lfl_node_set_output(n, *out, 0);
        lfl_node_release(n);
    }
    return LFL_OK;
}
