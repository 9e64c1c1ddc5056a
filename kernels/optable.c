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
