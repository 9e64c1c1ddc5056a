/* Pieces of linear (linear.c) that lora_linear shares: the argument checks
 * (op names the caller in messages), starting C from the bias rows and the
 * bias gradient. */
#ifndef LFL_OPS_LINEAR_H
#define LFL_OPS_LINEAR_H

#include "optable.h"

lfl_status lfl_linear_check(const char *op, lfl_tensor *x, lfl_tensor *w, lfl_tensor *bias);
/* CPU: o[r, :] = bias for r < rows (o contiguous [rows, fout]) */
lfl_status lfl_linear_fill_bias(lfl_tensor *o, lfl_tensor *bias, int64_t rows, int64_t fout);

/* out[fout] = sum over rows of g (contiguous [rows, fout] data), no grad recorded */
lfl_status lfl_linear_bias_grad(lfl_tensor *g, int64_t rows, int64_t fout, lfl_tensor **out);

#endif
