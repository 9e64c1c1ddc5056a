/* GGUF v2/v3 reader: header, typed metadata (arrays included), tensor infos and
 * the data section, over an mmap of the file. Every read is bounds-checked, so a
 * truncated or lying file gives an lfl_fail error naming the file and the problem.
 * Dequantization lives below (core/quant/ggml.c); this file only describes
 * tensors (name, dims, ggml type, offset, byte size, data pointer). */
#ifndef LFL_GGUF_H
#define LFL_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"

#define LFL_GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define LFL_GGUF_DEFAULT_ALIGNMENT 32
#define LFL_GGUF_MAX_DIMS 4

typedef enum {
    LFL_GGUF_U8 = 0,
    LFL_GGUF_I8 = 1,
    LFL_GGUF_U16 = 2,
    LFL_GGUF_I16 = 3,
    LFL_GGUF_U32 = 4,
    LFL_GGUF_I32 = 5,
    LFL_GGUF_F32 = 6,
    LFL_GGUF_BOOL = 7,
    LFL_GGUF_STRING = 8,
    LFL_GGUF_ARRAY = 9,
    LFL_GGUF_U64 = 10,
    LFL_GGUF_I64 = 11,
    LFL_GGUF_F64 = 12,
    LFL_GGUF_NTYPES
} lfl_gguf_type;

/* ggml tensor type ids (as stored in GGUF tensor infos) */
enum {
    LFL_GGML_F32 = 0, LFL_GGML_F16 = 1, LFL_GGML_Q4_0 = 2, LFL_GGML_Q4_1 = 3,
    LFL_GGML_Q5_0 = 6, LFL_GGML_Q5_1 = 7, LFL_GGML_Q8_0 = 8, LFL_GGML_Q8_1 = 9,
    LFL_GGML_Q2_K = 10, LFL_GGML_Q3_K = 11, LFL_GGML_Q4_K = 12, LFL_GGML_Q5_K = 13,
    LFL_GGML_Q6_K = 14, LFL_GGML_Q8_K = 15, LFL_GGML_I8 = 24, LFL_GGML_I16 = 25,
    LFL_GGML_I32 = 26, LFL_GGML_I64 = 27, LFL_GGML_F64 = 28, LFL_GGML_BF16 = 30,
    LFL_GGML_NTYPES = 40
};

/* A string inside the mapped file: not NUL-terminated. */
typedef struct {
    const char *ptr;
    uint64_t len;
} lfl_gguf_str;

typedef struct lfl_gguf_kv {
    const char *key;        /* NUL-terminated copy */
    lfl_gguf_type type;
    /* scalars (type != ARRAY) */
    union {
        uint64_t u;
        int64_t i;
        double f;
        bool b;
        lfl_gguf_str s;
    } v;
    /* arrays (type == ARRAY) */
    lfl_gguf_type arr_type;
    uint64_t arr_n;
    const uint8_t *arr_data;       /* first element in the file */
    const uint8_t **arr_elems;     /* arrays of strings: each element's start */
    struct lfl_gguf_kv *arr_subs;  /* arrays of arrays: each element as a view */
} lfl_gguf_kv;

typedef struct {
    const char *name;       /* NUL-terminated copy */
    int ndim;
    int64_t ne[LFL_GGUF_MAX_DIMS];  /* ne[0] innermost (contiguous); unused dims are 1 */
    int type;               /* ggml type id */
    uint64_t offset;        /* relative to the data section */
    uint64_t nbytes;
    const void *data;       /* into the mapping */
} lfl_gguf_tensor;

typedef struct lfl_gguf {
    char *path;
    const uint8_t *base;    /* the mapping (or the caller's buffer) */
    size_t size;
    bool mapped;
    uint32_t version;
    uint64_t n_kv, n_tensors;
    lfl_gguf_kv *kv;
    lfl_gguf_tensor *tensors;
    uint32_t alignment;
    uint64_t data_offset;   /* start of the tensor data section */
    void *arena;            /* key/name copies and element tables */
} lfl_gguf;

/* Opens and validates a GGUF file (mmap). */
lfl_status lfl_gguf_open(const char *path, lfl_gguf **out);
/* Same over a caller-owned buffer that must outlive the handle; `name` appears in errors. */
lfl_status lfl_gguf_open_memory(const void *buf, size_t size, const char *name, lfl_gguf **out);
void lfl_gguf_close(lfl_gguf *g);

const lfl_gguf_kv *lfl_gguf_find(const lfl_gguf *g, const char *key);
const lfl_gguf_tensor *lfl_gguf_find_tensor(const lfl_gguf *g, const char *name);

/* Typed lookups: LFL_ERR_ARG when the key is missing, LFL_ERR_FORMAT when its
 * type does not fit. Integers accept any integer type (range-checked into
 * int64); floats accept float and integer types; bools accept bool and ints. */
lfl_status lfl_gguf_get_str(const lfl_gguf *g, const char *key, const char **s, size_t *len);
lfl_status lfl_gguf_get_int(const lfl_gguf *g, const char *key, int64_t *v);
lfl_status lfl_gguf_get_float(const lfl_gguf *g, const char *key, double *v);
lfl_status lfl_gguf_get_bool(const lfl_gguf *g, const char *key, bool *v);
/* An array's element type and count. */
lfl_status lfl_gguf_get_arr(const lfl_gguf *g, const char *key, lfl_gguf_type *type, uint64_t *n);

/* Element access on an ARRAY kv (i < arr_n, checked by LFL_ASSERT). */
lfl_gguf_str lfl_gguf_arr_str(const lfl_gguf_kv *kv, uint64_t i);
int64_t lfl_gguf_arr_int(const lfl_gguf_kv *kv, uint64_t i);   /* integer/bool types */
double lfl_gguf_arr_float(const lfl_gguf_kv *kv, uint64_t i);  /* numeric types */
/* Nested arrays: element i of an array of arrays, as a kv view (key NULL). */
const lfl_gguf_kv *lfl_gguf_arr_sub(const lfl_gguf_kv *kv, uint64_t i);

/* Names and sizes */
const char *lfl_gguf_type_name(lfl_gguf_type t);
const char *lfl_ggml_type_name(int type);          /* NULL for an unknown id */
/* Elements per block and bytes per block of a ggml type; false when unknown. */
bool lfl_ggml_type_block(int type, int64_t *block_elems, size_t *block_bytes);
/* ggml type id (as stored in GGUF tensor infos) -> lfl dtype, or -1 */
int lfl_ggml_type_to_dtype(int ggml_type);

#endif
