// GGUF block weights (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K; layouts
// in core/quant/ggml.c) dequantized on CUDA, for the kernels that multiply by
// such a weight: rows of it into f32 or bf16, then a cuBLAS GEMM.
#ifndef LFL_KERNELS_BLOCKS_CUH
#define LFL_KERNELS_BLOCKS_CUH

#include "common.cuh"

// q: a whole contiguous GGUF block tensor on a CUDA device; dst: rows
// [r0, r0 + rows) of q's [out, in] view (in = q's last dimension) as dt
// (LFL_F32 or LFL_BF16), contiguous, on q's device. The rows may start and end
// inside a block. The f32 values are the CPU's (lfl_dequantize_rows) bit for
// bit; bf16 rounds them to nearest even. C linkage, so that the C tests (and
// any C caller in a CUDA build) can reach it.
extern "C" lfl_status lfl_cuda_block_dequant_rows(const lfl_tensor *q, int64_t r0, int64_t rows, void *dst, lfl_dtype dt);

#endif
