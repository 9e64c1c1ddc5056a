/* Uploads to the Hub as huggingface_hub's upload_folder / create_commit do:
 * create the repo (an existing one is fine), ask the preupload endpoint which
 * files are LFS, send those through the LFS batch API (a PUT streamed from
 * the file to the storage URL it answers, multipart when it asks, then the
 * verify call), and commit everything with one NDJSON POST (regular files
 * base64 in it, LFS files by oid and size); files the repo already holds as
 * they are stay out of it. Requests that are safe to repeat are retried like
 * downloads; the commit only when it never reached the server. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"
#include "../util/sha1.h"

#define PREUPLOAD_CHUNK 256 /* files a preupload call (huggingface_hub's chunk) */
#define LFS_BATCH_CHUNK 256 /* objects an LFS batch call (UPLOAD_BATCH_MAX_NUM_FILES) */
#define SAMPLE_BYTES 512
#define LFS_MEDIA "application/vnd.git-lfs+json"
#define HF_DEFAULT_ENDPOINT "https://huggingface.co"
#define MAX_DEPTH 64

void lfl_hub_upload_opts_init(lfl_hub_upload_opts *o)
{
    memset(o, 0, sizeof *o);
    lfl_hub_opts_init(&o->hub);
    o->private_repo = -1;
}

void lfl_hub_commit_free(lfl_hub_commit *c)
{
    if (!c) return;
    free(c->repo_id);
    free(c->commit_oid);
    free(c->commit_url);
    memset(c, 0, sizeof *c);
}

typedef struct {
    char *local;       /* path on disk */
    char *path;        /* path in the repo */
    int64_t size;
    bool lfs, ignored, unchanged;
    bool answered;     /* the preupload answer named it */
    char sha256[65];   /* LFS files */
    char *remote_oid;  /* what the repo holds at that path (preupload), or NULL */
} up_file;

typedef struct {
    up_file *v;
    int n, cap;
} file_list;

static void files_free(file_list *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->v[i].local);
        free(l->v[i].path);
        free(l->v[i].remote_oid);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* ---- the error of a failed request ---- */

/* "scheme://host[:port]" of a URL, for messages about storage URLs whose query is a signature */
static void host_of(const char *url, char *out, size_t n)
{
    const char *s = strstr(url, "://");
    s = s ? s + 3 : url;
    size_t len = strcspn(s, "/?#");
    snprintf(out, n, "%.*s", (int)((size_t)(s - url) + len), url);
}

static lfl_status up_fail(const hub_ctx *c, const hub_resp *r, const char *rev, const char *file, const char *step,
                          const char *url, int retries)
{
    char what[1600];
    int w = snprintf(what, sizeof what, "hub: upload to %s %s (revision '%s')", c->type_name, c->repo, rev);
    if (file) w += snprintf(what + w, sizeof what - (size_t)w, ", file '%s'", file);
    snprintf(what + w, sizeof what - (size_t)w, ", %s", step);
    char extra[800] = "", tries[64] = "";
    if (r->error_message[0] && r->request_id[0])
        snprintf(extra, sizeof extra, " (server: %s; request id %s)", r->error_message, r->request_id);
    else if (r->error_message[0])
        snprintf(extra, sizeof extra, " (server: %s)", r->error_message);
    else if (r->request_id[0])
        snprintf(extra, sizeof extra, " (request id %s)", r->request_id);
    if (retries > 0) snprintf(tries, sizeof tries, " after %d retries", retries);
    char host[600];
    host_of(url, host, sizeof host);
    const char *code = r->error_code;
    long s = r->status;
    bool hub = hub_same_origin(url, c->endpoint);
    if (s == 0)
        return lfl_fail(LFL_ERR_NET, "%s: cannot reach %s%s: %s", what, host, tries,
                        r->curl_error[0] ? r->curl_error : "network error");
    if (!hub)
        return lfl_fail(LFL_ERR_NET, "%s: the storage host %s answered HTTP %ld%s%s", what, host, s, tries, extra);
    if (s == 401 && !c->token[0])
        return lfl_fail(LFL_ERR_NET, "%s: HTTP 401, no token was sent: uploading needs a token with write access: "
                        "set HF_TOKEN (or hf_hub_token in the recipe, or the token option)%s", what, extra);
    if (!strcmp(code, "RepoNotFound") || (s == 404 && strstr(r->error_message, "Repository not found")))
        return lfl_fail(LFL_ERR_NET, "%s: HTTP %ld, repository not found: check the repo id and repo_type, or let "
                        "the upload create it (create_repo)%s", what, s, extra);
    if (s == 401)
        return lfl_fail(LFL_ERR_NET, "%s: HTTP 401, the token was refused (invalid or expired): set HF_TOKEN or "
                        "hf_hub_token to a valid token with write access%s", what, extra);
    if (s == 403)
        return lfl_fail(LFL_ERR_NET, "%s: HTTP 403 forbidden: the token may not write to this repo (a read-only "
                        "token, or a namespace the account cannot write to)%s", what, extra);
    if (!strcmp(code, "RevisionNotFound"))
        return lfl_fail(LFL_ERR_NET, "%s: HTTP %ld, the branch '%s' does not exist in the repo%s", what, s, rev, extra);
    if (s == 404) return lfl_fail(LFL_ERR_NET, "%s: HTTP 404 not found%s", what, extra);
    if (s == 413) return lfl_fail(LFL_ERR_NET, "%s: HTTP 413, the request is too large for the server%s", what, extra);
    return lfl_fail(LFL_ERR_NET, "%s: HTTP %ld%s%s", what, s, tries, extra);
}

/* One request, repeated on 408/429/5xx and network errors (huggingface_hub's
 * http_backoff) when `repeat`; otherwise only when it never reached the server
 * (a commit). The last try's answer is in *r (and *answer), its retries in *tries. */
static lfl_status send_loop(const hub_ctx *c, void *curl, const char *url, const hub_body *b, bool repeat,
                            const char *step, const char *file, hub_resp *r, char **answer, int *tries)
{
    for (int attempt = 0;; attempt++) {
        lfl_status st = hub_http_send(c, curl, url, b, r, answer, NULL);
        bool connect_fail = st && r->status == 0 && (r->curl_code == CURLE_COULDNT_CONNECT ||
                                                     r->curl_code == CURLE_COULDNT_RESOLVE_HOST);
        bool retry = (repeat || connect_fail) && (st ? r->transient && r->status == 0 : r->transient) &&
                     !hub_cancelled() && attempt < c->retries;
        *tries = attempt;
        if (!retry) return st;
        if (answer) { free(*answer); *answer = NULL; }
        /* an answered request counted its file bytes as sent; they go again */
        if (!st && !b->data) hub_progress_add(b->progress, -b->length);
        if (c->progress) {
            char why[64];
            snprintf(why, sizeof why, "HTTP %ld", r->status);
            fprintf(stderr, "\r\033[Khub: %s%s%s: %s, retry %d of %d\n", step, file ? " of " : "", file ? file : "",
                    r->curl_error[0] ? r->curl_error : why, attempt + 1, c->retries);
        }
        hub_backoff(c, attempt, r->retry_after);
    }
}

/* LFL_OK for a 2xx answer; else the error naming the step */
static lfl_status check_answer(const hub_ctx *c, lfl_status st, const hub_resp *r, int tries, bool repeat,
                               const char *url, const char *rev, const char *file, const char *step)
{
    if (st) {
        if (r->status == 0 && r->curl_error[0] && r->curl_code != CURLE_ABORTED_BY_CALLBACK)
            return up_fail(c, r, rev, file, step, url, tries);
        return st;
    }
    if (r->status >= 200 && r->status < 300) return LFL_OK;
    st = up_fail(c, r, rev, file, step, url, r->transient ? tries : 0);
    if (!repeat && r->transient) {
        char msg[2400];
        snprintf(msg, sizeof msg, "%s", lfl_last_error());
        return lfl_fail(st, "%s; not retried: a commit the server received may have been made, check the repo "
                        "before pushing again", msg);
    }
    return st;
}

static lfl_status send_retry(const hub_ctx *c, void *curl, const char *url, const hub_body *b, const char *rev,
                             const char *file, const char *step, bool repeat, char **answer)
{
    hub_resp r;
    int tries;
    lfl_status st = send_loop(c, curl, url, b, repeat, step, file, &r, answer, &tries);
    st = check_answer(c, st, &r, tries, repeat, url, rev, file, step);
    if (st && answer) { free(*answer); *answer = NULL; }
    return st;
}

/* a JSON body; the message names the step when it is not JSON */
static lfl_status post_json(const hub_ctx *c, void *curl, const char *url, cJSON *body, const char *media,
                            const char *rev, const char *file, const char *step, cJSON **out)
{
    char *text = cJSON_PrintUnformatted(body);
    if (!text) return lfl_fail(LFL_ERR_MEM, "hub: out of memory");
    hub_body b = {.method = "POST", .content_type = media ? media : "application/json", .accept = media,
                  .data = text, .n = strlen(text), .fd = -1};
    char *ans = NULL;
    lfl_status st = send_retry(c, curl, url, &b, rev, file, step, true, out ? &ans : NULL);
    free(text);
    if (st || !out) return st;
    *out = cJSON_Parse(ans);
    free(ans);
    if (!*out)
        return lfl_fail(LFL_ERR_FORMAT, "hub: upload to %s %s, %s: the answer of %s is not JSON", c->type_name, c->repo,
                        step, url);
    return LFL_OK;
}

/* huggingface_hub's fix_hf_endpoint_in_url: hrefs the Hub writes with its
 * public address point at the endpoint in use (a mirror or proxy) */
static void fix_endpoint(const hub_ctx *c, const char *href, char *out, size_t n)
{
    size_t k = strlen(HF_DEFAULT_ENDPOINT);
    if (strcmp(c->endpoint, HF_DEFAULT_ENDPOINT) != 0 && strncmp(href, HF_DEFAULT_ENDPOINT, k) == 0 &&
        (href[k] == '/' || href[k] == 0))
        snprintf(out, n, "%s%s", c->endpoint, href + k);
    else
        snprintf(out, n, "%s", href);
}

/* ---- the local files ---- */

static lfl_status add_file(file_list *l, const char *local, const char *path, int64_t size)
{
    if (l->n == l->cap) {
        int nc = l->cap ? 2 * l->cap : 32;
        up_file *v = realloc(l->v, (size_t)nc * sizeof *v);
        if (!v) return lfl_fail(LFL_ERR_MEM, "hub: out of memory");
        l->v = v;
        l->cap = nc;
    }
    up_file *f = &l->v[l->n];
    memset(f, 0, sizeof *f);
    f->local = strdup(local);
    f->path = strdup(path);
    f->size = size;
    if (!f->local || !f->path) {
        free(f->local);
        free(f->path);
        return lfl_fail(LFL_ERR_MEM, "hub: out of memory");
    }
    l->n++;
    return LFL_OK;
}

/* huggingface_hub's DEFAULT_IGNORE_PATTERNS: .git and .cache/huggingface at any depth */
static bool skipped_dir(const char *rel, const char *name)
{
    if (!strcmp(name, ".git")) return true;
    if (!strcmp(name, "huggingface")) {
        size_t n = strlen(rel);
        return (n == 18 && !strcmp(rel, ".cache/huggingface")) ||
               (n > 18 && !strcmp(rel + n - 19, "/.cache/huggingface"));
    }
    return false;
}

static lfl_status walk(const char *dir, const char *rel, int depth, const lfl_hub_upload_opts *o, const char *prefix,
                       file_list *l)
{
    if (depth > MAX_DEPTH)
        return lfl_fail(LFL_ERR_ARG, "hub: %s: folders nested deeper than %d (a symlink loop?)", dir, MAX_DEPTH);
    DIR *d = opendir(dir);
    if (!d) return lfl_fail(LFL_ERR_IO, "hub: cannot read the folder %s: %s", dir, strerror(errno));
    lfl_status st = LFL_OK;
    struct dirent *e;
    while (!st && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char local[HUB_PATH], r[HUB_PATH];
        if (!HUB_FMT(local, sizeof local, "%s/%s", dir, e->d_name) ||
            !HUB_FMT(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", e->d_name)) {
            st = lfl_fail(LFL_ERR_ARG, "hub: path too long under %s", dir);
            break;
        }
        struct stat sb;
        if (stat(local, &sb) != 0) {
            st = lfl_fail(LFL_ERR_IO, "hub: cannot read %s: %s", local, strerror(errno));
            break;
        }
        if (S_ISDIR(sb.st_mode)) {
            if (!skipped_dir(r, e->d_name)) st = walk(local, r, depth + 1, o, prefix, l);
            continue;
        }
        if (!S_ISREG(sb.st_mode)) continue;
        if (!lfl_hub_match(r, o->hub.allow, o->hub.n_allow, o->hub.ignore, o->hub.n_ignore)) continue;
        char path[HUB_PATH];
        if (!HUB_FMT(path, sizeof path, "%s%s%s", prefix, *prefix ? "/" : "", r)) {
            st = lfl_fail(LFL_ERR_ARG, "hub: path too long: %s", r);
            break;
        }
        if (!hub_safe_relpath(path)) {
            st = lfl_fail(LFL_ERR_ARG, "hub: '%s' (from %s) is not a valid path in a repo", path, local);
            break;
        }
        st = add_file(l, local, path, (int64_t)sb.st_size);
    }
    closedir(d);
    return st;
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const up_file *)a)->path, ((const up_file *)b)->path);
}

static char *base64(const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
    if (!out) return NULL;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0);
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = 0;
    return out;
}

/* the whole file (a regular, non-LFS file: small) */
static lfl_status read_all(const up_file *f, unsigned char **out)
{
    *out = malloc(f->size > 0 ? (size_t)f->size : 1);
    if (!*out) return lfl_fail(LFL_ERR_MEM, "hub: out of memory reading %s", f->local);
    FILE *fp = fopen(f->local, "rb");
    size_t got = fp ? fread(*out, 1, (size_t)f->size, fp) : 0;
    int extra = fp ? fgetc(fp) : EOF;
    if (fp) fclose(fp);
    if (!fp || got != (size_t)f->size || extra != EOF) {
        free(*out);
        *out = NULL;
        return lfl_fail(LFL_ERR_IO, "hub: %s changed or cannot be read while uploading (expected %lld bytes)", f->local,
                        (long long)f->size);
    }
    return LFL_OK;
}

/* ---- the steps ---- */

/* "org/name" from a repo URL's last two path parts */
static bool repo_from_url(const char *url, char *out, size_t n)
{
    size_t len = strlen(url);
    while (len && url[len - 1] == '/') len--;
    int slashes = 0;
    size_t i = len;
    while (i > 0 && slashes < 2) {
        if (url[i - 1] == '/') slashes++;
        if (slashes < 2) i--;
    }
    if (slashes < 2) return false;
    snprintf(out, n, "%.*s", (int)(len - i), url + i);
    return strchr(out, '/') != NULL;
}

static lfl_status create_repo(hub_ctx *c, void *curl, const lfl_hub_upload_opts *o, const char *rev)
{
    char name[512], org[512] = "";
    const char *slash = strchr(c->repo, '/');
    if (slash) {
        snprintf(org, sizeof org, "%.*s", (int)(slash - c->repo), c->repo);
        snprintf(name, sizeof name, "%s", slash + 1);
    } else {
        snprintf(name, sizeof name, "%s", c->repo);
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", name);
    if (org[0]) cJSON_AddStringToObject(j, "organization", org);
    else cJSON_AddNullToObject(j, "organization");
    if (o->private_repo >= 0) cJSON_AddStringToObject(j, "visibility", o->private_repo ? "private" : "public");
    cJSON_AddStringToObject(j, "type", c->type_name);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!text) return lfl_fail(LFL_ERR_MEM, "hub: out of memory");
    char url[1200];
    snprintf(url, sizeof url, "%s/api/repos/create", c->endpoint);
    hub_body b = {.method = "POST", .content_type = "application/json", .data = text, .n = strlen(text), .fd = -1};
    hub_resp r;
    char *ans = NULL;
    int tries;
    /* creating again is harmless: an existing repo answers 409 */
    lfl_status st = send_loop(c, curl, url, &b, true, "creating the repo", NULL, &r, &ans, &tries);
    free(text);
    if (st) return check_answer(c, st, &r, tries, true, url, rev, NULL, "creating the repo");
    cJSON *a = cJSON_Parse(ans);
    free(ans);
    char full[512] = "";
    const cJSON *nm = a ? cJSON_GetObjectItemCaseSensitive(a, "name") : NULL;
    const cJSON *u = a ? cJSON_GetObjectItemCaseSensitive(a, "url") : NULL;
    if (cJSON_IsString(nm) && strchr(nm->valuestring, '/')) snprintf(full, sizeof full, "%s", nm->valuestring);
    else if (cJSON_IsString(u)) (void)repo_from_url(u->valuestring, full, sizeof full);
    cJSON_Delete(a);
    bool ok = (r.status >= 200 && r.status < 300) || r.status == 409;
    if (!ok && (r.status == 401 || r.status == 402 || r.status == 403) && slash) {
        /* a token without the right to create may still write to a repo that exists (huggingface_hub
         * checks the same way) */
        lfl_hub_info info;
        hub_resp ri;
        lfl_status si = hub_api_info(c, curl, rev, &info, &ri);
        if (si == LFL_OK) {
            lfl_hub_info_free(&info);
            ok = true;
        }
    }
    if (!ok) return check_answer(c, LFL_OK, &r, tries, true, url, rev, NULL, "creating the repo");
    if (!slash) {
        /* a name without namespace: the Hub puts it under the token's account */
        if (!full[0])
            return lfl_fail(LFL_ERR_NET, "hub: upload to %s %s: the Hub did not say under which namespace it created "
                            "the repo: give the repo id as 'namespace/name'", c->type_name, c->repo);
        snprintf(c->repo, sizeof c->repo, "%s", full);
    }
    return LFL_OK;
}

static up_file *find_path(file_list *l, int from, int to, const char *path)
{
    for (int i = from; i < to; i++)
        if (!strcmp(l->v[i].path, path)) return &l->v[i];
    return NULL;
}

static lfl_status preupload(const hub_ctx *c, void *curl, const char *qrev, const char *rev, file_list *l)
{
    char url[4096];
    snprintf(url, sizeof url, "%s/api/%s/%s/preupload/%s", c->endpoint, c->type_plural, c->repo, qrev);
    for (int from = 0; from < l->n; from += PREUPLOAD_CHUNK) {
        int to = from + PREUPLOAD_CHUNK < l->n ? from + PREUPLOAD_CHUNK : l->n;
        cJSON *j = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(j, "files");
        lfl_status st = LFL_OK;
        for (int i = from; i < to && !st; i++) {
            up_file *f = &l->v[i];
            unsigned char sample[SAMPLE_BYTES];
            FILE *fp = fopen(f->local, "rb");
            size_t got = fp ? fread(sample, 1, sizeof sample, fp) : 0;
            if (fp) fclose(fp);
            if (!fp) { st = lfl_fail(LFL_ERR_IO, "hub: cannot read %s: %s", f->local, strerror(errno)); break; }
            char *b64 = base64(sample, got);
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "path", f->path);
            cJSON_AddStringToObject(e, "sample", b64 ? b64 : "");
            cJSON_AddNumberToObject(e, "size", (double)f->size);
            cJSON_AddItemToArray(arr, e);
            free(b64);
        }
        cJSON *ans = NULL;
        if (!st) st = post_json(c, curl, url, j, NULL, rev, NULL, "asking which files go to LFS (preupload)", &ans);
        cJSON_Delete(j);
        if (st) return st;
        const cJSON *files = cJSON_GetObjectItemCaseSensitive(ans, "files"), *e;
        cJSON_ArrayForEach(e, files) {
            const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "path");
            const cJSON *mode = cJSON_GetObjectItemCaseSensitive(e, "uploadMode");
            up_file *f = cJSON_IsString(p) ? find_path(l, from, to, p->valuestring) : NULL;
            if (!f || !cJSON_IsString(mode)) continue;
            f->lfs = !strcmp(mode->valuestring, "lfs");
            f->ignored = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "shouldIgnore"));
            const cJSON *oid = cJSON_GetObjectItemCaseSensitive(e, "oid");
            if (cJSON_IsString(oid)) f->remote_oid = strdup(oid->valuestring);
            f->answered = true;
        }
        cJSON_Delete(ans);
        for (int i = from; i < to; i++) {
            if (!l->v[i].answered)
                return lfl_fail(LFL_ERR_FORMAT, "hub: upload to %s %s: the preupload answer does not name the file "
                                "'%s' (is HF_ENDPOINT=%s a Hub?)", c->type_name, c->repo, l->v[i].path, c->endpoint);
            /* an empty file cannot go to LFS storage (huggingface_hub sends it as a regular one) */
            if (l->v[i].size == 0) l->v[i].lfs = false;
        }
    }
    return LFL_OK;
}

/* one PUT of bytes [off, off + len) of the open file, retried; the answer's ETag into etag */
static lfl_status put_slice(const hub_ctx *c, void *curl, const char *url, int fd, int64_t off, int64_t len,
                            hub_progress *prog, const char *rev, const up_file *f, const char *step, char *etag,
                            size_t etag_n)
{
    hub_body b = {.method = "PUT", .fd = fd, .offset = off, .length = len, .progress = prog};
    hub_resp r;
    int tries;
    lfl_status st = send_loop(c, curl, url, &b, true, step, f->path, &r, NULL, &tries);
    LFL_TRY(check_answer(c, st, &r, tries, true, url, rev, f->path, step));
    if (etag) snprintf(etag, etag_n, "%s", r.etag_raw);
    return LFL_OK;
}

static bool all_digits(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return false;
    return true;
}

typedef struct {
    long num;
    const char *url;
} part_url;

static int by_num(const void *a, const void *b)
{
    long x = ((const part_url *)a)->num, y = ((const part_url *)b)->num;
    return (x > y) - (x < y);
}

/* the content of one LFS object, as the batch answer's actions say */
static lfl_status lfs_send(const hub_ctx *c, void *curl, const up_file *f, const cJSON *actions, const char *rev,
                           hub_progress *prog)
{
    const cJSON *up = cJSON_GetObjectItemCaseSensitive(actions, "upload");
    const cJSON *verify = cJSON_GetObjectItemCaseSensitive(actions, "verify");
    const cJSON *href = cJSON_GetObjectItemCaseSensitive(up, "href");
    if (!cJSON_IsString(href) || (verify && !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(verify, "href"))))
        return lfl_fail(LFL_ERR_FORMAT, "hub: upload to %s %s, file '%s': the LFS batch answer has no upload href",
                        c->type_name, c->repo, f->path);
    char url[4096];
    fix_endpoint(c, href->valuestring, url, sizeof url);
    int fd = open(f->local, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return lfl_fail(LFL_ERR_IO, "hub: cannot read %s: %s", f->local, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || (int64_t)sb.st_size != f->size) {
        close(fd);
        return lfl_fail(LFL_ERR_IO, "hub: %s changed while uploading (was %lld bytes)", f->local, (long long)f->size);
    }
    const cJSON *header = cJSON_GetObjectItemCaseSensitive(up, "header");
    const cJSON *chunk = cJSON_GetObjectItemCaseSensitive(header, "chunk_size");
    lfl_status st = LFL_OK;
    if (!chunk) {
        st = put_slice(c, curl, url, fd, 0, f->size, prog, rev, f, "sending the LFS content", NULL, 0);
    } else {
        /* multipart: one presigned URL a part (keys "1", "2", ... of the header), then completion */
        long long cs = cJSON_IsNumber(chunk) ? (long long)chunk->valuedouble
                     : cJSON_IsString(chunk) ? strtoll(chunk->valuestring, NULL, 10) : 0;
        int n = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, header) if (e->string && all_digits(e->string) && cJSON_IsString(e)) n++;
        long long want = cs > 0 ? (f->size + cs - 1) / cs : -1;
        if (cs <= 0 || n != want) {
            close(fd);
            return lfl_fail(LFL_ERR_FORMAT, "hub: upload to %s %s, file '%s': the LFS server asked for a multipart "
                            "upload with %d part URLs for chunks of %lld bytes of a %lld-byte file", c->type_name,
                            c->repo, f->path, n, cs, (long long)f->size);
        }
        part_url *parts = calloc((size_t)n, sizeof *parts);
        cJSON *done = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(done, "parts");
        cJSON_AddStringToObject(done, "oid", f->sha256);
        int k = 0;
        cJSON_ArrayForEach(e, header) if (e->string && all_digits(e->string) && cJSON_IsString(e) && parts) {
            parts[k].num = strtol(e->string, NULL, 10);
            parts[k].url = e->valuestring;
            k++;
        }
        if (!parts) st = lfl_fail(LFL_ERR_MEM, "hub: out of memory");
        else qsort(parts, (size_t)n, sizeof *parts, by_num);
        for (int i = 0; !st && i < n; i++) {
            char purl[4096], etag[160], step[96];
            fix_endpoint(c, parts[i].url, purl, sizeof purl);
            int64_t off = (int64_t)i * cs, len = f->size - off < cs ? f->size - off : cs;
            snprintf(step, sizeof step, "sending part %d of %d of the LFS content", i + 1, n);
            st = put_slice(c, curl, purl, fd, off, len, prog, rev, f, step, etag, sizeof etag);
            if (!st && !etag[0])
                st = lfl_fail(LFL_ERR_FORMAT, "hub: upload to %s %s, file '%s': the storage server sent no ETag for "
                              "part %d", c->type_name, c->repo, f->path, i + 1);
            if (!st) {
                cJSON *p = cJSON_CreateObject();
                cJSON_AddNumberToObject(p, "partNumber", i + 1);
                cJSON_AddStringToObject(p, "etag", etag);
                cJSON_AddItemToArray(list, p);
            }
        }
        if (!st) st = post_json(c, curl, url, done, LFS_MEDIA, rev, f->path, "completing the multipart upload", NULL);
        cJSON_Delete(done);
        free(parts);
    }
    close(fd);
    LFL_TRY(st);
    if (verify) {
        char vurl[4096];
        fix_endpoint(c, cJSON_GetObjectItemCaseSensitive(verify, "href")->valuestring, vurl, sizeof vurl);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "oid", f->sha256);
        cJSON_AddNumberToObject(j, "size", (double)f->size);
        st = post_json(c, curl, vurl, j, NULL, rev, f->path, "verifying the LFS upload", NULL);
        cJSON_Delete(j);
    }
    return st;
}

/* regular files the repo holds with the same content (their git blob id is
 * the oid preupload named) stay out of the commit, as in huggingface_hub */
static lfl_status mark_unchanged(file_list *l)
{
    for (int i = 0; i < l->n; i++) {
        up_file *f = &l->v[i];
        if (f->lfs || f->ignored || !f->remote_oid) continue;
        unsigned char *data;
        LFL_TRY(read_all(f, &data));
        char oid[41];
        lfl_git_blob_id(data, (size_t)f->size, oid);
        free(data);
        f->unchanged = !strcmp(oid, f->remote_oid);
    }
    return LFL_OK;
}

static lfl_status lfs_upload(const hub_ctx *c, void *curl, const char *rev, file_list *l, lfl_hub_commit *out)
{
    /* the objects to send: LFS files not on the Hub already at that path, one per content */
    int *todo = calloc((size_t)(l->n ? l->n : 1), sizeof *todo), nt = 0;
    if (!todo) return lfl_fail(LFL_ERR_MEM, "hub: out of memory");
    int64_t total = 0;
    for (int i = 0; i < l->n; i++) {
        up_file *f = &l->v[i];
        if (!f->lfs || f->ignored) continue;
        lfl_status st = lfl_sha256_file(f->local, f->sha256);
        if (st) { free(todo); return st; }
        if (f->remote_oid && !strcmp(f->remote_oid, f->sha256)) { f->unchanged = true; continue; }
        bool dup = false;
        for (int k = 0; k < nt && !dup; k++) dup = !strcmp(l->v[todo[k]].sha256, f->sha256);
        if (dup) continue;
        todo[nt++] = i;
        total += f->size;
    }
    char label[160];
    (void)!HUB_FMT(label, sizeof label, "upload %s", c->repo);
    hub_progress prog;
    hub_progress_init(&prog, c->progress, label, nt);
    prog.preset = true;
    prog.total = total;
    char url[4096];
    snprintf(url, sizeof url, "%s/%s%s.git/info/lfs/objects/batch", c->endpoint, c->url_prefix, c->repo);
    lfl_status st = LFL_OK;
    for (int from = 0; !st && from < nt; from += LFS_BATCH_CHUNK) {
        int to = from + LFS_BATCH_CHUNK < nt ? from + LFS_BATCH_CHUNK : nt;
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "operation", "upload");
        cJSON *tr = cJSON_AddArrayToObject(j, "transfers");
        cJSON_AddItemToArray(tr, cJSON_CreateString("basic"));
        cJSON_AddItemToArray(tr, cJSON_CreateString("multipart"));
        cJSON *objs = cJSON_AddArrayToObject(j, "objects");
        for (int k = from; k < to; k++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "oid", l->v[todo[k]].sha256);
            cJSON_AddNumberToObject(o, "size", (double)l->v[todo[k]].size);
            cJSON_AddItemToArray(objs, o);
        }
        cJSON_AddStringToObject(j, "hash_algo", "sha256");
        cJSON *ref = cJSON_AddObjectToObject(j, "ref");
        cJSON_AddStringToObject(ref, "name", rev);
        cJSON *ans = NULL;
        st = post_json(c, curl, url, j, LFS_MEDIA, rev, NULL, "asking where to send the LFS files (LFS batch)", &ans);
        cJSON_Delete(j);
        if (st) break;
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(ans, "objects");
        if (!cJSON_IsArray(list))
            st = lfl_fail(LFL_ERR_FORMAT, "hub: upload to %s %s: the LFS batch answer has no 'objects' list",
                          c->type_name, c->repo);
        for (int k = from; !st && k < to; k++) {
            up_file *f = &l->v[todo[k]];
            const cJSON *obj = NULL, *e;
            cJSON_ArrayForEach(e, list) {
                const cJSON *oid = cJSON_GetObjectItemCaseSensitive(e, "oid");
                if (cJSON_IsString(oid) && !strcmp(oid->valuestring, f->sha256)) { obj = e; break; }
            }
            if (!obj) {
                st = lfl_fail(LFL_ERR_FORMAT, "hub: upload to %s %s, file '%s': the LFS batch answer does not name its "
                              "object %s", c->type_name, c->repo, f->path, f->sha256);
                break;
            }
            const cJSON *err = cJSON_GetObjectItemCaseSensitive(obj, "error");
            if (err) {
                const cJSON *m = cJSON_GetObjectItemCaseSensitive(err, "message");
                const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
                st = lfl_fail(LFL_ERR_NET, "hub: upload to %s %s, file '%s': the LFS server refused the object: %s "
                              "(code %d)", c->type_name, c->repo, f->path,
                              cJSON_IsString(m) ? m->valuestring : "no message",
                              cJSON_IsNumber(code) ? code->valueint : 0);
                break;
            }
            const cJSON *actions = cJSON_GetObjectItemCaseSensitive(obj, "actions");
            if (!actions || !cJSON_GetObjectItemCaseSensitive(actions, "upload")) {
                /* the storage has this content already */
                hub_progress_skip(&prog, f->size);
                hub_progress_file_done(&prog);
                continue;
            }
            st = lfs_send(c, curl, f, actions, rev, &prog);
            if (!st) {
                out->n_uploaded++;
                out->bytes_uploaded += f->size;
                hub_progress_file_done(&prog);
            }
        }
        cJSON_Delete(ans);
    }
    hub_progress_finish(&prog);
    free(todo);
    return st;
}

/* the NDJSON commit: a header line, then one line a file */
static lfl_status commit(hub_ctx *c, void *curl, const lfl_hub_upload_opts *o, const char *qrev, const char *rev,
                         file_list *l, lfl_hub_commit *out)
{
    size_t cap = 4096, n = 0;
    char *body = malloc(cap);
    if (!body) return lfl_fail(LFL_ERR_MEM, "hub: out of memory");
    lfl_status st = LFL_OK;
    for (int i = -1; i < l->n && !st; i++) {
        cJSON *line = cJSON_CreateObject(), *v;
        if (i < 0) {
            cJSON_AddStringToObject(line, "key", "header");
            v = cJSON_AddObjectToObject(line, "value");
            cJSON_AddStringToObject(v, "summary", o->commit_message && *o->commit_message ? o->commit_message
                                                                                          : "Upload folder using lfl");
            cJSON_AddStringToObject(v, "description", o->commit_description ? o->commit_description : "");
        } else {
            up_file *f = &l->v[i];
            if (f->ignored || f->unchanged) { cJSON_Delete(line); continue; }
            out->n_files++;
            if (f->lfs) {
                out->n_lfs++;
                cJSON_AddStringToObject(line, "key", "lfsFile");
                v = cJSON_AddObjectToObject(line, "value");
                cJSON_AddStringToObject(v, "path", f->path);
                cJSON_AddStringToObject(v, "algo", "sha256");
                cJSON_AddStringToObject(v, "oid", f->sha256);
                cJSON_AddNumberToObject(v, "size", (double)f->size);
            } else {
                unsigned char *data;
                st = read_all(f, &data);
                char *b64 = st ? NULL : base64(data, (size_t)f->size);
                if (!st) free(data);
                if (!st && !b64) st = lfl_fail(LFL_ERR_MEM, "hub: out of memory");
                if (st) { cJSON_Delete(line); break; }
                cJSON_AddStringToObject(line, "key", "file");
                v = cJSON_AddObjectToObject(line, "value");
                cJSON_AddStringToObject(v, "content", b64);
                cJSON_AddStringToObject(v, "path", f->path);
                cJSON_AddStringToObject(v, "encoding", "base64");
                free(b64);
            }
        }
        char *text = cJSON_PrintUnformatted(line);
        cJSON_Delete(line);
        size_t len = text ? strlen(text) : 0;
        if (text && n + len + 2 > cap) {
            while (n + len + 2 > cap) cap *= 2;
            char *nb = realloc(body, cap);
            if (nb) body = nb;
            else { free(text); text = NULL; }
        }
        if (!text) { st = lfl_fail(LFL_ERR_MEM, "hub: out of memory"); break; }
        memcpy(body + n, text, len);
        n += len;
        body[n++] = '\n';
        body[n] = 0;
        free(text);
    }
    if (!st && out->n_files == 0) {
        /* everything is on the Hub as it is here: no empty commit (huggingface_hub skips it too);
         * the answer names the branch's commit */
        free(body);
        lfl_hub_info info;
        hub_resp r;
        LFL_TRY(hub_api_info(c, curl, rev, &info, &r));
        out->commit_oid = strdup(info.sha);
        lfl_hub_info_free(&info);
        char url[4096];
        snprintf(url, sizeof url, "%s/%s%s/commit/%s", c->endpoint, c->url_prefix, c->repo, out->commit_oid);
        out->commit_url = strdup(url);
        return out->commit_oid && out->commit_url ? LFL_OK : lfl_fail(LFL_ERR_MEM, "hub: out of memory");
    }
    char url[4096];
    snprintf(url, sizeof url, "%s/api/%s/%s/commit/%s", c->endpoint, c->type_plural, c->repo, qrev);
    char *ans = NULL;
    if (!st) {
        hub_body b = {.method = "POST", .content_type = "application/x-ndjson", .data = body, .n = n, .fd = -1};
        st = send_retry(c, curl, url, &b, rev, NULL, "the commit", false, &ans);
    }
    free(body);
    if (st) return st;
    cJSON *j = cJSON_Parse(ans);
    free(ans);
    const cJSON *oid = j ? cJSON_GetObjectItemCaseSensitive(j, "commitOid") : NULL;
    const cJSON *curl_ = j ? cJSON_GetObjectItemCaseSensitive(j, "commitUrl") : NULL;
    if (cJSON_IsString(oid)) out->commit_oid = strdup(oid->valuestring);
    if (cJSON_IsString(curl_)) out->commit_url = strdup(curl_->valuestring);
    cJSON_Delete(j);
    if (!out->commit_oid)
        return lfl_fail(LFL_ERR_FORMAT, "hub: upload to %s %s (revision '%s'): the commit answer names no commitOid",
                        c->type_name, c->repo, rev);
    return LFL_OK;
}

lfl_status lfl_hub_upload_folder(const char *repo_id, const char *folder, const lfl_hub_upload_opts *o,
                                 lfl_hub_commit *out)
{
    memset(out, 0, sizeof *out);
    lfl_hub_upload_opts def;
    if (!o) { lfl_hub_upload_opts_init(&def); o = &def; }
    hub_ctx c;
    LFL_TRY(hub_ctx_init(&c, repo_id, &o->hub));
    const char *rev = o->hub.revision && *o->hub.revision ? o->hub.revision : "main";
    if (c.offline)
        return lfl_fail(LFL_ERR_NET, "hub: upload to %s %s: offline mode is on (HF_HUB_OFFLINE=1)", c.type_name, c.repo);
    struct stat sb;
    if (!folder || stat(folder, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return lfl_fail(LFL_ERR_ARG, "hub: upload to %s %s: '%s' is not a folder", c.type_name, c.repo,
                        folder ? folder : "(null)");
    char prefix[1024] = "";
    if (o->path_in_repo) {
        const char *p = o->path_in_repo;
        while (*p == '/') p++;
        snprintf(prefix, sizeof prefix, "%s", p);
        size_t len = strlen(prefix);
        while (len && prefix[len - 1] == '/') prefix[--len] = 0;
        if (prefix[0] && !hub_safe_relpath(prefix))
            return lfl_fail(LFL_ERR_ARG, "hub: path_in_repo '%s' is not a valid folder in a repo", o->path_in_repo);
    }
    file_list l = {0};
    lfl_status st = walk(folder, "", 0, o, prefix, &l);
    if (!st && l.n == 0)
        st = lfl_fail(LFL_ERR_ARG, "hub: upload to %s %s: no files to upload in %s%s", c.type_name, c.repo, folder,
                      o->hub.n_allow || o->hub.n_ignore ? " (after the allow/ignore patterns)" : "");
    if (st) { files_free(&l); return st; }
    qsort(l.v, (size_t)l.n, sizeof *l.v, by_path);
    hub_reset_cancel();
    void *curl = hub_curl_new();
    if (!curl) { files_free(&l); return lfl_fail(LFL_ERR_NET, "hub: cannot create a libcurl handle"); }
    char qrev[1024];
    hub_url_quote(rev, false, qrev, sizeof qrev);
    if (o->create_repo) st = create_repo(&c, curl, o, rev);
    if (!st) st = preupload(&c, curl, qrev, rev, &l);
    if (!st) st = mark_unchanged(&l);
    if (!st) st = lfs_upload(&c, curl, rev, &l, out);
    if (!st) st = commit(&c, curl, o, qrev, rev, &l, out);
    hub_curl_free(curl);
    files_free(&l);
    if (!st) {
        out->repo_id = strdup(c.repo);
        if (!out->repo_id) st = lfl_fail(LFL_ERR_MEM, "hub: out of memory");
    }
    if (st) lfl_hub_commit_free(out);
    return st;
}
