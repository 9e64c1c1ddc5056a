/* The trainer's C state: counters, accumulation, loss sums, throughput and
 * global-norm clipping (see trainer.h). The arithmetic mirrors the Lua loop it
 * replaced operation for operation (f64, same order), so losses, learning
 * rates and clipped gradients are bit-identical to it. */
#include <math.h>
#include <stdlib.h>
#include "../optim/optim.h"
#include "trainer.h"

lfl_status lfl_trainer_new(const lfl_trainer_config *cfg, double now, lfl_trainer **out)
{
    *out = NULL;
    if (cfg->accum < 1)
        return lfl_fail(LFL_ERR_ARG, "trainer: gradient_accumulation_steps must be >= 1 (got %lld)",
                        (long long)cfg->accum);
    if (cfg->batches_per_epoch < 1)
        return lfl_fail(LFL_ERR_ARG, "trainer: an epoch needs at least one batch (got %lld)",
                        (long long)cfg->batches_per_epoch);
    if (cfg->total_steps < 0)
        return lfl_fail(LFL_ERR_ARG, "trainer: total_steps must be >= 0 (got %lld)", (long long)cfg->total_steps);
    lfl_trainer *t = calloc(1, sizeof *t);
    if (!t) return lfl_fail(LFL_ERR_MEM, "trainer: out of memory");
    t->cfg = *cfg;
    int64_t spe = cfg->batches_per_epoch / cfg->accum;
    t->steps_per_epoch = spe > 1 ? spe : 1;
    t->loss = t->lr = t->grad_norm = t->tokens_per_second = t->logged_loss = NAN;
    t->t0 = t->window_t0 = now;
    *out = t;
    return LFL_OK;
}

static void release_params(lfl_trainer *t)
{
    for (int64_t i = 0; i < t->nparams; i++) lfl_tensor_release(t->params[i]);
    free(t->params);
    t->params = NULL;
    t->nparams = 0;
}

void lfl_trainer_free(lfl_trainer *t)
{
    if (!t) return;
    release_params(t);
    free(t);
}

lfl_status lfl_trainer_set_params(lfl_trainer *t, lfl_tensor *const *params, int64_t n)
{
    lfl_tensor **ps = n > 0 ? malloc(sizeof *ps * (size_t)n) : NULL;
    if (n > 0 && !ps) return lfl_fail(LFL_ERR_MEM, "trainer: out of memory");
    for (int64_t i = 0; i < n; i++) ps[i] = lfl_tensor_retain(params[i]);
    release_params(t);
    t->params = ps;
    t->nparams = n;
    return LFL_OK;
}

lfl_status lfl_trainer_micro_batch(lfl_trainer *t, double loss, int64_t ntokens, int64_t epoch, int64_t batch,
                                   bool *step_now)
{
    if (batch < 1 || batch > t->cfg.batches_per_epoch)
        return lfl_fail(LFL_ERR_ARG, "trainer: micro-batch %lld is outside the epoch (1..%lld)", (long long)batch,
                        (long long)t->cfg.batches_per_epoch);
    t->loss_acc += loss;
    t->loss_n++;
    t->accum_pos++;
    t->micro_batches++;
    t->tokens += ntokens;
    t->window_tokens += ntokens;
    t->step_tokens += ntokens;
    t->epoch = epoch;
    t->batch_in_epoch = batch;
    *step_now = batch % t->cfg.accum == 0 || batch == t->cfg.batches_per_epoch;
    return LFL_OK;
}

lfl_status lfl_trainer_reduce_step(lfl_trainer *t, lfl_comm *c)
{
    if (!c || c->size == 1) return LFL_OK;
    double v[3] = {t->loss_acc, (double)t->loss_n, (double)t->step_tokens};
    LFL_TRY(lfl_comm_allreduce(c, v, 3, LFL_COMM_F64, LFL_COMM_SUM));
    int64_t more = (int64_t)v[2] - t->step_tokens;
    t->loss_acc = v[0];
    t->loss_n = (int64_t)v[1];
    t->tokens += more;
    t->window_tokens += more;
    t->step_tokens = (int64_t)v[2];
    return LFL_OK;
}

double lfl_trainer_pending_loss(const lfl_trainer *t)
{
    return t->loss_n > 0 ? t->loss_acc / (double)t->loss_n : NAN;
}

lfl_status lfl_clip_grad_norm(lfl_tensor *const *params, int64_t n, double max_norm, double *norm)
{
    double total = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!params[i]->grad) continue;
        double s;
        LFL_TRY(lfl_sum_squares(params[i]->grad, &s));
        total += s;
    }
    *norm = sqrt(total);
    if (!(max_norm > 0)) return LFL_OK;
    double coef = max_norm / (*norm + 1e-6);
    if (!(coef < 1)) return LFL_OK; /* also when the norm is NaN: nothing to scale by */
    for (int64_t i = 0; i < n; i++) {
        lfl_tensor *p = params[i];
        if (!p->grad) continue;
        lfl_tensor *g;
        LFL_TRY(lfl_contiguous(p->grad, &g));
        lfl_status st = lfl_scale_(g, coef);
        if (st) { lfl_tensor_release(g); return st; }
        lfl_tensor_release(p->grad);
        p->grad = g;
    }
    return LFL_OK;
}

lfl_status lfl_trainer_clip(lfl_trainer *t, double max_norm, double *norm)
{
    return lfl_clip_grad_norm(t->params, t->nparams, max_norm, norm);
}

void lfl_trainer_end_step(lfl_trainer *t, double lr, double grad_norm, double now)
{
    double loss = lfl_trainer_pending_loss(t);
    t->global_step++;
    t->epoch_float = (double)t->epoch + (double)t->batch_in_epoch / (double)t->cfg.batches_per_epoch;
    t->loss = loss;
    t->lr = lr;
    t->grad_norm = grad_norm;
    double span = now - t->window_t0;
    t->tokens_per_second = (double)t->window_tokens / (span > 1e-9 ? span : 1e-9);
    if (isfinite(loss) && isfinite(grad_norm)) {
        t->loss_sum += loss;
        t->run_steps++;
        t->window_loss_sum += loss;
        t->window_steps++;
        t->nonfinite_streak = 0;
    } else {
        t->nonfinite_streak++;
        t->nonfinite_total++;
    }
    t->loss_acc = 0;
    t->loss_n = 0;
    t->step_tokens = 0;
    t->accum_pos = 0;
    t->window_all_steps++;
}

bool lfl_trainer_is_log_step(const lfl_trainer *t, int64_t logging_steps)
{
    if (t->global_step == t->cfg.total_steps) return true;
    return logging_steps > 0 && t->global_step % logging_steps == 0;
}

void lfl_trainer_reset_window(lfl_trainer *t, double now)
{
    t->window_tokens = 0;
    t->window_t0 = now;
    t->window_loss_sum = 0;
    t->window_steps = 0;
    t->window_all_steps = 0;
}

double lfl_trainer_log_window(lfl_trainer *t, double now)
{
    t->logged_loss = t->window_steps > 0       ? t->window_loss_sum / (double)t->window_steps
                     : t->window_all_steps > 0 ? t->loss
                                               : NAN;
    lfl_trainer_reset_window(t, now);
    return t->logged_loss;
}

double lfl_trainer_train_loss(const lfl_trainer *t)
{
    return t->run_steps > 0 ? t->loss_sum / (double)t->run_steps : NAN;
}

bool lfl_trainer_done(const lfl_trainer *t) { return t->global_step >= t->cfg.total_steps; }

lfl_rng_state lfl_trainer_rng(const lfl_trainer *t)
{
    (void)t;
    return lfl_rng_get();
}
