/* adamw_step's CPU kernel: torch.optim.AdamW's update of one flat f32
 * parameter (the front, lfl_adamw_step in core/optim/adamw.c, checks). */
#include <math.h>
#include "../iter.h"
#include "optable.h"

lfl_status lfl_cpu_adamw_step(lfl_tensor *p, lfl_tensor *g, lfl_tensor *m, lfl_tensor *v, const lfl_adamw_opts *o)
{
    int64_t n = lfl_numel(p);
    float *pp = lfl_data(p), *mm = lfl_data(m), *vv = lfl_data(v);
    const float *gg = lfl_data(g);
    double bc1 = 1.0 - pow(o->beta1, (double)o->step), bc2 = 1.0 - pow(o->beta2, (double)o->step);
    /* torch: step_size = lr / bc1; denom = sqrt(v) / sqrt(bc2) + eps */
    float b1 = (float)o->beta1, b2 = (float)o->beta2, decay = (float)(1.0 - o->lr * o->weight_decay);
    float step_size = (float)(o->lr / bc1), sbc2 = (float)sqrt(bc2), eps = (float)o->eps;
#pragma omp parallel for simd if (n > LFL_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        float gi = gg[i];
        float pi = pp[i] * decay;
        float mi = mm[i] * b1 + (1 - b1) * gi;
        float vi = vv[i] * b2 + (1 - b2) * gi * gi;
        mm[i] = mi;
        vv[i] = vi;
        pp[i] = pi - step_size * mi / (sqrtf(vi) / sbc2 + eps);
    }
    return LFL_OK;
}
