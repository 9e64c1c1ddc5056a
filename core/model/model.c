/* The model's parameter store (sorted names -> tensors), its config text and
 * path, dtype/device conversion, and the list of attached adapters. */
#include <stdlib.h>
#include <string.h>
#include "model.h"
#include "../autograd.h"

lfl_status lfl_model_new(lfl_model **out)
{
    lfl_model *m = calloc(1, sizeof *m);
    if (!m) return lfl_fail(LFL_ERR_MEM, "model: out of memory");
    m->refcount = 1;
    m->active = -1;
    *out = m;
    return LFL_OK;
}

lfl_model *lfl_model_retain(lfl_model *m)
{
    if (m) m->refcount++;
    return m;
}

void lfl_model_release(lfl_model *m)
{
    if (!m || --m->refcount > 0) return;
    for (int i = 0; i < m->n; i++) {
        free(m->names[i]);
        lfl_tensor_release(m->params[i]);
    }
    for (int i = 0; i < m->n_adapters; i++) lfl_adapter_release(m->adapters[i]);
    free(m->adapters);
    free(m->names);
    free(m->params);
    free(m->config_json);
    free(m->path);
    free(m);
}

/* index of name, or -(insertion point) - 1 */
static int find(const lfl_model *m, const char *name)
{
    int lo = 0, hi = m->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(m->names[mid], name);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return -lo - 1;
}

lfl_tensor *lfl_model_get(const lfl_model *m, const char *name)
{
    int i = find(m, name);
    return i >= 0 ? m->params[i] : NULL;
}

lfl_status lfl_model_set(lfl_model *m, const char *name, lfl_tensor *t)
{
    if (!name || !*name) return lfl_fail(LFL_ERR_ARG, "model: a parameter name is required");
    int i = find(m, name);
    if (i >= 0) {
        if (t) {
            lfl_tensor_retain(t);
            lfl_tensor_release(m->params[i]);
            m->params[i] = t;
        } else {
            free(m->names[i]);
            lfl_tensor_release(m->params[i]);
            memmove(&m->names[i], &m->names[i + 1], (size_t)(m->n - i - 1) * sizeof *m->names);
            memmove(&m->params[i], &m->params[i + 1], (size_t)(m->n - i - 1) * sizeof *m->params);
            m->n--;
            m->gen++;
        }
        return LFL_OK;
    }
    if (!t) return LFL_OK;
    i = -i - 1;
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 64;
        char **nn = realloc(m->names, (size_t)cap * sizeof *nn);
        if (!nn) return lfl_fail(LFL_ERR_MEM, "model: out of memory");
        m->names = nn;
        lfl_tensor **np = realloc(m->params, (size_t)cap * sizeof *np);
        if (!np) return lfl_fail(LFL_ERR_MEM, "model: out of memory");
        m->params = np;
        m->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) return lfl_fail(LFL_ERR_MEM, "model: out of memory");
    memmove(&m->names[i + 1], &m->names[i], (size_t)(m->n - i) * sizeof *m->names);
    memmove(&m->params[i + 1], &m->params[i], (size_t)(m->n - i) * sizeof *m->params);
    m->names[i] = copy;
    m->params[i] = lfl_tensor_retain(t);
    m->n++;
    m->gen++;
    return LFL_OK;
}

lfl_status lfl_model_set_text(char **field, const char *text)
{
    char *copy = NULL;
    if (text && !(copy = strdup(text))) return lfl_fail(LFL_ERR_MEM, "model: out of memory");
    free(*field);
    *field = copy;
    return LFL_OK;
}

int64_t lfl_model_num_parameters(const lfl_model *m)
{
    int64_t n = 0;
    for (int i = 0; i < m->n; i++) {
        const lfl_tensor *t = m->params[i];
        bool seen = false; /* tied weights: the same tensor (or view of the same bytes) under two names */
        for (int j = 0; j < i && !seen; j++)
            seen = m->params[j] == t || (m->params[j]->storage == t->storage && m->params[j]->offset == t->offset &&
                                         lfl_same_shape(m->params[j], t));
        if (!seen) n += lfl_numel(t);
    }
    return n;
}

static bool is_float(lfl_dtype dt) { return dt == LFL_F32 || dt == LFL_F64 || dt == LFL_BF16 || dt == LFL_F16; }

lfl_status lfl_model_to_dtype(lfl_model *m, lfl_dtype dt)
{
    if (!is_float(dt))
        return lfl_fail(LFL_ERR_ARG, "model:to: dtype %s is not a floating type (f32, f64, bf16, f16)",
                        lfl_dtype_name(dt));
    bool half = dt == LFL_BF16 || dt == LFL_F16;
    /* convert everything first, install only when all conversions worked */
    lfl_tensor **conv = calloc((size_t)(m->n ? m->n : 1), sizeof *conv);
    if (!conv) return lfl_fail(LFL_ERR_MEM, "model: out of memory");
    lfl_status st = LFL_OK;
    for (int i = 0; i < m->n && st == LFL_OK; i++) {
        lfl_tensor *t = m->params[i];
        if (!is_float(t->dtype)) continue;
        lfl_dtype want = half && t->ndim < 2 ? LFL_F32 : dt;
        if (want == t->dtype) continue;
        for (int j = 0; j < i; j++) /* a tied weight stays one tensor */
            if (m->params[j] == t && conv[j]) { conv[i] = lfl_tensor_retain(conv[j]); break; }
        if (!conv[i]) st = lfl_cast(t, want, &conv[i]);
    }
    for (int i = 0; i < m->n; i++) {
        if (!conv[i]) continue;
        if (st == LFL_OK) { lfl_tensor_release(m->params[i]); m->params[i] = conv[i]; }
        else lfl_tensor_release(conv[i]);
    }
    free(conv);
    return st;
}

/* a leaf's copy on another device: a leaf again, trainable as t was */
static lfl_status moved(lfl_tensor *t, int device, lfl_tensor **out)
{
    bool g = lfl_set_grad_enabled(false);
    lfl_status st = lfl_to_device(t, device, out);
    lfl_set_grad_enabled(g);
    if (st == LFL_OK) (*out)->requires_grad = t->requires_grad;
    return st;
}

static lfl_status move_slot(lfl_tensor **slot, int device)
{
    if (!*slot || (*slot)->device == device) return LFL_OK;
    lfl_tensor *c;
    LFL_TRY(moved(*slot, device, &c));
    lfl_tensor_release(*slot);
    *slot = c;
    return LFL_OK;
}

/* Every parameter and every adapter's tensors move; trainable ones stay
 * trainable leaves (optimizers are made after the move). */
lfl_status lfl_model_to_device(lfl_model *m, int device)
{
    lfl_tensor **conv = calloc((size_t)(m->n ? m->n : 1), sizeof *conv);
    if (!conv) return lfl_fail(LFL_ERR_MEM, "model: out of memory");
    lfl_status st = LFL_OK;
    for (int i = 0; i < m->n && st == LFL_OK; i++) {
        if (m->params[i]->device == device) continue;
        for (int j = 0; j < i; j++)
            if (m->params[j] == m->params[i] && conv[j]) { conv[i] = lfl_tensor_retain(conv[j]); break; }
        if (!conv[i]) st = moved(m->params[i], device, &conv[i]);
    }
    for (int i = 0; i < m->n; i++) {
        if (!conv[i]) continue;
        if (st == LFL_OK) { lfl_tensor_release(m->params[i]); m->params[i] = conv[i]; }
        else lfl_tensor_release(conv[i]);
    }
    free(conv);
    for (int k = 0; k < m->n_adapters && st == LFL_OK; k++) {
        lfl_adapter *a = m->adapters[k];
        for (int i = 0; i < a->n && st == LFL_OK; i++) {
            lfl_adapter_target *t = &a->t[i];
            st = move_slot(&t->A, device);
            if (st == LFL_OK) st = move_slot(&t->B, device);
            if (st == LFL_OK) st = move_slot(&t->magnitude, device);
            if (st == LFL_OK) st = move_slot(&t->merged_norm, device);
        }
        a->gen++; /* cached lookups of the targets' tensors are stale */
    }
    m->gen++;
    return st;
}

static int adapter_index(const lfl_model *m, const char *name)
{
    for (int i = 0; i < m->n_adapters; i++)
        if (!strcmp(m->adapters[i]->name, name)) return i;
    return -1;
}

lfl_adapter *lfl_model_adapter(const lfl_model *m, const char *name)
{
    int i = adapter_index(m, name);
    return i >= 0 ? m->adapters[i] : NULL;
}

lfl_adapter *lfl_model_active(const lfl_model *m)
{
    return m->active >= 0 ? m->adapters[m->active] : NULL;
}

lfl_status lfl_model_attach(lfl_model *m, lfl_adapter *a)
{
    /* every target must be a linear of this model, with matching sizes */
    for (int i = 0; i < a->n; i++) {
        const lfl_adapter_target *t = &a->t[i];
        size_t len = strlen(t->module);
        char *key = malloc(len + 8);
        if (!key) return lfl_fail(LFL_ERR_MEM, "model: out of memory");
        memcpy(key, t->module, len);
        memcpy(key + len, ".weight", 8);
        lfl_tensor *w = lfl_model_get(m, key);
        free(key);
        if (!w) return lfl_fail(LFL_ERR_ARG, "adapter %s targets '%s', which this model does not have", a->name, t->module);
        if (w->ndim != 2 || t->A->shape[1] != w->shape[1] || t->B->shape[0] != w->shape[0])
            return lfl_fail(LFL_ERR_ARG, "adapter %s: %s has lora_A [%lld,%lld] and lora_B [%lld,%lld], expected "
                            "[%d,%lld] and [%lld,%d] for a weight [%lld,%lld]", a->name, t->module,
                            (long long)t->A->shape[0], (long long)t->A->shape[1], (long long)t->B->shape[0],
                            (long long)t->B->shape[1], a->r, (long long)(w->ndim == 2 ? w->shape[1] : 0),
                            (long long)w->shape[0], a->r, (long long)w->shape[0],
                            (long long)(w->ndim == 2 ? w->shape[1] : 0));
    }
    int i = adapter_index(m, a->name);
    if (i >= 0) {
        if (m->adapters[i]->merged)
            return lfl_fail(LFL_ERR_ARG, "adapter %s is merged into the model: unmerge it before replacing it", a->name);
        lfl_adapter_retain(a);
        lfl_adapter_release(m->adapters[i]);
        m->adapters[i] = a;
        return LFL_OK;
    }
    lfl_adapter **na = realloc(m->adapters, (size_t)(m->n_adapters + 1) * sizeof *na);
    if (!na) return lfl_fail(LFL_ERR_MEM, "model: out of memory");
    m->adapters = na;
    m->adapters[m->n_adapters++] = lfl_adapter_retain(a);
    if (m->active < 0) m->active = m->n_adapters - 1;
    return LFL_OK;
}

lfl_status lfl_model_detach(lfl_model *m, const char *name)
{
    int i = adapter_index(m, name);
    if (i < 0) return lfl_fail(LFL_ERR_ARG, "model: no adapter named '%s'", name);
    lfl_adapter_release(m->adapters[i]);
    memmove(&m->adapters[i], &m->adapters[i + 1], (size_t)(m->n_adapters - i - 1) * sizeof *m->adapters);
    m->n_adapters--;
    if (m->active == i) m->active = -1;
    else if (m->active > i) m->active--;
    return LFL_OK;
}

lfl_status lfl_model_activate(lfl_model *m, const char *name)
{
    if (!name) { m->active = -1; return LFL_OK; }
    int i = adapter_index(m, name);
    if (i < 0) {
        char known[512] = "";
        for (int j = 0; j < m->n_adapters; j++) {
            size_t l = strlen(known);
            snprintf(known + l, sizeof known - l, "%s%s", j ? ", " : "", m->adapters[j]->name);
        }
        return lfl_fail(LFL_ERR_ARG, "model: no adapter named '%s' (attached: %s)", name,
                        m->n_adapters ? known : "none");
    }
    m->active = i;
    return LFL_OK;
}
