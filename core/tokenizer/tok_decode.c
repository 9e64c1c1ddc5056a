/* Decoders over the list of token strings, as HF's decode_chain: ByteLevel,
 * Metaspace, Replace, ByteFallback, Fuse, Strip, BPEDecoder and Sequence. The
 * caller joins what is left. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tok_internal.h"

typedef struct {
    char **s;
    size_t *n;
    size_t count, cap;
} strvec;

static lfl_status oom(void) { return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory while decoding"); }

static bool sv_push(strvec *v, const char *s, size_t n)
{
    if (v->count == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        char **ss = realloc(v->s, sizeof *ss * cap);
        if (!ss) return false;
        v->s = ss;
        size_t *nn = realloc(v->n, sizeof *nn * cap);
        if (!nn) return false;
        v->n = nn;
        v->cap = cap;
    }
    char *c = malloc(n + 1);
    if (!c) return false;
    memcpy(c, s, n);
    c[n] = 0;
    v->s[v->count] = c;
    v->n[v->count] = n;
    v->count++;
    return true;
}

static void sv_free_strings(char **s, size_t n)
{
    for (size_t i = 0; i < n; i++) free(s[i]);
}

/* one decoder: in -> out */
static lfl_status dec_one(const tok_dec *d, char **in, size_t *inn, size_t count, strvec *out)
{
    tok_buf b = {0};
    lfl_status st = LFL_OK;
    switch (d->type) {
    case TOK_DEC_BYTELEVEL: {
        tok_buf raw = {0};
        bool ok = tok_buf_put(&raw, "", 0);
        for (size_t i = 0; i < count && ok; i++) {
            size_t start = raw.n;
            bool all = true;
            for (size_t k = 0; k < inn[i] && ok;) {
                int32_t cp;
                int l = tok_utf8_decode((const unsigned char *)in[i] + k, inn[i] - k, &cp);
                int byte = tok_cp_to_byte(cp);
                if (byte < 0) { all = false; break; }
                char c = (char)byte;
                ok = tok_buf_put(&raw, &c, 1);
                k += (size_t)l;
            }
            if (!all && ok) {
                raw.n = start; /* a char outside the map: the token's own bytes */
                ok = tok_buf_put(&raw, in[i], inn[i]);
            }
        }
        ok = ok && tok_utf8_lossy(raw.p, raw.n, &b) && sv_push(out, b.p, b.n);
        tok_buf_free(&raw);
        if (!ok) st = oom();
        break;
    }
    case TOK_DEC_METASPACE:
        for (size_t i = 0; i < count && st == LFL_OK; i++) {
            b.n = 0;
            bool ok = tok_buf_put(&b, "", 0);
            for (size_t k = 0; k < inn[i] && ok;) {
                int32_t cp;
                int l = tok_utf8_decode((const unsigned char *)in[i] + k, inn[i] - k, &cp);
                if (cp == d->ch) {
                    if (!(i == 0 && d->prepend_scheme != TOK_PREPEND_NEVER)) ok = tok_buf_put(&b, " ", 1);
                } else {
                    ok = tok_buf_put(&b, in[i] + k, (size_t)l);
                }
                k += (size_t)l;
            }
            if (!ok || !sv_push(out, b.p, b.n)) st = oom();
        }
        break;
    case TOK_DEC_REPLACE:
        for (size_t i = 0; i < count && st == LFL_OK; i++) {
            b.n = 0;
            bool ok = tok_buf_put(&b, "", 0);
            size_t pos = 0, ms, me;
            lfl_status err = LFL_OK;
            while (ok && tok_pattern_find(&d->pat, NULL, in[i], inn[i], pos, &ms, &me, &err)) {
                ok = tok_buf_put(&b, in[i] + pos, ms - pos) && tok_buf_put(&b, d->str, d->str_len);
                pos = me;
            }
            if (err != LFL_OK) { st = err; break; }
            ok = ok && tok_buf_put(&b, in[i] + pos, inn[i] - pos);
            if (!ok || !sv_push(out, b.p, b.n)) st = oom();
        }
        break;
    case TOK_DEC_BYTEFALLBACK: {
        tok_buf bytes = {0};
        size_t nbytes = 0;
        for (size_t i = 0; i <= count && st == LFL_OK; i++) {
            int byte = -1;
            if (i < count && inn[i] == 6 && memcmp(in[i], "<0x", 3) == 0 && in[i][5] == '>') {
                unsigned v;
                char hex[3] = {in[i][3], in[i][4], 0};
                char *end;
                v = (unsigned)strtoul(hex, &end, 16);
                bool hexok = end == hex + 2 && ((hex[0] >= '0' && hex[0] <= '9') || (hex[0] >= 'A' && hex[0] <= 'F') ||
                                                (hex[0] >= 'a' && hex[0] <= 'f'));
                if (hexok) byte = (int)v;
            }
            if (byte >= 0) {
                char c = (char)byte;
                if (!tok_buf_put(&bytes, &c, 1)) st = oom();
                nbytes++;
                continue;
            }
            if (nbytes) {
                /* whole valid UTF-8 or one U+FFFD per byte */
                size_t k = 0, sub;
                bool valid = true;
                while (k < nbytes) {
                    size_t v = tok_utf8_valid_len((const unsigned char *)bytes.p + k, nbytes - k, &sub);
                    if (!v) { valid = false; break; }
                    k += v;
                }
                if (valid) {
                    if (!sv_push(out, bytes.p, nbytes)) st = oom();
                } else {
                    for (size_t r = 0; r < nbytes && st == LFL_OK; r++)
                        if (!sv_push(out, "\xEF\xBF\xBD", 3)) st = oom();
                }
                bytes.n = 0;
                nbytes = 0;
            }
            if (i < count && st == LFL_OK && !sv_push(out, in[i], inn[i])) st = oom();
        }
        tok_buf_free(&bytes);
        break;
    }
    case TOK_DEC_FUSE: {
        bool ok = tok_buf_put(&b, "", 0);
        for (size_t i = 0; i < count && ok; i++) ok = tok_buf_put(&b, in[i], inn[i]);
        if (!ok || !sv_push(out, b.p, b.n)) st = oom();
        break;
    }
    case TOK_DEC_STRIP:
        for (size_t i = 0; i < count && st == LFL_OK; i++) {
            size_t a = 0, e = inn[i];
            for (int k = 0; k < d->start && a < e; k++) {
                int32_t cp;
                int l = tok_utf8_decode((const unsigned char *)in[i] + a, e - a, &cp);
                if (cp != d->ch) break;
                a += (size_t)l;
            }
            for (int k = 0; k < d->stop && e > a; k++) {
                size_t q = e - 1;
                while (q > a && ((unsigned char)in[i][q] & 0xC0) == 0x80) q--;
                int32_t cp;
                tok_utf8_decode((const unsigned char *)in[i] + q, e - q, &cp);
                if (cp != d->ch) break;
                e = q;
            }
            if (!sv_push(out, in[i] + a, e - a)) st = oom();
        }
        break;
    case TOK_DEC_BPE:
        for (size_t i = 0; i < count && st == LFL_OK; i++) {
            b.n = 0;
            bool ok = tok_buf_put(&b, "", 0);
            size_t pos = 0;
            const char *rep = i + 1 == count ? "" : " ";
            while (ok && d->str_len && pos < inn[i]) {
                const char *hit = NULL;
                for (size_t k = pos; k + d->str_len <= inn[i]; k++)
                    if (memcmp(in[i] + k, d->str, d->str_len) == 0) { hit = in[i] + k; break; }
                if (!hit) break;
                ok = tok_buf_put(&b, in[i] + pos, (size_t)(hit - (in[i] + pos))) && tok_buf_put(&b, rep, strlen(rep));
                pos = (size_t)(hit - in[i]) + d->str_len;
            }
            ok = ok && tok_buf_put(&b, in[i] + pos, inn[i] - pos);
            if (!ok || !sv_push(out, b.p, b.n)) st = oom();
        }
        break;
    default:
        st = lfl_fail(LFL_ERR_UNSUPPORTED, "tokenizer: unknown decoder %d", d->type);
    }
    tok_buf_free(&b);
    return st;
}

lfl_status tok_decode_tokens(const tok_dec *d, char ***toks, size_t **lens, size_t *n)
{
    if (d->type == TOK_DEC_SEQ) {
        for (int i = 0; i < d->n_subs; i++) LFL_TRY(tok_decode_tokens(d->subs[i], toks, lens, n));
        return LFL_OK;
    }
    strvec out = {0};
    lfl_status st = dec_one(d, *toks, *lens, *n, &out);
    if (st != LFL_OK) {
        sv_free_strings(out.s, out.count);
        free(out.s);
        free(out.n);
        return st;
    }
    sv_free_strings(*toks, *n);
    free(*toks);
    free(*lens);
    if (!out.s) {
        out.s = malloc(sizeof *out.s);
        out.n = malloc(sizeof *out.n);
        if (!out.s || !out.n) {
            free(out.s);
            free(out.n);
            *toks = NULL;
            *lens = NULL;
            *n = 0;
            return oom();
        }
    }
    *toks = out.s;
    *lens = out.n;
    *n = out.count;
    return LFL_OK;
}

void tok_dec_free(tok_dec *d)
{
    if (!d) return;
    for (int i = 0; i < d->n_subs; i++) tok_dec_free(d->subs[i]);
    free(d->subs);
    free(d->str);
    tok_pattern_free(&d->pat);
    free(d);
}
