/* The training loop's state in C: step/epoch counters, gradient accumulation,
 * the running loss sums (logging window, train_loss), throughput, non-finite
 * step tracking, and global-norm gradient clipping over the registered
 * trainable tensors. The loop itself (data, approach, optimizer, schedule)
 * is driven from Lua (stdlib/lfl/train/trainer.lua through lua/l_trainer.c). */
#ifndef LFL_TRAINER_H
#define LFL_TRAINER_H

#include "../comm/comm.h"
#include "../rng.h"
#include "../tensor.h"

typedef struct {
    int64_t total_steps;       /* optimizer steps of the whole run */
    int64_t batches_per_epoch; /* micro-batches in one epoch */
    int64_t accum;             /* gradient_accumulation_steps (>= 1) */
} lfl_trainer_config;

typedef struct lfl_trainer {
    lfl_trainer_config cfg;
    int64_t steps_per_epoch;   /* max(1, batches_per_epoch / accum) */
    /* position */
    int64_t global_step;
    int64_t epoch;             /* 0-based epoch of the last micro-batch */
    int64_t batch_in_epoch;    /* 1-based index of the last micro-batch in its epoch, 0 before any */
    double epoch_float;        /* HF's epoch: epoch + batch / batches_per_epoch at the last step */
    int64_t accum_pos;         /* micro-batches accumulated since the last optimizer step */
    int64_t micro_batches;     /* micro-batches of this run */
    int64_t tokens;            /* tokens of this run */
    /* the optimizer step in progress */
    double loss_acc;           /* sum of its micro-batch losses */
    int64_t loss_n;
    int64_t step_tokens;       /* its tokens */
    /* this run's step losses, for train_loss (HF: the mean of the step losses) */
    double loss_sum;
    int64_t run_steps;
    /* the last optimizer step */
    double loss, lr, grad_norm, tokens_per_second;
    int64_t nonfinite_streak;  /* consecutive steps whose loss or gradient norm was not finite */
    int64_t nonfinite_total;
    /* timing: run start; the logging window (since the last logged step):
     * its start, tokens, and the sum and count of its finite step losses */
    double t0, window_t0;
    int64_t window_tokens;
    double window_loss_sum;
    int64_t window_steps;      /* finite ones */
    int64_t window_all_steps;
    double logged_loss;        /* the loss of the last log line (the window's mean) */
    /* the trainable tensors clipping runs over (references held) */
    lfl_tensor **params;
    int64_t nparams;
} lfl_trainer;

lfl_status lfl_trainer_new(const lfl_trainer_config *cfg, double now, lfl_trainer **out);
void lfl_trainer_free(lfl_trainer *t);
/* Holds references to the tensors whose gradients clipping scales. */
lfl_status lfl_trainer_set_params(lfl_trainer *t, lfl_tensor *const *params, int64_t n);

/* One micro-batch done (its loss, its tokens, its 0-based epoch and 1-based
 * index in that epoch). *step_now tells whether it completes an optimizer step:
 * every accum micro-batches, and at the end of an epoch. */
lfl_status lfl_trainer_micro_batch(lfl_trainer *t, double loss, int64_t ntokens, int64_t epoch, int64_t batch,
                                   bool *step_now);
/* Data parallel: sums the step in progress over the ranks of c (its loss sum,
 * micro-batch count and tokens), so that its loss is the mean over every rank's
 * micro-batches and the token counts (throughput) are the whole job's. */
lfl_status lfl_trainer_reduce_step(lfl_trainer *t, lfl_comm *c);
/* The step's mean micro-batch loss (NaN before any micro-batch). */
double lfl_trainer_pending_loss(const lfl_trainer *t);

/* torch.nn.utils.clip_grad_norm_ over the registered tensors that have a
 * gradient: the global L2 norm (f64 sum of squares, tensor by tensor), and when
 * max_norm > 0 and the norm exceeds it, every gradient scaled in place by
 * max_norm / (norm + 1e-6) (a non-contiguous gradient is replaced by a
 * contiguous copy first). *norm is the norm before clipping. Gradients must be
 * f32 (or f64 when only measured). */
lfl_status lfl_clip_grad_norm(lfl_tensor *const *params, int64_t n, double max_norm, double *norm);
lfl_status lfl_trainer_clip(lfl_trainer *t, double max_norm, double *norm);

/* Closes the optimizer step: global_step + 1, epoch_float, the step's loss
 * into the run's sums, lr and grad_norm kept, the window's throughput. A step
 * whose loss or gradient norm is not finite counts in nonfinite_streak (and not
 * in train_loss); a finite one resets the streak. */
void lfl_trainer_end_step(lfl_trainer *t, double lr, double grad_norm, double now);
/* Whether the step just ended is a logging step (every logging_steps, and the last). */
bool lfl_trainer_is_log_step(const lfl_trainer *t, int64_t logging_steps);
/* Closes the logging window at a log line: returns the mean of its finite step
 * losses (HF's logged loss: the window's summed loss over its steps; when none
 * was finite, the last step's NaN or Inf; NaN for an empty window), keeps it as logged_loss and starts a new window at now. */
double lfl_trainer_log_window(lfl_trainer *t, double now);
/* Starts a new logging window without logging (the clock's start). */
void lfl_trainer_reset_window(lfl_trainer *t, double now);
/* train_loss: the mean of this run's finite step losses (NaN before any). */
double lfl_trainer_train_loss(const lfl_trainer *t);
bool lfl_trainer_done(const lfl_trainer *t);
/* The RNG position a checkpoint records (the global Philox stream). */
lfl_rng_state lfl_trainer_rng(const lfl_trainer *t);

#endif
