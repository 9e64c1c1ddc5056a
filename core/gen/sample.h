/* Next-token selection from one row of logits: repetition penalty, greedy or
 * sampling with temperature, top-k, top-p and min-p, in transformers' order. */
#ifndef LFL_SAMPLE_H
#define LFL_SAMPLE_H

#include <stdint.h>
#include "../status.h"

typedef struct {
    double temperature;        /* <= 0: greedy */
    int64_t top_k;             /* <= 0: off */
    double top_p;              /* >= 1: off */
    double min_p;              /* <= 0: off */
    double repetition_penalty; /* 1: off; applied to every id in prev (also when greedy) */
} lfl_sample_opts;

/* logits[V] (f32, unchanged); prev[n] earlier ids (prompt + generated); u a
 * uniform draw in [0, 1) used only when sampling. *out gets the chosen id. */
lfl_status lfl_sample(const float *logits, int64_t V, const lfl_sample_opts *o, const int64_t *prev, int64_t n,
                      double u, int64_t *out);

#endif
