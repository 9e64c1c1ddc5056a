/* SHA-1 (FIPS 180-4) of a buffer: the Hub names a regular (non-LFS) file by
 * its git blob id, sha1("blob <size>\0" + content), and an upload compares it
 * with the repo's to leave unchanged files out of a commit. */
#ifndef LFL_UTIL_SHA1_H
#define LFL_UTIL_SHA1_H

#include <stddef.h>

/* the digest of n bytes as 40 lowercase hex chars + NUL */
void lfl_sha1_hex(const void *data, size_t n, char out[41]);
/* git's blob id of content: sha1 of "blob <n>\0" followed by the bytes */
void lfl_git_blob_id(const void *data, size_t n, char out[41]);

#endif
