/* The C model and adapter objects (core/model/): the sorted parameter store,
 * tied-weight counting, dtype conversion, adapter targets and their checks,
 * attach/activate/detach, and merge followed by unmerge. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "lfl.h"
#include "model/model.h"

static int passed, failed;
#define CHECK(c, what)                                                         \
    do {                                                                       \
        if (c) passed++;                                                       \
        else { failed++; printf("FAIL  %s:%d: %s\n", __FILE__, __LINE__, what); } \
    } while (0)

static lfl_tensor *randn(int64_t a, int64_t b)
{
    lfl_tensor *t = NULL;
    int64_t s[2] = {a, b};
    lfl_empty(b ? 2 : 1, s, LFL_F32, LFL_CPU, &t);
    lfl_randn_(t, 0, 1);
    return t;
}

static double max_abs_diff(lfl_tensor *a, lfl_tensor *b)
{
    double m = 0;
    for (int64_t i = 0; i < lfl_numel(a); i++) m = fmax(m, fabs(lfl_get(a, i) - lfl_get(b, i)));
    return m;
}

int main(void)
{
    lfl_rng_seed(7);
    lfl_model *m = NULL;
    CHECK(lfl_model_new(&m) == LFL_OK, "new");
    lfl_tensor *w = randn(6, 4), *emb = randn(10, 4), *norm = randn(4, 0);
    CHECK(lfl_model_set(m, "model.layers.0.q_proj.weight", w) == LFL_OK, "set");
    CHECK(lfl_model_set(m, "model.embed_tokens.weight", emb) == LFL_OK, "set");
    CHECK(lfl_model_set(m, "lm_head.weight", emb) == LFL_OK, "tied");
    CHECK(lfl_model_set(m, "model.norm.weight", norm) == LFL_OK, "set");
    CHECK(m->n == 4 && !strcmp(m->names[0], "lm_head.weight") && !strcmp(m->names[3], "model.norm.weight"),
          "names are kept sorted");
    CHECK(lfl_model_get(m, "model.norm.weight") == norm && !lfl_model_get(m, "nope"), "lookup");
    CHECK(lfl_model_num_parameters(m) == 24 + 40 + 4, "tied weights counted once");
    unsigned gen = m->gen;
    CHECK(lfl_model_set(m, "model.norm.weight", norm) == LFL_OK && m->gen == gen, "replacing keeps the names");
    CHECK(lfl_model_set(m, "model.norm.weight", NULL) == LFL_OK && m->n == 3 && m->gen != gen, "removal");
    CHECK(lfl_model_set(m, "model.norm.weight", norm) == LFL_OK, "set again");

    /* adapters */
    lfl_adapter *a = NULL;
    CHECK(lfl_adapter_new("default", 0, 1, false, false, 0, &a) != LFL_OK && strstr(lfl_last_error(), "rank"),
          "rank 0 refused");
    CHECK(lfl_adapter_new("default", 2, 4, false, false, 0, &a) == LFL_OK && a->scaling == 2.0, "alpha / r");
    lfl_adapter *rs = NULL;
    CHECK(lfl_adapter_new("rs", 4, 4, true, false, 0, &rs) == LFL_OK && rs->scaling == 2.0, "rsLoRA: alpha / sqrt(r)");
    lfl_tensor *A = randn(2, 4), *B = randn(6, 2), *badA = randn(3, 4), *wideA = randn(2, 5);
    CHECK(lfl_adapter_set(a, "model.layers.0.q_proj", badA, B, NULL) != LFL_OK && strstr(lfl_last_error(), "r = 2"),
          "A with the wrong rank refused");
    CHECK(lfl_adapter_set(a, "model.layers.0.q_proj", A, B, norm) != LFL_OK && strstr(lfl_last_error(), "use_dora"),
          "a magnitude needs DoRA");
    CHECK(lfl_adapter_set(a, "model.layers.0.q_proj", A, B, NULL) == LFL_OK && a->n == 1, "set a target");
    CHECK(lfl_adapter_find(a, "model.layers.0.q_proj") && !lfl_adapter_find(a, "x"), "find");
    CHECK(lfl_adapter_num_parameters(a) == 8 + 12, "adapter parameter count");
    CHECK(lfl_model_attach(m, a) == LFL_OK && lfl_model_active(m) == a, "the first adapter attached is active");
    lfl_adapter *bad = NULL;
    lfl_adapter_new("bad", 2, 4, false, false, 0, &bad);
    lfl_adapter_set(bad, "model.layers.0.q_proj", wideA, B, NULL);
    CHECK(lfl_model_attach(m, bad) != LFL_OK && strstr(lfl_last_error(), "expected"), "shape mismatch refused");
    lfl_adapter_set(bad, "model.layers.9.k_proj", A, B, NULL);
    lfl_adapter_remove(bad, "model.layers.0.q_proj");
    CHECK(lfl_model_attach(m, bad) != LFL_OK && strstr(lfl_last_error(), "does not have"), "unknown target refused");
    lfl_adapter *b2 = NULL;
    lfl_adapter_new("second", 2, 2, false, false, 0, &b2);
    lfl_adapter_set(b2, "model.layers.0.q_proj", A, B, NULL);
    CHECK(lfl_model_attach(m, b2) == LFL_OK && lfl_model_active(m) == a && m->n_adapters == 2, "a second adapter");
    CHECK(lfl_model_activate(m, "second") == LFL_OK && lfl_model_active(m) == b2, "switch");
    CHECK(lfl_model_activate(m, "third") != LFL_OK && strstr(lfl_last_error(), "default, second"), "unknown name");
    CHECK(lfl_model_activate(m, NULL) == LFL_OK && !lfl_model_active(m), "base model");

    /* merge: W + s B A, then back */
    lfl_tensor *w0 = NULL;
    lfl_clone(w, &w0);
    CHECK(lfl_model_merge(m, "default") == LFL_OK && a->merged, "merge");
    lfl_tensor *merged = lfl_model_get(m, "model.layers.0.q_proj.weight");
    double want_diff = 0;
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 4; j++) {
            double d = 0;
            for (int k = 0; k < 2; k++) d += lfl_get(B, i * 2 + k) * lfl_get(A, k * 4 + j);
            want_diff = fmax(want_diff, fabs(lfl_get(merged, i * 4 + j) - lfl_get(w0, i * 4 + j) - 2.0 * d));
        }
    CHECK(want_diff < 1e-5, "merged weight = W + scaling B A");
    CHECK(lfl_model_merge(m, "default") != LFL_OK && strstr(lfl_last_error(), "already"), "merge twice refused");
    CHECK(lfl_adapter_set(a, "model.layers.0.q_proj", A, B, NULL) != LFL_OK, "a merged adapter's factors are fixed");
    CHECK(lfl_model_unmerge(m, "default") == LFL_OK && !a->merged, "unmerge");
    CHECK(max_abs_diff(lfl_model_get(m, "model.layers.0.q_proj.weight"), w0) < 1e-5, "unmerge restores W");

    /* DoRA merge and unmerge round trip */
    lfl_adapter *d = NULL;
    lfl_adapter_new("dora", 2, 4, false, true, 0, &d);
    lfl_tensor *mag = randn(6, 0);
    CHECK(lfl_adapter_set(d, "model.layers.0.q_proj", A, B, mag) == LFL_OK, "DoRA target");
    CHECK(lfl_model_attach(m, d) == LFL_OK && lfl_model_merge(m, "dora") == LFL_OK, "DoRA merge");
    CHECK(lfl_model_unmerge(m, "dora") == LFL_OK &&
          max_abs_diff(lfl_model_get(m, "model.layers.0.q_proj.weight"), w0) < 1e-4, "DoRA unmerge restores W");

    CHECK(lfl_model_detach(m, "second") == LFL_OK && m->n_adapters == 2, "detach");
    /* to bf16: matrices only, vectors f32 */
    CHECK(lfl_model_to_dtype(m, LFL_BF16) == LFL_OK, "to bf16");
    CHECK(lfl_model_get(m, "model.layers.0.q_proj.weight")->dtype == LFL_BF16 &&
          lfl_model_get(m, "model.norm.weight")->dtype == LFL_F32, "16-bit matrices, f32 vectors");
    CHECK(lfl_model_get(m, "lm_head.weight") == lfl_model_get(m, "model.embed_tokens.weight"), "tied stays tied");
    CHECK(lfl_model_to_dtype(m, LFL_I64) != LFL_OK, "to a non-float dtype refused");

    lfl_tensor *ts[] = {w, emb, norm, A, B, badA, wideA, w0, mag};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) lfl_tensor_release(ts[i]);
    lfl_adapter_release(a);
    lfl_adapter_release(rs);
    lfl_adapter_release(bad);
    lfl_adapter_release(b2);
    lfl_adapter_release(d);
    lfl_model_release(m);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
