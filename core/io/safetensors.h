/* safetensors: zero-copy reading through mmap, atomic writing. */
#ifndef LFL_SAFETENSORS_H
#define LFL_SAFETENSORS_H

#include "../tensor.h"

typedef struct {
    char *name;
    lfl_dtype dtype;
    int ndim;
    int64_t shape[LFL_MAX_DIMS];
    size_t begin, end;      /* byte range within the data section */
} lfl_st_entry;

typedef struct {
    char *path;
    lfl_storage *map;       /* the whole file, mmapped read-only */
    size_t data_start;      /* 8 + header length */
    int n;
    lfl_st_entry *entries;  /* in file order */
    int n_meta;
    char **meta_keys, **meta_values; /* __metadata__ (string -> string) */
} lfl_st_file;

/* Parses the header and maps the file; every size is checked against the file. */
lfl_status lfl_st_open(const char *path, lfl_st_file **out);
void lfl_st_close(lfl_st_file *f);
int lfl_st_find(const lfl_st_file *f, const char *name);
/* A tensor viewing the mapped bytes of entry i (no copy; keeps the map alive),
 * or a copy of them when the entry's offset is not aligned to its dtype. */
lfl_status lfl_st_tensor(const lfl_st_file *f, int i, lfl_tensor **out);

/* Writes tensors (any layout/device; stored contiguous) under names, with
 * string metadata (format=pt is added when absent). Temp file + rename. */
lfl_status lfl_st_save(const char *path, int n, const char *const *names, lfl_tensor *const *tensors,
                       int n_meta, const char *const *meta_keys, const char *const *meta_values);

/* dtype <-> safetensors dtype string ("F32", "BF16", ...); -1 when unknown */
int lfl_st_dtype_from_string(const char *s);
const char *lfl_st_dtype_string(lfl_dtype d);

#endif
