/* HTTP for the Hub client over libcurl: HEAD with relative-only redirects,
 * GETs that follow redirects by hand so the Authorization header never leaves
 * the endpoint's origin (scheme, host, port), Range resumes into a file with
 * streaming sha256, header parsing (X-Repo-Commit, X-Linked-Etag, ...), and
 * the error messages for 401/403/404 and friends. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "internal.h"

#define MAX_HOPS 10
#define ERR_BODY_MAX 4096
#define API_BODY_MAX ((size_t)256 << 20)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

void *hub_curl_new(void)
{
    pthread_once(&curl_once, curl_init_once);
    return curl_easy_init();
}

void hub_curl_free(void *curl)
{
    if (curl) curl_easy_cleanup(curl);
}

/* Python's urllib.parse.quote: unreserved chars stay, '/' too when asked */
void hub_url_quote(const char *s, bool keep_slash, char *out, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 4 < n; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~' || (keep_slash && *p == '/')) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = 0;
}

/* "scheme://host:port" with the default port filled in; false if unparsable */
static bool origin_of(const char *url, char *out, size_t n)
{
    CURLU *u = curl_url();
    if (!u) return false;
    char *scheme = NULL, *host = NULL, *port = NULL;
    bool ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK;
    if (ok) {
        for (char *p = host; *p; p++) *p = (char)tolower((unsigned char)*p);
        snprintf(out, n, "%s://%s:%s", scheme, host, port);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return ok;
}

bool hub_same_origin(const char *a, const char *b)
{
    char oa[1200], ob[1200];
    return origin_of(a, oa, sizeof oa) && origin_of(b, ob, sizeof ob) && strcmp(oa, ob) == 0;
}

typedef struct {
    hub_resp *r;
    const hub_ctx *c;
    char etag_plain[160];
    int64_t content_length;
    char location_raw[2048];
    char content_range[128];
    char *body;               /* error bodies and API answers */
    size_t nbody, cap, max_body;
    hub_sink *sink;
    bool sink_checked, range_mismatch, write_failed;
    bool answer;              /* the body is the answer (API calls), not an error page */
    bool body_full;           /* the body reached max_body and the transfer was stopped */
    int write_errno;
} req;

static void trim_value(char *v)
{
    size_t n = strlen(v);
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t')) v[--n] = 0;
}

/* W/"abc" -> abc */
static void normalize_etag(const char *v, char *out, size_t n)
{
    if (strncmp(v, "W/", 2) == 0) v += 2;
    while (*v == '"') v++;
    snprintf(out, n, "%s", v);
    size_t len = strlen(out);
    while (len && out[len - 1] == '"') out[--len] = 0;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    req *q = ud;
    hub_resp *r = q->r;
    size_t n = size * nitems;
    char line[4096];
    size_t len = n < sizeof line - 1 ? n : sizeof line - 1;
    memcpy(line, buf, len);
    line[len] = 0;
    trim_value(line);
    if (strncmp(line, "HTTP/", 5) == 0) {
        /* a new response (after a 1xx): forget what the previous one said */
        const char *sp = strchr(line, ' ');
        long st = sp ? strtol(sp + 1, NULL, 10) : 0;
        hub_resp keep = *r;
        memset(r, 0, sizeof *r);
        r->curl_code = keep.curl_code;
        r->status = st;
        r->size = -1;
        q->etag_plain[0] = 0;
        q->content_length = -1;
        q->location_raw[0] = 0;
        q->content_range[0] = 0;
        return n;
    }
    char *colon = strchr(line, ':');
    if (!colon) return n;
    *colon = 0;
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    const char *k = line;
    if (!strcasecmp(k, "x-repo-commit")) snprintf(r->commit, sizeof r->commit, "%s", v);
    else if (!strcasecmp(k, "x-linked-etag")) { normalize_etag(v, r->etag, sizeof r->etag); r->linked = true; }
    else if (!strcasecmp(k, "etag")) {
        normalize_etag(v, q->etag_plain, sizeof q->etag_plain);
        snprintf(r->etag_raw, sizeof r->etag_raw, "%s", v);
    }
    else if (!strcasecmp(k, "x-linked-size")) r->size = strtoll(v, NULL, 10);
    else if (!strcasecmp(k, "content-length")) q->content_length = strtoll(v, NULL, 10);
    else if (!strcasecmp(k, "location")) snprintf(q->location_raw, sizeof q->location_raw, "%s", v);
    else if (!strcasecmp(k, "x-error-code")) snprintf(r->error_code, sizeof r->error_code, "%s", v);
    else if (!strcasecmp(k, "x-error-message")) snprintf(r->error_message, sizeof r->error_message, "%s", v);
    else if (!strcasecmp(k, "x-request-id")) snprintf(r->request_id, sizeof r->request_id, "%s", v);
    else if (!strcasecmp(k, "retry-after")) r->retry_after = atof(v);
    else if (!strcasecmp(k, "content-range")) snprintf(q->content_range, sizeof q->content_range, "%s", v);
    else if (!strcasecmp(k, "link")) {
        /* <url>; rel="next" (possibly among other links, comma-separated) */
        for (char *lt = strchr(v, '<'); lt; lt = strchr(lt + 1, '<')) {
            char *gt = strchr(lt, '>');
            if (!gt) break;
            char *semi = gt + 1, *comma = strchr(semi, ',');
            size_t span = comma ? (size_t)(comma - semi) : strlen(semi);
            char params[256];
            snprintf(params, sizeof params, "%.*s", (int)(span < 255 ? span : 255), semi);
            if (strstr(params, "rel=\"next\"") || strstr(params, "rel=next")) {
                snprintf(r->next_url, sizeof r->next_url, "%.*s", (int)(gt - lt - 1), lt + 1);
                break;
            }
        }
    }
    return n;
}

/* Keeps the body up to max_body; past it the transfer stops (false), so a
 * server sending without end cannot keep a request busy forever. */
static bool append_body(req *q, const char *p, size_t n)
{
    bool full = q->nbody + n > q->max_body;
    if (full) {
        q->body_full = true;
        n = q->max_body > q->nbody ? q->max_body - q->nbody : 0;
    }
    if (!n) return !full;
    if (q->nbody + n + 1 > q->cap) {
        size_t cap = q->cap ? q->cap : 4096;
        while (cap < q->nbody + n + 1) cap *= 2;
        char *b = realloc(q->body, cap);
        if (!b) return false;
        q->body = b;
        q->cap = cap;
    }
    memcpy(q->body + q->nbody, p, n);
    q->nbody += n;
    q->body[q->nbody] = 0;
    return !full;
}

/* "bytes 100-199/200" -> start 100, total 200 */
static void parse_content_range(const char *v, int64_t *start, int64_t *total)
{
    *start = -1;
    *total = -1;
    if (strncasecmp(v, "bytes ", 6) != 0) return;
    v += 6;
    char *end;
    long long s = strtoll(v, &end, 10);
    if (end == v || *end != '-') return;
    *start = s;
    const char *slash = strchr(end, '/');
    if (slash && slash[1] != '*') *total = strtoll(slash + 1, NULL, 10);
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    req *q = ud;
    size_t n = size * nmemb;
    hub_sink *s = q->sink;
    long st = q->r->status;
    if (!s || (st != 200 && st != 206)) return append_body(q, p, n) ? n : 0;
    if (!q->sink_checked) {
        q->sink_checked = true;
        if (st == 206) {
            int64_t start, total;
            parse_content_range(q->content_range, &start, &total);
            if (start != s->offset) { q->range_mismatch = true; return 0; }
            s->total = total;
        } else {
            /* the server ignored Range: start the file over */
            if (s->offset > 0) {
                if (ftruncate(s->fd, 0) != 0 || lseek(s->fd, 0, SEEK_SET) != 0) {
                    q->write_failed = true;
                    q->write_errno = errno;
                    return 0;
                }
                if (s->sha) lfl_sha256_init(s->sha);
                hub_progress_add(s->progress, -s->offset);
                s->offset = 0;
                s->restarted = true;
            }
            s->total = q->content_length;
        }
    }
    /* Bytes past the file's size are never written: the size the Hub gave
     * for the file, else what this response declared. (curl itself stops at
     * a Content-Length; a chunked or connection-close body has none.) */
    int64_t cap = s->limit >= 0 ? s->limit : s->total;
    if (cap >= 0 && s->offset + s->written + (int64_t)n > cap) {
        q->r->oversize = true;
        q->r->oversize_limit = cap;
        return 0;
    }
    for (size_t off = 0; off < n;) {
        ssize_t w = write(s->fd, p + off, n - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            q->write_failed = true;
            q->write_errno = errno;
            return 0;
        }
        off += (size_t)w;
    }
    if (s->sha) lfl_sha256_update(s->sha, p, n);
    s->written += (int64_t)n;
    hub_progress_add(s->progress, (int64_t)n);
    return n;
}

static int on_xfer(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt; (void)dn; (void)ut; (void)un;
    req *q = ud;
    if (hub_cancelled()) return 1;
    if (q->c->abort_flag && *q->c->abort_flag) return 1;
    return 0;
}

static bool is_absolute_url(const char *loc)
{
    const char *colon = strstr(loc, "://");
    const char *slash = strchr(loc, '/');
    return (colon && (!slash || colon < slash)) || strncmp(loc, "//", 2) == 0;
}

static char ua[128];
static pthread_once_t ua_once = PTHREAD_ONCE_INIT;
static void ua_init(void)
{
    curl_version_info_data *d = curl_version_info(CURLVERSION_NOW);
    snprintf(ua, sizeof ua, "lfl/0.1; libcurl/%s", d && d->version ? d->version : "?");
}

static const char *user_agent(void)
{
    pthread_once(&ua_once, ua_init);
    return ua;
}

typedef enum { M_HEAD, M_GET } method;

/* The token header (only toward the Hub's own address: never to a CDN or
 * storage URL a redirect or an LFS answer names) appended to hdr. */
static struct curl_slist *auth_header(const hub_ctx *c, const char *url, struct curl_slist *hdr)
{
    if (!c->token[0] || !hub_same_origin(url, c->endpoint)) return hdr;
    char line[1200];
    snprintf(line, sizeof line, "Authorization: Bearer %s", c->token);
    return curl_slist_append(hdr, line);
}

/* What every Hub request sets: URL, headers, user agent, no automatic
 * redirects (the callers decide which to follow), no signals, http(s) only. */
static void common_options(CURL *h, const char *url, struct curl_slist *hdr)
{
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_USERAGENT, user_agent());
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
}

/* Runs one request chain; follows relative redirects always, absolute ones
 * only when follow_abs. The final URL lands in `final_url`. */
static lfl_status perform(const hub_ctx *c, CURL *h, const char *url0, method m, bool follow_abs, req *q,
                          char *final_url, size_t final_n)
{
    hub_resp *r = q->r;
    char url[4096];
    snprintf(url, sizeof url, "%s", url0);
    for (int hop = 0;; hop++) {
        curl_easy_reset(h);
        memset(r, 0, sizeof *r);
        r->size = -1;
        q->content_length = -1;
        q->etag_plain[0] = q->location_raw[0] = q->content_range[0] = 0;
        q->nbody = 0;
        if (q->body) q->body[0] = 0;
        q->sink_checked = q->range_mismatch = q->write_failed = q->body_full = false;
        struct curl_slist *hdr = NULL;
        char line[1200];
        hdr = curl_slist_append(hdr, "Accept-Encoding: identity");
        hdr = auth_header(c, url, hdr);
        if (q->sink && q->sink->offset > 0) {
            snprintf(line, sizeof line, "Range: bytes=%lld-", (long long)q->sink->offset);
            hdr = curl_slist_append(hdr, line);
        }
        common_options(h, url, hdr);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, q);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, q);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xfer);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, q);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->etag_timeout);
        if (m == M_HEAD) {
            curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
            curl_easy_setopt(h, CURLOPT_TIMEOUT, c->etag_timeout);
        } else {
            /* a stalled transfer (< 1 byte/s for the timeout) fails and is retried */
            curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
            curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, q->sink ? c->download_timeout : c->etag_timeout);
        }
        if (getenv("LFL_HUB_DEBUG")) curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
        CURLcode rc = curl_easy_perform(h);
        curl_slist_free_all(hdr);
        r->curl_code = (int)rc;
        long st = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
        if (st) r->status = st;
        if (!r->etag[0]) snprintf(r->etag, sizeof r->etag, "%s", q->etag_plain);
        bool redirect = r->status >= 300 && r->status < 400 && q->location_raw[0];
        if (r->size < 0 && !redirect && q->content_length >= 0) r->size = q->content_length;
        snprintf(final_url, final_n, "%s", url);
        if (q->write_failed)
            return lfl_fail(LFL_ERR_IO, "hub: writing the download failed: %s", strerror(q->write_errno));
        if (r->oversize) /* the URL without its query (a CDN's is a signature) */
            return lfl_fail(LFL_ERR_NET, "%.*s sent more than %lld bytes: transfer stopped", (int)strcspn(url, "?"), url,
                            (long long)r->oversize_limit);
        if (q->body_full && rc == CURLE_WRITE_ERROR) {
            if (q->answer)
                return lfl_fail(LFL_ERR_NET, "hub: the answer from %s is larger than %zu bytes: transfer stopped", url,
                                q->max_body);
            rc = CURLE_OK; /* an error page: its first bytes say enough */
        }
        if (q->range_mismatch) {
            r->range_mismatch = true;
            return lfl_fail(LFL_ERR_NET, "hub: the server answered a different byte range ('%s') than asked "
                            "(from %lld)", q->content_range, (long long)q->sink->offset);
        }
        if (rc != CURLE_OK) {
            const char *why = curl_easy_strerror(rc);
            snprintf(r->curl_error, sizeof r->curl_error, "%s", why);
            if (rc == CURLE_ABORTED_BY_CALLBACK) {
                return lfl_fail(LFL_ERR_NET, "hub: interrupted");
            }
            r->transient = rc != CURLE_UNSUPPORTED_PROTOCOL && rc != CURLE_URL_MALFORMAT &&
                           rc != CURLE_SSL_CACERT_BADFILE && rc != CURLE_PEER_FAILED_VERIFICATION;
            r->status = 0;
            return lfl_fail(LFL_ERR_NET, "hub: request to %s failed: %s", url, why);
        }
        if (redirect && hop < MAX_HOPS) {
            char *next = NULL;
            curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &next);
            bool abs = is_absolute_url(q->location_raw);
            if (next && (!abs || follow_abs)) {
                snprintf(url, sizeof url, "%s", next);
                continue;
            }
            if (next) snprintf(r->location, sizeof r->location, "%s", next);
            return LFL_OK;
        }
        if (redirect) return lfl_fail(LFL_ERR_NET, "hub: too many redirects from %s", url0);
        (void)!HUB_FMT(r->location, sizeof r->location, "%s", url);
        r->transient = r->status == 408 || r->status == 429 || r->status >= 500;
        if (q->body && q->body[0] == '{' && !r->error_message[0]) {
            cJSON *j = cJSON_Parse(q->body);
            cJSON *e = j ? cJSON_GetObjectItemCaseSensitive(j, "error") : NULL;
            if (cJSON_IsString(e)) snprintf(r->error_message, sizeof r->error_message, "%s", e->valuestring);
            cJSON_Delete(j);
        }
        return LFL_OK;
    }
}

lfl_status hub_http_head(const hub_ctx *c, void *curl, const char *url, hub_resp *r)
{
    req q = {.r = r, .c = c, .max_body = ERR_BODY_MAX};
    char final[4096];
    lfl_status st = perform(c, curl, url, M_HEAD, false, &q, final, sizeof final);
    free(q.body);
    return st;
}

lfl_status hub_http_get_mem(const hub_ctx *c, void *curl, const char *url, hub_resp *r, char **body, size_t *n)
{
    req q = {.r = r, .c = c, .max_body = API_BODY_MAX, .answer = true};
    char final[4096];
    lfl_status st = perform(c, curl, url, M_GET, true, &q, final, sizeof final);
    if (st) { free(q.body); return st; }
    if (!q.body) q.body = calloc(1, 1);
    *body = q.body;
    if (n) *n = q.nbody;
    return LFL_OK;
}

lfl_status hub_http_get_file(const hub_ctx *c, void *curl, const char *url, hub_sink *sink, hub_resp *r)
{
    req q = {.r = r, .c = c, .max_body = ERR_BODY_MAX, .sink = sink};
    sink->written = 0;
    sink->restarted = false;
    sink->total = -1;
    char final[4096];
    lfl_status st = perform(c, curl, url, M_GET, true, &q, final, sizeof final);
    free(q.body);
    return st;
}

/* the file slice of an upload body, read as curl sends it */
typedef struct {
    const hub_body *b;
    int64_t pos;              /* bytes of the slice sent so far */
    bool failed;
    int err;
} body_src;

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    body_src *s = ud;
    int64_t left = s->b->length - s->pos;
    size_t want = size * nitems;
    if (left <= 0) return 0;
    if ((int64_t)want > left) want = (size_t)left;
    for (;;) {
        ssize_t got = pread(s->b->fd, buf, want, (off_t)(s->b->offset + s->pos));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            /* the file shrank or cannot be read: stop rather than send a short body */
            s->failed = true;
            s->err = got < 0 ? errno : EIO;
            return CURL_READFUNC_ABORT;
        }
        s->pos += got;
        hub_progress_add(s->b->progress, got);
        return (size_t)got;
    }
}

/* an upload gets this long without a byte moving either way (the Hub may
 * think for a while over a large commit) before it counts as stalled */
#define SEND_STALL_S 120L

lfl_status hub_http_send(const hub_ctx *c, void *curl, const char *url, const hub_body *b, hub_resp *r,
                         char **answer, size_t *n)
{
    CURL *h = curl;
    req q = {.r = r, .c = c, .max_body = answer ? API_BODY_MAX : ERR_BODY_MAX, .answer = answer != NULL};
    body_src src = {.b = b};
    if (answer) *answer = NULL;
    if (n) *n = 0;
    curl_easy_reset(h);
    memset(r, 0, sizeof *r);
    r->size = -1;
    q.content_length = -1;
    struct curl_slist *hdr = NULL;
    char line[1200];
    hdr = curl_slist_append(hdr, "Accept-Encoding: identity");
    hdr = curl_slist_append(hdr, "Expect:"); /* no 100-continue round trip */
    if (b->content_type) {
        snprintf(line, sizeof line, "Content-Type: %s", b->content_type);
        hdr = curl_slist_append(hdr, line);
    }
    if (b->accept) {
        snprintf(line, sizeof line, "Accept: %s", b->accept);
        hdr = curl_slist_append(hdr, line);
    }
    hdr = auth_header(c, url, hdr);
    common_options(h, url, hdr);
    bool put = strcmp(b->method, "PUT") == 0;
    if (b->data) {
        if (put) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, b->data);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b->n);
    } else {
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &src);
        if (put) {
            curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)b->length);
        } else {
            curl_easy_setopt(h, CURLOPT_POST, 1L);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b->length);
        }
    }
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &q);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &q);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xfer);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &q);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->etag_timeout);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, SEND_STALL_S);
    if (getenv("LFL_HUB_DEBUG")) curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hdr);
    r->curl_code = (int)rc;
    long st = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
    if (st) r->status = st;
    /* the part of the file that went out before a failure is counted again on a retry */
    if (rc != CURLE_OK) hub_progress_add(b->progress, -src.pos);
    if (src.failed) {
        free(q.body);
        return lfl_fail(LFL_ERR_IO, "hub: reading the file to upload failed at byte %lld: %s",
                        (long long)(b->offset + src.pos), strerror(src.err));
    }
    if (q.body_full && rc == CURLE_WRITE_ERROR) {
        if (answer) {
            free(q.body);
            return lfl_fail(LFL_ERR_NET, "hub: the answer from %.*s is larger than %zu bytes: transfer stopped",
                            (int)strcspn(url, "?"), url, q.max_body);
        }
        rc = CURLE_OK; /* an error page or an unread answer: its first bytes say enough */
    }
    if (rc != CURLE_OK) {
        free(q.body);
        const char *why = curl_easy_strerror(rc);
        snprintf(r->curl_error, sizeof r->curl_error, "%s", why);
        if (rc == CURLE_ABORTED_BY_CALLBACK) return lfl_fail(LFL_ERR_NET, "hub: interrupted");
        r->transient = rc != CURLE_UNSUPPORTED_PROTOCOL && rc != CURLE_URL_MALFORMAT &&
                       rc != CURLE_SSL_CACERT_BADFILE && rc != CURLE_PEER_FAILED_VERIFICATION;
        r->status = 0;
        /* the URL without its query: a presigned one carries a signature */
        return lfl_fail(LFL_ERR_NET, "hub: request to %.*s failed: %s", (int)strcspn(url, "?"), url, why);
    }
    r->transient = r->status == 408 || r->status == 429 || r->status >= 500;
    if (q.body && q.body[0] == '{' && !r->error_message[0] && (r->status < 200 || r->status >= 300)) {
        cJSON *j = cJSON_Parse(q.body);
        cJSON *e = j ? cJSON_GetObjectItemCaseSensitive(j, "error") : NULL;
        if (cJSON_IsString(e)) snprintf(r->error_message, sizeof r->error_message, "%s", e->valuestring);
        cJSON_Delete(j);
    } else if (q.body && !r->error_message[0] && (r->status < 200 || r->status >= 300)) {
        /* a plain-text error page (a storage server's): its first line */
        snprintf(r->error_message, sizeof r->error_message, "%.*s", (int)strcspn(q.body, "\r\n"), q.body);
    }
    if (answer) {
        if (!q.body) q.body = calloc(1, 1);
        if (!q.body) return lfl_fail(LFL_ERR_MEM, "hub: out of memory");
        *answer = q.body;
        if (n) *n = q.nbody;
    } else {
        free(q.body);
    }
    return LFL_OK;
}

lfl_status hub_http_fail(const hub_ctx *c, const hub_resp *r, const char *file, const char *rev)
{
    char what[1400];
    int w = snprintf(what, sizeof what, "hub: %s %s", c->type_name, c->repo);
    if (file) w += snprintf(what + w, sizeof what - (size_t)w, ", file '%s'", file);
    snprintf(what + w, sizeof what - (size_t)w, ", revision '%s'", rev ? rev : "main");
    char extra[800] = "";
    if (r->error_message[0] && r->request_id[0])
        snprintf(extra, sizeof extra, " (server: %s; request id %s)", r->error_message, r->request_id);
    else if (r->error_message[0])
        snprintf(extra, sizeof extra, " (server: %s)", r->error_message);
    else if (r->request_id[0])
        snprintf(extra, sizeof extra, " (request id %s)", r->request_id);
    const char *code = r->error_code;
    long s = r->status;
    if (s == 0)
        return lfl_fail(LFL_ERR_NET, "%s: cannot reach %s: %s", what, c->endpoint,
                        r->curl_error[0] ? r->curl_error : "network error");
    if (!strcmp(code, "GatedRepo"))
        return lfl_fail(LFL_ERR_NET, "%s: HTTP %ld, access to this gated repo is restricted: accept its license "
                        "at %s/%s%s while logged in, then set HF_TOKEN (or save the token in $HF_HOME/token) "
                        "to a token of that account%s", what, s, c->endpoint, c->url_prefix, c->repo, extra);
    if (!strcmp(code, "RepoNotFound") || (s == 401 && !code[0]))
        return lfl_fail(LFL_ERR_NET, "%s: HTTP %ld, repository not found or not accessible: check the repo id "
                        "(and repo_type); if it is private or gated, accept its license on the Hub and set "
                        "HF_TOKEN to a token with access%s%s", what, s,
                        c->token[0] ? " (a token was sent: it may be invalid or lack access)" : " (no token was sent)",
                        extra);
    if (!strcmp(code, "RevisionNotFound"))
        return lfl_fail(LFL_ERR_NET, "%s: HTTP %ld, revision not found (no such branch, tag or commit)%s", what, s,
                        extra);
    if (!strcmp(code, "EntryNotFound"))
        return lfl_fail(LFL_ERR_NET, "%s: HTTP %ld, file not found in the repo at this revision%s", what, s, extra);
    if (s == 403)
        return lfl_fail(LFL_ERR_NET, "%s: HTTP 403 forbidden: the token has no access to this repo (gated: accept "
                        "the license on the Hub and set HF_TOKEN to a token of that account)%s", what, extra);
    if (s == 404)
        return lfl_fail(LFL_ERR_NET, "%s: HTTP 404 not found (the repo, the file or the revision does not exist)%s",
                        what, extra);
    return lfl_fail(LFL_ERR_NET, "%s: HTTP %ld%s", what, s, extra);
}
