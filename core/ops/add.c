/* add: a + b with broadcasting; the gradient flows to both, summed back to shape. */
#include "binary.h"

static lfl_status add_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    for (int i = 0; i < 2; i++)
        if (lfl_node_needs(n, i)) LFL_TRY(lfl_sum_to(gout[0], n->in[i].ndim, n->in[i].shape, &gin[i]));
    return LFL_OK;
}

/* the CPU kernel: binary.c's broadcasting loop */
lfl_status lfl_cpu_add(lfl_tensor *a, lfl_tensor *b, lfl_tensor *out) { return lfl_binary_cpu(LFL_B_ADD, a, b, out); }

lfl_status lfl_add(lfl_tensor *a, lfl_tensor *b, lfl_tensor **out)
{
    LFL_TRY(lfl_binary_raw("add", LFL_B_ADD, a, b, out));
    lfl_tensor *in[2] = {a, b};
    lfl_node *n = lfl_node_begin("add", add_backward, 2, in, 1);
    if (n) { lfl_node_set_output(n, *out, 0); lfl_node_release(n); }
    return LFL_OK;
}

lfl_status lfl_accumulate_same_device(lfl_tensor *dst, lfl_tensor *src)
{
    LFL_ASSERT(dst->device == src->device && lfl_is_contiguous(dst));
    lfl_add_kernel fn;
    LFL_TRY(lfl_dispatch_add(dst->device, "backward (accumulating a gradient)", &fn));
    lfl_tensor *s = NULL;
    bool g = lfl_set_grad_enabled(false);
    lfl_status st = src->dtype == dst->dtype ? LFL_OK : lfl_cast(src, dst->dtype, &s);
    lfl_set_grad_enabled(g);
    if (st == LFL_OK) st = fn(dst, s ? s : src, dst); /* elementwise: out may be a */
    lfl_tensor_release(s);
    return st;
}
