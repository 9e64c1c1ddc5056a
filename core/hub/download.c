/* hf_hub_download and snapshot_download in C: resolve a file's commit and
 * blob name with HEAD, fetch the blob under a per-blob flock into
 * blobs/<etag>.incomplete (Range resume, retries with backoff, size and sha256
 * checks), rename it into place, and link snapshots/<commit>/<file> to it.
 * Snapshots list the repo through the API and fetch files on a thread pool. */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "internal.h"

void hub_backoff(const hub_ctx *c, int attempt, double retry_after)
{
    const char *env = getenv("LFL_HUB_BACKOFF"); /* base seconds, 1 like huggingface_hub */
    double base = env && *env ? atof(env) : 1.0;
    double wait = base * (double)(1 << (attempt < 6 ? attempt : 6));
    if (wait > 8 * (base > 1 ? base : 1)) wait = 8 * (base > 1 ? base : 1);
    if (retry_after > 0) wait = retry_after > 30 ? 30 : retry_after;
    double end = hub_now() + wait;
    while (hub_now() < end && !hub_cancelled() && !(c->abort_flag && *c->abort_flag)) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static bool is_sha256_hex(const char *s)
{
    if (strlen(s) != 64) return false;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

static bool interrupted(const hub_ctx *c) { return hub_cancelled() || (c->abort_flag && *c->abort_flag); }

/* blob files get the mode a new file would get under the umask (Python does the same) */
static void chmod_umask(const char *path)
{
    mode_t um = umask(0);
    umask(um);
    chmod(path, 0666 & ~um);
}

/* Fetches `url` into blobs/<etag> (the caller holds the blob lock). */
static lfl_status fetch_blob(const hub_ctx *c, void *curl, const char *file, const char *rev,
                             const hub_resp *meta, bool force, hub_progress *prog)
{
    char blob[HUB_PATH + 200], inc[HUB_PATH + 220];
    snprintf(blob, sizeof blob, "%s/blobs/%s", c->folder, meta->etag);
    snprintf(inc, sizeof inc, "%s.incomplete", blob);
    LFL_TRY(hub_mkdirs_for(blob));
    if (force) unlink(inc);
    const int64_t expected = meta->size;
    const bool verify = is_sha256_hex(meta->etag);
    int attempt = 0;
    bool scratch_retry = false, total_added = false;
    int64_t counted = 0; /* bytes of this file counted in the progress bar */
    for (;;) {
        if (interrupted(c)) return lfl_fail(LFL_ERR_NET, "hub: interrupted (partial download kept in %s)", inc);
        int fd = open(inc, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0) return lfl_fail(LFL_ERR_IO, "hub: cannot write %s: %s", inc, strerror(errno));
        int64_t have = lseek(fd, 0, SEEK_END);
        if (have < 0 || (expected >= 0 && have > expected)) {
            if (ftruncate(fd, 0) != 0) { close(fd); return lfl_fail(LFL_ERR_IO, "hub: cannot truncate %s", inc); }
            lseek(fd, 0, SEEK_SET);
            have = 0;
        }
        lfl_sha256 sha;
        lfl_sha256_init(&sha);
        if (verify && have > 0) {
            FILE *f = fopen(inc, "rb");
            lfl_status st = f ? lfl_sha256_fd_prefix(&sha, f, have, inc) : lfl_fail(LFL_ERR_IO, "hub: cannot read %s", inc);
            if (f) fclose(f);
            if (st) { close(fd); return st; }
        }
        if (!total_added) {
            hub_progress_add_total(prog, expected, have);
            total_added = true;
        } else {
            hub_progress_add(prog, have - counted);
        }
        counted = have;
        bool transfer_ok = expected >= 0 && have == expected; /* already complete: verify only */
        if (!transfer_ok) {
            hub_sink sink = {.fd = fd, .offset = have, .sha = verify ? &sha : NULL, .progress = prog,
                             .limit = expected};
            hub_resp r;
            lfl_status st = hub_http_get_file(c, curl, meta->location, &sink, &r);
            counted = sink.offset + sink.written;
            if (st && r.oversize) {
                /* a body longer than the file (an endless reply): nothing of it is kept, and a
                 * retry would only fetch it again */
                char why[1200];
                snprintf(why, sizeof why, "%s", lfl_last_error());
                close(fd);
                unlink(inc);
                hub_progress_add(prog, -counted);
                return lfl_fail(LFL_ERR_NET, "hub: %s %s, file '%s', revision '%s': the download is larger than the %lld "
                                "bytes the file has (%s); the partial file was deleted", c->type_name, c->repo, file,
                                rev, (long long)r.oversize_limit, why);
            }
            if (st == LFL_OK && (r.status == 200 || r.status == 206)) {
                transfer_ok = true;
            } else if (((st == LFL_OK && r.status == 416) || r.range_mismatch) && attempt < c->retries) {
                /* the partial file does not fit what the server has: start over */
                if (ftruncate(fd, 0) != 0) { close(fd); return lfl_fail(LFL_ERR_IO, "hub: cannot truncate %s", inc); }
                close(fd);
                attempt++;
                continue;
            } else {
                close(fd);
                if (interrupted(c))
                    return lfl_fail(LFL_ERR_NET, "hub: interrupted (partial download kept in %s)", inc);
                if (r.transient && attempt < c->retries) {
                    if (c->progress) {
                        char why[64];
                        snprintf(why, sizeof why, "HTTP %ld", r.status);
                        fprintf(stderr, "\r\033[Khub: %s: %s, retry %d of %d from byte %lld\n", file,
                                r.curl_error[0] ? r.curl_error : why, attempt + 1, c->retries,
                                (long long)hub_file_size(inc));
                    }
                    hub_backoff(c, attempt, r.retry_after);
                    attempt++;
                    continue;
                }
                if (st == LFL_OK || r.status == 0) {
                    char why[1200];
                    snprintf(why, sizeof why, "%s", lfl_last_error());
                    if (st == LFL_OK && !hub_same_origin(meta->location, c->endpoint)) {
                        char host[512];
                        snprintf(host, sizeof host, "%.500s", meta->location);
                        char *q = strchr(host + 8, '/');
                        if (q) *q = 0; /* no signed query string in messages */
                        return lfl_fail(LFL_ERR_NET, "hub: %s %s, file '%s', revision '%s': the download host %s "
                                        "answered HTTP %ld%s%s", c->type_name, c->repo, file, rev, host, r.status,
                                        r.error_message[0] ? ": " : "", r.error_message);
                    }
                    if (st == LFL_OK) return hub_http_fail(c, &r, file, rev);
                    return lfl_fail(LFL_ERR_NET, "hub: %s %s, file '%s', revision '%s': download failed after %d "
                                    "retries: %s (partial file kept in %s, it resumes on the next run)",
                                    c->type_name, c->repo, file, rev, attempt, r.curl_error[0] ? r.curl_error : why, inc);
                }
                return st;
            }
        }
        bool sync_ok = fdatasync(fd) == 0;
        close(fd);
        if (!sync_ok) return lfl_fail(LFL_ERR_IO, "hub: cannot flush %s: %s", inc, strerror(errno));
        int64_t size = hub_file_size(inc);
        if (expected >= 0 && size < expected) {
            /* the connection closed early without an error: resume */
            if (attempt < c->retries) { hub_backoff(c, attempt, 0); attempt++; continue; }
            return lfl_fail(LFL_ERR_NET, "hub: %s %s, file '%s', revision '%s': got %lld of %lld bytes after %d retries "
                            "(partial file kept in %s)", c->type_name, c->repo, file, rev, (long long)size,
                            (long long)expected, attempt, inc);
        }
        if (expected >= 0 && size != expected) {
            unlink(inc);
            return lfl_fail(LFL_ERR_NET, "hub: %s %s, file '%s', revision '%s': size mismatch: expected %lld bytes, "
                            "got %lld; the file was deleted", c->type_name, c->repo, file, rev, (long long)expected,
                            (long long)size);
        }
        if (verify) {
            char got[65];
            lfl_sha256_hex(&sha, got);
            if (strcmp(got, meta->etag) != 0) {
                unlink(inc);
                hub_progress_add(prog, -counted);
                counted = 0;
                /* a resumed prefix may be what was bad: try once from scratch */
                if (have > 0 && !scratch_retry) { scratch_retry = true; continue; }
                return lfl_fail(LFL_ERR_FORMAT, "hub: %s %s, file '%s', revision '%s': sha256 mismatch: expected %s, "
                                "got %s; the corrupt download was deleted", c->type_name, c->repo, file, rev,
                                meta->etag, got);
            }
        }
        if (rename(inc, blob) != 0)
            return lfl_fail(LFL_ERR_IO, "hub: cannot move %s into place: %s", inc, strerror(errno));
        chmod_umask(blob);
        return LFL_OK;
    }
}

/* HEAD with retries on 5xx/429/timeouts (not on refused connections: then the
 * cache answers at once) */
static lfl_status head_retry(const hub_ctx *c, void *curl, const char *url, hub_resp *r)
{
    for (int attempt = 0;; attempt++) {
        lfl_status st = hub_http_head(c, curl, url, r);
        bool refused = st && r->status == 0 &&
                       (r->curl_code == CURLE_COULDNT_CONNECT || r->curl_code == CURLE_COULDNT_RESOLVE_HOST ||
                        r->curl_code == CURLE_COULDNT_RESOLVE_PROXY);
        bool retry = r->transient && !refused && !interrupted(c) && attempt < c->retries;
        if (!retry) return st;
        hub_backoff(c, attempt, r->retry_after);
    }
}

static void warn_cached(const hub_ctx *c, const char *what)
{
    fprintf(stderr, "%shub: warning: %s; using the cached copy of %s %s\n", c->progress ? "\r\033[K" : "", what,
            c->type_name, c->repo);
}

/* hf_hub_download: one file at `rev` into the cache; *out gets the pointer path.
 * `quiet_fallback`: a snapshot already warned that it works from the cache. */
static lfl_status download_one(const hub_ctx *c, void *curl, const char *file, const char *rev, bool force,
                               hub_progress *prog, char *out, size_t out_n)
{
    if (!hub_safe_relpath(file))
        return lfl_fail(LFL_ERR_ARG, "hub: %s %s: '%s' is not a valid file path in a repo", c->type_name, c->repo, file);
    char commit[64];
    if (!force && hub_is_commit(rev)) {
        snprintf(out, out_n, "%s/snapshots/%s/%s", c->folder, rev, file);
        if (hub_exists(out)) { hub_progress_file_done(prog); return LFL_OK; }
    }
    if (c->offline) {
        if (!hub_resolve_ref(c, rev, commit))
            return lfl_fail(LFL_ERR_NET, "hub: %s %s, file '%s', revision '%s': not in the cache (%s) and offline mode "
                            "is on (HF_HUB_OFFLINE=1): download it once online, or unset HF_HUB_OFFLINE",
                            c->type_name, c->repo, file, rev, c->folder);
        snprintf(out, out_n, "%s/snapshots/%s/%s", c->folder, commit, file);
        if (hub_exists(out)) { hub_progress_file_done(prog); return LFL_OK; }
        char ne[HUB_PATH + 800];
        snprintf(ne, sizeof ne, "%s/.no_exist/%s/%s", c->folder, commit, file);
        if (hub_exists(ne))
            return lfl_fail(LFL_ERR_NET, "hub: %s %s, file '%s', revision '%s': file not found in the repo (cached "
                            "answer, offline mode)", c->type_name, c->repo, file, rev);
        return lfl_fail(LFL_ERR_NET, "hub: %s %s, file '%s', revision '%s': not in the cache (%s) and offline mode is "
                        "on (HF_HUB_OFFLINE=1): download it once online, or unset HF_HUB_OFFLINE",
                        c->type_name, c->repo, file, rev, c->folder);
    }
    char qrev[1024], qfile[3 * 1024], url[6000];
    hub_url_quote(rev, false, qrev, sizeof qrev);
    hub_url_quote(file, true, qfile, sizeof qfile);
    snprintf(url, sizeof url, "%s/%s%s/resolve/%s/%s", c->endpoint, c->url_prefix, c->repo, qrev, qfile);
    hub_resp r;
    lfl_status st = head_retry(c, curl, url, &r);
    bool ok = st == LFL_OK && r.status >= 200 && r.status < 400;
    if (!ok) {
        if (interrupted(c)) return lfl_fail(LFL_ERR_NET, "hub: interrupted");
        if (st == LFL_OK && r.status == 404 && !strcmp(r.error_code, "EntryNotFound") && hub_is_commit(r.commit)) {
            /* remember the answer, and the commit, so offline lookups know too */
            (void)hub_mark_no_exist(c, r.commit, file);
            (void)hub_write_ref(c, rev, r.commit);
        }
        bool fallback = !force && (r.status == 0 || r.status >= 500 || r.status == 401 || r.status == 403 ||
                                   r.status == 429 || r.status == 408);
        char err[1600];
        if (st == LFL_OK || r.status == 0) hub_http_fail(c, &r, file, rev);
        snprintf(err, sizeof err, "%s", lfl_last_error());
        if (fallback && hub_resolve_ref(c, rev, commit)) {
            snprintf(out, out_n, "%s/snapshots/%s/%s", c->folder, commit, file);
            if (hub_exists(out)) {
                warn_cached(c, err);
                hub_progress_file_done(prog);
                return LFL_OK;
            }
        }
        return lfl_fail(LFL_ERR_NET, "%s", err);
    }
    if (!hub_is_commit(r.commit))
        return lfl_fail(LFL_ERR_FORMAT, "hub: %s %s, file '%s', revision '%s': the server sent no X-Repo-Commit "
                        "(is HF_ENDPOINT=%s a Hub?)", c->type_name, c->repo, file, rev, c->endpoint);
    if (!r.etag[0] || !hub_safe_name(r.etag))
        return lfl_fail(LFL_ERR_FORMAT, "hub: %s %s, file '%s', revision '%s': the server sent no usable ETag ('%s')",
                        c->type_name, c->repo, file, rev, r.etag);
    snprintf(commit, sizeof commit, "%s", r.commit);
    LFL_TRY(hub_write_ref(c, rev, commit));
    snprintf(out, out_n, "%s/snapshots/%s/%s", c->folder, commit, file);
    if (!force && hub_exists(out)) {
        hub_progress_skip(prog, r.size);
        hub_progress_file_done(prog);
        return LFL_OK;
    }
    char blob[HUB_PATH + 200];
    snprintf(blob, sizeof blob, "%s/blobs/%s", c->folder, r.etag);
    int64_t have = hub_file_size(blob);
    if (force || have < 0 || (r.size >= 0 && have != r.size)) {
        int lock;
        LFL_TRY(hub_lock(c, r.etag, &lock));
        /* another process may have finished it while we waited */
        have = hub_file_size(blob);
        if (force || have < 0 || (r.size >= 0 && have != r.size)) st = fetch_blob(c, curl, file, rev, &r, force, prog);
        else hub_progress_skip(prog, r.size);
        hub_unlock(lock);
        LFL_TRY(st);
    } else {
        hub_progress_skip(prog, r.size);
    }
    LFL_TRY(hub_link_pointer(c, commit, file, r.etag));
    hub_progress_file_done(prog);
    return LFL_OK;
}

/* ---- local_dir: copies with huggingface_hub's .cache/huggingface metadata ---- */

static lfl_status copy_to_local(const hub_ctx *c, const char *local_dir, const char *commit, const char *file,
                                const char *src)
{
    char dst[HUB_PATH + 1024], meta[HUB_PATH + 1200], tmp[HUB_PATH + 1100], target[HUB_PATH];
    snprintf(dst, sizeof dst, "%s/%s", local_dir, file);
    snprintf(meta, sizeof meta, "%s/.cache/huggingface/download/%s.metadata", local_dir, file);
    /* the blob name (etag) from the snapshot symlink */
    char etag[256] = "";
    ssize_t n = readlink(src, target, sizeof target - 1);
    if (n > 0) {
        target[n] = 0;
        const char *b = strrchr(target, '/');
        if (!HUB_FMT(etag, sizeof etag, "%s", b ? b + 1 : target)) etag[0] = 0;
    }
    char *m = hub_read_small(meta);
    if (m && etag[0]) {
        /* up to date when the metadata names this etag and the file was not touched since */
        char *l1 = strchr(m, '\n'), *l2 = l1 ? strchr(l1 + 1, '\n') : NULL;
        if (l1 && l2) {
            *l2 = 0;
            struct stat sb;
            if (!strcmp(l1 + 1, etag) && stat(dst, &sb) == 0 && (double)sb.st_mtime - 1 <= atof(l2 + 1)) {
                free(m);
                return LFL_OK;
            }
        }
    }
    free(m);
    LFL_TRY(hub_mkdirs_for(dst));
    snprintf(tmp, sizeof tmp, "%s.%ld.incomplete", dst, (long)getpid());
    LFL_TRY(hub_copy_file(src, tmp));
    if (rename(tmp, dst) != 0) {
        int e = errno;
        unlink(tmp);
        return lfl_fail(LFL_ERR_IO, "hub: cannot write %s: %s", dst, strerror(e));
    }
    if (etag[0]) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        char line[512];
        int len = snprintf(line, sizeof line, "%s\n%s\n%.6f\n", commit, etag, (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec);
        LFL_TRY(hub_write_atomic(meta, line, (size_t)len));
        char gi[HUB_PATH + 64];
        snprintf(gi, sizeof gi, "%s/.cache/huggingface/.gitignore", local_dir);
        if (!hub_exists(gi)) (void)hub_write_atomic(gi, "*", 1);
    }
    (void)c;
    return LFL_OK;
}

/* ---- snapshots ---- */

typedef struct {
    const hub_ctx *c;
    const char *rev;             /* the commit */
    char **files;
    int n_files;
    bool force;
    hub_progress *prog;
    pthread_mutex_t mu;
    int next;
    volatile sig_atomic_t failed;
    char error[1600];
    lfl_status error_code;
} batch;

static void *worker_main(void *arg)
{
    batch *b = arg;
    void *curl = hub_curl_new();
    char path[HUB_PATH + 1024];
    for (;;) {
        pthread_mutex_lock(&b->mu);
        int i = b->failed ? b->n_files : b->next++;
        pthread_mutex_unlock(&b->mu);
        if (i >= b->n_files) break;
        lfl_status st = curl ? download_one(b->c, curl, b->files[i], b->rev, b->force, b->prog, path, sizeof path)
                             : lfl_fail(LFL_ERR_NET, "hub: cannot create a libcurl handle");
        if (st) {
            pthread_mutex_lock(&b->mu);
            /* the first error wins; those caused by aborting the others do not count */
            if (!b->failed) {
                snprintf(b->error, sizeof b->error, "%s", lfl_last_error());
                b->error_code = st;
                b->failed = 1;
            }
            pthread_mutex_unlock(&b->mu);
            break;
        }
    }
    hub_curl_free(curl);
    return NULL;
}

static lfl_status run_batch(hub_ctx *c, const char *commit, char **files, int n, bool force, hub_progress *prog)
{
    batch b = {.c = c, .rev = commit, .files = files, .n_files = n, .force = force, .prog = prog};
    pthread_mutex_init(&b.mu, NULL);
    c->abort_flag = &b.failed;
    int nt = c->max_workers < n ? c->max_workers : n;
    pthread_t th[64];
    if (nt > 64) nt = 64;
    int started = 0;
    for (int i = 0; i < nt; i++)
        if (pthread_create(&th[started], NULL, worker_main, &b) == 0) started++;
    if (started == 0) worker_main(&b);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    c->abort_flag = NULL;
    pthread_mutex_destroy(&b.mu);
    if (b.failed) return lfl_fail(b.error_code ? b.error_code : LFL_ERR_NET, "%s", b.error);
    return LFL_OK;
}

/* files under a cached snapshot folder (for offline local_dir copies) */
static char **walk_files;
static int walk_n, walk_cap;
static size_t walk_root_len;
static pthread_mutex_t walk_mu = PTHREAD_MUTEX_INITIALIZER;

static int walk_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)ftw;
    if (flag != FTW_F) return 0;
    if (walk_n == walk_cap) {
        walk_cap = walk_cap ? 2 * walk_cap : 64;
        char **nf = realloc(walk_files, (size_t)walk_cap * sizeof *nf);
        if (!nf) return 1;
        walk_files = nf;
    }
    walk_files[walk_n++] = strdup(path + walk_root_len + 1);
    return 0;
}

static void free_list(char **l, int n)
{
    for (int i = 0; i < n; i++) free(l[i]);
    free(l);
}

static lfl_status snapshot(hub_ctx *c, const lfl_hub_opts *o, const char *rev, char **path)
{
    char commit[64], dir[HUB_PATH + 100];
    char **files = NULL;
    int n = 0;
    bool from_cache = false;
    if (!c->offline) {
        void *curl = hub_curl_new();
        if (!curl) return lfl_fail(LFL_ERR_NET, "hub: cannot create a libcurl handle");
        lfl_hub_info info;
        hub_resp r;
        lfl_status st = hub_api_info(c, curl, rev, &info, &r);
        hub_curl_free(curl);
        if (st) {
            if (interrupted(c)) return st;
            bool fallback = !o->force && (r.status == 0 || r.status >= 500 || r.status == 401 || r.status == 403 ||
                                          r.status == 429 || r.status == 408);
            if (fallback && hub_resolve_ref(c, rev, commit)) {
                snprintf(dir, sizeof dir, "%s/snapshots/%s", c->folder, commit);
                struct stat sb;
                if (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) {
                    char err[1600];
                    snprintf(err, sizeof err, "%s", lfl_last_error());
                    warn_cached(c, err);
                    from_cache = true;
                }
            }
            if (!from_cache) return st;
        } else {
            snprintf(commit, sizeof commit, "%s", info.sha);
            st = hub_write_ref(c, rev, commit);
            files = calloc((size_t)(info.n_files ? info.n_files : 1), sizeof *files);
            if (!files) st = lfl_fail(LFL_ERR_MEM, "hub: out of memory");
            for (int i = 0; !st && i < info.n_files; i++) {
                const char *f = info.files[i].name;
                if (!hub_safe_relpath(f)) {
                    st = lfl_fail(LFL_ERR_FORMAT, "hub: %s %s revision '%s': the server lists an unsafe file name '%s'",
                                  c->type_name, c->repo, rev, f);
                    break;
                }
                if (lfl_hub_match(f, o->allow, o->n_allow, o->ignore, o->n_ignore)) files[n++] = strdup(f);
            }
            int total = info.n_files;
            /* the bar's total: sizes from the listing of files not yet in the snapshot */
            int64_t bytes = 0;
            bool sizes_known = true;
            for (int i = 0, k = 0; !st && i < info.n_files && k < n; i++) {
                if (strcmp(info.files[i].name, files[k]) != 0) continue;
                k++;
                char ptr[HUB_PATH + 1200];
                snprintf(ptr, sizeof ptr, "%s/snapshots/%s/%s", c->folder, commit, info.files[i].name);
                if (hub_exists(ptr) && !o->force) continue;
                if (info.files[i].size < 0) sizes_known = false;
                else bytes += info.files[i].size;
            }
            lfl_hub_info_free(&info);
            if (st) { free_list(files, n); return st; }
            if (n == 0) {
                free_list(files, n);
                return lfl_fail(LFL_ERR_ARG, "hub: %s %s revision '%s': none of its %d files match the allow/ignore "
                                "patterns", c->type_name, c->repo, rev, total);
            }
            char label[160];
            (void)!HUB_FMT(label, sizeof label, "%s", c->repo);
            hub_progress prog;
            hub_progress_init(&prog, c->progress, label, n);
            if (sizes_known) {
                prog.preset = true;
                prog.total = bytes;
            }
            st = run_batch(c, commit, files, n, o->force, &prog);
            hub_progress_finish(&prog);
            if (st) { free_list(files, n); return st; }
        }
    } else {
        if (!hub_resolve_ref(c, rev, commit))
            return lfl_fail(LFL_ERR_NET, "hub: %s %s, revision '%s': not in the cache (%s) and offline mode is on "
                            "(HF_HUB_OFFLINE=1): download it once online, or unset HF_HUB_OFFLINE",
                            c->type_name, c->repo, rev, c->folder);
        from_cache = true;
    }
    snprintf(dir, sizeof dir, "%s/snapshots/%s", c->folder, commit);
    if (from_cache) {
        /* what the cache holds of this snapshot, filtered like an online call */
        pthread_mutex_lock(&walk_mu);
        walk_files = NULL;
        walk_n = walk_cap = 0;
        walk_root_len = strlen(dir);
        struct stat sb;
        int wr = stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode) ? nftw(dir, walk_cb, 32, 0) : -1;
        char **all = walk_files;
        int n_all = walk_n;
        pthread_mutex_unlock(&walk_mu);
        if (wr != 0) {
            free_list(all, n_all);
            return lfl_fail(LFL_ERR_NET, "hub: %s %s, revision '%s': not in the cache (%s is missing) and %s",
                            c->type_name, c->repo, rev, dir,
                            c->offline ? "offline mode is on (HF_HUB_OFFLINE=1)" : "the Hub cannot be reached");
        }
        files = calloc((size_t)(n_all ? n_all : 1), sizeof *files);
        for (int i = 0; files && i < n_all; i++) {
            if (all[i] && lfl_hub_match(all[i], o->allow, o->n_allow, o->ignore, o->n_ignore)) {
                files[n++] = all[i];
                all[i] = NULL;
            }
        }
        free_list(all, n_all);
        if (n == 0) {
            free(files);
            return lfl_fail(LFL_ERR_NET, "hub: %s %s, revision '%s': the cached snapshot %s holds no file matching the "
                            "allow/ignore patterns, and %s", c->type_name, c->repo, rev, dir,
                            c->offline ? "offline mode is on (HF_HUB_OFFLINE=1)" : "the Hub cannot be reached");
        }
    }
    if (o->local_dir && *o->local_dir) {
        lfl_status st = hub_mkdirs(o->local_dir);
        for (int i = 0; !st && i < n; i++) {
            char src[HUB_PATH + 1200];
            snprintf(src, sizeof src, "%s/%s", dir, files[i]);
            st = copy_to_local(c, o->local_dir, commit, files[i], src);
        }
        free_list(files, n);
        if (st) return st;
        *path = strdup(o->local_dir);
    } else {
        free_list(files, n);
        *path = strdup(dir);
    }
    return *path ? LFL_OK : lfl_fail(LFL_ERR_MEM, "hub: out of memory");
}

lfl_status lfl_hub_download(const char *repo_id, const char *filename, const lfl_hub_opts *o, char **path)
{
    *path = NULL;
    lfl_hub_opts def;
    if (!o) { lfl_hub_opts_init(&def); o = &def; }
    hub_ctx c;
    LFL_TRY(hub_ctx_init(&c, repo_id, o));
    hub_reset_cancel();
    const char *rev = o->revision && *o->revision ? o->revision : "main";
    if (!filename) return snapshot(&c, o, rev, path);
    void *curl = hub_curl_new();
    if (!curl) return lfl_fail(LFL_ERR_NET, "hub: cannot create a libcurl handle");
    char out[HUB_PATH + 1024];
    hub_progress prog;
    hub_progress_init(&prog, c.progress, filename, 1);
    lfl_status st = download_one(&c, curl, filename, rev, o->force, &prog, out, sizeof out);
    hub_progress_finish(&prog);
    hub_curl_free(curl);
    LFL_TRY(st);
    if (o->local_dir && *o->local_dir) {
        LFL_TRY(hub_mkdirs(o->local_dir));
        /* the commit is the snapshot folder's name */
        char commit[64] = "";
        const char *s = strstr(out, "/snapshots/");
        if (s) snprintf(commit, sizeof commit, "%.40s", s + 11);
        LFL_TRY(copy_to_local(&c, o->local_dir, commit, filename, out));
        snprintf(out, sizeof out, "%s/%s", o->local_dir, filename);
    }
    *path = strdup(out);
    return *path ? LFL_OK : lfl_fail(LFL_ERR_MEM, "hub: out of memory");
}
