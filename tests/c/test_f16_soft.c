/* The integer half <-> f32 conversions of core/dtype.h (used where the
 * compiler has no _Float16) agree bit for bit with _Float16: every half
 * widened; every f32 where halves turn subnormal or overflow narrowed, and
 * elsewhere (NaNs and infinities included) every value with its dropped
 * bits at or around a tie. */
#include <stdio.h>
#include "dtype.h"

int main(void)
{
#ifndef __FLT16_MAX__
    printf("no _Float16 in this compiler: nothing to compare against\n");
    return 0;
#else
    long bad = 0, n = 0;
    for (uint32_t h = 0; h < 0x10000u; h++) {
        float a = lfl_f16_to_f32_soft((uint16_t)h);
        _Float16 v;
        uint16_t hh = (uint16_t)h;
        memcpy(&v, &hh, 2);
        float b = (float)v;
        uint32_t ua, ub;
        memcpy(&ua, &a, 4);
        memcpy(&ub, &b, 4);
        if (ua != ub && bad++ < 10) fprintf(stderr, "f16 %04x: soft %08x, _Float16 %08x\n", h, ua, ub);
        n++;
    }
    static const uint32_t low[] = {0, 1, 0xfff, 0x1000, 0x1001, 0x1fff, 0x7ff, 0x800, 0x801};
    for (uint32_t sign = 0; sign < 2; sign++) {
        for (uint32_t e = 0; e < 256; e++) {
            /* every mantissa where halves are subnormal or overflow (2^-26 ..
             * 2^-14, 2^15 .. 2^17); elsewhere every kept part with the dropped
             * bits around a tie */
            bool dense = (e >= 101 && e <= 113) || e == 142 || e == 143;
            uint32_t count = dense ? (1u << 23) : 1024u * (uint32_t)(sizeof low / sizeof *low);
            for (uint32_t k = 0; k < count; k++) {
                uint32_t m = dense ? k : ((k / (uint32_t)(sizeof low / sizeof *low)) << 13 |
                                          low[k % (sizeof low / sizeof *low)]);
                uint32_t x = sign << 31 | e << 23 | (m & 0x7fffffu);
                float f;
                memcpy(&f, &x, 4);
                uint16_t s = lfl_f32_to_f16_soft(f), h;
                _Float16 v = (_Float16)f;
                memcpy(&h, &v, 2);
                if (s != h && bad++ < 10) fprintf(stderr, "f32 %08x: soft %04x, _Float16 %04x\n", x, s, h);
                n++;
            }
        }
    }
    printf("half conversions compared: %ld, %ld differ\n", n, bad);
    return bad != 0;
#endif
}
