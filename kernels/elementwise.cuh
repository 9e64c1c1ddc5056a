// What the flat elementwise kernels (affine, pow, unary, dropout) share: a
// grid-stride launch over n contiguous elements.
#ifndef LFL_KERNELS_ELEMENTWISE_CUH
#define LFL_KERNELS_ELEMENTWISE_CUH

#include "strided.cuh"

static const int lfl_ew_threads = 256;

static inline unsigned lfl_ew_blocks(long long n) { return lfl_walk_blocks(n, lfl_ew_threads); }

#endif
