/* Helpers of the tokenized-dataset cache: file size + mtime, which key a
 * cached dataset (its content hashes come from core/util/sha256.c). */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include "tokcache.h"

lfl_status lfl_tokcache_stat(const char *path, int64_t *size, int64_t *mtime_ns)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return lfl_fail(LFL_ERR_IO, "tokcache: cannot stat %s: %s", path, strerror(errno));
    *size = (int64_t)sb.st_size;
    *mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    return LFL_OK;
}
