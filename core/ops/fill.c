/* fill: every element of t (any strides) set to v, converted to t's dtype as
 * lfl_set converts it (a float rounded through f32 for the 16-bit dtypes, an
 * integer truncated, bool = v != 0). */
#include "../iter.h"
#include "optable.h"

lfl_status lfl_cpu_fill(lfl_tensor *t, double v)
{
    /* a 0-dim tensor holding v, broadcast by the copy kernel (its fast paths) */
    lfl_tensor *one;
    LFL_TRY(lfl_empty(0, NULL, t->dtype, LFL_CPU, &one));
    lfl_set(one, 0, v);
    lfl_status st = lfl_cpu_copy(t, one);
    lfl_tensor_release(one);
    return st;
}

lfl_status lfl_fill_(lfl_tensor *t, double v)
{
    if (lfl_dtype_is_block(t->dtype)) return lfl_fail(LFL_ERR_ARG, "fill: cannot fill a %s tensor", lfl_dtype_name(t->dtype));
    lfl_fill_kernel fn;
    LFL_TRY(lfl_dispatch_fill(t->device, NULL, &fn));
    return fn(t, v);
}
