/* mul: a * b with broadcasting; d/da = g * b, d/db = g * a. */
#include "binary.h"

static lfl_status mul_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    for (int i = 0; i < 2; i++) {
        if (!lfl_node_needs(n, i)) continue;
        lfl_tensor *p;
        LFL_TRY(lfl_binary_raw("mul backward", LFL_B_MUL, gout[0], n->saved[1 - i], &p));
        lfl_status st = lfl_sum_to(p, n->in[i].ndim, n->in[i].shape, &gin[i]);
        lfl_tensor_release(p);
        LFL_TRY(st);
    }
    return LFL_OK;
}

/* the CPU kernel: binary.c's broadcasting loop */
lfl_status lfl_cpu_mul(lfl_tensor *a, lfl_tensor *b, lfl_tensor *out) { return lfl_binary_cpu(LFL_B_MUL, a, b, out); }

lfl_status lfl_mul(lfl_tensor *a, lfl_tensor *b, lfl_tensor **out)
{
    LFL_TRY(lfl_binary_raw("mul", LFL_B_MUL, a, b, out));
    lfl_tensor *in[2] = {a, b};
    lfl_node *n = lfl_node_begin("mul", mul_backward, 2, in, 1);
    if (n) {
        lfl_node_save(n, a);
        lfl_node_save(n, b);
        lfl_node_set_output(n, *out, 0);
        lfl_node_release(n);
    }
    return LFL_OK;
}
