/* Adam updates for GaLore (projected states) and BAdam's ratio mode (states on
 * a subset of entries): the transformers-style Adam whose eps is added to
 * sqrt(v) before bias correction, as galore_torch.AdamW and BAdam's sparse Adam. */
#ifndef LFL_ADAM_VARIANTS_H
#define LFL_ADAM_VARIANTS_H

#include "optim.h"

/* m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; dir = m / (sqrt(v) + eps).
 * All contiguous f32 of the same numel; dir may alias g. */
lfl_status lfl_adam_direction(lfl_tensor *g, lfl_tensor *m, lfl_tensor *v, lfl_tensor *dir, double beta1,
                              double beta2, double eps);

/* BAdam ratio mode: for the k flat indices idx (i64) into p and g, with states
 * m, v of k elements: the same moment update on g[idx], then
 * p[idx] -= step_size * m / (sqrt(v) + eps). */
lfl_status lfl_sparse_adam_step(lfl_tensor *p, lfl_tensor *g, lfl_tensor *idx, lfl_tensor *m, lfl_tensor *v,
                                double step_size, double beta1, double beta2, double eps);

#endif
