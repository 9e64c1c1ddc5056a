/* adamw8bit_step's CPU kernel: bitsandbytes' blockwise 8-bit AdamW update
 * (dequantize a block of both states, step, requantize with the block's new
 * absmax); the front, lfl_adamw8bit_step in core/optim/adamw8bit.c, checks.
 * Its arithmetic is the contract kernels/adamw8bit_step.cu follows step by
 * step: CMakeLists.txt compiles this file without fused multiply-adds. */
#include <math.h>
#include "../iter.h"
#include "../optim/adamw8bit.h"
#include "optable.h"

lfl_status lfl_cpu_adamw8bit_step(lfl_tensor *p, lfl_tensor *g, lfl_tensor *mq, lfl_tensor *mabs, lfl_tensor *vq,
                                  lfl_tensor *vabs, int64_t block, const lfl_adamw_opts *o)
{
    int64_t n = lfl_numel(p), nb = (n + block - 1) / block;
    float code1[256], code2[256], mid1[255], mid2[255];
    lfl_qmap_dynamic(true, code1);
    lfl_qmap_dynamic(false, code2);
    lfl_qmap_midpoints(code1, mid1);
    lfl_qmap_midpoints(code2, mid2);
    float *pp = lfl_data(p), *a1 = lfl_data(mabs), *a2 = lfl_data(vabs);
    const float *gg = lfl_data(g);
    uint8_t *q1 = lfl_data(mq), *q2 = lfl_data(vq);
    double bc1 = 1.0 - pow(o->beta1, (double)o->step), bc2 = sqrt(1.0 - pow(o->beta2, (double)o->step));
    float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps;
    float decay = (float)(1.0 - o->lr * o->weight_decay), step_size = (float)(o->lr / bc1), sbc2 = (float)bc2;
    bool wd = o->weight_decay > 0;
    /* blocks are independent, so they run in parallel */
#pragma omp parallel for if (n > LFL_OMP_MIN)
    for (int64_t b = 0; b < nb; b++) {
        float mm[4096], vv[4096];
        int64_t s = b * block, len = n - s < block ? n - s : block;
        float am1 = a1[b], am2 = a2[b];
        for (int64_t i = 0; i < len; i++) {
            float gi = gg[s + i];
            float mi = code1[q1[s + i]] * am1 * b1 + (1 - b1) * gi;
            float vi = code2[q2[s + i]] * am2 * b2 + (1 - b2) * gi * gi;
            mm[i] = mi;
            vv[i] = vi;
            float pi = pp[s + i];
            if (wd) pi *= decay;
            pp[s + i] = pi - step_size * (mi / (sqrtf(vi) / sbc2 + eps));
        }
        a1[b] = lfl_quantize_block(mm, len, mid1, q1 + s);
        a2[b] = lfl_quantize_block(vv, len, mid2, q2 + s);
    }
    return LFL_OK;
}
