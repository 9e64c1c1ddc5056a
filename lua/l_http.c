/* lfl.http: a small HTTP/1.1 server (libmicrohttpd) for `lfl serve`. Lua is
 * never called from libmicrohttpd's threads: each connection thread reads the
 * request, puts it on a bounded queue and waits; the Lua main loop takes
 * requests with server:next(timeout) and answers them (whole bodies, or
 * chunked streams fed with req:send). A full queue answers 503, bodies over
 * the limit 413. A waiting connection thread looks at its socket every 100 ms:
 * a client that goes away (before its answer, or mid-stream) marks its request
 * gone, which req:gone() and req:send report so generation can stop; one that
 * leaves while still queued frees its queue slot.
 * Policy against other web pages driving a local server, checked before a
 * request is queued (OpenAI-style error JSON): the Host header must name an IP
 * address, localhost or one of allowed_hosts (else 421: DNS rebinding); a
 * request with an Origin header needs that origin in `cors` (else 403),
 * unless it is the server's own (Origin http://<the Host header>); POST
 * bodies must be Content-Type application/json (else 415, so no "simple"
 * cross-site form or text/plain post gets through). Access-Control-Allow-Origin
 * is sent only to the configured origins (or * when cors lists "*"), and
 * OPTIONS preflights are answered here.
 *
 *   local srv = lfl.http.server{host = "127.0.0.1", port = 0, max_queue = 16, max_body = 1 << 20,
 *                               cors = {"http://localhost:3000"}, allowed_hosts = {"api.example.com"},
 *                               log_refused = true}   -- a stderr line per request refused here
 *   srv:port(); local req = srv:next(0.2)   -- nil on timeout
 *   req:info() -> {method, path, body, authorization}
 *   req:respond(status, content_type, body) | req:start(status, content_type); req:send(s) -> ok; req:finish()
 *   req:gone() -> the client has disconnected
 *   srv:stop() */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include "bridge.h"

#ifdef LFL_HAVE_MHD
#include <microhttpd.h>

#define SERVER_MT "lfl.http.Server"
#define REQUEST_MT "lfl.http.Request"

typedef struct http_server http_server;

typedef struct http_req {
    int refs;        /* connection thread, queue/Lua; under srv->mu */
    http_server *srv;
    char method[16];
    char *path, *auth;
    char *body;
    size_t body_len, body_cap;
    bool too_large, queued, taken; /* taken: by Lua from the queue */
    int fd;          /* the connection's socket, read only by its own thread */
    char *origin;    /* the request's Origin when it is an allowed one (echoed) */
    unsigned reject; /* a status answered without queueing (policy), with reject_body */
    const char *reject_body;
    bool options;    /* a preflight, answered without queueing */
    char *preflight_headers;
    char why[200];   /* what a refusal here was about, for the log */
    /* answer, set by Lua */
    int state;       /* 0 waiting, 1 whole response ready, 2 stream started, 3 refused (503 at stop) */
    int status;
    char ctype[96];
    char *out;       /* response body, or pending stream bytes */
    size_t out_len, out_off;
    bool done;       /* stream finished */
    bool gone;       /* client disconnected / request completed */
    struct http_req *next;
} http_req;

struct http_server {
    struct MHD_Daemon *d;
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* new request queued / request answered / stream data */
    http_req *head, *tail;
    int queued, max_queue;
    size_t max_body;
    char **cors, **hosts; /* NULL-terminated lists; "*" allows any */
    bool cors_any, hosts_any;
    bool stopping;
    bool log_refused; /* a line on stderr for each request refused here */
    uint16_t port;
};

static void req_unref(http_req *r) /* under srv->mu */
{
    if (--r->refs > 0) return;
    free(r->path);
    free(r->auth);
    free(r->origin);
    free(r->preflight_headers);
    free(r->body);
    free(r->out);
    free(r);
}

static void add_cors(struct MHD_Response *resp, const http_req *r)
{
    if (!r || !r->origin) return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->srv->cors_any ? "*" : r->origin);
    if (!r->srv->cors_any) MHD_add_response_header(resp, "Vary", "Origin");
}

/* s[0..) into out (size n) for a log line: cut, control bytes as '?' (a
 * header or path is the client's text) */
static void log_text(char *out, size_t n, const char *s)
{
    size_t i = 0;
    for (; s && s[i] && i + 4 < n && i < 96; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    if (s && s[i] && i + 4 < n) { memcpy(out + i, "...", 3); i += 3; }
    out[i] = 0;
}

/* Requests refused here never reach Lua's log: the same line, on stderr
 * ("12:00:01 POST /v1/chat/completions -> error 415 (refused: ...)"). One
 * fprintf per line, so lines from several connection threads do not mix. */
static void log_refusal(const http_req *r, unsigned status)
{
    if (!r || !r->srv->log_refused) return;
    char path[128], when[16];
    log_text(path, sizeof path, r->path);
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(when, sizeof when, "%H:%M:%S", &tm);
    fprintf(stderr, "%s %s %s -> error %u (refused before the handler: %s)\n", when, r->method, path, status,
            r->why[0] ? r->why : "?");
}

static enum MHD_Result send_simple(struct MHD_Connection *c, const http_req *r, unsigned status, const char *json)
{
    log_refusal(r, status);
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    add_cors(resp, r);
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* an OPTIONS request: the CORS preflight of an allowed origin, or the methods */
static enum MHD_Result send_options(struct MHD_Connection *c, const http_req *r)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Allow", "GET, POST, OPTIONS");
    if (r->origin) {
        add_cors(resp, r);
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                r->preflight_headers ? r->preflight_headers : "Authorization, Content-Type");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    }
    enum MHD_Result ret = MHD_queue_response(c, 204, resp);
    MHD_destroy_response(resp);
    return ret;
}

static const char *ERR_FULL =
    "{\"error\":{\"message\":\"the server is busy (request queue full), retry later\",\"type\":\"server_error\","
    "\"param\":null,\"code\":\"queue_full\"}}";
static const char *ERR_LARGE =
    "{\"error\":{\"message\":\"request body too large\",\"type\":\"invalid_request_error\",\"param\":null,"
    "\"code\":\"body_too_large\"}}";
static const char *ERR_HOST =
    "{\"error\":{\"message\":\"the Host header names a host this server does not answer for (a DNS rebinding "
    "page?): use an IP address or localhost, or start the server with --allowed-hosts\",\"type\":"
    "\"invalid_request_error\",\"param\":null,\"code\":\"invalid_host\"}}";
static const char *ERR_ORIGIN =
    "{\"error\":{\"message\":\"requests from this Origin are not allowed (start the server with --cors ORIGIN to "
    "allow a web page)\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"origin_not_allowed\"}}";
static const char *ERR_CTYPE =
    "{\"error\":{\"message\":\"the request body must be JSON sent as Content-Type: application/json\",\"type\":"
    "\"invalid_request_error\",\"param\":null,\"code\":\"unsupported_media_type\"}}";
static const char *ERR_STOP =
    "{\"error\":{\"message\":\"the server is shutting down\",\"type\":\"server_error\",\"param\":null,"
    "\"code\":\"shutting_down\"}}";

/* true once the peer has closed its end (or the socket failed); data it sent
 * (a pipelined request) is left unread */
static bool peer_closed(int fd)
{
    if (fd < 0) return false;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return true;
    if (!(p.revents & POLLIN)) return false;
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* waits on the server's condition for at most 100 ms (under s->mu) */
static bool wait_a_while(http_server *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100000000L;
    if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
    return pthread_cond_timedwait(&s->cv, &s->mu, &ts) != ETIMEDOUT;
}

/* the client has left: Lua sees it through req:gone(); a request still in the
 * queue leaves it (under s->mu) */
static void mark_gone(http_server *s, http_req *r)
{
    r->gone = true;
    if (r->queued && !r->taken) {
        http_req **pp = &s->head, *prev = NULL;
        while (*pp && *pp != r) { prev = *pp; pp = &(*pp)->next; }
        if (*pp) {
            *pp = r->next;
            if (s->tail == r) s->tail = prev;
            r->next = NULL;
            s->queued--;
            r->taken = true;
            req_unref(r); /* the queue's */
        }
    }
    pthread_cond_broadcast(&s->cv);
}

static bool in_list(char **list, const char *v, size_t n)
{
    for (char **p = list; p && *p; p++)
        if (strlen(*p) == n && strncasecmp(*p, v, n) == 0) return true;
    return false;
}

/* Host: an IP literal (v4, or v6 in brackets), localhost or an allowed name,
 * with an optional port. A DNS-rebinding page reaches us under its own host
 * name, which it cannot make one of these. */
static bool host_allowed(const http_server *s, const char *h)
{
    if (!h) return true; /* HTTP/1.0 (libmicrohttpd refuses HTTP/1.1 without Host) */
    if (s->hosts_any) return true;
    char name[256];
    const char *rest;
    if (h[0] == '[') {
        const char *e = strchr(h, ']');
        if (!e || (size_t)(e - h - 1) >= sizeof name) return false;
        memcpy(name, h + 1, (size_t)(e - h - 1));
        name[e - h - 1] = 0;
        struct in6_addr a6;
        if (inet_pton(AF_INET6, name, &a6) != 1) return false;
        rest = e + 1;
    } else {
        size_t n = strcspn(h, ":");
        if (n == 0 || n >= sizeof name) return false;
        memcpy(name, h, n);
        name[n] = 0;
        rest = h + n;
    }
    if (*rest == ':') {
        rest++;
        if (!*rest) return false;
        for (; *rest; rest++) if (*rest < '0' || *rest > '9') return false;
    } else if (*rest) {
        return false;
    }
    if (h[0] == '[') return true;
    struct in_addr a4;
    if (inet_pton(AF_INET, name, &a4) == 1) return true;
    if (strcasecmp(name, "localhost") == 0) return true;
    return in_list(s->hosts, name, strlen(name));
}

/* Content-Type application/json, parameters (charset) allowed */
static bool is_json(const char *ct)
{
    if (!ct) return false;
    while (*ct == ' ' || *ct == '\t') ct++;
    size_t n = strlen("application/json");
    if (strncasecmp(ct, "application/json", n) != 0) return false;
    ct += n;
    while (*ct == ' ' || *ct == '\t') ct++;
    return *ct == 0 || *ct == ';';
}

/* Origin "http://HOST" where HOST is the request's (already checked) Host
 * header: a page this server served calling it back (lfl board's own page),
 * not a cross-site request */
static bool same_origin(const char *origin, const char *host)
{
    if (!host) return false;
    const char *rest = strncmp(origin, "http://", 7) == 0 ? origin + 7 : NULL;
    return rest && strcasecmp(rest, host) == 0;
}

/* the request's policy verdict (first call, headers known) */
static void check_policy(http_server *s, http_req *r, struct MHD_Connection *c)
{
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    char seen[128];
    if (!host_allowed(s, host)) {
        r->reject = 421;
        r->reject_body = ERR_HOST;
        log_text(seen, sizeof seen, host ? host : "(none)");
        snprintf(r->why, sizeof r->why, "Host '%s' is not this server's address or an allowed host", seen);
        return;
    }
    if (origin && !same_origin(origin, host)) {
        if (!s->cors_any && !in_list(s->cors, origin, strlen(origin))) {
            r->reject = 403;
            r->reject_body = ERR_ORIGIN;
            log_text(seen, sizeof seen, origin);
            snprintf(r->why, sizeof r->why, "Origin '%s' is not allowed (--cors)", seen);
            return;
        }
        r->origin = strdup(origin);
    }
    if (strcmp(r->method, "OPTIONS") == 0) {
        r->options = true;
        const char *rh = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Headers");
        if (rh && r->origin) r->preflight_headers = strdup(rh);
        return;
    }
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    if (strcmp(r->method, "POST") == 0 && !is_json(ct)) {
        r->reject = 415;
        r->reject_body = ERR_CTYPE;
        log_text(seen, sizeof seen, ct ? ct : "(none)");
        snprintf(r->why, sizeof r->why, "Content-Type '%s' is not application/json", seen);
    }
}

/* chunked stream body: blocks (in the connection thread) until Lua sends */
static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    http_req *r = cls;
    http_server *s = r->srv;
    pthread_mutex_lock(&s->mu);
    while (r->out_off == r->out_len && !r->done && !r->gone && !s->stopping) {
        if (!wait_a_while(s) && r->out_off == r->out_len && !r->done && peer_closed(r->fd)) mark_gone(s, r);
    }
    ssize_t n;
    if (r->out_off < r->out_len) {
        size_t k = r->out_len - r->out_off;
        if (k > max) k = max;
        memcpy(buf, r->out + r->out_off, k);
        r->out_off += k;
        if (r->out_off == r->out_len) r->out_off = r->out_len = 0;
        n = (ssize_t)k;
    } else if (r->done) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        n = MHD_CONTENT_READER_END_WITH_ERROR;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void stream_free(void *cls)
{
    http_req *r = cls;
    http_server *s = r->srv;
    pthread_mutex_lock(&s->mu);
    r->gone = true;
    req_unref(r);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    http_server *s = cls;
    http_req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->refs = 1;
        r->srv = s;
        snprintf(r->method, sizeof r->method, "%s", method);
        r->path = strdup(url);
        const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        r->auth = a ? strdup(a) : NULL;
        if (!r->path || (a && !r->auth)) { free(r->path); free(r->auth); free(r); return MHD_NO; }
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        r->fd = ci ? (int)ci->connect_fd : -1;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->max_body) r->too_large = true;
        check_policy(s, r, c);
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_large && !r->reject) {
            size_t need = r->body_len + *upload_size;
            if (need > s->max_body) {
                r->too_large = true;
            } else {
                if (need + 1 > r->body_cap) {
                    size_t cap = r->body_cap ? r->body_cap : 4096;
                    while (cap < need + 1) cap *= 2;
                    char *nb = realloc(r->body, cap);
                    if (!nb) return MHD_NO;
                    r->body = nb;
                    r->body_cap = cap;
                }
                memcpy(r->body + r->body_len, upload, *upload_size);
                r->body_len = need;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->reject) return send_simple(c, r, r->reject, r->reject_body);
    if (r->options) return send_options(c, r);
    if (r->too_large) {
        snprintf(r->why, sizeof r->why, "the body is larger than max_body (%zu bytes)", s->max_body);
        return send_simple(c, r, 413, ERR_LARGE);
    }
    if (r->queued) return MHD_YES; /* answered already */
    pthread_mutex_lock(&s->mu);
    if (s->stopping || s->queued >= s->max_queue) {
        bool stop = s->stopping;
        pthread_mutex_unlock(&s->mu);
        if (stop) snprintf(r->why, sizeof r->why, "the server is stopping");
        else snprintf(r->why, sizeof r->why, "the queue is full (max_queue %d)", s->max_queue);
        return send_simple(c, r, 503, stop ? ERR_STOP : ERR_FULL);
    }
    r->queued = true;
    r->refs++; /* the queue's (then Lua's) */
    if (s->tail) s->tail->next = r; else s->head = r;
    s->tail = r;
    s->queued++;
    pthread_cond_broadcast(&s->cv);
    while (r->state == 0 && !s->stopping && !r->gone) {
        if (!wait_a_while(s) && r->state == 0 && peer_closed(r->fd)) mark_gone(s, r);
    }
    if (r->state == 0 && r->gone) {
        /* nobody to answer: close; Lua finds req:gone() */
        pthread_mutex_unlock(&s->mu);
        return MHD_NO;
    }
    if (r->state == 0) r->state = 3;
    int state = r->state;
    pthread_mutex_unlock(&s->mu);
    if (state == 3) {
        snprintf(r->why, sizeof r->why, "the server is stopping");
        return send_simple(c, r, 503, ERR_STOP);
    }
    struct MHD_Response *resp;
    if (state == 1) {
        resp = MHD_create_response_from_buffer(r->out_len, r->out, MHD_RESPMEM_MUST_COPY);
    } else {
        pthread_mutex_lock(&s->mu);
        r->refs++; /* the stream reader's, dropped in stream_free */
        pthread_mutex_unlock(&s->mu);
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, r, stream_free);
        if (!resp) {
            pthread_mutex_lock(&s->mu);
            req_unref(r);
            pthread_mutex_unlock(&s->mu);
        }
    }
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", r->ctype);
    add_cors(resp, r);
    if (state == 2) MHD_add_response_header(resp, "Cache-Control", "no-cache");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)c;
    (void)toe;
    http_server *s = cls;
    http_req *r = *con_cls;
    if (!r) return;
    pthread_mutex_lock(&s->mu);
    r->gone = true;
    req_unref(r);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    *con_cls = NULL;
}

/* libmicrohttpd's messages on stderr, less the one it prints each time a
 * handler closes the connection of a client that has left */
static void on_log(void *cls, const char *fm, va_list ap)
{
    (void)cls;
    if (strstr(fm, "Application reported internal error")) return;
    fputs("lfl.http: ", stderr);
    vfprintf(stderr, fm, ap);
}

/* ---- Lua side ---- */

typedef struct { http_server *s; } server_ud;
typedef struct { http_req *r; } req_ud;

static http_server *check_server(lua_State *L)
{
    server_ud *u = luaL_checkudata(L, 1, SERVER_MT);
    if (!u->s) luaL_error(L, "http: the server is stopped");
    return u->s;
}

static req_ud *check_req(lua_State *L) { return luaL_checkudata(L, 1, REQUEST_MT); }

static int opt_int_field(lua_State *L, int t, const char *k, int def)
{
    lua_getfield(L, t, k);
    int v = lua_isnil(L, -1) ? def : (int)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    return v;
}

static void free_list(char **list)
{
    for (char **p = list; p && *p; p++) free(*p);
    free(list);
}

/* opts[k]: a list of strings, each passing check (NULL: fine, else the
 * complaint); "*" sets *any. Returns a NULL-terminated copy (NULL when absent). */
static char **list_field(lua_State *L, int t, const char *k, const char *(*check)(const char *), bool *any)
{
    *any = false;
    lua_getfield(L, t, k);
    if (lua_isnil(L, -1)) { lua_pop(L, 1); return NULL; }
    if (!lua_istable(L, -1)) luaL_error(L, "http.server: %s must be a list of strings", k);
    size_t n = lua_objlen(L, -1);
    char **list = calloc(n + 1, sizeof *list);
    if (!list) luaL_error(L, "http.server: out of memory");
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, -1, (int)i + 1);
        const char *v = lua_tostring(L, -1);
        const char *why = !v || lua_type(L, -1) != LUA_TSTRING ? "is not a string" : strcmp(v, "*") ? check(v) : NULL;
        if (why) {
            char msg[300];
            snprintf(msg, sizeof msg, "http.server: %s[%d] '%s' %s", k, (int)i + 1, v ? v : "?", why);
            free_list(list);
            lua_pushstring(L, msg);
            lua_error(L);
        }
        if (strcmp(v, "*") == 0) *any = true;
        list[i] = strdup(v);
        lua_pop(L, 1);
        if (!list[i]) { free_list(list); luaL_error(L, "http.server: out of memory"); }
    }
    lua_pop(L, 1);
    return list;
}

/* an origin: scheme://host[:port], no path */
static const char *check_origin(const char *v)
{
    const char *p = strstr(v, "://");
    if (!p || p == v || !p[3] || strchr(p + 3, '/') || strpbrk(v, " \t,"))
        return "is not an origin: expected scheme://host[:port] with no path (e.g. http://localhost:3000), or *";
    return NULL;
}

/* a host name as the Host header carries it, without the port */
static const char *check_host(const char *v)
{
    if (!*v || strpbrk(v, " \t,/:[]@")) return "is not a host name: expected e.g. api.example.com (no port, no scheme), or *";
    return NULL;
}

static int l_server(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "host");
    const char *host = luaL_optstring(L, -1, "127.0.0.1");
    int port = opt_int_field(L, 1, "port", 8000);
    int max_queue = opt_int_field(L, 1, "max_queue", 16);
    int max_body = opt_int_field(L, 1, "max_body", 1 << 20);
    int max_conn = opt_int_field(L, 1, "max_connections", 128);
    lua_getfield(L, 1, "log_refused");
    bool log_refused = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (port < 0 || port > 65535) return luaL_error(L, "http.server: port %d is out of range", port);
    if (max_queue < 1 || max_body < 1 || max_conn < 1)
        return luaL_error(L, "http.server: max_queue, max_body and max_connections must be >= 1");
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        return luaL_error(L, "http.server: host '%s' is not an IPv4 address (e.g. 127.0.0.1 or 0.0.0.0)", host);
    bool cors_any, hosts_any;
    char **cors = list_field(L, 1, "cors", check_origin, &cors_any);
    char **hosts = list_field(L, 1, "allowed_hosts", check_host, &hosts_any);
    http_server *s = calloc(1, sizeof *s);
    if (!s) {
        free_list(cors);
        free_list(hosts);
        return luaL_error(L, "http.server: out of memory");
    }
    s->cors = cors;
    s->hosts = hosts;
    s->cors_any = cors_any;
    s->hosts_any = hosts_any;
    s->log_refused = log_refused;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->max_queue = max_queue;
    s->max_body = (size_t)max_body;
    s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0,
                            NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_log, NULL,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)max_conn, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)600, MHD_OPTION_END);
    if (!s->d) {
        int e = errno;
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free_list(s->cors);
        free_list(s->hosts);
        free(s);
        return luaL_error(L, "http.server: cannot listen on %s:%d (%s)", host, port, strerror(e));
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : (uint16_t)port;
    server_ud *u = lua_newuserdata(L, sizeof *u);
    u->s = s;
    luaL_getmetatable(L, SERVER_MT);
    lua_setmetatable(L, -2);
    return 1;
}

static int l_server_port(lua_State *L)
{
    lua_pushinteger(L, check_server(L)->port);
    return 1;
}

/* server:next(timeout_s) -> request or nil */
static int l_server_next(lua_State *L)
{
    http_server *s = check_server(L);
    double t = luaL_optnumber(L, 2, 0.2);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double when = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec + (t > 0 ? t : 0);
    ts.tv_sec = (time_t)when;
    ts.tv_nsec = (long)((when - (double)ts.tv_sec) * 1e9);
    pthread_mutex_lock(&s->mu);
    while (!s->head && !s->stopping) {
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT) break;
    }
    http_req *r = s->head;
    if (r) {
        s->head = r->next;
        if (!s->head) s->tail = NULL;
        r->next = NULL;
        s->queued--;
        r->taken = true;
    }
    pthread_mutex_unlock(&s->mu);
    if (!r) return 0;
    req_ud *u = lua_newuserdata(L, sizeof *u);
    u->r = r; /* takes the queue's reference */
    luaL_getmetatable(L, REQUEST_MT);
    lua_setmetatable(L, -2);
    return 1;
}

static void stop_server(http_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    /* queued requests nobody will take: their threads answer 503 */
    while (s->head) {
        http_req *r = s->head;
        s->head = r->next;
        req_unref(r);
    }
    s->tail = NULL;
    s->queued = 0;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    MHD_stop_daemon(s->d);
}

static int l_server_stop(lua_State *L)
{
    server_ud *u = luaL_checkudata(L, 1, SERVER_MT);
    if (u->s) {
        stop_server(u->s);
        /* requests still held by Lua point at the server: it is leaked on
         * purpose rather than freed under them (one per process) */
        u->s = NULL;
    }
    return 0;
}

static http_req *live_req(lua_State *L)
{
    req_ud *u = check_req(L);
    if (!u->r) luaL_error(L, "http: the request was already answered");
    return u->r;
}

static int l_req_info(lua_State *L)
{
    http_req *r = live_req(L);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, r->method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, r->path);
    lua_setfield(L, -2, "path");
    lua_pushlstring(L, r->body ? r->body : "", r->body_len);
    lua_setfield(L, -2, "body");
    if (r->auth) {
        lua_pushstring(L, r->auth);
        lua_setfield(L, -2, "authorization");
    }
    return 1;
}

static void drop(req_ud *u)
{
    http_req *r = u->r;
    if (!r) return;
    http_server *s = r->srv;
    pthread_mutex_lock(&s->mu);
    if (r->state == 0) r->state = 3; /* never answered: 503 */
    if (r->state == 2) r->done = true;
    pthread_cond_broadcast(&s->cv);
    req_unref(r);
    pthread_mutex_unlock(&s->mu);
    u->r = NULL;
}

static void set_head(lua_State *L, http_req *r, int *status)
{
    *status = (int)luaL_checkinteger(L, 2);
    if (*status < 100 || *status > 599) luaL_error(L, "http: status %d is not an HTTP status", *status);
    const char *ct = luaL_optstring(L, 3, "application/json");
    snprintf(r->ctype, sizeof r->ctype, "%s", ct);
}

/* req:respond(status, content_type, body): the whole answer */
static int l_req_respond(lua_State *L)
{
    req_ud *u = check_req(L);
    http_req *r = live_req(L);
    if (r->state != 0) return luaL_error(L, "http: the request was already answered");
    size_t n;
    const char *b = luaL_optlstring(L, 4, "", &n);
    char *copy = malloc(n ? n : 1);
    if (!copy) return luaL_error(L, "http: out of memory");
    memcpy(copy, b, n);
    int status;
    set_head(L, r, &status);
    http_server *s = r->srv;
    pthread_mutex_lock(&s->mu);
    free(r->out);
    r->out = copy;
    r->out_len = n;
    r->status = status;
    r->state = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    drop(u);
    return 0;
}

/* req:start(status, content_type): a chunked stream follows */
static int l_req_start(lua_State *L)
{
    http_req *r = live_req(L);
    if (r->state != 0) return luaL_error(L, "http: the request was already answered");
    int status;
    set_head(L, r, &status);
    http_server *s = r->srv;
    pthread_mutex_lock(&s->mu);
    r->status = status;
    r->state = 2;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* req:send(bytes) -> false when the client has gone away */
static int l_req_send(lua_State *L)
{
    http_req *r = live_req(L);
    if (r->state != 2) return luaL_error(L, "http: send needs req:start first");
    size_t n;
    const char *b = luaL_checklstring(L, 2, &n);
    http_server *s = r->srv;
    pthread_mutex_lock(&s->mu);
    bool ok = !r->gone && !s->stopping;
    if (ok && n) {
        size_t need = r->out_len + n;
        char *nb = realloc(r->out, need);
        if (!nb) {
            ok = false;
        } else {
            r->out = nb;
            memcpy(r->out + r->out_len, b, n);
            r->out_len = need;
            pthread_cond_broadcast(&s->cv);
        }
    }
    pthread_mutex_unlock(&s->mu);
    lua_pushboolean(L, ok);
    return 1;
}

static int l_req_gone(lua_State *L)
{
    http_req *r = live_req(L);
    http_server *s = r->srv;
    pthread_mutex_lock(&s->mu);
    bool g = r->gone;
    pthread_mutex_unlock(&s->mu);
    lua_pushboolean(L, g);
    return 1;
}

static int l_req_finish(lua_State *L)
{
    drop(check_req(L));
    return 0;
}

static const luaL_Reg server_methods[] = {
    {"port", l_server_port}, {"next", l_server_next}, {"stop", l_server_stop}, {NULL, NULL}};
static const luaL_Reg req_methods[] = {{"info", l_req_info}, {"respond", l_req_respond}, {"start", l_req_start},
                                       {"send", l_req_send}, {"gone", l_req_gone}, {"finish", l_req_finish},
                                       {NULL, NULL}};
static const luaL_Reg funcs[] = {{"server", l_server}, {NULL, NULL}};

static void new_mt(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc)
{
    luaL_newmetatable(L, name);
    lua_newtable(L);
    for (const luaL_Reg *m = methods; m->name; m++) {
        lua_pushcfunction(L, m->func);
        lua_setfield(L, -2, m->name);
    }
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
}

LFL_LUA_MODULE(http)
{
    new_mt(L, SERVER_MT, server_methods, l_server_stop);
    new_mt(L, REQUEST_MT, req_methods, l_req_finish);
    lfl_lua_register_funcs(L, "http", funcs);
}

#else /* no libmicrohttpd */

static int l_server(lua_State *L)
{
    return luaL_error(L, "http.server: lfl was built without libmicrohttpd (install libmicrohttpd-dev and rebuild)");
}

static const luaL_Reg funcs[] = {{"server", l_server}, {NULL, NULL}};

LFL_LUA_MODULE(http)
{
    lfl_lua_register_funcs(L, "http", funcs);
}

#endif
