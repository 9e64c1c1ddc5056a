/* Every op of the core: forward entry points (backward is recorded on the tape).
 * One op per file in core/ops/; dims are 0-based, negative counts from the end.
 * Outputs are new references; inputs are borrowed. */
#ifndef LFL_OPS_H
#define LFL_OPS_H

#include "autograd.h"

/* elementwise binary with broadcasting */
lfl_status lfl_add(lfl_tensor *a, lfl_tensor *b, lfl_tensor **out);
lfl_status lfl_sub(lfl_tensor *a, lfl_tensor *b, lfl_tensor **out);
lfl_status lfl_mul(lfl_tensor *a, lfl_tensor *b, lfl_tensor **out);
lfl_status lfl_div(lfl_tensor *a, lfl_tensor *b, lfl_tensor **out);
/* a * s + c with scalars (scale, add a constant) */
lfl_status lfl_affine(lfl_tensor *a, double s, double c, lfl_tensor **out);
lfl_status lfl_pow(lfl_tensor *a, double p, lfl_tensor **out);

/* elementwise unary */
typedef enum {
    LFL_U_NEG, LFL_U_EXP, LFL_U_LOG, LFL_U_SQRT, LFL_U_RSQRT, LFL_U_ABS,
    LFL_U_TANH, LFL_U_SIGMOID, LFL_U_SILU, LFL_U_GELU, LFL_U_GELU_TANH, LFL_U_RELU,
    LFL_U_COUNT
} lfl_unary_kind;
lfl_status lfl_unary(lfl_unary_kind k, lfl_tensor *a, lfl_tensor **out);

/* comparisons give bool masks (no grad) */
typedef enum { LFL_CMP_EQ, LFL_CMP_NE, LFL_CMP_LT, LFL_CMP_LE, LFL_CMP_GT, LFL_CMP_GE } lfl_cmp_kind;
lfl_status lfl_compare(lfl_cmp_kind k, lfl_tensor *a, lfl_tensor *b, lfl_tensor **out);
lfl_status lfl_where(lfl_tensor *cond, lfl_tensor *a, lfl_tensor *b, lfl_tensor **out);
lfl_status lfl_masked_fill(lfl_tensor *a, lfl_tensor *mask, double v, lfl_tensor **out);

/* reductions: ndims == 0 reduces everything */
lfl_status lfl_sum(lfl_tensor *a, int ndims, const int *dims, bool keepdim, lfl_tensor **out);
lfl_status lfl_mean(lfl_tensor *a, int ndims, const int *dims, bool keepdim, lfl_tensor **out);
/* max/min along one dim, with the 0-based argmax/argmin as i64 (may be NULL) */
lfl_status lfl_max(lfl_tensor *a, int dim, bool keepdim, lfl_tensor **values, lfl_tensor **indices);
lfl_status lfl_min(lfl_tensor *a, int dim, bool keepdim, lfl_tensor **values, lfl_tensor **indices);
lfl_status lfl_argmax(lfl_tensor *a, int dim, bool keepdim, lfl_tensor **out);
/* 0-based i64 positions of the true elements of a 1-D bool mask */
lfl_status lfl_nonzero(lfl_tensor *mask, lfl_tensor **out);
lfl_status lfl_softmax(lfl_tensor *a, int dim, lfl_tensor **out);
lfl_status lfl_log_softmax(lfl_tensor *a, int dim, lfl_tensor **out);

/* linear algebra: a[..., n, k] @ b[..., k, m] with batch broadcasting */
lfl_status lfl_matmul(lfl_tensor *a, lfl_tensor *b, lfl_tensor **out);
/* x[..., in] @ w[out, in]^T + bias[out] (bias may be NULL) */
lfl_status lfl_linear(lfl_tensor *x, lfl_tensor *w, lfl_tensor *bias, lfl_tensor **out);
/* LLM.int8's inference matmul, bitsandbytes' MatMul8bitLt (Linear8bitLt in
 * eval mode): y = x W^T + bias with x quantized row-wise to int8 and the
 * columns of x holding a value >= threshold (llm_int8_threshold; 0: none) taken
 * in f32. x f32 [..., in], w int8 [out, in] (quant/bnb8.h); no gradient. */
lfl_status lfl_int8_linear_lt(lfl_tensor *x, lfl_tensor *w, lfl_tensor *bias, double threshold, lfl_tensor **out);
/* LoRA's adapted linear: x @ w^T + bias + scaling * (x @ A^T) @ B^T, A [r, in],
 * B [out, r]; one node, no [rows, out] temporaries for the low-rank branch */
lfl_status lfl_lora_linear(lfl_tensor *x, lfl_tensor *w, lfl_tensor *bias, lfl_tensor *A, lfl_tensor *B,
                           double scaling, lfl_tensor **out);
/* the same node with its output given (a checkpoint's replay of a forward
 * already run), *out = given; the rank-r side product x A^T [rows, r] is
 * recomputed unless given_side (from that forward's *side) is passed too.
 * side, if not NULL, receives a new reference to the side product. */
lfl_status lfl_lora_linear_given(lfl_tensor *x, lfl_tensor *w, lfl_tensor *bias, lfl_tensor *A, lfl_tensor *B,
                                 double scaling, lfl_tensor *given, lfl_tensor *given_side, lfl_tensor **out,
                                 lfl_tensor **side);

/* indexing */
lfl_status lfl_embedding(lfl_tensor *weight, lfl_tensor *ids, lfl_tensor **out);
lfl_status lfl_index_select(lfl_tensor *a, int dim, lfl_tensor *index, lfl_tensor **out);
lfl_status lfl_gather(lfl_tensor *a, int dim, lfl_tensor *index, lfl_tensor **out);
/* out = a with src added at index along dim */
lfl_status lfl_scatter_add(lfl_tensor *a, int dim, lfl_tensor *index, lfl_tensor *src, lfl_tensor **out);
lfl_status lfl_cat(int n, lfl_tensor **ts, int dim, lfl_tensor **out);
lfl_status lfl_stack(int n, lfl_tensor **ts, int dim, lfl_tensor **out);
/* split into pieces of `sizes` along dim (outs: n new references) */
lfl_status lfl_split(lfl_tensor *a, int dim, int n, const int64_t *sizes, lfl_tensor **outs);

/* neural-network blocks */
lfl_status lfl_rmsnorm(lfl_tensor *x, lfl_tensor *w, double eps, lfl_tensor **out);
lfl_status lfl_layernorm(lfl_tensor *x, lfl_tensor *w, lfl_tensor *b, double eps, lfl_tensor **out);
/* x[B, H, T, D], cos/sin[B or 1, T, D] (HF rotate-half convention) */
lfl_status lfl_rope(lfl_tensor *x, lfl_tensor *cos, lfl_tensor *sin, lfl_tensor **out);
/* cos/sin[B, T, D] from position ids[B, T] (i64, 0-based) and inv_freq[D/2],
 * as HF's LlamaRotaryEmbedding (f32 math, times `scaling`), cast to dt */
lfl_status lfl_rope_cos_sin(lfl_tensor *pos, lfl_tensor *inv_freq, double scaling, lfl_dtype dt,
                            lfl_tensor **cos, lfl_tensor **sin);
/* gate, up: [..., F] -> act(gate) * up */
lfl_status lfl_swiglu(lfl_tensor *gate, lfl_tensor *up, lfl_tensor **out);
lfl_status lfl_geglu(lfl_tensor *gate, lfl_tensor *up, bool tanh_approx, lfl_tensor **out);

typedef struct {
    double scale;          /* 0: 1/sqrt(D) */
    int64_t window;        /* sliding window (keys within `window` positions), 0 = none */
    double softcap;        /* gemma2 logit soft-capping, 0 = none */
    bool causal;           /* query i sees keys j <= i + (S - T) (KV-cache aware) */
    lfl_tensor *segments;  /* packed rows: [B, T] i64 segment id per token, or NULL;
                            * attention never crosses segments (needs S == T) */
    lfl_tensor *kv_start;  /* left-padded batches: [B] i64, keys j < kv_start[b] are
                            * padding that row b never sees, or NULL */
    lfl_tensor **lse_out;  /* if set: a new reference to the rows' log-sum-exps [B, Hq, T] */
    lfl_tensor *given_out, *given_lse; /* replay (checkpointing): this forward's output and
                            * log-sum-exps from an earlier run; only the node is recorded */
    lfl_tensor *sinks;     /* [Hq] (q's dtype, CPU): a learned logit per query head in every
                            * row's softmax denominator, with no value (GPT-OSS), or NULL;
                            * differentiable */
} lfl_attn_opts;
/* q[B, Hq, T, D], k/v[B, Hkv, S, D] (Hq multiple of Hkv) -> [B, Hq, T, D] */
lfl_status lfl_attention(lfl_tensor *q, lfl_tensor *k, lfl_tensor *v, const lfl_attn_opts *o, lfl_tensor **out);

/* losses; labels are i64 with ignore_index -100 */
typedef enum { LFL_REDUCE_MEAN, LFL_REDUCE_SUM, LFL_REDUCE_NONE } lfl_reduction;
lfl_status lfl_cross_entropy(lfl_tensor *logits, lfl_tensor *labels, lfl_reduction r, lfl_tensor **out);
/* hidden[N, H] @ w[V, H]^T then CE, walking V in chunks: logits never whole */
lfl_status lfl_linear_cross_entropy(lfl_tensor *hidden, lfl_tensor *w, lfl_tensor *labels,
                                    lfl_reduction r, int64_t chunk, lfl_tensor **out);
/* the entropy of the softmax over each row's k largest logits of hidden[..., H]
 * @ w[V, H]^T -> [...] (EAFT's token weight), walking V in chunks; records no
 * autograd node (a detached weight) */
lfl_status lfl_linear_topk_entropy(lfl_tensor *hidden, lfl_tensor *w, int64_t k, int64_t chunk, lfl_tensor **out);
/* per row KL(softmax(ref_hidden @ ref_w^T) || softmax(hidden @ w^T)) -> [...]
 * (0 where labels are -100; ASFT's KL term), walking V in chunks; the
 * reference gets no gradient */
lfl_status lfl_linear_kl_div(lfl_tensor *hidden, lfl_tensor *w, lfl_tensor *ref_hidden, lfl_tensor *ref_w,
                             lfl_tensor *labels, int64_t chunk, lfl_tensor **out);
/* log p(label) per position: logits[..., V], labels[...] -> [...] (0 where ignored) */
lfl_status lfl_token_logprobs(lfl_tensor *logits, lfl_tensor *labels, lfl_tensor **out);

/* randomness */
lfl_status lfl_dropout(lfl_tensor *a, double p, lfl_tensor **out);

#endif
