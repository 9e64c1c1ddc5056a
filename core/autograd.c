/* The autograd engine: node bookkeeping, grad mode, and backward, which runs
 * the nodes reachable from the roots in reverse creation order. */
#include <stdatomic.h>
#include "autograd.h"
#include "device.h"
#include "iter.h"

static _Thread_local bool grad_off;
static atomic_uint_fast64_t next_seq;

bool lfl_grad_enabled(void) { return !grad_off; }

bool lfl_set_grad_enabled(bool on)
{
    bool prev = !grad_off;
    grad_off = !on;
    return prev;
}

static lfl_node *node_new(const char *name, lfl_backward_fn fn, int n_in, lfl_tensor *const *inputs, int n_out);

lfl_node *lfl_node_begin(const char *name, lfl_backward_fn fn, int n_in,
                         lfl_tensor *const *inputs, int n_out)
{
    if (grad_off) return NULL;
    bool any = false;
    for (int i = 0; i < n_in; i++) any |= inputs[i] && inputs[i]->requires_grad;
    if (!any) return NULL;
    return node_new(name, fn, n_in, inputs, n_out);
}

lfl_node *lfl_node_begin_always(const char *name, lfl_backward_fn fn, int n_in,
                                lfl_tensor *const *inputs, int n_out)
{
    if (grad_off) return NULL;
    return node_new(name, fn, n_in, inputs, n_out);
}

static lfl_node *node_new(const char *name, lfl_backward_fn fn, int n_in, lfl_tensor *const *inputs, int n_out)
{
    lfl_node *n = calloc(1, sizeof *n);
    n->refcount = 1;
    n->seq = atomic_fetch_add(&next_seq, 1);
    n->name = name;
    n->backward = fn;
    n->n_in = n_in;
    n->n_out = n_out;
    n->in = calloc((size_t)n_in, sizeof *n->in);
    for (int i = 0; i < n_in; i++) {
        lfl_tensor *t = inputs[i];
        if (!t) continue;
        lfl_edge *e = &n->in[i];
        e->ndim = t->ndim;
        for (int d = 0; d < t->ndim; d++) e->shape[d] = t->shape[d];
        e->dtype = t->dtype;
        if (!t->requires_grad) continue;
        if (t->grad_fn) {
            e->fn = t->grad_fn;
            e->fn->refcount++;
            e->index = t->grad_index;
        } else {
            e->leaf = lfl_tensor_retain(t);
        }
    }
    return n;
}

void lfl_node_save(lfl_node *n, lfl_tensor *t)
{
    LFL_ASSERT(n->n_saved < LFL_NODE_MAX_SAVED);
    n->saved[n->n_saved++] = t ? lfl_detach(t) : NULL;
}

void lfl_node_set_output(lfl_node *n, lfl_tensor *out, int index)
{
    LFL_ASSERT(!out->grad_fn && index < n->n_out);
    out->grad_fn = n;
    n->refcount++;
    out->grad_index = index;
    out->requires_grad = true;
    if (index < 4) {
        n->out_ndim[index] = out->ndim;
        for (int d = 0; d < out->ndim; d++) n->out_shape[index][d] = out->shape[d];
        n->out_dtype[index] = out->dtype;
    } else {
        if (!n->out_more) {
            n->out_more = calloc((size_t)(n->n_out - 4), sizeof *n->out_more);
            LFL_ASSERT(n->out_more);
        }
        lfl_out_meta *m = &n->out_more[index - 4];
        m->ndim = out->ndim;
        for (int d = 0; d < out->ndim; d++) m->shape[d] = out->shape[d];
        m->dtype = out->dtype;
    }
    n->out_device = out->device;
}

static void free_saved(lfl_node *n)
{
    for (int i = 0; i < n->n_saved; i++) { lfl_tensor_release(n->saved[i]); n->saved[i] = NULL; }
    if (n->ctx_free && n->ctx) n->ctx_free(n->ctx);
    n->ctx = NULL;
    n->freed = true;
}

void lfl_node_release(lfl_node *n)
{
    /* Iterative so that a long chain of nodes cannot overflow the C stack. */
    lfl_node *stack_small[64], **stack = stack_small;
    int top = 0, cap = 64;
    stack[top++] = n;
    while (top) {
        lfl_node *x = stack[--top];
        if (--x->refcount > 0) continue;
        free_saved(x);
        for (int i = 0; i < x->n_in; i++) {
            lfl_tensor_release(x->in[i].leaf);
            if (x->in[i].fn) {
                if (top == cap) {
                    lfl_node **bigger = malloc(sizeof *bigger * (size_t)cap * 2);
                    memcpy(bigger, stack, sizeof *stack * (size_t)top);
                    if (stack != stack_small) free(stack);
                    stack = bigger;
                    cap *= 2;
                }
                stack[top++] = x->in[i].fn;
            }
        }
        if (x->grads) {
            for (int i = 0; i < x->n_out; i++) lfl_tensor_release(x->grads[i]);
            free(x->grads);
        }
        free(x->in);
        free(x->out_more);
        free(x);
    }
    if (stack != stack_small) free(stack);
}

lfl_status lfl_accumulate_(lfl_tensor *dst, lfl_tensor *src)
{
    char b1[128], b2[128];
    if (!lfl_same_shape(dst, src))
        return lfl_fail(LFL_ERR_ARG, "backward: gradient shape %s does not match %s",
                        lfl_shape_str(src, b1, sizeof b1), lfl_shape_str(dst, b2, sizeof b2));
    if (dst->device != src->device) {
        char d1[32], d2[32];
        return lfl_fail(LFL_ERR_DEVICE, "backward: a gradient on %s cannot accumulate into one on %s",
                        lfl_device_str(src->device, d1, sizeof d1), lfl_device_str(dst->device, d2, sizeof d2));
    }
    if (dst->device != LFL_CPU) {
        if (!lfl_is_contiguous(dst))
            return lfl_fail(LFL_ERR_UNSUPPORTED, "backward: accumulating into a non-contiguous gradient on a device");
        return lfl_accumulate_same_device(dst, src);
    }
    int64_t n = lfl_numel(dst);
    if (dst->dtype == src->dtype && dst->dtype == LFL_F32 && lfl_is_contiguous(dst) && lfl_is_contiguous(src)) {
        float *d = lfl_data(dst);
        const float *s = lfl_data(src);
#pragma omp parallel for simd if (n > LFL_OMP_MIN)
        for (int64_t i = 0; i < n; i++) d[i] += s[i];
        return LFL_OK;
    }
    if (dst->dtype == src->dtype && dst->dtype == LFL_F64 && lfl_is_contiguous(dst) && lfl_is_contiguous(src)) {
        double *d = lfl_data(dst);
        const double *s = lfl_data(src);
        for (int64_t i = 0; i < n; i++) d[i] += s[i];
        return LFL_OK;
    }
    for (int64_t i = 0; i < n; i++) lfl_set(dst, i, lfl_get(dst, i) + lfl_get(src, i));
    return LFL_OK;
}

/* Adds g into *slot (taking a new reference, or copying when shared). */
static lfl_status add_into(lfl_tensor **slot, lfl_tensor *g, bool may_take)
{
    if (!*slot) {
        /* Later accumulation writes into *slot, so it must own its memory: take
         * g itself when nobody else can see its storage, else a private copy. */
        if (may_take && g->refcount == 1 && g->storage->refcount == 1 && g->storage->kind == LFL_STORAGE_HEAP &&
            g->offset == 0 && lfl_is_contiguous(g) && !g->grad_fn) {
            *slot = lfl_tensor_retain(g);
            return LFL_OK;
        }
        return lfl_clone(g, slot);
    }
    return lfl_accumulate_(*slot, g);
}

static int cmp_seq_desc(const void *a, const void *b)
{
    uint64_t x = (*(lfl_node *const *)a)->seq, y = (*(lfl_node *const *)b)->seq;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Collects the distinct nodes reachable from roots (marking by a visit stamp). */
static lfl_node **collect(int nroots, lfl_tensor **roots, int *count)
{
    int cap = 256, n = 0, top = 0, scap = 256;
    lfl_node **all = malloc(sizeof *all * (size_t)cap);
    lfl_node **stack = malloc(sizeof *stack * (size_t)scap);
    for (int i = 0; i < nroots; i++)
        if (roots[i]->grad_fn) stack[top++] = roots[i]->grad_fn;
    while (top) {
        lfl_node *x = stack[--top];
        if (x->grads) continue; /* visited */
        x->grads = calloc((size_t)x->n_out, sizeof *x->grads);
        if (n == cap) { cap *= 2; all = realloc(all, sizeof *all * (size_t)cap); }
        all[n++] = x;
        for (int i = 0; i < x->n_in; i++) {
            lfl_node *p = x->in[i].fn;
            if (p && !p->grads) {
                if (top == scap) { scap *= 2; stack = realloc(stack, sizeof *stack * (size_t)scap); }
                stack[top++] = p;
            }
        }
    }
    free(stack);
    qsort(all, (size_t)n, sizeof *all, cmp_seq_desc);
    *count = n;
    return all;
}

static void clear_grads(lfl_node *x)
{
    if (!x->grads) return;
    for (int i = 0; i < x->n_out; i++) lfl_tensor_release(x->grads[i]);
    free(x->grads);
    x->grads = NULL;
}

lfl_status lfl_backward_multi(int nroots, lfl_tensor **roots, lfl_tensor **grads)
{
    lfl_status st = LFL_OK;
    for (int i = 0; i < nroots; i++) {
        if (!roots[i]->requires_grad)
            return lfl_fail(LFL_ERR_ARG, "backward: tensor does not require grad and has no grad_fn");
        if (!grads[i] && lfl_numel(roots[i]) != 1) {
            char b[128];
            return lfl_fail(LFL_ERR_ARG, "backward: a gradient is needed for the non-scalar output %s",
                            lfl_shape_str(roots[i], b, sizeof b));
        }
        if (grads[i] && !lfl_same_shape(grads[i], roots[i])) {
            char b1[128], b2[128];
            return lfl_fail(LFL_ERR_ARG, "backward: gradient shape %s does not match output %s",
                            lfl_shape_str(grads[i], b1, sizeof b1), lfl_shape_str(roots[i], b2, sizeof b2));
        }
    }
    bool prev = lfl_set_grad_enabled(false);
    int count;
    lfl_node **order = collect(nroots, roots, &count);
    for (int i = 0; i < nroots && st == LFL_OK; i++) {
        lfl_tensor *g = grads[i], *one = NULL;
        if (!g) {
            st = lfl_full(roots[i]->ndim, roots[i]->shape, 1.0, roots[i]->dtype, roots[i]->device, &one);
            g = one;
        }
        if (st == LFL_OK) {
            /* the caller's gradient is never taken over: it stays theirs */
            if (roots[i]->grad_fn) st = add_into(&roots[i]->grad_fn->grads[roots[i]->grad_index], g, false);
            else st = add_into(&roots[i]->grad, g, false);
        }
        lfl_tensor_release(one);
    }
    for (int k = 0; k < count && st == LFL_OK; k++) {
        lfl_node *x = order[k];
        bool any = false;
        for (int j = 0; j < x->n_out; j++) any |= x->grads[j] != NULL;
        if (!any) continue;
        if (x->freed) {
            st = lfl_fail(LFL_ERR_ARG, "backward: the graph through '%s' was already used by a backward pass "
                                       "(its saved tensors are freed)", x->name);
            break;
        }
        for (int j = 0; j < x->n_out && st == LFL_OK; j++)
            if (!x->grads[j]) {
                if (j < 4) {
                    st = lfl_zeros(x->out_ndim[j], x->out_shape[j], x->out_dtype[j], x->out_device, &x->grads[j]);
                } else {
                    const lfl_out_meta *m = &x->out_more[j - 4];
                    st = lfl_zeros(m->ndim, m->shape, m->dtype, x->out_device, &x->grads[j]);
                }
            }
        if (st) break;
        lfl_tensor **gin = calloc((size_t)x->n_in, sizeof *gin);
        st = x->backward(x, x->grads, gin);
        for (int i = 0; i < x->n_in; i++) {
            if (!gin[i]) continue;
            lfl_edge *e = &x->in[i];
            if (st == LFL_OK) {
                if (e->leaf) st = add_into(&e->leaf->grad, gin[i], true);
                else if (e->fn) st = add_into(&e->fn->grads[e->index], gin[i], true);
            }
            lfl_tensor_release(gin[i]);
        }
        free(gin);
        clear_grads(x);
        free_saved(x);
    }
    for (int k = 0; k < count; k++) clear_grads(order[k]);
    free(order);
    lfl_set_grad_enabled(prev);
    return st;
}

lfl_status lfl_backward(lfl_tensor *root, lfl_tensor *grad)
{
    return lfl_backward_multi(1, &root, &grad);
}
