/* core/ops/vmath.h, the one vectorised-math header: lfl_vexpf against the
 * correctly rounded double exp over the whole f32 range (ulp error), its
 * special values (0, -inf, large negatives, the FLT_MIN flush boundary, the
 * overflow region, NaN), and the functions built on it (tanh, erfc) plus
 * lfl_vlogf at a few points, each against double libm. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "ops/vmath.h"

static int failed, passed;

static void check(int ok, const char *what, double x, double got, double want)
{
    if (ok) { passed++; return; }
    failed++;
    if (failed < 20) printf("FAIL  %s: x = %.9g, got %.9g, want %.9g\n", what, x, got, want);
}

/* |got - want| in units of the f32 spacing at want */
static double ulp_err(float got, double want)
{
    float w = (float)want;
    double ulp = (double)nextafterf(fabsf(w), INFINITY) - (double)fabsf(w);
    return fabs((double)got - want) / ulp;
}

static double rel_err(float got, double want) { return fabs((double)got - want) / fmax(fabs(want), 1e-300); }

int main(void)
{
    /* every 64th f32 bit pattern with a normal result, both signs */
    double worst = 0, worst_x = 0;
    long n = 0;
    for (int sign = 0; sign < 2; sign++)
        for (uint32_t b = 0; b < 0x7f800000u; b += 64) {
            uint32_t u = b | (sign ? 0x80000000u : 0);
            float x;
            memcpy(&x, &u, 4);
            if (x < -87.33654f || x > 88.72283f) continue;
            double want = exp((double)x);
            if (want < FLT_MIN || want > FLT_MAX) continue;
            double e = ulp_err(lfl_vexpf(x), want);
            n++;
            if (e > worst) { worst = e; worst_x = x; }
        }
    printf("exp: max error %.3f ulp over %ld inputs (at x = %.9g)\n", worst, n, worst_x);
    check(worst <= 2.0, "exp: max ulp error <= 2", worst_x, lfl_vexpf((float)worst_x), exp(worst_x));

    struct { float x, want; } sp[] = {
        {0.0f, 1.0f}, {-0.0f, 1.0f}, {-INFINITY, 0.0f}, {INFINITY, INFINITY},
        {-87.5f, 0.0f}, {-100.0f, 0.0f}, {-103.9f, 0.0f}, {-1e30f, 0.0f}, {-FLT_MAX, 0.0f}, /* flushed, never subnormal */
        {88.73f, INFINITY}, {100.0f, INFINITY}, {1e30f, INFINITY}, {FLT_MAX, INFINITY},
    };
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++) {
        float got = lfl_vexpf(sp[i].x);
        check(got == sp[i].want, "exp special value", sp[i].x, got, sp[i].want);
    }
    float nan = lfl_vexpf(NAN);
    check(nan != nan, "exp(NaN) is NaN", NAN, nan, NAN);
    /* both ends of the range stay finite and accurate */
    float edges[] = {88.72f, 88.7f, -87.33f, -87.0f, 1e-30f, -1e-30f};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        float x = edges[i], got = lfl_vexpf(x);
        double want = exp((double)x);
        check(isfinite(got) && got >= FLT_MIN && ulp_err(got, want) <= 2, "exp near the range ends", x, got, want);
    }
    /* the results below FLT_MIN are 0, never a subnormal */
    int sub = 0;
    for (float x = -87.4f; x > -110.0f; x -= 0.01f) {
        float y = lfl_vexpf(x);
        sub += y != 0.0f && y < FLT_MIN;
    }
    check(sub == 0, "exp gives no subnormal results", -100, sub, 0);

    /* tanh and erfc through lfl_vexpf, against double libm */
    double wt = 0, we = 0, wtail = 0, wl = 0;
    for (float x = -12.0f; x <= 12.0f; x += 0.001f) {
        double t = tanh((double)x);
        double e = fabs(lfl_vtanhf(x) - t) / fmax(fabs(t), 1e-30);
        wt = e > wt ? e : wt;
        double c = erfc((double)x);
        if (x <= 4.0f) we = fmax(we, rel_err(lfl_verfcf(x), c));
        else if (c > 1e-36) wtail = fmax(wtail, rel_err(lfl_verfcf(x), c));
    }
    for (float x = 1e-30f; x < 1e30f; x *= 1.37f) wl = fmax(wl, fabs(lfl_vlogf(x) - log((double)x)) / fmax(fabs(log((double)x)), 1.0));
    printf("tanh: max rel error %.3g; erfc: %.3g (x <= 4), %.3g (tail); log: %.3g\n", wt, we, wtail, wl);
    check(wt < 5e-7, "tanh relative error < 5e-7", 0, wt, 5e-7);
    check(we < 2e-6, "erfc relative error < 2e-6 for x <= 4", 0, we, 2e-6);
    check(wtail < 2e-5, "erfc relative error < 2e-5 in the tail", 0, wtail, 2e-5);
    check(wl < 3e-7, "log error < 3e-7", 0, wl, 3e-7);
    check(lfl_vtanhf(-INFINITY) == -1.0f && lfl_vtanhf(INFINITY) == 1.0f && lfl_verfcf(INFINITY) == 0.0f &&
              lfl_verfcf(-INFINITY) == 2.0f, "tanh and erfc at +-inf", 0, 0, 0);
    check(lfl_vlogf(0.0f) == -INFINITY && lfl_vlogf(1.0f) == 0.0f && lfl_vlogf(-1.0f) != lfl_vlogf(-1.0f),
          "log special values", 0, 0, 0);

    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
