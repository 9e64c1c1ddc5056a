/* Philox4x32-10 counter-based RNG: one global stream, seeded and reproducible. */
#ifndef LFL_RNG_H
#define LFL_RNG_H

#include <stdint.h>
#include "tensor.h"

typedef struct { uint64_t seed; uint64_t offset; } lfl_rng_state;

void lfl_rng_seed(uint64_t seed);
lfl_rng_state lfl_rng_get(void);
void lfl_rng_set(lfl_rng_state s);
/* Reserves n 32-bit draws and returns the offset of the first, so parallel
 * loops can draw element i from counter (offset + i) independently. */
uint64_t lfl_rng_reserve(uint64_t n);
/* Four 32-bit words for counter c under key seed. */
void lfl_philox(uint64_t seed, uint64_t c, uint32_t out[4]);
/* uniform in [0, 1) from a 32-bit word */
static inline double lfl_u32_unit(uint32_t x) { return (x >> 8) * (1.0 / 16777216.0); }

lfl_status lfl_rand_(lfl_tensor *t, double lo, double hi);     /* uniform */
lfl_status lfl_randn_(lfl_tensor *t, double mean, double std); /* normal */

#endif
