/* Merging an adapter into the base weights and taking it out again, with the
 * same op sequence as PEFT's merge (f32 math, the result stored back in the
 * weight's dtype), outside the autograd tape. */
#include <string.h>
#include "ops.h"
#include "model.h"

static lfl_status weight_of(lfl_model *m, const char *module, char *key, size_t n, lfl_tensor **w)
{
    snprintf(key, n, "%s.weight", module);
    *w = lfl_model_get(m, key);
    if (!*w) return lfl_fail(LFL_ERR_ARG, "merge: the model has no '%s'", key);
    return LFL_OK;
}

/* scaling * B A in f32 */
static lfl_status delta_of(const lfl_adapter *a, const lfl_adapter_target *t, lfl_tensor **out)
{
    lfl_tensor *A = NULL, *B = NULL, *BA = NULL;
    lfl_status st = lfl_cast(t->B, LFL_F32, &B);
    if (!st) st = lfl_cast(t->A, LFL_F32, &A);
    if (!st) st = lfl_matmul(B, A, &BA);
    if (!st) st = lfl_affine(BA, a->scaling, 0, out);
    lfl_tensor_release(A);
    lfl_tensor_release(B);
    lfl_tensor_release(BA);
    return st;
}

/* ||x||_2 over each row of a 2-D f32 tensor */
static lfl_status row_norm(lfl_tensor *x, lfl_tensor **out)
{
    lfl_tensor *sq = NULL, *ss = NULL;
    int dim = 1;
    lfl_status st = lfl_mul(x, x, &sq);
    if (!st) st = lfl_sum(sq, 1, &dim, false, &ss);
    if (!st) st = lfl_unary(LFL_U_SQRT, ss, out);
    lfl_tensor_release(sq);
    lfl_tensor_release(ss);
    return st;
}

/* x * v[:, None] for a 2-D x and a vector v of its rows */
static lfl_status scale_rows(lfl_tensor *x, lfl_tensor *v, lfl_tensor **out)
{
    lfl_tensor *col = NULL;
    int64_t shape[2] = {-1, 1};
    lfl_status st = lfl_view(v, 2, shape, &col);
    if (!st) st = lfl_mul(x, col, out);
    lfl_tensor_release(col);
    return st;
}

/* stores f32 `x` as the new `key`, in `dt` */
static lfl_status store(lfl_model *m, const char *key, lfl_tensor *x, lfl_dtype dt)
{
    lfl_tensor *c = NULL, *cc = NULL;
    lfl_status st = lfl_cast(x, dt, &c);
    if (!st) st = lfl_contiguous(c, &cc);
    if (!st) st = lfl_model_set(m, key, cc);
    lfl_tensor_release(c);
    lfl_tensor_release(cc);
    return st;
}

static lfl_status merge_one(lfl_model *m, lfl_adapter *a, lfl_adapter_target *t, bool undo)
{
    char key[1024];
    lfl_tensor *w, *wf = NULL, *d = NULL, *x = NULL, *y = NULL, *norm = NULL, *ratio = NULL;
    LFL_TRY(weight_of(m, t->module, key, sizeof key, &w));
    lfl_dtype dt = w->dtype;
    lfl_status st = lfl_cast(w, LFL_F32, &wf);
    if (!st) st = delta_of(a, t, &d);
    if (!undo) {
        if (!st) st = lfl_add(wf, d, &x);
        if (!st && t->magnitude) {
            st = row_norm(x, &norm);
            if (!st) st = lfl_div(t->magnitude, norm, &ratio);
            if (!st) st = scale_rows(x, ratio, &y);
            if (!st) { lfl_tensor_release(x); x = y; y = NULL; }
            if (!st) { lfl_tensor_release(t->merged_norm); t->merged_norm = lfl_tensor_retain(norm); }
        }
    } else {
        lfl_tensor *base = wf;
        if (t->magnitude) {
            /* merged = (W + d) m / n: W + d = merged n / m */
            if (!t->merged_norm) st = lfl_fail(LFL_ERR_ARG, "unmerge: %s has no norms from its merge", t->module);
            if (!st) st = lfl_div(t->merged_norm, t->magnitude, &ratio);
            if (!st) st = scale_rows(wf, ratio, &y);
            base = y;
        }
        if (!st) st = lfl_sub(base, d, &x);
        if (!st && t->magnitude) { lfl_tensor_release(t->merged_norm); t->merged_norm = NULL; }
    }
    if (!st) st = store(m, key, x, dt);
    lfl_tensor_release(wf);
    lfl_tensor_release(d);
    lfl_tensor_release(x);
    lfl_tensor_release(y);
    lfl_tensor_release(norm);
    lfl_tensor_release(ratio);
    return st;
}

static lfl_status merge_all(lfl_model *m, const char *name, bool undo)
{
    lfl_adapter *a = lfl_model_adapter(m, name);
    if (!a) return lfl_fail(LFL_ERR_ARG, "model: no adapter named '%s'", name);
    if (a->merged != undo)
        return lfl_fail(LFL_ERR_ARG, "adapter %s is %s merged", name, undo ? "not" : "already");
    bool prev = lfl_set_grad_enabled(false);
    lfl_status st = LFL_OK;
    for (int i = 0; i < a->n && st == LFL_OK; i++) st = merge_one(m, a, &a->t[i], undo);
    lfl_set_grad_enabled(prev);
    if (st == LFL_OK) a->merged = !undo;
    return st;
}

lfl_status lfl_model_merge(lfl_model *m, const char *name) { return merge_all(m, name, false); }
lfl_status lfl_model_unmerge(lfl_model *m, const char *name) { return merge_all(m, name, true); }
