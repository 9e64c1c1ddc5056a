/* Normalizers (NFC/NFD/NFKC/NFKD, Lowercase, Strip, Prepend, Append, Replace,
 * Sequence) on splits, keeping each output byte's original [start, end) so
 * token offsets point into the caller's text. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include "tok_internal.h"

static lfl_status oom(void) { return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory while normalizing"); }

static bool all_ascii(const tok_split *in)
{
    for (uint32_t i = 0; i < in->n; i++)
        if ((unsigned char)in->s[i] >= 0x80) return false;
    return true;
}

static utf8proc_option_t unicode_opts(int type)
{
    switch (type) {
    case TOK_NORM_NFC: return UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    case TOK_NORM_NFD: return UTF8PROC_STABLE | UTF8PROC_DECOMPOSE;
    case TOK_NORM_NFKC: return UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
    default: return UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
    }
}

/* Appends the normalization of in[a, e) (one grapheme cluster) aligned the way
 * HF's normalizer aligns: a composed char maps to the first char it came from,
 * chars left over after composition keep the trailing input chars, and the
 * chars of an expansion all map to the char that expanded. */
static lfl_status cluster(utf8proc_option_t opt, tok_builder *b, const tok_split *in, uint32_t a, uint32_t e)
{
    utf8proc_uint8_t *part = NULL;
    utf8proc_ssize_t pn = utf8proc_map((const utf8proc_uint8_t *)in->s + a, e - a, &part, opt);
    if (pn < 0) return lfl_fail(LFL_ERR_ARG, "tokenizer: unicode normalization failed: %s", utf8proc_errmsg(pn));
    uint32_t starts[64], n = 0;
    for (uint32_t i = a; i < e && n < 64; i += (uint32_t)tok_utf8_len((unsigned char)in->s[i])) starts[n++] = i;
    uint32_t m = 0;
    for (utf8proc_ssize_t k = 0; k < pn; k += tok_utf8_len(part[k])) m++;
    lfl_status st = LFL_OK;
    uint32_t j = 0;
    for (utf8proc_ssize_t k = 0; k < pn && st == LFL_OK; j++) {
        int len = tok_utf8_len(part[k]);
        uint32_t src = m <= n ? (j == 0 ? 0 : n - m + j) : (j < n ? j : n - 1);
        uint32_t cs = starts[src], ce = src + 1 < n ? starts[src + 1] : e;
        if (!tok_builder_put(b, (const char *)part + k, (size_t)len, tok_split_ostart(in, cs), tok_split_oend(in, ce - 1)))
            st = oom();
        k += len;
    }
    free(part);
    return st;
}

/* The text is normalized as a whole (that decides the bytes); alignment comes
 * from normalizing grapheme clusters one by one, which composes the same way
 * in practice; when it does not, every byte maps to the whole input. */
static lfl_status norm_unicode(int type, tok_ws *ws, const tok_split *in, tok_split *out)
{
    if (in->n == 0 || all_ascii(in)) { *out = *in; return LFL_OK; }
    utf8proc_option_t opt = unicode_opts(type);
    utf8proc_uint8_t *whole = NULL;
    utf8proc_ssize_t wn = utf8proc_map((const utf8proc_uint8_t *)in->s, in->n, &whole, opt);
    if (wn < 0) return lfl_fail(LFL_ERR_ARG, "tokenizer: unicode normalization failed: %s", utf8proc_errmsg(wn));
    if ((uint32_t)wn == in->n && memcmp(whole, in->s, in->n) == 0) {
        free(whole);
        *out = *in;
        return LFL_OK;
    }
    tok_builder *b = &ws->bld;
    b->s.n = 0;
    utf8proc_int32_t state = 0, prev = -1;
    uint32_t start = 0;
    lfl_status st = LFL_OK;
    for (uint32_t i = 0; i <= in->n && st == LFL_OK;) {
        int32_t cp = -1;
        int len = 0;
        if (i < in->n) len = tok_utf8_decode((const unsigned char *)in->s + i, in->n - i, &cp);
        bool brk = i == in->n || (prev >= 0 && utf8proc_grapheme_break_stateful(prev, cp, &state));
        if (brk && i > start) {
            st = cluster(opt, b, in, start, i);
            start = i;
        }
        if (i == in->n) break;
        prev = cp;
        i += (uint32_t)len;
    }
    if (st == LFL_OK && (b->s.n != (size_t)wn || memcmp(b->s.p, whole, (size_t)wn) != 0)) {
        b->s.n = 0;
        if (!tok_builder_put(b, (const char *)whole, (size_t)wn, tok_split_ostart(in, 0), tok_split_oend(in, in->n - 1)))
            st = oom();
    }
    free(whole);
    if (st != LFL_OK) return st;
    if (!tok_builder_freeze(b, &ws->arena, out)) return oom();
    return LFL_OK;
}

static lfl_status norm_lowercase(tok_ws *ws, const tok_split *in, tok_split *out)
{
    bool change = false;
    for (uint32_t i = 0; i < in->n && !change;) {
        int32_t cp;
        int len = tok_utf8_decode((const unsigned char *)in->s + i, in->n - i, &cp);
        if (cp == 0x130 || utf8proc_tolower(cp) != cp) change = true;
        i += (uint32_t)len;
    }
    if (!change) { *out = *in; return LFL_OK; }
    tok_builder *b = &ws->bld;
    b->s.n = 0;
    for (uint32_t i = 0; i < in->n;) {
        int32_t cp;
        int len = tok_utf8_decode((const unsigned char *)in->s + i, in->n - i, &cp);
        char enc[8];
        int en;
        if (cp == 0x130) { memcpy(enc, "i\xcc\x87", 3); en = 3; } /* İ -> i + combining dot */
        else en = tok_utf8_encode(utf8proc_tolower(cp), enc);
        if (!tok_builder_put(b, enc, (size_t)en, tok_split_ostart(in, i), tok_split_oend(in, i + (uint32_t)len - 1)))
            return oom();
        i += (uint32_t)len;
    }
    if (!tok_builder_freeze(b, &ws->arena, out)) return oom();
    return LFL_OK;
}

static void norm_strip(const tok_norm *n, const tok_split *in, tok_split *out)
{
    uint32_t a = 0, e = in->n;
    if (n->left) {
        while (a < e) {
            int32_t cp;
            int len = tok_utf8_decode((const unsigned char *)in->s + a, e - a, &cp);
            if (!tok_is_whitespace(cp)) break;
            a += (uint32_t)len;
        }
    }
    if (n->right) {
        while (e > a) {
            uint32_t k = e - 1;
            while (k > a && ((unsigned char)in->s[k] & 0xC0) == 0x80) k--;
            int32_t cp;
            tok_utf8_decode((const unsigned char *)in->s + k, e - k, &cp);
            if (!tok_is_whitespace(cp)) break;
            e = k;
        }
    }
    *out = tok_split_sub(in, a, e);
    out->token = in->token;
}

static lfl_status norm_prepend(const tok_norm *n, tok_ws *ws, const tok_split *in, tok_split *out, bool append)
{
    if (in->n == 0 || n->str_len == 0) { *out = *in; return LFL_OK; }
    tok_builder *b = &ws->bld;
    b->s.n = 0;
    if (append) {
        uint32_t k = in->n - 1;
        while (k > 0 && ((unsigned char)in->s[k] & 0xC0) == 0x80) k--;
        if (!tok_builder_copy(b, in, 0, in->n) ||
            !tok_builder_put(b, n->str, n->str_len, tok_split_ostart(in, k), tok_split_oend(in, in->n - 1)))
            return oom();
    } else {
        uint32_t first = (uint32_t)tok_utf8_len((unsigned char)in->s[0]);
        if (first > in->n) first = in->n;
        if (!tok_builder_put(b, n->str, n->str_len, tok_split_ostart(in, 0), tok_split_oend(in, first - 1)) ||
            !tok_builder_copy(b, in, 0, in->n))
            return oom();
    }
    if (!tok_builder_freeze(b, &ws->arena, out)) return oom();
    return LFL_OK;
}

static lfl_status norm_replace(const tok_norm *n, tok_ws *ws, const tok_split *in, tok_split *out)
{
    size_t ms, me;
    lfl_status err;
    if (!tok_pattern_find(&n->pat, ws, in->s, in->n, 0, &ms, &me, &err)) {
        if (err != LFL_OK) return err;
        *out = *in;
        return LFL_OK;
    }
    tok_builder *b = &ws->bld;
    b->s.n = 0;
    size_t pos = 0;
    do {
        if (!tok_builder_copy(b, in, (uint32_t)pos, (uint32_t)ms) ||
            !tok_builder_put(b, n->str, n->str_len, tok_split_ostart(in, (uint32_t)ms), tok_split_oend(in, (uint32_t)me - 1)))
            return oom();
        pos = me;
    } while (tok_pattern_find(&n->pat, ws, in->s, in->n, pos, &ms, &me, &err));
    if (err != LFL_OK) return err;
    if (!tok_builder_copy(b, in, (uint32_t)pos, in->n)) return oom();
    if (!tok_builder_freeze(b, &ws->arena, out)) return oom();
    return LFL_OK;
}

lfl_status tok_normalize(const tok_norm *n, tok_ws *ws, const tok_split *in, tok_split *out)
{
    if (!n) { *out = *in; return LFL_OK; }
    lfl_status st = LFL_OK;
    switch (n->type) {
    case TOK_NORM_NFC: case TOK_NORM_NFD: case TOK_NORM_NFKC: case TOK_NORM_NFKD:
        st = norm_unicode(n->type, ws, in, out);
        break;
    case TOK_NORM_LOWERCASE: st = norm_lowercase(ws, in, out); break;
    case TOK_NORM_STRIP: norm_strip(n, in, out); break;
    case TOK_NORM_PREPEND: st = norm_prepend(n, ws, in, out, false); break;
    case TOK_NORM_APPEND: st = norm_prepend(n, ws, in, out, true); break;
    case TOK_NORM_REPLACE: st = norm_replace(n, ws, in, out); break;
    case TOK_NORM_SEQ: {
        tok_split cur = *in;
        for (int i = 0; i < n->n_subs && st == LFL_OK; i++) {
            tok_split next;
            st = tok_normalize(n->subs[i], ws, &cur, &next);
            cur = next;
        }
        *out = cur;
        break;
    }
    default:
        return lfl_fail(LFL_ERR_UNSUPPORTED, "tokenizer: unknown normalizer %d", n->type);
    }
    out->token = in->token;
    return st;
}

void tok_norm_free(tok_norm *n)
{
    if (!n) return;
    for (int i = 0; i < n->n_subs; i++) tok_norm_free(n->subs[i]);
    free(n->subs);
    free(n->str);
    tok_pattern_free(&n->pat);
    free(n);
}
