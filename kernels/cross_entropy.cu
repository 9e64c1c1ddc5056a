// cross_entropy and its backward on CUDA (f32, f64 logits), as
// core/ops/cross_entropy.c computes them: lse kept per row in f64, -100 rows
// ignored, mean / sum / none reductions, the label range checked on the
// device (the CPU's message when one is out of range). The row kernels are
// loss_rows.cuh's, shared with token_logprobs.
#include "loss_rows.cuh"

extern "C" lfl_status lfl_cuda_cross_entropy(lfl_tensor *logits, lfl_tensor *labels, lfl_reduction r, lfl_tensor *lse,
                                             lfl_tensor *out, int64_t *count)
{
    LFL_F32_F64_SWITCH(logits->dtype, "cross_entropy", T,
                       return loss_forward<T>("cross_entropy", LOSS_CE, logits, labels, r, lse, out, count));
    return LFL_OK;
}

extern "C" lfl_status lfl_cuda_cross_entropy_backward(lfl_tensor *g, lfl_tensor *logits, lfl_tensor *labels,
                                                      lfl_tensor *lse, lfl_reduction r, int64_t count, lfl_tensor *dx)
{
    if (g->dtype != logits->dtype)
        return lfl_fail(LFL_ERR_ARG, "cross_entropy backward: gradient is %s but the logits are %s",
                        lfl_dtype_name(g->dtype), lfl_dtype_name(logits->dtype));
    LFL_F32_F64_SWITCH(logits->dtype, "cross_entropy backward", T,
                       return loss_backward<T>("cross_entropy backward", g, logits, labels, lse, r, count, 1.0, dx));
    return LFL_OK;
}
