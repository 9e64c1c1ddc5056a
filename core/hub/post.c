/* lfl_http_post_json: the one-shot JSON POST of post.h (no redirects, no
 * credentials: the endpoints are a user's own servers). */
#include "post.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

typedef struct {
    char *buf;
    size_t n, cap, max;
    bool over;
} sink;

static size_t on_write(char *p, size_t sz, size_t nm, void *ud)
{
    sink *s = ud;
    size_t n = sz * nm;
    if (s->n + n > s->max) {
        s->over = true;
        return 0; /* aborts the transfer */
    }
    if (s->n + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->n + n + 1) cap *= 2;
        char *b = realloc(s->buf, cap);
        if (!b) return 0;
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->n, p, n);
    s->n += n;
    s->buf[s->n] = 0;
    return n;
}

lfl_status lfl_http_post_json(const char *url, const char *body, long timeout_s, size_t max_bytes, long *status,
                              char **resp)
{
    *status = 0;
    *resp = NULL;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return lfl_fail(LFL_ERR_ARG, "POST %s: expected an http:// or https:// URL", url);
    void *h = hub_curl_new();
    if (!h) return lfl_fail(LFL_ERR_IO, "POST %s: cannot start a curl handle", url);
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    sink s = {.max = max_bytes};
    char err[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, timeout_s < 30 ? timeout_s : 30L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hdr);
    hub_curl_free(h);
    if (s.over) {
        free(s.buf);
        return lfl_fail(LFL_ERR_IO, "POST %s: the answer is larger than %zu bytes", url, max_bytes);
    }
    if (rc != CURLE_OK) {
        free(s.buf);
        return lfl_fail(LFL_ERR_NET, "POST %s: %s", url, err[0] ? err : curl_easy_strerror(rc));
    }
    if (!s.buf) {
        s.buf = malloc(1);
        if (!s.buf) return lfl_fail(LFL_ERR_MEM, "POST %s: out of memory", url);
        s.buf[0] = 0;
    }
    *resp = s.buf;
    return LFL_OK;
}
