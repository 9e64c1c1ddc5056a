/* The CUDA column of the op dispatch table (core/ops/optable.h): one line per
 * kernel written in kernels/ (the .cu files). Adding a CUDA kernel is writing
 * lfl_cuda_<op> (extern "C", the prototype optable.h declares) and adding its
 * line here; every op without a line reports "not implemented on cuda:N". */
#include "ops/optable.h"

#define CUDA_ENTRY(name) [LFL_OP_##name] = {.name = lfl_cuda_##name},

lfl_kernel lfl_cuda_kernels[LFL_OP_COUNT] = {
    CUDA_ENTRY(add)
    CUDA_ENTRY(sub)
    CUDA_ENTRY(mul)
    CUDA_ENTRY(div)
    CUDA_ENTRY(matmul)
    /* optimizers */
    CUDA_ENTRY(adamw_step)
    CUDA_ENTRY(sgd_step)
    CUDA_ENTRY(sum_squares)
    CUDA_ENTRY(scale)
    /* quantized weights */
    CUDA_ENTRY(q4_dequant)
    /* norms, rope, gated activations, losses */
    CUDA_ENTRY(rmsnorm)
    CUDA_ENTRY(rmsnorm_backward)
    CUDA_ENTRY(layernorm)
    CUDA_ENTRY(layernorm_backward)
    CUDA_ENTRY(rope)
    CUDA_ENTRY(rope_backward)
    CUDA_ENTRY(rope_cos_sin)
    CUDA_ENTRY(swiglu)
    CUDA_ENTRY(swiglu_backward)
    CUDA_ENTRY(geglu)
    CUDA_ENTRY(geglu_backward)
    CUDA_ENTRY(cross_entropy)
    CUDA_ENTRY(cross_entropy_backward)
    CUDA_ENTRY(token_logprobs)
    CUDA_ENTRY(token_logprobs_backward)
    /* attention (kernels/attention.cu) */
    CUDA_ENTRY(attention)
    CUDA_ENTRY(attention_backward)
    /* elementwise group: copies and fills, elementwise math, masks, dropout */
    CUDA_ENTRY(copy)
    CUDA_ENTRY(fill)
    CUDA_ENTRY(affine)
    CUDA_ENTRY(pow)
    CUDA_ENTRY(pow_backward)
    CUDA_ENTRY(unary)
    CUDA_ENTRY(unary_backward)
    CUDA_ENTRY(compare)
    CUDA_ENTRY(where)
    CUDA_ENTRY(masked_fill)
    CUDA_ENTRY(dropout)
    CUDA_ENTRY(dropout_backward)
    /* reduce: reductions along dims, softmax, indexing (cuda-b) */
    CUDA_ENTRY(sum)
    CUDA_ENTRY(max)
    CUDA_ENTRY(min)
    CUDA_ENTRY(argmax)
    CUDA_ENTRY(max_backward)
    CUDA_ENTRY(nonzero)
    CUDA_ENTRY(softmax)
    CUDA_ENTRY(softmax_backward)
    CUDA_ENTRY(log_softmax)
    CUDA_ENTRY(log_softmax_backward)
    CUDA_ENTRY(embedding)
    CUDA_ENTRY(embedding_backward)
    CUDA_ENTRY(index_select)
    CUDA_ENTRY(index_select_backward)
    CUDA_ENTRY(gather)
    CUDA_ENTRY(scatter_add)
    CUDA_ENTRY(cat)
    /* gemm group (cuda-d): the linear family and the fused head losses */
    CUDA_ENTRY(linear)
    CUDA_ENTRY(linear_backward)
    CUDA_ENTRY(lora_linear)
    CUDA_ENTRY(lora_linear_backward)
    CUDA_ENTRY(linear_cross_entropy)
    CUDA_ENTRY(linear_cross_entropy_backward)
    CUDA_ENTRY(linear_kl_div)
    CUDA_ENTRY(linear_kl_div_backward)
    CUDA_ENTRY(linear_topk_entropy)
    CUDA_ENTRY(int8_linear_lt)
};
