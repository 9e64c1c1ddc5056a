/* bitsandbytes' 4-bit blockwise quantization (QLoRA's NF4 and FP4): a weight
 * is stored as two 4-bit code indices per byte (the first element in the high
 * nibble), an f32 absmax per block of 64 elements of the flattened weight, and
 * the element is code[index] * absmax. With double quantization the absmaxes
 * minus their mean (the offset) are themselves quantized to 8 bits with the
 * dynamic map in blocks of 256, each with its own f32 absmax; the scale of a
 * block is then code2[q] * absmax2[b / 256] + offset, computed in f32 as
 * bitsandbytes does. An NF4/FP4 tensor holds the packed codes in its storage
 * and this state in tensor->quant. */
#ifndef LFL_QUANT_BNB4_H
#define LFL_QUANT_BNB4_H

#include "../tensor.h"

#define LFL_Q4_BLOCK 64
#define LFL_Q4_DQ_BLOCK 256

struct lfl_qstate {
    int refcount;
    /* the whole tensor as f32: lfl_cast's widening, set by the quantizer (the
     * core level reaches dequantizers through hooks, never by name) */
    lfl_status (*to_f32)(lfl_tensor *q, lfl_tensor **out);
    int64_t nblocks;      /* numel / 64 */
    lfl_tensor *absmax;   /* f32 [nblocks]: without double quantization */
    lfl_tensor *qabsmax;  /* u8 [nblocks]: with it, ... */
    lfl_tensor *absmax2;  /* f32 [ceil(nblocks / 256)] */
    float offset;         /* mean of the absmaxes */
    float code2[256];     /* the signed dynamic map */
    lfl_tensor *scb;      /* LLM.int8 (quant/bnb8.h): f32 [rows], the absmax of each row */
    /* a GPTQ / AWQ weight kept quantized (quant/gptq.h) */
    lfl_tensor *gzeros;   /* u8 [groups, out]: each group's zero point, v1's + 1 applied */
    lfl_tensor *gscales;  /* f16/bf16/f32 [groups, out], as the checkpoint stores them */
    lfl_tensor *gidx;     /* i32 [in]: the group of each input (act-order), or NULL: input / group_size */
    int64_t group_size;
};

/* the 16 code values of NF4 or FP4, as bitsandbytes indexes them */
const float *lfl_q4_code(lfl_dtype kind);
static inline bool lfl_is_q4(lfl_dtype d) { return d == LFL_NF4 || d == LFL_FP4; }

/* bitsandbytes' quantize_4bit(w, blocksize=64, quant_type, compress_statistics):
 * w a CPU f32/bf16/f16 tensor (or a GGUF block tensor, dequantized to f32 on the
 * way) whose element count is a multiple of 64; out is a
 * new NF4/FP4 tensor of w's shape (contiguous, no grad). */
lfl_status lfl_quantize_4bit(lfl_tensor *w, lfl_dtype kind, bool double_quant, lfl_tensor **out);

/* A 4-bit tensor from bitsandbytes' saved state (what save_pretrained writes for
 * a load_in_4bit model: weight, weight.absmax, weight.quant_map and with double
 * quantization weight.nested_absmax / nested_quant_map and the nested offset):
 * codes u8 holding numel(shape) / 2 packed bytes, absmax f32 [nblocks] or,
 * with absmax2 given, u8 [nblocks] (the 8-bit absmaxes), absmax2 f32
 * [ceil(nblocks / 256)], code2 f32 [256] the nested map and offset the nested
 * offset; quant_map f32 [16] must be kind's own code (blocks of 64 only: the
 * caller checks the blocksizes). Everything is copied: out owns its bytes. */
lfl_status lfl_q4_from_state(lfl_dtype kind, int ndim, const int64_t *shape, lfl_tensor *codes, lfl_tensor *quant_map,
                             lfl_tensor *absmax, lfl_tensor *absmax2, lfl_tensor *code2, float offset,
                             lfl_tensor **out);

/* q's copy on another device (codes and state), no gradient */
lfl_status lfl_q4_to_device(lfl_tensor *q, int device, lfl_tensor **out);
/* the bytes of q's packed codes (two per byte) */
size_t lfl_q4_packed_bytes(const lfl_tensor *q);

/* Checks that q is a whole NF4/FP4 tensor as lfl_quantize_4bit makes it (state
 * present, not a view); op names the caller. */
lfl_status lfl_q4_check(const char *op, const lfl_tensor *q);

/* The f32 scale of each block b in [b0, b0 + n) into dst. */
void lfl_q4_scales(const lfl_tensor *q, int64_t b0, int64_t n, float *dst);

/* dst[i] = element start + i of the flattened weight, i < n (f32), single-threaded */
void lfl_q4_dequant_range(const lfl_tensor *q, int64_t start, int64_t n, float *dst);

/* dst[r * cols + c] = W[r0 + r][c0 + c] for r < rows, c < cols: a tile of the
 * 2-D weight W [shape0, shape1], single-threaded */
void lfl_q4_dequant_tile(const lfl_tensor *q, int64_t r0, int64_t rows, int64_t c0, int64_t cols, float *dst);

/* A new f32 tensor of q's shape (the whole weight: for export and tests) */
lfl_status lfl_q4_dequantize(lfl_tensor *q, lfl_tensor **out);

/* Bytes q holds in all (codes + absmaxes + double-quantization state). */
size_t lfl_q4_nbytes(const lfl_tensor *q);

void lfl_qstate_retain(struct lfl_qstate *s);

#endif
