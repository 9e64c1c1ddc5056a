/* core/train/trainer: the counters and accumulation over an epoch with a
 * partial last step, the loss means (step loss, train_loss) and epoch float,
 * logging steps, the non-finite streak, and global-norm clipping against a
 * reference computed here (with and without clipping, a non-contiguous
 * gradient, a tensor without a gradient). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "train/trainer.h"

static int failed, passed;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (cond) passed++;                                                   \
        else {                                                                \
            failed++;                                                         \
            printf("FAIL  %s:%d: ", __FILE__, __LINE__);                      \
            printf(__VA_ARGS__);                                              \
            printf("\n");                                                     \
        }                                                                     \
    } while (0)

static void test_counters(void)
{
    /* 5 micro-batches an epoch, accumulation 2: steps after batches 2, 4 and 5 */
    lfl_trainer_config cfg = {.total_steps = 5, .batches_per_epoch = 5, .accum = 2};
    lfl_trainer *t;
    CHECK(lfl_trainer_new(&cfg, 10.0, &t) == LFL_OK, "new: %s", lfl_last_error());
    CHECK(t->steps_per_epoch == 2, "steps_per_epoch %lld", (long long)t->steps_per_epoch);
    CHECK(isnan(lfl_trainer_pending_loss(t)) && isnan(lfl_trainer_train_loss(t)), "NaN before any step");
    const double losses[] = {1.0, 2.0, 3.0, 5.0, 4.0, 0.5, 0.25, 0.125};
    const bool want_step[] = {false, true, false, true, true, false, true, false};
    int li = 0;
    double step_losses[4];
    int nsteps = 0;
    for (int64_t epoch = 0; epoch < 2 && nsteps < 4; epoch++) {
        for (int64_t b = 1; b <= 5 && nsteps < 4; b++, li++) {
            bool now;
            CHECK(lfl_trainer_micro_batch(t, losses[li], 10 + li, epoch, b, &now) == LFL_OK, "micro");
            CHECK(now == want_step[li], "micro-batch %d: step %d, want %d", li, now, want_step[li]);
            CHECK(t->epoch == epoch && t->batch_in_epoch == b, "position");
            if (now) {
                double expect = 0;
                int k = 0;
                for (int j = li; j >= 0 && (j == li || !want_step[j]); j--, k++) expect += losses[j];
                expect /= k;
                CHECK(lfl_trainer_pending_loss(t) == expect, "step loss %g, want %g", lfl_trainer_pending_loss(t),
                      expect);
                lfl_trainer_end_step(t, 0.1 * (nsteps + 1), 1.0, 11.0 + nsteps);
                step_losses[nsteps++] = expect;
                CHECK(t->accum_pos == 0 && t->loss_n == 0, "accumulation reset");
                CHECK(t->epoch_float == (double)epoch + (double)b / 5.0, "epoch float %g", t->epoch_float);
                CHECK(t->loss == expect && t->lr == 0.1 * nsteps, "loss and lr kept");
            }
        }
    }
    CHECK(nsteps == 4 && t->global_step == 4, "4 steps, global_step %lld", (long long)t->global_step);
    CHECK(t->micro_batches == 7, "micro-batches %lld", (long long)t->micro_batches);
    int64_t tok = 0;
    for (int j = 0; j < 7; j++) tok += 10 + j;
    CHECK(t->tokens == tok, "tokens %lld, want %lld", (long long)t->tokens, (long long)tok);
    double mean = (((step_losses[0] + step_losses[1]) + step_losses[2]) + step_losses[3]) / 4;
    CHECK(lfl_trainer_train_loss(t) == mean, "train_loss %.17g, want %.17g", lfl_trainer_train_loss(t), mean);
    CHECK(!lfl_trainer_done(t), "not done at 4/5");
    CHECK(lfl_trainer_is_log_step(t, 2) && !lfl_trainer_is_log_step(t, 3) && !lfl_trainer_is_log_step(t, 0),
          "logging every 2 steps");
    /* the logging window: the mean of the step losses since the clock started */
    double wl = lfl_trainer_log_window(t, 19.0);
    CHECK(wl == mean && t->logged_loss == mean, "window loss %.17g, want %.17g", wl, mean);
    CHECK(t->window_steps == 0 && t->window_tokens == 0 && t->window_t0 == 19.0, "window reset");
    CHECK(isnan(lfl_trainer_log_window(t, 19.5)), "an empty window has no loss");
    /* throughput: the window's tokens over its seconds */
    lfl_trainer_reset_window(t, 20.0);
    bool now;
    lfl_trainer_micro_batch(t, 1.0, 40, 1, 3, &now);
    lfl_trainer_micro_batch(t, 1.0, 40, 1, 4, &now);
    lfl_trainer_end_step(t, 0.1, 1.0, 24.0);
    CHECK(t->tokens_per_second == 20.0, "tokens/s %g", t->tokens_per_second);
    CHECK(lfl_trainer_done(t) && lfl_trainer_is_log_step(t, 1000), "done at 5/5, the last step is logged");
    /* a micro-batch outside the epoch is an error */
    CHECK(lfl_trainer_micro_batch(t, 1.0, 1, 0, 6, &now) != LFL_OK && strstr(lfl_last_error(), "outside"),
          "batch 6 of 5 refused");
    lfl_trainer_free(t);
}

static void test_nonfinite(void)
{
    lfl_trainer_config cfg = {.total_steps = 10, .batches_per_epoch = 10, .accum = 1};
    lfl_trainer *t;
    lfl_trainer_new(&cfg, 0, &t);
    const double losses[] = {2.0, NAN, INFINITY, 4.0, NAN, NAN, NAN};
    const int64_t streak[] = {0, 1, 2, 0, 1, 2, 3};
    for (int i = 0; i < 7; i++) {
        bool now;
        lfl_trainer_micro_batch(t, losses[i], 1, 0, i + 1, &now);
        lfl_trainer_end_step(t, 1e-3, i == 3 ? 1.0 : 0.5, 1.0 + i);
        CHECK(t->nonfinite_streak == streak[i], "step %d: streak %lld, want %lld", i + 1,
              (long long)t->nonfinite_streak, (long long)streak[i]);
        if (i < 3) { /* a window of one step logs that step's loss, NaN and Inf included */
            double w = lfl_trainer_log_window(t, 1.0 + i);
            CHECK(w == losses[i] || (isnan(w) && isnan(losses[i])), "step %d: logged %g", i + 1, w);
        }
    }
    CHECK(t->nonfinite_total == 5, "5 non-finite steps");
    CHECK(lfl_trainer_train_loss(t) == 3.0, "train_loss over the finite steps: %g", lfl_trainer_train_loss(t));
    CHECK(lfl_trainer_log_window(t, 8.0) == 4.0, "a window with NaN steps logs the mean of its finite ones");
    /* a NaN gradient norm with a finite loss counts as well */
    bool now;
    lfl_trainer_micro_batch(t, 1.0, 1, 0, 8, &now);
    lfl_trainer_end_step(t, 1e-3, NAN, 9.0);
    CHECK(t->nonfinite_streak == 4, "NaN grad norm counted");
    lfl_trainer_free(t);
    lfl_trainer_config bad = {.total_steps = 1, .batches_per_epoch = 1, .accum = 0};
    CHECK(lfl_trainer_new(&bad, 0, &t) != LFL_OK && strstr(lfl_last_error(), "gradient_accumulation_steps"),
          "accum 0 refused");
}

/* a leaf with an f32 gradient filled from a formula */
static lfl_tensor *param_with_grad(int64_t r, int64_t c, double scale, bool transposed_grad)
{
    int64_t shape[2] = {r, c};
    lfl_tensor *p, *g;
    lfl_zeros(2, shape, LFL_F32, LFL_CPU, &p);
    if (transposed_grad) {
        int64_t ts[2] = {c, r};
        lfl_tensor *base;
        lfl_empty(2, ts, LFL_F32, LFL_CPU, &base);
        float *x = lfl_data(base);
        for (int64_t i = 0; i < r * c; i++) x[i] = (float)(scale * sin(0.37 * (double)i + 1.0));
        lfl_transpose(base, 0, 1, &g);
        lfl_tensor_release(base);
    } else {
        lfl_empty(2, shape, LFL_F32, LFL_CPU, &g);
        float *x = lfl_data(g);
        for (int64_t i = 0; i < r * c; i++) x[i] = (float)(scale * cos(0.21 * (double)i - 0.5));
    }
    p->grad = g;
    return p;
}

static float grad_at(lfl_tensor *p, int64_t i, int64_t j)
{
    lfl_tensor *g = p->grad;
    return ((const float *)lfl_data(g))[i * g->stride[0] + j * g->stride[1]];
}

static void test_clip(void)
{
    for (int clip = 0; clip < 2; clip++) {
        lfl_tensor *ps[3] = {param_with_grad(7, 13, 0.8, false), param_with_grad(5, 9, 1.3, true),
                             param_with_grad(3, 4, 1.0, false)};
        lfl_tensor_release(ps[2]->grad);
        ps[2]->grad = NULL; /* a frozen tensor: no gradient, not measured */
        /* the reference: f64 sum of squares tensor by tensor (row-major order), sqrt */
        double ref_total = 0;
        float before[2][200];
        for (int k = 0; k < 2; k++) {
            double s = 0;
            for (int64_t i = 0; i < ps[k]->shape[0]; i++)
                for (int64_t j = 0; j < ps[k]->shape[1]; j++) {
                    float v = grad_at(ps[k], i, j);
                    before[k][i * ps[k]->shape[1] + j] = v;
                    s += (double)v * v;
                }
            ref_total += s;
        }
        double ref_norm = sqrt(ref_total);
        double max_norm = clip ? ref_norm / 4 : ref_norm * 2;
        lfl_trainer_config cfg = {.total_steps = 1, .batches_per_epoch = 1, .accum = 1};
        lfl_trainer *t;
        lfl_trainer_new(&cfg, 0, &t);
        CHECK(lfl_trainer_set_params(t, ps, 3) == LFL_OK, "set_params");
        double norm;
        CHECK(lfl_trainer_clip(t, max_norm, &norm) == LFL_OK, "clip: %s", lfl_last_error());
        CHECK(fabs(norm - ref_norm) <= 1e-12 * ref_norm, "norm %.17g, want %.17g", norm, ref_norm);
        float coef = (float)(max_norm / (norm + 1e-6));
        int bad = 0;
        for (int k = 0; k < 2; k++)
            for (int64_t i = 0; i < ps[k]->shape[0]; i++)
                for (int64_t j = 0; j < ps[k]->shape[1]; j++) {
                    float want = before[k][i * ps[k]->shape[1] + j] * (clip ? coef : 1.0f);
                    if (grad_at(ps[k], i, j) != want) bad++;
                }
        CHECK(bad == 0, "%s: %d gradient entries differ from the reference", clip ? "clipped" : "unclipped", bad);
        CHECK(ps[2]->grad == NULL, "no gradient made for the frozen tensor");
        if (clip) CHECK(lfl_is_contiguous(ps[1]->grad), "the transposed gradient was made contiguous");
        /* after clipping, the norm is max_norm (up to the 1e-6 and f32 rounding) */
        if (clip) {
            double again;
            lfl_clip_grad_norm(ps, 3, 0, &again);
            CHECK(fabs(again - max_norm) < 1e-5 * max_norm, "norm after clipping %g, want %g", again, max_norm);
        }
        lfl_trainer_free(t);
        for (int k = 0; k < 3; k++) lfl_tensor_release(ps[k]);
    }
}

int main(void)
{
    test_counters();
    test_nonfinite();
    test_clip();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
