/* Shared pieces of the loss ops (cross_entropy, linear_cross_entropy,
 * token_logprobs): label checking, and the CPU row kernels (online
 * log-sum-exp, softmax gradient) they all run over rows of logits. Internal
 * to core/ops. */
#ifndef LFL_OPS_LOSS_H
#define LFL_OPS_LOSS_H

#include "optable.h"

#define LFL_IGNORE_INDEX (-100)

/* Front: checks labels against the expected shape (nd dims): i64 or i32, on
 * `device`. Returns a contiguous i64 copy/ref; the kernels check the values
 * (lfl_loss_labels_check). */
lfl_status lfl_loss_labels(const char *op, lfl_tensor *labels, int device, int nd, const int64_t *shape,
                           lfl_tensor **out);

/* CPU kernels: every label of the contiguous i64 `labels` in [0, V) or -100,
 * else the error naming the first bad one by its position. */
lfl_status lfl_loss_labels_check(const char *op, const lfl_tensor *labels, int64_t V);

/* Front of cross_entropy / token_logprobs: f32/f64 logits[..., V >= 1],
 * labels[...]. Returns contiguous logits, contiguous i64 labels, rows and V. */
lfl_status lfl_loss_prepare(const char *op, lfl_tensor *logits, lfl_tensor *labels, lfl_tensor **cx,
                            lfl_tensor **cl, int64_t *rows, int64_t *V);

/* Front: the loss tensor's shape for reduction r: labels' shape for none, a
 * scalar otherwise (allocated in dt on device). */
lfl_status lfl_loss_output(lfl_reduction r, const lfl_tensor *labels, lfl_dtype dt, int device, lfl_tensor **out);

/* CPU kernels: the loss from per-row values (0 on ignored rows) into out (from
 * lfl_loss_output); count = non-ignored rows. */
void lfl_loss_reduce(const double *row, const int64_t *labels, int64_t rows, lfl_reduction r, lfl_tensor *out,
                     int64_t *count);

/* CPU kernels: the reduction as a coefficient per row for the backward pass:
 * coef[r] = g[r] (none), g (sum), g / count (mean); `sign` flips it. */
lfl_status lfl_loss_row_coef(lfl_tensor *gout, lfl_reduction r, int64_t rows, int64_t count, double sign,
                             double *coef);

/* Online log-sum-exp over one column block of rows: x[rows, n] (row stride ld)
 * holds columns [v0, v0 + n) of the logits. Updates the running max m[r] and
 * sum s[r] (start from -inf and 0), and sets picked[r] = x[r, labels[r]] when
 * the label falls in this block. lse = m + log(s) once all blocks are seen. */
void lfl_loss_lse_block(lfl_dtype dt, const void *x, int64_t rows, int64_t n, int64_t ld,
                        const int64_t *labels, int64_t v0, double *m, double *s, double *picked);

/* lfl_loss_lse_block that also replaces the block with exp(x - m_new) and
 * sets rescale[r] = exp(m_old - m_new) (0 for a row with no max yet): what a
 * single-pass softmax-weighted sum needs to rescale what it has summed. */
void lfl_loss_lse_exp_block(lfl_dtype dt, void *x, int64_t rows, int64_t n, int64_t ld, const int64_t *labels,
                            int64_t v0, double *m, double *s, double *picked, double *rescale);

/* dx[r, j] = coef[r] * (exp(x[r, j] - lse[r]) - [labels[r] == v0 + j]) over one
 * column block; rows whose label is -100 get 0. x and dx may be the same. */
void lfl_loss_softmax_grad(lfl_dtype dt, const void *x, void *dx, int64_t rows, int64_t n, int64_t ld,
                           const int64_t *labels, int64_t v0, const double *lse, const double *coef);

/* The column chunk of the fused head ops (linear_cross_entropy,
 * linear_topk_entropy) when the caller gives 0: ~8 MB of [N, chunk] logits, at
 * least 256 columns so the GEMMs keep their speed, at most V. */
int64_t lfl_loss_default_chunk(int64_t N, int64_t V, size_t es);

/* buf[N, cw] = hidden[N, H] @ w[v0 : v0 + cw, H]^T (row-major, ld = cw); a
 * bf16/f16 w with f32 hidden is widened block by block */
lfl_status lfl_loss_chunk_logits(lfl_dtype dt, const void *h, lfl_dtype wdt, const void *w, void *buf, int64_t N,
                                 int64_t H, int64_t v0, int64_t cw);

/* "mean" / "sum" / "none" */
const char *lfl_reduction_name(lfl_reduction r);

#endif
