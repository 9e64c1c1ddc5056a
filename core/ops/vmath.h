/* Vectorisable f32 math for the hot loops of the ops: exp, log, tanh, erfc.
 * glibc's expf/logf/... only get SIMD versions under -ffast-math, so a
 * `#pragma omp simd` loop calling them stays scalar. These are plain
 * arithmetic and selects (no calls, no branches), always inlined, so such
 * loops compile to vector code. The one exp of the code base lives here
 * (softmax, attention, the losses, swiglu and unary all use lfl_vexpf);
 * tests/c/test_vexp.c checks it against double exp. f64 paths use libm. */
#ifndef LFL_OPS_VMATH_H
#define LFL_OPS_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define LFL_VINLINE static inline __attribute__((always_inline))

LFL_VINLINE float lfl_vbits_to_f(int32_t i) { float f; memcpy(&f, &i, 4); return f; }
LFL_VINLINE int32_t lfl_vf_to_bits(float f) { int32_t i; memcpy(&i, &f, 4); return i; }

/* e^x within 1 ulp (Cephes' expf: x = n ln2 + r with |r| <= ln2 / 2, ln2 split
 * in two for an exact product, a degree-6 polynomial for e^r). Results below
 * FLT_MIN flush to +0, so x = -inf (a masked score) gives 0 and no loop ever
 * produces a subnormal, which costs a microcode assist per element on many
 * x86 cores; past ln FLT_MAX the product overflows to +inf by itself (x is
 * clamped at 100 only to keep n's exponent fields in range), and NaN runs
 * through the arithmetic and stays NaN. n comes from the bits of the
 * 1.5 * 2^23 rounding shift, not from a float->int conversion: cheaper, and
 * defined for NaN. 2^n is applied as two factors so that n up to 144 keeps
 * both exponent fields finite. */
LFL_VINLINE float lfl_vexpf(float x)
{
    const float lo = -87.33654f; /* ln FLT_MIN */
    float xc = x < lo ? lo : x;
    xc = xc > 100.0f ? 100.0f : xc;
    float t = xc * 1.44269504088896341f + 12582912.0f; /* n in the low mantissa bits */
    float fn = t - 12582912.0f;
    float r = xc - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    float r2 = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r2 + r + 1.0f;
    int32_t n = lfl_vf_to_bits(t) - 0x4b400000; /* in [-126, 144] unless x is NaN */
    int32_t n1 = n >> 1, n2 = n - n1;           /* both halves give finite scales */
    uint32_t s1 = (uint32_t)(n1 + 127) << 23, s2 = (uint32_t)(n2 + 127) << 23;
    float y = p * lfl_vbits_to_f((int32_t)s1) * lfl_vbits_to_f((int32_t)s2);
    return x < lo ? 0.0f : y;
}

/* ln x. x = m 2^e with m in [sqrt(1/2), sqrt(2)), Cephes' polynomial for
 * ln(m), e ln2 added in two parts. Subnormals are scaled by 2^23 first. */
LFL_VINLINE float lfl_vlogf(float x)
{
    /* Integer masks rather than ?: or ||, so that nothing becomes a branch:
     * GCC will not if-convert an arm holding a float op or an int->float
     * conversion (they may trap under the default -ftrapping-math), and the
     * loop would stay scalar. */
    int32_t ix = lfl_vf_to_bits(x);
    int32_t sub = ix < 0x00800000;                            /* subnormal, 0 or < 0 */
    float xs = x * lfl_vbits_to_f(0x3f800000 + sub * (23 << 23)); /* * 2^23 if sub */
    int32_t i = lfl_vf_to_bits(xs);
    int32_t mb = (i & 0x007fffff) | 0x3f000000;               /* m in [0.5, 1) */
    int32_t low = mb < 0x3f3504f3;                            /* m < sqrt(1/2) */
    float fe = (float)(((i >> 23) & 0xff) - 126 - 23 * sub - low);
    float m = lfl_vbits_to_f(mb + (low << 23)) - 1.0f;        /* 2m if low, - 1 */
    float z = m * m;
    float y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z;
    y += -2.12194440e-4f * fe;
    y += -0.5f * z;
    float r = m + y;
    r += 0.693359375f * fe;
    /* +-0 -> -inf, x < 0 -> NaN, +inf and NaN -> x; blended with masks */
    int32_t ax = ix & 0x7fffffff;
    int32_t zero = -(int32_t)(ax == 0), neg = -(int32_t)(ix < 0);
    int32_t sp = (zero & (int32_t)0xff800000) | (~zero & ((neg & 0x7fc00000) | (~neg & ix)));
    int32_t use = zero | neg | -(int32_t)(ax >= 0x7f800000);
    return lfl_vbits_to_f((lfl_vf_to_bits(r) & ~use) | (sp & use));
}

/* tanh x: an odd polynomial below |x| = 0.625 (where 1 - 2/(e^2x + 1)
 * would cancel), the exp form above. Cephes' coefficients. */
LFL_VINLINE float lfl_vtanhf(float x)
{
    float a = fabsf(x);
    float z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    float small = p * z * x + x;
    float big = 1.0f - 2.0f / (lfl_vexpf(2.0f * a) + 1.0f);
    big = x < 0.0f ? -big : big;
    small = a == 0.0f ? x : small; /* keeps the sign of -0 */
    return a < 0.625f ? small : big;
}

/* erfc x with a relative error near 1e-6 for |x| < 4, growing to ~1e-5 in the
 * far tail through the f32 rounding of x^2 (Numerical Recipes' erfcc:
 * fractional error < 1.2e-7 in exact arithmetic); erfc(-z) = 2 - erfc(z). GELU uses 0.5 x erfc(-x / sqrt 2),
 * which does not cancel for negative x the way 1 + erf(x / sqrt 2) does. */
LFL_VINLINE float lfl_verfcf(float x)
{
    float z = fabsf(x);
    float t = 1.0f / (1.0f + 0.5f * z);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    float r = t * lfl_vexpf(p - z * z);
    return x < 0.0f ? 2.0f - r : r;
}

#endif
