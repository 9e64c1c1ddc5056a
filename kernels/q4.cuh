// NF4/FP4 (bitsandbytes' 4-bit, quant/bnb4.h) dequantization on CUDA, for the
// kernels that multiply by a QLoRA base weight: the whole weight (or its
// first `rows` rows) into f32 or bf16, then a cuBLAS GEMM.
#ifndef LFL_KERNELS_Q4_CUH
#define LFL_KERNELS_Q4_CUH

#include "common.cuh"
extern "C" {
#include "quant/bnb4.h"
}

// q: a whole NF4/FP4 tensor on a CUDA device (lfl_q4_check passed); dst: rows
// [r0, r0 + rows) of q's [out, in] view as dt (LFL_F32 or LFL_BF16),
// contiguous, on q's device.
lfl_status lfl_cuda_q4_dequant_rows(const lfl_tensor *q, int64_t r0, int64_t rows, void *dst, lfl_dtype dt);

#endif
