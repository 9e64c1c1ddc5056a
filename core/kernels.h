/* CUDA entry points the CPU ops dispatch to for device tensors (kernels/).
 * Without a CUDA build each returns LFL_ERR_DEVICE. */
#ifndef LFL_KERNELS_H
#define LFL_KERNELS_H

#include "tensor.h"

/* o = a (kind) b with broadcasting; o allocated by the caller on a's device */
lfl_status lfl_cuda_binary(int kind, const lfl_tensor *a, const lfl_tensor *b, lfl_tensor *o);
/* row-major C[m,n] = op(A) op(B) (+ beta C), f32 */
lfl_status lfl_cuda_sgemm(int device, bool ta, bool tb, int m, int n, int k, float alpha,
                          const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);

#endif
