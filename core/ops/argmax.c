/* argmax along one dim: 0-based i64 positions (token ids when taken over
 * logits), first occurrence on ties; not differentiable, records nothing.
 * The front and the kernel are max.c's. */
#include "dimwise.h"

lfl_status lfl_cpu_argmax(lfl_tensor *a, int dim, lfl_tensor *values, lfl_tensor *indices)
{
    return lfl_extremum_cpu(a, dim, false, values, indices);
}

lfl_status lfl_argmax(lfl_tensor *a, int dim, bool keepdim, lfl_tensor **out)
{
    return lfl_extremum("argmax", LFL_OP_argmax, a, dim, keepdim, false, NULL, out);
}
