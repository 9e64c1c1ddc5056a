/* Helpers of the tokenized-dataset cache: SHA-256 of a buffer (through the
 * hub's SHA-256) and file size + mtime, which key a cached dataset. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include "tokcache.h"
#include "../hub/internal.h"

void lfl_tokcache_sha256(const void *data, size_t n, char out[65])
{
    lfl_sha256 s;
    lfl_sha256_init(&s);
    lfl_sha256_update(&s, data, n);
    lfl_sha256_hex(&s, out);
}

lfl_status lfl_tokcache_stat(const char *path, int64_t *size, int64_t *mtime_ns)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return lfl_fail(LFL_ERR_IO, "tokcache: cannot stat %s: %s", path, strerror(errno));
    *size = (int64_t)sb.st_size;
    *mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    return LFL_OK;
}
