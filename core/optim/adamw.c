/* AdamW and SGD steps fused over one flat parameter (matching torch.optim),
 * and the sum of squares / scaling of global-norm clipping: the fronts check,
 * the kernels of the tensors' device (the dispatch table) update. */
#include <math.h>
#include "../iter.h"
#include "../ops/optable.h"
#include "optim.h"

/* The updates write in place: a read-only mmap of a checkpoint would fault. */
static lfl_status writable(const char *op, lfl_tensor *t, const char *what)
{
    if (t && t->storage->kind == LFL_STORAGE_MMAP)
        return lfl_fail(LFL_ERR_ARG, "%s: %s is a read-only mapping of a checkpoint file; train a copy (clone)",
                        op, what);
    return LFL_OK;
}

static lfl_status check(const char *op, lfl_tensor *p, lfl_tensor *t, const char *what)
{
    if (!t) return LFL_OK;
    if (t->dtype != LFL_F32 || !lfl_is_contiguous(t) || lfl_numel(t) != lfl_numel(p) || t->device != p->device) {
        char dev[32];
        return lfl_fail(LFL_ERR_ARG, "%s: %s must be a contiguous f32 tensor of %lld elements on %s", op, what,
                        (long long)lfl_numel(p), lfl_device_str(p->device, dev, sizeof dev));
    }

    return LFL_OK;
}

lfl_status lfl_adamw_step(lfl_tensor *p, lfl_tensor *g, lfl_tensor *m, lfl_tensor *v, const lfl_adamw_opts *o)
{
    LFL_TRY(check("adamw", p, p, "the parameter"));
    LFL_TRY(check("adamw", p, g, "the gradient"));
    LFL_TRY(check("adamw", p, m, "exp_avg"));
    LFL_TRY(check("adamw", p, v, "exp_avg_sq"));
    LFL_TRY(writable("adamw", p, "the parameter"));
    if (o->step < 1) return lfl_fail(LFL_ERR_ARG, "adamw: step must start at 1");
    lfl_adamw_step_kernel fn;
    LFL_TRY(lfl_dispatch_adamw_step(p->device, "adamw", &fn));
    return fn(p, g, m, v, o);
}

lfl_status lfl_sgd_step(lfl_tensor *p, lfl_tensor *g, lfl_tensor *buf, double lr, double momentum,
                        double weight_decay, bool first)
{
    LFL_TRY(check("sgd", p, p, "the parameter"));
    LFL_TRY(check("sgd", p, g, "the gradient"));
    LFL_TRY(check("sgd", p, buf, "the momentum buffer"));
    LFL_TRY(writable("sgd", p, "the parameter"));
    if (momentum != 0 && !buf) return lfl_fail(LFL_ERR_ARG, "sgd: momentum needs a buffer");
    lfl_sgd_step_kernel fn;
    LFL_TRY(lfl_dispatch_sgd_step(p->device, "sgd", &fn));
    return fn(p, g, buf, lr, momentum, weight_decay, first);
}

lfl_status lfl_sum_squares(lfl_tensor *g, double *out)
{
    if (g->dtype != LFL_F32 && g->dtype != LFL_F64) return lfl_fail(LFL_ERR_ARG, "sum_squares: f32/f64 only");
    lfl_tensor *c;
    LFL_TRY(lfl_contiguous(g, &c));
    lfl_sum_squares_kernel fn;
    lfl_status st = lfl_dispatch_sum_squares(c->device, "sum_squares", &fn);
    if (st == LFL_OK) st = fn(c, out);
    lfl_tensor_release(c);
    return st;
}

lfl_status lfl_scale_(lfl_tensor *g, double s)
{
    if (g->dtype != LFL_F32 || !lfl_is_contiguous(g)) return lfl_fail(LFL_ERR_ARG, "scale_: contiguous f32 only");
    lfl_scale_kernel fn;
    LFL_TRY(lfl_dispatch_scale(g->device, "scale_", &fn));
    return fn(g, s);
}
