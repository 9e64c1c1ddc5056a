/* 8-bit AdamW in the layout of bitsandbytes' blockwise optimizers: each state
 * tensor is stored as one uint8 code index per element plus an f32 absmax per
 * block, over bitsandbytes' "dynamic" 8-bit quantization maps. */
#ifndef LFL_ADAMW8BIT_H
#define LFL_ADAMW8BIT_H

#include "optim.h"

/* bitsandbytes.functional.create_dynamic_map(signed, max_exponent_bits=7,
 * total_bits=8): 256 sorted values in [-1, 1] (signed) or [0, 1] (unsigned),
 * computed in f32 exactly as torch does. */
void lfl_qmap_dynamic(bool is_signed, float code[256]);

/* quantize_blockwise: absmax[b] = max |x| over block b (block elements, the last
 * block may be short), q[i] = index of the nearest code value to
 * clamp(x[i] / absmax, -1, 1) (bucketize against the midpoints, ties to the lower
 * index). x contiguous f32, q u8 of the same numel, absmax f32 of ceil(n/block). */
/* mid[i] = (code[i] + code[i + 1]) / 2: the bounds quantization searches */
void lfl_qmap_midpoints(const float code[256], float mid[255]);
/* one block: q[i] = the first midpoint index with mid >= x[i] * (1 / absmax)
 * clamped to [-1, 1]; returns absmax = max |x| over x[0..len) */
float lfl_quantize_block(const float *x, int64_t len, const float mid[255], uint8_t *q);
lfl_status lfl_quantize_blockwise(lfl_tensor *x, const float code[256], int64_t block, lfl_tensor *q,
                                  lfl_tensor *absmax);
/* out[i] = code[q[i]] * absmax[i / block] */
lfl_status lfl_dequantize_blockwise(lfl_tensor *q, lfl_tensor *absmax, const float code[256], int64_t block,
                                    lfl_tensor *out);

/* One fused AdamW step with 8-bit states (bitsandbytes' optimizer_update_8bit_blockwise
 * for "adam"): per block, dequantize m (signed map) and v (unsigned map), update them
 * in f32 with g, update p (decoupled weight decay, bias correction as torch), then
 * requantize m and v with the new block absmax. p, g contiguous f32. */
lfl_status lfl_adamw8bit_step(lfl_tensor *p, lfl_tensor *g, lfl_tensor *mq, lfl_tensor *mabs, lfl_tensor *vq,
                              lfl_tensor *vabs, int64_t block, const lfl_adamw_opts *o);

#endif
