// token_logprobs (log p(label) = x[label] - lse per row, 0 on -100 rows) and
// its backward g * (onehot - softmax) on CUDA (f32, f64 logits), as
// core/ops/token_logprobs.c computes them; the label range is checked on the
// device (the CPU's message when one is out of range). The row kernels are
// loss_rows.cuh's, shared with cross_entropy.
#include "loss_rows.cuh"

extern "C" lfl_status lfl_cuda_token_logprobs(lfl_tensor *logits, lfl_tensor *labels, lfl_tensor *lse, lfl_tensor *out)
{
    int64_t count;
    LFL_F32_F64_SWITCH(logits->dtype, "token_logprobs", T,
                       return loss_forward<T>("token_logprobs", LOSS_LOGPROB, logits, labels, LFL_REDUCE_NONE, lse,
                                              out, &count));
    return LFL_OK;
}

// coef = -g turns the shared (softmax - onehot) * coef into g * (onehot - softmax)
extern "C" lfl_status lfl_cuda_token_logprobs_backward(lfl_tensor *g, lfl_tensor *logits, lfl_tensor *labels,
                                                       lfl_tensor *lse, lfl_tensor *dx)
{
    if (g->dtype != logits->dtype)
        return lfl_fail(LFL_ERR_ARG, "token_logprobs backward: gradient is %s but the logits are %s",
                        lfl_dtype_name(g->dtype), lfl_dtype_name(logits->dtype));
    LFL_F32_F64_SWITCH(logits->dtype, "token_logprobs backward", T,
                       return loss_backward<T>("token_logprobs backward", g, logits, labels, lse, LFL_REDUCE_NONE, 0,
                                               -1.0, dx));
    return LFL_OK;
}
