/* min along one dim: values and the 0-based i64 argmin (first occurrence on
 * ties); the front, the kernel and its backward are max.c's with the
 * comparison flipped. */
#include "dimwise.h"

lfl_status lfl_cpu_min(lfl_tensor *a, int dim, lfl_tensor *values, lfl_tensor *indices)
{
    return lfl_extremum_cpu(a, dim, true, values, indices);
}

lfl_status lfl_min(lfl_tensor *a, int dim, bool keepdim, lfl_tensor **values, lfl_tensor **indices)
{
    return lfl_extremum("min", LFL_OP_min, a, dim, keepdim, true, values, indices);
}
