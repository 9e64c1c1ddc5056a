/* sgd_step's CPU kernel: torch.optim.SGD's update (momentum, weight decay)
 * of one flat f32 parameter (the front: lfl_sgd_step, core/optim/adamw.c). */
#include "../iter.h"
#include "optable.h"

lfl_status lfl_cpu_sgd_step(lfl_tensor *p, lfl_tensor *g, lfl_tensor *buf, double lr, double momentum,
                            double weight_decay, bool first)
{
    int64_t n = lfl_numel(p);
    float *pp = lfl_data(p), *bb = buf ? lfl_data(buf) : NULL;
    const float *gg = lfl_data(g);
    float wd = (float)weight_decay, mu = (float)momentum, a = (float)lr;
#pragma omp parallel for if (n > LFL_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        float d = gg[i] + wd * pp[i];
        if (bb) {
            d = first ? d : bb[i] * mu + d;
            bb[i] = d;
        }
        pp[i] -= a * d;
    }
    return LFL_OK;
}
