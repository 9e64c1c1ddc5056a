/* argmax along one dim: 0-based i64 positions (token ids when taken over
 * logits), first occurrence on ties; not differentiable, records nothing. */
#include "dimwise.h"

lfl_status lfl_argmax(lfl_tensor *a, int dim, bool keepdim, lfl_tensor **out)
{
    return lfl_extremum("argmax", a, dim, keepdim, false, false, NULL, out);
}
