/* Adapters: a named set of LoRA factors per target module, kept sorted by
 * module name, with rank, alpha, scaling, dropout and the enabled flag. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "model.h"

double lfl_adapter_scaling(int r, double alpha, bool use_rslora)
{
    return use_rslora ? alpha / sqrt((double)r) : alpha / (double)r;
}

lfl_status lfl_adapter_new(const char *name, int r, double alpha, bool use_rslora, bool use_dora,
                           double dropout, lfl_adapter **out)
{
    if (!name || !*name) return lfl_fail(LFL_ERR_ARG, "adapter: a name is required");
    if (r <= 0) return lfl_fail(LFL_ERR_ARG, "adapter %s: rank must be positive, got %d", name, r);
    if (!(dropout >= 0 && dropout < 1))
        return lfl_fail(LFL_ERR_ARG, "adapter %s: dropout must be in [0, 1), got %g", name, dropout);
    lfl_adapter *a = calloc(1, sizeof *a);
    if (!a || !(a->name = strdup(name))) { free(a); return lfl_fail(LFL_ERR_MEM, "adapter: out of memory"); }
    a->refcount = 1;
    a->r = r;
    a->alpha = alpha;
    a->scaling = lfl_adapter_scaling(r, alpha, use_rslora);
    a->dropout = dropout;
    a->use_rslora = use_rslora;
    a->use_dora = use_dora;
    a->enabled = true;
    *out = a;
    return LFL_OK;
}

lfl_adapter *lfl_adapter_retain(lfl_adapter *a)
{
    if (a) a->refcount++;
    return a;
}

static void target_clear(lfl_adapter_target *t)
{
    free(t->module);
    lfl_tensor_release(t->A);
    lfl_tensor_release(t->B);
    lfl_tensor_release(t->magnitude);
    lfl_tensor_release(t->merged_norm);
}

void lfl_adapter_release(lfl_adapter *a)
{
    if (!a || --a->refcount > 0) return;
    for (int i = 0; i < a->n; i++) target_clear(&a->t[i]);
    free(a->t);
    free(a->name);
    free(a);
}

/* index of module, or -(insertion point) - 1 */
static int find(const lfl_adapter *a, const char *module)
{
    int lo = 0, hi = a->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(a->t[mid].module, module);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return -lo - 1;
}

const lfl_adapter_target *lfl_adapter_find(const lfl_adapter *a, const char *module)
{
    int i = find(a, module);
    return i >= 0 ? &a->t[i] : NULL;
}

lfl_status lfl_adapter_set(lfl_adapter *a, const char *module, lfl_tensor *A, lfl_tensor *B,
                           lfl_tensor *magnitude)
{
    const char *who = a->name;
    if (!module || !*module) return lfl_fail(LFL_ERR_ARG, "adapter %s: a target module name is required", who);
    if (!A || !B) return lfl_fail(LFL_ERR_ARG, "adapter %s: %s needs both factors A and B", who, module);
    if (A->ndim != 2 || B->ndim != 2 || A->shape[0] != a->r || B->shape[1] != a->r)
        return lfl_fail(LFL_ERR_ARG, "adapter %s: %s: A must be [r, in] and B [out, r] with r = %d, got "
                        "A %dD [%lld, ...] and B %dD [..., %lld]", who, module, a->r, A->ndim,
                        (long long)(A->ndim ? A->shape[0] : 0), B->ndim,
                        (long long)(B->ndim == 2 ? B->shape[1] : 0));
    if ((magnitude != NULL) != a->use_dora)
        return lfl_fail(LFL_ERR_ARG, "adapter %s: %s: %s", who, module,
                        a->use_dora ? "DoRA needs a magnitude vector" : "a magnitude vector needs use_dora");
    if (magnitude && (magnitude->ndim != 1 || magnitude->shape[0] != B->shape[0]))
        return lfl_fail(LFL_ERR_ARG, "adapter %s: %s: magnitude must be [%lld]", who, module,
                        (long long)B->shape[0]);
    if (a->merged) return lfl_fail(LFL_ERR_ARG, "adapter %s is merged: unmerge it before changing its factors", who);
    int i = find(a, module);
    if (i < 0) {
        i = -i - 1;
        if (a->n == a->cap) {
            int cap = a->cap ? 2 * a->cap : 16;
            lfl_adapter_target *t = realloc(a->t, (size_t)cap * sizeof *t);
            if (!t) return lfl_fail(LFL_ERR_MEM, "adapter: out of memory");
            a->t = t;
            a->cap = cap;
        }
        char *name = strdup(module);
        if (!name) return lfl_fail(LFL_ERR_MEM, "adapter: out of memory");
        memmove(&a->t[i + 1], &a->t[i], (size_t)(a->n - i) * sizeof *a->t);
        memset(&a->t[i], 0, sizeof *a->t);
        a->t[i].module = name;
        a->n++;
    }
    lfl_adapter_target *t = &a->t[i];
    lfl_tensor_retain(A);
    lfl_tensor_retain(B);
    lfl_tensor_retain(magnitude);
    lfl_tensor_release(t->A);
    lfl_tensor_release(t->B);
    lfl_tensor_release(t->magnitude);
    t->A = A;
    t->B = B;
    t->magnitude = magnitude;
    a->gen++;
    return LFL_OK;
}

lfl_status lfl_adapter_remove(lfl_adapter *a, const char *module)
{
    int i = find(a, module);
    if (i < 0) return lfl_fail(LFL_ERR_ARG, "adapter %s: no target '%s'", a->name, module);
    if (a->merged) return lfl_fail(LFL_ERR_ARG, "adapter %s is merged: unmerge it before changing its factors", a->name);
    target_clear(&a->t[i]);
    memmove(&a->t[i], &a->t[i + 1], (size_t)(a->n - i - 1) * sizeof *a->t);
    a->n--;
    a->gen++;
    return LFL_OK;
}

int64_t lfl_adapter_num_parameters(const lfl_adapter *a)
{
    int64_t n = 0;
    for (int i = 0; i < a->n; i++) {
        n += lfl_numel(a->t[i].A) + lfl_numel(a->t[i].B);
        if (a->t[i].magnitude) n += lfl_numel(a->t[i].magnitude);
    }
    return n;
}
