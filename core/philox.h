/* Philox4x32-10 (Salmon et al., SC'11): four 32-bit words for counter c under
 * key seed. One body for the CPU (rng.c's lfl_philox) and the CUDA kernels
 * (kernels/philox.cuh defines LFL_PHILOX_QUAL as __host__ __device__), so a
 * kernel's dropout mask is the CPU's by construction. */
#ifndef LFL_PHILOX_H
#define LFL_PHILOX_H

#include <stdint.h>

#ifndef LFL_PHILOX_QUAL
#define LFL_PHILOX_QUAL
#endif

LFL_PHILOX_QUAL static inline void lfl_philox4x32(uint64_t seed, uint64_t c, uint32_t out[4])
{
    uint32_t c0 = (uint32_t)c, c1 = (uint32_t)(c >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

#endif
