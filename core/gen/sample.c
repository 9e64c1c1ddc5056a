/* Token sampling for generation. Follows transformers' logits processors:
 * RepetitionPenalty (score < 0 ? score * p : score / p, once per distinct id),
 * then for sampling Temperature, TopK (keeps ties with the k-th score), TopP
 * (drops the low tail whose mass is <= 1 - p, always keeps the top token),
 * MinP (drops probabilities below min_p * the top probability), softmax and
 * one draw by inverse CDF over the kept tokens in descending order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "sample.h"

typedef struct { double s; int64_t i; } cand;

static int cand_desc(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->s > y->s) return -1;
    if (x->s < y->s) return 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* greedy decoding: the first index of the largest (penalized) score, read
 * straight from the logits (a decoding step's whole cost is a few ms; a
 * copy of V candidates is not small against it); the penalized ids marked in
 * a bitmap */
static lfl_status greedy(const float *logits, int64_t V, double pen, const int64_t *prev, int64_t n, int64_t *out)
{
    int64_t best = 0;
    if (pen == 1.0 || n == 0) {
        float bv = logits[0];
        for (int64_t i = 1; i < V; i++)
            if (logits[i] > bv) bv = logits[i], best = i;
        *out = best;
        return LFL_OK;
    }
    unsigned char *seen = calloc((size_t)(V + 7) / 8, 1);
    if (!seen) return lfl_fail(LFL_ERR_MEM, "sample: out of memory");
    for (int64_t j = 0; j < n; j++)
        if (prev[j] >= 0 && prev[j] < V) seen[prev[j] / 8] |= (unsigned char)(1u << (prev[j] % 8));
    double bv = 0;
    for (int64_t i = 0; i < V; i++) {
        double s = logits[i];
        if (seen[i / 8] & (1u << (i % 8))) s = s < 0 ? s * pen : s / pen;
        if (i == 0 || s > bv) bv = s, best = i;
    }
    free(seen);
    *out = best;
    return LFL_OK;
}

lfl_status lfl_sample(const float *logits, int64_t V, const lfl_sample_opts *o, const int64_t *prev, int64_t n,
                      double u, int64_t *out)
{
    if (V <= 0) return lfl_fail(LFL_ERR_ARG, "sample: empty logits");
    if (!(o->repetition_penalty > 0))
        return lfl_fail(LFL_ERR_ARG, "sample: repetition_penalty must be > 0, got %g", o->repetition_penalty);
    if (o->top_p <= 0) return lfl_fail(LFL_ERR_ARG, "sample: top_p must be in (0, 1], got %g", o->top_p);
    if (o->temperature <= 0) return greedy(logits, V, o->repetition_penalty, prev, n, out);
    cand *c = malloc((size_t)V * sizeof *c);
    if (!c) return lfl_fail(LFL_ERR_MEM, "sample: out of memory for %lld candidates", (long long)V);
    for (int64_t i = 0; i < V; i++) { c[i].s = logits[i]; c[i].i = i; }
    if (o->repetition_penalty != 1.0 && n > 0) {
        unsigned char *seen = calloc((size_t)V, 1);
        if (!seen) { free(c); return lfl_fail(LFL_ERR_MEM, "sample: out of memory"); }
        for (int64_t j = 0; j < n; j++) {
            int64_t id = prev[j];
            if (id < 0 || id >= V || seen[id]) continue;
            seen[id] = 1;
            c[id].s = c[id].s < 0 ? c[id].s * o->repetition_penalty : c[id].s / o->repetition_penalty;
        }
        free(seen);
    }
    for (int64_t i = 0; i < V; i++) c[i].s /= o->temperature;
    qsort(c, (size_t)V, sizeof *c, cand_desc);
    int64_t keep = V;
    while (keep > 0 && c[keep - 1].s == -INFINITY) keep--; /* masked logits never win */
    if (keep == 0) keep = 1;
    if (o->top_k > 0 && o->top_k < keep) {
        double th = c[o->top_k - 1].s;
        int64_t k = o->top_k;
        while (k < keep && c[k].s >= th) k++;
        keep = k;
    }
    double mx = c[0].s, z = 0;
    for (int64_t i = 0; i < keep; i++) z += exp(c[i].s - mx);
    if (o->top_p < 1.0) {
        /* ascending cumulative mass <= 1 - p is dropped: keep the prefix whose
         * tail (mass of the tokens after it) is still > 1 - p */
        double tail = 1.0, cut = 1.0 - o->top_p;
        int64_t k = 0;
        while (k < keep) {
            double p = exp(c[k].s - mx) / z;
            k++;
            tail -= p;
            if (tail <= cut) break;
        }
        keep = k < 1 ? 1 : k;
    }
    if (o->min_p > 0) {
        double zz = 0;
        for (int64_t i = 0; i < keep; i++) zz += exp(c[i].s - mx);
        double th = o->min_p * (1.0 / zz); /* top probability is exp(0) / zz */
        int64_t k = 1;
        while (k < keep && exp(c[k].s - mx) / zz >= th) k++;
        keep = k;
    }
    z = 0;
    for (int64_t i = 0; i < keep; i++) z += exp(c[i].s - mx);
    double r = u * z, acc = 0;
    int64_t pick = c[keep - 1].i;
    for (int64_t i = 0; i < keep; i++) {
        acc += exp(c[i].s - mx);
        if (acc > r) { pick = c[i].i; break; }
    }
    free(c);
    *out = pick;
    return LFL_OK;
}
