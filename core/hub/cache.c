/* The huggingface_hub cache on disk: environment (HF_HOME, HF_HUB_CACHE,
 * HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE), repo folders, refs, snapshot
 * symlinks into blobs/, .no_exist markers and the flock-based blob locks. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "internal.h"

static volatile sig_atomic_t cancel_flag;

bool hub_fmt(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    return len >= 0 && (size_t)len < n;
}

void lfl_hub_cancel(void) { cancel_flag = 1; }
bool hub_cancelled(void) { return cancel_flag != 0; }
void hub_reset_cancel(void) { cancel_flag = 0; }

void lfl_hub_opts_init(lfl_hub_opts *o)
{
    memset(o, 0, sizeof *o);
    o->offline = -1;
    o->progress = -1;
    o->retries = -1;
}

static bool env_true(const char *name)
{
    const char *v = getenv(name);
    if (!v) return false;
    return strcasecmp(v, "1") == 0 || strcasecmp(v, "on") == 0 || strcasecmp(v, "yes") == 0 ||
           strcasecmp(v, "true") == 0;
}

static long env_long(const char *name, long def)
{
    const char *v = getenv(name);
    if (!v || !*v) return def;
    char *end;
    double x = strtod(v, &end);
    return (*end || x < 0) ? def : (long)(x + 0.5);
}

/* ~ at the start of an env value means $HOME, as Python's expanduser */
static void expand_home(const char *v, char *out, size_t n)
{
    const char *home = getenv("HOME");
    if (v[0] == '~' && (v[1] == '/' || v[1] == 0) && home) snprintf(out, n, "%s%s", home, v + 1);
    else snprintf(out, n, "%s", v);
}

static void hf_home(char *out, size_t n)
{
    const char *v = getenv("HF_HOME");
    if (v && *v) { expand_home(v, out, n); return; }
    char xdg[HUB_PATH];
    v = getenv("XDG_CACHE_HOME");
    if (v && *v) expand_home(v, xdg, sizeof xdg);
    else expand_home("~/.cache", xdg, sizeof xdg);
    (void)!HUB_FMT(out, n, "%s/huggingface", xdg);
}

lfl_status lfl_hub_cache_dir(const lfl_hub_opts *o, char *buf, size_t n)
{
    const char *v = o && o->cache_dir && *o->cache_dir ? o->cache_dir : getenv("HF_HUB_CACHE");
    if (!v || !*v) v = getenv("HUGGINGFACE_HUB_CACHE");
    if (v && *v) {
        expand_home(v, buf, n);
    } else {
        char home[HUB_PATH];
        hf_home(home, sizeof home);
        if ((size_t)snprintf(buf, n, "%s/hub", home) >= n) return lfl_fail(LFL_ERR_ARG, "hub: cache path too long");
    }
    size_t len = strlen(buf);
    while (len > 1 && buf[len - 1] == '/') buf[--len] = 0;
    return LFL_OK;
}

static void read_token(char *out, size_t n)
{
    out[0] = 0;
    const char *v = getenv("HF_TOKEN");
    if (!v || !*v) v = getenv("HUGGING_FACE_HUB_TOKEN");
    if (v && *v) {
        snprintf(out, n, "%s", v);
    } else {
        char path[HUB_PATH], home[HUB_PATH];
        const char *tp = getenv("HF_TOKEN_PATH");
        if (tp && *tp) {
            expand_home(tp, path, sizeof path);
        } else {
            hf_home(home, sizeof home);
            (void)!HUB_FMT(path, sizeof path, "%s/token", home);
        }
        char *t = hub_read_small(path);
        if (t) { snprintf(out, n, "%s", t); free(t); }
    }
    /* trim whitespace: token files often end with a newline */
    size_t len = strlen(out), s = 0;
    while (len && isspace((unsigned char)out[len - 1])) out[--len] = 0;
    while (out[s] && isspace((unsigned char)out[s])) s++;
    if (s) memmove(out, out + s, strlen(out + s) + 1);
}

/* huggingface_hub's validate_repo_id: [org/]name of word chars, '-' and '.',
 * starting and ending with a word char, no '--' or '..', at most 96 chars a part */
static bool valid_repo_id(const char *id)
{
    int parts = 0;
    const char *p = id;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0 || len > 96) return false;
        for (size_t i = 0; i < len; i++) {
            char ch = p[i];
            if (!(isalnum((unsigned char)ch) || ch == '_' || ch == '-' || ch == '.')) return false;
            if (i && (ch == '-' || ch == '.') && p[i - 1] == ch) return false;
        }
        char first = p[0], last = p[len - 1];
        if (!(isalnum((unsigned char)first) || first == '_')) return false;
        if (!(isalnum((unsigned char)last) || last == '_')) return false;
        parts++;
        if (!e) break;
        p = e + 1;
        if (!*p) return false;
    }
    return parts >= 1 && parts <= 2;
}

lfl_status hub_ctx_init(hub_ctx *c, const char *repo_id, const lfl_hub_opts *o)
{
    lfl_hub_opts def;
    if (!o) { lfl_hub_opts_init(&def); o = &def; }
    memset(c, 0, sizeof *c);
    if (!repo_id || !valid_repo_id(repo_id))
        return lfl_fail(LFL_ERR_ARG, "hub: '%s' is not a valid repo id (expected 'org/name' or 'name' of "
                        "letters, digits, '-', '_', '.')", repo_id ? repo_id : "(null)");
    snprintf(c->repo, sizeof c->repo, "%s", repo_id);
    switch (o->repo_type) {
    case LFL_HUB_MODEL: c->type_name = "model"; c->type_plural = "models"; c->url_prefix = ""; break;
    case LFL_HUB_DATASET: c->type_name = "dataset"; c->type_plural = "datasets"; c->url_prefix = "datasets/"; break;
    case LFL_HUB_SPACE: c->type_name = "space"; c->type_plural = "spaces"; c->url_prefix = "spaces/"; break;
    default: return lfl_fail(LFL_ERR_ARG, "hub: unknown repo type %d", (int)o->repo_type);
    }
    const char *ep = o->endpoint && *o->endpoint ? o->endpoint : getenv("HF_ENDPOINT");
    if (!ep || !*ep) ep = "https://huggingface.co";
    snprintf(c->endpoint, sizeof c->endpoint, "%s", ep);
    size_t len = strlen(c->endpoint);
    while (len && c->endpoint[len - 1] == '/') c->endpoint[--len] = 0;
    if (strncmp(c->endpoint, "http://", 7) != 0 && strncmp(c->endpoint, "https://", 8) != 0)
        return lfl_fail(LFL_ERR_ARG, "hub: endpoint '%s' must start with http:// or https://", c->endpoint);
    LFL_TRY(lfl_hub_cache_dir(o, c->cache, sizeof c->cache));
    if (o->no_token) c->token[0] = 0;
    else if (o->token) snprintf(c->token, sizeof c->token, "%s", o->token);
    else read_token(c->token, sizeof c->token);
    /* models--org--name: '/' becomes '--' */
    char *q = c->folder_name;
    q += snprintf(q, 32, "%s--", c->type_plural);
    for (const char *p = repo_id; *p; p++) {
        if (*p == '/') { *q++ = '-'; *q++ = '-'; } else *q++ = *p;
    }
    *q = 0;
    if ((size_t)snprintf(c->folder, sizeof c->folder, "%s/%s", c->cache, c->folder_name) >= sizeof c->folder)
        return lfl_fail(LFL_ERR_ARG, "hub: cache path too long");
    c->offline = o->offline < 0 ? (env_true("HF_HUB_OFFLINE") || env_true("TRANSFORMERS_OFFLINE")) : o->offline != 0;
    c->progress = o->progress < 0 ? isatty(2) != 0 : o->progress != 0;
    c->retries = o->retries >= 0 ? o->retries : (int)env_long("LFL_HUB_RETRIES", 5);
    c->max_workers = o->max_workers > 0 ? o->max_workers : 8;
    c->etag_timeout = env_long("HF_HUB_ETAG_TIMEOUT", 10);
    c->download_timeout = env_long("HF_HUB_DOWNLOAD_TIMEOUT", 10);
    if (c->etag_timeout < 1) c->etag_timeout = 1;
    if (c->download_timeout < 1) c->download_timeout = 1;
    return LFL_OK;
}

lfl_status lfl_hub_repo_folder(const char *repo_id, const lfl_hub_opts *o, char *buf, size_t n)
{
    hub_ctx c;
    LFL_TRY(hub_ctx_init(&c, repo_id, o));
    if ((size_t)snprintf(buf, n, "%s", c.folder) >= n) return lfl_fail(LFL_ERR_ARG, "hub: buffer too small");
    return LFL_OK;
}

bool hub_is_commit(const char *rev)
{
    if (!rev || strlen(rev) != 40) return false;
    for (int i = 0; i < 40; i++)
        if (!isxdigit((unsigned char)rev[i]) || isupper((unsigned char)rev[i])) return false;
    return true;
}

bool hub_safe_name(const char *s)
{
    if (!*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '.' || *s == '_' || *s == '-')) return false;
    return true;
}

bool hub_safe_relpath(const char *p)
{
    if (!*p || p[0] == '/') return false;
    const char *s = p;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 0 || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.')) return false;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)s[i] < 0x20 || s[i] == '\\') return false;
        if (!e) break;
        s = e + 1;
        if (!*s) return false;
    }
    return true;
}

lfl_status hub_mkdirs(const char *dir)
{
    char buf[HUB_PATH];
    if ((size_t)snprintf(buf, sizeof buf, "%s", dir) >= sizeof buf) return lfl_fail(LFL_ERR_IO, "hub: path too long: %s", dir);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == 0) {
            char save = *p;
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return lfl_fail(LFL_ERR_IO, "hub: cannot create folder %s: %s", buf, strerror(errno));
            *p = save;
            if (!save) break;
        }
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return lfl_fail(LFL_ERR_IO, "hub: %s is not a folder", dir);
    return LFL_OK;
}

lfl_status hub_mkdirs_for(const char *file)
{
    char buf[HUB_PATH];
    snprintf(buf, sizeof buf, "%s", file);
    char *slash = strrchr(buf, '/');
    if (!slash || slash == buf) return LFL_OK;
    *slash = 0;
    return hub_mkdirs(buf);
}

bool hub_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

int64_t hub_file_size(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return -1;
    return (int64_t)sb.st_size;
}

/* a name unique to this process and thread, for temp files next to a target */
static void tmp_name(const char *path, char *out, size_t n)
{
    snprintf(out, n, "%s.%ld.%ld.tmp", path, (long)getpid(), (long)syscall(SYS_gettid));
}

lfl_status hub_write_atomic(const char *path, const char *data, size_t n)
{
    char tmp[HUB_PATH + 64];
    LFL_TRY(hub_mkdirs_for(path));
    tmp_name(path, tmp, sizeof tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) return lfl_fail(LFL_ERR_IO, "hub: cannot write %s: %s", tmp, strerror(errno));
    ssize_t w = n ? write(fd, data, n) : 0;
    bool ok = w == (ssize_t)n && close(fd) == 0;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return lfl_fail(LFL_ERR_IO, "hub: cannot write %s: %s", path, strerror(e));
    }
    return LFL_OK;
}

char *hub_read_small(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(4097);
    size_t n = buf ? fread(buf, 1, 4096, f) : 0;
    fclose(f);
    if (!buf) return NULL;
    buf[n] = 0;
    while (n && isspace((unsigned char)buf[n - 1])) buf[--n] = 0;
    return buf;
}

bool hub_resolve_ref(const hub_ctx *c, const char *rev, char commit[64])
{
    char path[HUB_PATH + 600];
    snprintf(path, sizeof path, "%s/refs/%s", c->folder, rev);
    char *s = hub_safe_relpath(rev) ? hub_read_small(path) : NULL;
    if (s && hub_is_commit(s)) {
        snprintf(commit, 64, "%s", s);
        free(s);
        return true;
    }
    free(s);
    if (hub_is_commit(rev)) { snprintf(commit, 64, "%s", rev); return true; }
    return false;
}

lfl_status hub_write_ref(const hub_ctx *c, const char *rev, const char *commit)
{
    if (strcmp(rev, commit) == 0) return LFL_OK;
    if (!hub_safe_relpath(rev)) return lfl_fail(LFL_ERR_ARG, "hub: revision '%s' cannot name a ref file", rev);
    char path[HUB_PATH + 600];
    snprintf(path, sizeof path, "%s/refs/%s", c->folder, rev);
    char *cur = hub_read_small(path);
    bool same = cur && strcmp(cur, commit) == 0;
    free(cur);
    if (same) return LFL_OK;
    /* Python writes the sha with no newline; so do we */
    return hub_write_atomic(path, commit, strlen(commit));
}

lfl_status hub_link_pointer(const hub_ctx *c, const char *commit, const char *file, const char *etag)
{
    char ptr[HUB_PATH + 600], target[HUB_PATH], tmp[HUB_PATH + 700], blob[HUB_PATH];
    snprintf(ptr, sizeof ptr, "%s/snapshots/%s/%s", c->folder, commit, file);
    (void)!HUB_FMT(blob, sizeof blob, "%s/blobs/%s", c->folder, etag);
    /* relative like Python's os.path.relpath: up from snapshots/<commit>/<dirs...> */
    size_t pos = 0;
    int depth = 2;
    for (const char *p = file; *p; p++) depth += *p == '/';
    for (int i = 0; i < depth; i++) pos += (size_t)snprintf(target + pos, sizeof target - pos, "../");
    snprintf(target + pos, sizeof target - pos, "blobs/%s", etag);
    LFL_TRY(hub_mkdirs_for(ptr));
    char cur[HUB_PATH];
    ssize_t n = readlink(ptr, cur, sizeof cur - 1);
    if (n > 0) {
        cur[n] = 0;
        if (strcmp(cur, target) == 0) return LFL_OK;
    }
    tmp_name(ptr, tmp, sizeof tmp);
    unlink(tmp);
    if (symlink(target, tmp) == 0) {
        if (rename(tmp, ptr) == 0) return LFL_OK;
        int e = errno;
        unlink(tmp);
        return lfl_fail(LFL_ERR_IO, "hub: cannot create %s: %s", ptr, strerror(e));
    }
    /* no symlinks on this file system: a hard link, else a copy (Python copies) */
    if (link(blob, tmp) != 0) LFL_TRY(hub_copy_file(blob, tmp));
    if (rename(tmp, ptr) != 0) {
        int e = errno;
        unlink(tmp);
        return lfl_fail(LFL_ERR_IO, "hub: cannot create %s: %s", ptr, strerror(e));
    }
    return LFL_OK;
}

lfl_status hub_mark_no_exist(const hub_ctx *c, const char *commit, const char *file)
{
    if (!hub_is_commit(commit) || !hub_safe_relpath(file)) return LFL_OK;
    char path[HUB_PATH + 600];
    snprintf(path, sizeof path, "%s/.no_exist/%s/%s", c->folder, commit, file);
    if (hub_exists(path)) return LFL_OK;
    return hub_write_atomic(path, "", 0);
}

lfl_status hub_lock(const hub_ctx *c, const char *etag, int *fd_out)
{
    char path[HUB_PATH + 800];
    snprintf(path, sizeof path, "%s/.locks/%s/%s.lock", c->cache, c->folder_name, etag);
    LFL_TRY(hub_mkdirs_for(path));
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return lfl_fail(LFL_ERR_IO, "hub: cannot open lock %s: %s", path, strerror(errno));
    /* poll with LOCK_NB so a Ctrl-C or a failed sibling can stop the wait */
    double t0 = hub_now();
    bool told = false;
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) break;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            int e = errno;
            close(fd);
            return lfl_fail(LFL_ERR_IO, "hub: cannot lock %s: %s", path, strerror(e));
        }
        if (hub_cancelled() || (c->abort_flag && *c->abort_flag)) {
            close(fd);
            return lfl_fail(LFL_ERR_IO, "hub: interrupted while waiting for the lock %s", path);
        }
        if (!told && c->progress && hub_now() - t0 > 2) {
            fprintf(stderr, "\r\033[Khub: waiting for another process downloading %s/blobs/%s\n", c->folder_name, etag);
            told = true;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    *fd_out = fd;
    return LFL_OK;
}

void hub_unlock(int fd)
{
    if (fd < 0) return;
    flock(fd, LOCK_UN);
    close(fd);
}

lfl_status hub_copy_file(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return lfl_fail(LFL_ERR_IO, "hub: cannot read %s: %s", src, strerror(errno));
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (out < 0) {
        int e = errno;
        close(in);
        return lfl_fail(LFL_ERR_IO, "hub: cannot write %s: %s", dst, strerror(e));
    }
    char *buf = malloc(1 << 20);
    bool ok = buf != NULL;
    while (ok) {
        ssize_t n = read(in, buf, 1 << 20);
        if (n == 0) break;
        if (n < 0) { if (errno == EINTR) continue; ok = false; break; }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0) { if (errno == EINTR) continue; ok = false; break; }
            off += w;
        }
    }
    int e = errno;
    free(buf);
    close(in);
    if (close(out) != 0) ok = false;
    if (!ok) {
        unlink(dst);
        return lfl_fail(LFL_ERR_IO, "hub: copying %s to %s failed: %s", src, dst, strerror(e));
    }
    return LFL_OK;
}
