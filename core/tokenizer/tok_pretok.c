/* Pre-tokenizers: Split (regex or literal, the five HF split behaviours,
 * invert), ByteLevel, Metaspace, Digits, Whitespace, WhitespaceSplit,
 * Punctuation and Sequence, each turning a list of splits into a finer one. */
#include <stdlib.h>
#include <string.h>
#include "tok_internal.h"

static lfl_status oom(void) { return lfl_fail(LFL_ERR_MEM, "tokenizer: out of memory while pre-tokenizing"); }

typedef struct {
    uint32_t a, b;
    bool match;
} piece;

typedef struct {
    piece *v;
    size_t n, cap;
} pieces;

static bool pieces_push(pieces *p, uint32_t a, uint32_t b, bool match)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        piece *v = realloc(p->v, sizeof *v * cap);
        if (!v) return false;
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n++] = (piece){a, b, match};
    return true;
}

/* pieces covering [0, n): pattern matches and the gaps between them */
static lfl_status find_pattern_pieces(const tok_pattern *pat, tok_ws *ws, const tok_split *in, pieces *out)
{
    size_t pos = 0, ms, me;
    lfl_status err;
    while (tok_pattern_find(pat, ws, in->s, in->n, pos, &ms, &me, &err)) {
        if (ms > pos && !pieces_push(out, (uint32_t)pos, (uint32_t)ms, false)) return oom();
        if (!pieces_push(out, (uint32_t)ms, (uint32_t)me, true)) return oom();
        pos = me;
    }
    if (err != LFL_OK) return err;
    if (pos < in->n && !pieces_push(out, (uint32_t)pos, in->n, false)) return oom();
    return LFL_OK;
}

/* every char satisfying pred is its own match; other chars group into gaps */
static lfl_status find_char_pieces(bool (*pred)(int32_t), const tok_split *in, pieces *out)
{
    uint32_t gap = 0;
    for (uint32_t i = 0; i < in->n;) {
        int32_t cp;
        int len = tok_utf8_decode((const unsigned char *)in->s + i, in->n - i, &cp);
        if (pred(cp)) {
            if (gap < i && !pieces_push(out, gap, i, false)) return oom();
            if (!pieces_push(out, i, i + (uint32_t)len, true)) return oom();
            gap = i + (uint32_t)len;
        }
        i += (uint32_t)len;
    }
    if (gap < in->n && !pieces_push(out, gap, in->n, false)) return oom();
    return LFL_OK;
}

/* applies an HF SplitDelimiterBehavior and appends the non-empty results */
static lfl_status emit_pieces(pieces *p, int behavior, bool invert, const tok_split *in, tok_splits *out)
{
    if (invert)
        for (size_t i = 0; i < p->n; i++) p->v[i].match = !p->v[i].match;
    size_t k = 0; /* compacted count */
    bool prev = false;
    switch (behavior) {
    case TOK_SPLIT_REMOVED:
        for (size_t i = 0; i < p->n; i++)
            if (!p->v[i].match) p->v[k++] = p->v[i];
        break;
    case TOK_SPLIT_ISOLATED:
        k = p->n;
        break;
    case TOK_SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < p->n; i++) {
            if (k > 0 && p->v[i].match == prev) p->v[k - 1].b = p->v[i].b;
            else p->v[k++] = p->v[i];
            prev = p->v[i].match;
        }
        break;
    case TOK_SPLIT_MERGED_PREV:
        for (size_t i = 0; i < p->n; i++) {
            if (p->v[i].match && !prev && k > 0) p->v[k - 1].b = p->v[i].b;
            else p->v[k++] = p->v[i];
            prev = p->v[i].match;
        }
        break;
    case TOK_SPLIT_MERGED_NEXT: {
        /* the same fold from the right: a match joins the piece after it */
        size_t w = p->n;
        for (size_t i = p->n; i-- > 0;) {
            if (p->v[i].match && !prev && w < p->n) p->v[w].a = p->v[i].a;
            else p->v[--w] = p->v[i];
            prev = p->v[i].match;
        }
        memmove(p->v, p->v + w, sizeof *p->v * (p->n - w));
        k = p->n - w;
        break;
    }
    default:
        return lfl_fail(LFL_ERR_UNSUPPORTED, "tokenizer: unknown split behavior %d", behavior);
    }
    for (size_t i = 0; i < k; i++) {
        if (p->v[i].b <= p->v[i].a) continue;
        if (!tok_splits_push(out, tok_split_sub(in, p->v[i].a, p->v[i].b))) return oom();
    }
    return LFL_OK;
}

static bool is_space_char(int32_t cp) { return tok_is_whitespace(cp); }

/* Whitespace: keep runs of \w and runs of [^\w\s], drop whitespace */
static lfl_status whitespace_pieces(const tok_split *in, pieces *out)
{
    int cls_prev = -1; /* 0 space, 1 word, 2 other */
    uint32_t start = 0;
    for (uint32_t i = 0; i <= in->n;) {
        int cls = -1;
        int len = 1;
        if (i < in->n) {
            int32_t cp;
            len = tok_utf8_decode((const unsigned char *)in->s + i, in->n - i, &cp);
            cls = tok_is_word_char(cp) ? 1 : tok_is_whitespace(cp) ? 0 : 2;
        }
        if (cls != cls_prev) {
            if (cls_prev >= 0 && i > start && !pieces_push(out, start, i, cls_prev != 0)) return oom();
            start = i;
            cls_prev = cls;
        }
        if (i == in->n) break;
        i += (uint32_t)len;
    }
    return LFL_OK;
}

/* ByteLevel mapping done here (when more pre-tokenizers follow it) */
static lfl_status bytelevel_map(tok_ws *ws, const tok_split *in, tok_split *out)
{
    tok_builder *b = &ws->bld;
    b->s.n = 0;
    for (uint32_t i = 0; i < in->n;) {
        uint32_t len = (uint32_t)tok_utf8_len((unsigned char)in->s[i]);
        if (i + len > in->n) len = in->n - i;
        uint32_t os = tok_split_ostart(in, i), oe = tok_split_oend(in, i + len - 1);
        for (uint32_t k = 0; k < len; k++) {
            char enc[4];
            int en = tok_utf8_encode(tok_byte_to_cp[(unsigned char)in->s[i + k]], enc);
            if (!tok_builder_put(b, enc, (size_t)en, os, oe)) return oom();
        }
        i += len;
    }
    if (!tok_builder_freeze(b, &ws->arena, out)) return oom();
    return LFL_OK;
}

static lfl_status prepend_str(tok_ws *ws, const tok_split *in, const char *s, size_t n, tok_split *out)
{
    tok_builder *b = &ws->bld;
    b->s.n = 0;
    uint32_t first = (uint32_t)tok_utf8_len((unsigned char)in->s[0]);
    if (first > in->n) first = in->n;
    if (!tok_builder_put(b, s, n, tok_split_ostart(in, 0), tok_split_oend(in, first - 1)) ||
        !tok_builder_copy(b, in, 0, in->n) || !tok_builder_freeze(b, &ws->arena, out))
        return oom();
    return LFL_OK;
}

static lfl_status metaspace(const tok_pretok *p, tok_ws *ws, const tok_split *in, tok_splits *out, pieces *pc)
{
    tok_split cur = *in;
    if (memchr(in->s, ' ', in->n)) {
        tok_builder *b = &ws->bld;
        b->s.n = 0;
        uint32_t run = 0;
        for (uint32_t i = 0; i < in->n; i++) {
            if (in->s[i] != ' ') continue;
            if (!tok_builder_copy(b, in, run, i) ||
                !tok_builder_put(b, p->repl, (size_t)p->repl_len, tok_split_ostart(in, i), tok_split_oend(in, i)))
                return oom();
            run = i + 1;
        }
        if (!tok_builder_copy(b, in, run, in->n) || !tok_builder_freeze(b, &ws->arena, &cur)) return oom();
    }
    bool starts = cur.n >= (uint32_t)p->repl_len && memcmp(cur.s, p->repl, (size_t)p->repl_len) == 0;
    bool prepend = cur.n > 0 && !starts &&
                   (p->prepend_scheme == TOK_PREPEND_ALWAYS ||
                    (p->prepend_scheme == TOK_PREPEND_FIRST && tok_split_ostart(&cur, 0) == 0));
    if (prepend) {
        tok_split t;
        LFL_TRY(prepend_str(ws, &cur, p->repl, (size_t)p->repl_len, &t));
        cur = t;
    }
    if (!p->split) {
        if (cur.n && !tok_splits_push(out, cur)) return oom();
        return LFL_OK;
    }
    pc->n = 0;
    LFL_TRY(find_pattern_pieces(&p->pat, ws, &cur, pc));
    return emit_pieces(pc, TOK_SPLIT_MERGED_NEXT, false, &cur, out);
}

static lfl_status apply_one(const tok_pretok *p, tok_ws *ws, const tok_split *in, tok_splits *out, pieces *pc)
{
    pc->n = 0;
    switch (p->type) {
    case TOK_PT_SPLIT:
        LFL_TRY(find_pattern_pieces(&p->pat, ws, in, pc));
        return emit_pieces(pc, p->behavior, p->invert, in, out);
    case TOK_PT_DIGITS:
        LFL_TRY(find_char_pieces(tok_is_numeric, in, pc));
        return emit_pieces(pc, p->individual ? TOK_SPLIT_ISOLATED : TOK_SPLIT_CONTIGUOUS, false, in, out);
    case TOK_PT_PUNCT:
        LFL_TRY(find_char_pieces(tok_is_punct, in, pc));
        return emit_pieces(pc, p->behavior, false, in, out);
    case TOK_PT_WHITESPACE_SPLIT:
        LFL_TRY(find_char_pieces(is_space_char, in, pc));
        return emit_pieces(pc, TOK_SPLIT_REMOVED, false, in, out);
    case TOK_PT_WHITESPACE:
        LFL_TRY(whitespace_pieces(in, pc));
        return emit_pieces(pc, TOK_SPLIT_REMOVED, true, in, out);
    case TOK_PT_METASPACE:
        return metaspace(p, ws, in, out, pc);
    case TOK_PT_BYTELEVEL: {
        tok_split cur = *in;
        if (p->add_prefix_space && cur.n > 0 && cur.s[0] != ' ') LFL_TRY(prepend_str(ws, in, " ", 1, &cur));
        size_t first = out->n;
        if (p->use_regex) {
            LFL_TRY(find_pattern_pieces(&p->pat, ws, &cur, pc));
            LFL_TRY(emit_pieces(pc, TOK_SPLIT_ISOLATED, false, &cur, out));
        } else if (cur.n && !tok_splits_push(out, cur)) {
            return oom();
        }
        if (!p->implicit)
            for (size_t i = first; i < out->n; i++) LFL_TRY(bytelevel_map(ws, &out->v[i], &out->v[i]));
        return LFL_OK;
    }
    default:
        return lfl_fail(LFL_ERR_UNSUPPORTED, "tokenizer: unknown pre-tokenizer %d", p->type);
    }
}

lfl_status tok_pretokenize(const tok_pretok *p, tok_ws *ws, tok_splits *io)
{
    if (!p) return LFL_OK;
    if (p->type == TOK_PT_SEQ) {
        for (int i = 0; i < p->n_subs; i++) LFL_TRY(tok_pretokenize(p->subs[i], ws, io));
        return LFL_OK;
    }
    tok_splits *out = &ws->b;
    out->n = 0;
    pieces pc = {0};
    lfl_status st = LFL_OK;
    for (size_t i = 0; i < io->n && st == LFL_OK; i++) {
        if (io->v[i].token >= 0) {
            if (!tok_splits_push(out, io->v[i])) st = oom();
            continue;
        }
        st = apply_one(p, ws, &io->v[i], out, &pc);
    }
    free(pc.v);
    if (st != LFL_OK) return st;
    tok_splits t = *io;
    *io = *out;
    *out = t;
    return LFL_OK;
}

void tok_pretok_free(tok_pretok *p)
{
    if (!p) return;
    for (int i = 0; i < p->n_subs; i++) tok_pretok_free(p->subs[i]);
    free(p->subs);
    tok_pattern_free(&p->pat);
    free(p);
}
