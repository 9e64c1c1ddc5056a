/* min along one dim: values and the 0-based i64 argmin (first occurrence on
 * ties); the kernel and its backward are max.c's with the comparison flipped. */
#include "dimwise.h"

lfl_status lfl_min(lfl_tensor *a, int dim, bool keepdim, lfl_tensor **values, lfl_tensor **indices)
{
    return lfl_extremum("min", a, dim, keepdim, true, true, values, indices);
}
