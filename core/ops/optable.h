/* The op x device dispatch table.
 *
 * LFL_OP_LIST names every kernel once, with its parameter list: the forward
 * kernel of each op, plus a `<op>_backward` entry where a device needs its own
 * backward kernel (ops whose backward is other ops, such as add or matmul, have
 * none). Composite ops (mean, stack, split, the 1-D forms of matmul) have no
 * entry: they run wherever the ops they are made of run. From the list come
 *   - enum lfl_op: LFL_OP_<name>, LFL_OP_COUNT;
 *   - one typedef per entry, lfl_<name>_kernel, and the prototypes of the CPU
 *     kernel lfl_cpu_<name> and of the CUDA kernel lfl_cuda_<name>;
 *   - lfl_kernel: a union with one typed member per entry (member <name>), so
 *     every table slot is typed and nothing is cast;
 *   - lfl_dispatch_<name>(device, caller, &fn): the kernel for that device or
 *     one uniform error, "softmax: not implemented on cuda:0 (no kernel in the
 *     dispatch table)".
 *
 * The table has one column per device kind (lfl_devkind in device.h):
 *   - CPU: every entry, built in optable.c from the list; the kernel
 *     lfl_cpu_<name> is defined in the file of its op (core/ops/<op>.c), next to
 *     the op's front function. A wrong signature does not compile (the
 *     prototype comes from here) and a missing kernel does not link.
 *   - CUDA: kernels/optable.c, one line per kernel written in kernels/ (*.cu)
 *     (defined extern "C" as lfl_cuda_<name>); all empty without a CUDA build
 *     (optable.c). Adding a CUDA kernel is writing it and adding its
 *     line there.
 *
 * Division of labour: an op's front function (lfl_softmax, ...) does what
 * does not depend on the device: argument, shape, dtype and same-device checks,
 * making inputs contiguous where its kernels want that, allocating the outputs
 * on the input's device, and recording the autograd node, whose backward
 * function dispatches the `_backward` entry the same way. A kernel receives
 * checked inputs and allocated outputs and does everything that reads or
 * writes data, including the checks that need the data (index ranges, label
 * ranges). Kernels may fail (lfl_fail) but never record autograd nodes.
 *
 * tests/c/test_dispatch.c lists the coverage per device, and lfl.sys.ops()
 * returns it to Lua. */
#ifndef LFL_OPS_OPTABLE_H
#define LFL_OPS_OPTABLE_H

#include "../device.h"
#include "../ops.h"
#include "../optim/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Arguments of the kernels that take many: filled by the op's front function. */

/* attention: q [B, Hq, T, D], k, v [B, Hkv, S, D] of one float dtype (any
 * strides); segments [B, T] and kv_start [B] contiguous i64 or NULL (kv_start's
 * values are the kernel's to check: each in [0, S]); scale already resolved
 * (> 0). The forward writes out [B, T, Hq, D] (contiguous: the front returns
 * its [B, Hq, T, D] view) and lse [B, Hq, T], for B * Hq * T * D > 0. sinks:
 * [Hq] contiguous of q's dtype or NULL, folded into out and lse (attention.c's
 * header); backward then also writes their gradient dsinks [Hq] (NULL: not
 * wanted). */
typedef struct {
    lfl_tensor *q, *k, *v, *segments, *kv_start;
    double scale, softcap;
    int64_t window;
    bool causal;
    lfl_tensor *sinks;
} lfl_attn_args;

/* lora_linear: x [rows, in] contiguous, w [out, in] contiguous or 16-bit with
 * any strides, bias [out] or NULL, A [r, in] and B [out, r] contiguous, all of
 * x's dtype (f32/f64) but a 16-bit w. */
typedef struct {
    lfl_tensor *x, *w, *bias, *A, *B;
    double scaling;
    int64_t rows;
} lfl_lora_args;

/* linear_cross_entropy: hidden [N, H] contiguous (any leading shape), w [V, H]
 * contiguous (hidden's dtype, or 16-bit with f32 hidden), labels [N] contiguous
 * i64 (range unchecked), V walked in chunks of `chunk` columns. */
typedef struct {
    lfl_tensor *hidden, *w, *labels;
    int64_t N, V, H, chunk;
    lfl_reduction r;
} lfl_lce_args;

/* linear_kl_div: hidden [N, H] and ref_hidden [N, Hr] contiguous (same dtype),
 * w [V, H] and ref_w [V, Hr] contiguous (that dtype, or 16-bit with f32
 * hidden), labels [N] contiguous i64 (-100 rows are skipped), V walked in
 * chunks of `chunk` columns. */
typedef struct {
    lfl_tensor *hidden, *w, *ref_hidden, *ref_w, *labels;
    int64_t N, V, H, Hr, chunk;
} lfl_lkl_args;

/* X(name, (parameters)). Outputs are allocated by the front unless a
 * parameter is lfl_tensor **; backward outputs that are NULL are not needed. */
#define LFL_OP_LIST(X)                                                                                      \
    /* out = a (op) b, broadcast; a, b of one dtype (f32, f64, i32, i64); out of the broadcast shape */     \
    X(add, (lfl_tensor *a, lfl_tensor *b, lfl_tensor *out))                                                 \
    X(sub, (lfl_tensor *a, lfl_tensor *b, lfl_tensor *out))                                                 \
    X(mul, (lfl_tensor *a, lfl_tensor *b, lfl_tensor *out))                                                 \
    X(div, (lfl_tensor *a, lfl_tensor *b, lfl_tensor *out))                                                 \
    /* a contiguous, out like a */                                                                          \
    X(affine, (lfl_tensor *a, double s, double c, lfl_tensor *out))                                         \
    X(pow, (lfl_tensor *a, double p, lfl_tensor *out))                                                      \
    /* dx = p x^(p-1) g; g and x contiguous, p != 0 */                                                      \
    X(pow_backward, (lfl_tensor *g, lfl_tensor *x, double p, lfl_tensor *dx))                               \
    X(unary, (lfl_unary_kind k, lfl_tensor *a, lfl_tensor *out))                                            \
    /* saved: the input or output the kind's backward reads (NULL for neg) */                               \
    X(unary_backward, (lfl_unary_kind k, lfl_tensor *g, lfl_tensor *saved, lfl_tensor *dx))                 \
    /* out bool of the broadcast shape */                                                                   \
    X(compare, (lfl_cmp_kind k, lfl_tensor *a, lfl_tensor *b, lfl_tensor *out))                             \
    X(where, (lfl_tensor *cond, lfl_tensor *a, lfl_tensor *b, lfl_tensor *out))                             \
    /* a contiguous; mask broadcasts to it */                                                               \
    X(masked_fill, (lfl_tensor *a, lfl_tensor *mask, double v, lfl_tensor *out))                            \
    /* a contiguous; bit d of dims set = dim d reduced */                                                   \
    X(sum, (lfl_tensor *a, int64_t dims, lfl_tensor *out))                                                  \
    /* a contiguous; values (a's dtype) and i64 indices of the reduced shape */                             \
    X(max, (lfl_tensor *a, int dim, lfl_tensor *values, lfl_tensor *indices))                               \
    X(min, (lfl_tensor *a, int dim, lfl_tensor *values, lfl_tensor *indices))                               \
    X(argmax, (lfl_tensor *a, int dim, lfl_tensor *values, lfl_tensor *indices))                            \
    /* max's and min's: dx (zeros of the input's shape) at indices = g */                                   \
    X(max_backward, (lfl_tensor *g, lfl_tensor *indices, int dim, lfl_tensor *dx))                          \
    /* the output's size depends on the data: the kernel allocates it */                                    \
    X(nonzero, (lfl_tensor *mask, lfl_tensor **out))                                                        \
    /* a contiguous */                                                                                      \
    X(softmax, (lfl_tensor *a, int dim, lfl_tensor *out))                                                   \
    X(softmax_backward, (lfl_tensor *g, lfl_tensor *y, int dim, lfl_tensor *dx))                            \
    X(log_softmax, (lfl_tensor *a, int dim, lfl_tensor *out))                                               \
    X(log_softmax_backward, (lfl_tensor *g, lfl_tensor *y, int dim, lfl_tensor *dx))                        \
    /* a [..., n, k] @ b [..., k, m] -> out [batch..., n, m]; an operand is 16-bit with any strides or      \
     * has a GEMM layout (lfl_matmul_layout in matmul.h) */                                                 \
    X(matmul, (lfl_tensor *a, lfl_tensor *b, lfl_tensor *out))                                              \
    /* x [rows, in] contiguous, w [out, in] contiguous or 16-bit; out [rows, out] */                        \
    X(linear, (lfl_tensor *x, lfl_tensor *w, lfl_tensor *bias, lfl_tensor *out))                            \
    X(linear_backward, (lfl_tensor *g, lfl_tensor *x, lfl_tensor *w, lfl_tensor *dx, lfl_tensor *dw))       \
    /* LLM.int8's inference matmul: x [rows, in] contiguous f32, w int8 [out, in] (quant/bnb8.h), bias      \
     * [out] contiguous f32 or NULL, threshold >= 0; out [rows, out] f32; no backward */                    \
    X(int8_linear_lt, (lfl_tensor *x, lfl_tensor *w, lfl_tensor *bias, double threshold, lfl_tensor *out))  \
    /* out NULL: only the side product x A^T [rows, r] (a replay) */                                        \
    X(lora_linear, (const lfl_lora_args *p, lfl_tensor *out, lfl_tensor *side))                             \
    X(lora_linear_backward, (const lfl_lora_args *p, lfl_tensor *g, lfl_tensor *side, lfl_tensor *dx,       \
                             lfl_tensor *dw, lfl_tensor *dA, lfl_tensor *dB))                               \
    /* weight [V, H] contiguous, ids contiguous i64 (range unchecked); out [..., H] */                      \
    X(embedding, (lfl_tensor *weight, lfl_tensor *ids, lfl_tensor *out))                                    \
    /* dw: zeros [V, H] */                                                                                  \
    X(embedding_backward, (lfl_tensor *g, lfl_tensor *ids, lfl_tensor *dw))                                 \
    /* a contiguous, index 1-D contiguous i64 (range unchecked) */                                          \
    X(index_select, (lfl_tensor *a, int dim, lfl_tensor *index, lfl_tensor *out))                           \
    /* da: zeros of the input's shape */                                                                    \
    X(index_select_backward, (lfl_tensor *g, int dim, lfl_tensor *index, lfl_tensor *da))                   \
    /* index contiguous i64 (range unchecked), a any strides; out of index's shape */                       \
    X(gather, (lfl_tensor *a, int dim, lfl_tensor *index, lfl_tensor *out))                                 \
    /* in place: dst (contiguous) at index along dim += src */                                              \
    X(scatter_add, (lfl_tensor *dst, int dim, lfl_tensor *index, lfl_tensor *src))                          \
    X(cat, (int n, lfl_tensor **ts, int dim, lfl_tensor *out))                                              \
    /* x: last dim unit-stride (rows.h); rstd [rows] */                                                     \
    X(rmsnorm, (lfl_tensor *x, lfl_tensor *w, double eps, lfl_tensor *out, lfl_tensor *rstd))               \
    X(rmsnorm_backward, (lfl_tensor *g, lfl_tensor *x, lfl_tensor *w, lfl_tensor *rstd,                     \
                         lfl_tensor *dx, lfl_tensor *dw))                                                   \
    X(layernorm, (lfl_tensor *x, lfl_tensor *w, lfl_tensor *b, double eps, lfl_tensor *out,                 \
                  lfl_tensor *mean, lfl_tensor *rstd))                                                      \
    X(layernorm_backward, (lfl_tensor *g, lfl_tensor *x, lfl_tensor *w, lfl_tensor *mean,                   \
                           lfl_tensor *rstd, lfl_tensor *dx, lfl_tensor *dw, lfl_tensor *db))               \
    /* x [B, H, T, D] with a unit-stride last dim, cos/sin contiguous [Bc, T, D] */                         \
    X(rope, (lfl_tensor *x, lfl_tensor *cos, lfl_tensor *sin, lfl_tensor *out))                             \
    X(rope_backward, (lfl_tensor *g, lfl_tensor *cos, lfl_tensor *sin, lfl_tensor *dx))                     \
    X(rope_cos_sin, (lfl_tensor *pos, lfl_tensor *inv_freq, double scaling, lfl_tensor *cos,                \
                     lfl_tensor *sin))                                                                      \
    /* gate, up: last dim unit-stride */                                                                    \
    X(swiglu, (lfl_tensor *gate, lfl_tensor *up, lfl_tensor *out))                                          \
    X(swiglu_backward, (lfl_tensor *g, lfl_tensor *gate, lfl_tensor *up, lfl_tensor *dgate,                 \
                        lfl_tensor *dup))                                                                   \
    X(geglu, (lfl_tensor *gate, lfl_tensor *up, bool tanh_approx, lfl_tensor *out))                         \
    X(geglu_backward, (lfl_tensor *g, lfl_tensor *gate, lfl_tensor *up, bool tanh_approx,                   \
                       lfl_tensor *dgate, lfl_tensor *dup))                                                 \
    X(attention, (const lfl_attn_args *p, lfl_tensor *out, lfl_tensor *lse))                                \
    /* out, lse: the forward's; g contiguous [B, Hq, T, D]; T > 0 */                                        \
    X(attention_backward, (const lfl_attn_args *p, lfl_tensor *out, lfl_tensor *lse, lfl_tensor *g,         \
                           lfl_tensor *dq, lfl_tensor *dk, lfl_tensor *dv, lfl_tensor *dsinks))             \
    /* logits [..., V] contiguous, labels contiguous i64 (range unchecked); lse [rows] f64; out: the        \
     * loss (a scalar, or of labels' shape for no reduction); count: the rows not ignored */                \
    X(cross_entropy, (lfl_tensor *logits, lfl_tensor *labels, lfl_reduction r, lfl_tensor *lse,             \
                      lfl_tensor *out, int64_t *count))                                                     \
    X(cross_entropy_backward, (lfl_tensor *g, lfl_tensor *logits, lfl_tensor *labels, lfl_tensor *lse,      \
                               lfl_reduction r, int64_t count, lfl_tensor *dx))                             \
    X(token_logprobs, (lfl_tensor *logits, lfl_tensor *labels, lfl_tensor *lse, lfl_tensor *out))           \
    X(token_logprobs_backward, (lfl_tensor *g, lfl_tensor *logits, lfl_tensor *labels,                      \
                                lfl_tensor *lse, lfl_tensor *dx))                                           \
    /* dh [N, H] zeros or NULL: when set, the forward also computes hidden's gradient (frozen w) */         \
    X(linear_cross_entropy, (const lfl_lce_args *p, lfl_tensor *lse, lfl_tensor *out, lfl_tensor *dh,       \
                             int64_t *count))                                                               \
    /* eager: the forward's dh, or NULL; dh zeros [N, H] (or hidden's shape) */                             \
    X(linear_cross_entropy_backward, (const lfl_lce_args *p, lfl_tensor *g, lfl_tensor *lse, int64_t count, \
                                      lfl_tensor *eager, lfl_tensor *dh, lfl_tensor *dw))                   \
    /* lse [2, N] f64 (the policy's, the reference's); out [N] of hidden's dtype */                         \
    X(linear_kl_div, (const lfl_lkl_args *p, lfl_tensor *lse, lfl_tensor *out))                              \
    /* g [N] contiguous; dh zeros of hidden's shape or NULL; dw [V, H] or NULL */                          \
    X(linear_kl_div_backward, (const lfl_lkl_args *p, lfl_tensor *g, lfl_tensor *lse, lfl_tensor *dh,       \
                               lfl_tensor *dw))                                                             \
    /* hidden [N, H], w [V, H] contiguous, 1 <= k <= V; out [N] of hidden's dtype */                       \
    X(linear_topk_entropy, (lfl_tensor *hidden, lfl_tensor *w, int64_t k, int64_t chunk, lfl_tensor *out))  \
    /* a contiguous, 0 < p <= 1; mask u8 of a's shape */                                                    \
    X(dropout, (lfl_tensor *a, double p, lfl_tensor *mask, lfl_tensor *out))                                \
    X(dropout_backward, (lfl_tensor *g, lfl_tensor *mask, double scale, lfl_tensor *dx))                    \
    /* optimizer updates in place (core/optim/adamw.c): p, g and the state contiguous f32 of p's size on    \
     * p's device, step >= 1 (checked by the fronts) */                                                     \
    X(adamw_step, (lfl_tensor *p, lfl_tensor *g, lfl_tensor *m, lfl_tensor *v, const lfl_adamw_opts *o))     \
    X(sgd_step, (lfl_tensor *p, lfl_tensor *g, lfl_tensor *buf, double lr, double momentum,                 \
                 double weight_decay, bool first))                                                          \
    /* g contiguous f32 or f64: *out = sum of g^2 accumulated in f64 (global-norm clipping) */              \
    X(sum_squares, (lfl_tensor *g, double *out))                                                            \
    /* g contiguous f32: g *= s */                                                                          \
    X(scale, (lfl_tensor *g, double s))                                                                     \
    /* q a whole NF4/FP4 tensor (quant/bnb4.h, checked), its state on q's device; out f32 of q's shape */  \
    X(q4_dequant, (lfl_tensor *q, lfl_tensor *out))                                                         \
    /* dst, src on one device, any strides, src broadcasts to dst; f32/f64/f16/bf16/i32/i64/u8/bool         \
     * converted through f64 as lfl_set does, or one dtype (block-quantized: one size) */                   \
    X(copy, (lfl_tensor *dst, const lfl_tensor *src))                                                       \
    /* t any strides, not block-quantized; v converted to t's dtype as lfl_set converts it */               \
    X(fill, (lfl_tensor *t, double v))

typedef enum {
#define LFL_OP_ENUM_(name, params) LFL_OP_##name,
    LFL_OP_LIST(LFL_OP_ENUM_)
#undef LFL_OP_ENUM_
    LFL_OP_COUNT
} lfl_op;

#define LFL_OP_DECL_(name, params)                    \
    typedef lfl_status (*lfl_##name##_kernel) params; \
    lfl_status lfl_cpu_##name params;                 \
    lfl_status lfl_cuda_##name params;
LFL_OP_LIST(LFL_OP_DECL_)
#undef LFL_OP_DECL_

typedef union {
#define LFL_OP_MEMBER_(name, params) lfl_##name##_kernel name;
    LFL_OP_LIST(LFL_OP_MEMBER_)
#undef LFL_OP_MEMBER_
} lfl_kernel;

/* The table: lfl_op_table[kind][op]. Written only by lfl_op_set (tests). */
extern lfl_kernel *const lfl_op_table[LFL_DEVKIND_COUNT];
/* The columns (optable.c; kernels/optable.c, or optable.c without CUDA) */
extern lfl_kernel lfl_cpu_kernels[LFL_OP_COUNT];
extern lfl_kernel lfl_cuda_kernels[LFL_OP_COUNT];

/* The uniform "not implemented" error of a missing entry; caller (NULL: the
 * entry's name) is the op the user called, e.g. "exp" for the unary entry. */
lfl_status lfl_op_missing(lfl_op op, int device, const char *caller);

#define LFL_OP_DISPATCH_(name, params)                                                                    \
    static inline lfl_status lfl_dispatch_##name(int device, const char *caller, lfl_##name##_kernel *fn) \
    {                                                                                                     \
        *fn = lfl_op_table[lfl_device_kind(device)][LFL_OP_##name].name;                                  \
        return *fn ? LFL_OK : lfl_op_missing(LFL_OP_##name, device, caller);                              \
    }
LFL_OP_LIST(LFL_OP_DISPATCH_)
#undef LFL_OP_DISPATCH_

/* Introspection */
static inline int lfl_op_count(void) { return LFL_OP_COUNT; }
const char *lfl_op_name(int op);          /* NULL outside [0, LFL_OP_COUNT) */
int lfl_op_find(const char *name);        /* -1 for an unknown name */
bool lfl_op_implemented(int op, int kind); /* has device kind `kind` a kernel for op? */
/* Kernels per kind and the names of the implemented ones, space-separated
 * into buf ("add sub mul div matmul"); returns the count. */
int lfl_op_coverage(int kind, char *buf, size_t n);

/* Test hook: replaces one slot (a kernel, or an empty lfl_kernel to take it
 * out) and returns what was there, so a test can fake or remove a kernel and
 * put the original back. Not for use while other threads run ops. */
lfl_kernel lfl_op_set(int op, int kind, lfl_kernel k);

#ifdef __cplusplus
}
#endif

#endif
