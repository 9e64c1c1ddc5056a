/* The global Philox4x32-10 stream (core/philox.h) and the fills that use it. */
#include <math.h>
#include "iter.h"
#include "philox.h"
#include "rng.h"

static lfl_rng_state state = {0x853c49e6748fea9bULL, 0};

void lfl_rng_seed(uint64_t seed) { state.seed = seed; state.offset = 0; }
lfl_rng_state lfl_rng_get(void) { return state; }
void lfl_rng_set(lfl_rng_state s) { state = s; }

uint64_t lfl_rng_reserve(uint64_t n)
{
    uint64_t o = state.offset;
    state.offset += (n + 3) / 4; /* counters, each gives four words */
    return o;
}

void lfl_philox(uint64_t seed, uint64_t c, uint32_t out[4]) { lfl_philox4x32(seed, c, out); }

/* Fills t element by element from the stream: element i uses word i of the
 * reserved block, so results do not depend on the thread count. */
static lfl_status fill(lfl_tensor *t, int normal, double a, double b)
{
    if (t->device != LFL_CPU || lfl_dtype_is_block(t->dtype))
        return lfl_fail(LFL_ERR_UNSUPPORTED, "random fill: only plain CPU tensors");
    int64_t n = lfl_numel(t);
    /* normal draws take two words each (Box-Muller) */
    uint64_t base = lfl_rng_reserve((uint64_t)n * (normal ? 2 : 1));
    uint64_t seed = state.seed;
    bool fast = lfl_is_contiguous(t) && t->dtype == LFL_F32;
    float *pf = fast ? lfl_data(t) : NULL;
#pragma omp parallel for if (n > LFL_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        uint32_t w[4];
        double v;
        if (normal) {
            uint64_t word = (uint64_t)i * 2;
            lfl_philox(seed, base + word / 4, w);
            double u1 = ((w[word % 4] >> 8) + 1.0) * (1.0 / 16777217.0);
            double u2 = lfl_u32_unit(w[word % 4 + 1]);
            v = a + b * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        } else {
            lfl_philox(seed, base + (uint64_t)i / 4, w);
            v = a + (b - a) * lfl_u32_unit(w[i % 4]);
        }
        if (fast) pf[i] = (float)v;
        else lfl_set(t, i, v);
    }
    return LFL_OK;
}

lfl_status lfl_rand_(lfl_tensor *t, double lo, double hi) { return fill(t, 0, lo, hi); }
lfl_status lfl_randn_(lfl_tensor *t, double mean, double std) { return fill(t, 1, mean, std); }
