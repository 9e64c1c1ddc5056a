/* Define-by-run autograd: nodes recorded by ops, walked in reverse by backward. */
#ifndef LFL_AUTOGRAD_H
#define LFL_AUTOGRAD_H

#include "tensor.h"

#define LFL_NODE_MAX_SAVED 8

/* gout[n_out]: gradients w.r.t. the outputs (a missing one is zeros, never NULL).
 * gin[n_in]: to fill with new references; leave NULL for inputs that need none. */
typedef lfl_status (*lfl_backward_fn)(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin);

typedef struct {
    lfl_node *fn;      /* producer of the input, or NULL */
    int index;         /* output index within fn */
    lfl_tensor *leaf;  /* the input itself when it is a leaf requiring grad */
    int ndim;          /* the input's shape and dtype as seen by the op */
    int64_t shape[LFL_MAX_DIMS];
    lfl_dtype dtype;
} lfl_edge;

/* Shape and dtype of a node output, kept to zero-fill a missing gradient. */
typedef struct {
    int ndim;
    int64_t shape[LFL_MAX_DIMS];
    lfl_dtype dtype;
} lfl_out_meta;

struct lfl_node {
    int refcount;
    uint64_t seq;                  /* creation order = a topological order */
    const char *name;
    lfl_backward_fn backward;
    int n_in, n_out;
    lfl_edge *in;
    lfl_tensor *saved[LFL_NODE_MAX_SAVED];
    int n_saved;
    bool freed;                    /* saved tensors released after backward */
    int64_t iarg[8];               /* small op parameters */
    double farg[4];
    void *ctx;                     /* larger op state */
    void (*ctx_free)(void *ctx);
    lfl_tensor **grads;            /* per output, only during backward */
    int out_ndim[4];               /* output shapes for zero-filling (first 4 outputs) */
    int64_t out_shape[4][LFL_MAX_DIMS];
    lfl_dtype out_dtype[4];
    lfl_out_meta *out_more;        /* the same for outputs 4.. (heap; split has many) */
    int out_device;
};

bool lfl_grad_enabled(void);
bool lfl_set_grad_enabled(bool on); /* returns the previous mode */

/* Starts a node for an op when grad mode is on and an input needs grad;
 * otherwise returns NULL and the op records nothing. */
lfl_node *lfl_node_begin(const char *name, lfl_backward_fn fn, int n_in,
                         lfl_tensor *const *inputs, int n_out);
/* The same, recording even when no input needs grad: for regions (checkpoint)
 * whose parameters are not inputs but still get gradients on recompute. */
lfl_node *lfl_node_begin_always(const char *name, lfl_backward_fn fn, int n_in,
                                lfl_tensor *const *inputs, int n_out);
/* Saves a detached header of t (no reference cycle through grad_fn). */
void lfl_node_save(lfl_node *n, lfl_tensor *t);
/* Marks out as output `index` of n; takes nothing from the caller's ref. */
void lfl_node_set_output(lfl_node *n, lfl_tensor *out, int index);
/* Drops the caller's ref from lfl_node_begin (after set_output). */
void lfl_node_release(lfl_node *n);
static inline bool lfl_node_needs(const lfl_node *n, int i) { return n->in[i].fn || n->in[i].leaf; }

/* grad may be NULL for a one-element root (taken as 1). */
lfl_status lfl_backward(lfl_tensor *root, lfl_tensor *grad);
lfl_status lfl_backward_multi(int n, lfl_tensor **roots, lfl_tensor **grads);

/* dst += src, shapes equal; no grad recorded. */
lfl_status lfl_accumulate_(lfl_tensor *dst, lfl_tensor *src);

#endif
