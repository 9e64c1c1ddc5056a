/* SHA-256 (FIPS 180-4), incremental: below every module that hashes (the Hub's
 * LFS checks in core/hub, dataset-cache keys in core/io and the bridge). */
#ifndef LFL_UTIL_SHA256_H
#define LFL_UTIL_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "../status.h"

typedef struct {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    size_t nbuf;
} lfl_sha256;

void lfl_sha256_init(lfl_sha256 *s);
void lfl_sha256_update(lfl_sha256 *s, const void *data, size_t n);
void lfl_sha256_final(lfl_sha256 *s, uint8_t out[32]);
/* the digest as 64 lowercase hex chars + NUL (finalises s) */
void lfl_sha256_hex(lfl_sha256 *s, char out[65]);
/* hashes the first `limit` bytes of f from its start; `what` names it in errors */
lfl_status lfl_sha256_fd_prefix(lfl_sha256 *s, FILE *f, int64_t limit, const char *what);
/* hex digest of a whole file */
lfl_status lfl_sha256_file(const char *path, char out[65]);
/* hex digest of n bytes */
void lfl_sha256_buf(const void *data, size_t n, char out[65]);

#endif
