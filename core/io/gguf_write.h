/* GGUF v3 writer, the counterpart of gguf.c's reader: typed metadata (arrays
 * included, or copied with their types from an open GGUF), tensor infos and the
 * data section (32-byte aligned). Tensors are kept by reference and converted
 * one at a time while the file is written (f32, f16, bf16 or a quantized block
 * type: core/quant/ggml_quantize.c), so a model is never held twice; the file
 * appears atomically (lfl_fs_atomic: a temporary renamed into place). */
#ifndef LFL_GGUF_WRITE_H
#define LFL_GGUF_WRITE_H

#include "../tensor.h"
#include "gguf.h"

typedef struct lfl_gguf_writer lfl_gguf_writer;

lfl_status lfl_gguf_writer_new(lfl_gguf_writer **out);
void lfl_gguf_writer_free(lfl_gguf_writer *w);

/* Metadata, in the order given; a key given twice is an error. Scalars: type
 * one of U8..F64 (not STRING / ARRAY); integers are range-checked for it. */
lfl_status lfl_gguf_writer_set_int(lfl_gguf_writer *w, const char *key, lfl_gguf_type type, int64_t v);
lfl_status lfl_gguf_writer_set_float(lfl_gguf_writer *w, const char *key, lfl_gguf_type type, double v);
lfl_status lfl_gguf_writer_set_bool(lfl_gguf_writer *w, const char *key, bool v);
lfl_status lfl_gguf_writer_set_str(lfl_gguf_writer *w, const char *key, const char *s, size_t len);
/* Arrays of numbers: n values of elem (an integer or float type, or BOOL) from
 * doubles (integers range-checked); arrays of strings. */
lfl_status lfl_gguf_writer_set_arr_num(lfl_gguf_writer *w, const char *key, lfl_gguf_type elem, const double *v,
                                       uint64_t n);
lfl_status lfl_gguf_writer_set_arr_str(lfl_gguf_writer *w, const char *key, const char *const *s, const size_t *len,
                                       uint64_t n);
/* A key of an open GGUF with its type and value, arrays of arrays included. */
lfl_status lfl_gguf_writer_copy_kv(lfl_gguf_writer *w, const lfl_gguf_kv *kv);

/* A tensor (any float or block dtype, PyTorch dim order, CPU) stored as
 * ggml type `ggml_type`: F32, F16, BF16 or Q8_0 / Q5_0 / Q4_K (then its last
 * dimension must be a multiple of the block). t is retained until free. */
lfl_status lfl_gguf_writer_add_tensor(lfl_gguf_writer *w, const char *name, lfl_tensor *t, int ggml_type);

/* Writes the file. */
lfl_status lfl_gguf_writer_save(lfl_gguf_writer *w, const char *path);

#endif
