/* A vectorisable expf for the f32 hot loops (softmax and friends): glibc's
 * expf is a scalar call that stops `omp simd` loops from vectorising. */
#ifndef LFL_OPS_VEXP_H
#define LFL_OPS_VEXP_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Cephes' expf: x = n ln2 + r with |r| <= ln2 / 2, a degree-6 polynomial for
 * e^r, and 2^n built in the exponent bits of two factors (so n = -126 and
 * n = 128 still fit). Within 1 ulp of the exact result (tests/c/test_vexp.c);
 * results below 2^-126 flush to 0, past 88.72 give inf, NaN stays NaN, and
 * every branch is a select so `omp simd` loops vectorise. */
static inline float lfl_vexpf(float x)
{
    const float lo = -87.33654f, hi = 88.72283f;
    float xc = x == x ? x : 0.0f;
    xc = xc < lo ? lo : xc;
    xc = xc > hi ? hi : xc;
    /* round x / ln2 to nearest with the 1.5 * 2^23 shift */
    float fn = xc * 1.44269504088896341f + 12582912.0f;
    fn -= 12582912.0f;
    float r = xc - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* 2^n as 2^n1 * 2^n2 with both halves normal for every n in [-126, 128] */
    int32_t n = (int32_t)fn, n1 = n / 2, n2 = n - n1;
    int32_t b1 = (n1 + 127) * (1 << 23), b2 = (n2 + 127) * (1 << 23);
    float s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    float y = p * s1 * s2;
    y = x < lo ? 0.0f : y;
    y = x > hi ? INFINITY : y;
    return x == x ? y : x;
}

#endif
