/* lfl_vexpf (core/ops/vexp.h), the vectorisable expf of the softmax loops:
 * ulp error against the correctly rounded double exp over the whole range,
 * and the special values (0, -inf, inf, NaN, overflow, underflow). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "ops/vexp.h"

static int failed;

static void check(int ok, const char *what, float x, float got, double want)
{
    if (!ok) {
        failed++;
        if (failed < 10) printf("FAIL  %s: x = %.9g, got %.9g, want %.9g\n", what, x, got, want);
    }
}

static double ulp_err(float got, double want)
{
    float w = (float)want;
    float next = nextafterf(w, INFINITY);
    double ulp = (double)next - (double)w;
    return fabs((double)got - want) / ulp;
}

int main(void)
{
    int passed = 0;
    double worst = 0, worst_x = 0;
    /* every 64th float bit pattern in the normal-result range, both signs */
    for (int sign = 0; sign < 2; sign++) {
        for (uint32_t b = 0; b < 0x42b17218u; b += 64) {
            uint32_t u = b | (sign ? 0x80000000u : 0);
            float x;
            memcpy(&x, &u, 4);
            if (x < -87.33654f || x > 88.72283f) continue;
            double want = exp((double)x);
            if (want < 1.1754944e-38) continue; /* the denormal range flushes to 0 */
            double e = ulp_err(lfl_vexpf(x), want);
            if (e > worst) { worst = e; worst_x = x; }
        }
    }
    printf("max error %.3f ulp (at x = %.9g)\n", worst, worst_x);
    check(worst <= 2.0, "max ulp error <= 2", (float)worst_x, lfl_vexpf((float)worst_x), exp(worst_x));
    passed += worst <= 2.0;
    struct { float x, want; } sp[] = {
        {0.0f, 1.0f}, {-0.0f, 1.0f}, {-INFINITY, 0.0f}, {INFINITY, INFINITY}, {100.0f, INFINITY},
        {-100.0f, 0.0f}, {-1e30f, 0.0f}, {1e30f, INFINITY},
    };
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++) {
        float got = lfl_vexpf(sp[i].x);
        int ok = got == sp[i].want;
        check(ok, "special value", sp[i].x, got, sp[i].want);
        passed += ok;
    }
    float nan = lfl_vexpf(NAN);
    check(nan != nan, "NaN stays NaN", NAN, nan, NAN);
    passed += nan != nan;
    float big = lfl_vexpf(88.7f);
    check(isfinite(big) && ulp_err(big, exp((double)88.7f)) <= 2, "x = 88.7 stays finite", 88.7f, big, exp((double)88.7f));
    passed += isfinite(big);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
