/* Fused optimizer updates over flat f32 parameters (in place, no autograd). */
#ifndef LFL_OPTIM_H
#define LFL_OPTIM_H

#include "../tensor.h"

typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
    int64_t step;          /* 1-based step count, for bias correction */
} lfl_adamw_opts;

/* torch.optim.AdamW: p -= lr*wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps). p, g, m, v contiguous f32. */
lfl_status lfl_adamw_step(lfl_tensor *p, lfl_tensor *g, lfl_tensor *m, lfl_tensor *v, const lfl_adamw_opts *o);
/* torch.optim.SGD with momentum (buf may be NULL when momentum == 0) and weight decay. */
lfl_status lfl_sgd_step(lfl_tensor *p, lfl_tensor *g, lfl_tensor *buf, double lr, double momentum,
                        double weight_decay, bool first);
/* sum of squares of g (f64 accumulation), for global-norm clipping */
lfl_status lfl_sum_squares(lfl_tensor *g, double *out);
/* g *= s in place */
lfl_status lfl_scale_(lfl_tensor *g, double s);

#endif
