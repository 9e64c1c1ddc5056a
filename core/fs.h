/* File-system work for the library and the Lua side (lfl.fs), in plain POSIX C
 * so no caller ever builds a shell command: folders (mkdir -p, list, remove a
 * tree), whole-file read, atomic write and copy, stat, a recursive walk that
 * follows links like `find -L`, isatty and a "can I write here" probe. Names
 * are bytes: spaces, quotes, `$(...)`, newlines and UTF-8 need no care.
 * Errors name the path and give strerror. */
#ifndef LFL_FS_H
#define LFL_FS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"

/* A sorted list of names (strcmp order); free with lfl_fs_names_free. */
typedef struct {
    char **items;
    size_t n, cap;
} lfl_fs_names;
void lfl_fs_names_free(lfl_fs_names *names);

typedef enum {
    LFL_FS_NONE = 0, /* nothing there */
    LFL_FS_FILE,
    LFL_FS_DIR,
    LFL_FS_LINK, /* only when not following links */
    LFL_FS_OTHER,
} lfl_fs_kind;

typedef struct {
    lfl_fs_kind kind;
    int64_t size;  /* bytes */
    int64_t mtime; /* seconds since the epoch */
    unsigned mode; /* permission bits */
} lfl_fs_info;

/* mkdir -p with mode 0777 & ~umask; fine when the folder exists, an error when
 * the path or one of its parents is something else than a folder. */
lfl_status lfl_fs_mkdir(const char *path);

/* The names in a folder, sorted, without "." and "..". */
lfl_status lfl_fs_list(const char *dir, lfl_fs_names *out);

/* Removes a file, a link or a whole tree. Links are unlinked, never followed,
 * so nothing outside the tree is touched. An absent path is not an error;
 * *removed (may be NULL) says whether something was there. Refuses "/" and
 * paths ending in "." or "..". */
lfl_status lfl_fs_remove(const char *path, bool *removed);

/* Writes the file atomically: a uniquely named temporary file in the same
 * folder, all bytes written and fsync'ed, renamed over the target, the folder
 * fsync'ed. On any error the temporary file is removed and the old target is
 * left as it was. An existing target's permission bits are kept; a link at
 * path is replaced by the file, not written through. */
lfl_status lfl_fs_write(const char *path, const void *data, size_t n);

/* The same, for a file written in pieces (a GGUF export too big to build in
 * memory): begin opens the temporary file, append adds bytes, commit puts it in
 * place as lfl_fs_write does, abort removes it. A failed append or commit has
 * already removed it; abort after either (or twice) does nothing. */
typedef struct {
    int fd;
    char *tmp, *path;
} lfl_fs_atomic;
lfl_status lfl_fs_atomic_begin(const char *path, lfl_fs_atomic *a);
lfl_status lfl_fs_atomic_append(lfl_fs_atomic *a, const void *data, size_t n);
lfl_status lfl_fs_atomic_commit(lfl_fs_atomic *a);
void lfl_fs_atomic_abort(lfl_fs_atomic *a);

/* The whole file in a malloc'ed buffer (NUL-terminated, *n bytes without it). */
lfl_status lfl_fs_read(const char *path, char **data, size_t *n);

/* What is at path (kind NONE and LFL_OK when nothing is). follow_links = false
 * reports a link as LFL_FS_LINK; true reports what it points to (a dangling
 * link is NONE). */
lfl_status lfl_fs_stat(const char *path, bool follow_links, lfl_fs_info *out);

/* Copies a regular file's content and permission bits atomically (as
 * lfl_fs_write). When dst is an existing folder the copy goes into it under
 * src's base name, as cp does. */
lfl_status lfl_fs_copy(const char *src, const char *dst);

/* The regular files under dir, as paths relative to it ("a/b.txt"), sorted.
 * Links are followed as `find -L` does; a link back to a folder being walked
 * (a loop) and dangling links are skipped. */
lfl_status lfl_fs_walk(const char *dir, lfl_fs_names *out);

/* Makes path a symbolic link holding target (as given: relative targets are
 * resolved from the link's folder when used). */
lfl_status lfl_fs_symlink(const char *target, const char *path);

bool lfl_fs_isatty(int fd);

/* mkdir -p, then creates, writes and deletes a probe file, so a run learns
 * before its work that it cannot save. Errors read "<label> '<path>': <why>",
 * e.g. "output_dir '/root/x': Permission denied" (label NULL -> "folder"). */
lfl_status lfl_fs_writable_dir(const char *path, const char *label);

#endif
