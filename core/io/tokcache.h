/* Helpers of the tokenized-dataset cache (stdlib/lfl/dataset_cache.lua): file
 * size and mtime (what identifies a dataset file without reading it). Its
 * cache keys are SHA-256 digests (core/util/sha256.h). */
#ifndef LFL_IO_TOKCACHE_H
#define LFL_IO_TOKCACHE_H
#include <stddef.h>
#include <stdint.h>
#include "status.h"

/* size in bytes and modification time in nanoseconds of a file */
lfl_status lfl_tokcache_stat(const char *path, int64_t *size, int64_t *mtime_ns);

#endif
