/* sub: a - b with broadcasting; d/da = g, d/db = -g (summed back to shape). */
#include "binary.h"

static lfl_status sub_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    if (lfl_node_needs(n, 0)) LFL_TRY(lfl_sum_to(gout[0], n->in[0].ndim, n->in[0].shape, &gin[0]));
    if (lfl_node_needs(n, 1)) {
        lfl_tensor *s;
        LFL_TRY(lfl_sum_to(gout[0], n->in[1].ndim, n->in[1].shape, &s));
        lfl_status st = lfl_affine(s, -1, 0, &gin[1]);
        lfl_tensor_release(s);
        LFL_TRY(st);
    }
    return LFL_OK;
}

/* the CPU kernel: binary.c's broadcasting loop */
lfl_status lfl_cpu_sub(lfl_tensor *a, lfl_tensor *b, lfl_tensor *out) { return lfl_binary_cpu(LFL_B_SUB, a, b, out); }

lfl_status lfl_sub(lfl_tensor *a, lfl_tensor *b, lfl_tensor **out)
{
    LFL_TRY(lfl_binary_raw("sub", LFL_B_SUB, a, b, out));
    lfl_tensor *in[2] = {a, b};
    lfl_node *n = lfl_node_begin("sub", sub_backward, 2, in, 1);
    if (n) { lfl_node_set_output(n, *out, 0); lfl_node_release(n); }
    return LFL_OK;
}
