/* Helpers of the tokenized-dataset cache (stdlib/lfl/dataset_cache.lua):
 * SHA-256 of a memory buffer (the cache key), file size and mtime (what
 * identifies a dataset file without reading it). */
#ifndef LFL_IO_TOKCACHE_H
#define LFL_IO_TOKCACHE_H
#include <stddef.h>
#include <stdint.h>
#include "status.h"

/* sha256 of n bytes as 64 lowercase hex chars (+ NUL) */
void lfl_tokcache_sha256(const void *data, size_t n, char out[65]);
/* size in bytes and modification time in nanoseconds of a file */
lfl_status lfl_tokcache_stat(const char *path, int64_t *size, int64_t *mtime_ns);

#endif
