/* The buffered record reader of core/io/linereader.h: one read(2) buffer that
 * grows only to the longest record, lines found with memchr, JSON array
 * elements and CSV records found with small resumable byte scanners. */
#define _GNU_SOURCE
#include "linereader.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (1 << 20)
#define MAX_RECORD ((size_t)1 << 30) /* one record (line, element) above this is an error, not an OOM */

enum { JSON_START, JSON_FIRST, JSON_AFTER, JSON_DONE };

struct lfl_linereader {
    int fd;
    char *path;
    char *buf;
    size_t cap, pos, len; /* unread bytes are buf[pos, len) */
    int64_t base;         /* file offset of buf[0] */
    int eof;              /* read(2) returned 0 */
    int json;             /* JSON array scanner state */
    int64_t bytes_read;
};

lfl_status lfl_linereader_open(const char *path, lfl_linereader **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return lfl_fail(LFL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
#ifdef POSIX_FADV_SEQUENTIAL
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    lfl_linereader *r = calloc(1, sizeof *r);
    char *buf = malloc(CHUNK);
    char *p = strdup(path);
    if (!r || !buf || !p) {
        free(r); free(buf); free(p); close(fd);
        return lfl_fail(LFL_ERR_MEM, "%s: out of memory for the read buffer", path);
    }
    r->fd = fd;
    r->path = p;
    r->buf = buf;
    r->cap = CHUNK;
    *out = r;
    return LFL_OK;
}

void lfl_linereader_close(lfl_linereader *r)
{
    if (!r) return;
    if (r->fd >= 0) close(r->fd);
    free(r->buf);
    free(r->path);
    free(r);
}

int64_t lfl_linereader_tell(const lfl_linereader *r) { return r->base + (int64_t)r->pos; }
int64_t lfl_linereader_bytes_read(const lfl_linereader *r) { return r->bytes_read; }

lfl_status lfl_linereader_seek(lfl_linereader *r, int64_t off)
{
    if (off < 0 || lseek(r->fd, (off_t)off, SEEK_SET) < 0)
        return lfl_fail(LFL_ERR_IO, "%s: cannot seek to byte %lld", r->path, (long long)off);
    r->base = off;
    r->pos = r->len = 0;
    r->eof = 0;
    /* offsets handed out by tell() between records: 0 is before the array, any other is after an element */
    r->json = off > 0 ? JSON_AFTER : JSON_START;
    return LFL_OK;
}

/* Moves the unread bytes to the front and reads more after them (growing the
 * buffer when one record fills it). Offsets relative to pos stay valid. */
static lfl_status fill(lfl_linereader *r)
{
    if (r->eof) return LFL_OK;
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->base += (int64_t)r->pos;
        r->pos = 0;
    }
    if (r->cap - r->len < CHUNK / 2) {
        if (r->cap >= MAX_RECORD)
            return lfl_fail(LFL_ERR_FORMAT, "%s: a record at byte %lld is longer than %zu MB", r->path,
                            (long long)r->base, MAX_RECORD >> 20);
        size_t ncap = r->cap * 2;
        char *nb = realloc(r->buf, ncap);
        if (!nb) return lfl_fail(LFL_ERR_MEM, "%s: out of memory growing the read buffer to %zu MB", r->path, ncap >> 20);
        r->buf = nb;
        r->cap = ncap;
    }
    for (;;) {
        ssize_t got = read(r->fd, r->buf + r->len, r->cap - r->len);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return lfl_fail(LFL_ERR_IO, "%s: read failed: %s", r->path, strerror(errno));
        if (got == 0) r->eof = 1;
        r->len += (size_t)got;
        r->bytes_read += got;
        return LFL_OK;
    }
}

lfl_status lfl_linereader_line(lfl_linereader *r, const char **s, size_t *n, int *eof)
{
    size_t scan = 0; /* bytes after pos already known to hold no newline */
    *eof = 0;
    for (;;) {
        char *start = r->buf + r->pos;
        size_t avail = r->len - r->pos;
        char *nl = scan < avail ? memchr(start + scan, '\n', avail - scan) : NULL;
        if (nl || (r->eof && avail > 0)) {
            size_t k = nl ? (size_t)(nl - start) : avail;
            size_t m = k;
            if (m > 0 && start[m - 1] == '\r') m--;
            *s = start;
            *n = m;
            r->pos += nl ? k + 1 : k;
            return LFL_OK;
        }
        if (r->eof) { *eof = 1; *s = NULL; *n = 0; return LFL_OK; }
        scan = avail;
        LFL_TRY(fill(r));
    }
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* skips whitespace; the next byte or -1 at the end of the file, pos on it */
static lfl_status next_byte(lfl_linereader *r, int *c)
{
    for (;;) {
        while (r->pos < r->len && is_ws(r->buf[r->pos])) r->pos++;
        if (r->pos < r->len) { *c = (unsigned char)r->buf[r->pos]; return LFL_OK; }
        if (r->eof) { *c = -1; return LFL_OK; }
        LFL_TRY(fill(r));
    }
}

lfl_status lfl_linereader_json_item(lfl_linereader *r, const char **s, size_t *n, int *eof)
{
    int c;
    *eof = 0;
    *s = NULL;
    *n = 0;
    if (r->json == JSON_DONE) { *eof = 1; return LFL_OK; }
    if (r->json == JSON_START && lfl_linereader_tell(r) == 0) { /* a UTF-8 BOM before the array */
        while (r->len - r->pos < 3 && !r->eof) LFL_TRY(fill(r));
        if (r->len - r->pos >= 3 && memcmp(r->buf + r->pos, "\xEF\xBB\xBF", 3) == 0) r->pos += 3;
    }
    LFL_TRY(next_byte(r, &c));
    if (r->json == JSON_START) {
        if (c != '[')
            return lfl_fail(LFL_ERR_FORMAT, "%s: expected a JSON array of records (the file does not start with '[')", r->path);
        r->pos++;
        r->json = JSON_FIRST;
        LFL_TRY(next_byte(r, &c));
        if (c == ']') { r->pos++; r->json = JSON_DONE; *eof = 1; return LFL_OK; }
    } else if (r->json == JSON_AFTER) {
        if (c == ']') { r->pos++; r->json = JSON_DONE; *eof = 1; return LFL_OK; }
        if (c != ',')
            return lfl_fail(LFL_ERR_FORMAT, "%s: byte %lld: expected ',' or ']' after an array element", r->path,
                            (long long)lfl_linereader_tell(r));
        r->pos++;
        LFL_TRY(next_byte(r, &c));
    }
    if (c < 0) return lfl_fail(LFL_ERR_FORMAT, "%s: the file ends inside the JSON array (no closing ']')", r->path);
    if (c == ']' || c == ',')
        return lfl_fail(LFL_ERR_FORMAT, "%s: byte %lld: expected an array element, found '%c'", r->path,
                        (long long)lfl_linereader_tell(r), c);
    /* scan one element: nesting depth and string state; offsets relative to pos survive fill() */
    int depth = 0, in_str = 0, esc = 0;
    size_t i = 0, end = 0;
    for (;;) {
        const char *b = r->buf + r->pos;
        size_t avail = r->len - r->pos;
        for (; i < avail; i++) {
            char ch = b[i];
            if (in_str) {
                if (esc) esc = 0;
                else if (ch == '\\') esc = 1;
                else if (ch == '"') { in_str = 0; if (depth == 0) { end = i + 1; goto done; } }
            } else if (ch == '"') {
                in_str = 1;
            } else if (ch == '{' || ch == '[') {
                depth++;
            } else if (ch == '}' || ch == ']') {
                if (depth == 0) { end = i; goto done; } /* the array's own ']' after a scalar */
                if (--depth == 0) { end = i + 1; goto done; }
            } else if (depth == 0 && (ch == ',' || is_ws(ch))) {
                end = i;
                goto done;
            }
        }
        if (r->eof)
            return lfl_fail(LFL_ERR_FORMAT, "%s: the file ends inside a JSON array element that starts at byte %lld",
                            r->path, (long long)lfl_linereader_tell(r));
        LFL_TRY(fill(r));
    }
done:
    *s = r->buf + r->pos;
    *n = end;
    r->pos += end;
    r->json = JSON_AFTER;
    return LFL_OK;
}

lfl_status lfl_linereader_csv_record(lfl_linereader *r, const char **s, size_t *n, int *eof)
{
    int in_q = 0;
    size_t i = 0;
    *eof = 0;
    for (;;) {
        const char *b = r->buf + r->pos;
        size_t avail = r->len - r->pos;
        for (; i < avail; i++) {
            char ch = b[i];
            if (ch == '"') in_q = !in_q; /* a doubled quote toggles twice */
            else if (ch == '\n' && !in_q) {
                size_t m = i;
                if (m > 0 && b[m - 1] == '\r') m--;
                *s = b;
                *n = m;
                r->pos += i + 1;
                return LFL_OK;
            }
        }
        if (r->eof) {
            if (avail == 0) { *eof = 1; *s = NULL; *n = 0; return LFL_OK; }
            if (in_q)
                return lfl_fail(LFL_ERR_FORMAT, "%s: unterminated quoted field in the record at byte %lld", r->path,
                                (long long)lfl_linereader_tell(r));
            size_t m = avail;
            if (b[m - 1] == '\r') m--;
            *s = b;
            *n = m;
            r->pos += avail;
            return LFL_OK;
        }
        LFL_TRY(fill(r));
    }
}
