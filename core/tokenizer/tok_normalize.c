/* Normalizers (NFC/NFD/NFKC/NFKD, Lowercase, Strip, Prepend, Append, Replace,
 * Sequence) on splits, keeping each output byte's original [start, end) so
 * token offsets point into the caller's text. */
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <utf8proc.h>
#include "tok_internal.h"

static lfl_status oom(void) { return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory while normalizing"); }

static bool all_ascii(const tok_split *in)
{
    for (uint32_t i = 0; i < in->n; i++)
        if ((unsigned char)in->s[i] >= 0x80) return false;
    return true;
}

/* Code points below U+20000 that may be the second char of a canonical
 * composition: every char after the first in some canonical decomposition
 * (a superset of the composition seconds), plus the Hangul V and T jamo. */
static uint8_t second_tab[0x20000 / 8];
/* Per BMP code point: stays as it is under NFC / NFKC whatever precedes it
 * (a starter, not a possible second, mapped to itself by the form) */
static uint8_t nfc_stable[0x10000 / 8], nfkc_stable[0x10000 / 8];
static pthread_once_t stable_once = PTHREAD_ONCE_INIT;

static bool bit(const uint8_t *t, int32_t cp) { return t[cp >> 3] & (1u << (cp & 7)); }
static void set_bit(uint8_t *t, int32_t cp) { t[cp >> 3] |= (uint8_t)(1u << (cp & 7)); }

static bool maps_to_itself(int32_t cp, utf8proc_option_t opt)
{
    char enc[4];
    int n = tok_utf8_encode(cp, enc);
    utf8proc_uint8_t *out = NULL;
    utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)enc, n, &out, opt);
    bool same = m == n && memcmp(out, enc, (size_t)n) == 0;
    free(out);
    return same;
}

static void stable_init(void)
{
    for (int32_t cp = 0x1161; cp <= 0x11C2; cp++) set_bit(second_tab, cp);
    for (int32_t cp = 0; cp < 0x110000; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        const utf8proc_property_t *p = utf8proc_get_property(cp);
        if (p->decomp_seqindex == UINT16_MAX || p->decomp_type != 0) continue;
        utf8proc_int32_t d[32];
        int lbc = 0;
        utf8proc_ssize_t k = utf8proc_decompose_char(cp, d, 32, UTF8PROC_DECOMPOSE, &lbc);
        for (utf8proc_ssize_t j = 1; j < k && j < 32; j++)
            if (d[j] < 0x20000) set_bit(second_tab, d[j]);
    }
    for (int32_t cp = 0; cp < 0x10000; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        const utf8proc_property_t *p = utf8proc_get_property(cp);
        if (p->combining_class != 0 || bit(second_tab, cp)) continue;
        bool plain = p->decomp_seqindex == UINT16_MAX && !(cp >= 0xAC00 && cp <= 0xD7A3);
        if (plain || maps_to_itself(cp, UTF8PROC_STABLE | UTF8PROC_COMPOSE)) set_bit(nfc_stable, cp);
        if (plain || maps_to_itself(cp, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT)) set_bit(nfkc_stable, cp);
    }
}

/* may cp combine with the char before it (or be reordered before it)? */
static bool combines_back(int32_t cp, int ccc)
{
    return ccc != 0 || (cp < 0x20000 && bit(second_tab, cp));
}

/* A quick check that the normalization cannot change the text, so the common
 * case skips utf8proc. Conservative: a false "may change" only costs the full
 * normalization. */
static bool surely_unchanged(int type, const tok_split *in)
{
    bool compose = type == TOK_NORM_NFC || type == TOK_NORM_NFKC;
    bool compat = type == TOK_NORM_NFKC || type == TOK_NORM_NFKD;
    pthread_once(&stable_once, stable_init);
    const uint8_t *table = type == TOK_NORM_NFC ? nfc_stable : nfkc_stable;
    for (uint32_t i = 0; i < in->n;) {
        unsigned char c = (unsigned char)in->s[i];
        if (c < 0x80) { i++; continue; }
        int32_t cp;
        i += (uint32_t)tok_utf8_decode((const unsigned char *)in->s + i, in->n - i, &cp);
        if (compose && cp < 0x10000) {
            if (!bit(table, cp)) return false;
            continue;
        }
        const utf8proc_property_t *p = utf8proc_get_property(cp);
        if (combines_back(cp, p->combining_class)) return false;
        if (cp >= 0xAC00 && cp <= 0xD7A3) return false; /* precomposed Hangul decomposes */
        if (p->decomp_seqindex != UINT16_MAX && (compat || p->decomp_type == 0)) return false;
    }
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

typedef struct {
    int32_t cp;
    int ccc;
    int change; /* HF's alignment bookkeeping: 0 replaces an input char, +1 is
                 * inserted, -k also removes k input chars */
} ucp;

/* the primary composite of a + b, or -1 */
static int32_t compose_pair(int32_t a, int32_t b)
{
    char enc[8];
    int n = tok_utf8_encode(a, enc);
    n += tok_utf8_encode(b, enc + n);
    utf8proc_uint8_t *out = NULL;
    utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)enc, n, &out, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    int32_t r = -1;
    if (m > 0 && m == tok_utf8_len(out[0])) tok_utf8_decode(out, (size_t)m, &r);
    free(out);
    return r;
}

/* Unicode normalization with the alignment HF computes: each char's
 * decomposition is marked (first char replaces the input char, the rest are
 * inserted), marks are reordered with their marks, a composite absorbs the
 * marks of what it combined, and then output chars take the input chars in
 * order (inserted ones share the previous char's). */
static lfl_status norm_unicode(int type, tok_ws *ws, const tok_split *in, tok_split *out)
{
    if (in->n == 0 || all_ascii(in) || surely_unchanged(type, in)) { *out = *in; return LFL_OK; }
    bool compose = type == TOK_NORM_NFC || type == TOK_NORM_NFKC;
    bool compat = type == TOK_NORM_NFKC || type == TOK_NORM_NFKD;
    utf8proc_option_t dopt = UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0);
    size_t cap = (size_t)in->n * 4 + 16, n = 0;
    ucp *u = malloc(sizeof *u * cap);
    if (!u) return oom();
    lfl_status st = LFL_OK;
    /* 1. full decomposition */
    for (uint32_t i = 0; i < in->n && st == LFL_OK;) {
        int32_t cp;
        int len = tok_utf8_decode((const unsigned char *)in->s + i, in->n - i, &cp);
        utf8proc_int32_t d[32];
        int lbc = 0;
        utf8proc_ssize_t k = utf8proc_decompose_char(cp, d, 32, dopt, &lbc);
        if (k < 0 || k > 32) st = lfl_fail(LFL_ERR_ARG, "tokenizer: unicode normalization failed at byte %u", i);
        for (utf8proc_ssize_t j = 0; j < k && st == LFL_OK; j++) {
            if (n == cap) {
                cap *= 2;
                ucp *nu = realloc(u, sizeof *u * cap);
                if (!nu) { st = oom(); break; }
                u = nu;
            }
            u[n++] = (ucp){d[j], utf8proc_get_property(d[j])->combining_class, j == 0 ? 0 : 1};
        }
        i += (uint32_t)len;
    }
    /* 2. canonical order: stable sort of each run of marks by combining class */
    for (size_t i = 1; i < n && st == LFL_OK; i++) {
        if (u[i].ccc == 0) continue;
        for (size_t j = i; j > 0 && u[j - 1].ccc > u[j].ccc; j--) {
            ucp t = u[j];
            u[j] = u[j - 1];
            u[j - 1] = t;
        }
    }
    /* 3. canonical composition (UAX #15); chars that cannot combine with what
     * precedes them skip the pair lookup */
    if (compose && n > 0 && st == LFL_OK) {
        size_t starter = 0, w = 1;
        int last = u[0].ccc ? 256 : 0;
        for (size_t r = 1; r < n; r++) {
            ucp c = u[r];
            int32_t comp = -1;
            if (combines_back(c.cp, c.ccc) && u[starter].ccc == 0 && (last < c.ccc || last == 0))
                comp = compose_pair(u[starter].cp, c.cp);
            if (comp >= 0) {
                u[starter].cp = comp;
                u[starter].change += c.change - 1;
                continue;
            }
            if (c.ccc == 0) {
                starter = w;
                last = 0;
            } else {
                last = c.ccc;
            }
            u[w++] = c;
        }
        n = w;
    }
    /* 4. bytes and alignment, walking the input chars */
    tok_builder *b = &ws->bld;
    b->s.n = 0;
    uint32_t off = 0;
    for (size_t i = 0; i < n && st == LFL_OK; i++) {
        char enc[4];
        int en = tok_utf8_encode(u[i].cp, enc);
        uint32_t cs, ce; /* the input char giving the alignment: [cs, ce) */
        if (u[i].change > 0 || off >= in->n) {
            /* inserted: the char that ends where the walk stands */
            cs = off;
            if (cs > 0) cs--;
            while (cs > 0 && ((unsigned char)in->s[cs] & 0xC0) == 0x80) cs--;
        } else {
            cs = off;
        }
        ce = cs + (uint32_t)tok_utf8_len((unsigned char)in->s[cs < in->n ? cs : 0]);
        if (ce > in->n) ce = in->n;
        if (!tok_builder_put(b, enc, (size_t)en, tok_split_ostart(in, cs), tok_split_oend(in, ce - 1))) st = oom();
        if (u[i].change <= 0 && off < in->n) {
            off += (uint32_t)tok_utf8_len((unsigned char)in->s[off]);
            for (int k = 0; k < -u[i].change && off < in->n; k++) off += (uint32_t)tok_utf8_len((unsigned char)in->s[off]);
        }
    }
    free(u);
    if (st != LFL_OK) return st;
    /* the result must be utf8proc's; else keep its bytes with coarse alignment */
    utf8proc_uint8_t *whole = NULL;
    utf8proc_ssize_t wn = utf8proc_map((const utf8proc_uint8_t *)in->s, in->n, &whole, unicode_opts(type));
    if (wn < 0) return lfl_fail(LFL_ERR_ARG, "tokenizer: unicode normalization failed: %s", utf8proc_errmsg(wn));
    if (b->s.n != (size_t)wn || memcmp(b->s.p, whole, (size_t)wn) != 0) {
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
        /* as HF: the match is removed and the content inserted after it, so
         * the content takes the alignment of the match's last char */
        uint32_t last = (uint32_t)me - 1;
        while (last > ms && ((unsigned char)in->s[last] & 0xC0) == 0x80) last--;
        if (!tok_builder_copy(b, in, (uint32_t)pos, (uint32_t)ms) ||
            !tok_builder_put(b, n->str, n->str_len, tok_split_ostart(in, last), tok_split_oend(in, (uint32_t)me - 1)))
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
