/* Patterns for Split/Replace: literals and regexes. tokenizer.json regexes are
 * written for Oniguruma; PCRE2 (UTF + UCP, JIT) runs them after a small
 * translation: Oniguruma's \s is Unicode White_Space, which adds U+0085 (NEL)
 * to PCRE2's \s, and ^/$ are line anchors (PCRE2_MULTILINE). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "tok_internal.h"

static bool put(tok_buf *b, const char *s) { return tok_buf_put(b, s, strlen(s)); }

static bool translate(const char *p, size_t n, tok_buf *out)
{
    bool in_class = false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char d = p[i + 1];
            bool ok;
            if (d == 's') ok = put(out, in_class ? "\\s\\x{85}" : "[\\s\\x{85}]");
            else if (d == 'S' && !in_class) ok = put(out, "[^\\s\\x{85}]");
            else ok = tok_buf_put(out, p + i, 2);
            if (!ok) return false;
            i++;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = true;
            if (!tok_buf_put(out, "[", 1)) return false;
            if (i + 1 < n && p[i + 1] == '^') { if (!tok_buf_put(out, "^", 1)) return false; i++; }
            if (i + 1 < n && p[i + 1] == ']') { if (!tok_buf_put(out, "]", 1)) return false; i++; }
            continue;
        }
        if (in_class && c == '[' && i + 1 < n && p[i + 1] == ':') {
            const char *end = NULL;
            for (size_t j = i + 2; j + 1 < n; j++)
                if (p[j] == ':' && p[j + 1] == ']') { end = p + j + 2; break; }
            if (end) {
                if (!tok_buf_put(out, p + i, (size_t)(end - (p + i)))) return false;
                i = (size_t)(end - p) - 1;
                continue;
            }
        }
        if (in_class && c == ']') in_class = false;
        if (!tok_buf_put(out, &c, 1)) return false;
    }
    return tok_buf_put(out, "", 0);
}

lfl_status tok_pattern_regex(tok_pattern *p, const char *src, size_t n, const char *where)
{
    memset(p, 0, sizeof *p);
    p->is_regex = true;
    tok_buf t = {0};
    if (!translate(src, n, &t)) {
        tok_buf_free(&t);
        return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
    }
    int errcode;
    PCRE2_SIZE erroff;
    p->re = pcre2_compile((PCRE2_SPTR)t.p, t.n, PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &errcode, &erroff, NULL);
    tok_buf_free(&t);
    if (!p->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(errcode, msg, sizeof msg);
        return lfl_fail(LFL_ERR_FORMAT, "tokenizer: %s: cannot compile regex '%.*s': %s (at %zu)",
                        where, (int)(n > 200 ? 200 : n), src, (const char *)msg, (size_t)erroff);
    }
    p->jit = pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE) == 0;
    p->lit = malloc(n + 1);
    if (!p->lit) return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
    memcpy(p->lit, src, n);
    p->lit[n] = 0;
    p->lit_len = n;
    return LFL_OK;
}

lfl_status tok_pattern_literal(tok_pattern *p, const char *s, size_t n)
{
    memset(p, 0, sizeof *p);
    p->lit = malloc(n + 1);
    if (!p->lit) return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
    memcpy(p->lit, s, n);
    p->lit[n] = 0;
    p->lit_len = n;
    return LFL_OK;
}

void tok_pattern_free(tok_pattern *p)
{
    if (p->re) pcre2_code_free(p->re);
    free(p->lit);
    memset(p, 0, sizeof *p);
}

bool tok_pattern_find(const tok_pattern *p, tok_ws *ws, const char *s, size_t n, size_t from,
                      size_t *ms, size_t *me, lfl_status *err)
{
    *err = LFL_OK;
    if (!p->is_regex) {
        if (p->lit_len == 0 || from >= n) return false;
        const char *hit = memmem(s + from, n - from, p->lit, p->lit_len);
        if (!hit) return false;
        *ms = (size_t)(hit - s);
        *me = *ms + p->lit_len;
        return true;
    }
    /* decoders run without a workspace: a match block of their own */
    pcre2_match_data *md = ws ? ws->md : pcre2_match_data_create(8, NULL);
    if (!md) {
        *err = lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory");
        return false;
    }
    bool found = false;
    while (from <= n) {
        int rc;
        if (p->jit && ws) {
            rc = pcre2_jit_match(p->re, (PCRE2_SPTR)s, n, from, 0, md, ws->mctx);
            if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
                rc = pcre2_match(p->re, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK, md, NULL);
        } else {
            rc = pcre2_match(p->re, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK, md, NULL);
        }
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            *err = lfl_fail(LFL_ERR_ARG, "tokenizer: regex match failed: %s", (const char *)msg);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] > ov[0]) {
            *ms = ov[0];
            *me = ov[1];
            found = true;
            break;
        }
        /* an empty match gives no split: go on after the next char */
        size_t at = ov[0];
        if (at >= n) break;
        from = at + (size_t)tok_utf8_len((unsigned char)s[at]);
    }
    if (!ws) pcre2_match_data_free(md);
    return found;
}
