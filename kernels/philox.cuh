// Philox4x32-10 for device code: core/philox.h's body (the one core/rng.c's
// lfl_philox uses), so a kernel drawing counter c under a seed gets the CPU's
// four words.
#ifndef LFL_KERNELS_PHILOX_CUH
#define LFL_KERNELS_PHILOX_CUH

#include "common.cuh"
#define LFL_PHILOX_QUAL __host__ __device__
#include "philox.h"

#endif
