/* File-system work in POSIX C (see fs.h): no shell, so any bytes in a name
 * are just bytes. Writes go through a temporary file and a rename, so a
 * reader or a crash never sees half a file. */
#define _GNU_SOURCE
#include "fs.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static atomic_ulong tmp_counter;

/* ---- name lists ---- */

void lfl_fs_names_free(lfl_fs_names *names)
{
    for (size_t i = 0; i < names->n; i++) free(names->items[i]);
    free(names->items);
    names->items = NULL;
    names->n = names->cap = 0;
}

static lfl_status names_push(lfl_fs_names *names, const char *s)
{
    if (names->n == names->cap) {
        size_t cap = names->cap ? names->cap * 2 : 16;
        char **items = realloc(names->items, cap * sizeof *items);
        if (!items) return lfl_fail(LFL_ERR_MEM, "fs: out of memory");
        names->items = items;
        names->cap = cap;
    }
    char *copy = strdup(s);
    if (!copy) return lfl_fail(LFL_ERR_MEM, "fs: out of memory");
    names->items[names->n++] = copy;
    return LFL_OK;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_sort(lfl_fs_names *names)
{
    if (names->n > 1) qsort(names->items, names->n, sizeof *names->items, cmp_names);
}

/* "a" + "/" + "b" in a new buffer (NULL when out of memory) */
static char *join(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 2);
    if (!s) return NULL;
    memcpy(s, a, na);
    size_t k = na;
    if (na && a[na - 1] != '/') s[k++] = '/';
    memcpy(s + k, b, nb + 1);
    return s;
}

/* the names in an open directory stream, without "." and "..", unsorted */
static lfl_status read_names(DIR *d, const char *shown, const char *what, lfl_fs_names *out)
{
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if (errno) return lfl_fail(LFL_ERR_IO, "%s '%s': %s", what, shown, strerror(errno));
            return LFL_OK;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        LFL_TRY(names_push(out, e->d_name));
    }
}

/* ---- mkdir -p ---- */

/* Creates every missing folder of path; messages start with `prefix`. */
static lfl_status mkdir_p(const char *path, const char *prefix)
{
    size_t n = strlen(path);
    if (n == 0) return lfl_fail(LFL_ERR_ARG, "%s: empty path", prefix);
    char *buf = malloc(n + 1);
    if (!buf) return lfl_fail(LFL_ERR_MEM, "%s: out of memory", prefix);
    memcpy(buf, path, n + 1);
    while (n > 1 && buf[n - 1] == '/') buf[--n] = 0;
    lfl_status st = LFL_OK;
    size_t i = 0;
    while (buf[i] == '/') i++;
    if (!buf[i]) { /* "/" */
        free(buf);
        return LFL_OK;
    }
    while (st == LFL_OK) {
        while (buf[i] && buf[i] != '/') i++;
        char saved = buf[i];
        buf[i] = 0;
        bool whole = saved == 0;
        struct stat sb;
        if (stat(buf, &sb) == 0) {
            if (!S_ISDIR(sb.st_mode)) {
                st = whole ? lfl_fail(LFL_ERR_IO, "%s: exists and is not a directory", prefix)
                           : lfl_fail(LFL_ERR_IO, "%s: '%s' is not a directory", prefix, buf);
            }
        } else if (mkdir(buf, 0777) != 0) {
            int err = errno;
            /* another process may have made it between stat and mkdir */
            if (!(err == EEXIST && stat(buf, &sb) == 0 && S_ISDIR(sb.st_mode))) {
                st = whole ? lfl_fail(LFL_ERR_IO, "%s: %s", prefix, strerror(err))
                           : lfl_fail(LFL_ERR_IO, "%s: cannot create '%s': %s", prefix, buf, strerror(err));
            }
        }
        if (whole) break;
        buf[i] = saved;
        while (buf[i] == '/') i++;
        if (!buf[i]) break;
    }
    free(buf);
    return st;
}

lfl_status lfl_fs_mkdir(const char *path)
{
    char prefix[1024];
    snprintf(prefix, sizeof prefix, "mkdir '%s'", path);
    return mkdir_p(path, prefix);
}

/* ---- list ---- */

lfl_status lfl_fs_list(const char *dir, lfl_fs_names *out)
{
    *out = (lfl_fs_names){0};
    DIR *d = opendir(dir);
    if (!d) return lfl_fail(LFL_ERR_IO, "list '%s': %s", dir, strerror(errno));
    lfl_status st = read_names(d, dir, "list", out);
    closedir(d);
    if (st != LFL_OK) lfl_fs_names_free(out);
    else names_sort(out);
    return st;
}

/* ---- remove ---- */

/* Removes the entry `name` of the folder open as pfd; shown is its full path
 * for messages. Folders are opened with O_NOFOLLOW relative to their parent,
 * so a link (even one swapped in while we work) is unlinked, never entered. */
static lfl_status remove_at(int pfd, const char *name, const char *shown)
{
    struct stat sb;
    if (fstatat(pfd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return LFL_OK;
        return lfl_fail(LFL_ERR_IO, "remove '%s': %s", shown, strerror(errno));
    }
    if (!S_ISDIR(sb.st_mode)) {
        if (unlinkat(pfd, name, 0) != 0 && errno != ENOENT)
            return lfl_fail(LFL_ERR_IO, "remove '%s': %s", shown, strerror(errno));
        return LFL_OK;
    }
    int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOTDIR || errno == ELOOP) { /* replaced by a file or a link meanwhile */
            if (unlinkat(pfd, name, 0) != 0 && errno != ENOENT)
                return lfl_fail(LFL_ERR_IO, "remove '%s': %s", shown, strerror(errno));
            return LFL_OK;
        }
        if (errno == ENOENT) return LFL_OK;
        return lfl_fail(LFL_ERR_IO, "remove '%s': %s", shown, strerror(errno));
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        int err = errno;
        close(fd);
        return lfl_fail(LFL_ERR_IO, "remove '%s': %s", shown, strerror(err));
    }
    /* names first, then removal: readdir over a changing folder may skip entries */
    lfl_fs_names names = {0};
    lfl_status st = read_names(d, shown, "remove", &names);
    for (size_t i = 0; st == LFL_OK && i < names.n; i++) {
        char *child = join(shown, names.items[i]);
        if (!child) { st = lfl_fail(LFL_ERR_MEM, "remove '%s': out of memory", shown); break; }
        st = remove_at(dirfd(d), names.items[i], child);
        free(child);
    }
    lfl_fs_names_free(&names);
    closedir(d);
    if (st == LFL_OK && unlinkat(pfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
        st = lfl_fail(LFL_ERR_IO, "remove '%s': %s", shown, strerror(errno));
    return st;
}

lfl_status lfl_fs_remove(const char *path, bool *removed)
{
    if (removed) *removed = false;
    size_t n = strlen(path);
    if (n == 0) return lfl_fail(LFL_ERR_ARG, "remove: empty path");
    while (n > 1 && path[n - 1] == '/') n--;
    if (n == 1 && path[0] == '/') return lfl_fail(LFL_ERR_ARG, "remove '%s': refusing to remove the root folder", path);
    size_t b = n;
    while (b > 0 && path[b - 1] != '/') b--;
    if ((n - b == 1 && path[b] == '.') || (n - b == 2 && path[b] == '.' && path[b + 1] == '.'))
        return lfl_fail(LFL_ERR_ARG, "remove '%s': refusing to remove '.' or '..'", path);
    /* without its trailing slashes: the kernel resolves "link/" to the folder
     * the link points to, and we remove the link, not what it points to */
    char *clean = strndup(path, n);
    if (!clean) return lfl_fail(LFL_ERR_MEM, "remove '%s': out of memory", path);
    struct stat sb;
    if (lstat(clean, &sb) != 0) {
        int err = errno;
        free(clean);
        if (err == ENOENT || err == ENOTDIR) return LFL_OK;
        return lfl_fail(LFL_ERR_IO, "remove '%s': %s", path, strerror(err));
    }
    lfl_status st = remove_at(AT_FDCWD, clean, path);
    free(clean);
    if (st == LFL_OK && removed) *removed = true;
    return st;
}

/* ---- atomic write machinery ---- */

static lfl_status write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return LFL_ERR_IO;
        }
        p += w;
        n -= (size_t)w;
    }
    return LFL_OK;
}

/* the folder part of path ("." when it has none) in a new buffer */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* Opens a new, uniquely named file next to path: "<dir>/.<base>.tmp-<pid>-<n>".
 * keep_mode < 0: 0666 & ~umask; otherwise exactly those permission bits. */
static lfl_status tmp_open(const char *path, int keep_mode, const char *what, char **tmp_out, int *fd_out)
{
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = path + dlen;
    size_t blen = strlen(base);
    if (blen > 200) blen = 200; /* room for the suffix within NAME_MAX */
    size_t cap = dlen + blen + 64;
    char *tmp = malloc(cap);
    if (!tmp) return lfl_fail(LFL_ERR_MEM, "%s '%s': out of memory", what, path);
    for (int tries = 0; tries < 1000; tries++) {
        unsigned long k = atomic_fetch_add(&tmp_counter, 1);
        snprintf(tmp, cap, "%.*s.%.*s.tmp-%ld-%lu", (int)dlen, path, (int)blen, base, (long)getpid(), k);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0) {
            if (errno == EEXIST) continue;
            int err = errno;
            free(tmp);
            return lfl_fail(LFL_ERR_IO, "%s '%s': %s", what, path, strerror(err));
        }
        if (keep_mode >= 0 && fchmod(fd, (mode_t)keep_mode) != 0) {
            int err = errno;
            close(fd);
            unlink(tmp);
            free(tmp);
            return lfl_fail(LFL_ERR_IO, "%s '%s': %s", what, path, strerror(err));
        }
        *tmp_out = tmp;
        *fd_out = fd;
        return LFL_OK;
    }
    free(tmp);
    return lfl_fail(LFL_ERR_IO, "%s '%s': no free temporary name", what, path);
}

/* Gives up a temporary file: closes it (fd >= 0), removes it, and fails with
 * errno err. */
static lfl_status tmp_abort(int fd, char *tmp, const char *what, const char *path, int err)
{
    if (fd >= 0) close(fd);
    unlink(tmp);
    free(tmp);
    return lfl_fail(LFL_ERR_IO, "%s '%s': %s", what, path, strerror(err));
}

/* fsync, close, rename over path, fsync the folder (so the rename survives a
 * power cut). Always consumes fd and tmp. */
static lfl_status tmp_commit(int fd, char *tmp, const char *what, const char *path)
{
    if (fsync(fd) != 0) return tmp_abort(fd, tmp, what, path, errno);
    if (close(fd) != 0) return tmp_abort(-1, tmp, what, path, errno);
    if (rename(tmp, path) != 0) return tmp_abort(-1, tmp, what, path, errno);
    free(tmp);
    char *dir = dir_of(path);
    if (!dir) return lfl_fail(LFL_ERR_MEM, "%s '%s': out of memory", what, path);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    /* a folder we may write but not read cannot be synced; the file is in place */
    if (dfd < 0) return LFL_OK;
    int bad = fsync(dfd) != 0 && errno != EINVAL ? errno : 0;
    close(dfd);
    if (bad) return lfl_fail(LFL_ERR_IO, "%s '%s': syncing its folder: %s", what, path, strerror(bad));
    return LFL_OK;
}

lfl_status lfl_fs_write(const char *path, const void *data, size_t n)
{
    if (!*path) return lfl_fail(LFL_ERR_ARG, "write: empty path");
    struct stat sb;
    int keep = stat(path, &sb) == 0 && S_ISREG(sb.st_mode) ? (int)(sb.st_mode & 07777) : -1;
    char *tmp;
    int fd;
    LFL_TRY(tmp_open(path, keep, "write", &tmp, &fd));
    if (write_all(fd, data, n) != LFL_OK) return tmp_abort(fd, tmp, "write", path, errno);
    return tmp_commit(fd, tmp, "write", path);
}

lfl_status lfl_fs_atomic_begin(const char *path, lfl_fs_atomic *a)
{
    a->fd = -1;
    a->tmp = a->path = NULL;
    if (!*path) return lfl_fail(LFL_ERR_ARG, "write: empty path");
    struct stat sb;
    int keep = stat(path, &sb) == 0 && S_ISREG(sb.st_mode) ? (int)(sb.st_mode & 07777) : -1;
    a->path = strdup(path);
    if (!a->path) return lfl_fail(LFL_ERR_MEM, "write '%s': out of memory", path);
    lfl_status st = tmp_open(path, keep, "write", &a->tmp, &a->fd);
    if (st) { free(a->path); a->path = NULL; a->fd = -1; }
    return st;
}

lfl_status lfl_fs_atomic_append(lfl_fs_atomic *a, const void *data, size_t n)
{
    if (a->fd < 0) return lfl_fail(LFL_ERR_ARG, "write: the file is not open (an earlier write failed)");
    if (write_all(a->fd, data, n) == LFL_OK) return LFL_OK;
    lfl_status st = tmp_abort(a->fd, a->tmp, "write", a->path, errno);
    free(a->path);
    a->fd = -1;
    a->tmp = a->path = NULL;
    return st;
}

lfl_status lfl_fs_atomic_commit(lfl_fs_atomic *a)
{
    if (a->fd < 0) return lfl_fail(LFL_ERR_ARG, "write: the file is not open (an earlier write failed)");
    lfl_status st = tmp_commit(a->fd, a->tmp, "write", a->path);
    free(a->path);
    a->fd = -1;
    a->tmp = a->path = NULL;
    return st;
}

void lfl_fs_atomic_abort(lfl_fs_atomic *a)
{
    if (a->fd < 0) return;
    close(a->fd);
    unlink(a->tmp);
    free(a->tmp);
    free(a->path);
    a->fd = -1;
    a->tmp = a->path = NULL;
}

/* ---- read ---- */

lfl_status lfl_fs_read(const char *path, char **data, size_t *n)
{
    *data = NULL;
    *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return lfl_fail(LFL_ERR_IO, "read '%s': %s", path, strerror(errno));
    struct stat sb;
    int bad = fstat(fd, &sb) != 0 ? errno : S_ISDIR(sb.st_mode) ? EISDIR : 0;
    if (bad) {
        close(fd);
        return lfl_fail(LFL_ERR_IO, "read '%s': %s", path, strerror(bad));
    }
    /* the size is a hint: /proc files say 0, a growing file says too little */
    size_t cap = sb.st_size > 0 ? (size_t)sb.st_size + 1 : 4096, len = 0;
    char *buf = malloc(cap);
    int err = buf ? 0 : ENOMEM;
    while (!err) {
        if (len + 1 >= cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) { err = ENOMEM; break; }
            buf = bigger;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r < 0 && errno != EINTR) err = errno;
        if (r == 0) break;
        if (r > 0) len += (size_t)r;
    }
    if (err) {
        free(buf);
        close(fd);
        return lfl_fail(err == ENOMEM ? LFL_ERR_MEM : LFL_ERR_IO, "read '%s': %s", path, strerror(err));
    }
    close(fd);
    buf[len] = 0;
    *data = buf;
    *n = len;
    return LFL_OK;
}

/* ---- stat ---- */

lfl_status lfl_fs_stat(const char *path, bool follow_links, lfl_fs_info *out)
{
    *out = (lfl_fs_info){0};
    struct stat sb;
    if ((follow_links ? stat(path, &sb) : lstat(path, &sb)) != 0) {
        /* ELOOP: a link cycle, as absent as a dangling link */
        if (errno == ENOENT || errno == ENOTDIR || (follow_links && errno == ELOOP)) return LFL_OK;
        return lfl_fail(LFL_ERR_IO, "stat '%s': %s", path, strerror(errno));
    }
    out->kind = S_ISREG(sb.st_mode) ? LFL_FS_FILE : S_ISDIR(sb.st_mode) ? LFL_FS_DIR
              : S_ISLNK(sb.st_mode) ? LFL_FS_LINK : LFL_FS_OTHER;
    out->size = (int64_t)sb.st_size;
    out->mtime = (int64_t)sb.st_mtime;
    out->mode = (unsigned)(sb.st_mode & 07777);
    return LFL_OK;
}

/* ---- copy ---- */

lfl_status lfl_fs_copy(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return lfl_fail(LFL_ERR_IO, "copy '%s': %s", src, strerror(errno));
    struct stat sb;
    if (fstat(in, &sb) != 0) {
        int err = errno;
        close(in);
        return lfl_fail(LFL_ERR_IO, "copy '%s': %s", src, strerror(err));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(in);
        return lfl_fail(LFL_ERR_IO, "copy '%s': not a regular file", src);
    }
    char *target = NULL;
    struct stat db;
    if (stat(dst, &db) == 0 && S_ISDIR(db.st_mode)) {
        const char *slash = strrchr(src, '/');
        target = join(dst, slash ? slash + 1 : src);
    } else {
        target = strdup(dst);
    }
    if (!target) {
        close(in);
        return lfl_fail(LFL_ERR_MEM, "copy '%s': out of memory", src);
    }
    char *tmp;
    int out;
    lfl_status st = tmp_open(target, (int)(sb.st_mode & 07777), "copy to", &tmp, &out);
    if (st != LFL_OK) {
        close(in);
        free(target);
        return st;
    }
    enum { CHUNK = 1 << 20 };
    char *buf = malloc(CHUNK);
    if (!buf) {
        close(in);
        st = tmp_abort(out, tmp, "copy to", target, ENOMEM);
        free(target);
        return st;
    }
    for (;;) {
        ssize_t r = read(in, buf, CHUNK);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int err = errno;
            tmp_abort(out, tmp, "copy to", target, err);
            st = lfl_fail(LFL_ERR_IO, "copy '%s': %s", src, strerror(err));
            out = -1;
            break;
        }
        if (r == 0) break;
        if (write_all(out, buf, (size_t)r) != LFL_OK) {
            st = tmp_abort(out, tmp, "copy to", target, errno);
            out = -1;
            break;
        }
    }
    free(buf);
    close(in);
    if (out >= 0) st = tmp_commit(out, tmp, "copy to", target);
    free(target);
    return st;
}

/* ---- walk ---- */

typedef struct {
    dev_t dev;
    ino_t ino;
} dir_id;

typedef struct {
    dir_id *ids; /* the folders from the root down to the one being read */
    size_t depth, cap;
    lfl_fs_names *out;
    const char *root;
} walker;

static lfl_status walk_dir(walker *w, const char *full, const char *rel)
{
    DIR *d = opendir(full);
    if (!d) return lfl_fail(LFL_ERR_IO, "walk '%s': %s", full, strerror(errno));
    lfl_fs_names names = {0};
    lfl_status st = read_names(d, full, "walk", &names);
    closedir(d); /* closed before descending: depth costs no file descriptors */
    for (size_t i = 0; st == LFL_OK && i < names.n; i++) {
        char *cfull = join(full, names.items[i]);
        char *crel = rel ? join(rel, names.items[i]) : strdup(names.items[i]);
        if (!cfull || !crel) {
            free(cfull);
            free(crel);
            st = lfl_fail(LFL_ERR_MEM, "walk '%s': out of memory", w->root);
            break;
        }
        struct stat sb;
        if (stat(cfull, &sb) != 0) {
            /* a dangling link or a link cycle has no file behind it (find -L: type l) */
            if (errno != ENOENT && errno != ELOOP)
                st = lfl_fail(LFL_ERR_IO, "walk '%s': %s", cfull, strerror(errno));
        } else if (S_ISREG(sb.st_mode)) {
            st = names_push(w->out, crel);
        } else if (S_ISDIR(sb.st_mode)) {
            bool loop = false;
            for (size_t k = 0; k < w->depth && !loop; k++)
                loop = w->ids[k].dev == sb.st_dev && w->ids[k].ino == sb.st_ino;
            if (!loop) {
                if (w->depth == w->cap) {
                    size_t cap = w->cap * 2;
                    dir_id *ids = realloc(w->ids, cap * sizeof *ids);
                    if (!ids) st = lfl_fail(LFL_ERR_MEM, "walk '%s': out of memory", w->root);
                    else { w->ids = ids; w->cap = cap; }
                }
                if (st == LFL_OK) {
                    w->ids[w->depth++] = (dir_id){sb.st_dev, sb.st_ino};
                    st = walk_dir(w, cfull, crel);
                    w->depth--;
                }
            }
        }
        free(cfull);
        free(crel);
    }
    lfl_fs_names_free(&names);
    return st;
}

lfl_status lfl_fs_walk(const char *dir, lfl_fs_names *out)
{
    *out = (lfl_fs_names){0};
    struct stat sb;
    if (stat(dir, &sb) != 0) return lfl_fail(LFL_ERR_IO, "walk '%s': %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return lfl_fail(LFL_ERR_IO, "walk '%s': %s", dir, strerror(ENOTDIR));
    walker w = {.cap = 16, .out = out, .root = dir};
    w.ids = malloc(w.cap * sizeof *w.ids);
    if (!w.ids) return lfl_fail(LFL_ERR_MEM, "walk '%s': out of memory", dir);
    w.ids[w.depth++] = (dir_id){sb.st_dev, sb.st_ino};
    lfl_status st = walk_dir(&w, dir, NULL);
    free(w.ids);
    if (st != LFL_OK) lfl_fs_names_free(out);
    else names_sort(out);
    return st;
}

/* ---- links, terminals and probes ---- */

lfl_status lfl_fs_symlink(const char *target, const char *path)
{
    if (symlink(target, path) != 0)
        return lfl_fail(LFL_ERR_IO, "symlink '%s' -> '%s': %s", path, target, strerror(errno));
    return LFL_OK;
}


bool lfl_fs_isatty(int fd) { return isatty(fd) == 1; }

lfl_status lfl_fs_writable_dir(const char *path, const char *label)
{
    char prefix[1024];
    snprintf(prefix, sizeof prefix, "%s '%s'", label ? label : "folder", path);
    LFL_TRY(mkdir_p(path, prefix));
    char *probe = malloc(strlen(path) + 64);
    if (!probe) return lfl_fail(LFL_ERR_MEM, "%s: out of memory", prefix);
    unsigned long k = atomic_fetch_add(&tmp_counter, 1);
    sprintf(probe, "%s/.lfl-write-probe-%ld-%lu", path, (long)getpid(), k);
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int err = fd < 0 ? errno : 0;
    if (fd >= 0) {
        if (write_all(fd, "x", 1) != LFL_OK) err = errno;
        if (close(fd) != 0 && !err) err = errno;
        if (unlink(probe) != 0 && !err) err = errno;
    }
    free(probe);
    if (err) return lfl_fail(LFL_ERR_IO, "%s: %s", prefix, strerror(err));
    return LFL_OK;
}
