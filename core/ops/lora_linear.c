/* lora_linear: x @ w^T + bias + scaling * (x @ A^T) @ B^T in one op, LoRA's
 * adapted linear (PEFT's lora.Linear.forward without dropout). The composed
 * ops would hold three [rows, out] temporaries for the low-rank branch (its
 * product, its scaled copy, the sum) and pass over each in both directions;
 * here the branch goes straight into the base output by a rank-r GEMM with
 * beta = 1, and backward adds scaling * (g B) A into dx the same way. w may be
 * bf16/f16 (a frozen base, read as stored); x, A, B and bias share x's dtype,
 * f32 or f64 (f64 for gradient checks). A 4-bit NF4/FP4 w (QLoRA) goes
 * through the tile-dequantizing GEMM (q4_gemm.c) in both directions, a GGUF
 * block w (Q4_0 ... Q6_K) through ggml_gemm.c likewise.
 *
 * Under matmul precision "medium" (bf16 GEMMs) the branch folds into the base
 * GEMM itself (lfl_gemm_bf16_lowrank): y = [x | s t] [w ; B^T] with t = x A^T
 * computed as x is packed, and dx = [g | s u] [w ; A] with u = g B likewise,
 * so of LoRA's six rank-r GEMMs only dA and dB still pass over memory. */
#include <stdlib.h>
#include <string.h>
#include "../blas.h"
#include "../gemm_bf16.h"
#include "linear.h"
#include "lowp.h"
#include "ggml_gemm.h"
#include "q4_gemm.h"
#include "gptq_gemm.h"
#include "../quant/ggml.h"
#include "../quant/bnb8.h"
#include "../quant/gptq.h"

typedef float v16f __attribute__((vector_size(64)));

/* out[j][c] = s * sum_i U[i][j] X[i][c] for j in [j0, j1), c in [c0, c1), plainly */
static void outer_plain(int64_t rows, int64_t r, int64_t n, const float *U, const float *X, float s, float *out,
                        int64_t j0, int64_t j1, int64_t c0, int64_t c1)
{
    for (int64_t j = j0; j < j1; j++)
        for (int64_t c = c0; c < c1; c++) {
            float acc = 0;
            for (int64_t i = 0; i < rows; i++) acc += U[i * r + j] * X[i * n + c];
            out[j * n + c] = acc * s;
        }
}

/* out[j][c0 .. c0 + 32) = s * sum_i U[i][j] X[i][c0 ..] for all j < r: the
 * 8 x 32 block of sums stays in 16 registers while the rows stream by */
static void outer_block(int64_t rows, int64_t r, int64_t n, const float *U, const float *X, float s, float *out,
                        int64_t c0)
{
    for (int64_t j0 = 0; j0 < r; j0 += 8) {
        if (r - j0 < 8) { /* a rank that is not a multiple of 8: plain loops for the rest */
            outer_plain(rows, r, n, U, X, s, out, j0, r, c0, c0 + 32);
            break;
        }
        v16f a[8][2];
        memset(a, 0, sizeof a);
        for (int64_t i = 0; i < rows; i++) {
            v16f x0, x1;
            memcpy(&x0, X + i * n + c0, sizeof x0);
            memcpy(&x1, X + i * n + c0 + 16, sizeof x1);
            const float *u = U + i * r + j0;
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                a[j][0] += u[j] * x0;
                a[j][1] += u[j] * x1;
            }
        }
        for (int j = 0; j < 8; j++) {
            v16f y0 = a[j][0] * s, y1 = a[j][1] * s;
            memcpy(out + (j0 + j) * n + c0, &y0, sizeof y0);
            memcpy(out + (j0 + j) * n + c0 + 16, &y1, sizeof y1);
        }
    }
}

/* out[r, n] = s * U^T X for U [rows, r], X [rows, n] (f32, row-major): the
 * factor gradients. OpenBLAS packs (copies) the tall X for such a product;
 * here threads take 32-column blocks of out and stream X's rows through
 * register-held sums, so X is read once and nothing is copied. Returns false
 * (the caller runs the GEMM) for products too small to be worth threads. */
static bool outer_sum_f32(int64_t rows, int64_t r, int64_t n, const float *U, const float *X, float s, float *out)
{
    if ((double)rows * r * n < 1e6) return false;
    int64_t nblk = n / 32;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < nblk; b++) outer_block(rows, r, n, U, X, s, out, b * 32);
    outer_plain(rows, r, n, U, X, s, out, 0, r, nblk * 32, n); /* the last n % 32 columns */
    return true;
}

lfl_status lfl_cpu_lora_linear_backward(const lfl_lora_args *p, lfl_tensor *g, lfl_tensor *t, lfl_tensor *dx,
                                        lfl_tensor *dw, lfl_tensor *dA, lfl_tensor *dB)
{
    lfl_tensor *x = p->x, *w = p->w, *A = p->A, *B = p->B, *u = NULL;
    int64_t rows = p->rows, fin = w->shape[1], fout = w->shape[0], r = A->shape[0];
    double s = p->scaling;
    lfl_dtype dt = x->dtype;
    void *px = lfl_data(x), *pA = lfl_data(A), *pB = lfl_data(B);
    bool fuse = dx && dt == LFL_F32 && !lfl_is_bnb(w->dtype) && !lfl_is_ggml(w->dtype) && !lfl_is_gptq(w->dtype) && r > 0 && r <= LFL_GEMM_MAX_RANK && lfl_gemm_wants_bf16(rows, fin, fout);
    lfl_status st = LFL_OK;
    if (dx || dA) { /* u[rows, r] = g @ B */
        int64_t ushape[2] = {rows, r};
        st = lfl_empty(2, ushape, dt, LFL_CPU, &u);
        if (st == LFL_OK && !fuse)
            lfl_gemm_typed(dt, false, false, rows, r, fout, 1, lfl_data(g), fout, pB, r, 0, lfl_data(u), r);
    }
    if (st == LFL_OK && fuse) { /* dx = [g | s u] [w ; A], u = g B computed while g is packed */
        float *bt = malloc(sizeof(float) * (size_t)(r * fout)); /* B^T [r, out]: the side's pt */
        if (!bt) st = lfl_fail(LFL_ERR_MEM, "lora_linear backward: out of memory");
        if (st == LFL_OK) {
            for (int64_t o = 0; o < fout; o++)
                for (int64_t j = 0; j < r; j++) bt[j * fout + o] = ((const float *)pB)[o * r + j];
            lfl_gemm_lowrank lr = {r, bt, lfl_data(u), (float)s, pA, fin, 1};
            st = lfl_gemm_bf16_lowrank(rows, fin, fout, lfl_data(g), fout, w->dtype, lfl_data(w), w->stride[0],
                                       w->stride[1], &lr, 0.0f, lfl_data(dx), fin);
        }
        free(bt);
    } else if (st == LFL_OK && dx) { /* dx = g @ w + s * u @ A */
        if (lfl_is_bnb(w->dtype))
            st = lfl_gemm_f32_q4(rows, fin, fout, lfl_data(g), (int)fout, w, false, 0.0f, lfl_data(dx), (int)fin);
        else if (lfl_is_ggml(w->dtype))
            st = lfl_gemm_f32_ggml(rows, fin, fout, lfl_data(g), (int)fout, w, false, 0.0f, lfl_data(dx), (int)fin);
        else if (lfl_is_gptq(w->dtype))
            st = lfl_gemm_f32_gptq(rows, fin, fout, lfl_data(g), (int)fout, w, false, 0.0f, lfl_data(dx), (int)fin);
        else if (lfl_is_lowp(w->dtype) && rows && fin && fout)
            st = lfl_gemm_f32_lowp(false, rows, fin, fout, lfl_data(g), (int)fout, w->dtype, lfl_data(w),
                                   w->stride[0], w->stride[1], 0.0f, lfl_data(dx), (int)fin);
        else
            lfl_gemm_typed(dt, false, false, rows, fin, fout, 1, lfl_data(g), fout, lfl_data(w), fin, 0,
                           lfl_data(dx), fin);
        if (st == LFL_OK)
            lfl_gemm_typed(dt, false, false, rows, fin, r, s, lfl_data(u), r, pA, fin, 1, lfl_data(dx), fin);
    }
    if (st == LFL_OK && dw) /* dw = g^T @ x */
        lfl_gemm_typed(dt, true, false, fout, fin, rows, 1, lfl_data(g), fout, px, fin, 0, lfl_data(dw), fin);
    if (st == LFL_OK && dA) { /* dA = s * u^T @ x */
        if (!(dt == LFL_F32 && outer_sum_f32(rows, r, fin, lfl_data(u), px, (float)s, lfl_data(dA))))
            lfl_gemm_typed(dt, true, false, r, fin, rows, s, lfl_data(u), r, px, fin, 0, lfl_data(dA), fin);
    }
    if (st == LFL_OK && dB) { /* dB = s * g^T @ t */
        float *bt = dt == LFL_F32 ? malloc(sizeof(float) * (size_t)(r * fout)) : NULL;
        if (bt && outer_sum_f32(rows, r, fout, lfl_data(t), lfl_data(g), (float)s, bt)) { /* dB^T, then transposed */
            for (int64_t o = 0; o < fout; o++)
                for (int64_t j = 0; j < r; j++) ((float *)lfl_data(dB))[o * r + j] = bt[j * fout + o];
        } else {
            lfl_gemm_typed(dt, true, false, fout, r, rows, s, lfl_data(g), fout, lfl_data(t), r, 0, lfl_data(dB), r);
        }
        free(bt);
    }
    lfl_tensor_release(u);
    return st;
}

static lfl_status lora_backward(lfl_node *n, lfl_tensor **gout, lfl_tensor **gin)
{
    lfl_lora_args p = {n->saved[0], n->saved[1], NULL, n->saved[2], n->saved[3], n->farg[0], n->iarg[0]};
    lfl_tensor *t = n->saved[4], *g = NULL, *d[4] = {NULL, NULL, NULL, NULL};
    int64_t fout = p.w->shape[0];
    lfl_lora_linear_backward_kernel fn;
    LFL_TRY(lfl_dispatch_lora_linear_backward(p.x->device, NULL, &fn));
    LFL_TRY(lfl_contiguous(gout[0], &g));
    lfl_status st = LFL_OK;
    /* inputs x, w, A, B: their gradients have their shapes (x's as the caller's view) */
    const lfl_tensor *like[4] = {NULL, p.w, p.A, p.B};
    for (int i = 0; i < 4 && st == LFL_OK; i++) {
        if (!lfl_node_needs(n, i)) continue;
        if (i == 0) st = lfl_empty(n->in[0].ndim, n->in[0].shape, p.x->dtype, p.x->device, &d[0]);
        else st = lfl_empty(2, like[i]->shape, p.x->dtype, p.x->device, &d[i]);
    }
    if (st == LFL_OK) st = fn(&p, g, t, d[0], d[1], d[2], d[3]);
    if (st == LFL_OK && n->n_in > 4 && lfl_node_needs(n, 4)) st = lfl_linear_bias_grad(g, p.rows, fout, &gin[4]);
    lfl_tensor_release(g);
    for (int i = 0; i < 4; i++) {
        if (st == LFL_OK) gin[i] = d[i];
        else lfl_tensor_release(d[i]);
    }
    return st;
}

lfl_status lfl_cpu_lora_linear(const lfl_lora_args *p, lfl_tensor *o, lfl_tensor *t)
{
    lfl_tensor *cx = p->x, *cw = p->w, *cA = p->A, *cB = p->B, *bias = p->bias;
    int64_t fin = cw->shape[1], fout = cw->shape[0], r = cA->shape[0], rows = p->rows;
    lfl_dtype dt = cx->dtype;
    bool fuse = dt == LFL_F32 && !lfl_is_bnb(cw->dtype) && !lfl_is_ggml(cw->dtype) && !lfl_is_gptq(cw->dtype) && r > 0 && r <= LFL_GEMM_MAX_RANK &&
                lfl_gemm_wants_bf16(rows, fout, fin);
    lfl_status st = LFL_OK;
    if (!o) { /* a replay: the side product t = x A^T as the forward computed it */
        if (fuse) lfl_gemm_side_rows(rows, fin, lfl_data(cx), fin, lfl_data(cA), r, lfl_data(t));
        else lfl_gemm_typed(dt, false, true, rows, r, fin, 1, lfl_data(cx), fin, lfl_data(cA), fin, 0, lfl_data(t), r);
    } else if (fuse) { /* y = [x | s t] [w ; B^T] (+ bias), t = x A^T computed while x is packed */
        if (bias) st = lfl_linear_fill_bias(o, bias, rows, fout);
        lfl_gemm_lowrank lr = {r, lfl_data(cA), lfl_data(t), (float)p->scaling, lfl_data(cB), 1, r};
        if (st == LFL_OK)
            st = lfl_gemm_bf16_lowrank(rows, fout, fin, lfl_data(cx), fin, cw->dtype, lfl_data(cw), cw->stride[1],
                                       cw->stride[0], &lr, bias ? 1.0f : 0.0f, lfl_data(o), fout);
    } else { /* the base linear, then the rank-r branch added into its output */
        st = lfl_cpu_linear(cx, cw, bias, o);
        if (st == LFL_OK) {
            lfl_gemm_typed(dt, false, true, rows, r, fin, 1, lfl_data(cx), fin, lfl_data(cA), fin, 0, lfl_data(t), r);
            lfl_gemm_typed(dt, false, true, rows, fout, r, p->scaling, lfl_data(t), r, lfl_data(cB), r, 1, lfl_data(o),
                           fout);
        }
    }
    return st;
}

lfl_status lfl_lora_linear(lfl_tensor *x, lfl_tensor *w, lfl_tensor *bias, lfl_tensor *A, lfl_tensor *B,
                           double scaling, lfl_tensor **out)
{
    return lfl_lora_linear_given(x, w, bias, A, B, scaling, NULL, NULL, out, NULL);
}

/* a given tensor of `shape` (n dims) and dtype dt, contiguous and outside any graph */
static lfl_status given_check(const char *what, const lfl_tensor *g, int n, const int64_t *shape, lfl_dtype dt,
                              int dev)
{
    char b[128];
    if (g->dtype != dt || g->ndim != n || !lfl_is_contiguous(g) || g->device != dev ||
        memcmp(g->shape, shape, sizeof(int64_t) * (size_t)n))
        return lfl_fail(LFL_ERR_ARG, "lora_linear: the given %s %s is not a contiguous %s tensor of its shape on the input's device", what,
                        lfl_shape_str(g, b, sizeof b), lfl_dtype_name(dt));
    if (g->grad_fn || g->requires_grad)
        return lfl_fail(LFL_ERR_ARG, "lora_linear: the given %s must be a plain tensor, not part of a graph", what);
    return LFL_OK;
}

lfl_status lfl_lora_linear_given(lfl_tensor *x, lfl_tensor *w, lfl_tensor *bias, lfl_tensor *A, lfl_tensor *B,
                                 double scaling, lfl_tensor *given, lfl_tensor *given_side, lfl_tensor **out,
                                 lfl_tensor **side)
{
    char ba[128], bb[128];
    const char *op = "lora_linear";
    LFL_TRY(lfl_linear_check(op, x, w, bias));
    LFL_TRY(lfl_check_same_device(op, x, A));
    LFL_TRY(lfl_check_same_device(op, x, B));
    if (x->dtype != LFL_F32 && x->dtype != LFL_F64)
        return lfl_fail(LFL_ERR_ARG, "%s: input must be f32 or f64, got %s", op, lfl_dtype_name(x->dtype));
    if (A->dtype != x->dtype || B->dtype != x->dtype)
        return lfl_fail(LFL_ERR_ARG, "%s: A (%s) and B (%s) must have the input's dtype %s", op,
                        lfl_dtype_name(A->dtype), lfl_dtype_name(B->dtype), lfl_dtype_name(x->dtype));
    if (A->ndim != 2 || B->ndim != 2 || A->shape[1] != w->shape[1] || B->shape[0] != w->shape[0] ||
        B->shape[1] != A->shape[0])
        return lfl_fail(LFL_ERR_ARG, "%s: A %s and B %s do not fit weight [%lld, %lld] (want A [r, %lld], B [%lld, r])",
                        op, lfl_shape_str(A, ba, sizeof ba), lfl_shape_str(B, bb, sizeof bb), (long long)w->shape[0],
                        (long long)w->shape[1], (long long)w->shape[1], (long long)w->shape[0]);
    int64_t fin = w->shape[1], fout = w->shape[0], r = A->shape[0], rows = fin ? lfl_numel(x) / fin : 0;
    int64_t tshape[2] = {rows, r}, oshape[LFL_MAX_DIMS];
    for (int d = 0; d < x->ndim - 1; d++) oshape[d] = x->shape[d];
    oshape[x->ndim - 1] = fout;
    if (given) LFL_TRY(given_check("output", given, x->ndim, oshape, x->dtype, x->device));
    if (given_side && !given) return lfl_fail(LFL_ERR_ARG, "%s: a given side product needs the given output", op);
    if (given_side) LFL_TRY(given_check("side product", given_side, 2, tshape, x->dtype, x->device));
    lfl_lora_linear_kernel fn;
    LFL_TRY(lfl_dispatch_lora_linear(x->device, NULL, &fn));
    lfl_tensor *o = NULL, *cx = NULL, *cw = NULL, *cA = NULL, *cB = NULL, *t = NULL;
    lfl_status st = lfl_contiguous(x, &cx);
    if (st == LFL_OK)
        st = lfl_is_lowp(w->dtype) || lfl_is_bnb(w->dtype) || lfl_is_ggml(w->dtype) || lfl_is_gptq(w->dtype)
                 ? (cw = lfl_tensor_retain(w), LFL_OK) : lfl_contiguous(w, &cw);
    if (st == LFL_OK) st = lfl_contiguous(A, &cA);
    if (st == LFL_OK) st = lfl_contiguous(B, &cB);
    if (st == LFL_OK && given_side) t = lfl_tensor_retain(given_side);
    else if (st == LFL_OK) st = lfl_empty(2, tshape, x->dtype, x->device, &t);
    lfl_lora_args p = {cx, cw, bias, cA, cB, scaling, rows};
    if (st == LFL_OK && given) { /* replay: nothing, or the side product t as the forward computed it */
        o = lfl_tensor_retain(given);
        if (!given_side) st = fn(&p, NULL, t);
    } else if (st == LFL_OK) {
        st = lfl_empty(x->ndim, oshape, x->dtype, x->device, &o);
        if (st == LFL_OK) st = fn(&p, o, t);
    }
    if (st == LFL_OK) {
        lfl_tensor *in[5] = {x, w, A, B, bias};
        lfl_node *n = lfl_node_begin(op, lora_backward, bias ? 5 : 4, in, 1);
        if (n) {
            n->iarg[0] = rows;
            n->farg[0] = scaling;
            lfl_node_save(n, cx);
            lfl_node_save(n, cw);
            lfl_node_save(n, cA);
            lfl_node_save(n, cB);
            lfl_node_save(n, t);
            lfl_node_set_output(n, o, 0);
            lfl_node_release(n);
        }
    }
    lfl_tensor_release(cx);
    lfl_tensor_release(cw);
    lfl_tensor_release(cA);
    lfl_tensor_release(cB);
    if (st == LFL_OK && side) *side = lfl_tensor_retain(t);
    lfl_tensor_release(t);
    if (st) { lfl_tensor_release(o); return st; }
    *out = o;
    return LFL_OK;
}
