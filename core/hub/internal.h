/* Private to core/hub: the HTTP layer over libcurl, cache paths,
 * progress display. Not part of the public API (see hub.h). */
#ifndef LFL_HUB_INTERNAL_H
#define LFL_HUB_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include "hub.h"
#include "../util/sha256.h"

#define HUB_PATH 4096
/* snprintf that tells whether the text fit (also keeps -Wformat-truncation
 * quiet where a cut is handled or harmless) */
bool hub_fmt(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define HUB_FMT hub_fmt


/* ---- progress.c: one aggregate bar for all files of a call ---- */
typedef struct {
    pthread_mutex_t mu;
    bool on;
    char label[160];
    int64_t total, done;   /* bytes to fetch / fetched (incl. resumed bytes) */
    int files_total, files_done;
    double t0, last_draw;
    int64_t done_at_t0;    /* bytes already on disk when the call started */
    bool drawn;
    bool preset;           /* total came from the repo listing: HEAD sizes are not added */
} hub_progress;
void hub_progress_init(hub_progress *p, bool on, const char *label, int files_total);
void hub_progress_add_total(hub_progress *p, int64_t bytes, int64_t already);
void hub_progress_add(hub_progress *p, int64_t delta);
/* a file of a preset total that needed no transfer (its blob was cached) */
void hub_progress_skip(hub_progress *p, int64_t bytes);
void hub_progress_file_done(hub_progress *p);
void hub_progress_finish(hub_progress *p);
double hub_now(void);

/* ---- cache.c ---- */
typedef struct {
    char endpoint[1024];
    char cache[HUB_PATH];
    char token[1024];        /* empty: none */
    const char *type_name;   /* "model" | "dataset" | "space" */
    const char *type_plural; /* "models" | ... (API paths, cache folder prefix) */
    const char *url_prefix;  /* "" | "datasets/" | "spaces/" */
    char repo[512];
    char folder[HUB_PATH];   /* <cache>/<models--org--name> */
    char folder_name[600];   /* models--org--name */
    bool offline;
    bool progress;
    int retries;
    int max_workers;
    long etag_timeout, download_timeout;
    volatile sig_atomic_t *abort_flag; /* set when a sibling download failed */
} hub_ctx;

lfl_status hub_ctx_init(hub_ctx *c, const char *repo_id, const lfl_hub_opts *o);
bool hub_is_commit(const char *rev);
lfl_status hub_mkdirs(const char *dir);            /* mkdir -p */
lfl_status hub_mkdirs_for(const char *file);       /* mkdir -p of the parent */
bool hub_exists(const char *path);                 /* follows symlinks */
int64_t hub_file_size(const char *path);           /* -1 when missing */
lfl_status hub_write_atomic(const char *path, const char *data, size_t n);
char *hub_read_small(const char *path);            /* malloc'ed, trimmed; NULL on failure */
/* <folder>/refs/<rev> -> commit, or the revision itself when it is a commit */
bool hub_resolve_ref(const hub_ctx *c, const char *rev, char commit[64]);
lfl_status hub_write_ref(const hub_ctx *c, const char *rev, const char *commit);
/* snapshots/<commit>/<file> -> ../../blobs/<etag>, atomically replaced */
lfl_status hub_link_pointer(const hub_ctx *c, const char *commit, const char *file, const char *etag);
lfl_status hub_mark_no_exist(const hub_ctx *c, const char *commit, const char *file);
/* exclusive lock on .locks/<folder>/<etag>.lock (flock, as Python's filelock) */
lfl_status hub_lock(const hub_ctx *c, const char *etag, int *fd);
void hub_unlock(int fd);
bool hub_safe_relpath(const char *p);              /* no '..', not absolute, no empty parts */
bool hub_safe_name(const char *s);                 /* [A-Za-z0-9._-]+, not '.'/'..' */
lfl_status hub_copy_file(const char *src, const char *dst);
bool hub_cancelled(void);
void hub_reset_cancel(void);

/* ---- http.c ---- */
typedef struct {
    long status;             /* 0: no HTTP answer (network error) */
    int curl_code;           /* CURLcode of the transfer */
    bool transient;          /* worth retrying */
    char commit[64];         /* X-Repo-Commit */
    char etag[160];          /* normalized X-Linked-Etag or ETag */
    char etag_raw[160];      /* the ETag header as sent (a multipart upload's part id) */
    bool linked;             /* etag came from X-Linked-Etag */
    int64_t size;            /* X-Linked-Size or Content-Length; -1 unknown */
    char location[2048];     /* absolute URL to GET */
    char error_code[64];     /* X-Error-Code */
    char error_message[512]; /* X-Error-Message or the JSON "error" of the body */
    char request_id[128];
    double retry_after;      /* seconds, 0 when absent */
    char curl_error[256];
    char next_url[2048];     /* Link: <...>; rel="next" (paginated API lists) */
    bool range_mismatch;     /* a 206 for other bytes than asked: start the file over */
    bool oversize;           /* the body ran past the size expected of it: the transfer was stopped */
    int64_t oversize_limit;  /* that size (for oversize) */
} hub_resp;

/* HEAD on a resolve URL, following relative redirects only. */
lfl_status hub_http_head(const hub_ctx *c, void *curl, const char *url, hub_resp *r);
/* GET into memory (API calls), following redirects. *body is malloc'ed. */
lfl_status hub_http_get_mem(const hub_ctx *c, void *curl, const char *url, hub_resp *r, char **body, size_t *n);

typedef struct {
    int fd;                  /* file to append to (positioned at `offset`) */
    int64_t offset;          /* bytes already in the file */
    lfl_sha256 *sha;         /* when non-NULL, hashed as written */
    hub_progress *progress;
    int64_t written;         /* out: bytes written this call */
    bool restarted;          /* out: the server sent the whole file (200), file truncated */
    int64_t total;           /* out: total size from Content-Range/Content-Length, -1 unknown */
    int64_t limit;           /* the file's size when known (the Hub's metadata), else -1: a body that
                              * would make the file larger stops the transfer (r->oversize) */
} hub_sink;
/* One GET of `url` (resuming at sink->offset with Range), following redirects;
 * Authorization goes only to the endpoint's origin. One attempt, no retry. */
lfl_status hub_http_get_file(const hub_ctx *c, void *curl, const char *url, hub_sink *sink, hub_resp *r);

/* The body of a POST or PUT: bytes in memory, or a slice of an open file
 * read as it is sent (an LFS upload never sits in memory whole). */
typedef struct {
    const char *method;        /* "POST" or "PUT" */
    const char *content_type;  /* NULL: none */
    const char *accept;        /* NULL: none */
    const char *data;          /* the body in memory (n bytes); NULL: the file slice */
    size_t n;
    int fd;                    /* the file; its bytes [offset, offset + length) are sent */
    int64_t offset, length;
    hub_progress *progress;    /* file bytes sent are counted here (may be NULL) */
} hub_body;
/* One request with a body, no redirects followed; Authorization goes only to
 * the endpoint's origin (a presigned storage URL gets none). LFL_OK when an
 * HTTP answer came (any status, in r->status) with the answer in *answer
 * (malloc'ed, NUL-terminated; may be NULL when answer is NULL). One attempt. */
lfl_status hub_http_send(const hub_ctx *c, void *curl, const char *url, const hub_body *b, hub_resp *r,
                         char **answer, size_t *n);

void *hub_curl_new(void);
void hub_curl_free(void *curl);
bool hub_same_origin(const char *url_a, const char *url_b);
/* GET /api/<type>s/<repo>/revision/<rev>?blobs=true, retried on 5xx/429 */
lfl_status hub_api_info(const hub_ctx *c, void *curl, const char *rev, lfl_hub_info *out, hub_resp *r);
/* sleeps the retry backoff for attempt k (or Retry-After), waking early on cancel */
void hub_backoff(const hub_ctx *c, int attempt, double retry_after);
void hub_url_quote(const char *s, bool keep_slash, char *out, size_t n);
/* The error for a failed request, naming repo, file, revision and status. */
lfl_status hub_http_fail(const hub_ctx *c, const hub_resp *r, const char *file, const char *rev);

#endif
